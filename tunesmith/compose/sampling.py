"""Turning logits into one token: masks, biases, temperature and nucleus (top-p) sampling."""

from __future__ import annotations

import torch

from tunesmith.errors import ParameterError


def check_sampling(temperature: float, top_p: float) -> None:
    """Validate sampling controls with messages that name the bad value."""
    if not 0.05 <= temperature <= 3.0:
        raise ParameterError(f"temperature must be between 0.05 and 3.0, got {temperature}", field="temperature")
    if not 0.05 <= top_p <= 1.0:
        raise ParameterError(f"top_p must be between 0.05 and 1.0, got {top_p}", field="top_p")


def sample_token(logits: torch.Tensor, *, allowed: torch.Tensor, bias: torch.Tensor | None = None,
                 temperature: float = 1.0, top_p: float = 1.0, generator: torch.Generator | None = None) -> int:
    """Sample one id from ``logits`` (vocab,) restricted to ``allowed`` (bool, vocab)."""
    scores = logits / temperature
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < top_p  # always keeps the most likely token
        trimmed = torch.zeros_like(probs)
        trimmed[order[keep]] = sorted_probs[keep]
        probs = trimmed
    if not torch.isfinite(probs).all() or float(probs.sum()) <= 0:
        # every allowed token had -inf: fall back to uniform over the allowed set
        probs = allowed.float()
    return int(torch.multinomial(probs, 1, generator=generator))
