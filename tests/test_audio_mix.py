"""tunesmith.audio.mix and its limiter: levels, pans, and a loudness target under a true-peak ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import sine
from tunesmith.audio import loudness, peak_db
from tunesmith.audio.limiter import LOOKAHEAD, MAX_REDUCTION_DB, limit
from tunesmith.audio.mix import MixSetting, mix
from tunesmith.errors import ParameterError

SR = 44_100
SECONDS = 8.0


def _hits(seconds: float = SECONDS, every: float = 0.25, level: float = 0.5, seed: int = 0) -> np.ndarray:
    """A drum-like stereo stem: short decaying noise bursts (high crest factor)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    hit = rng.standard_normal(int(0.03 * SR)) * np.exp(-np.arange(int(0.03 * SR)) / (0.004 * SR))
    y = np.zeros(n)
    for start in range(0, n - len(hit), int(every * SR)):
        y[start:start + len(hit)] += hit
    y *= level / np.abs(y).max()
    return np.stack([y, 0.9 * y]).astype(np.float32)


def _pad(seconds: float = SECONDS, amplitude: float = 0.05) -> np.ndarray:
    chord = sum(sine(f, sr=SR, seconds=seconds, amplitude=amplitude) for f in (220.0, 277.2, 329.6))
    return np.stack([chord, chord]).astype(np.float32)


