"""The `song` model: a decoder-only Transformer over compound-word song steps (`tunesmith.symbolic.song_tokens`).

Input of a step: the sum of an embedding per field (kind, position, chord, track, pitch, duration, velocity and
the plan's section, energy and place in the section) plus the song's *conditioning* vector: a learned style
embedding (a blend of styles is the weighted sum of their embeddings), key, meter, tempo (log-spaced buckets,
linearly interpolated) and which tracks play. Blocks are the ALiBi pre-norm blocks of `tunesmith.models.lm`, so
a song may be longer than the training windows.

Output: four heads, each over the joint values of two fields (Compound Word Transformer, Hsiao et al. 2021,
with its fields paired so a note costs three draws, not six): ``when`` (kind x position: end the bar, or a chord
or a note at a position), ``chord`` (degree above the tonic x quality: the same choice in every key; the absolute
root it makes is an input of the step), ``what`` (track x pitch) and ``how`` (duration x velocity).
A head reads the final hidden state plus the embeddings of the fields already chosen for the step (``chord`` and
``what`` know when, ``how`` also knows which note), so a pitch knows its track and a duration its pitch. Training
is teacher-forced; sampling (`SongStepper`) draws the heads in that order.

`SongStepper` is the sampler's path: the same network in NumPy (float32) with a key/value cache, because at one
step per call torch's per-operation dispatch costs more than the arithmetic at this size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from scipy.special import erf
from torch import nn
from torch.nn import functional as F

from tunesmith.models.lm import Block, alibi_slopes
from tunesmith.symbolic.song_tokens import BAR, CHORD, COLUMN, COLUMNS, EOS, MAX_BAR_STEPS, NOTE, ROLES, SIZES

TEMPO_RANGE = (40.0, 300.0)
TEMPO_BUCKETS = 12
N_KEYS = 24  # tonic + 12 * (mode == minor)
N_QUALITIES = SIZES["quality"] - 1
N_VELOCITIES = SIZES["velocity"] - 1
# joint values of each head; "when": 0 ends the bar, 1 ends the song, then chords and notes at each position
HEAD_SIZES = {"when": 2 + 2 * MAX_BAR_STEPS, "chord": 12 * N_QUALITIES, "what": len(ROLES) * 128,
              "how": SIZES["duration"] * N_VELOCITIES}
WHEN_CHORD, WHEN_NOTE = 2, 2 + MAX_BAR_STEPS  # first "when" value of a chord / a note at position 0


def head_targets(steps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per head, the joint value (B, T) each step asks of it, or -1 where the step does not use the head."""
    kind, position = steps[..., COLUMN["kind"]], steps[..., COLUMN["position"]] - 1
    when = torch.full_like(kind, -1)
    when = torch.where(kind == BAR, 0, when)
    when = torch.where(kind == EOS, 1, when)
    when = torch.where(kind == CHORD, WHEN_CHORD + position, when)
    when = torch.where(kind == NOTE, WHEN_NOTE + position, when)
    chord = torch.where(kind == CHORD, (steps[..., COLUMN["degree"]] - 1) * N_QUALITIES
                        + steps[..., COLUMN["quality"]] - 1, -1)
    note = kind == NOTE
    what = torch.where(note, (steps[..., COLUMN["track"]] - 1) * 128 + (steps[..., COLUMN["pitch"]] - 1) % 128, -1)
    how = torch.where(note, steps[..., COLUMN["duration"]] * N_VELOCITIES + steps[..., COLUMN["velocity"]] - 1, -1)
    return {"when": when, "chord": chord, "what": what, "how": how}


def tempo_weights(tempo: torch.Tensor) -> torch.Tensor:
    """(B,) tempi -> (B, TEMPO_BUCKETS) weights of the two log-spaced buckets around each tempo."""
    low, high = math.log(TEMPO_RANGE[0]), math.log(TEMPO_RANGE[1])
    x = ((torch.log(tempo.clamp(*TEMPO_RANGE)) - low) / (high - low) * (TEMPO_BUCKETS - 1)).float()
    below = x.floor().clamp(max=TEMPO_BUCKETS - 2)
    frac = (x - below).unsqueeze(1)
    index = below.long().unsqueeze(1)
    weights = torch.zeros(tempo.shape[0], TEMPO_BUCKETS)
    weights.scatter_(1, index, 1 - frac)
    weights.scatter_add_(1, index + 1, frac)
    return weights


class FieldHead(nn.Module):
    """Logits of one head's joint values."""

    def __init__(self, dim: int, hidden: int, size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.fc(z)))


