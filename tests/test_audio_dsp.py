"""tunesmith.audio.dsp: resampling, channels, trimming, segmentation, loudness and peaks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import dominant_frequency, sine
from tunesmith.audio import (
    ensure_channels,
    loudness,
    normalize_loudness,
    peak_db,
    resample,
    segment,
    to_mono,
    trim_silence,
    validate_audio,
)
from tunesmith.errors import ParameterError

SR = 16_000


# --------------------------------------------------------------------------- resampling and channels


@pytest.mark.parametrize(("orig", "target", "freq"), [(44_100, 16_000, 1234.0), (16_000, 22_050, 3000.0)])
def test_resampled_sine_keeps_its_frequency(orig, target, freq):
    y = sine(freq, sr=orig, seconds=1.0)
    z = resample(y, orig_sr=orig, target_sr=target)
    assert z.dtype == np.float32
    assert len(z) == target
    assert dominant_frequency(z, target) == pytest.approx(freq, abs=1.0)


def test_resample_multichannel_keeps_channels_apart():
    y = sine(500.0, sr=44_100, channels=2)  # 500 Hz left, 1000 Hz right
    z = resample(y, orig_sr=44_100, target_sr=16_000)
    assert z.shape == (2, 16_000)
    assert dominant_frequency(z[0], 16_000) == pytest.approx(500.0, abs=1.0)
    assert dominant_frequency(z[1], 16_000) == pytest.approx(1000.0, abs=1.0)


def test_resample_rejects_bad_arguments():
    y = sine(sr=SR)
    with pytest.raises(ParameterError, match="quality"):
        resample(y, orig_sr=SR, target_sr=8_000, quality="best")
    with pytest.raises(ParameterError, match="target_sr"):
        resample(y, orig_sr=SR, target_sr=0)


def test_channels():
    y = sine(sr=SR, channels=2)
    np.testing.assert_allclose(to_mono(y), y.mean(axis=0), atol=1e-7)
    mono = sine(sr=SR)
    assert to_mono(mono) is mono
    wide = ensure_channels(mono, 2)
    assert wide.shape == (2, SR) and np.array_equal(wide[0], wide[1])
    assert ensure_channels(y, 1).shape == (SR,)
    with pytest.raises(ParameterError, match="6 channels"):
        ensure_channels(np.zeros((6, 100), np.float32), 2)


def test_validate_audio_rejects_bad_arrays():
    with pytest.raises(ParameterError, match="dtype"):
        validate_audio(np.zeros(10, np.int16))
    with pytest.raises(ParameterError, match="NaN"):
        validate_audio(np.array([0.0, np.inf], np.float32))
    with pytest.raises(ParameterError, match="transpose"):
        validate_audio(np.zeros((44_100, 2), np.float32))
    with pytest.raises(ParameterError, match="shape"):
        validate_audio(np.zeros((2, 2, 2), np.float32))


# --------------------------------------------------------------------------- trimming


def test_trim_removes_silent_padding_within_a_frame():
    tone = sine(440.0, sr=SR, seconds=1.0)
    lead, tail = 8_000, 11_000
    y = np.concatenate([np.zeros(lead, np.float32), tone, np.zeros(tail, np.float32)])
    kept, (start, stop) = trim_silence(y, sr=SR, frame_length=2048, hop_length=512)
    assert start <= lead < start + 2048
    assert stop - 2048 < lead + len(tone) <= stop
    np.testing.assert_array_equal(kept, y[start:stop])


def test_trim_stereo_and_all_silent():
    left = np.concatenate([np.zeros(4_000), sine(sr=SR, seconds=0.5)]).astype(np.float32)
    y = np.stack([left, np.zeros_like(left)])
    kept, (start, stop) = trim_silence(y, sr=SR)
    assert kept.shape == (2, stop - start)
    assert start > 0 and stop == y.shape[1]
    empty, span = trim_silence(np.zeros(SR, np.float32), sr=SR)
    assert empty.shape == (0,) and span == (0, 0)
    quiet = np.full(SR, 10 ** (-70 / 20), np.float32)  # -70 dBFS: below the -60 dB default
    assert trim_silence(quiet, sr=SR)[1] == (0, 0)


# --------------------------------------------------------------------------- segmentation


def test_zero_policy_covers_every_sample():
    y = np.arange(10_500, dtype=np.float32) / 10_500
    seg = segment(y, sr=1_000, length=2.0)
    assert seg.frames.shape == (6, 2_000)
    np.testing.assert_array_equal(seg.starts, np.arange(6) * 2_000)
    expected = np.concatenate([y, np.zeros(1_500, np.float32)])
    np.testing.assert_array_equal(seg.frames.reshape(-1), expected)


def test_drop_policy_drops_the_partial_tail():
    y = np.arange(10_500, dtype=np.float32)
    seg = segment(y, sr=1_000, length=2.0, pad="drop")
    assert seg.frames.shape == (5, 2_000)
    np.testing.assert_array_equal(seg.frames.reshape(-1), y[:10_000])


def test_reflect_policy_mirrors_the_end():
    y = np.arange(2_500, dtype=np.float32)
    seg = segment(y, sr=1_000, length=1.0, pad="reflect")
    assert seg.frames.shape == (3, 1_000)
    np.testing.assert_array_equal(seg.frames[-1][:500], y[2_000:])
    np.testing.assert_array_equal(seg.frames[-1][500:], y[-2:-502:-1])


def test_overlapping_segments_and_stereo():
    y = sine(sr=SR, seconds=5.3, channels=2)
    seg = segment(y, sr=SR, length=2.0, hop=1.0)
    assert seg.frames.shape == (5, 2, 2 * SR)  # starts 0..4 s; the one at 4 s reaches past 5.3 s
    for frame, start in zip(seg.frames, seg.starts, strict=True):
        piece = y[:, start : start + 2 * SR]
        np.testing.assert_array_equal(frame[:, : piece.shape[1]], piece)
    assert seg.starts[-1] + 2 * SR >= y.shape[1] > seg.starts[-2] + 2 * SR


def test_short_and_empty_signals():
    short = np.ones(300, np.float32)
    zero = segment(short, sr=1_000, length=1.0)
    assert zero.frames.shape == (1, 1_000)
    assert zero.frames[0, :300].sum() == 300 and not zero.frames[0, 300:].any()
    assert segment(short, sr=1_000, length=1.0, pad="drop").frames.shape == (0, 1_000)
    assert segment(np.zeros(0, np.float32), sr=1_000, length=1.0).frames.shape == (0, 1_000)
    with pytest.raises(ParameterError, match="pad"):
        segment(short, sr=1_000, length=1.0, pad="wrap")
    with pytest.raises(ParameterError, match="length"):
        segment(short, sr=1_000, length=0.0)


# --------------------------------------------------------------------------- loudness and peaks


def test_full_scale_sine_reads_minus_three_lufs():
    # BS.1770: a 0 dBFS 997 Hz sine in one channel measures -3.01 LKFS
    full_scale = sine(997.0, sr=48_000, seconds=3.0, amplitude=1.0)
    assert loudness(full_scale, sr=48_000) == pytest.approx(-3.01, abs=0.05)
    assert loudness(np.zeros(SR, np.float32), sr=SR) == float("-inf")


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    chord = sum(sine(f, sr=SR, seconds=3.0, amplitude=0.1) for f in (220.0, 277.0, 330.0))
    return {
        "quiet sine": sine(1000.0, sr=SR, seconds=3.0, amplitude=0.01),
        "noise": noise,
        "stereo chord": np.stack([chord, 0.5 * chord + noise]).astype(np.float32),
        "short clip": sine(500.0, sr=SR, seconds=0.2, amplitude=0.05),
    }


@pytest.mark.parametrize("name", list(_signals()))
@pytest.mark.parametrize("target", [-23.0, -16.0])
def test_normalize_lands_on_target(name, target):
    y = _signals()[name]
    out = normalize_loudness(y, sr=SR, target_lufs=target, peak_ceiling_db=None)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert loudness(out, sr=SR) == pytest.approx(target, abs=0.5)


def test_peak_ceiling_holds_and_loudness_lands_below_target():
    rng = np.random.default_rng(2)
    clicks = np.zeros(3 * SR, np.float32)
    clicks[rng.integers(0, len(clicks), 30)] = 0.9  # high crest factor: the ceiling must win
    clicks += (0.001 * rng.standard_normal(len(clicks))).astype(np.float32)
    out = normalize_loudness(clicks, sr=SR, target_lufs=-10.0, peak_ceiling_db=-1.0)
    assert peak_db(out, true_peak=True) == pytest.approx(-1.0, abs=0.01)
    assert loudness(out, sr=SR) < -10.5


def _pyloudnorm(y: np.ndarray, sr: int) -> float:
    import pyloudnorm

    n = y.shape[-1]
    block = 0.4 if n >= 0.4 * sr else (n - 0.5) / sr
    return pyloudnorm.Meter(sr, block_size=block).integrated_loudness(y.T if y.ndim == 2 else y)


@pytest.mark.parametrize("sr", [SR, 44_100])
def test_loudness_agrees_with_pyloudnorm(sr):
    """The vectorised meter measures what pyloudnorm's loop does: K-weighting, block placement, both gates."""
    rng = np.random.default_rng(3)
    burst = np.concatenate([0.3 * rng.standard_normal(sr), 1e-4 * rng.standard_normal(3 * sr)])  # relative gate
    gap = np.concatenate([0.1 * rng.standard_normal(sr), np.zeros(2 * sr), 0.1 * rng.standard_normal(sr)])
    for y in (*_signals().values(), burst, gap, 0.1 * rng.standard_normal((5, 2 * sr)), np.zeros(3 * sr) + 1e-9):
        y = np.asarray(y, np.float32)
        assert loudness(y, sr=sr) == pytest.approx(_pyloudnorm(y, sr), abs=1e-4)


