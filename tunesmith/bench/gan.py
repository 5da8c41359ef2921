"""`tunesmith bench gan`: speed of the neural instrument on one CPU thread, PyTorch eager vs ONNX Runtime.

Reports, for whole 2-second corpus notes and each serving backend of the frame network (PyTorch eager, and
the network exported to ONNX and run by ONNX Runtime; the synthesizer DSP is PyTorch in both): notes per
second and real-time factor (seconds of audio made per second) at batch 1 and batch 64, by wall clock and by
the process's CPU time (time.process_time; on a shared machine the CPU time is the steadier figure), and the
frame network's share of it; the largest difference between the two backends' audio; the backend whose
frame network is faster at batch 1 by CPU time (the serving path: NoteSynth serves through the card's
``serving.backend``; the DSP after the network is the same code for both); the generator's
parameters and FLOPs per second of audio (matmuls and convolutions counted by torch's FlopCounterMode; sines
and FFTs are not counted), the share of this machine's measured single-thread matmul peak that generation
reaches; and the time to perform a 16-bar four-voice chorale (written by the chorale model) with the GAN
cello. Goal: at least 500x real time at batch 1.
"""

from __future__ import annotations

import json as json_module
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tunesmith.compose.notesynth import BACKENDS, NoteSynth
from tunesmith.models.gan import count_parameters, synthesize

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


