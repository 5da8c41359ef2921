"""The neural instrument: a conditional generator driving a harmonic-plus-noise synthesizer, and a
multi-resolution STFT discriminator.

Generator (DDSP-style). A small network maps (instrument embedding, pitch, velocity, latent z) and a few
time features of every frame (hop 128 samples = 8 ms) to synthesizer controls:

- ``amp`` (B, T): overall loudness of the harmonic part,
- ``harm`` (B, T, K): the distribution of that loudness over K partials (partials above Nyquist get none),
- ``noise`` (B, T, F): a per-frame magnitude response for filtered white noise (F = n_fft // 2 + 1 bins),
  which makes breath, bow and hammer noise, and carries drum hits.

Speed options (v2 of the architecture; the defaults keep v1): ``frame_stride`` runs the frame network at a
coarser frame rate (e.g. 2: 16 ms frames) and linearly upsamples its outputs to the 8 ms synthesizer frames,
while an ``onset`` layer adds condition-weighted fast time features (5..60 ms decays) to the loudness of the
harmonic and noise parts at the fine rate, so attacks stay sharp. ``sub_partials`` adds partials at
half-integer multiples of f0 (0.5, 1.5, ...): organ stops such as 16' and 5 1/3' sound there.
``partials="log"`` (the drum kit) puts the partials on a fixed grid of
``LOG_PARTIALS_PER_OCTAVE`` per octave from ``LOG_PARTIALS_RANGE[0]`` to ``[1]`` times the key's frequency
instead of at its harmonics: a drum's body rings at its own frequency (a kick at 50 Hz, a tom's falling pitch),
not at its GM key's, so only a grid it can fade across holds it. ``noise_max`` raises the cap of the noise
filter's gain per bin (1.0 by default): a kick's low end is loud in a few bins, more than a gain of 1 can make
of white noise. ``variants`` (the drum kit) adds a table of variant vectors to the instrument embedding: a kit
that has several recordings of one key (a sample collection's 17 kicks) learns each as its own variant, where
one condition would have learned their average; a player picks one (a drum sampler's round robin).
``sweeps`` (the drum kit) adds that many swept sinusoids: each has a start and an end frequency (multiples
of the key's, up to ``SWEEP_OCTAVES`` octaves either way) and a time constant, per hit, and a loudness per frame:
a drum head's pitch falls right after the stroke (a kick from ~150 Hz to its 50 Hz body, a snare's head near
200 Hz), which a fixed grid of partials can only approximate by fading across it.
``pitch_basis="smooth"`` replaces the table of 128 learned pitch vectors with overlapping Gaussian bumps over
the keyboard (:class:`PitchBasis`): an instrument recorded every few keys (the Salamander piano: every third)
then has keys between its recordings that are a smooth blend of their neighbours, where a table would hold
vectors that training never touched.

The synthesizer is fixed DSP with no parameters: f0 comes from the MIDI pitch, so a note's pitch is right
by construction; harmonics are summed sinusoids of the integrated f0, and the noise is white noise shaped
in the STFT domain. Everything is differentiable, so spectral losses and the discriminator train the
network end to end.

Discriminator. For each of three STFT resolutions a small 2-D conv net reads the log-magnitude spectrogram
and returns a patch score map plus its intermediate features (for feature matching); conditioning enters
by projection (an inner product of pooled features with an embedding of instrument, pitch and velocity).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SR = 16000
HOP = 128
NOISE_FFT = 512
TIME_FEATURES = 14
SMALL_BATCH = 8  # up to this batch size the frame network's dilated convs run as matmuls (faster on CPU)
PARTIALS = ("harmonic", "log")
LOG_PARTIALS_RANGE = (0.35, 24.0)  # the log grid's partials, as multiples of the key's frequency
LOG_PARTIALS_PER_OCTAVE = 16
NOISE_START_LOGIT = -4.0  # the noise head's starting bias at a cap of 1 (a gain of 1e-4: little noise)
SWEEP_OCTAVES = 4.0  # a sweep's frequencies span this many octaves either side of the key's
SWEEP_TAU = (0.001, 0.15)  # a sweep's time constant, seconds (lowest, lowest + span)


def exp_sigmoid(x: torch.Tensor, *, exponent: float = 10.0, max_value: float = 2.0) -> torch.Tensor:
    """DDSP's positive, smooth, log-scaled output nonlinearity (spans ~1e-7..max_value)."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + 1e-7


def midi_to_hz(pitch: torch.Tensor) -> torch.Tensor:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def time_features(n_frames: int, *, hop: int, sr: int, note_off: float,
                  device: torch.device | None = None) -> torch.Tensor:
    """(TIME_FEATURES, T): position, onset decays and release decays of each frame (no learned part)."""
    t = torch.arange(n_frames, dtype=torch.float32, device=device) * hop / sr
    since_off = (t - note_off).clamp(min=0.0)
    released = (t >= note_off).float()
    feats = [t / 2.0, released, since_off * 2.0]
    feats += [torch.exp(-t / tau) for tau in (0.005, 0.02, 0.06, 0.2, 0.6, 2.0)]
    feats += [released * torch.exp(-since_off / tau) for tau in (0.01, 0.04, 0.12, 0.4)]
    feats += [torch.sqrt(t.clamp(max=2.0) / 2.0)]
    return torch.stack(feats)  # (F, T)


