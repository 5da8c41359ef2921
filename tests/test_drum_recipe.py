"""The drum kit's recipe (session 13): partials on a log grid, a higher noise cap, log-mel and envelope losses, and
numbered variants of one key. Each answers a fault measured on the v1.1.0 kit (docs/models.md, "Neural drum kit")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tunesmith.compose.notesynth import NoteSynth
from tunesmith.data.manifest import Record
from tunesmith.errors import ParameterError
from tunesmith.models.gan import (
    LOG_PARTIALS_PER_OCTAVE,
    LOG_PARTIALS_RANGE,
    NoteGenerator,
    envelope_loss,
    exp_sigmoid,
    log_mel_loss,
    midi_to_hz,
    multi_resolution_stft_loss,
    partial_ratios,
    sweep_synth,
    synthesize,
)
from tunesmith.train.gan import drum_variants

SR = 16000


def tiny(**options) -> NoteGenerator:
    return NoteGenerator(n_instruments=2, hidden=16, blocks=1, n_harmonics=8, n_frames=40, note_off=0.2,
                         noise_fft=256, **options)


def nearest_octaves(ratios: list[float], f0: float, hz: float) -> float:
    """How far (in octaves) the partial nearest ``hz`` is from it."""
    return min(abs(math.log2(r * f0 / hz)) for r in ratios)


def test_log_partials_reach_a_drum_body_between_the_keys_harmonics():
    kick = float(midi_to_hz(torch.tensor(36.0)))  # GM key 36: 65.4 Hz, but a kick's body rings near 50 Hz
    harmonic, log = partial_ratios("harmonic", 64, 8), partial_ratios("log", 64, 8)
    assert nearest_octaves(harmonic, kick, 50.0) > 0.35  # 65.4 Hz or its half: a third of an octave off
    assert nearest_octaves(log, kick, 50.0) <= 0.5 / LOG_PARTIALS_PER_OCTAVE
    steps = np.diff(np.log2(log))
    assert np.allclose(steps, 1 / LOG_PARTIALS_PER_OCTAVE)
    assert log[0] == pytest.approx(LOG_PARTIALS_RANGE[0]) and log[-1] <= LOG_PARTIALS_RANGE[1]
    generator = tiny(partials="log")
    assert generator.n_partials == len(log) and NoteGenerator(**generator.kwargs).kwargs["partials"] == "log"
    assert "partials" not in tiny().kwargs  # older cards rebuild unchanged
    with pytest.raises(ValueError, match="partials"):
        tiny(partials="inharmonic")


def test_a_higher_noise_cap_starts_as_quiet_and_reaches_further():
    low, high = tiny(), tiny(noise_max=8.0)
    bias = (low.head.bias[-1].detach(), high.head.bias[-1].detach())
    assert float(exp_sigmoid(bias[1], max_value=8.0)) == pytest.approx(float(exp_sigmoid(bias[0], max_value=1.0)),
                                                                         rel=1e-3)
    z = torch.zeros(1, low.z_dim)
    with torch.no_grad():
        for generator in (low, high):
            generator.head.bias[1 + generator.n_partials:] = 20.0  # the filter fully open
        loud = [g.controls(g.embed(torch.tensor([0])), torch.tensor([36]), torch.tensor([100]), z)["noise"].max()
                for g in (low, high)]
    assert float(loud[0]) <= 1.0 + 1e-6 and float(loud[1]) > 7.0
    assert NoteGenerator(**high.kwargs).noise_max == 8.0
    with pytest.raises(ValueError, match="noise_max"):
        tiny(noise_max=0.0)


def test_the_envelope_loss_weighs_a_quiet_kick_body_more_than_the_spectral_losses_do():
    t = np.arange(SR) / SR
    rng = np.random.default_rng(0)
    body = np.sin(2 * np.pi * 50 * t) * np.exp(-t / 0.15)
    hiss = rng.standard_normal(SR) * 0.05 * np.exp(-t / 0.05)

    def tensor(y: np.ndarray) -> torch.Tensor:
        return torch.tensor(y, dtype=torch.float32).unsqueeze(0)

    real = tensor(body + hiss)
    quiet_body, quiet_hiss = tensor(body / 4 + hiss), tensor(body + hiss / 4)  # each 12 dB too quiet
    ratios = {}
    for name, loss in (("stft", multi_resolution_stft_loss), ("mel", lambda a, b: log_mel_loss(a, b, sr=SR)),
                       ("envelope", envelope_loss)):
        assert float(loss(real, real)) == 0.0
        ratios[name] = float(loss(quiet_body, real)) / float(loss(quiet_hiss, real))
    assert ratios["envelope"] > 3 * max(ratios["stft"], ratios["mel"])
    half = tensor(body / 2 + hiss)  # 6 dB too quiet: every loss grows with the error
    for loss in (multi_resolution_stft_loss, envelope_loss, lambda a, b: log_mel_loss(a, b, sr=SR)):
        assert 0 < float(loss(half, real)) < float(loss(quiet_body, real))


def hit(kit: str, key: int, velocity: int | None, n: int) -> Record:
    labels = {"kind": "drum_hit", "kit": kit, "gm_note": key, "velocity": velocity, "drum_class": "kick"}
    return Record(id=f"{kit}-{key}-{velocity}-{n}", source="test", licence="CC0", sha256="", split="train",
                  duration=2.0, labels=labels)


def zero_crossing_hz(y: np.ndarray) -> float:
    """A tone's frequency from its rising zero crossings."""
    rising = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
    return (len(rising) - 1) * SR / (rising[-1] - rising[0])


