"""The `song` model: a decoder-only Transformer over compound-word song steps (`tunesmith.symbolic.song_tokens`).

The network knows the steps only through its arguments (``columns``: each column's number of values, in order;
``outputs``: each head's number of values; ``output_reads``: the columns of the step a head reads), which the
callers take from `tunesmith.symbolic.song_tokens.network_spec`, so this module needs nothing but torch.

Input of a step: the sum of an embedding per field (kind, position, chord, track, pitch, duration, velocity and
the plan's section, energy and place in the section) plus the song's *conditioning* vector: a learned style
embedding (a blend of styles is the weighted sum of their embeddings), optionally a learned embedding of the
style file within the family (``n_style_files``: one of MMA's files, e.g. ``stdlib/blues128``, whose grooves
the song plays; it starts at zero, so a model trained without it is its starting point), key, meter, tempo
(log-spaced buckets, linearly interpolated) and which tracks play. Blocks are the ALiBi pre-norm blocks of
`tunesmith.models.lm`, so a song may be longer than the training windows.

Output: four heads, each over the joint values of two fields (Compound Word Transformer, Hsiao et al. 2021,
with its fields paired so a note costs three draws, not six): ``when`` (kind x position: end the bar, or a chord
or a note at a position), ``chord`` (degree above the tonic x quality: the same choice in every key; the absolute
root it makes is an input of the step), ``what`` (track x pitch) and ``how`` (duration x velocity).
A head reads the final hidden state plus the embeddings of the fields already chosen for the step (``chord`` and
``what`` know when, ``how`` also knows which note), so a pitch knows its track and a duration its pitch. Training
is teacher-forced; sampling (`SongStepper`) draws the heads in that order.

`SongStepper` is the sampler's path: the same network in float32 with a key/value cache, outside torch, because at
one step per call torch's per-operation dispatch costs more than the arithmetic at this size; a step and a head
are each one compiled call (`tunesmith.models.song_kernels`), a chunk of steps (replayed bars) runs in NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import erf
from torch import nn
from torch.nn import functional as F

from tunesmith.models.lm import Block, alibi_slopes
from tunesmith.models.song_kernels import decode_step, head_logits

KERNEL_WEIGHTS = ("qkv_w", "qkv_b", "proj_w", "proj_b", "fc_w", "fc_b", "out_w", "out_b")  # decode_step's order
TEMPO_RANGE = (40.0, 300.0)
TEMPO_BUCKETS = 12
N_KEYS = 24  # tonic + 12 * (mode == minor)


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
    """The network (module docstring). ``forward(steps, cond)`` -> logits per head of each next step."""

    arch = "compound-transformer"

    def __init__(self, *, columns: Mapping[str, int], outputs: Mapping[str, int],
                 output_reads: Mapping[str, Sequence[str]], n_tracks: int, n_styles: int, n_meters: int,
                 n_style_files: int = 0, dim: int = 128, layers: int = 4, heads: int = 4,
                 head_hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        head_hidden = head_hidden or dim
        self.kwargs: dict[str, Any] = dict(
            columns=dict(columns), outputs=dict(outputs), output_reads={k: list(v) for k, v in output_reads.items()},
            n_tracks=n_tracks, n_styles=n_styles, n_meters=n_meters, dim=dim, layers=layers, heads=heads,
            head_hidden=head_hidden, dropout=dropout)
        if n_style_files:
            self.kwargs["n_style_files"] = n_style_files
        self.columns = list(columns)
        self.output_reads = {k: list(v) for k, v in output_reads.items()}
        self.embed = nn.ModuleDict({name: nn.Embedding(size, dim, padding_idx=0) for name, size in columns.items()})
        self.style = nn.Embedding(n_styles, dim)
        self.style_file = nn.Embedding(n_style_files, dim) if n_style_files else None
        self.key = nn.Embedding(N_KEYS, dim)
        self.meter = nn.Embedding(n_meters, dim)
        self.tempo = nn.Embedding(TEMPO_BUCKETS, dim)
        self.tracks = nn.Linear(n_tracks, dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim=dim, heads=heads, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleDict({name: FieldHead(dim, head_hidden, size) for name, size in outputs.items()})
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))
        if self.style_file is not None:
            nn.init.zeros_(self.style_file.weight)  # a style file starts as its family

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
        """(B, dim) conditioning vectors from ``cond``: ``style`` (B, n_styles) weights, ``style_file`` (B,
        n_style_files) weights (a model with style files; left out: none), ``key`` (B,) 0..23, ``meter`` (B,),
        ``tempo`` (B,) quarter-note BPM, ``tracks`` (B, n_tracks) 0/1."""
        vector = (cond["style"].float() @ self.style.weight + self.key(cond["key"]) + self.meter(cond["meter"])
                  + tempo_weights(cond["tempo"]) @ self.tempo.weight + self.tracks(cond["tracks"].float()))
        if self.style_file is not None and "style_file" in cond:
            vector = vector + cond["style_file"].float() @ self.style_file.weight
        return vector

    def hidden(self, steps: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, dim) final hidden states of steps (B, T, columns)."""
        x = sum(self.embed[name](steps[..., i]) for i, name in enumerate(self.columns))
        x = self.drop(x + self.condition(cond).unsqueeze(1))
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x)

    def forward(self, steps: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits per head (B, T-1, values) of steps 1..T-1 given the steps before them (teacher forcing): a head
        reads the hidden state plus the embeddings of the columns it reads, taken from the step it predicts."""
        h = self.hidden(steps[:, :-1], cond)
        targets = steps[:, 1:]
        index = {name: i for i, name in enumerate(self.columns)}
        out = {}
        for name, head in self.heads.items():
            z = h
            for column in self.output_reads[name]:
                z = z + self.embed[column](targets[..., index[column]])
            out[name] = head(z)
        return out


def song_loss(model: SongTransformer, steps: torch.Tensor, cond: Mapping[str, torch.Tensor],
              targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed negative log-likelihood in nats of every event, number of events) of a batch: ``targets`` per head
    (B, T-1), the value each step 1..T-1 asks of it or -1; an event's NLL sums the heads it uses; padding steps
    (column 0, the kind, is 0) count nowhere."""
    logits = model(steps, cond)
    total = torch.zeros(())
    for name, target in targets.items():
        mask = target >= 0
        if mask.any():
            total = total + F.cross_entropy(logits[name][mask], target[mask], reduction="sum")
    return total, int((steps[:, 1:, 0] > 0).sum())


def mean_style(style: torch.Tensor) -> torch.Tensor:
    """Weights (B, n) of the mean of all n styles (or style files): style guidance's stand-in for "no style"."""
    return torch.full_like(style, 1.0 / style.shape[-1])


def guided_style(style: torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
    """Weights (B, n) of styles (or style files) moved away from their mean by ``strength`` (a number or (B,); 1: as
    given): what a model that learned its own style guidance (`distill_loss`) is conditioned on for a strength."""
    mean = mean_style(style)
    return mean + torch.as_tensor(strength, dtype=style.dtype).reshape(-1, 1) * (style - mean)


STYLE_KEYS = ("style", "style_file")  # the conditioning that style guidance moves


def without_style(cond: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``cond`` with its style (and style file) replaced by the mean of all: what style guidance contrasts with."""
    return {**cond, **{k: mean_style(cond[k]) for k in STYLE_KEYS if k in cond}}


def guided_conditioning(cond: Mapping[str, torch.Tensor], strength: float | torch.Tensor) -> dict[str, torch.Tensor]:
    """``cond`` with its style (and style file) moved away from the mean by ``strength`` (`guided_style`)."""
    return {**cond, **{k: guided_style(cond[k], strength) for k in STYLE_KEYS if k in cond}}


def distill_loss(student: SongTransformer, teacher: SongTransformer, steps: torch.Tensor,
                 cond: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                 strength: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed KL divergence in nats, number of events) from the teacher's style-guided heads to the student's
    plain ones: the teacher answers ``mean + s * (own - mean)`` in logits (`SongStepper`'s guidance, two passes),
    the student reads the song's style moved by ``s`` (`guided_style`) in one pass. ``strength`` (B,): s per
    song; ``targets`` as in `song_loss` (which fields an event uses)."""
    with torch.no_grad():
        own = teacher(steps, cond)
        base = teacher(steps, without_style(cond))
    student_logits = student(steps, guided_conditioning(cond, strength))
    s = strength.reshape(-1, 1, 1)
    total = torch.zeros(())
    for name, target in targets.items():
        mask = target >= 0
        if mask.any():
            guided = F.log_softmax((base[name] + s * (own[name] - base[name]))[mask], dim=-1)
            learned = F.log_softmax(student_logits[name][mask], dim=-1)
            total = total + (guided.exp() * (guided - learned)).sum()
    return total, int((steps[:, 1:, 0] > 0).sum())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ the sampler


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().numpy(), dtype=np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))


class SongStepper:
    """The network outside torch with a key/value cache, for sampling one step at a time (one step: a compiled
    kernel, `tunesmith.models.song_kernels`; a chunk of steps: NumPy).

    ``start(cond)`` resets the cache for a song's conditioning; ``feed(rows)`` runs one or more steps and
    returns the last one's final hidden state; ``logits(head, z)`` is a head; ``add(z, column, value)`` adds a
    chosen value's embedding to what the later heads read (the model's ``output_reads``). Attention looks back at
    most ``window`` steps (at most a training window; the song writer uses 256, 4-5 bars of a song:
    `tunesmith.compose.song.SAMPLING_WINDOW`). Each layer norm's gain and bias are folded into the product
    after it. Logits agree with the torch model to float32 rounding.

    Style guidance: ``start(cond, contrast=other, strength=s)`` runs the same steps under two conditionings side
    by side (a batch of 2) and the heads answer ``other + s * (cond - other)`` in logits, so with ``other`` the
    song's conditioning with the mean of all styles, s > 1 makes what is typical of the asked style more likely
    than what every style does (classifier-free guidance, Ho & Salimans 2022, with the mean style standing in
    for "no style"). Hidden states are then (2, dim); ``add`` broadcasts over them.
    """

    def __init__(self, model: SongTransformer, *, window: int = 512, capacity: int = 4096) -> None:
        model = model.eval()
        self.dim, self.heads = model.kwargs["dim"], model.kwargs["heads"]
        self.head_dim = self.dim // self.heads
        self.embed = {name: _np(model.embed[name].weight) for name in model.columns}
        sizes = [len(self.embed[name]) for name in model.columns]
        self.offsets = np.cumsum([0, *sizes[:-1]])
        self.table = np.concatenate([self.embed[name] for name in model.columns])  # one gather for a step
        folded = [self._block(block) for block in model.blocks]
        self.stacked = tuple(np.ascontiguousarray(np.stack([block[name].T for block in folded]))
                             for name in KERNEL_WEIGHTS)  # each (layers, out, in) or (layers, out): the kernel's
        # the chunk path's (in, out) weights per layer: views of the same arrays (a bias's .T is itself)
        self.blocks = [{name: weights[layer].T for name, weights in zip(KERNEL_WEIGHTS, self.stacked, strict=True)}
                       for layer in range(len(folded))]
        self.norm = (_np(model.norm.weight), _np(model.norm.bias))
        self.output_heads = {name: (_np(head.fc.weight), _np(head.fc.bias), _np(head.out.weight),
                                    _np(head.out.bias)) for name, head in model.heads.items()}  # (out, in)
        self.slopes = _np(alibi_slopes(self.heads)).reshape(self.heads, 1, 1)
        self.window = window
        self._model = model
        self.length = 0
        self.cond = np.zeros((1, self.dim), dtype=np.float32)  # one conditioning vector per batch row
        self.strength = 1.0
        self.keys = np.zeros((len(self.blocks), 1, self.heads, 0, self.head_dim), dtype=np.float32)
        self.values = self.keys
        self._allocate(capacity)
        self._compile()

    def _compile(self) -> None:
        """Run the compiled kernels once, so they are compiled (first time on a machine, 10-20 s) or read from
        Numba's cache (about a second) when the model loads rather than in the first song; the cache is left as
        it was (nothing fed)."""
        decode_step(np.zeros((1, self.dim), np.float32), *self.stacked, self.keys, self.values,
                    self.slopes.reshape(-1), 0, 0)
        for name in self.output_heads:
            self.logits(name, np.zeros(self.dim, np.float32))

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
        keys = np.zeros((len(self.blocks), len(self.cond), self.heads, capacity, self.head_dim), dtype=np.float32)
        values = np.zeros_like(keys)
        if self.keys.shape[1] == len(self.cond):
            keys[..., :self.length, :] = self.keys[..., :self.length, :]
            values[..., :self.length, :] = self.values[..., :self.length, :]
        self.keys, self.values, self.capacity = keys, values, capacity

    def condition(self, cond: Mapping[str, torch.Tensor]) -> np.ndarray:
        with torch.no_grad():
            return _np(self._model.condition(cond)[0])

    def start(self, cond: Mapping[str, torch.Tensor] | np.ndarray, *,
              contrast: Mapping[str, torch.Tensor] | np.ndarray | None = None, strength: float = 1.0) -> None:
        """Forget every step; the next song has conditioning ``cond`` (tensors of one song, or its vector), guided
        away from ``contrast`` by ``strength`` (class docstring; none, or strength 1: plain sampling)."""
        vectors = [cond if isinstance(cond, np.ndarray) else self.condition(cond)]
        if contrast is not None and strength != 1.0:
            vectors.append(contrast if isinstance(contrast, np.ndarray) else self.condition(contrast))
        self.cond = np.stack(vectors).astype(np.float32)
        self.strength = np.float32(strength)
        self.length = 0
        if self.keys.shape[1] != len(self.cond):
            self._allocate(self.capacity)

    def feed(self, rows: np.ndarray) -> np.ndarray:
        """Run steps (T, columns) after those fed so far; the final hidden state of the last one: (dim,), or
        (2, dim) when guided."""
        rows = np.atleast_2d(rows)
        t, b = rows.shape[0], len(self.cond)
        if self.length + t > self.capacity:
            self._allocate(max(2 * self.capacity, self.length + t))
        x = self.table[rows.astype(np.int64) + self.offsets].sum(axis=1) + self.cond[:, None]  # (B, T, dim)
        start, end = self.length, self.length + t
        if t == 1:  # the sampler's path: one compiled call
            x = np.ascontiguousarray(x[:, 0], dtype=np.float32)
            decode_step(x, *self.stacked, self.keys, self.values, self.slopes.reshape(-1), start,
                        max(0, end - self.window))
            self.length = end
            last = _normalized(x) * self.norm[0] + self.norm[1]
            return last[0] if b == 1 else last
        d, heads, head_dim = self.dim, self.heads, self.head_dim
        first = max(0, start + 1 - self.window)  # the first key any of the chunk's steps sees
        bias = self._chunk_bias(start, end, first)
        for layer, w in enumerate(self.blocks):
            qkv = _normalized(x) @ w["qkv_w"] + w["qkv_b"]
            q = qkv[..., :d].reshape(b, t, heads, head_dim).transpose(0, 2, 1, 3)
            self.keys[layer, :, :, start:end] = qkv[..., d:2 * d].reshape(b, t, heads, head_dim).transpose(0, 2, 1, 3)
            self.values[layer, :, :, start:end] = qkv[..., 2 * d:].reshape(b, t, heads, head_dim).transpose(0, 2, 1, 3)
            scores = q @ self.keys[layer, :, :, first:end].transpose(0, 1, 3, 2) + bias  # (B, h, T, keys)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            attended = (scores @ self.values[layer, :, :, first:end]).transpose(0, 2, 1, 3).reshape(b, t, d)
            x = x + attended @ w["proj_w"] + w["proj_b"]
            x = x + _gelu(_normalized(x) @ w["fc_w"] + w["fc_b"]) @ w["out_w"] + w["out_b"]
        self.length = end
        last = _normalized(x[:, -1]) * self.norm[0] + self.norm[1]
        return last[0] if b == 1 else last

    def rewind(self, length: int) -> None:
        """Forget every step fed after the first ``length`` (the next feed writes over their keys and values)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to step {length} of {self.length}")
        self.length = length

    def _chunk_bias(self, start: int, end: int, first: int) -> np.ndarray:
        """(h, T, end - first) ALiBi biases of a chunk's queries (steps start..end-1) over the keys from ``first``;
        future keys and keys out of the window get -inf."""
        distance = np.arange(start, end, dtype=np.float32)[:, None] - np.arange(first, end, dtype=np.float32)[None, :]
        bias = -self.slopes * np.maximum(distance, 0)
        bias[:, (distance < 0) | (distance >= self.window)] = -np.inf
        return bias

    def logits(self, name: str, z: np.ndarray) -> np.ndarray:
        """Head ``name``'s logits for input ``z``; guided, the two rows' logits combined by the strength."""
        return head_logits(np.ascontiguousarray(np.atleast_2d(z), dtype=np.float32), *self.output_heads[name],
                           float(self.strength) if z.ndim == 2 else 1.0)

    def add(self, z: np.ndarray, name: str, value: int) -> np.ndarray:
        """A head's input with the chosen value of column ``name`` added (what the next heads read)."""
        return z + self.embed[name][value]


def _normalized(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """(x - mean) / std over the last axis (a layer norm without its gain and bias)."""
    scale = np.float32(1.0 / x.shape[-1])
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) * scale  # add.reduce: no ndarray.mean overhead
    return centred / np.sqrt(np.add.reduce(centred * centred, axis=-1, keepdims=True) * scale + eps)
