"""Training loop of the neural instrument (`tunesmith train gan`).

Each step draws a batch of training notes and a random window of each (a share of windows start at the
onset, where most of an instrument's character is), generates the same windows from the notes'
conditions, then:

1. discriminator step (once the warm-up is over): hinge loss on real vs generated windows;
2. generator step: multi-resolution STFT loss against the real note of the same condition (and, for the drum
   kit, a log-mel loss and a loss on each frame's level; for the piano, a loss on how sharply the sound bends from
   key to key), plus, after the warm-up, the hinge generator loss and feature matching on the discriminator's
   hidden layers.

Losses and gradient norms go to metrics.csv (and curves.png); every ``grid_every`` steps a PNG grid of
generated vs real spectrograms; every ``eval_every`` steps a validation figure (the spectral distance of
whole generated notes to the valid notes of the same conditions) chooses the ``best`` checkpoint.
Steps are deterministic per seed: batch, windows, z and noise come from generators seeded by (seed, step),
so a resumed run continues exactly where the interrupted one would have gone.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tunesmith.data.dataset import Dataset
from tunesmith.data.manifest import Record
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.models.gan import (
    NoteDiscriminator,
    NoteGenerator,
    count_parameters,
    envelope_loss,
    log_mel_loss,
    multi_resolution_stft_loss,
    pitch_curvature_loss,
)
from tunesmith.plotting import pyplot, save_figure
from tunesmith.symbolic.instruments import PIANO_RANGE
from tunesmith.train.harness import Clock, Recipe, check_budget, previous_card, resumed_config, run
from tunesmith.train.schedule import cosine_lr

# the v2 generator (issue 5, session 3): hidden 96, frame network at 16 ms frames, half-integer sub-partials,
# 256-point noise filter -- about a third of v1's FLOPs per note
V2_MODEL: dict[str, Any] = {"hidden": 96, "frame_stride": 2, "sub_partials": 8, "noise_fft": 256}

# training notes are drawn with these weights per instrument family (others 1): the families the analyzer
# recognised least in the v1 model's notes (brass 0.53, flute 0.60, organ 0.70, synth lead 0.82, guitar 0.87)
FAMILY_WEIGHTS: dict[str, float] = {"brass": 3.0, "flute": 2.5, "organ": 2.0, "synth_lead": 1.5, "guitar": 1.5}

COLUMNS = ["lr_g", "spec", "mel", "envelope", "curvature", "adv_g", "fm", "loss_d", "d_real", "d_fake", "grad_g",
           "grad_d", "valid_spec"]


@dataclass
class GANTrainConfig:
    """Everything that shapes a run; stored on the checkpoint card."""

    minutes: float = 30.0
    max_steps: int | None = None
    batch_size: int = 16
    crop_frames: int = 64
    onset_share: float = 0.6
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    adv_start: int = 800
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    spec_weight: float = 1.0
    mel_weight: float | None = None  # the log-mel loss's weight; None: the subset's (SUBSET_LOSS_WEIGHTS; else 0)
    envelope_weight: float | None = None  # the weight of the loss on each frame's level (log power); likewise
    curvature_weight: float | None = None  # the weight of the pitch curvature loss (keys between keys); likewise
    log_every: int = 25
    eval_every: int = 250
    grid_every: int = 500
    valid_items: int = 48
    seed: int = 0
    threads: int | None = 1
    model: dict[str, Any] = field(default_factory=lambda: dict(V2_MODEL))
    family_weights: dict[str, float] = field(default_factory=lambda: dict(FAMILY_WEIGHTS))
    discriminator: dict[str, Any] = field(default_factory=dict)
    subset: str | None = None  # a `samples` dataset: "drums" (kits x drum classes) or "piano" (the recorded piano)


SUBSETS = {"drums": "drum_hit", "piano": "piano_note"}  # a samples dataset's subset -> its records' kind
# per subset, the options of the generator ("model") and of the discriminator a run gets unless it names them:
# the piano is recorded every third key, so its pitch code is smooth (the keys between blend their neighbours; a
# table would leave them untrained); a drum rings at its own frequencies, not at its GM key's harmonics, and a
# kick's low end needs more noise gain than a bin's default cap (docs/models.md, "Neural drum kit"); swept
# sinusoids (`--sweeps`) are asked for by name: one run with them did not bring the kit's NDB down
SUBSET_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "piano": {"model": {"pitch_basis": "smooth"}, "discriminator": {"pitch_basis": "smooth"}},
    "drums": {"model": {"partials": "log", "noise_max": 8.0}},
}
# per subset, the weights of the losses beside the STFT loss (a config's None takes them): the drum kit v1.1.0's
# hits came out 6-12 dB too quiet at the onset, which the STFT loss barely weighs (docs/models.md, "Neural drum
# kit"); a 1,000-step check: onset bias -8.2 dB with neither, -4.9 with the log-mel loss, -2.2 with both
# the piano v1.0.0 (without it) made key 73 brighter than both 72 and 74 (its worst continuity step, 1.75 times the
# recordings' largest step there): the curvature loss of keys drawn from the whole keyboard, recorded or not
SUBSET_LOSS_WEIGHTS: dict[str, dict[str, float]] = {"drums": {"mel_weight": 5.0, "envelope_weight": 1.0},
                                                    "piano": {"curvature_weight": 20.0}}
PIANO = {"name": "grand_piano", "family": "keyboard", "program": 0, "drum": False}


class NoteData:
    """A `notes` dataset (or a subset of a `samples` dataset of real recordings) opened for training: conditions
    as arrays and audio read from the cache.

    A samples subset becomes notes as the generator knows them: ``drums`` has one "instrument" per kit of the
    training split (its drum class is the GM drum key in ``pitch``), ``piano`` one instrument, the recorded grand
    piano. Its held-out kits cannot be generated by kit, so the drums' ``valid`` items are every tenth training
    hit (a measure of fit; the held-out kits are for `evaluate`); the piano's ``valid`` notes are pitches never
    recorded in training (a measure of the pitches between). A kit with several recordings of one key at one
    velocity (a sample collection's 17 kicks) numbers them: each hit's ``variant``, and per kit, for each such
    key, the count at each of its velocity layers (``instruments[i]["variants"]``); every other note is variant
    0."""

    def __init__(self, root: Path, split: str, subset: str | None = None) -> None:
        self.dataset = Dataset(root)
        if self.dataset.kind == "samples":
            self._samples(root, split, subset)
            return
        if self.dataset.kind != "notes":
            raise DatasetError(f"{root} is a {self.dataset.kind!r} dataset; train gan needs a notes dataset")
        info = self.dataset.info
        self.sr = int(info["sr"])
        self.length = float(info["length"])
        self.note_off = float(info["note_off"])
        self.instruments: list[dict[str, Any]] = list(info["instruments"])
        self.records: list[Record] = self.dataset.split(split)
        self._conditions(root, split, [r.labels["instrument"] for r in self.records])

    def _conditions(self, root: Path, split: str, instruments: list[str], variants: list[int] | None = None) -> None:
        if not self.records:
            raise DatasetError(f"{root} has no {split!r} notes")
        names = [i["name"] for i in self.instruments]
        self.instrument = np.array([names.index(name) for name in instruments], dtype=np.int64)
        self.variant = np.array(variants or [0] * len(self.records), dtype=np.int64)
        self.n_variants = int(self.variant.max()) + 1 if self.variant.any() else 0
        self.pitch = np.array([r.labels["pitch"] for r in self.records], dtype=np.int64)
        self.velocity = np.array([r.labels["velocity"] for r in self.records], dtype=np.int64)
        self.family = [str(r.labels.get("family", "")) for r in self.records]

    def _samples(self, root: Path, split: str, subset: str | None) -> None:
        if subset not in SUBSETS:
            raise ParameterError(f"a samples dataset trains one subset: --subset {' or '.join(SUBSETS)}",
                                 field="subset")
        info = self.dataset.info
        kind = SUBSETS[subset]
        self.sr = int(info["sr"])
        self.length = float(info["windows"][kind])
        self.note_off = self.length * 0.75
        key = "gm_note" if subset == "drums" else "pitch"  # hits without a GM drum key cannot be asked for
        train = [r for r in self.dataset.split("train")
                 if r.labels.get("kind") == kind and r.labels.get(key) is not None]
        variants = None
        if subset == "drums":
            kits = sorted({r.labels["kit"] for r in train})
            variants, counts = drum_variants(train)
            self.instruments = [{"name": f"kit_{re.sub(r'[^a-z0-9]+', '_', k.lower()).strip('_')}", "kit": k,
                                 "family": "drums", "program": 0, "drum": True,
                                 **({"variants": counts[k]} if counts.get(k) else {})} for k in kits]
            self.records = [_as_note(r, r.labels["gm_note"]) for r in train]
            if split != "train":
                self.records, variants = self.records[::10], variants[::10]
            names = [self.instruments[kits.index(r.labels["kit"])]["name"] for r in self.records]
        else:
            self.instruments = [dict(PIANO)]
            chosen = train if split == "train" else [r for r in self.dataset.split(split)
                                                     if r.labels.get("kind") == kind and r.labels.get(key) is not None]
            self.records = [_as_note(r, r.labels["pitch"]) for r in chosen]
            names = [PIANO["name"]] * len(self.records)
        self._conditions(root, split, names, variants)

    def sampling_weights(self, family_weights: dict[str, float]) -> np.ndarray:
        """Probability of drawing each note: its family's weight (default 1), normalised."""
        weights = np.array([float(family_weights.get(f, 1.0)) for f in self.family])
        return weights / weights.sum()

    def __len__(self) -> int:
        return len(self.records)

    def audio(self, indices: np.ndarray, n_samples: int) -> np.ndarray:
        """(B, n_samples) float32 audio of the given items (padded or cut to the model's length)."""
        out = np.zeros((len(indices), n_samples), dtype=np.float32)
        for row, i in enumerate(indices):
            y = np.asarray(self.dataset.array("audio", self.records[int(i)]), dtype=np.float32)[:n_samples]
            out[row, :y.shape[0]] = y
        return out

    def conditions(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(self.instrument[indices]), torch.from_numpy(self.pitch[indices]),
                torch.from_numpy(self.velocity[indices]))

    def variants(self, indices: np.ndarray) -> torch.Tensor | None:
        """The items' variant numbers, or None for data without variants."""
        return torch.from_numpy(self.variant[indices]) if self.n_variants else None


def drum_variants(hits: list[Record]) -> tuple[list[int], dict[str, dict[str, dict[str, int]]]]:
    """Each hit's number among the hits of its kit, GM key and velocity (in record order; a one-layer sample's
    velocity is 100), and per kit, for each key with more than one at some velocity, the count at each of its
    velocities ({kit: {"51": {"13": 2, "40": 1}}})."""
    seen: dict[tuple[str, int, int], int] = {}
    numbers = []
    for r in hits:
        velocity = r.labels.get("velocity")
        group = (r.labels["kit"], int(r.labels["gm_note"]), int(velocity if velocity is not None else 100))
        numbers.append(seen.get(group, 0))
        seen[group] = numbers[-1] + 1
    several = {(kit, key) for (kit, key, _), count in seen.items() if count > 1}
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (kit, key, velocity), count in sorted(seen.items()):
        if (kit, key) in several:
            counts.setdefault(kit, {}).setdefault(str(key), {})[str(velocity)] = count
    return numbers, counts


def _as_note(record: Record, pitch: int) -> Record:
    """A real recording's record with the labels of a note (pitch, velocity, family) the trainer reads."""
    velocity = record.labels.get("velocity")  # a one-layer sample has no velocity of its own: taken as 100
    labels = {**record.labels, "pitch": int(pitch), "velocity": int(velocity if velocity is not None else 100),
              "instrument": record.labels.get("kit") or PIANO["name"],
              "family": "drums" if record.labels.get("kind") == "drum_hit" else "keyboard"}
    return dataclasses.replace(record, labels=labels)


def spread(n: int, count: int) -> np.ndarray:
    """``count`` indices spread evenly over range(n) (all of them when n <= count)."""
    return np.unique(np.linspace(0, n - 1, num=min(n, count)).round().astype(np.int64))


def hinge_d(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean() for r, f in zip(real, fake, strict=True)) / len(real)


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 distance of discriminator features, each layer scaled by the real features' mean magnitude."""
    terms = [(f - r).abs().mean() / (r.abs().mean() + 1e-5)
             for fs, rs in zip(fake, real, strict=True) for f, r in zip(fs, rs, strict=True)]
    return sum(terms) / len(terms)


def grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0


@torch.no_grad()
def generate_items(generator: NoteGenerator, data: NoteData, indices: np.ndarray, *, seed: int = 0,
                   batch: int = 16) -> np.ndarray:
    """Whole generated notes (B, n) for the conditions of ``indices``, with z = 0 and fixed noise."""
    generator.eval()
    out = []
    for lo in range(0, len(indices), batch):
        chunk = indices[lo:lo + batch]
        inst, pitch, vel = data.conditions(chunk)
        z = torch.zeros(len(chunk), generator.z_dim)
        out.append(generator(inst, pitch, vel, z, noise_seed=seed + lo, variant=data.variants(chunk)).numpy())
    generator.train()
    return np.concatenate(out)


def spectral_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean multi-resolution STFT loss between matching rows (the validation figure; lower is better)."""
    with torch.no_grad():
        return float(multi_resolution_stft_loss(torch.from_numpy(fake), torch.from_numpy(real)))


def plot_grid(generated: np.ndarray, real: np.ndarray, labels: list[str], png: Path, *, sr: int,
              title: str) -> Path:
    """Log-mel spectrograms: generated notes on the top row, the real notes of the same conditions below."""
    plt = pyplot()

    from tunesmith.audio.features import log_mel

    cols = len(labels)
    fig, axes = plt.subplots(2, cols, figsize=(2.0 * cols, 4.4), dpi=80, squeeze=False)
    for col in range(cols):
        for row, y in enumerate((generated[col], real[col])):
            ax = axes[row][col]
            spec = log_mel(y.astype(np.float32), sr=sr, n_fft=1024, hop_length=128, n_mels=64, top_db=80.0)
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(labels[col], fontsize=7)
        axes[0][0].set_ylabel("generated", fontsize=8)
        axes[1][0].set_ylabel("real", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, png)


def train_gan(data: Path, out: Path, config: GANTrainConfig, *, resume: bool = False,
              command: str | None = None, progress_bar: bool | None = None) -> dict[str, Any]:
    """Train (or resume) the neural instrument on a notes dataset; returns the final card."""
    check_budget(config)
    resumed = previous_card(out, resume)
    config = resumed_config(GANTrainConfig, config, resumed)
    weights = {} if resumed else SUBSET_LOSS_WEIGHTS.get(config.subset or "", {})  # older runs go on without
    config = dataclasses.replace(config, **{name: weights.get(name, 0.0) for name in ("mel_weight", "envelope_weight",
                                                                                "curvature_weight")
                                            if getattr(config, name) is None})
    if resumed is None:  # a resumed run's config holds the options it was built with
        for part, options in SUBSET_OPTIONS.get(config.subset or "", {}).items():
            config = dataclasses.replace(config, **{part: {**options, **getattr(config, part)}})
    train, valid = NoteData(data, "train", config.subset), NoteData(data, "valid", config.subset)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    n_frames = round(train.length * train.sr / 128)
    gen_kwargs = {"n_instruments": len(train.instruments), "sr": train.sr, "n_frames": n_frames,
                  "note_off": train.note_off, **config.model}
    variants = train.n_variants if resumed is None else int(resumed["kwargs"].get("variants", 0))  # older: none
    if variants and train.n_variants > variants:
        raise DatasetError(f"{data} has {train.n_variants} recordings of one drum key and velocity; the resumed run "
                           f"learned {variants} variants: train a new run on this data")
    if variants:
        gen_kwargs["variants"] = variants
    else:  # a model without variants: the card lists none
        train.instruments = [{k: v for k, v in i.items() if k != "variants"} for i in train.instruments]
    generator = NoteGenerator(**gen_kwargs)
    discriminator = NoteDiscriminator(n_instruments=len(train.instruments), **config.discriminator)
    if config.crop_frames > generator.n_frames:
        raise ParameterError(f"crop_frames {config.crop_frames} exceeds the note's {generator.n_frames} frames",
                             field="crop_frames")
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=(0.8, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=(0.8, 0.99))
    n_samples = generator.n_frames * generator.hop
    draw_p = train.sampling_weights(config.family_weights) if config.family_weights else None
    valid_idx = spread(len(valid), config.valid_items)
    valid_real = valid.audio(valid_idx, n_samples)
    grid_idx = valid_idx[spread(len(valid_idx), 8)]
    grid_real = valid.audio(grid_idx, n_samples)
    grid_labels = [f"{valid.records[i].labels['instrument']} {valid.records[i].labels['pitch']}"
                   f" v{valid.records[i].labels['velocity']}" for i in grid_idx]
    steps_done = [int(resumed["training"]["steps"]) if resumed else 0]

    def step(clock: Clock) -> dict[str, float]:
        scale = cosine_lr(clock.step, clock.elapsed, clock.budget, base=1.0, warmup=0, fraction_done=clock.fraction)
        for group in opt_g.param_groups:
            group["lr"] = config.lr_g * scale
        for group in opt_d.param_groups:
            group["lr"] = config.lr_d * scale
        # ---- the batch: notes, windows, z and noise, all from (seed, step)
        rng = np.random.default_rng([config.seed, clock.step])
        torch_gen = torch.Generator().manual_seed(config.seed * 1_000_003 + clock.step)
        idx = rng.choice(len(train), size=config.batch_size, replace=len(train) < config.batch_size, p=draw_p)
        crop = config.crop_frames
        start = 0 if rng.random() < config.onset_share else int(rng.integers(0, generator.n_frames - crop + 1))
        inst, pitch, vel = train.conditions(idx)
        real = torch.from_numpy(train.audio(idx, n_samples)[:, start * generator.hop:(start + crop) * generator.hop])
        z = torch.randn(config.batch_size, generator.z_dim, generator=torch_gen)
        noise_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch_gen))
        fake = generator(inst, pitch, vel, z, start=start, frames=crop, noise_seed=noise_seed,
                         variant=train.variants(idx))
        adversarial = clock.step >= config.adv_start
        values: dict[str, float] = {"lr_g": config.lr_g * scale}
        # ---- 1. discriminator step: hinge loss, real vs generated (generator frozen by detach)
        if adversarial:
            real_scores, real_features = discriminator(real, inst, pitch, vel)
            real_features = [[f.detach() for f in fs] for fs in real_features]  # targets of feature matching
            fake_scores, _ = discriminator(fake.detach(), inst, pitch, vel)
            loss_d = hinge_d(real_scores, fake_scores)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            values["grad_d"] = grad_norm(discriminator)
            torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 10.0)
            opt_d.step()
            values["loss_d"] = float(loss_d.detach())
            values["d_real"] = float(sum(s.detach().mean() for s in real_scores) / len(real_scores))
            values["d_fake"] = float(sum(s.detach().mean() for s in fake_scores) / len(fake_scores))
        # ---- 2. generator step: spectral loss (+ hinge generator loss and feature matching after warm-up)
        spec = multi_resolution_stft_loss(fake, real)
        loss_g = config.spec_weight * spec
        values["spec"] = float(spec.detach())
        if config.mel_weight:
            mel = log_mel_loss(fake, real, sr=train.sr)
            loss_g = loss_g + config.mel_weight * mel
            values["mel"] = float(mel.detach())
        if config.envelope_weight:
            envelope = envelope_loss(fake, real)
            loss_g = loss_g + config.envelope_weight * envelope
            values["envelope"] = float(envelope.detach())
        if config.curvature_weight:  # keys from the whole keyboard, each with its neighbours (same z and velocity)
            lowest, highest = PIANO_RANGE  # A0..C8; each key drawn has both neighbours on the keyboard
            keys = torch.randint(lowest + 1, highest, (config.batch_size,), generator=torch_gen)
            curvature = pitch_curvature_loss(generator, generator.embed(inst, variant=train.variants(idx)), keys, vel,
                                             z, first=start, last=start + crop)
            loss_g = loss_g + config.curvature_weight * curvature
            values["curvature"] = float(curvature.detach())
        if adversarial:
            fake_scores, fake_features = discriminator(fake, inst, pitch, vel)
            adv = -sum(s.mean() for s in fake_scores) / len(fake_scores)
            fm = feature_matching(fake_features, real_features)
            loss_g = loss_g + config.adv_weight * (adv + config.fm_weight * fm)
            values["adv_g"], values["fm"] = float(adv.detach()), float(fm.detach())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        values["grad_g"] = grad_norm(generator)
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 10.0)
        opt_g.step()
        steps_done[0] = clock.step + 1
        return values

    def evaluate() -> dict[str, float]:
        return {"valid_spec": round(spectral_distance(generate_items(generator, valid, valid_idx), valid_real), 5)}

    def draw_grid() -> None:
        generated = generate_items(generator, valid, grid_idx)
        plot_grid(generated, grid_real, grid_labels, out / f"grid-{steps_done[0]:06d}.png", sr=train.sr,
                  title=f"step {steps_done[0]}: generated (top) vs real (bottom)")

    def card() -> dict[str, Any]:
        return {
            "family": "gan", "arch": "ddsp-gan", "kwargs": generator.kwargs,
            "discriminator": discriminator.kwargs, "parameters": count_parameters(generator),
            "discriminator_parameters": count_parameters(discriminator),
            "instruments": train.instruments, "sr": train.sr, "length": train.length, "note_off": train.note_off,
            "data": {"path": str(data), "kind": train.dataset.kind,
                     "manifest_sha256": train.dataset.manifest_sha256,
                     "licences": train.dataset.info.get("licences", {}), "train_items": len(train),
                     "valid_items": len(valid), "soundfont": train.dataset.info.get("soundfont"),
                     "subset": config.subset},
        }

    def load_state(state: dict[str, Any]) -> None:
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])

    recipe = Recipe(model=generator, config=config, step=step, evaluate=evaluate, card=card,
                    state=lambda: {"discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(),
                                   "opt_d": opt_d.state_dict()},
                    load_state=load_state, score="valid_spec", best_key="best_valid_spec",
                    columns=COLUMNS, curves=["spec", "mel", "curvature", "valid_spec", "fm", "loss_d", "adv_g"],
                    title="notes GAN: losses (spec, valid_spec = multi-resolution STFT distance)",
                    log_every=config.log_every,
                    on_step=lambda done: draw_grid() if done % config.grid_every == 0 else None, on_end=draw_grid,
                    status=lambda values: f"spec {values['spec']:.3f}  {'adv' if 'adv_g' in values else 'warm-up'}")
    discriminator.train()
    return run(recipe, out, resumed=resumed, command=command, progress_bar=progress_bar)
