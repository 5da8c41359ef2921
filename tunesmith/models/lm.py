"""Sequence models over the voice-grid token vocabulary: an LSTM and a small decoder-only Transformer.

Both read three aligned integer streams of shape (B, T): the token ids, the *voice slot* of each token
(which voice of the grid it belongs to, or a slot for structure tokens such as BAR) and its *position
in the bar* (grid step). The grid layout makes both streams a pure function of the token sequence, so a
model always knows which voice it is writing and where the beat is. Both expose an incremental
``step`` API for fast sampling (hidden state for the LSTM, a key/value cache for the Transformer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class StructureEmbedding(nn.Module):
    """token + voice-slot + bar-position embeddings, summed."""

    def __init__(self, *, vocab_size: int, n_slots: int, n_positions: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab_size, dim)
        self.slot = nn.Embedding(n_slots, dim)
        self.position = nn.Embedding(n_positions, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.drop(self.token(ids) + self.slot(slots) + self.position(positions))  # (B, T, dim)


class LSTMLanguageModel(nn.Module):
    """A stacked LSTM language model with tied input/output embeddings."""

    arch = "rnn"

    def __init__(self, *, vocab_size: int, n_slots: int, n_positions: int, dim: int = 384,
                 layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.kwargs: dict[str, Any] = dict(vocab_size=vocab_size, n_slots=n_slots, n_positions=n_positions,
                                           dim=dim, layers=layers, dropout=dropout)
        self.embed = StructureEmbedding(vocab_size=vocab_size, n_slots=n_slots, n_positions=n_positions,
                                        dim=dim, dropout=dropout)
        self.rnn = nn.LSTM(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.embed.token.weight

    def forward(self, ids: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor,
                state: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits (B, T, vocab) and the recurrent state after the last step."""
        x = self.embed(ids, slots, positions)
        y, state = self.rnn(x, state)
        return self.head(self.norm(y)), state

    def _step_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer: [W_ih; W_hh] transposed into one contiguous (2*dim, 4*dim) matrix and the summed
        biases, cached until the parameters change (their version counters move on every update)."""
        versions = tuple(p._version for p in self.rnn.parameters())
        if getattr(self, "_step_cache_versions", None) != versions:
            self._step_cache = [
                (torch.cat([getattr(self.rnn, f"weight_ih_l{k}"), getattr(self.rnn, f"weight_hh_l{k}")], dim=1)
                 .t().contiguous().detach(),
                 (getattr(self.rnn, f"bias_ih_l{k}") + getattr(self.rnn, f"bias_hh_l{k}")).detach())
                for k in range(self.kwargs["layers"])
            ]
            self._step_cache_versions = versions
        return self._step_cache

    @torch.no_grad()
    def step(self, ids: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor,
             state: Any = None) -> tuple[torch.Tensor, Any]:
        """Feed (B, t) new tokens; returns logits of the last one (B, vocab) and the new state.

        One token at a time runs the LSTM cell equations directly on the layer weights: on CPU this
        is several times faster than ``nn.LSTM`` for a single step (no per-call weight re-layout).
        """
        if ids.shape[1] > 1:
            logits, state = self.forward(ids, slots, positions, state)
            return logits[:, -1], state
        return self._cells(self.embed(ids, slots, positions)[:, 0], state)

    def _cells(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The LSTM cell equations for one time step of input x (B, dim)."""
        b, dim = x.shape
        layers = self.kwargs["layers"]
        if state is None:
            zeros = x.new_zeros(layers, b, dim)
            state = (zeros, zeros.clone())
        h_all, c_all = state
        hs, cs = [], []
        for layer, (weight, bias) in enumerate(self._step_weights()):
            gates = torch.addmm(bias, torch.cat([x, h_all[layer]], dim=1), weight)  # (B, 4 * dim)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c_all[layer] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c)
            hs.append(x)
            cs.append(c)
        return self.head(self.norm(x)), (torch.stack(hs), torch.stack(cs))

    @torch.no_grad()
    def step_one(self, token: int, slot: int, position: int, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One token of one sequence, in eval mode: logits (vocab,) and the new state (the sampler's path)."""
        e = self.embed
        x = (e.token.weight[token] + e.slot.weight[slot] + e.position.weight[position]).unsqueeze(0)
        logits, state = self._cells(x, state)
        return logits[0], state


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al., 2022): a geometric sequence starting at 2^(-8/heads)."""
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with ALiBi distance biases (no absolute positions, so a model
    trained on windows of a piece generates pieces longer than those windows)."""

    def __init__(self, *, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.register_buffer("slopes", alibi_slopes(heads).view(1, heads, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, h, t, d)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        total = k.shape[2]
        query_at = torch.arange(total - t, total, device=x.device).view(t, 1)
        key_at = torch.arange(total, device=x.device).view(1, total)
        distance = (query_at - key_at).to(x.dtype)  # (t, total), negative = future
        bias = -self.slopes * distance.clamp(min=0)  # (1, h, t, total)
        bias = bias.masked_fill(distance < 0, float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y), (k, v)


class Block(nn.Module):
    def __init__(self, *, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache=None):
        a, cache = self.attn(self.ln1(x), cache)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), cache


class TransformerLanguageModel(nn.Module):
    """A decoder-only Transformer (pre-norm, ALiBi attention, the grid structure as input embeddings).

    ``context`` bounds the key/value cache when sampling; training windows may be shorter.
    """

    arch = "transformer"

    def __init__(self, *, vocab_size: int, n_slots: int, n_positions: int, dim: int = 256, layers: int = 4,
                 heads: int = 4, context: int = 4096, dropout: float = 0.1) -> None:
        super().__init__()
        self.kwargs: dict[str, Any] = dict(vocab_size=vocab_size, n_slots=n_slots, n_positions=n_positions,
                                           dim=dim, layers=layers, heads=heads, context=context, dropout=dropout)
        self.context = context
        self.embed = StructureEmbedding(vocab_size=vocab_size, n_slots=n_slots, n_positions=n_positions,
                                        dim=dim, dropout=dropout)
        self.blocks = nn.ModuleList(Block(dim=dim, heads=heads, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.embed.token.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, ids: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor,
                state: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits (B, T, vocab) and the key/value cache (a list per layer) after the last step."""
        past = 0 if state is None else state[0][0].shape[2]
        t = ids.shape[1]
        if past + t > self.context:
            raise ValueError(f"sequence of {past + t} tokens exceeds the model context {self.context}")
        x = self.embed(ids, slots, positions)
        caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, None if state is None else state[i])
            caches.append(cache)
        return self.head(self.norm(x)), caches

    @torch.no_grad()
    def step(self, ids: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor,
             state: Any = None) -> tuple[torch.Tensor, Any]:
        logits, state = self.forward(ids, slots, positions, state)
        return logits[:, -1], state

    @torch.no_grad()
    def step_one(self, token: int, slot: int, position: int, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One token of one sequence: logits (vocab,) and the new key/value cache."""
        logits, state = self.forward(torch.tensor([[token]]), torch.tensor([[slot]]), torch.tensor([[position]]),
                                     state)
        return logits[0, -1], state


class NumpyLSTMStepper:
    """The sampler's path through an LSTM language model: one token at a time in NumPy (float32).

    Per token, torch's dispatch costs more than the arithmetic at this size. Here the first layer's input
    projection is folded into per-token, per-slot and per-position tables (the embeddings are summed, so their
    projections are too), leaving one (dim, 4*dim) product in the first layer and one (2*dim, 4*dim) product in
    each further layer. Logits agree with `LSTMLanguageModel.step_one` to float32 rounding.
    """

    def __init__(self, model: LSTMLanguageModel) -> None:
        rnn, emb = model.rnn, model.embed
        layers = model.kwargs["layers"]

        def np32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)

        w_ih0 = rnn.weight_ih_l0.detach()
        self.token_in = np32(emb.token.weight @ w_ih0.t())  # (vocab, 4*dim)
        self.slot_in = np32(emb.slot.weight @ w_ih0.t())
        self.position_in = np32(emb.position.weight @ w_ih0.t() + rnn.bias_ih_l0 + rnn.bias_hh_l0)
        self.w_hh0 = np32(rnn.weight_hh_l0.t())  # (dim, 4*dim)
        self.upper = [(np32(torch.cat([getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")], 1).t()),
                       np32(getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}"))) for k in range(1, layers)]
        self.norm_weight, self.norm_bias = np32(model.norm.weight), np32(model.norm.bias)
        self.eps = float(model.norm.eps)
        self.head = np32(model.head.weight.t())  # (dim, vocab)
        self.dim, self.layers = model.kwargs["dim"], layers

    def state_from_torch(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) of shape (layers, 1, dim) from the torch model -> (layers, dim) arrays."""
        h, c = state
        return np32_copy(h[:, 0]), np32_copy(c[:, 0])

    def step(self, token: int, slot: int, position: int,
             state: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Logits (vocab,) after ``token`` and the new (h, c)."""
        h_all, c_all = state
        h_new, c_new = np.empty_like(h_all), np.empty_like(c_all)
        d = self.dim
        gates = self.token_in[token] + self.slot_in[slot] + self.position_in[position] + h_all[0] @ self.w_hh0
        x = self._cell(gates, c_all[0], c_new, h_new, 0, d)
        for layer, (weight, bias) in enumerate(self.upper, start=1):
            gates = np.concatenate([x, h_all[layer]]) @ weight + bias
            x = self._cell(gates, c_all[layer], c_new, h_new, layer, d)
        mean = x.mean()
        centred = x - mean
        normed = centred / np.sqrt((centred * centred).mean() + self.eps) * self.norm_weight + self.norm_bias
        return normed @ self.head, (h_new, c_new)

    @staticmethod
    def _cell(gates: np.ndarray, c_old: np.ndarray, c_out: np.ndarray, h_out: np.ndarray, layer: int,
              d: int) -> np.ndarray:
        sig = 1.0 / (1.0 + np.exp(-gates))  # i, f, o use it; g uses tanh
        c = sig[d:2 * d] * c_old + sig[:d] * np.tanh(gates[2 * d:3 * d])
        h = sig[3 * d:] * np.tanh(c)
        c_out[layer], h_out[layer] = c, h
        return h


def np32_copy(t: torch.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float32)


ARCHITECTURES: dict[str, type[nn.Module]] = {"rnn": LSTMLanguageModel, "transformer": TransformerLanguageModel}


def build_lm(arch: str, **kwargs: Any) -> nn.Module:
    """Build a language model by architecture name with its keyword arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
