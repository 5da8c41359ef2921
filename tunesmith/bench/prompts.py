"""Prompt parse latency: `tunesmith bench prompts` (p50/p99 per language, in-process, after warm-up).

Every prompt of the labelled set (tests/data/prompts.jsonl; the packaged examples if it is not here) is parsed
``rounds`` times against the five families; the figure is wall time per parse and, beside it, CPU time per parse
(which other processes on the machine do not inflate). The embedding models are loaded and the vocabulary embedded
before timing, as a server does at start-up (`tunesmith.prompting.warm_up`); their load times are reported too.
"""

from __future__ import annotations

import json as jsonlib
import statistics
import time
from pathlib import Path
from typing import Any

from tunesmith.prompting import DEFAULT_SETTINGS, EMBEDDING_MODELS, default_families, interpret
from tunesmith.prompting.embedding import encoder
from tunesmith.prompting.engine import warm_up
from tunesmith.prompting.evaluate import DEFAULT_SET, load_set

GOAL_P99_MS = 20.0
FALLBACK = {"en": ["a calm ambient pad for a rainy night", "lo-fi hip hop beat with mellow piano, 80 bpm",
                   "epic boss fight music", "a jig in D for fiddle", "something to cry to on a long drive home"],
            "zh": ["下雨夜晚的安静氛围音乐", "一首欢快的流行歌", "史诗级的boss战音乐",
                   "一首D调的吉格舞曲，用小提琴演奏",
                   "开车回家路上想哭的时候听的"]}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(*, seconds: float = 30.0, json: bool = False, rounds: int = 3, data: Path = DEFAULT_SET,
        **_: Any) -> dict[str, Any]:
    """Time the parses; ``seconds`` is unused (the set decides the work)."""
    texts: dict[str, list[str]] = {}
    if Path(data).is_file():
        for row in load_set(data):
            texts.setdefault(row["lang"], []).append(row["text"])
    else:
        texts = FALLBACK
    families = default_families()
    started = time.perf_counter()
    warm_up(DEFAULT_SETTINGS)
    loading = {name: round(encoder(name).load_seconds or 0.0, 2)
               for name in dict.fromkeys((DEFAULT_SETTINGS.english_model, DEFAULT_SETTINGS.chinese_model)) if name}
    report: dict[str, Any] = {"warm_up_seconds": round(time.perf_counter() - started, 2),
                              "model_load_seconds": loading,
                              "models": {n: EMBEDDING_MODELS[n].card() for n in loading}, "languages": {},
                              "goal_p99_ms": GOAL_P99_MS}
    for language, prompts in texts.items():
        wall, cpu, embedded = [], [], 0
        for _ in range(rounds):
            for text in prompts:
                w, c = time.perf_counter(), time.process_time()
                result = interpret(text, families)
                cpu.append((time.process_time() - c) * 1000)
                wall.append((time.perf_counter() - w) * 1000)
                embedded += result.embedding_model is not None
        report["languages"][language] = {
            "parses": len(wall), "share_embedded": round(embedded / len(wall), 3),
            "wall_ms": {"p50": round(statistics.median(wall), 2), "p99": round(_percentile(wall, 0.99), 2)},
            "cpu_ms": {"p50": round(statistics.median(cpu), 2), "p99": round(_percentile(cpu, 0.99), 2)}}
    if json:
        print(jsonlib.dumps(report, indent=2))
    else:
        print(f"warm-up {report['warm_up_seconds']} s (model load {loading})")
        for language, figures in report["languages"].items():
            print(f"{language}: {figures['parses']} parses ({100 * figures['share_embedded']:.0f}% ran the embedding "
                  f"model): wall p50 {figures['wall_ms']['p50']} ms, p99 {figures['wall_ms']['p99']} ms; CPU p50 "
                  f"{figures['cpu_ms']['p50']} ms, p99 {figures['cpu_ms']['p99']} ms (goal p99 < {GOAL_P99_MS:g} ms)")
    return report
