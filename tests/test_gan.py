"""The neural instrument: real training steps on a tiny rendered notes corpus, resume, determinism, the
NoteSynth facade (notes, morph, perform, SFZ), the CLI's answers to bad input, and the FAD/NDB/pyin maths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pysfizz
import pytest
import torch
from safetensors.torch import load_file

from tunesmith.cli import main
from tunesmith.compose.notesynth import NoteSynth, fit_duration
from tunesmith.data.corpora.notes import build_notes
from tunesmith.errors import ParameterError
from tunesmith.evaluate.gan import cents_off, frechet_distance, kmeans, ndb, pyin_pitch
from tunesmith.symbolic.io import write_midi
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.train.gan import GANTrainConfig, train_gan

TINY_MODEL = {"hidden": 32, "blocks": 2, "n_harmonics": 16, "embed_dim": 8, "z_dim": 4}


def tiny_config(**overrides) -> GANTrainConfig:
    base = dict(max_steps=4, batch_size=4, crop_frames=16, adv_start=2, eval_every=2, grid_every=4, log_every=1,
                valid_items=4, threads=1, model=TINY_MODEL, discriminator={"channels": 8, "cond_dim": 8})
    return GANTrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def notes_data(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("data") / "notes"
    build_notes(out, limit=60, instruments=["flute", "drums_standard"])
    return out


@pytest.fixture(scope="module")
def run_dir(notes_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "gan"
    train_gan(notes_data, out, tiny_config(), progress_bar=False)
    return out


@pytest.fixture(scope="module")
def synth(run_dir) -> NoteSynth:
    return NoteSynth.load(run_dir)


def test_training_writes_checkpoints_logs_and_pictures(run_dir):
    for name in ("best.safetensors", "best.json", "latest.safetensors", "latest.json", "metrics.csv",
                 "curves.png", "grid-000004.png", "training-state.pt"):
        assert (run_dir / name).is_file(), name
    card = json.loads((run_dir / "latest.json").read_text())
    assert card["family"] == "gan" and card["training"]["steps"] == 4
    assert [i["name"] for i in card["instruments"]] == ["flute", "drums_standard"]
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-2].split(","), strict=True))  # the last training row (the final row is eval)
    for column in ("spec", "loss_d", "adv_g", "fm", "grad_g", "grad_d"):
        assert last[column] not in ("", "nan"), column  # after adv_start both steps ran and were logged
    assert np.isfinite(float(card["metrics"]["valid_spec"]))


def test_resume_continues_the_run(notes_data, tmp_path):
    out = tmp_path / "gan"
    train_gan(notes_data, out, tiny_config(max_steps=2), command="first", progress_bar=False)
    card = train_gan(notes_data, out, tiny_config(max_steps=2), resume=True, command="second", progress_bar=False)
    assert card["training"]["steps"] == 4
    assert [r["command"] for r in card["training"]["runs"]] == ["first", "second"]
    steps = [int(line.split(",")[0]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert max(steps) == 4 and steps == sorted(steps)


def test_same_seed_same_weights(notes_data, run_dir, tmp_path):
    train_gan(notes_data, tmp_path / "again", tiny_config(), progress_bar=False)  # the config of run_dir
    first = load_file(str(run_dir / "latest.safetensors"))
    again = load_file(str(tmp_path / "again" / "latest.safetensors"))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_note_lengths_seeds_and_validation(synth):
    sr = synth.sr
    full = synth.note("flute", 72, 100, seed=1)
    assert full.dtype == np.float32 and len(full) == 2 * sr  # the corpus note: 1.5 s held + 0.5 s release
    assert np.array_equal(full, synth.note("flute", 72, 100, seed=1))
    assert not np.array_equal(full, synth.note("flute", 72, 100, seed=2))
    release = len(full) - round(1.5 * sr)
    short, long = synth.note("flute", 72, 100, 0.25, seed=1), synth.note("flute", 72, 100, 4.0, seed=1)
    assert abs(len(short) - (0.25 * sr + release)) <= 128 and abs(len(long) - (4.0 * sr + release)) <= 128
    assert np.isfinite(long).all() and np.abs(long).max() > 0
    with pytest.raises(ParameterError, match=r"60\.\.96"):
        synth.note("flute", 40)
    with pytest.raises(ParameterError, match="choose one of"):
        synth.note("banjo", 60)
    with pytest.raises(ParameterError, match="does not play"):
        synth.note("cello", 60)
    with pytest.raises(ParameterError, match="not in the kit"):
        synth.note("drums_standard", 60)
    with pytest.raises(ParameterError, match=r"0\.\.1"):
        synth.note("flute", 72, morph_to="flute", morph=1.5)
    with pytest.raises(ParameterError, match="duration"):
        synth.note("flute", 72, duration=0.0)
    with pytest.raises(ParameterError, match="velocity"):
        synth.note("flute", 72, velocity=0)


def test_longer_notes_extend_the_held_part_without_jumps():
    off, frames = 40, 60
    amp = torch.linspace(1.0, 0.5, frames).unsqueeze(0)
    c = {"f0": torch.tensor([[220.0]]), "amp": amp, "harm": torch.full((1, frames, 4), 0.25),
         "noise": torch.full((1, frames, 5), 0.01)}
    longer = fit_duration(c, off, 100)
    assert longer["amp"].shape[1] == 100 + frames - off
    held = longer["amp"][0, :100]
    assert torch.all(held[1:] <= held[:-1] + 1e-6)  # the decay continues, the loop never swells
    assert torch.max(torch.abs(torch.diff(held))) < 0.05  # and never jumps
    shorter = fit_duration(c, off, 10)
    assert shorter["amp"].shape[1] == 10 + frames - off


def test_morph_ends_are_the_instruments(synth):
    plain = synth.note("drums_standard", 38, seed=3)
    assert np.array_equal(synth.note("drums_standard", 38, seed=3, morph_to="drums_standard", morph=0.0), plain)
    with pytest.raises(ParameterError, match="pitched instruments or between two drum kits"):
        synth.note("flute", 72, morph_to="drums_standard", morph=0.5)


def test_perform_places_every_note(synth):
    melody = Part("melody", [Note(72, 0.0, 1.0, 90), Note(76, 1.0, 2.0, 100), Note(40, 3.0, 1.0, 80)], program=73)
    drums = Part("drums", [Note(36, 0.0, 0.5, 100), Note(38, 1.0, 0.5, 100), Note(60, 2.0, 0.5, 100)],
                 is_drum=True)
    score = Score([melody, drums], tempo=120.0)
    performance = synth.perform(score, "flute")
    assert performance.notes == 6 and performance.sr == synth.sr
    assert len(performance.audio) >= round(score.duration_seconds * synth.sr)
    assert np.abs(performance.audio).max() <= 0.99 + 1e-6
    text = " ".join(performance.interpretation)
    assert "moved by octaves" in text and "nearest kit key" in text
    third = round(1.5 * synth.sr)  # beat 3 at 120 bpm: the third melody note (pitch 40, moved up) starts here
    before, after = performance.audio[third - 1600:third], performance.audio[third:third + 1600]
    assert np.abs(performance.audio[:800]).max() > 0 and np.abs(after).max() > 0
    assert not np.allclose(before, after)
    with pytest.raises(ParameterError, match="limited to 3"):
        synth.perform(score, "flute", max_notes=3)
    with pytest.raises(ParameterError, match="drum kit"):
        synth.perform(score, "drums_standard")


def test_export_sfz_maps_the_whole_range(synth, tmp_path):
    sfz = synth.export_sfz(tmp_path / "sfz", "flute", step=7, velocities=(60, 110), duration=0.5)
    text = sfz.read_text()
    assert "default_path=samples/" in text
    regions = re.findall(r"<region> sample=(\S+) lokey=(\d+) hikey=(\d+) pitch_keycenter=(\d+)", text)
    groups = re.findall(r"<group> lovel=(\d+) hivel=(\d+)", text)
    assert groups == [("1", "85"), ("86", "127")]
    assert len(regions) == 2 * len({r[3] for r in regions})
    for sample, lo, hi, centre in regions:
        assert (sfz.parent / "samples" / sample).is_file()
        assert int(lo) <= int(centre) <= int(hi)
    keys = sorted({k for _, lo, hi, _ in regions for k in range(int(lo), int(hi) + 1)})
    assert keys == list(range(60, 97))  # every flute key, no gaps
    # the real sfizz engine opens it, maps every key and plays a note from the samples
    sampler = pysfizz.Synth(sample_rate=synth.sr, block_size=256)
    assert sampler.load_sfz_file(sfz)
    assert sampler.playable_keys == list(range(60, 97))
    assert len(sampler.get_note_info(72)) == 2  # one region per velocity layer
    soft, loud = sampler.render_note(72, 40, 0.3, 0.6), sampler.render_note(72, 120, 0.3, 0.6)
    assert np.abs(soft).max() > 1e-3 and np.abs(loud).max() > 1e-3 and not np.allclose(soft, loud)


def test_cli_notes_perform_and_bad_input(run_dir, tmp_path, capsys):
    out = tmp_path / "note.flac"
    ok = ["generate", "notes", "--checkpoint", str(run_dir), "--instrument", "flute", "--pitch", "72",
          "--duration", "0.5", "--sr", "16000", "-o", str(out)]
    assert main(ok) == 0 and out.is_file()
    midi = write_midi(Score([Part("m", [Note(72, 0.0, 1.0), Note(74, 1.0, 1.0)], program=73)]), tmp_path / "m.mid")
    performed = tmp_path / "performed.wav"
    assert main(["generate", "perform", "--checkpoint", str(run_dir), "--input", str(midi), "--instrument", "flute",
                 "--sr", "16000", "-o", str(performed)]) == 0 and performed.is_file()
    sfz_dir = tmp_path / "flute-sfz"
    capsys.readouterr()
    bad = [["--instrument", "banjo", "--pitch", "72", "-o", str(out)],
           ["--instrument", "flute", "--pitch", "30", "-o", str(out)],
           ["--instrument", "flute", "--pitch", "72", "--morph-to", "flute", "--morph", "2", "-o", str(out)],
           ["--instrument", "drums_standard", "--pitch", "60", "-o", str(out)],
           ["--instrument", "flute", "--pitch", "72", "-o", str(tmp_path / "note.txt")],
           ["--instrument", "flute", "--pitch", "72"],
           ["--instrument", "flute", "-o", str(out)]]
    for args in bad:
        assert main(["generate", "notes", "--checkpoint", str(run_dir), *args]) == 2, args
        assert capsys.readouterr().err.count("\n") == 1
    assert main(["generate", "perform", "--checkpoint", str(run_dir), "--instrument", "flute",
                 "-o", str(performed)]) == 2
    assert main(["generate", "notes", "--checkpoint", str(run_dir), "--instrument", "flute",
                 "--export-sfz", str(sfz_dir), "--sfz-step", "12"]) == 0
    assert (sfz_dir / "flute.sfz").is_file()
    first = tmp_path / "first.wav"  # no --instrument: the model's first, as the API's default
    assert main(["generate", "notes", "--checkpoint", str(run_dir), "--pitch", "60", "--sr", "16000",
                 "-o", str(first)]) == 0 and first.is_file()


def test_frechet_distance_and_ndb_on_synthetic_embeddings():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    shifted = rng.normal(size=(2000, 4)) + np.array([2.0, 0, 0, 0])
    assert frechet_distance(a, b) < 0.05
    assert abs(frechet_distance(a, shifted) - 4.0) < 0.3  # |mean difference|^2 for equal covariances
    centres = kmeans(a, 10, seed=0)
    assert ndb(centres, a, b)["different"] <= 2
    assert ndb(centres, a, shifted)["different"] >= 5


def test_pyin_finds_the_pitch_of_a_tone():
    sr = 16000
    t = np.arange(sr // 2) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 880.0 * t)).astype(np.float32)
    assert abs(cents_off(pyin_pitch(tone, sr), 69)) <= 50
    assert abs(cents_off(pyin_pitch(tone, sr), 70)) > 50


def test_real_drum_hits_train_as_a_kit_per_instrument(tmp_path):
    """A samples dataset's drum hits become notes: an instrument per training kit, the GM drum key as pitch."""
    from tunesmith.data.corpora.samples import build_samples
    from tunesmith.errors import ParameterError
    from tunesmith.train.gan import NoteData

    build_samples(tmp_path / "samples", sources=["hydrogen"], limit=80)
    drums = NoteData(tmp_path / "samples", "train", "drums")
    assert drums.instruments and all(i["drum"] and i["name"].startswith("kit_") for i in drums.instruments)
    assert {int(p) for p in drums.pitch} <= set(range(27, 88)) and len(drums) > 10
    assert len(NoteData(tmp_path / "samples", "valid", "drums")) >= 1  # every tenth training hit
    with pytest.raises(ParameterError):
        NoteData(tmp_path / "samples", "train")  # a samples dataset trains one subset
    card = train_gan(tmp_path / "samples", tmp_path / "run", GANTrainConfig(
        max_steps=2, eval_every=2, grid_every=100, batch_size=2, crop_frames=16, valid_items=4, subset="drums",
        family_weights={}, model={"hidden": 16, "blocks": 1, "n_harmonics": 8}))
    assert card["data"]["subset"] == "drums" and card["instruments"] == drums.instruments
    from tunesmith.evaluate.drums_gan import evaluate_drum_gan

    report = evaluate_drum_gan(tmp_path / "run", tmp_path / "samples")  # judged by the independent classifier
    assert report["generated_hits"] >= 1 and 0.0 <= report["generated_accuracy"] <= 1.0
    assert set(report) >= {"real_heldout_accuracy", "ratio", "meets_goal", "per_class_generated"}
