"""Data-pipeline throughput: decode -> 16 kHz mono -> loudness-normalize -> segment -> log-mel.

The figure is per core: BLAS/OpenMP pools (threadpoolctl) and torch are held to one thread.
"""

from __future__ import annotations

import json as jsonlib
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio import load, log_mel, normalize_loudness, resample, save, segment
from tunesmith.audio.dsp import check_int, check_seconds
from tunesmith.errors import ParameterError

SOURCE_SR = 44_100
TARGET_SR = 16_000
SEGMENT_S, HOP_S = 2.0, 1.0
N_MELS = 128
FORMATS = ("wav", "mp3")
STAGES = ("decode", "resample", "loudness", "segment", "log_mel")
GOAL_X_REALTIME = 200.0  # WAV, per core
MAX_SECONDS = 3600.0


def make_signal(seconds: float, *, sr: int = SOURCE_SR, seed: int = 0) -> np.ndarray:
    """A music-like stereo test signal (2, n): a chord progression of harmonic tones plus noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    t = np.arange(n) / sr
    chords = (
        (220.0, 277.18, 329.63),  # A major
        (196.0, 246.94, 293.66),  # G major
        (174.61, 220.0, 261.63),  # F major
        (164.81, 207.65, 246.94),  # E major
    )
    chord_of = (t // 2.0).astype(int) % len(chords)
    envelope = np.exp(-1.5 * (t % 2.0)).astype(np.float32)
    out = np.zeros((2, n), dtype=np.float32)
    for voice in range(3):
        f0 = np.array([c[voice] for c in chords])[chord_of]
        phase = 2 * np.pi * np.cumsum(f0) / sr
        tone = sum(np.sin(k * phase) / k for k in range(1, 7)).astype(np.float32) * envelope
        pan = (voice + 1) / 4
        out[0] += (1 - pan) * tone
        out[1] += pan * tone
    out += 0.02 * rng.standard_normal((2, n)).astype(np.float32)
    return out * np.float32(0.7 / np.max(np.abs(out)))


@contextmanager
def single_thread():
    """Limit torch and the native thread pools (BLAS, OpenMP) to one thread."""
    restore: list[Callable[[], None]] = []
    try:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        restore.append(lambda: torch.set_num_threads(previous))
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn/librosa installs
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=1):
                yield
    finally:
        for undo in restore:
            undo()


def pipeline(path: Path) -> dict[str, float]:
    """Run the pipeline on one file; returns seconds spent per stage."""
    clock = time.perf_counter
    spent: dict[str, float] = {}
    t0 = clock()
    y, sr = load(path)  # decode + mono mix-down at the native rate
    t1 = clock()
    y = resample(y, orig_sr=sr, target_sr=TARGET_SR)
    t2 = clock()
    y = normalize_loudness(y, sr=TARGET_SR)
    t3 = clock()
    segments = segment(y, sr=TARGET_SR, length=SEGMENT_S, hop=HOP_S)
    t4 = clock()
    log_mel(segments.frames, sr=TARGET_SR, n_mels=N_MELS)
    t5 = clock()
    for stage, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)), strict=True):
        spent[stage] = b - a
    return spent


def _measure(path: Path, seconds: float, repeats: int) -> dict[str, Any]:
    pipeline(path)  # warm-up: page cache, filterbank cache, lazy imports
    runs = [pipeline(path) for _ in range(repeats)]
    total = statistics.median(sum(r.values()) for r in runs)
    stages = {}
    for stage in STAGES:
        ms = statistics.median(r[stage] for r in runs) * 1000
        stages[stage] = {"ms": round(ms, 2), "x_realtime": round(seconds / (ms / 1000), 1) if ms else None}
    return {"x_realtime": round(seconds / total, 1), "total_ms": round(total * 1000, 2), "stages": stages}


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"tunesmith bench data: {result['seconds']:g} s of {SOURCE_SR / 1000:g} kHz stereo -> "
        f"{TARGET_SR // 1000} kHz mono, loudness-normalized, {SEGMENT_S:g} s segments (hop {HOP_S:g} s), "
        f"{N_MELS}-band log-mel",
        f"1 thread, median of {result['repeats']} runs; stage columns in ms",
        "",
        f"{'format':<7}{'x real time/core':>18}{'total ms':>10}" + "".join(f"{s:>10}" for s in STAGES),
    ]
    for fmt, row in result["formats"].items():
        stage_ms = "".join(f"{row['stages'][s]['ms']:>10.1f}" for s in STAGES)
        lines.append(f"{fmt:<7}{row['x_realtime']:>17.0f}x{row['total_ms']:>10.1f}{stage_ms}")
    verdict = "met" if result["meets_goal"] else "MISSED"
    lines += ["", f"goal: >= {GOAL_X_REALTIME:g}x real time per core for WAV: {verdict}"]
    return "\n".join(lines)


def run(*, seconds: float = 30.0, json: bool = False, repeats: int = 5) -> dict[str, Any]:
    """Time the data pipeline on a `seconds`-long test signal as WAV and MP3; print and return it."""
    seconds = check_seconds(seconds, "seconds")
    if seconds > MAX_SECONDS:
        raise ParameterError(f"seconds must be at most {MAX_SECONDS:g}, got {seconds:g}", field="seconds")
    repeats = check_int(repeats, "repeats")
    signal = make_signal(seconds)
    result: dict[str, Any] = {"benchmark": "data", "seconds": seconds, "repeats": repeats, "threads": 1}
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as tmp, single_thread():
        files = {fmt: save(Path(tmp) / f"signal.{fmt}", signal, SOURCE_SR) for fmt in FORMATS}
        result["formats"] = {fmt: _measure(path, seconds, repeats) for fmt, path in files.items()}
    result["goal_x_realtime_wav"] = GOAL_X_REALTIME
    result["meets_goal"] = result["formats"]["wav"]["x_realtime"] >= GOAL_X_REALTIME
    print(jsonlib.dumps(result, indent=2) if json else _table(result))
    return result
