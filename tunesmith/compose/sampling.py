"""Turning logits into one token: masks, biases, temperature and nucleus (top-p) sampling.

Works on small NumPy vectors (one vocabulary's worth): for a single token that is several times faster
than a chain of tiny tensor operations, and a seeded ``np.random.Generator`` makes it reproducible. The draw
itself is compiled with Numba (`tunesmith.jit.compiled`).
"""

from __future__ import annotations

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.jit import compiled


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
                 temperature: float = 1.0, top_p: float = 1.0, rng: np.random.Generator) -> int:
    """Sample one id from ``logits`` (vocab,) restricted to ``allowed`` (bool, vocab): one uniform number drawn
    from ``rng`` unless a single id is allowed."""
    candidates = np.flatnonzero(allowed)
    if candidates.size == 1:
        return int(candidates[0])
    if candidates.size == 0:
        raise ValueError("no token is allowed at this step")
    return int(_draw(logits, candidates, _NO_BIAS if bias is None else bias, temperature, top_p, rng.random()))


_NO_BIAS = np.zeros(0)


@compiled()
def _draw(logits: np.ndarray, candidates: np.ndarray, bias: np.ndarray, temperature: float, top_p: float,
          uniform: float) -> int:
    """The id among ``candidates`` that ``uniform`` (0..1) picks by inverse CDF of their softmax (``bias``
    added after the temperature unless empty), cut to the nucleus: the likeliest ids whose probabilities before
    them sum below ``top_p`` (the likeliest always kept). Compiled: in NumPy a draw was a dozen small calls."""
    n = candidates.size
    probs = np.empty(n)
    for i in range(n):
        probs[i] = logits[candidates[i]] / temperature
        if bias.size:
            probs[i] += bias[candidates[i]]
    probs = np.exp(probs - probs.max())
    probs /= probs.sum()
    if top_p < 1.0:
        before = 0.0
        for i in np.argsort(-probs, kind="mergesort"):
            if before < top_p:
                before += probs[i]
            else:
                probs[i] = 0.0
    cumulative = np.cumsum(probs)
    return candidates[min(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"), n - 1)]
