"""Shared fixtures: synthetic test signals and files written from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def sine(
    freq: float = 440.0, *, sr: int = 16_000, seconds: float = 1.0, amplitude: float = 0.5, channels: int = 1
) -> np.ndarray:
    """A float32 sine: (n,) for one channel, else (channels, n) with channel k at freq * (k + 1)."""
    t = np.arange(round(seconds * sr)) / sr
    rows = [amplitude * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)]
    y = np.asarray(rows, dtype=np.float32)
    return y[0] if channels == 1 else y


@pytest.fixture
def make_sine() -> Callable[..., np.ndarray]:
    """Factory for sine arrays (see `sine`)."""
    return sine


@pytest.fixture
def sine_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a sine to tmp_path/name with soundfile (independent of tunesmith.audio)."""

    def write(name: str = "sine.wav", *, sr: int = 16_000, subtype: str | None = None, **kwargs) -> Path:
        y = sine(sr=sr, **kwargs)
        path = tmp_path / name
        sf.write(path, y.T if y.ndim == 2 else y, sr, subtype=subtype)
        return path

    return write


def dominant_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a mono signal (Hann-windowed, parabolic peak)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + shift) * sr / len(y)
