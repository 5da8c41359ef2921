"""The neural piano on the Salamander notes: the continuity measure on known signals, a tiny piano GAN trained two
steps on one real velocity layer and judged by the piano evaluation, and the shipped card's credit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunesmith.checkpoints import WEIGHTS_DIR
from tunesmith.evaluate.piano_gan import continuity, timbre

SR = 16000


def tone(pitch: float, *, bright: float = 1.0, seconds: float = 1.5) -> np.ndarray:
    """A decaying harmonic tone whose upper partials weigh ``bright``."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    y = sum((bright ** k) / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 12) if k * f0 < SR / 2)
    return (0.3 * y * np.exp(-t)).astype(np.float32)


def test_timbre_hears_brightness_and_register():
    dull, bright = timbre(tone(60, bright=0.3), SR), timbre(tone(60, bright=0.9), SR)
    assert bright[0] > dull[0]
    assert timbre(tone(72), SR)[0] > timbre(tone(48), SR)[0]
    with pytest.raises(ValueError):
        timbre(np.zeros(SR, dtype=np.float32), SR)


def test_continuity_passes_smooth_keys_and_catches_a_jump():
    recorded = {p: timbre(tone(p, bright=0.5), SR) for p in range(36, 73, 3)}
    smooth = {p: timbre(tone(p, bright=0.5), SR) for p in range(36, 73)}
    report = continuity(smooth, recorded)
    assert report["spacing"] == 3 and report["steps"] == 22 and report["meets_goal"]
    jumpy = dict(smooth) | {52: timbre(tone(52, bright=0.95), SR)}  # one key much brighter than its neighbours
    bad = continuity(jumpy, recorded)
    assert not bad["meets_goal"] and bad["passing"] < report["passing"] and bad["worst_mfcc_ratio"] > 1.5


def test_smooth_pitch_code_blends_neighbouring_keys():
    import torch

    from tunesmith.models.gan import NoteGenerator, PitchBasis, pitch_code

    keys = torch.arange(21, 109)
    code = PitchBasis()(keys)
    step = (code[1:] - code[:-1]).abs().max()
    assert step < 0.2 and code.max(dim=1).values.min() > 0.85  # every key is near a bump; a key moves it little
    table = pitch_code("table", 16)(keys)
    assert (table[1:] - table[:-1]).abs().max() > 5 * step  # a table's neighbours are unrelated vectors
    generator = NoteGenerator(n_instruments=1, hidden=16, blocks=1, n_harmonics=8, pitch_basis="smooth")
    assert NoteGenerator(**generator.kwargs).kwargs["pitch_basis"] == "smooth"  # the card rebuilds it
    with pytest.raises(ValueError, match="pitch_basis"):
        pitch_code("nearest", 16)


def test_curvature_loss_measures_how_sharply_the_sound_bends_from_key_to_key():
    import torch

    from tunesmith.models.gan import NoteGenerator, pitch_curvature_loss

    torch.manual_seed(0)
    keys, velocity = torch.arange(30, 100, 7), torch.full((10,), 80)
    z = torch.randn(10, 16)

    def curvature(generator: NoteGenerator) -> torch.Tensor:
        emb = generator.embed(torch.zeros(10, dtype=torch.long))
        return pitch_curvature_loss(generator, emb, keys, velocity, z, first=0, last=32)

    smooth = NoteGenerator(n_instruments=1, hidden=32, blocks=2, n_harmonics=16, pitch_basis="smooth")
    table = NoteGenerator(n_instruments=1, hidden=32, blocks=2, n_harmonics=16)  # unrelated vectors per key
    with torch.no_grad():
        table.pitch.weight.mul_(3.0)
        smooth_loss, table_loss = float(curvature(smooth)), float(curvature(table))
    assert table_loss > 10 * smooth_loss > 0.0
    # a few steps of gradient descent on it smooth the table's keys (the loss has a useful gradient)
    optimizer = torch.optim.Adam(table.parameters(), lr=1e-2)
    for _ in range(20):
        optimizer.zero_grad()
        curvature(table).backward()
        optimizer.step()
    assert float(curvature(table).detach()) < 0.5 * table_loss
    # the partials above Nyquist at pitch + 1 do not count: a top key's loss stays as small as a middle key's
    top = pitch_curvature_loss(smooth, smooth.embed(torch.zeros(2, dtype=torch.long)), torch.tensor([106, 107]),
                               velocity[:2], z[:2], first=0, last=32)
    assert float(top) < 10 * smooth_loss


@pytest.mark.npm
def test_tiny_piano_gan_is_judged_on_real_salamander_notes(tmp_path):
    from tunesmith.data.corpora.samples import build_samples
    from tunesmith.evaluate.piano_gan import evaluate_piano
    from tunesmith.train.gan import GANTrainConfig, train_gan

    build_samples(tmp_path / "piano", sources="salamander", piano_layers=(10,))
    card = train_gan(tmp_path / "piano", tmp_path / "run", GANTrainConfig(
        max_steps=2, eval_every=2, grid_every=100, batch_size=2, crop_frames=16, valid_items=4, subset="piano",
        family_weights={}, model={"hidden": 16, "blocks": 1, "n_harmonics": 8}), progress_bar=False)
    assert card["data"]["subset"] == "piano" and [i["name"] for i in card["instruments"]] == ["grand_piano"]
    assert card["kwargs"]["pitch_basis"] == "smooth" and card["discriminator"]["pitch_basis"] == "smooth"
    report = evaluate_piano(tmp_path / "run", tmp_path / "piano", max_notes=8)
    pitch = report["pitch_pyin"]
    assert pitch["notes"] >= 8 and pitch["real"] >= 0.6  # pyin reads most real Salamander notes
    assert 0.0 <= pitch["generated"] <= 1.0 and pitch["meets_goal"] == (pitch["generated"] >= pitch["real"])
    between = report["between_keys"]
    assert between["keys"] > 0 and 0.0 <= between["share_in_tune"] <= 1.0
    assert report["continuity"]["steps"] >= 1 and isinstance(report["continuity"]["meets_goal"], bool)