def test_a_sweep_glides_from_its_start_to_its_end_frequency():
    """The drum head's falling pitch: f(t) = end + (start - end) e^(-t / tau), loudness per frame."""
    frames, hop = 125, 128  # 1 s
    amp = torch.ones(1, frames + 1, 1)
    hz, tau = torch.tensor([[[160.0], [50.0]]]), torch.tensor([[0.03]])
    y = sweep_synth(amp, hz, tau, sr=SR, hop=hop, frames=frames)[0].numpy()
    assert abs(y[0]) < 1e-6 and np.abs(y).max() == pytest.approx(1.0, abs=1e-3)  # from sine phase 0, loudness 1
    crossings = np.count_nonzero(np.diff(np.signbit(y[1:int(0.02 * SR)])))
    assert crossings / 2 / 0.02 > 110  # the first 20 ms: from 160 Hz, falling (a mean of 130 Hz)
    assert zero_crossing_hz(y[int(0.4 * SR):]) == pytest.approx(50.0, rel=0.02)  # then the body
    steady = sweep_synth(amp, torch.tensor([[[440.0], [440.0]]]), tau, sr=SR, hop=hop, frames=frames)[0].numpy()
    assert zero_crossing_hz(steady) == pytest.approx(440.0, rel=0.005)
    # a window of the hit is that part of the whole (frames [40, 90)), and a sweep above Nyquist is silent
    part = sweep_synth(amp[:, 40:], hz, tau, sr=SR, hop=hop, frames=50, phase_start=40)[0].numpy()
    np.testing.assert_allclose(part, y[40 * hop:90 * hop], atol=1e-5)
    high = sweep_synth(amp, torch.tensor([[[9000.0], [9000.0]]]), tau, sr=SR, hop=hop, frames=frames)
    assert float(high.abs().max()) == 0.0
    quieter = sweep_synth(amp * torch.linspace(1, 0, frames + 1).view(1, -1, 1), hz, tau, sr=SR, hop=hop,
                          frames=frames)[0].numpy()
    assert np.abs(quieter[-hop:]).max() < 0.02 < np.abs(quieter[:SR // 10]).max()


def test_a_kit_with_sweeps_starts_quiet_and_serves_them_by_both_backends():
    torch.manual_seed(0)
    generator = tiny(partials="log", noise_max=8.0, sweeps=3, variants=2)
    assert NoteGenerator(**generator.kwargs).sweeps == 3 and "sweeps" not in tiny().kwargs
    z = torch.zeros(1, generator.z_dim)
    with torch.no_grad():
        c = generator.controls(generator.embed(torch.tensor([0])), torch.tensor([36]), torch.tensor([100]), z)
    assert c["sweep_amp"].shape == (1, 40, 3) and c["sweep_hz"].shape == (1, 2, 3) and c["sweep_tau"].shape == (1, 3)
    assert float(c["sweep_amp"].max()) < 0.01  # quiet at the start, like the noise
    key = float(midi_to_hz(torch.tensor(36.0)))  # they start spread over the octaves around the key, falling
    ends = key * 2.0 ** torch.linspace(-1.0, 2.0, 3)
    torch.testing.assert_close(c["sweep_hz"][0, 1], ends, rtol=0.15, atol=0)  # the weights add a few per cent
    torch.testing.assert_close(c["sweep_hz"][0, 0], 2 * ends, rtol=0.15, atol=0)
    plain = {k: v for k, v in c.items() if not k.startswith("sweep")}
    with torch.no_grad():
        generator.head.bias[-3:] = 3.0  # sweeps audible
        c = generator.controls(generator.embed(torch.tensor([0])), torch.tensor([36]), torch.tensor([100]), z)
        loud = synthesize(c, sr=SR, hop=generator.hop, noise_fft=256, noise_seed=1)
        alone = synthesize({k: c[k] for k in plain}, sr=SR, hop=generator.hop, noise_fft=256, noise_seed=1)
    assert float((loud - alone).abs().max()) > 0.1
    card = {"sr": SR, "instruments": [{"name": "kit_test", "kit": "test", "family": "drums", "program": 0,
                                       "drum": True}]}
    eager = NoteSynth(generator, card, name="drums", backend="torch").note("kit_test", 36, 100, seed=3)
    onnx = NoteSynth(generator, card, name="drums", backend="onnxruntime").note("kit_test", 36, 100, seed=3)
    # the same within float32: a sweep's phase is its frequency times up to 0.3 s (hundreds of radians)
    np.testing.assert_allclose(eager, onnx, atol=2e-4 * np.abs(eager).max(), rtol=0)
    held = NoteSynth(generator, {**card, "instruments": [{**card["instruments"][0], "drum": False}]},
                     backend="torch").note("kit_test", 36, 100, duration=1.5, seed=3)  # held past its release
    assert np.isfinite(held).all() and len(held) > len(eager) / 2


def test_sweeps_and_the_noise_size_are_asked_for_by_name(tmp_path, capsys):
    from tunesmith.cli import main
    from tunesmith.data.corpora.samples import build_samples

    build_samples(tmp_path / "samples", sources=["hydrogen"], limit=30)
    common = ["train", "gan", "--data", str(tmp_path / "samples"), "--subset", "drums", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "bad"), "--sweeps", "99"]) == 2
    assert "--sweeps" in capsys.readouterr().err and not (tmp_path / "bad" / "latest.json").exists()
    assert main([*common, "--out", str(tmp_path / "run"), "--sweeps", "2", "--max-steps", "1", "--grid-every",
                 "1000", "--batch-size", "2"]) == 0
    card = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert card["kwargs"]["sweeps"] == 2 and card["kwargs"]["partials"] == "log"
    assert card["kwargs"]["noise_fft"] == 256  # the kit's default noise
    # the noise's FFT size likewise: one of three, a new run's choice
    assert main([*common, "--out", str(tmp_path / "bad"), "--noise-fft", "300"]) == 2
    assert main([*common, "--out", str(tmp_path / "run"), "--noise-fft", "512", "--resume", "--max-steps", "2"]) == 2
    assert "--noise-fft shapes a new run" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "fine"), "--noise-fft", "1024", "--max-steps", "1", "--grid-every",
                 "1000", "--batch-size", "2"]) == 0
    card = json.loads((tmp_path / "fine" / "latest.json").read_text())
    assert card["kwargs"]["noise_fft"] == 1024 and "sweeps" not in card["kwargs"]