def _conditions(synth: NoteSynth, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = synth.generator
    inst = torch.arange(batch) % len(synth.instrument_names)
    pitch = torch.full((batch,), 60)  # the cost hardly depends on the condition
    vel = torch.full((batch,), 100)
    z = torch.randn(batch, g.z_dim, generator=torch.Generator().manual_seed(seed))
    return inst, pitch, vel, z


def _controls(synth: NoteSynth, batch: int, seed: int) -> dict[str, torch.Tensor]:
    inst, pitch, vel, z = _conditions(synth, batch, seed)
    with torch.inference_mode():
        emb = synth.generator.embed(inst)
    return synth.run_controls(emb, pitch, vel, z)


def _generate(synth: NoteSynth, batch: int, seed: int) -> torch.Tensor:
    """Whole notes as NoteSynth serves them: the frame network by the synth's backend, then the DSP."""
    g = synth.generator
    c = _controls(synth, batch, seed)
    with torch.inference_mode():
        return synthesize(c, sr=g.sr, hop=g.hop, noise_fft=g.noise_fft, noise_seed=seed, ratios=g.ratios)


def _median_times(work: Callable[[int], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``work(seed)`` over ``repeats`` calls (after one warm-up)."""
    work(0)
    walls, cpus = [], []
    for seed in range(1, repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        work(seed)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def time_batch(synth: NoteSynth, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds (wall and CPU) of generating ``batch`` whole notes, notes per second, real-time factors,
    and the seconds of the frame network alone."""
    seconds, cpu = _median_times(lambda seed: _generate(synth, batch, seed), repeats)
    net_seconds, net_cpu = _median_times(lambda seed: _controls(synth, batch, seed), repeats)
    note_seconds = synth.generator.n_frames * synth.generator.hop / synth.sr
    return {"batch": batch, "seconds": seconds, "cpu_seconds": cpu, "notes_per_second": batch / seconds,
            "real_time_factor": batch * note_seconds / seconds, "real_time_factor_cpu": batch * note_seconds / cpu,
            "frame_network_seconds": net_seconds, "frame_network_cpu_seconds": net_cpu}


def flops_per_note(synth: NoteSynth) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    g = synth.generator
    inst, pitch, vel, z = _conditions(synth, 1, 0)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        g(inst, pitch, vel, z, noise_seed=0)
    return int(counter.get_total_flops())


def backend_difference(synth: NoteSynth) -> float:
    """Largest absolute difference between the audio of the two backends (same conditions, z and noise)."""
    outputs = []
    for backend in BACKENDS:
        synth.backend = backend
        outputs.append(_generate(synth, 8, 3).numpy())
    return float(np.abs(outputs[0] - outputs[1]).max())


def perform_chorale(synth: NoteSynth, bars: int = 16) -> dict[str, Any]:
    from tunesmith.compose.composer import Composer

    if "cello" not in synth.instrument_names:
        return {"skipped": "this model plays no cello (a drum kit or a single recorded instrument)"}
    score = Composer.load("chorale").generate(key="D minor", bars=bars, seed=1).score
    synth.perform(score, "cello")  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    performance = synth.perform(score, "cello", seed=1)
    cpu, seconds = time.process_time() - cpu, time.perf_counter() - wall
    audio_seconds = len(performance.audio) / performance.sr
    return {"bars": bars, "notes": performance.notes, "backend": synth.backend, "seconds": seconds,
            "cpu_seconds": cpu, "audio_seconds": audio_seconds, "real_time_factor": audio_seconds / seconds,
            "real_time_factor_cpu": audio_seconds / cpu}


def run(*, checkpoint: str | None = None, repeats: int = 5, json: bool = False, **_: object) -> dict[str, Any]:
    """Measure and print (table or JSON); returns the figures."""
    torch.set_num_threads(1)
    synth = NoteSynth.load(checkpoint, backend="torch")
    note_seconds = synth.generator.n_frames * synth.generator.hop / synth.sr
    backends: dict[str, Any] = {}
    for backend in BACKENDS:
        synth.backend = backend
        backends[backend] = {"batch_1": time_batch(synth, 1, repeats * 20), "batch_64": time_batch(synth, 64, repeats)}
    # the DSP after the frame network is the same code for both: compare the frame network alone (less noise)
    serving = min(BACKENDS, key=lambda b: backends[b]["batch_1"]["frame_network_cpu_seconds"])
    difference = backend_difference(synth)
    synth.backend = serving
    flops = flops_per_note(synth)
    peak = matmul_peak_gflops()
    best64 = max(backends[b]["batch_64"]["notes_per_second"] for b in BACKENDS)
    achieved = flops * best64 / 1e9
    figures: dict[str, Any] = {
        "checkpoint": checkpoint or synth.name, "threads": 1, "note_seconds": note_seconds, "sr": synth.sr,
        "parameters": count_parameters(synth.generator), "backends": backends, "serving": serving,
        "batch_1": backends[serving]["batch_1"], "batch_64": backends[serving]["batch_64"],
        "backend_max_abs_difference": difference,
        "flops_per_note": flops, "flops_per_audio_second": flops / note_seconds,
        "matmul_peak_gflops": peak, "achieved_gflops_batch_64": achieved,
        "peak_share_batch_64": achieved / peak, "perform_chorale": perform_chorale(synth),
        "goal_real_time_factor_batch_1": GOAL_RTF_BATCH1,
    }
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        print(f"neural instrument ({figures['parameters']:,} parameters, one thread, {note_seconds:.1f} s notes):")
        header = f"{'backend':<12} {'batch':>5} {'ms/note':>8} {'x real time':>12} {'(CPU time)':>11}"
        print(f"  {header} {'frame net ms':>13}")
        for backend in BACKENDS:
            for key in ("batch_1", "batch_64"):
                b = backends[backend][key]
                print(f"  {backend:<12} {b['batch']:>5} {1000 * b['seconds'] / b['batch']:8.2f} "
                      f"{b['real_time_factor']:12.1f} {b['real_time_factor_cpu']:11.1f} "
                      f"{1000 * b['frame_network_seconds'] / b['batch']:13.2f}")
        print(f"  serving path: {serving} (its frame network is faster at batch 1); largest audio difference "
              "between backends "
              f"{difference:.2e}")
        print(f"  {figures['flops_per_audio_second'] / 1e9:.3f} GFLOP per second of audio; "
              f"{achieved:.2f} of {peak:.1f} GFLOP/s matmul peak ({100 * figures['peak_share_batch_64']:.1f}%)")
        p = figures["perform_chorale"]
        if "skipped" in p:
            print(f"  16-bar chorale: {p['skipped']}")
        else:
            print(f"  16-bar chorale performed: {p['notes']} notes, {p['seconds']:.2f} s for "
                  f"{p['audio_seconds']:.1f} s of audio ({p['real_time_factor']:.1f}x real time)")
        print(f"  goal: {GOAL_RTF_BATCH1:.0f}x real time at batch 1")
    return figures
