"""The neural instrument's serving paths and fast DSP: the frame network in PyTorch eager vs exported to ONNX and
run by ONNX Runtime (same audio), the backend choice (argument, environment, card, shipped .onnx file), and the
v2 generator's pieces checked against plain references (coarse frames, partials, the overlap-add inverse STFT)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from tunesmith.checkpoints import save_checkpoint
from tunesmith.compose.notesynth import NoteSynth
from tunesmith.errors import ParameterError
from tunesmith.models.gan import NoteGenerator, harmonic_synth, overlap_add_istft, synthesize

V2 = {"hidden": 24, "blocks": 2, "n_harmonics": 16, "embed_dim": 8, "z_dim": 4, "frame_stride": 2,
      "sub_partials": 4, "noise_fft": 256}
INSTRUMENTS = [{"name": "violin", "family": "string", "program": 40, "drum": False},
               {"name": "flute", "family": "flute", "program": 73, "drum": False}]


@pytest.fixture(scope="module")
def generator() -> NoteGenerator:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = NoteGenerator(n_instruments=len(INSTRUMENTS), **V2)
    with torch.no_grad():  # a random but lively network: the head's outputs vary with frame and condition
        for p in g.parameters():
            p.normal_(0.0, 0.3)
    return g.eval()


def card_of(g: NoteGenerator, **extra) -> dict:
    return {"family": "gan", "kwargs": g.kwargs, "instruments": INSTRUMENTS, "sr": g.sr, **extra}


def test_onnx_and_eager_give_the_same_notes(generator):
    eager = NoteSynth(generator, card_of(generator), backend="torch")
    onnx = NoteSynth(generator, card_of(generator), backend="onnxruntime")
    for kwargs in ({"duration": 1.0}, {"duration": 3.2}, {"morph_to": "flute", "morph": 0.3}):
        a = eager.note("violin", 64, 90, seed=5, **kwargs)
        b = onnx.note("violin", 64, 90, seed=5, **kwargs)
        assert a.shape == b.shape
        assert np.abs(a).max() > 1e-3  # not silence
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_onnx_controls_match_at_batch_64(generator):
    synth = NoteSynth(generator, card_of(generator), backend="torch")
    emb = generator.embed(torch.arange(64) % 2).detach()
    pitch, vel = torch.randint(40, 90, (64,)), torch.randint(1, 128, (64,))
    z = torch.randn(64, generator.z_dim)
    eager = synth.run_controls(emb, pitch, vel, z)
    synth.backend = "onnxruntime"
    onnx = synth.run_controls(emb, pitch, vel, z)
    for key in ("amp", "harm", "noise", "f0"):
        torch.testing.assert_close(onnx[key], eager[key], atol=1e-5, rtol=1e-4)


def test_backend_choice(generator, tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "best", generator, card_of(generator, serving={"backend": "onnxruntime"}))
    assert NoteSynth.load(tmp_path).backend == "onnxruntime"  # the card's choice
    assert NoteSynth.load(tmp_path, backend="torch").backend == "torch"
    monkeypatch.setenv("TUNESMITH_GAN_BACKEND", "torch")
    assert NoteSynth.load(tmp_path).backend == "torch"
    monkeypatch.setenv("TUNESMITH_GAN_BACKEND", "tensorflow")
    with pytest.raises(ParameterError, match="onnxruntime") as caught:
        NoteSynth.load(tmp_path)
    assert caught.value.field == "backend"


def test_shipped_onnx_file_is_used_only_when_its_hash_matches(generator, tmp_path):
    synth = NoteSynth(generator, card_of(generator), backend="onnxruntime")
    model = synth.onnx_model()  # a fresh export
    (tmp_path / "best.onnx").write_bytes(b"not an onnx model")
    save_checkpoint(tmp_path, "best", generator,
                    card_of(generator, onnx={"sha256": hashlib.sha256(model).hexdigest()}))
    stale = NoteSynth.load(tmp_path, backend="onnxruntime")
    assert stale.onnx_model() != b"not an onnx model"  # hash mismatch: exported again from the weights
    (tmp_path / "best.onnx").write_bytes(model)
    shipped = NoteSynth.load(tmp_path, backend="onnxruntime")
    assert shipped.onnx_model() == model
    np.testing.assert_allclose(shipped.note("flute", 72, seed=1), synth.note("flute", 72, seed=1), atol=1e-5)


def test_coarse_frame_network_windows_equal_the_whole_note(generator):
    g = generator
    args = (g.embed(torch.tensor([0, 1])), torch.tensor([50, 80]), torch.tensor([30, 120]), torch.randn(2, g.z_dim))
    with torch.no_grad():
        whole = g.controls(*args)
        assert whole["amp"].shape == (2, g.n_frames) and whole["harm"].shape == (2, g.n_frames, g.n_partials)
        for first, last in ((0, 64), (41, 106), (185, 250), (7, 8)):
            part = g.controls(*args, first=first, last=last)
            for key in ("amp", "harm", "noise"):
                torch.testing.assert_close(part[key], whole[key][:, first:last], atol=1e-6, rtol=1e-5)


def test_partials_are_the_asked_sinusoids():
    """Constant amplitudes: the synth must equal a plain sum of sines at ratio * f0 (half-integer ones too),
    and partials above Nyquist must be left out."""
    sr, hop, frames, f0 = 16000, 128, 20, 440.0
    ratios = torch.tensor([1.0, 2.0, 3.0, 40.0, 0.5, 1.5])  # 40 * 440 Hz is above Nyquist
    weights = torch.tensor([0.5, 0.2, 0.1, 0.3, 0.15, 0.05])
    phases = torch.tensor([[0.3, 1.0, 2.0, 0.0, 0.7, 4.0]])
    y = harmonic_synth(torch.tensor([[f0]]), torch.ones(1, frames + 1), weights.expand(1, frames + 1, 6), sr=sr,
                       hop=hop, frames=frames, phase0=phases, ratios=ratios)
    n = np.arange(frames * hop)
    expected = sum(float(w) * np.sin(2 * math.pi * float(r) * f0 * n / sr + float(p))
                   for r, w, p in zip(ratios, weights, phases[0], strict=True) if r * f0 < sr / 2 - 200)
    np.testing.assert_allclose(y[0].numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("n_fft", [256, 512])
def test_overlap_add_istft_equals_torch_istft(n_fft):
    window = torch.hann_window(n_fft)
    x = torch.rand(2, 9000, generator=torch.Generator().manual_seed(n_fft)) * 2 - 1
    spec = torch.stft(x, n_fft, 128, window=window, center=True, return_complex=True)
    spec = spec * torch.rand(2, n_fft // 2 + 1, spec.shape[-1])
    expected = torch.istft(spec, n_fft, 128, window=window, center=True, length=9000)
    torch.testing.assert_close(overlap_add_istft(spec, n_fft, 128, window, length=9000), expected,
                               atol=1e-5, rtol=1e-5)


def test_the_shipped_card_names_a_serving_backend_its_onnx_file_matches():
    from tunesmith.checkpoints import WEIGHTS_DIR

    card = json.loads((WEIGHTS_DIR / "notes.json").read_text())
    if "serving" not in card:
        pytest.skip("the shipped notes model predates the ONNX serving path")
    assert card["serving"]["backend"] in ("torch", "onnxruntime")
    onnx = WEIGHTS_DIR / "notes.onnx"
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == card["onnx"]["sha256"]
    synth = NoteSynth.load("notes")
    assert synth.backend == card["serving"]["backend"]
    eager = NoteSynth.load("notes", backend="torch")
    np.testing.assert_allclose(NoteSynth.load("notes", backend="onnxruntime").note("cello", 48, seed=2),
                               eager.note("cello", 48, seed=2), atol=1e-5)


def test_a_batch_of_low_and_high_notes_sounds_like_each_note_alone(generator):
    """The synth skips partials above Nyquist for every note of the batch, never one a lower note still needs."""
    g = generator
    args = (g.embed(torch.tensor([0, 1])), torch.tensor([30, 100]), torch.tensor([100, 100]), torch.randn(2, g.z_dim))
    with torch.no_grad():
        c = g.controls(*args)
        c["noise"] = torch.zeros_like(c["noise"])  # the harmonic part only (the noise is drawn per call)
        together = synthesize(c, sr=g.sr, hop=g.hop, noise_fft=g.noise_fft, ratios=g.ratios)
        for row in range(2):
            alone = synthesize({k: v[row:row + 1] for k, v in c.items()}, sr=g.sr, hop=g.hop, noise_fft=g.noise_fft,
                               ratios=g.ratios)
            assert alone.abs().max() > 1e-3
            torch.testing.assert_close(together[row], alone[0], atol=1e-5, rtol=1e-4)


def test_synth_caches_filled_in_inference_mode_also_serve_training(generator):
    """The pitch-only tables are cached; a note made under inference_mode must not break a training step."""
    g = generator
    args = (torch.tensor([1]), torch.tensor([67]), torch.tensor([80]), torch.zeros(1, g.z_dim))
    with torch.inference_mode():
        g(*args, noise_seed=1, start=0, frames=16)
    train = NoteGenerator(n_instruments=len(INSTRUMENTS), **V2)
    train.load_state_dict(g.state_dict())
    loss = train(*args, noise_seed=1, start=0, frames=16).pow(2).mean()
    loss.backward()
    assert train.head.weight.grad is not None and torch.isfinite(train.head.weight.grad).all()