def test_recordings_of_one_key_are_numbered_as_variants():
    hits = [hit("lmms", 36, None, 0), hit("lmms", 38, None, 0), hit("lmms", 36, None, 1),
            hit("kit", 36, 40, 0), hit("kit", 36, 90, 0), hit("lmms", 36, None, 2), hit("kit", 36, 90, 1)]
    numbers, counts = drum_variants(hits)
    assert numbers == [0, 0, 1, 0, 0, 2, 1]  # velocity layers are not variants
    assert counts == {"lmms": {"36": {"100": 3}}, "kit": {"36": {"40": 1, "90": 2}}}


def test_a_kit_plays_the_variant_its_seed_draws():
    generator = NoteGenerator(n_instruments=1, hidden=16, blocks=1, n_harmonics=8, n_frames=40, note_off=0.2,
                              noise_fft=256, variants=5)
    assert NoteGenerator(**generator.kwargs).variants == 5
    card = {"sr": SR, "instruments": [{"name": "kit_test", "kit": "test", "family": "drums", "program": 0,
                                       "drum": True, "variants": {"36": {"60": 1, "100": 5}}}]}
    synth = NoteSynth(generator, card, name="drums", backend="torch")
    emb = generator.instrument(torch.tensor([0]))  # without a variant
    drawn = set()
    for seed in range(12):
        c = synth._controls([("kit_test", 36, 100)], seed=seed)
        z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        matches = [v for v in range(5) if torch.allclose(c["amp"], generator.controls(
            emb + generator.variant(torch.tensor([v])), torch.tensor([36]), torch.tensor([100]), z)["amp"])]
        assert len(matches) == 1
        drawn.add(matches[0])
        once = synth._controls([("kit_test", 38, 100)], seed=seed)  # a key recorded once: always variant 0
        assert torch.allclose(once["amp"], generator.controls(emb + generator.variant(torch.tensor([0])),
                                                              torch.tensor([38]), torch.tensor([100]), z)["amp"])
    assert len(drawn) >= 3  # the seed spreads the hits over the recordings
    for seed in range(8):  # near the layer recorded once, every seed plays its one recording
        z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        soft = synth._controls([("kit_test", 36, 50)], seed=seed)
        assert torch.allclose(soft["amp"], generator.controls(emb + generator.variant(torch.tensor([0])),
                                                              torch.tensor([36]), torch.tensor([50]), z)["amp"])


