"""Turning logits into one token: masks, biases, temperature and nucleus (top-p) sampling.

Works on small NumPy vectors (one vocabulary's worth): for a single token that is several times faster
than a chain of tiny tensor operations, and a seeded ``np.random.Generator`` makes it reproducible.
"""

from __future__ import annotations

import numpy as np

from tunesmith.errors import ParameterError


def check_sampling(temperature: float, top_p: float) -> None:
    """Validate sampling controls with messages that name the bad value."""
    if not 0.05 <= temperature <= 3.0:
        raise ParameterError(f"temperature must be between 0.05 and 3.0, got {temperature}", field="temperature")
    if not 0.05 <= top_p <= 1.0:
        raise ParameterError(f"top_p must be between 0.05 and 1.0, got {top_p}", field="top_p")


STYLE_STRENGTH = 1.25  # the song model's default style guidance (docs/models.md, "Style strength")
STYLE_STRENGTH_RANGE = (1.0, 4.0)


def check_style_strength(strength: float) -> None:
    """How far a song leans into its style: 1 samples the model as trained; above 1 the song is guided away from
    the mean of all styles (`tunesmith.models.song.SongStepper`), so what is typical of its style gets likelier;
    a step then costs 1.6-1.9x, and a guided song can be busier (docs/models.md, "Style strength")."""
    low, high = STYLE_STRENGTH_RANGE
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not low <= strength <= high:
        raise ParameterError(f"style_strength must be between {low:g} and {high:g}, got {strength!r}",
                             field="style_strength")


def sample_token(logits: np.ndarray, *, allowed: np.ndarray, bias: np.ndarray | None = None,
                 temperature: float = 1.0, top_p: float = 1.0, group_size: int | None = None,
                 rng: np.random.Generator) -> int:
    """Sample one id from ``logits`` (vocab,) restricted to ``allowed`` (bool, vocab).

    ``group_size``: the nucleus is taken inside each group of that many consecutive ids (a track's keys) instead
    of over the whole vocabulary: every group keeps the probability the model gives it, and only the unlikely
    ids inside a group are cut. (Over the whole vocabulary, a group whose mass is spread over many ids, such as
    a bass line's dozen candidate keys beside a drum kit's few likely hits, loses more than its share.)"""
    candidates = np.flatnonzero(allowed)
    if candidates.size == 1:
        return int(candidates[0])
    if candidates.size == 0:
        raise ValueError("no token is allowed at this step")
    scores = logits[candidates].astype(np.float64) / temperature
    if bias is not None:
        scores += bias[candidates]
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    if top_p < 1.0:
        probs = _nucleus(probs, top_p, None if group_size is None else candidates // group_size)
    # inverse-CDF draw: one uniform number, as rng.choice(p=...) does, without its per-call validation
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return int(candidates[min(index, candidates.size - 1)])


def _nucleus(probs: np.ndarray, top_p: float, groups: np.ndarray | None) -> np.ndarray:
    """``probs`` with all but the smallest set of most likely ids holding ``top_p`` of the mass set to 0 (per
    group when ``groups`` numbers each id's group: each group keeps its own mass), renormalized."""
    if groups is None:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < top_p  # always keeps the most likely token
        trimmed = np.zeros_like(probs)
        trimmed[order[keep]] = probs[order[keep]]
        return trimmed / trimmed.sum()
    order = np.lexsort((-probs, groups))  # by group, most likely first within it
    sorted_probs, sorted_groups = probs[order], groups[order]
    cumulative = np.cumsum(sorted_probs)
    first = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])  # each group's first index
    counts = np.diff(np.r_[first, len(order)])
    before = np.repeat(cumulative[first] - sorted_probs[first], counts)  # the mass of the groups before
    mass = np.repeat(np.add.reduceat(sorted_probs, first), counts)
    keep = cumulative - before - sorted_probs < top_p * mass  # always keeps each group's most likely id
    trimmed = np.zeros_like(probs)
    trimmed[order[keep]] = sorted_probs[keep]
    scale = np.zeros_like(probs)  # each kept id scaled so that its group keeps its mass (a group of 0 keeps 0)
    kept_mass = np.add.reduceat(np.where(keep, sorted_probs, 0.0), first)
    group_mass = np.add.reduceat(sorted_probs, first)
    ratio = np.divide(group_mass, kept_mass, out=np.zeros_like(group_mass), where=kept_mass > 0)
    scale[order] = np.repeat(ratio, counts)
    trimmed *= scale
    return trimmed / trimmed.sum()