PITCH_BASES = ("table", "smooth")


class PitchBasis(nn.Module):
    """(B,) MIDI pitch -> (B, n) Gaussian bumps centred evenly from A0 to C8, each as wide as their spacing: a
    code that changes smoothly with pitch, so whatever is learned of the recorded keys carries over to the keys
    between them (elementwise only: cheap in ONNX)."""

    def __init__(self, n: int = 16, low: float = 21.0, high: float = 108.0) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(low, high, n), persistent=False)
        self.width = (high - low) / (n - 1)

    def forward(self, pitch: torch.Tensor) -> torch.Tensor:
        d = (pitch.float().unsqueeze(1) - self.centres) / self.width
        return torch.exp(-0.5 * d * d)


def pitch_code(basis: str, dim: int) -> nn.Module:
    """A pitch -> (B, dim) module: a learned table of 128 vectors, or a learned map of the smooth basis."""
    if basis not in PITCH_BASES:
        raise ValueError(f"pitch_basis must be one of {PITCH_BASES}, not {basis!r}")
    if basis == "table":
        return nn.Embedding(128, dim)
    return nn.Sequential(PitchBasis(), nn.Linear(16, dim))


class FiLMBlock(nn.Module):
    """Residual dilated conv over frames, modulated by the condition vector (scale and shift)."""

    def __init__(self, channels: int, cond_dim: int, dilation: int) -> None:
        super().__init__()
        self.film = nn.Linear(cond_dim, 2 * channels)
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)  # (B, C, 1) each
        h = F.leaky_relu(x * (1.0 + scale) + shift, 0.2)
        small = h.shape[0] <= SMALL_BATCH and not torch.onnx.is_in_onnx_export()  # h is (B, C, T); x may be (1, C, T)
        h = F.leaky_relu(self._conv_small(h) if small else self.conv(h), 0.2)
        return x + self.mix(h)

    def _conv_small(self, h: torch.Tensor) -> torch.Tensor:
        """The dilated conv as one matmul over the three shifted copies of ``h``: the same result, but at
        batch 1 PyTorch's CPU dilated convolution is a slow generic kernel (2x the time of this)."""
        d, t = self.conv.dilation[0], h.shape[-1]
        padded = F.pad(h, (d, d))
        cols = torch.cat([padded[..., i * d:i * d + t] for i in range(3)], dim=1)  # (B, 3C, T)
        weight = self.conv.weight.permute(0, 2, 1).reshape(self.conv.out_channels, -1)  # (C, 3C)
        return torch.matmul(weight, cols) + self.conv.bias.unsqueeze(-1)


def partial_ratios(partials: str, n_harmonics: int, sub_partials: int) -> list[float]:
    """The partials' frequencies over the key's: harmonics 1..n_harmonics and ``sub_partials`` half-integer ones
    (0.5, 1.5, ...), or the log grid (``partials="log"``, which ignores the counts)."""
    if partials == "log":
        low, high = LOG_PARTIALS_RANGE
        count = math.floor(math.log2(high / low) * LOG_PARTIALS_PER_OCTAVE) + 1
        return [low * 2.0 ** (k / LOG_PARTIALS_PER_OCTAVE) for k in range(count)]
    return [float(k) for k in range(1, n_harmonics + 1)] + [k + 0.5 for k in range(sub_partials)]