TINY = {"hidden": 16, "blocks": 1, "n_harmonics": 8}


def tiny_run(data, out, *, steps: int = 2, model: dict | None = None, **options):
    from tunesmith.train.gan import GANTrainConfig, train_gan

    return train_gan(data, out, GANTrainConfig(
        max_steps=steps, eval_every=2, grid_every=100, batch_size=2, crop_frames=16, valid_items=4, subset="drums",
        family_weights={}, model=dict(model or TINY), **options), progress_bar=False, resume=out.exists())


@pytest.fixture(scope="module")
def lmms_samples(tmp_path_factory):
    """LMMS's drum samples: a collection with many kicks and snares under one key (no velocity layers)."""
    from tunesmith.data.corpora.samples import build_samples

    root = tmp_path_factory.mktemp("lmms") / "samples"
    build_samples(root, sources=["lmms"])
    return root


def test_a_collection_learns_each_recording_of_a_key_as_a_variant(lmms_samples, tmp_path):
    from collections import Counter

    from tunesmith.data.dataset import Dataset
    from tunesmith.train.gan import NoteData

    hits = [r for r in Dataset(lmms_samples).split("train") if r.labels.get("kind") == "drum_hit"
            and r.labels.get("gm_note") is not None]
    per_layer = Counter((int(r.labels["gm_note"]), r.labels.get("velocity") or 100) for r in hits)
    repeated = {key for (key, _), n in per_layer.items() if n > 1}
    assert repeated, "LMMS has several kicks under one key"
    card = tiny_run(lmms_samples, tmp_path / "run")
    (kit,) = card["instruments"]
    assert kit["variants"] == {str(key): {str(v): n for (k, v), n in per_layer.items() if k == key}
                               for key in repeated}
    assert card["kwargs"]["variants"] == max(per_layer.values())
    train, valid = NoteData(lmms_samples, "train", "drums"), NoteData(lmms_samples, "valid", "drums")
    assert np.array_equal(valid.variant, train.variant[::10])
    synth = NoteSynth.load(tmp_path / "run")
    assert synth.generator.variant.num_embeddings == card["kwargs"]["variants"]
    key = max(repeated, key=lambda k: per_layer[(k, 100)])
    assert synth.variant_count(kit["name"], key, 64) == per_layer[(key, 100)]
    hits_by_seed = {seed: synth.note(kit["name"], key, velocity=100, seed=seed) for seed in range(2)}
    assert not np.array_equal(hits_by_seed[0][:2000], hits_by_seed[1][:2000])


