"""`tunesmith bench lm`: 16 bars of four-voice chorale, generated and rendered to 44.1 kHz audio.

Reports wall-clock seconds for generation and rendering (median of several seeds, one thread), the CPU seconds
they took (the same on a quiet machine; the honest figure on a shared one) and the sampling speed in tokens per
second. Goal: generation + rendering under one second.
"""

from __future__ import annotations

import json as json_module
import statistics
import time

import torch

from tunesmith.compose.composer import Composer
from tunesmith.symbolic.render import get_renderer

BARS = 16
SR = 44100


def run(*, checkpoint: str = "chorale", repeats: int = 5, json: bool = False, **_: object) -> dict:
    """Time generation and rendering of ``repeats`` pieces; print a table or JSON; return the figures."""
    torch.set_num_threads(1)
    composer = Composer.load(checkpoint)
    renderer = get_renderer(SR)
    composer.generate(key="D minor", bars=2, seed=0)  # warm-up (first-call allocations)
    gen, ren, tokens, cpu = [], [], [], []
    for seed in range(1, repeats + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = composer.generate(key="D minor", bars=BARS, seed=seed)
        gen.append(time.perf_counter() - started)
        started = time.perf_counter()
        audio = renderer.render(result.score)
        ren.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        tokens.append(len(result.tokens))
    figures = {
        "checkpoint": checkpoint, "arch": composer.card["arch"], "bars": BARS, "sr": SR, "repeats": repeats,
        "generate_seconds": statistics.median(gen), "render_seconds": statistics.median(ren),
        "total_seconds": statistics.median(g + r for g, r in zip(gen, ren, strict=True)),
        "tokens_per_second": statistics.median(t / g for t, g in zip(tokens, gen, strict=True)),
        # CPU seconds of this process: equal to the wall clock on a quiet machine, and not inflated when other
        # processes share the cores (then the wall-clock figures above are)
        "total_cpu_seconds": statistics.median(cpu),
        "audio_seconds": audio.shape[-1] / SR, "goal_total_seconds": 1.0,
    }
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        print(f"{BARS} bars of 4-voice chorale ({composer.card['arch']}, one thread, median of {repeats}):")
        print(f"  generate {figures['generate_seconds']:.3f} s ({figures['tokens_per_second']:.0f} tokens/s)")
        print(f"  render   {figures['render_seconds']:.3f} s ({figures['audio_seconds']:.1f} s of audio at {SR} Hz)")
        print(f"  total    {figures['total_seconds']:.3f} s (goal under 1 s); "
              f"{figures['total_cpu_seconds']:.3f} s of CPU")
    return figures
