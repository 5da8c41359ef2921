"""Dataset builders for data a user supplies: any folder of audio or MIDI, MUSDB18(-HQ), MagnaTagATune.

Each builder reads SRC in its real, as-downloaded layout and writes a dataset with `DatasetWriter`.
A file that cannot be used (corrupt, empty, truncated, unsupported, missing) is reported through
``writer.skip`` and the build goes on; a SRC that is missing or not in the expected layout raises
`DatasetError` with a one-line message saying what was expected. This module holds their shared helpers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from tunesmith.audio.dsp import segment
from tunesmith.errors import DatasetError, ParameterError, TunesmithError

T = TypeVar("T")

SILENCE_DBFS = -60.0  # a stretch whose RMS is below this is labelled silent (no instrument playing)
MIN_LAST_FRACTION = 0.5  # a final, zero-padded segment is kept only if at least half of it is audio


def require_dir(src: Path, *, expected: str) -> Path:
    """``src`` resolved, or DatasetError naming what the folder should have held."""
    src = Path(src)
    if not src.exists():
        raise DatasetError(f"source {src} does not exist; expected {expected}")
    if not src.is_dir():
        raise DatasetError(f"source {src} is not a directory; expected {expected}")
    if not os.access(src, os.R_OK | os.X_OK):
        raise DatasetError(f"source {src} cannot be read (permission denied)")
    return src.resolve()


def check_positive(value: object, name: str) -> float:
    """A positive finite number, or ParameterError naming the option."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value!r}", field=name)
    return float(value)


def check_rate(sr: object) -> int:
    """A sample rate in 1000..192000 Hz, or ParameterError."""
    if isinstance(sr, bool) or not isinstance(sr, int) or not 1000 <= sr <= 192_000:
        raise ParameterError(f"sr must be an integer sample rate in 1000..192000 Hz, got {sr!r}", field="sr")
    return sr


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ParameterError(f"limit must be a positive integer, got {limit!r}", field="limit")
    return limit


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` items spread evenly over ``items`` (so a small build spans every folder/split)."""
    if limit is None or limit >= len(items):
        return list(items)
    picks = np.linspace(0, len(items) - 1, num=limit).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def describe(exc: BaseException, path: Path | str | None = None) -> str:
    """A one-line reason for a skipped file: our own errors as they are (without a leading
    ``<path>: `` that the summary already shows), other exceptions with their type."""
    if isinstance(exc, TunesmithError):
        text = str(exc)
        prefix = f"{path}: "
        return text[len(prefix):] if path is not None and text.startswith(prefix) else text
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def fixed_segments(y: np.ndarray, *, sr: int, seconds: float) -> list[tuple[int, np.ndarray, int]]:
    """Cut mono ``y`` into back-to-back ``seconds``-long pieces: a list of (start, segment, real samples).

    The rule: segments start every ``seconds`` (hop = length); the last partial segment is zero-padded
    and kept only when at least half of it is audio, or when it is the only segment (a file shorter than
    one segment still gives one padded item). An empty signal gives no segments.
    """
    frames, starts = segment(y, sr=sr, length=seconds, pad="zero")
    size = frames.shape[-1] if frames.ndim == 2 else 0
    out = []
    for index, (start, frame) in enumerate(zip(starts.tolist(), frames, strict=True)):
        real = min(size, y.shape[-1] - start)
        if index > 0 and real < MIN_LAST_FRACTION * size:
            break
        out.append((start, frame, real))
    return out


def is_silent(y: np.ndarray, *, threshold_db: float = SILENCE_DBFS) -> bool:
    """True when the RMS of ``y`` is below ``threshold_db`` dBFS (or ``y`` is empty)."""
    if y.size == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return rms < 10.0 ** (threshold_db / 20.0)
