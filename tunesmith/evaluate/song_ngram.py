"""The n-gram baseline of the song model, over the same events and the same choices.

The song model reads compound steps and scores an event (a bar line, a chord, a note, the end) as the sum of
the negative log-likelihoods of the head values it chooses (`tunesmith.symbolic.song_tokens.head_targets`):
``when`` for every event, then ``chord`` for a chord, ``what`` and ``how`` for a note. The baseline writes the
same choices as a flat stream, one token per chosen head value (each head in its own range of token ids), and
scores an event as the sum of its tokens' NLLs: by the chain rule that is the event's probability under the
n-gram, so both give total NLL (nats) per event of the same events. Conditioning (style, key, tempo, section and
energy) is the model's alone: the n-gram sees only the tokens before.

The n-gram is `tunesmith.evaluate.ngram.NGramModel`'s (interpolated absolute discounting down to a uniform
distribution), counted with NumPy over hashed contexts: the grooves corpus has millions of tokens, which the
dict-based counter would take minutes over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tunesmith.symbolic.song_tokens import HEAD_SIZES, head_targets

HEADS = ("when", "chord", "what", "how")
OFFSETS = dict(zip(HEADS, np.cumsum([0, *(HEAD_SIZES[h] for h in HEADS[:-1])]).tolist(), strict=True))
BOS_TOKEN = sum(HEAD_SIZES[h] for h in HEADS)
VOCAB_SIZE = BOS_TOKEN + 1
_PRIME = np.uint64(0x9E3779B97F4A7C15)


def event_tokens(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, event of each token) of a song's steps: a BOS token (event -1), then for each step after the first
    its chosen head values in head order."""
    targets = head_targets(np.asarray(steps)[1:])
    values = np.stack([targets[h] for h in HEADS], axis=1)  # (T, heads), -1 where unused
    offsets = np.array([OFFSETS[h] for h in HEADS])
    used = values >= 0
    tokens = (values + offsets)[used]
    events = np.nonzero(used)[0]
    return np.concatenate([[BOS_TOKEN], tokens]).astype(np.int64), np.concatenate([[-1], events]).astype(np.int64)


def _mix(h: np.ndarray, token: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (h * _PRIME + token.astype(np.uint64) + np.uint64(1)) ^ (h >> np.uint64(29))
        return h * _PRIME


class HashedNGram:
    """An n-gram of ``order`` (contexts of up to order - 1 tokens) with interpolated absolute discounting."""

    def __init__(self, order: int, vocab_size: int, *, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order, self.vocab_size, self.discount = order, vocab_size, discount
        self.tables: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    @staticmethod
    def _contexts(sequences: Sequence[np.ndarray], order: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Concatenated tokens, each token's place in its sequence, and per context length n its context hash."""
        tokens = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        place = np.concatenate([np.arange(len(s)) for s in sequences])
        hashes = [np.zeros(len(tokens), dtype=np.uint64)]
        for n in range(1, order):
            back = np.roll(tokens, n)
            hashes.append(_mix(hashes[-1], back))
        return tokens, place, hashes

    def fit(self, sequences: Iterable[Sequence[int]]) -> HashedNGram:
        tokens, place, hashes = self._contexts([np.asarray(s) for s in sequences], self.order)
        self.tables = []
        for n in range(self.order):
            mask = (place >= max(n, 1))
            ctx, tok = hashes[n][mask], tokens[mask]
            pairs, first, counts = np.unique(_mix(ctx, tok), return_index=True, return_counts=True)
            contexts, totals = np.unique(ctx, return_counts=True)
            _, distinct = np.unique(ctx[first], return_counts=True)  # the same contexts, in the same order
            self.tables.append((pairs, counts, contexts, totals, distinct))
        return self

    def token_nll(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """-log P(token | the tokens before) of every token after the first of each sequence, concatenated."""
        tokens, place, hashes = self._contexts([np.asarray(s) for s in sequences], self.order)
        p = np.full(len(tokens), 1.0 / self.vocab_size)
        for n, (pairs, counts, contexts, totals, distinct) in enumerate(self.tables):
            available = place >= n
            ctx = hashes[n]
            i = np.clip(np.searchsorted(contexts, ctx), 0, max(len(contexts) - 1, 0))
            seen = available & (contexts[i] == ctx) if len(contexts) else np.zeros(len(ctx), bool)
            key = _mix(ctx, tokens)
            j = np.clip(np.searchsorted(pairs, key), 0, max(len(pairs) - 1, 0))
            count = np.where((pairs[j] == key) if len(pairs) else False, counts[j] if len(pairs) else 0, 0)
            total, kinds = totals[i].astype(float), distinct[i].astype(float)
            mixed = np.maximum(count - self.discount, 0.0) / total + self.discount * kinds / total * p
            p = np.where(seen, mixed, p)
        return -np.log(p[place >= 1])

    def prob(self, context: Sequence[int], token: int) -> float:
        """P(token | context) (a check against `NGramModel.prob`)."""
        return float(np.exp(-self.token_nll([[*context, token]])[-1]))


def event_nll(model: HashedNGram, songs: Sequence[np.ndarray]) -> tuple[float, int]:
    """(total NLL in nats, number of events) of songs given as step arrays."""
    streams = [event_tokens(steps) for steps in songs]
    nll = model.token_nll([tokens for tokens, _ in streams])
    events = sum(int(ev[-1]) + 1 for _, ev in streams if len(ev) > 1)
    return float(nll.sum()), events


def ngram_baseline(train: Sequence[np.ndarray], valid: Sequence[np.ndarray], test: Sequence[np.ndarray], *,
                   orders: Sequence[int] = (2, 3, 4, 6, 8, 12)) -> dict:
    """Fit each order on train, keep the best on valid (NLL per event), report its test NLL per event."""
    train_streams = [event_tokens(s)[0] for s in train]
    scores: dict[int, float] = {}
    best_model, best = None, None
    for order in orders:
        model = HashedNGram(order, VOCAB_SIZE).fit(train_streams)
        total, events = event_nll(model, valid)
        scores[order] = total / max(events, 1)
        if best is None or scores[order] < scores[best]:
            best, best_model = order, model
    total, events = event_nll(best_model, test)
    return {"order": best, "order_unit": "tokens (one per chosen head value)",
            "valid_nll_by_order": {str(o): v for o, v in scores.items()},
            "valid_nll": scores[best], "test_nll": total / max(events, 1), "test_events": events}