def test_coarse_power_curve_measures_nearly_the_same():
    """A power curve summed over hops (the limiter's) measures within a hundredth of a LU of the full one."""
    from tunesmith.audio.dsp import integrated_loudness, k_weighted_power

    y = _signals()["stereo chord"] * np.linspace(0.1, 1.0, 3 * SR, dtype=np.float32)
    power = k_weighted_power(y, sr=SR)
    hop = 16
    coarse = np.add.reduceat(power, np.arange(0, len(power), hop))
    assert integrated_loudness(coarse, sr=SR, hop=hop, length=len(power)) == pytest.approx(loudness(y, sr=SR),
                                                                                           abs=0.01)


@pytest.mark.parametrize(("sr", "n", "channels"), [
    (44100, 3 * 65536 + 12345, 2),  # not a whole number of chunks or hops
    (44100, 81585, 2),  # 18.5 hops: the last block ends with a half hop
    (48000, 4 * 65536, 1),  # mono, a whole number of chunks
    (22050, 102532, 2),
    (8000, 85200, 2),  # 106.5 hops
])
def test_a_long_signal_is_measured_in_chunks_as_a_whole(monkeypatch, sr, n, channels):
    """k_weighted_sums filters a chunk at a time, carrying the filters' state: its sums are the per-sample power's,
    and a long signal (with silence, a quiet stretch and its loudest part at the end) measures as pyloudnorm
    measures it, through the chunks."""
    from tunesmith.audio import dsp
    from tunesmith.audio.dsp import k_weighted_power, k_weighted_sums

    rng = np.random.default_rng(3)
    y = (0.1 * rng.standard_normal((channels, n))).astype(np.float32)
    y[:, n // 3:n // 2] = 0.0
    y[:, :n // 5] *= np.float32(0.01)
    y[:, -sr // 20:] *= np.float32(8.0)
    hop = sr // 10
    sums = k_weighted_sums(y, sr=sr, hop=hop)
    power = k_weighted_power(y, sr=sr)
    np.testing.assert_allclose(sums, np.add.reduceat(power.astype(np.float64), np.arange(0, n, hop)), rtol=1e-5)
    chunked, in_chunks = [], dsp._k_weighted_sums
    monkeypatch.setattr(dsp, "_k_weighted_sums", lambda *a, **k: chunked.append(1) or in_chunks(*a, **k))
    signal = y[0] if channels == 1 else y
    assert loudness(signal, sr=sr) == pytest.approx(_pyloudnorm(signal, sr), abs=1e-4)
    assert chunked == [1]


def test_silence_is_returned_unchanged():
    y = np.zeros(SR, np.float32)
    assert np.array_equal(normalize_loudness(y, sr=SR), y)


def test_peaks():
    assert peak_db(sine(sr=SR, amplitude=0.5)) == pytest.approx(-6.02, abs=0.01)
    # fs/4 at 45 degrees: samples sit at +-0.707 but the waveform between them reaches 1.0
    t = np.arange(SR) / SR
    y = np.sin(2 * np.pi * (SR / 4) * t + np.pi / 4).astype(np.float32)
    assert peak_db(y) == pytest.approx(-3.01, abs=0.01)
    assert peak_db(y, true_peak=True) == pytest.approx(0.0, abs=0.2)
    assert peak_db(np.zeros(10, np.float32), true_peak=True) == float("-inf")