class SongTransformer(nn.Module):
    """The network (module docstring). ``forward(steps, cond)`` -> logits per field of each next step."""

    arch = "compound-transformer"

    def __init__(self, *, n_styles: int, n_meters: int, dim: int = 128, layers: int = 4, heads: int = 4,
                 head_hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        head_hidden = head_hidden or dim
        self.kwargs: dict[str, Any] = dict(n_styles=n_styles, n_meters=n_meters, dim=dim, layers=layers, heads=heads,
                                           head_hidden=head_hidden, dropout=dropout)
        self.embed = nn.ModuleDict({name: nn.Embedding(SIZES[name], dim, padding_idx=0) for name in COLUMNS})
        self.style = nn.Embedding(n_styles, dim)
        self.key = nn.Embedding(N_KEYS, dim)
        self.meter = nn.Embedding(n_meters, dim)
        self.tempo = nn.Embedding(TEMPO_BUCKETS, dim)
        self.tracks = nn.Linear(len(ROLES), dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim=dim, heads=heads, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleDict({name: FieldHead(dim, head_hidden, size) for name, size in HEAD_SIZES.items()})
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
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    def condition(self, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, dim) conditioning vectors from ``cond``: ``style`` (B, n_styles) weights, ``key`` (B,) 0..23,
        ``meter`` (B,), ``tempo`` (B,) quarter-note BPM, ``tracks`` (B, 5) 0/1."""
        return (cond["style"].float() @ self.style.weight + self.key(cond["key"]) + self.meter(cond["meter"])
                + tempo_weights(cond["tempo"]) @ self.tempo.weight + self.tracks(cond["tracks"].float()))

    def hidden(self, steps: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, dim) final hidden states of steps (B, T, len(COLUMNS))."""
        x = sum(self.embed[name](steps[..., i]) for i, name in enumerate(COLUMNS))
        x = self.drop(x + self.condition(cond).unsqueeze(1))
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x)

    def head_inputs(self, h: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per head, what it reads: ``h`` plus the embeddings of the target step's fields chosen before it."""
        when = h + self.embed["kind"](targets[..., COLUMN["kind"]]) + self.embed["position"](
            targets[..., COLUMN["position"]])
        note = when + self.embed["track"](targets[..., COLUMN["track"]]) + self.embed["pitch"](
            targets[..., COLUMN["pitch"]])
        return {"when": h, "chord": when, "what": when, "how": note}

    def forward(self, steps: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits per head (B, T-1, values) of steps 1..T-1 given the steps before them (teacher forcing)."""
        h = self.hidden(steps[:, :-1], cond)
        inputs = self.head_inputs(h, steps[:, 1:])
        return {name: head(inputs[name]) for name, head in self.heads.items()}


def song_loss(model: SongTransformer, steps: torch.Tensor,
              cond: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed negative log-likelihood in nats of every event, number of events) of a batch: each event's NLL is
    the sum over the heads it uses; padding steps (kind 0) count nowhere."""
    logits = model(steps, cond)
    targets = head_targets(steps[:, 1:].long())
    total = torch.zeros(())
    for name, target in targets.items():
        mask = target >= 0
        if mask.any():
            total = total + F.cross_entropy(logits[name][mask], target[mask], reduction="sum")
    return total, int((steps[:, 1:, COLUMN["kind"]] > 0).sum())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ the sampler


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().numpy(), dtype=np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))


class SongStepper:
    """The network in NumPy with a key/value cache, for sampling one step at a time.

    ``start(cond)`` resets the cache for a song's conditioning; ``feed(rows)`` runs one or more steps (B = 1) and
    returns the last one's final hidden state; ``logits(head, z)`` is a head; ``when_input`` and ``note_input``
    add the chosen fields' embeddings to what the later heads read. Attention looks back at most ``window``
    steps, as far as in a training window (at ~40 steps a bar, a dozen bars). Each layer norm's gain and bias
    are folded into the product after it. Logits agree with the torch model to float32 rounding.
    """

    def __init__(self, model: SongTransformer, *, window: int = 512, capacity: int = 4096) -> None:
        model = model.eval()
        self.dim, self.heads = model.kwargs["dim"], model.kwargs["heads"]
        self.head_dim = self.dim // self.heads
        self.embed = {name: _np(model.embed[name].weight) for name in COLUMNS}
        self.offsets = np.cumsum([0] + [SIZES[name] for name in COLUMNS[:-1]])
        self.table = np.concatenate([self.embed[name] for name in COLUMNS])  # one gather for a step's embedding
        self.blocks = [self._block(block) for block in model.blocks]
        self.norm = (_np(model.norm.weight), _np(model.norm.bias))
        self.output_heads = {name: (_np(head.fc.weight.t()), _np(head.fc.bias), _np(head.out.weight.t()),
                                    _np(head.out.bias)) for name, head in model.heads.items()}
        self.slopes = _np(alibi_slopes(self.heads)).reshape(self.heads, 1, 1)
        self.window = window
        self._model = model
        self.length = 0
        self.cond = np.zeros(self.dim, dtype=np.float32)
        self.keys = np.zeros((len(self.blocks), self.heads, 0, self.head_dim), dtype=np.float32)
        self.values = self.keys
        self._allocate(capacity)

    def _block(self, block: nn.Module) -> dict[str, np.ndarray]:
        """A block's weights with its layer norms folded in: LN(x) W + b = norm(x) (g W) + (beta W + b), and the
        attention scale folded into the query columns."""
        def folded(norm: nn.LayerNorm, linear: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
            weight = linear.weight.detach().t()  # (in, out)
            return (_np(norm.weight.detach()[:, None] * weight),
                    _np(norm.bias.detach() @ weight + linear.bias.detach()))

        qkv_w, qkv_b = folded(block.ln1, block.attn.qkv)
        scale = np.float32(1.0 / math.sqrt(self.head_dim))
        qkv_w[:, :self.dim] *= scale
        qkv_b[:self.dim] *= scale
        fc_w, fc_b = folded(block.ln2, block.mlp[0])
        return {"qkv_w": qkv_w, "qkv_b": qkv_b, "proj_w": _np(block.attn.proj.weight.t()),
                "proj_b": _np(block.attn.proj.bias), "fc_w": fc_w, "fc_b": fc_b,
                "out_w": _np(block.mlp[2].weight.t()), "out_b": _np(block.mlp[2].bias)}

    def _allocate(self, capacity: int) -> None:
        keys = np.zeros((len(self.blocks), self.heads, capacity, self.head_dim), dtype=np.float32)
        values = np.zeros_like(keys)
        keys[:, :, :self.length] = self.keys[:, :, :self.length]
        values[:, :, :self.length] = self.values[:, :, :self.length]
        self.keys, self.values, self.capacity = keys, values, capacity
        self.bias = -(self.slopes * np.arange(capacity, dtype=np.float32)[::-1])  # (h, 1, capacity): -slope * distance

    def condition(self, cond: Mapping[str, torch.Tensor]) -> np.ndarray:
        with torch.no_grad():
            return _np(self._model.condition(cond)[0])

    def start(self, cond: Mapping[str, torch.Tensor] | np.ndarray) -> None:
        """Forget every step; the next song has conditioning ``cond`` (tensors of one song, or its vector)."""
        self.cond = cond if isinstance(cond, np.ndarray) else self.condition(cond)
        self.length = 0

    def feed(self, rows: np.ndarray) -> np.ndarray:
        """Run steps (T, len(COLUMNS)) after those fed so far; the final hidden state of the last one (dim,)."""
        rows = np.atleast_2d(rows)
        t = rows.shape[0]
        if self.length + t > self.capacity:
            self._allocate(max(2 * self.capacity, self.length + t))
        x = self.table[rows.astype(np.int64) + self.offsets].sum(axis=1) + self.cond  # (T, dim)
        start, end = self.length, self.length + t
        first = max(0, end - self.window) if t == 1 else 0
        d, heads, head_dim = self.dim, self.heads, self.head_dim
        bias = self.bias[:, :, self.capacity - (end - first):] if t == 1 else self._chunk_bias(start, t, end)
        for layer, w in enumerate(self.blocks):
            qkv = _normalized(x) @ w["qkv_w"] + w["qkv_b"]
            q = qkv[:, :d].reshape(t, heads, head_dim).transpose(1, 0, 2)
            self.keys[layer, :, start:end] = qkv[:, d:2 * d].reshape(t, heads, head_dim).transpose(1, 0, 2)
            self.values[layer, :, start:end] = qkv[:, 2 * d:].reshape(t, heads, head_dim).transpose(1, 0, 2)
            scores = q @ self.keys[layer, :, first:end].transpose(0, 2, 1) + bias  # (h, T, keys)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            attended = (scores @ self.values[layer, :, first:end]).transpose(1, 0, 2).reshape(t, d)
            x = x + attended @ w["proj_w"] + w["proj_b"]
            x = x + _gelu(_normalized(x) @ w["fc_w"] + w["fc_b"]) @ w["out_w"] + w["out_b"]
        self.length = end
        return _normalized(x[-1]) * self.norm[0] + self.norm[1]

    def _chunk_bias(self, start: int, t: int, end: int) -> np.ndarray:
        """(h, T, end) ALiBi biases of a chunk's queries over every key so far; future keys and keys out of the
        window get -inf."""
        distance = np.arange(start, end, dtype=np.float32)[:, None] - np.arange(end, dtype=np.float32)[None, :]
        bias = -self.slopes * np.maximum(distance, 0)
        bias[:, (distance < 0) | (distance >= self.window)] = -np.inf
        return bias

    def logits(self, name: str, z: np.ndarray) -> np.ndarray:
        fc_w, fc_b, out_w, out_b = self.output_heads[name]
        return _gelu(z @ fc_w + fc_b) @ out_w + out_b

    def when_input(self, h: np.ndarray, kind: int, position: int) -> np.ndarray:
        """What the chord and what heads read once kind and position are chosen."""
        return h + self.embed["kind"][kind] + self.embed["position"][position]

    def note_input(self, z: np.ndarray, track: int, pitch: int) -> np.ndarray:
        """What the how head reads once the note's track and pitch are chosen."""
        return z + self.embed["track"][track] + self.embed["pitch"][pitch]


def _normalized(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """(x - mean) / std over the last axis (a layer norm without its gain and bias)."""
    scale = np.float32(1.0 / x.shape[-1])
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) * scale  # add.reduce: no ndarray.mean overhead
    return centred / np.sqrt(np.add.reduce(centred * centred, axis=-1, keepdims=True) * scale + eps)
