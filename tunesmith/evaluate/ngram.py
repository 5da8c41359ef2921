"""A smoothed n-gram baseline over the same token sequences the language models read.

Interpolated absolute discounting (the core of Kneser-Ney, without continuation counts): every order
backs off to the next shorter context, down to a uniform distribution over the vocabulary, so no token
ever gets probability zero. Contexts reach across voices of the grid, so an order of ``voices + 1`` sees
the same voice one step back.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from tunesmith.symbolic.tokens import HEADER_LENGTH


class NGramModel:
    """Counts n-grams of one order (and all shorter ones) and scores sequences."""

    def __init__(self, order: int, vocab_size: int, *, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order, self.vocab_size, self.discount = order, vocab_size, discount
        self.counts: list[dict[tuple[int, ...], Counter[int]]] = [defaultdict(Counter) for _ in range(order)]

    def fit(self, sequences: Iterable[Sequence[int]]) -> NGramModel:
        for seq in sequences:
            seq = list(seq)
            for i in range(1, len(seq)):
                for n in range(self.order):  # n = context length
                    if i - n < 0:
                        break
                    self.counts[n][tuple(seq[i - n:i])][seq[i]] += 1
        self._totals = [{ctx: sum(c.values()) for ctx, c in level.items()} for level in self.counts]
        return self

    def prob(self, context: Sequence[int], token: int) -> float:
        """P(token | context) with interpolated absolute discounting."""
        p = 1.0 / self.vocab_size
        for n in range(self.order):
            if n > len(context):
                break
            ctx = tuple(context[len(context) - n:]) if n else ()
            counts = self.counts[n].get(ctx)
            if not counts:
                continue
            total = self._totals[n][ctx]
            seen = len(counts)
            p = max(counts.get(token, 0) - self.discount, 0.0) / total + self.discount * seen / total * p
        return p

    def nll(self, sequences: Iterable[Sequence[int]]) -> float:
        """Mean negative log-likelihood (nats) per body token — the tokens the LMs are scored on."""
        total, count = 0.0, 0
        for seq in sequences:
            seq = list(seq)
            for i in range(HEADER_LENGTH, len(seq)):
                context = seq[max(0, i - self.order + 1):i]
                total -= math.log(self.prob(context, seq[i]))
                count += 1
        return total / max(count, 1)
