"""`tunesmith bench analyzer`: the whole analysis of a 30-second recording, in x real time on one core.

The recording is music we render ourselves (a melody over a bass line, piano and flute, 44.1 kHz), decoded to
the analysis rate as `tunesmith analyze` does. Each part (CNN tags, tempo, key, loudness, melody) is timed
alone, then the whole `Analyzer.analyze`; the figure is the median of a few repeats. torch and the BLAS pools
are held to one thread, so the CPU time is one core's work. Goal: 100x real time both by the clock and by
CPU time (30 s analysed in at most 0.30 s of CPU), so it holds on a busy machine and for two analyses at once.
"""

from __future__ import annotations

import json as json_module
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from tunesmith.analyze import dsp
from tunesmith.analyze.analyzer import Analyzer
from tunesmith.analyze.dsp import ANALYSIS_SR
from tunesmith.analyze.transcribe import transcribe_melody
from tunesmith.audio.dsp import resample
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Note, Part, Score

RENDER_SR = 44100
GOAL = 100.0


def test_recording(seconds: float) -> np.ndarray:
    """``seconds`` of a G major melody (flute) over a bass line (piano) at 100 bpm, mono at ANALYSIS_SR."""
    tempo = 100.0
    beats = int(seconds * tempo / 60)
    scale = [67, 69, 71, 72, 74, 72, 71, 69]
    melody = [Note(scale[i % len(scale)], float(i), 0.9, 90) for i in range(beats)]
    bass = [Note([43, 48, 50, 43][(i // 4) % 4], float(i), 3.8, 70) for i in range(0, beats, 4)]
    score = Score(parts=[Part("flute", melody, program=73), Part("piano", bass, program=0)], tempo=tempo,
                  key="G major")
    y = get_renderer(RENDER_SR).render(score, tail=0.0)
    y = y.mean(axis=0) if y.ndim == 2 else y
    y = resample(y, orig_sr=RENDER_SR, target_sr=ANALYSIS_SR)
    return y[: round(seconds * ANALYSIS_SR)].astype(np.float32)


def _median_seconds(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``work`` (CPU time is the honest figure on a shared machine)."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(wall), statistics.median(cpu)


def run(*, seconds: float = 30.0, checkpoint: str = "analyzer", repeats: int = 3, json: bool = False,
        **_: object) -> dict:
    """Time each part of the analysis and the whole; print a table or JSON; return the figures."""
    torch.set_num_threads(1)
    with dsp.one_blas_thread():
        return _run(seconds=seconds, checkpoint=checkpoint, repeats=repeats, json=json)


def _run(*, seconds: float, checkpoint: str, repeats: int, json: bool) -> dict:
    analyzer = Analyzer.load(checkpoint)
    y, sr = test_recording(seconds), ANALYSIS_SR
    analyzer.analyze(y[: sr * 2], sr)  # warm-up: filter banks, first-call allocations
    parts = {
        "cnn_tags": lambda: analyzer.window_probabilities(y, sr),
        "tempo": lambda: dsp.estimate_tempo(y, sr),
        "key": lambda: dsp.estimate_key(y, sr),
        "loudness": lambda: dsp.loudness(y, sr),
        "melody": lambda: transcribe_melody(y, sr),
        "whole": lambda: analyzer.analyze(y, sr),
    }
    measured = {name: _median_seconds(work, repeats) for name, work in parts.items()}
    timings = {name: wall for name, (wall, _) in measured.items()}
    cpu = {name: spent for name, (_, spent) in measured.items()}
    figures = {"checkpoint": checkpoint, "audio_seconds": seconds, "sr": sr, "repeats": repeats,
               "seconds": timings, "cpu_seconds": cpu, "x_real_time": {k: seconds / v for k, v in timings.items()},
               "x_real_time_cpu": {k: seconds / v for k, v in cpu.items()}, "goal_x_real_time": GOAL,
               "goal_met": {"wall": seconds / timings["whole"] >= GOAL, "cpu": seconds / cpu["whole"] >= GOAL}}
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        print(f"analysis of {seconds:g} s of music at {sr} Hz (one thread, median of {repeats}):")
        for name, spent in timings.items():
            print(f"  {name:9s} {spent * 1000:8.1f} ms  {seconds / spent:8.0f}x real time "
                  f"(CPU {cpu[name] * 1000:.1f} ms: {seconds / cpu[name]:.0f}x)")
        met = figures["goal_met"]
        print(f"  goal: whole analysis at least {GOAL:g}x real time (at most {seconds / GOAL * 1000:.0f} ms): "
              f"clock {'met' if met['wall'] else 'NOT met'}, CPU {'met' if met['cpu'] else 'NOT met'}")
    return figures