def test_a_run_from_before_the_drum_recipe_resumes_as_it_was(tmp_path):
    """A drums run whose card predates the recipe (no partials, noise cap, variants or loss weights) goes on with
    the model it was built with, and its metrics keep their own columns."""
    import csv
    import json

    from tunesmith.data.corpora.samples import build_samples

    build_samples(tmp_path / "samples", sources=["hydrogen"], limit=60)
    run = tmp_path / "run"
    tiny_run(tmp_path / "samples", run, model={**TINY, "partials": "harmonic", "noise_max": 1.0, "sweeps": 0},
             mel_weight=0.0, envelope_weight=0.0)
    card = json.loads((run / "latest.json").read_text())
    assert "variants" not in card["kwargs"]  # this data has one recording per key and layer
    for part in (card["kwargs"], card["training"]["config"]["model"]):
        for option in ("partials", "noise_max", "sweeps"):
            part.pop(option, None)
    for name in ("mel_weight", "envelope_weight"):
        card["training"]["config"].pop(name)
    (run / "latest.json").write_text(json.dumps(card))
    with open(run / "metrics.csv", newline="") as handle:
        rows = [{k: v for k, v in row.items() if k not in ("mel", "envelope")} for row in csv.DictReader(handle)]
    with open(run / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    resumed = tiny_run(tmp_path / "samples", run)  # two more steps
    assert resumed["training"]["steps"] == 4 and not {"partials", "sweeps"} & set(resumed["kwargs"])
    config = resumed["training"]["config"]
    assert config["mel_weight"] == 0.0 and config["envelope_weight"] == 0.0
    with open(run / "metrics.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert last["step"] == "4" and float(last["valid_spec"]) > 0 and None not in last  # no cells spilled over


class RecordingSynth(NoteSynth):
    """The real NoteSynth, noting which variant each rendered hit asked for."""

    asked: list

    def note(self, instrument, pitch, *args, variant=None, **kwargs):
        self.asked.append((pitch, variant))
        return super().note(instrument, pitch, *args, variant=variant, **kwargs)


def test_a_drum_track_plays_a_keys_recordings_in_turn():
    from tunesmith.compose.drumkit import DrumKit
    from tunesmith.symbolic.score import Note, Part, Score

    generator = NoteGenerator(n_instruments=1, hidden=16, blocks=1, n_harmonics=8, n_frames=40, note_off=0.2,
                              noise_fft=256, variants=3)
    card = {"sr": SR, "instruments": [{"name": "kit_test", "kit": "test", "family": "drums", "program": 0,
                                       "drum": True, "variants": {"36": {"100": 3}}}]}
    synth = RecordingSynth(generator, card, name="drums", backend="torch")
    synth.asked = []
    kicks = Score(parts=[Part("drums", [Note(36, float(beat), 0.25, 100) for beat in range(7)]
                              + [Note(38, 7.5, 0.25, 100)], is_drum=True)], tempo=120.0)
    played = DrumKit(synth).perform(kicks, seed=5, humanize=0.0)
    assert len(played.hits) == 8 and played.audio.size
    assert sorted(v for key, v in synth.asked if key == 36) == [0, 1, 2]  # each recording rendered once, reused
    assert [v for key, v in synth.asked if key == 38] == [0]  # the snare, recorded once
    starts = [round(start * SR) for start, key, _ in played.hits if key == 36]
    hits = [played.audio[at:at + 4000] for at in starts]
    assert all(np.array_equal(hits[i], hits[i + 3]) for i in range(4))  # in turn: every third kick the same
    assert not np.array_equal(hits[1], hits[2]) and not np.array_equal(hits[2], hits[3])
    with pytest.raises(ParameterError, match=r"variant must be 0\.\.2"):
        synth.note("kit_test", 36, velocity=100, seed=0, variant=3)
