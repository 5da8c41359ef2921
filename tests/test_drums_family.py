"""The neural drum kit: a tiny drums GAN trained for two steps on a few real Hydrogen hits, played as single hits
(drum sound, kit, velocity, morphs between kits), performing a score's drum track humanized, through the registry
(`drums`, `perform` with neural drums) and the song's ``neural_drums``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tunesmith.compose.drumkit import DrumKit, neural_drum_performer, perform_with_kit, play_key
from tunesmith.errors import ParameterError
from tunesmith.symbolic.score import Note, Part, Score


@pytest.fixture(scope="module")
def drum_run(tmp_path_factory):
    from tunesmith.data.corpora.samples import build_samples
    from tunesmith.train.gan import GANTrainConfig, train_gan

    root = tmp_path_factory.mktemp("drums")
    build_samples(root / "samples", sources=["hydrogen"], limit=60)
    train_gan(root / "samples", root / "run", GANTrainConfig(
        max_steps=2, eval_every=2, grid_every=100, batch_size=2, crop_frames=16, valid_items=4, subset="drums",
        family_weights={}, model={"hidden": 16, "blocks": 1, "n_harmonics": 8}), progress_bar=False)
    return root / "run"


@pytest.fixture(scope="module")
def kit(drum_run) -> DrumKit:
    return DrumKit.load(drum_run)


@pytest.fixture(scope="module")
def weights(drum_run, tmp_path_factory):
    """A weights directory holding the tiny kit shipped as `drums` (card family "drums")."""
    directory = tmp_path_factory.mktemp("weights")
    card = json.loads((drum_run / "best.json").read_text()) | {"family": "drums", "id": "drums"}
    (directory / "drums.json").write_text(json.dumps(card))
    shutil.copyfile(drum_run / "best.safetensors", directory / "drums.safetensors")
    return directory


def groove(bars: int = 2) -> Score:
    """Kick on 1 and 3, snare on 2 and 4, closed hats on eighths (GM keys; 35 is a kick the kits never recorded)."""
    notes = []
    for bar in range(bars):
        for beat in range(4):
            t = bar * 4 + beat
            notes.append(Note(35 if beat in (0, 2) else 38, float(t), 0.25, 90))
            notes += [Note(42, t + 0.0, 0.25, 70), Note(42, t + 0.5, 0.25, 70)]
    return Score(parts=[Part("drums", notes, is_drum=True), Part("bass", [Note(40, 0.0, 2.0, 80)], program=33)],
                 tempo=120.0)


def test_hits_by_sound_kit_velocity_and_seed(kit):
    a = kit.hit("snare", kit=kit.kits[0], velocity=100, seed=1)
    assert a.dtype == np.float32 and a.ndim == 1 and np.abs(a).max() > 0
    assert np.array_equal(a, kit.hit("snare", kit=kit.kits[0], velocity=100, seed=1))
    assert not np.array_equal(a[:2000], kit.hit("kick", kit=kit.kits[0], velocity=100, seed=1)[:2000])
    assert not np.array_equal(a[:2000], kit.hit("snare", kit=kit.kits[0], velocity=100, seed=2)[:2000])
    with pytest.raises(ParameterError, match="unknown drum sound"):
        kit.hit("gong")
    with pytest.raises(ParameterError, match="does not play"):
        kit.hit("snare", kit="kit_nope")


def test_kits_morph_through_the_embedding(kit):
    if len(kit.kits) < 2:
        pytest.skip("the small build holds one kit")
    first, second = kit.kits[:2]
    start = kit.hit("kick", kit=first, seed=3)
    end = kit.hit("kick", kit=second, seed=3)
    assert np.allclose(kit.hit("kick", kit=first, morph_to=second, morph=0.0, seed=3), start, atol=1e-6)
    assert np.allclose(kit.hit("kick", kit=first, morph_to=second, morph=1.0, seed=3)[:len(end)], end[:len(end)],
                       atol=1e-5)
    half = kit.hit("kick", kit=first, morph_to=second, morph=0.5, seed=3)
    n = min(len(half), len(start), len(end))
    assert not np.allclose(half[:n], start[:n]) and not np.allclose(half[:n], end[:n])


def test_gm_keys_map_to_learned_sounds():
    assert play_key(35) == 36 and play_key(57) == 49 and play_key(38) == 38
    assert play_key(62) in (60, 63)  # a hand drum the kits never recorded: the nearest learned percussion key


def test_drum_track_is_humanized_from_the_seed(kit):
    score = groove()
    exact = kit.perform(score, kit=kit.kits[0], seed=5, humanize=0.0)
    assert [(round(s, 6), v) for s, _, v in exact.hits] == [(round(s, 6), v) for s, _, v in exact.written]
    assert {k for _, k, _ in exact.hits} == {36, 38, 42}  # 35 played by the learned kick
    human = kit.perform(score, kit=kit.kits[0], seed=5, humanize=1.0)
    again = kit.perform(score, kit=kit.kits[0], seed=5, humanize=1.0)
    other = kit.perform(score, kit=kit.kits[0], seed=6, humanize=1.0)
    velocity_changes = [p[2] - w[2] for p, w in zip(human.hits, exact.written, strict=True)]
    timing_changes = [p[0] - w[0] for p, w in zip(human.hits, exact.written, strict=True)]
    assert sum(d != 0 for d in velocity_changes) >= len(velocity_changes) // 2
    assert max(abs(d) for d in velocity_changes) <= 60 and 0 < max(abs(t) for t in timing_changes) < 0.08
    assert human.hits == again.hits and np.array_equal(human.audio, again.audio)
    assert human.hits != other.hits
    assert any("not drums" in n for n in human.interpretation)  # the bass part is not the kit's
    assert len(exact.audio) >= round(3.75 * exact.sr) + 800  # 2 bars at 120 BPM: the last hit at 3.75 s rings
    with pytest.raises(ParameterError, match="no drum part"):
        kit.perform(Score(parts=[Part("bass", [Note(40, 0.0, 1.0)])]), seed=1)


def test_perform_with_notes_and_the_neural_kit(kit):
    import tempfile
    from pathlib import Path

    from tests.tiny import tiny_notes
    from tunesmith.compose.notesynth import NoteSynth

    with tempfile.TemporaryDirectory() as directory:
        synth = NoteSynth.load(tiny_notes(Path(directory)))
        both = perform_with_kit(synth, groove(), "piano", seed=1, kit=kit)
        soundfont_drums = synth.perform(groove(), "piano", seed=1)
    assert both.notes == 24 + 1 and both.sr == synth.sr
    assert any("neural drum kit" in n for n in both.interpretation)
    n = min(len(both.audio), len(soundfont_drums.audio))
    assert not np.allclose(both.audio[:n], soundfont_drums.audio[:n])


def test_registry_serves_drums_hits_and_drum_tracks(weights, tmp_path):
    from tunesmith.families import Resolving
    from tunesmith.generation.catalog import load_catalog
    from tunesmith.generation.pipeline import make_work

    catalog = load_catalog(weights)
    entry = catalog.get("drums")
    assert entry.family.name == "drums" and "perform" not in catalog.models  # a drums card gives no perform
    public = entry.public(max_bars=64)
    assert set(public["params"]["kit"]["enum"]) == {i["name"] for i in entry.card["instruments"]}
    assert "snare" in public["params"]["drum"]["enum"]

    def resolve(**explicit):
        return entry.family.resolve(Resolving(model_id="drums", card=entry.card, explicit=explicit,
                                              from_prompt={}, notes=[], seed=4))

    params = resolve(drum="kick", velocity=80)
    made = make_work(entry, params, sr=16000)
    assert made.audio.shape[0] == 1 and made.work.result["drum"] == "kick"
    with pytest.raises(ParameterError) as error:
        resolve(kit="kit_nope")
    assert error.value.field == "params.kit"
    with pytest.raises(ParameterError):
        resolve(morph=0.5)
    track = make_work(entry, resolve(humanize=1.0), source=groove(), sr=16000)
    assert track.work.result["n_hits"] == 24
    assert track.work.result["velocities_played"] != track.work.result["velocities_written"]


def test_song_drums_by_the_neural_kit(kit):
    from tunesmith.families import Work
    from tunesmith.generation.pipeline import render_stems
    from tunesmith.symbolic.render import get_renderer

    band = groove(1)  # drums and a bass
    drums, bass = (Score(parts=[part], tempo=band.tempo) for part in band.parts)
    perform = neural_drum_performer(seed=2, kit=kit)
    neural = perform(drums, 16000)
    assert neural.shape[0] == 2 and neural.shape[1] > 16000 and np.array_equal(neural, perform(drums, 16000))
    by_soundfont = get_renderer(16000).render(drums)
    n = min(neural.shape[1], by_soundfont.shape[1])
    assert not np.allclose(neural[:, :n], by_soundfont[:, :n], atol=1e-3)
    assert perform(bass, 16000) is None and perform(band, 16000) is None  # pitched parts are FluidSynth's
    # in the mix the drum stem is the kit's (up to its level), the bass FluidSynth's; the stems add up to the mix
    work = Work(score=band, audio=None, sr=0, result={}, signed={}, title="", perform_part=perform)
    mixed, stems = render_stems(work, 16000, None)
    assert list(stems) == ["drums", "bass"]
    assert np.allclose(stems["drums"][:, :neural.shape[1]], neural, atol=1e-6)
    assert np.allclose(mixed, stems["drums"] + stems["bass"], atol=1e-5)


def test_song_takes_the_neural_drums_param():
    from tunesmith.families.song import SongParams

    assert SongParams(neural_drums=True).neural_drums is True
    with pytest.raises(ValueError):
        SongParams(neural_drums="sometimes")


def test_the_kit_trains_with_the_drum_recipe(drum_run):
    """A drums run gets the kit's options and losses unless it names its own (tunesmith.train.gan)."""
    from tunesmith.data.dataset import Dataset
    from tunesmith.train.gan import drum_variants

    card = json.loads((drum_run / "latest.json").read_text())
    assert card["kwargs"]["partials"] == "log" and card["kwargs"]["noise_max"] == 8.0
    assert "sweeps" not in card["kwargs"]  # asked for by name (--sweeps)
    config = card["training"]["config"]
    assert config["mel_weight"] == 5.0 and config["envelope_weight"] == 1.0
    header = (drum_run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"mel", "envelope"} <= set(header)
    hits = [r for r in Dataset(drum_run.parent / "samples").split("train")
            if r.labels.get("kind") == "drum_hit" and r.labels.get("gm_note") is not None]
    _, counts = drum_variants(hits)
    assert {i["kit"]: i.get("variants") for i in card["instruments"] if i.get("variants")} == counts
    assert card["kwargs"].get("variants", 0) == max((c for kit in counts.values() for c in kit.values()), default=0)
