"""Fit a chorale composer's parallel-fifths penalty to its training corpus (`evaluate lm --fit-parallels`).

The sampled LSTM on its own writes parallel fifths or octaves in about 6 % of the voice-pair motions where
both voices move; Bach's chorales have about 0.11 %. Forbidding them outright gives far fewer than Bach
(about 0.04 %): Bach let some through. A logit penalty on each pitch that would make a parallel is the
log-linear (maximum-entropy) way to match one statistic: its weight is the value at which the sampled pieces
show the training split's rate. The fit only looks at the training split; the held-out split stays for
`evaluate lm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.compose.composer import Composer
from tunesmith.data.dataset import Dataset
from tunesmith.errors import ParameterError
from tunesmith.evaluate.lm import prompt_params
from tunesmith.evaluate.symbolic_stats import parallel_perfect_rate
from tunesmith.progress import progress


def corpus_parallel_rate(dataset: Dataset, split: str = "train") -> float:
    """Mean rate of parallel fifths/octaves per piece of one split (as `evaluate lm` averages it)."""
    rates = [parallel_perfect_rate(dataset.score(r)) for r in dataset.split(split)]
    return float(np.mean(rates))


def sampled_parallel_rate(composer: Composer, prompts: list[dict[str, Any]], penalty: float, seed: int) -> float:
    """Mean rate of parallels in pieces sampled with ``penalty`` (the same seeds for every penalty)."""
    composer.parallel_penalty = penalty
    rates = [parallel_perfect_rate(composer.generate(**prompt, seed=seed * 100_003 + i).score)
             for i, prompt in enumerate(progress(prompts, desc=f"penalty {penalty:.2f}", unit="piece"))]
    return float(np.mean(rates))


def fit_parallel_penalty(checkpoint: str | Path, data: str | Path, *, pieces: int = 200, seed: int = 0,
                         low: float = 2.0, high: float = 10.0, steps: int = 5) -> dict[str, Any]:
    """Bisect the penalty (in logits) until the sampled rate meets the training split's rate."""
    composer = Composer.load(checkpoint)
    if composer.voices < 2:
        raise ParameterError("parallels need several voices; this model writes one", field="checkpoint")
    dataset = Dataset(data)
    target = corpus_parallel_rate(dataset, "train")
    prompts = prompt_params(dataset.split("train"), pieces, seed)
    trials = []
    for _ in range(steps):
        middle = (low + high) / 2
        rate = sampled_parallel_rate(composer, prompts, middle, seed)
        trials.append({"penalty": middle, "rate": rate})
        if rate > target:
            low = middle
        else:
            high = middle
    best = min(trials, key=lambda t: abs(np.log((t["rate"] + 1e-6) / target)))
    return {"checkpoint": str(checkpoint), "data": str(data), "pieces": pieces, "target_train_rate": target,
            "parallel_penalty": round(best["penalty"], 3), "rate_at_penalty": best["rate"], "trials": trials}