def upsample_linear(x: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, T * stride): frame j lands on fine frame j * stride, the fine frames between two
    coarse ones are interpolated linearly, those after the last repeat it. (Elementwise only: cheap in ONNX.)"""
    nxt = torch.cat([x[..., 1:], x[..., -1:]], dim=-1)
    steps = [x + (nxt - x) * (i / stride) for i in range(stride)]
    return torch.stack(steps, dim=-1).flatten(-2)


class NoteGenerator(nn.Module):
    """(instrument, pitch, velocity, z) -> synthesizer controls -> 16 kHz audio."""

    def __init__(self, *, n_instruments: int, embed_dim: int = 16, z_dim: int = 16, hidden: int = 128,
                 blocks: int = 4, n_harmonics: int = 64, sr: int = SR, hop: int = HOP, n_frames: int = 250,
                 note_off: float = 1.5, noise_fft: int = NOISE_FFT, frame_stride: int = 1,
                 sub_partials: int = 0, pitch_basis: str = "table", partials: str = "harmonic",
                 noise_max: float = 1.0, variants: int = 0, sweeps: int = 0) -> None:
        super().__init__()
        self.kwargs: dict[str, Any] = dict(
            n_instruments=n_instruments, embed_dim=embed_dim, z_dim=z_dim, hidden=hidden, blocks=blocks,
            n_harmonics=n_harmonics, sr=sr, hop=hop, n_frames=n_frames, note_off=note_off, noise_fft=noise_fft)
        if frame_stride != 1 or sub_partials:  # v2 options; v1 cards do not carry them
            self.kwargs.update(frame_stride=frame_stride, sub_partials=sub_partials)
        if pitch_basis != "table":  # older cards do not carry it
            self.kwargs["pitch_basis"] = pitch_basis
        if partials not in PARTIALS:
            raise ValueError(f"partials must be one of {PARTIALS}, not {partials!r}")
        if noise_max <= 0:
            raise ValueError(f"noise_max must be positive, not {noise_max}")
        if partials != "harmonic" or noise_max != 1.0:  # older cards do not carry them
            self.kwargs.update(partials=partials, noise_max=noise_max)
        self.noise_max = float(noise_max)
        self.variants = int(variants)
        if variants:  # older cards do not carry it
            self.kwargs["variants"] = self.variants
        self.sweeps = int(sweeps)
        if sweeps:  # older cards do not carry it
            self.kwargs["sweeps"] = self.sweeps
        self.sr, self.hop, self.n_frames, self.note_off = sr, hop, n_frames, note_off
        self.z_dim, self.n_harmonics, self.noise_fft = z_dim, n_harmonics, noise_fft
        self.stride = frame_stride
        self.n_coarse = -(-n_frames // frame_stride)  # frames of the frame network
        ratios = partial_ratios(partials, n_harmonics, sub_partials)
        self.register_buffer("ratios", torch.tensor(ratios), persistent=False)  # partial frequencies / f0
        self.n_partials = len(ratios)
        self.instrument = nn.Embedding(n_instruments, embed_dim)
        if variants:
            self.variant = nn.Embedding(variants, embed_dim)
            nn.init.normal_(self.variant.weight, std=0.1)
        self.pitch = pitch_code(pitch_basis, 16)
        cond_in = embed_dim + 16 + 2 + 1 + z_dim
        self.cond = nn.Sequential(nn.Linear(cond_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                  nn.LeakyReLU(0.2))
        self.inp = nn.Conv1d(TIME_FEATURES, hidden, 1)
        self.blocks = nn.ModuleList(FiLMBlock(hidden, hidden, 2 ** (i % 4)) for i in range(blocks))
        n_bins = noise_fft // 2 + 1
        self.n_bins = n_bins
        self.head = nn.Conv1d(hidden, 1 + self.n_partials + n_bins + self.sweeps, 1)
        with torch.no_grad():  # start with little noise, the same gain whatever the cap
            share = torch.sigmoid(torch.tensor(NOISE_START_LOGIT)) * self.noise_max ** (-1.0 / math.log(10.0))
            self.head.bias[1 + self.n_partials:1 + self.n_partials + n_bins] = torch.logit(share)
            self.head.bias[1 + self.n_partials + n_bins:] = NOISE_START_LOGIT  # sweeps start quiet
        if sweeps:  # per hit: start and end frequency, time constant of each sweep
            self.sweep = nn.Linear(hidden, 3 * self.sweeps)
            nn.init.normal_(self.sweep.weight, std=0.01)
            with torch.no_grad():  # spread over the octaves around the key, each falling an octave at first:
                # a frequency is learned by gradient only near where it starts
                ends = torch.linspace(-1.0, 2.0, self.sweeps) if self.sweeps > 1 else torch.zeros(1)
                self.sweep.bias.view(3, self.sweeps)[0] = torch.atanh((ends + 1.0) / SWEEP_OCTAVES)
                self.sweep.bias.view(3, self.sweeps)[1] = torch.atanh(ends / SWEEP_OCTAVES)
                self.sweep.bias.view(3, self.sweeps)[2] = 0.0
        self.register_buffer("times", time_features(self.n_coarse, hop=hop * frame_stride, sr=sr,
                                                    note_off=note_off), persistent=False)
        if frame_stride > 1:  # fine-rate loudness of the harmonic and the noise part: weights of fast features
            self.onset = nn.Linear(hidden, 2 * TIME_FEATURES)
            nn.init.zeros_(self.onset.weight)
            nn.init.zeros_(self.onset.bias)
            self.register_buffer("fine_times", time_features(n_frames, hop=hop, sr=sr, note_off=note_off),
                                 persistent=False)

    # ----------------------------------------------------------------- conditioning

    def embed(self, instrument: torch.Tensor, morph_to: torch.Tensor | None = None,
              morph: torch.Tensor | float = 0.0, variant: torch.Tensor | None = None) -> torch.Tensor:
        """(B, E) instrument embedding, linearly interpolated towards ``morph_to`` by ``morph``, plus the vector
        of each row's ``variant`` (B,) when the model has variants (variant 0 when none is given)."""
        e = self.instrument(instrument)
        if morph_to is not None:
            m = torch.as_tensor(morph, dtype=e.dtype).reshape(-1, 1)
            e = (1.0 - m) * e + m * self.instrument(morph_to)
        if self.variants:
            e = e + self.variant(torch.zeros_like(instrument) if variant is None else variant)
        return e

    def condition(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
        """(B, hidden) condition vector from an embedding, MIDI pitch (B,), velocity 1..127 (B,) and z (B, Z)."""
        p = pitch.float()
        pf = torch.stack([(p - 60.0) / 24.0, torch.log2(midi_to_hz(p) / 440.0) / 4.0], dim=1)
        v = (velocity.float() / 127.0).unsqueeze(1)
        return self.cond(torch.cat([emb, self.pitch(pitch.long()), pf, v, z], dim=1))

    # ----------------------------------------------------------------- controls

    @property
    def receptive_radius(self) -> int:
        """Frames of context on each side that one output frame of the frame network sees."""
        return sum(block.conv.dilation[0] for block in self.blocks)

    def control_logits(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor, z: torch.Tensor, *,
                       first: int = 0, last: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The frame network's raw outputs for frames [first, last): amplitude (B, T), partials (B, K, T) and noise
        bands (B, F, T) as logits, before the output nonlinearities and the mask of partials above Nyquist.

        Frames are computed with their full receptive field, so a window equals that part of the whole."""
        amp_logit, harm_logits, noise_logits, _, _ = self._logits(emb, pitch, velocity, z, first=first, last=last)
        return amp_logit, harm_logits, noise_logits

    def _logits(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor, z: torch.Tensor, *,
                first: int = 0, last: int | None = None) -> tuple[torch.Tensor, ...]:
        """`control_logits` plus the sweeps' loudness logits (B, S, T) and per-hit parameters (B, 3S) (None
        without sweeps)."""
        last = self.n_frames if last is None else last
        s = self.stride
        c_first, c_last = first // s, last if s == 1 else min(self.n_coarse, (last - 1) // s + 2)  # interpolated
        lo, hi = max(0, c_first - self.receptive_radius), min(self.n_coarse, c_last + self.receptive_radius)
        cond = self.condition(emb, pitch, velocity, z)  # (B, H)
        x = self.inp(self.times[:, lo:hi].unsqueeze(0))  # (1, H, T'): condition-free, broadcast over the batch
        for block in self.blocks:
            x = block(x, cond)
        x = x[..., c_first - lo:c_last - lo]
        out = self.head(F.leaky_relu(x, 0.2))  # (B, 1 + K + F + S, coarse frames)
        if s > 1:
            out = upsample_linear(out, s)[..., first - c_first * s:last - c_first * s]  # fine frames [first, last)
        k, f = self.n_partials, self.n_bins
        amp_logit, harm_logits, noise_logits = out[:, 0], out[:, 1:1 + k], out[:, 1 + k:1 + k + f]
        if s > 1:
            w = self.onset(cond).view(-1, 2, TIME_FEATURES)  # (B, 2, F)
            fine = torch.matmul(w, self.fine_times[:, first:last])  # (B, 2, T)
            amp_logit = amp_logit + fine[:, 0]
            noise_logits = noise_logits + fine[:, 1:2]
        if not self.sweeps:
            return amp_logit, harm_logits, noise_logits, None, None
        return amp_logit, harm_logits, noise_logits, out[:, 1 + k + f:], self.sweep(cond)

    def audible(self, pitch: torch.Tensor) -> torch.Tensor:
        """(B, 1, K) 1 for the partials of each pitch below Nyquist (less a margin), else 0."""
        f0 = midi_to_hz(pitch.float()).view(-1, 1, 1)
        return (f0 * self.ratios.view(1, 1, -1) < self.sr / 2 - 200).float()

    def controls(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                 z: torch.Tensor, *, first: int = 0, last: int | None = None) -> dict[str, torch.Tensor]:
        """Synthesizer controls of frames [first, last) of the corpus note (default: all n_frames)."""
        amp_logit, harm_logits, noise_logits, sweep_logits, sweep = self._logits(emb, pitch, velocity, z,
                                                                                 first=first, last=last)
        f0 = midi_to_hz(pitch.float()).unsqueeze(1)  # (B, 1): the note's pitch, exactly
        dist = torch.softmax(harm_logits.transpose(1, 2), dim=-1) * self.audible(pitch)  # (B, T, K)
        dist = dist / dist.sum(-1, keepdim=True).clamp(min=1e-7)
        c = {"amp": exp_sigmoid(amp_logit), "harm": dist, "f0": f0,
             "noise": exp_sigmoid(noise_logits.transpose(1, 2), max_value=self.noise_max)}  # (B, T, F)
        if sweep is not None:
            start, end, tau = sweep.view(-1, 3, self.sweeps).unbind(1)  # (B, S) each
            c["sweep_amp"] = exp_sigmoid(sweep_logits.transpose(1, 2))  # (B, T, S)
            c["sweep_hz"] = torch.stack([f0 * 2.0 ** (SWEEP_OCTAVES * torch.tanh(start)),
                                         f0 * 2.0 ** (SWEEP_OCTAVES * torch.tanh(end))], dim=1)  # (B, 2, S)
            c["sweep_tau"] = SWEEP_TAU[0] + SWEEP_TAU[1] * torch.sigmoid(tau)  # (B, S) seconds
        return c

    def forward(self, instrument: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor, z: torch.Tensor,
                *, noise_seed: int | None = None, start: int = 0, frames: int | None = None,
                morph_to: torch.Tensor | None = None, morph: torch.Tensor | float = 0.0,
                variant: torch.Tensor | None = None) -> torch.Tensor:
        """Audio (B, frames * hop) of the frames [start, start + frames) of the corpus-length note."""
        frames = self.n_frames - start if frames is None else frames
        last = min(self.n_frames, start + frames + 1)  # one frame more: the interpolation's right end
        emb = self.embed(instrument, morph_to, morph, variant)
        c = self.controls(emb, pitch, velocity, z, first=start, last=last)
        return synthesize(c, sr=self.sr, hop=self.hop, noise_fft=self.noise_fft, frames=frames,
                          noise_seed=noise_seed, phase_start=start, ratios=self.ratios)


# --------------------------------------------------------------------------- synthesizer


def harmonic_synth(f0: torch.Tensor, amp: torch.Tensor, harm: torch.Tensor, *, sr: int, hop: int,
                   frames: int, phase_start: int = 0, phase0: torch.Tensor | None = None,
                   ratios: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of K partials of a steady f0 (B, 1) in Hz over ``frames`` frames (partial k at ``ratios[k]`` * f0;
    default: the harmonics 1..K).

    amp: (B, T) and harm: (B, T, K) with T >= frames (frame ``frames`` is the right end of the last
    interpolation, repeated from the last when absent); ``phase_start`` is the absolute frame index of the
    window (for phase continuity); phase0: (B, K) initial phases. Returns (B, frames * hop).

    Harmonic amplitudes are interpolated linearly between frames. Because f0 is steady, the k-th harmonic
    at sample j of frame t is sin(k w n_t + p_k + k w j) = sin(k w n_t + p_k) cos(k w j) + cos(..) sin(k w j):
    each frame's audio is its (K,) phase-rotated amplitudes times one (K, hop) table of cosines and sines
    shared by all frames. With the interpolation weights folded into the table, synthesis is one batched
    matmul and only (B, T, K) + (B, K, hop) sines, instead of (B, K, samples) of them. The tables carry no
    gradient: f0 is fixed by the pitch. Partials at or above Nyquist - 200 Hz for every note of the batch
    are skipped (the generator gives them no amplitude; they would alias).
    """
    b, _, k = harm.shape
    with torch.no_grad():
        w = (2 * math.pi * f0.double() / sr).view(b, 1, 1)  # (B, 1, 1) radians per sample
        harmonics = (torch.arange(1, k + 1, dtype=torch.float64, device=f0.device) if ratios is None
                     else ratios.to(torch.float64))
        keep = torch.nonzero(harmonics * float(f0.min()) < sr / 2 - 200).flatten()  # audible for some note
        if len(keep) < k:  # only the audible partials
            harmonics, harm, k = harmonics.index_select(0, keep), harm.index_select(-1, keep), len(keep)
            phase0 = None if phase0 is None else phase0.index_select(1, keep)
        table = _frame_table(w, harmonics, hop)  # (B, 4K, hop)
        cos_theta, sin_theta = _frame_phases(w, harmonics, hop, phase_start, frames)  # (B, frames, K) each
        if phase0 is not None:  # rotate every partial by its initial phase
            cos_p, sin_p = torch.cos(phase0).view(b, 1, k), torch.sin(phase0).view(b, 1, k)
            cos_theta, sin_theta = cos_theta * cos_p - sin_theta * sin_p, sin_theta * cos_p + cos_theta * sin_p
    a = amp.unsqueeze(-1) * harm  # (B, T, K)
    if a.shape[1] <= frames:
        a = torch.cat([a, a[:, -1:].expand(b, frames + 1 - a.shape[1], k)], dim=1)
    left, right = a[:, :frames], a[:, 1:frames + 1]  # each frame's amplitudes and the next frame's
    rotated = torch.cat([left * sin_theta, left * cos_theta, right * sin_theta, right * cos_theta], dim=-1)
    return (rotated @ table).reshape(b, frames * hop)


def _frame_table(w: torch.Tensor, harmonics: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, 4K, hop) cosines and sines of each partial over one frame, weighted for the linear interpolation
    of amplitudes. It depends on the pitches only, so it is cached (a performance repeats pitches)."""
    key = (tuple(w.flatten().tolist()), tuple(harmonics.tolist()), hop, w.device)
    if key not in _TABLES:
        with torch.inference_mode(False):  # a normal tensor: the cache also serves training (autograd)
            w64 = torch.tensor(key[0], dtype=torch.float64, device=w.device).view(-1, 1, 1)
            ratios = torch.tensor(key[1], dtype=torch.float64, device=w.device).view(1, -1, 1)
            steps = torch.arange(hop, dtype=torch.float64, device=w.device)
            within = w64 * ratios * steps  # (B, K, hop)
            alpha = (steps / hop).view(1, 1, hop)
            cos_w, sin_w = torch.cos(within), torch.sin(within)
            table = torch.cat([cos_w * (1 - alpha), sin_w * (1 - alpha), cos_w * alpha, sin_w * alpha], 1).float()
        if len(_TABLES) >= 256:
            _TABLES.clear()
        _TABLES[key] = table
    return _TABLES[key]


def _frame_phases(w: torch.Tensor, harmonics: torch.Tensor, hop: int, phase_start: int,
                  frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine (B, frames, K) of each partial's phase at the start of each frame, computed in float64
    (exact enough for notes of any length); cached for short windows, which depend on the pitches only."""
    key = (tuple(w.flatten().tolist()), tuple(harmonics.tolist()), hop, phase_start, frames, w.device)
    if key in _PHASES:
        return _PHASES[key]
    with torch.inference_mode(False):  # a normal tensor: the cache also serves training (autograd)
        w64 = torch.tensor(key[0], dtype=torch.float64, device=w.device).view(-1, 1, 1)
        ratios = torch.tensor(key[1], dtype=torch.float64, device=w.device).view(1, 1, -1)
        starts = (torch.arange(frames, dtype=torch.float64, device=w.device) + phase_start) * hop
        theta = w64 * starts.view(1, frames, 1) * ratios  # (B, frames, K)
        result = torch.cos(theta).float(), torch.sin(theta).float()
    if theta.numel() <= 50_000:
        if len(_PHASES) >= 64:
            _PHASES.clear()
        _PHASES[key] = result
    return result


_TABLES: dict[tuple, torch.Tensor] = {}
_PHASES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def noise_synth(noise: torch.Tensor, *, hop: int, n_fft: int, frames: int, seed: int | None = None) -> torch.Tensor:
    """White noise shaped frame by frame in the STFT domain. noise: (B, T >= frames, F) -> (B, frames * hop).

    The white noise comes from numpy's PCG64 seeded by ``seed`` (from torch's global generator when None);
    it is drawn n_fft / 2 samples longer on each side instead of reflect-padding it for a centred STFT:
    the same frames, a few times cheaper at batch 1 than torch's seeded uniform generator plus padding."""
    b = noise.shape[0]
    n = frames * hop
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    white = np.random.default_rng(seed).random((b, n + n_fft), dtype=np.float32) * 2.0 - 1.0
    window = _hann(n_fft, noise.device)
    spec = torch.stft(torch.from_numpy(white).to(noise.device), n_fft, hop, window=window, center=False,
                      return_complex=True)  # (B, F, frames + 1), frame j centred on sample j * hop
    mags = noise[:, :frames + 1].transpose(1, 2)
    if mags.shape[-1] < frames + 1:
        mags = torch.cat([mags, mags[..., -1:].expand(-1, -1, frames + 1 - mags.shape[-1])], dim=-1)
    return overlap_add_istft(spec * mags, n_fft, hop, window, length=n)


def _hann(n_fft: int, device: torch.device) -> torch.Tensor:
    key = (n_fft, device)
    if key not in _WINDOWS:
        with torch.inference_mode(False):
            _WINDOWS[key] = torch.hann_window(n_fft, device=device)
    return _WINDOWS[key]


_WINDOWS: dict[tuple, torch.Tensor] = {}


def overlap_add_istft(spec: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, *, length: int) -> torch.Tensor:
    """torch.istft(spec, n_fft, hop, window=window, center=True, length=length) for n_fft a multiple of hop,
    written as an inverse real FFT and ``n_fft // hop`` shifted sums: the same result in a fraction of the time
    (torch's generic overlap-add dominates the noise synthesizer at batch 1). spec: (B, F, T) -> (B, length)."""
    if n_fft % hop:
        return torch.istft(spec, n_fft, hop, window=window, center=True, length=length)
    b, _, t = spec.shape
    r = n_fft // hop
    frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft, dim=-1) * window  # (B, T, n_fft)
    chunks = frames.reshape(b, t, r, hop)
    out = sum(F.pad(chunks[:, :, i], (0, 0, i, r - 1 - i)) for i in range(r))  # chunk i of frame j: block j + i
    pad = n_fft // 2
    y = out.reshape(b, -1)[:, pad:pad + length]
    return y * _inverse_envelope(window, hop, t, pad, length)


