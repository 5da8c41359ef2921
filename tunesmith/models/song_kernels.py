"""Compiled kernels (Numba) for `tunesmith.models.song.SongStepper`'s one-step path.

Sampling a song feeds the network one step at a time. In NumPy a step is about 60 array operations per layer on
vectors of 128 numbers, and each operation's dispatch costs about as much as its arithmetic; here one compiled
call runs every layer of a step (`decode_step`) and one a head (`head_logits`), so a step costs its arithmetic.
Each kernel is compiled on its first call and cached (`tunesmith.jit.compiled`), so later processes start at
once. Weights are given as (out, in) matrices, each stacked
over layers; the results agree with the NumPy path to float32 rounding (``fastmath`` lets sums be reordered).
"""

from __future__ import annotations

import math

import numpy as np

from tunesmith.jit import compiled

INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
EPS = np.float32(1e-5)


@compiled(fastmath=True)
def _normalize(x: np.ndarray, out: np.ndarray) -> None:
    """``out[r] = (x[r] - mean) / std`` per row (a layer norm without gain and bias, as the weights fold them)."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        mean = np.float32(0.0)
        for i in range(n):
            mean += x[r, i]
        mean /= n
        var = np.float32(0.0)
        for i in range(n):
            centred = x[r, i] - mean
            out[r, i] = centred
            var += centred * centred
        scale = np.float32(1.0) / math.sqrt(var / n + EPS)
        for i in range(n):
            out[r, i] *= scale


@compiled(fastmath=True)
def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """``out = x @ weight.T + bias`` for rows ``x`` (B, in) and ``weight`` (out, in)."""
    n_in = x.shape[1]
    for j in range(weight.shape[0]):
        row = weight[j]
        for r in range(x.shape[0]):
            total = np.float32(0.0)
            for i in range(n_in):
                total += x[r, i] * row[i]
            out[r, j] = total + bias[j]


@compiled(fastmath=True)
def _gelu(x: np.ndarray) -> None:
    """The exact (erf) GELU, in place."""
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[r, i]
            x[r, i] = np.float32(0.5) * v * (np.float32(1.0) + math.erf(v * INV_SQRT2))


@compiled(fastmath=True)
def decode_step(x: np.ndarray, qkv_w: np.ndarray, qkv_b: np.ndarray, proj_w: np.ndarray, proj_b: np.ndarray,
                fc_w: np.ndarray, fc_b: np.ndarray, out_w: np.ndarray, out_b: np.ndarray, keys: np.ndarray,
                values: np.ndarray, slopes: np.ndarray, position: int, first: int) -> None:
    """Run every block on one step's inputs ``x`` (B, dim), in place, writing its keys and values at
    ``position`` of the caches (layers, B, heads, capacity, head_dim) and attending to ``first..position``
    with ALiBi biases ``-slope * distance`` (queries pre-scaled in ``qkv_w``)."""
    batch, dim = x.shape
    heads, head_dim = keys.shape[2], keys.shape[4]
    normed = np.empty((batch, dim), np.float32)
    qkv = np.empty((batch, 3 * dim), np.float32)
    attended = np.empty((batch, dim), np.float32)
    added = np.empty((batch, dim), np.float32)
    hidden = np.empty((batch, fc_w.shape[1]), np.float32)
    n_keys = position + 1 - first
    scores = np.empty(n_keys, np.float32)
    for layer in range(keys.shape[0]):
        _normalize(x, normed)
        _linear(normed, qkv_w[layer], qkv_b[layer], qkv)
        for b in range(batch):
            for h in range(heads):
                start = h * head_dim
                layer_keys, layer_values = keys[layer, b, h], values[layer, b, h]
                for e in range(head_dim):
                    layer_keys[position, e] = qkv[b, dim + start + e]
                    layer_values[position, e] = qkv[b, 2 * dim + start + e]
                query = np.ascontiguousarray(qkv[b, start:start + head_dim])
                scores[:] = np.dot(layer_keys[first:position + 1], query)
                slope = slopes[h]
                top = np.float32(-1e30)
                for k in range(n_keys):
                    scores[k] -= slope * (position - first - k)
                    top = max(top, scores[k])
                total = np.float32(0.0)
                for k in range(n_keys):
                    scores[k] = math.exp(scores[k] - top)
                    total += scores[k]
                attended[b, start:start + head_dim] = np.dot(scores, layer_values[first:position + 1]) / total
        _linear(attended, proj_w[layer], proj_b[layer], added)
        x += added
        _normalize(x, normed)
        _linear(normed, fc_w[layer], fc_b[layer], hidden)
        _gelu(hidden)
        _linear(hidden, out_w[layer], out_b[layer], added)
        x += added


@compiled(fastmath=True)
def head_logits(z: np.ndarray, fc_w: np.ndarray, fc_b: np.ndarray, out_w: np.ndarray, out_b: np.ndarray,
                strength: float) -> np.ndarray:
    """A head's logits (values,) for inputs ``z`` (B, dim): row 0's, or with two rows (style guidance) row 1's
    plus ``strength`` times row 0's minus row 1's."""
    hidden = np.empty((z.shape[0], fc_w.shape[0]), np.float32)
    _linear(z, fc_w, fc_b, hidden)
    _gelu(hidden)
    logits = np.empty((z.shape[0], out_w.shape[0]), np.float32)
    _linear(hidden, out_w, out_b, logits)
    if z.shape[0] == 1:
        return logits[0]
    return logits[1] + np.float32(strength) * (logits[0] - logits[1])
