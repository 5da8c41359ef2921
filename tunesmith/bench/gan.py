"""`tunesmith bench gan`: speed of the neural instrument on one CPU thread.

Reports, for whole 2-second corpus notes: notes per second and real-time factor (seconds of audio made
per second of wall clock) at batch 1 and batch 64; the generator's parameters and FLOPs per second of
audio (matmuls and convolutions counted by torch's FlopCounterMode; sines and FFTs are not counted), the
share of this machine's measured single-thread matmul peak that generation reaches; and the time to
perform a 16-bar four-voice chorale (written by the chorale model) with the GAN cello. Goal: at least 500x
real time at batch 1.
"""

from __future__ import annotations

import json as json_module
import statistics
import time
from typing import Any

import torch

from tunesmith.compose.notesynth import NoteSynth
from tunesmith.models.gan import count_parameters

GOAL_RTF_BATCH1 = 500.0


def matmul_peak_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Best single-thread float32 matmul throughput (GFLOP/s) of this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _generate(synth: NoteSynth, batch: int, seed: int) -> torch.Tensor:
    g = synth.generator
    inst = torch.arange(batch) % len(synth.instrument_names)
    pitch = torch.full((batch,), 60)  # the cost does not depend on the condition
    vel = torch.full((batch,), 100)
    z = torch.randn(batch, g.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return g(inst, pitch, vel, z, noise_seed=seed)


def time_batch(synth: NoteSynth, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds of generating ``batch`` whole notes, notes per second and the real-time factor."""
    _generate(synth, batch, 0)  # warm-up
    times = []
    for seed in range(1, repeats + 1):
        started = time.perf_counter()
        _generate(synth, batch, seed)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    note_seconds = synth.generator.n_frames * synth.generator.hop / synth.sr
    return {"batch": batch, "seconds": seconds, "notes_per_second": batch / seconds,
            "real_time_factor": batch * note_seconds / seconds}


def flops_per_note(synth: NoteSynth) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        _generate(synth, 1, 0)
    return int(counter.get_total_flops())


def perform_chorale(synth: NoteSynth, bars: int = 16) -> dict[str, Any]:
    from tunesmith.compose.composer import Composer

    score = Composer.load("chorale").generate(key="D minor", bars=bars, seed=1).score
    synth.perform(score, "cello")  # warm-up
    started = time.perf_counter()
    performance = synth.perform(score, "cello", seed=1)
    seconds = time.perf_counter() - started
    audio_seconds = len(performance.audio) / performance.sr
    return {"bars": bars, "notes": performance.notes, "seconds": seconds, "audio_seconds": audio_seconds,
            "real_time_factor": audio_seconds / seconds}


def run(*, checkpoint: str | None = None, repeats: int = 5, json: bool = False, **_: object) -> dict[str, Any]:
    """Measure and print (table or JSON); returns the figures."""
    torch.set_num_threads(1)
    synth = NoteSynth.load(checkpoint)
    batch1 = time_batch(synth, 1, repeats * 4)
    batch64 = time_batch(synth, 64, repeats)
    flops = flops_per_note(synth)
    note_seconds = synth.generator.n_frames * synth.generator.hop / synth.sr
    peak = matmul_peak_gflops()
    achieved = flops * batch64["notes_per_second"] / 1e9
    figures: dict[str, Any] = {
        "checkpoint": checkpoint or synth.name, "threads": 1, "note_seconds": note_seconds, "sr": synth.sr,
        "parameters": count_parameters(synth.generator), "batch_1": batch1, "batch_64": batch64,
        "flops_per_note": flops, "flops_per_audio_second": flops / note_seconds,
        "matmul_peak_gflops": peak, "achieved_gflops_batch_64": achieved,
        "peak_share_batch_64": achieved / peak, "perform_chorale": perform_chorale(synth),
        "goal_real_time_factor_batch_1": GOAL_RTF_BATCH1,
    }
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        print(f"neural instrument ({figures['parameters']:,} parameters, one thread, {note_seconds:.1f} s notes):")
        for key in ("batch_1", "batch_64"):
            b = figures[key]
            print(f"  batch {b['batch']:>2}: {b['notes_per_second']:8.1f} notes/s, {b['real_time_factor']:8.1f}x "
                  "real time")
        print(f"  {figures['flops_per_audio_second'] / 1e9:.2f} GFLOP per second of audio; "
              f"{achieved:.2f} of {peak:.1f} GFLOP/s matmul peak ({100 * figures['peak_share_batch_64']:.1f}%)")
        p = figures["perform_chorale"]
        print(f"  16-bar chorale performed: {p['notes']} notes, {p['seconds']:.2f} s for {p['audio_seconds']:.1f} s "
              f"of audio ({p['real_time_factor']:.1f}x real time)")
        print(f"  goal: {GOAL_RTF_BATCH1:.0f}x real time at batch 1")
    return figures