def _inverse_envelope(window: torch.Tensor, hop: int, frames: int, pad: int, length: int) -> torch.Tensor:
    """1 / (overlap-added squared window) over the output samples (1 where it vanishes), as torch.istft divides."""
    key = (window.shape[0], float(window.sum()), hop, frames, pad, length, window.device)
    if key not in _ENVELOPES:
        if len(_ENVELOPES) >= 64:
            _ENVELOPES.clear()
        with torch.inference_mode(False):  # a normal tensor: the cache also serves training (autograd)
            _ENVELOPES[key] = _compute_inverse_envelope(window.clone(), hop, frames, pad, length)
    return _ENVELOPES[key]


def _compute_inverse_envelope(window: torch.Tensor, hop: int, frames: int, pad: int, length: int) -> torch.Tensor:
    r = window.shape[0] // hop
    squared = (window.double() ** 2).reshape(r, hop)
    envelope = torch.zeros(frames + r - 1, hop, dtype=torch.float64, device=window.device)
    for i in range(r):
        envelope[i:i + frames] += squared[i]
    env = envelope.reshape(-1)[pad:pad + length]
    return torch.where(env > 1e-11, 1.0 / env, torch.ones_like(env)).to(window.dtype)


_ENVELOPES: dict[tuple, torch.Tensor] = {}


