"""Learning-rate schedule shared by the trainers: linear warm-up, then cosine decay to 10% over the budget."""

from __future__ import annotations

import math


def cosine_lr(step: int, elapsed: float, budget: float, *, base: float, warmup: int, fraction_done: float) -> float:
    """The rate at ``step``: progress is the larger of time used (``elapsed`` of ``budget`` seconds; a budget
    of 0 means steps are the budget) and ``fraction_done`` of the steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = max(fraction_done, min(1.0, elapsed / budget)) if budget > 0 else fraction_done
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))