def test_shipped_piano_credits_salamander():
    card_path = WEIGHTS_DIR / "piano.json"
    if not card_path.is_file():
        pytest.skip("the neural piano is not shipped in this checkout")
    from tunesmith.generation.catalog import load_catalog

    catalog = load_catalog(WEIGHTS_DIR)
    entry = catalog.get("piano")
    assert entry.family.name == "instrument" and catalog.get("perform").card_path.stem == "notes"
    public = json.dumps(entry.public(max_bars=64)["licence"])
    assert "Salamander Grand Piano, Alexander Holm, CC-BY 3.0" in public
    assert entry.card["weights_sha256"] and (WEIGHTS_DIR / "piano.safetensors").stat().st_size < 25 * 2**20


def test_the_shipped_piano_plays_notes_and_performs_a_score(tmp_path):
    """The shipped piano from the CLI: one note at a key between two recordings, a whole score performed (its
    checkpoint given to `generate perform`), and a score with drums refused with the field named, as the piano
    plays no kit."""
    if not (WEIGHTS_DIR / "piano.json").is_file():
        pytest.skip("the neural piano is not shipped in this checkout")
    import soundfile as sf

    from tunesmith.cli import main
    from tunesmith.compose.notesynth import NoteSynth
    from tunesmith.errors import ParameterError
    from tunesmith.evaluate.gan import cents_off, pyin_pitch
    from tunesmith.symbolic import Note, Part, Score

    synth = NoteSynth.load("piano")
    note = synth.note("grand_piano", 61, velocity=80, seed=1)  # C#4: between the recorded C4 and D#4
    assert abs(cents_off(pyin_pitch(note, synth.sr), 61)) <= 30
    melody = Score(parts=[Part("Melody", [Note(60 + i, i * 0.5, 0.5, 90) for i in range(6)])], tempo=120.0)
    played = synth.perform(melody, "grand_piano", seed=2)
    assert played.notes == 6 and np.abs(played.audio).max() > 0.01
    with_drums = Score(parts=[*melody.parts, Part("Kit", [Note(36, 0.0, 0.5, 100)], is_drum=True)], tempo=120.0)
    with pytest.raises(ParameterError) as info:
        synth.perform(with_drums, "grand_piano")
    assert info.value.field == "drums"
    assert main(["generate", "piano", "--pitch", "58", "--velocity", "50", "-o", str(tmp_path / "note.wav")]) == 0
    audio, sr = sf.read(tmp_path / "note.wav")
    assert sr == 44100 and np.abs(audio).max() > 0.01  # written at the delivery rate
    assert main(["generate", "piano", "--pitch", "130", "-o", str(tmp_path / "bad.wav")]) == 2
    assert not (tmp_path / "bad.wav").exists()


def test_perform_plays_the_grand_piano_with_the_piano_card_and_signs_it_as_that_card(tmp_path):
    """`perform` joins every neural instrument's card: an instrument is played, and the work signed, by its card."""
    from tunesmith.families import Resolving
    from tunesmith.families.base import InputFacts
    from tunesmith.generation.catalog import load_catalog
    from tunesmith.generation.pipeline import deliver, make_work
    from tunesmith.generation.signing import Stamper, new_work_id, work_payload
    from tunesmith.provenance.verify import verify_file
    from tunesmith.symbolic.score import Note, Part, Score

    entry = load_catalog(WEIGHTS_DIR).get("perform")
    assert {"notes", "piano"} <= set(entry.members)
    shown = entry.public(max_bars=64)
    assert shown["played_by"]["grand_piano"] == "piano" and shown["played_by"]["piano"] == "notes"
    assert "grand_piano" in shown["params"]["instrument"]["enum"]
    melody = Score(parts=[Part("m", [Note(48 + 7 * i, i * 0.5, 0.5, 90) for i in range(4)], program=0)])
    upload = InputFacts(id="m", filename="m.mid", meter="4/4", tempo=120.0, bars=1)
    stamper = Stamper(tmp_path / "key")
    for instrument, card in (("grand_piano", "piano"), ("violin", "notes")):
        params = entry.family.resolve(Resolving(model_id="perform", card=entry.card, from_prompt={}, notes=[],
                                                explicit={"instrument": instrument, "drums": "notes"}, seed=1,
                                                upload=upload))
        made = make_work(entry, params, source=melody)
        assert made.entry is not None and made.entry.card_path.stem == card and made.entry.id == "perform"
        assert made.work.result["instrument"] == instrument and float(np.abs(made.audio).max()) > 0.01
        path = tmp_path / f"{instrument}.wav"
        deliver(made, entry, {"wav": path}, payload=work_payload(new_work_id()), stamper=stamper)
        manifest = verify_file(path, stamper.key.public_key()).manifest
        expected = json.loads((WEIGHTS_DIR / f"{card}.json").read_text())
        assert manifest["model_id"] == "perform" and manifest["model_version"] == expected["version"]