def synthesize(c: dict[str, torch.Tensor], *, sr: int, hop: int, noise_fft: int, frames: int | None = None,
               noise_seed: int | None = None, phase_start: int = 0,
               phase0: torch.Tensor | None = None, ratios: torch.Tensor | None = None) -> torch.Tensor:
    """Audio (B, frames * hop) from controls (default: all their frames); ``noise_seed`` fixes the noise;
    ``ratios``: the partials' frequencies over f0 (default: harmonics 1..K)."""
    frames = c["amp"].shape[1] if frames is None else frames
    harmonic = harmonic_synth(c["f0"], c["amp"], c["harm"], sr=sr, hop=hop, frames=frames,
                              phase_start=phase_start, phase0=phase0, ratios=ratios)
    y = harmonic + noise_synth(c["noise"], hop=hop, n_fft=noise_fft, frames=frames, seed=noise_seed)
    if "sweep_amp" in c:
        y = y + sweep_synth(c["sweep_amp"], c["sweep_hz"], c["sweep_tau"], sr=sr, hop=hop, frames=frames,
                            phase_start=phase_start)
    return y


def sweep_synth(amp: torch.Tensor, hz: torch.Tensor, tau: torch.Tensor, *, sr: int, hop: int, frames: int,
                phase_start: int = 0) -> torch.Tensor:
    """Swept sinusoids: each glides from its start to its end frequency, f(t) = end + (start - end) e^(-t / tau),
    from sine phase 0 at the hit's start, its loudness per frame linearly interpolated; a sweep above Nyquist is
    silent there. amp (B, T >= frames, S), hz (B, 2, S) start and end in Hz, tau (B, S) seconds; ``phase_start``:
    the first frame's index in the whole hit (for windows of it). Returns (B, frames * hop)."""
    n = frames * hop
    t = ((torch.arange(n, dtype=torch.float64, device=amp.device) + phase_start * hop) / sr).view(1, -1, 1)
    start, end = hz[:, 0:1].double(), hz[:, 1:2].double()  # (B, 1, S)
    tau = tau.unsqueeze(1).double()
    decay = torch.exp(-t / tau)
    phase = 2.0 * math.pi * (end * t + (start - end) * tau * (1.0 - decay))  # the integral of f(t)
    audible = (end + (start - end) * decay < sr / 2 - 200).to(amp.dtype)
    per_sample = upsample_linear(amp[:, :frames + 1].transpose(1, 2), hop)[..., :n].transpose(1, 2)  # (B, n, S)
    return (per_sample * audible * torch.sin(phase).to(amp.dtype)).sum(-1)


