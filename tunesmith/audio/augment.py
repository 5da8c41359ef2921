"""What a real recording does to a clean render: a room, an EQ, a compressor, lossy coding, noise and a level.

:func:`random_chain` draws one recording chain from a generator; :func:`apply_chain` runs it on mono float32
audio and returns the processed audio (the chain's settings are plain numbers, stored on dataset records).
Every stage is cheap numpy/scipy (the room is a synthetic impulse response convolved by FFT); MP3 coding goes
through libsndfile's LAME encoder and mpg123 decoder in memory (no external program).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import signal

from tunesmith.errors import DependencyError, ParameterError

MP3_BITRATE_LEVELS = (0.55, 0.95)  # libsndfile's compression level: 0 = best quality, 1 = smallest file


@dataclass(frozen=True)
class Chain:
    """One recording chain; ``None`` (or 0 for the room) leaves a stage out."""

    room_seconds: float = 0.0  # RT60 of the synthetic room (0: dry)
    room_wet: float = 0.0  # share of reverberant sound in the mix (0..1)
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    tilt_db: float = 0.0  # a peaking EQ's gain ...
    tilt_hz: float = 1000.0  # ... at this frequency
    compress_ratio: float | None = None
    compress_threshold_db: float = -20.0
    mp3_level: float | None = None  # libsndfile's MP3 compression level (0..1), None: no lossy coding
    noise_snr_db: float | None = None  # pink noise this far below the signal's RMS
    gain_db: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def random_chain(rng: np.random.Generator, *, strength: float = 1.0) -> Chain:
    """A chain drawn at random: each stage is on with a probability that grows with ``strength`` (0..1)."""
    if not 0.0 <= strength <= 1.0:
        raise ParameterError(f"strength must be in [0, 1], got {strength}", field="strength")

    def on(p: float) -> bool:
        return bool(rng.random() < p * strength)

    room = on(0.7)
    return Chain(
        room_seconds=float(rng.uniform(0.2, 1.8)) if room else 0.0,
        room_wet=float(rng.uniform(0.1, 0.45)) if room else 0.0,
        highpass_hz=float(rng.uniform(30, 250)) if on(0.5) else None,
        lowpass_hz=float(rng.uniform(3000, 7500)) if on(0.4) else None,
        tilt_db=float(rng.uniform(-8, 8)) if on(0.6) else 0.0,
        tilt_hz=float(np.exp(rng.uniform(np.log(200), np.log(5000)))),
        compress_ratio=float(rng.uniform(2, 8)) if on(0.5) else None,
        compress_threshold_db=float(rng.uniform(-30, -10)),
        mp3_level=float(rng.uniform(*MP3_BITRATE_LEVELS)) if on(0.4) else None,
        noise_snr_db=float(rng.uniform(15, 45)) if on(0.5) else None,
        gain_db=float(rng.uniform(-18, 0)),
    )


def apply_chain(y: np.ndarray, sr: int, chain: Chain, rng: np.random.Generator) -> np.ndarray:
    """``y`` (mono float32) through ``chain``: room, EQ, compressor, noise, level, then MP3 coding."""
    out = np.asarray(y, dtype=np.float32)
    if out.ndim != 1:
        raise ParameterError(f"apply_chain takes mono audio (n,), got shape {out.shape}", field="y")
    if chain.room_seconds > 0 and chain.room_wet > 0:
        out = room(out, sr, chain.room_seconds, chain.room_wet, rng)
    out = equalize(out, sr, highpass_hz=chain.highpass_hz, lowpass_hz=chain.lowpass_hz,
                   peak_db=chain.tilt_db, peak_hz=chain.tilt_hz)
    if chain.compress_ratio:
        out = compress(out, sr, ratio=chain.compress_ratio, threshold_db=chain.compress_threshold_db)
    if chain.noise_snr_db is not None:
        out = add_noise(out, chain.noise_snr_db, rng)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0:
        out = out * (10 ** (chain.gain_db / 20) * 0.95 / peak)
    if chain.mp3_level is not None:
        out = mp3_roundtrip(out, sr, chain.mp3_level)
    return out.astype(np.float32)


def room(y: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (darker as it decays) after a short pre-delay."""
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * t / rt60).astype(np.float32)
    b, a = signal.butter(1, min(0.95, 4000 / (sr / 2)))
    tail = signal.lfilter(b, a, tail).astype(np.float32)
    predelay = np.zeros(int(rng.uniform(0.005, 0.03) * sr), dtype=np.float32)
    ir = np.concatenate([predelay, tail])
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-9
    reverb = signal.fftconvolve(y, ir)[: len(y)].astype(np.float32)
    dry_rms, wet_rms = _rms(y), _rms(reverb)
    if wet_rms > 0:
        reverb *= dry_rms / wet_rms
    return (1 - wet) * y + wet * reverb