def _db(x: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(x)


def test_spiky_mix_reaches_the_target_under_the_ceiling():
    """A static gain stops at the ceiling well below -14 LUFS; the limiter gets there with peaks under -1 dBTP."""
    y = _hits() + _pad()
    static = mix({"all": y}, {}, sr=SR, max_reduction_db=0.0)
    assert loudness(static.audio, sr=SR) < -17.0  # what the mix used to be: the peaks win
    limited = limit(y, sr=SR, target_lufs=-14.0)
    out = y * limited.envelope
    assert loudness(out, sr=SR) == pytest.approx(-14.0, abs=0.1)
    assert peak_db(out, true_peak=True) <= -1.0
    assert limited.loudness_lufs == pytest.approx(loudness(out, sr=SR), abs=0.05)
    assert limited.true_peak_db == pytest.approx(peak_db(out, true_peak=True), abs=0.1)
    assert 0.0 < limited.max_reduction_db <= MAX_REDUCTION_DB and not limited.notes


def test_stems_still_add_up_to_the_limited_mix():
    stems = {"drums": _hits(), "pad": _pad(), "bass": 0.5 * _pad(amplitude=0.1)[:, : int(6 * SR)]}
    settings = {"drums": MixSetting(level_lufs=-24.0), "pad": MixSetting(level_lufs=-18.0, pan=-0.4),
                "bass": MixSetting(gain_db=-3.0, pan=0.3)}
    mixed, placed, report = mix(stems, settings, sr=SR)
    assert report is not None and report.max_reduction_db > 1.0  # the limiter was at work
    assert set(placed) == set(stems) and all(s.shape == mixed.shape for s in placed.values())
    assert np.abs(sum(placed.values()) - mixed).max() < 1e-5
    assert loudness(mixed, sr=SR) == pytest.approx(-14.0, abs=0.1)
    assert peak_db(mixed, true_peak=True) <= -1.0
    # as summed: no target, no limiter, no report
    summed, alone, none = mix(stems, settings, sr=SR, target_lufs=None)
    assert none is None and np.abs(sum(alone.values()) - summed).max() < 1e-5


def test_in_place_mixing_reuses_the_stems_and_mixes_the_same():
    stems = {"drums": _hits(), "pad": _pad(), "bass": 0.5 * _pad(amplitude=0.1)[:, : int(6 * SR)]}
    settings = {"drums": MixSetting(level_lufs=-24.0), "pad": MixSetting(level_lufs=-18.0, pan=-0.4),
                "bass": MixSetting(gain_db=-3.0, pan=0.3)}
    originals = {name: y.copy() for name, y in stems.items()}
    copied = mix(stems, settings, sr=SR)
    assert all(np.array_equal(stems[name], originals[name]) for name in stems)  # by default the input is kept
    given = {name: y.copy() for name, y in stems.items()}
    reused = mix(given, settings, sr=SR, in_place=True)
    assert reused.stems["drums"] is given["drums"] and reused.stems["pad"] is given["pad"]
    assert reused.stems["bass"] is not given["bass"]  # shorter than the mix: padded into a new array
    assert np.array_equal(reused.audio, copied.audio)
    assert all(np.array_equal(reused.stems[name], copied.stems[name]) for name in stems)


def test_gain_reduction_is_bounded_and_a_short_mix_says_so():
    """One enormous spike over a quiet bed: more than the allowed limiting would be needed, so the mix stays
    quieter than the target, under the ceiling, and the notes say why."""
    y = _pad(amplitude=0.01)
    y[:, int(3 * SR)] = 0.99
    limited = limit(y, sr=SR, target_lufs=-14.0, max_reduction_db=6.0)
    out = y * limited.envelope
    depth = _db(limited.envelope.max() / limited.envelope.min())
    assert depth <= 6.0 + 1e-3 and limited.max_reduction_db == pytest.approx(6.0, abs=1e-6)
    assert peak_db(out, true_peak=True) <= -1.0
    assert loudness(out, sr=SR) < -15.0 and limited.loudness_lufs == pytest.approx(loudness(out, sr=SR), abs=0.05)
    assert limited.notes and "6 dB" in limited.notes[0]
    assert "notes" in limited.as_dict()


def test_a_mix_that_needs_no_limiting_gets_one_constant_gain():
    y = _pad(amplitude=0.02)
    limited = limit(y, sr=SR, target_lufs=-14.0)
    assert limited.max_reduction_db == 0.0 and np.ptp(limited.envelope) == 0.0
    assert loudness(y * limited.envelope, sr=SR) == pytest.approx(-14.0, abs=0.05)


def test_a_sparse_peak_is_limited_only_around_it():
    """No pumping: the gain is flat until the look-ahead before a lone peak, complete when it arrives, smooth, and
    back to the static gain within 0.7 s."""
    y = _pad(amplitude=0.03)
    at = int(4 * SR)
    y[:, at:at + 40] += np.float32(0.9) * np.hanning(40).astype(np.float32)
    limited = limit(y, sr=SR, target_lufs=-14.0)
    envelope = _db(limited.envelope.astype(np.float64)) - limited.gain_db
    assert limited.max_reduction_db > 3.0
    before = envelope[: at - int(2 * LOOKAHEAD * SR)]
    assert np.abs(before).max() < 1e-4  # nothing happens ahead of the look-ahead
    peak = at + int(np.argmax(np.abs(y[0, at:at + 40])))
    assert envelope[peak] <= -(limited.max_reduction_db - 1e-3)  # the attack is complete at the peak
    assert np.abs(envelope[peak + int(0.7 * SR):]).max() < 0.05  # released
    assert np.abs(np.diff(envelope)).max() < 0.1  # dB per sample: a ramp, never a step
    assert peak_db(y * limited.envelope, true_peak=True) <= -1.0


def test_silence_and_bad_settings():
    silent = np.zeros((2, SR), np.float32)
    limited = limit(silent, sr=SR, target_lufs=-14.0)
    assert np.all(limited.envelope == 1.0) and limited.gain_db == 0.0
    with pytest.raises(ParameterError):
        limit(_pad(), sr=SR, target_lufs=-14.0, ceiling_db=1.0)
    with pytest.raises(ParameterError):
        limit(_pad(), sr=SR, target_lufs=-14.0, max_reduction_db=-1.0)


@pytest.mark.parametrize("sr", [32_000, 48_000])
def test_other_rates(sr):
    y = np.stack([np.interp(np.arange(int(SECONDS * sr)) * SR / sr, np.arange(int(SECONDS * SR)), ch)
                  for ch in _hits() + _pad()]).astype(np.float32)
    limited = limit(y, sr=sr, target_lufs=-14.0)
    out = y * limited.envelope
    assert loudness(out, sr=sr) == pytest.approx(-14.0, abs=0.1) and peak_db(out, true_peak=True) <= -1.0



@pytest.mark.parametrize(("stem", "level"), [(_hits, -18.0), (_pad, -24.0)])
def test_a_stem_is_brought_to_its_level(stem, level):
    placed = mix({"it": stem(), "silence": np.zeros((2, 100), np.float32)}, {"it": MixSetting(level_lufs=level)},
                 sr=SR, target_lufs=None).stems
    assert loudness(placed["it"], sr=SR) == pytest.approx(level, abs=0.01)
    assert placed["silence"].shape == placed["it"].shape and not placed["silence"].any()