# --------------------------------------------------------------------------- discriminator


def log_magnitude(y: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, n) audio -> (B, 1, F, T) log-magnitude STFT."""
    window = torch.hann_window(n_fft, device=y.device)
    spec = torch.stft(y, n_fft, hop, window=window, center=True, return_complex=True)
    return torch.log(spec.abs().clamp(min=1e-5)).unsqueeze(1)


class SpectrogramCritic(nn.Module):
    """1-D conv net over the frames of one STFT resolution (frequency bins as channels): a patch score map
    and its hidden features. Convolving over time only keeps it cheap enough for a 2-core CPU."""

    def __init__(self, *, n_fft: int, hop: int, channels: int = 64, cond_dim: int = 64) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n_bins = n_fft // 2 + 1
        self.convs = nn.ModuleList([
            nn.Conv1d(n_bins, channels, 5, padding=2),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2),
            nn.Conv1d(channels, channels, 5, stride=2, padding=4, dilation=2),
            nn.Conv1d(channels, channels, 3, padding=1),
        ])
        self.out = nn.Conv1d(channels, 1, 3, padding=1)
        self.project = nn.Linear(cond_dim, channels)

    def forward(self, y: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = log_magnitude(y, self.n_fft, self.hop).squeeze(1)  # (B, F, T)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        score = self.out(x).mean(dim=(1, 2))  # (B,)
        pooled = x.mean(dim=2)  # (B, C)
        return score + (pooled * self.project(cond)).sum(1), features


class NoteDiscriminator(nn.Module):
    """Multi-resolution STFT discriminator, conditioned by projection on instrument, pitch and velocity."""

    def __init__(self, *, n_instruments: int, channels: int = 64, cond_dim: int = 64,
                 resolutions: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (1024, 256)),
                 pitch_basis: str = "table") -> None:
        super().__init__()
        self.kwargs: dict[str, Any] = dict(n_instruments=n_instruments, channels=channels, cond_dim=cond_dim,
                                           resolutions=[list(r) for r in resolutions], pitch_basis=pitch_basis)
        self.instrument = nn.Embedding(n_instruments, cond_dim)
        self.pitch = pitch_code(pitch_basis, cond_dim)
        self.velocity = nn.Linear(1, cond_dim)
        self.critics = nn.ModuleList(SpectrogramCritic(n_fft=n, hop=h, channels=channels, cond_dim=cond_dim)
                                     for n, h in resolutions)

    def forward(self, y: torch.Tensor, instrument: torch.Tensor, pitch: torch.Tensor,
                velocity: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Per resolution: scores (B,) and feature maps."""
        cond = self.instrument(instrument) + self.pitch(pitch.long()) + self.velocity(
            velocity.float().unsqueeze(1) / 127.0)
        scores, features = [], []
        for critic in self.critics:
            s, f = critic(y, cond)
            scores.append(s)
            features.append(f)
        return scores, features