def equalize(y: np.ndarray, sr: int, *, highpass_hz: float | None = None, lowpass_hz: float | None = None,
             peak_db: float = 0.0, peak_hz: float = 1000.0) -> np.ndarray:
    """Second-order high- and low-pass filters and one peaking band (RBJ biquad, Q 1)."""
    nyquist = sr / 2
    out = y
    if highpass_hz:
        out = signal.sosfilt(signal.butter(2, min(highpass_hz / nyquist, 0.99), "highpass", output="sos"), out)
    if lowpass_hz and lowpass_hz < nyquist * 0.98:
        out = signal.sosfilt(signal.butter(2, lowpass_hz / nyquist, "lowpass", output="sos"), out)
    if peak_db and peak_hz < nyquist * 0.95:
        a_gain = 10 ** (peak_db / 40)
        w0 = 2 * np.pi * peak_hz / sr
        alpha = np.sin(w0) / 2.0
        b = [1 + alpha * a_gain, -2 * np.cos(w0), 1 - alpha * a_gain]
        a = [1 + alpha / a_gain, -2 * np.cos(w0), 1 - alpha / a_gain]
        out = signal.lfilter(b, a, out)
    return np.asarray(out, dtype=np.float32)


def compress(y: np.ndarray, sr: int, *, ratio: float, threshold_db: float, window: float = 0.02) -> np.ndarray:
    """A feed-forward compressor on a smoothed RMS envelope (threshold relative to the clip's peak RMS)."""
    if ratio < 1:
        raise ParameterError(f"compression ratio must be at least 1, got {ratio}", field="ratio")
    size = max(1, int(window * sr))
    power = signal.lfilter([1.0 / size], [1.0, -(1 - 1.0 / size)], y.astype(np.float64) ** 2)
    level_db = 10 * np.log10(np.maximum(power, 1e-12))
    threshold = level_db.max() + threshold_db
    over = np.maximum(level_db - threshold, 0.0)
    gain = 10 ** (-over * (1 - 1 / ratio) / 20)
    return (y * gain).astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise at ``snr_db`` below the signal's RMS."""
    white = rng.standard_normal(len(y))
    spectrum = np.fft.rfft(white)
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    pink = np.fft.irfft(spectrum, n=len(y))
    pink *= _rms(y) / (_rms(pink) + 1e-12) * 10 ** (-snr_db / 20)
    return (y + pink).astype(np.float32)


def mp3_roundtrip(y: np.ndarray, sr: int, level: float) -> np.ndarray:
    """``y`` encoded to MP3 at libsndfile compression ``level`` (0..1) and decoded again, same length."""
    import soundfile as sf

    if "MP3" not in sf.available_formats():
        raise DependencyError("this libsndfile cannot write MP3 (needs libsndfile >= 1.1 with LAME and mpg123)")
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1, 1), sr, format="MP3", compression_level=float(level))
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    decoded = decoded if decoded.ndim == 1 else decoded.mean(axis=1)
    if len(decoded) >= len(y):
        return decoded[: len(y)]
    return np.pad(decoded, (0, len(y) - len(decoded)))


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
