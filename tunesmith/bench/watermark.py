"""Watermark throughput: embedding and blind detection, x real time on one thread.

Cases: a music-like stereo signal at 44.1 kHz (the service's output) and mono at 16 kHz, `seconds` long,
plus detection on a 3 s excerpt (what a short upload costs). Embedding includes the mono mix-down, the
resampling to 16 kHz and back; detection includes the mix-down and resampling.
"""

from __future__ import annotations

import json as jsonlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tunesmith.audio.dsp import check_int, check_seconds, resample
from tunesmith.bench.data import MAX_SECONDS, make_signal, single_thread
from tunesmith.errors import ParameterError
from tunesmith.provenance.watermark import detect_watermark, watermark_audio

GOAL_X_REALTIME = 100.0
PAYLOAD = 0xBEEF


def _median_seconds(job: Callable[[], Any], repeats: int) -> float:
    job()  # warm-up: imports, FFT plans, soxr set-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _case(y: np.ndarray, sr: int, repeats: int) -> dict[str, Any]:
    seconds = y.shape[-1] / sr
    marked = watermark_audio(y, sr, PAYLOAD)
    found = detect_watermark(marked, sr)
    embed = _median_seconds(lambda: watermark_audio(y, sr, PAYLOAD), repeats)
    detect = _median_seconds(lambda: detect_watermark(marked, sr), repeats)
    return {"seconds": round(seconds, 3), "embed_ms": round(embed * 1000, 2), "detect_ms": round(detect * 1000, 2),
            "embed_x_realtime": round(seconds / embed, 1), "detect_x_realtime": round(seconds / detect, 1),
            "detected": found.detected and found.payload == PAYLOAD}


def run(*, seconds: float = 30.0, json: bool = False, repeats: int = 5, **_: object) -> dict[str, Any]:
    """Time watermark embedding and detection; print and return the figures."""
    seconds = check_seconds(seconds, "seconds")
    if not 3.0 <= seconds <= MAX_SECONDS:
        raise ParameterError(f"seconds must be 3..{MAX_SECONDS:g}, got {seconds:g}", field="seconds")
    repeats = check_int(repeats, "repeats")
    stereo = make_signal(seconds)
    mono16 = resample(stereo.mean(axis=0), orig_sr=44_100, target_sr=16_000)
    result: dict[str, Any] = {"benchmark": "watermark", "seconds": seconds, "repeats": repeats, "threads": 1}
    with single_thread():
        result["cases"] = {"stereo_44k": _case(stereo, 44_100, repeats), "mono_16k": _case(mono16, 16_000, repeats),
                           "excerpt_3s_44k": _case(stereo[:, : 3 * 44_100], 44_100, repeats)}
    result["goal_x_realtime"] = GOAL_X_REALTIME
    result["meets_goal"] = all(min(c["embed_x_realtime"], c["detect_x_realtime"]) >= GOAL_X_REALTIME
                               for c in result["cases"].values())
    print(jsonlib.dumps(result, indent=2) if json else _table(result))
    return result


def _table(result: dict[str, Any]) -> str:
    lines = [f"watermark, one thread, median of {result['repeats']} runs:",
             f"{'case':16s} {'audio s':>8s} {'embed ms':>9s} {'embed x':>8s} {'detect ms':>10s} {'detect x':>9s}"]
    for name, c in result["cases"].items():
        lines.append(f"{name:16s} {c['seconds']:8.1f} {c['embed_ms']:9.1f} {c['embed_x_realtime']:8.0f} "
                     f"{c['detect_ms']:10.1f} {c['detect_x_realtime']:9.0f}")
    lines.append(f"goal: >= {result['goal_x_realtime']:.0f}x real time for both: "
                 f"{'met' if result['meets_goal'] else 'NOT met'}")
    return "\n".join(lines)