# --------------------------------------------------------------------------- losses


def multi_resolution_stft_loss(fake: torch.Tensor, real: torch.Tensor,
                               ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128)) -> torch.Tensor:
    """DDSP's multi-scale spectral loss: L1 of linear and of log magnitudes, summed over FFT sizes."""
    total = fake.new_zeros(())
    for n_fft in ffts:
        window = torch.hann_window(n_fft, device=fake.device)
        sf = torch.stft(fake, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        sr_ = torch.stft(real, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        total = total + (sf - sr_).abs().mean() + (torch.log(sf + 1e-5) - torch.log(sr_ + 1e-5)).abs().mean()
    return total


def log_mel_loss(fake: torch.Tensor, real: torch.Tensor, *, sr: int, n_fft: int = 1024, hop: int = 128,
                 n_mels: int = 80) -> torch.Tensor:
    """L1 distance of log-mel magnitudes (Slaney filters): the spectrum as the analyzer, whose embedding judges
    the drum kit (FAD, NDB), hears it, with bands as narrow at the low end as a drum's body needs."""
    window = _hann(n_fft, fake.device)
    filters = _mel_matrix(sr, n_fft, n_mels, fake.device)

    def mel(y: torch.Tensor) -> torch.Tensor:
        return torch.log(filters @ torch.stft(y, n_fft, hop, window=window, return_complex=True).abs() + 1e-5)

    return (mel(fake) - mel(real)).abs().mean()


def envelope_loss(fake: torch.Tensor, real: torch.Tensor, *, frame: int = 256, hop: int = 128,
                  floor: float = 1e-7) -> torch.Tensor:
    """L1 distance of the log power of each frame (``frame`` samples every ``hop``; ``floor`` -70 dB): the level
    of a hit over time, which the spectral losses spread over hundreds of bins and weigh little."""

    def level(y: torch.Tensor) -> torch.Tensor:
        return torch.log(y.unfold(-1, frame, hop).pow(2).mean(-1) + floor)

    return (level(fake) - level(real)).abs().mean()


def pitch_curvature_loss(generator: NoteGenerator, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                         z: torch.Tensor, *, first: int = 0, last: int | None = None) -> torch.Tensor:
    """How sharply the generator's sound bends from key to key: the mean squared second difference over pitch - 1,
    pitch, pitch + 1 (the same embedding, velocity and z) of the log amplitude, of the log share of each partial
    (weighted by its share at ``pitch``, so that partials too quiet to hear count little) and of the log noise bands,
    over frames [first, last). A timbre that changes smoothly across the keyboard has none; one key brighter than
    both its neighbours has much (the neural piano's keys between its recordings, docs/models.md)."""
    b = pitch.shape[0]
    keys = torch.cat([pitch - 1, pitch, pitch + 1])
    amp, harm, noise = generator.control_logits(emb.repeat(3, 1), keys, velocity.repeat(3), z.repeat(3, 1),
                                                first=first, last=last)
    audible = generator.audible(pitch + 1).transpose(1, 2).repeat(3, 1, 1)  # (3B, K, 1): audible at all three
    log_share = torch.log_softmax(harm.masked_fill(audible == 0, -1e4), dim=1)
    log_amp = torch.log(exp_sigmoid(amp))
    log_noise = torch.log(exp_sigmoid(noise, max_value=generator.noise_max))

    def curvature(x: torch.Tensor) -> torch.Tensor:
        low, mid, high = x.view(3, b, *x.shape[1:])
        return high - 2.0 * mid + low

    weight = (log_share.view(3, b, *harm.shape[1:])[1].exp() * audible[:b]).detach()  # (B, K, T) shares at pitch
    harm_term = (weight * curvature(log_share).pow(2)).sum(1).mean()
    return curvature(log_amp).pow(2).mean() + harm_term + curvature(log_noise).pow(2).mean()


def _mel_matrix(sr: int, n_fft: int, n_mels: int, device: torch.device) -> torch.Tensor:
    key = (sr, n_fft, n_mels, device)
    if key not in _MELS:
        from tunesmith.audio.features import mel_filters

        with torch.inference_mode(False):
            _MELS[key] = torch.tensor(mel_filters(float(sr), n_fft, n_mels, 0.0, None), device=device)
    return _MELS[key]


_MELS: dict[tuple, torch.Tensor] = {}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- ONNX export of the frame network


class ControlNetwork(nn.Module):
    """The generator's learned part alone, for ONNX export: (embedding, pitch, velocity, z) -> the synthesizer
    controls amp (B, T), harm (B, T, K), noise (B, T, F) of a whole corpus note, and with sweeps sweep_amp
    (B, T, S), sweep_hz (B, 2, S), sweep_tau (B, S) (`onnx_outputs`). The fixed DSP stays outside."""

    def __init__(self, generator: NoteGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c = self.generator.controls(emb, pitch, velocity, z)
        return tuple(c[name] for name in onnx_outputs(self.generator))


ONNX_INPUTS = ("emb", "pitch", "velocity", "z")
ONNX_OUTPUTS = ("amp", "harm", "noise")
SWEEP_OUTPUTS = ("sweep_amp", "sweep_hz", "sweep_tau")


def onnx_outputs(generator: NoteGenerator) -> tuple[str, ...]:
    """The controls the exported frame network returns, in order (f0 is computed outside it)."""
    return ONNX_OUTPUTS + (SWEEP_OUTPUTS if generator.sweeps else ())


def export_onnx(generator: NoteGenerator) -> bytes:
    """The frame network of ``generator`` as an ONNX model (bytes) with a dynamic batch dimension."""
    import io
    import warnings

    network = ControlNetwork(generator).eval()
    batch = 2
    emb_dim = generator.instrument.embedding_dim
    example = (torch.zeros(batch, emb_dim), torch.full((batch,), 60, dtype=torch.long),
               torch.full((batch,), 100, dtype=torch.long), torch.zeros(batch, generator.z_dim))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        outputs = onnx_outputs(generator)
        torch.onnx.export(network, example, buffer, input_names=list(ONNX_INPUTS), output_names=list(outputs),
                          dynamic_axes={name: {0: "batch"} for name in (*ONNX_INPUTS, *outputs)},
                          opset_version=17, dynamo=False)
    return buffer.getvalue()
