"""Training the `song` model (`tunesmith train song --data DIR --out DIR --minutes M [--resume]`) on the shared
harness: windows of grooves songs at bar lines, transposed at random, teacher-forced compound-word NLL, AdamW
with a warm-up and a cosine decay over the time budget; the evaluation is the held-out (valid split) NLL per
event, in nats (the sum of the event's fields).

The card holds what generation needs besides the weights: the token format, the style table in embedding order
(ids, names, aliases, tempo ranges, descriptions and each role's usual programs), the meters, each role's pitch
range and the drum keys seen, the energy table, and the data it was trained on with its licences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.data.dataset import Dataset
from tunesmith.data.styles import STYLE_FAMILIES
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.models.song import SongTransformer, count_parameters, distill_loss, song_loss
from tunesmith.symbolic.song_tokens import (
    COLUMNS,
    CONTEXT,
    DURATION_BINS,
    ENERGY_LEVELS,
    FIELDS,
    ROLES,
    SECTIONS,
    SIZES,
    STEPS_PER_BEAT,
    TOKEN_FORMAT,
    VELOCITY_BIN,
    network_spec,
)
from tunesmith.train.harness import Clock, Recipe, check_budget, previous_card, resumed_config, run
from tunesmith.train.schedule import cosine_lr
from tunesmith.train.song_data import CorpusStats, SongCorpus, read_corpus

# small and without dropout: on this CPU a 60-minute run sees ~7 M events (about two passes over the corpus),
# where a bigger model would see too few for its size, and a step of it costs less when generating
MODEL_DEFAULTS: dict[str, Any] = {"dim": 128, "layers": 4, "heads": 4, "dropout": 0.0}
DISTILL_EVAL_STRENGTH = 1.25  # the strength a distilling run is judged at: the song model's default (compose.sampling)
MIN_METER_SONGS = 20  # a meter with fewer training songs (and under 5 % of them) is not offered: too little learned
UNTRAINED_RANGES = {"bass": [28, 67], "chords": [40, 88], "pad": [45, 96], "lead": [55, 90]}


@dataclass
class SongTrainConfig:
    """Everything that shapes a run; stored on the checkpoint card."""

    minutes: float = 60.0
    max_steps: int | None = None
    batch_size: int = 16
    window: int = 512
    transpose: int = 6
    lr: float = 1.5e-3
    weight_decay: float = 0.01
    warmup: int = 200
    eval_every: int = 250
    eval_events: int | None = 60_000
    seed: int = 0
    threads: int | None = None
    limit: int | None = None  # read at most this many records (quick runs, tests)
    model: dict[str, Any] = field(default_factory=dict)
    distill: float | None = None  # teach the --init model its own style guidance for strengths 1..distill
    teacher: str | None = None  # the model whose guidance is taught (set from --init; a resumed run reloads it)
    style_files: bool = True  # condition on the song's style file within its family too (not only the family)
    file_balance: float = 0.0  # 0: songs drawn in proportion to their length; 1: each style file about equally often

    def model_kwargs(self, n_styles: int, n_meters: int, n_style_files: int = 0) -> dict[str, Any]:
        return {**network_spec(), **MODEL_DEFAULTS, **self.model, "n_styles": n_styles, "n_meters": n_meters,
                "n_style_files": n_style_files}


@torch.no_grad()
def evaluate_nll(model: SongTransformer, batches: list[tuple[torch.Tensor, dict, dict]]) -> float:
    """Mean negative log-likelihood (nats) per event over ``batches``."""
    model.eval()
    total, count = 0.0, 0
    for steps, cond, targets in batches:
        loss, events = song_loss(model, steps, cond, targets)
        total += float(loss)
        count += events
    model.train()
    return total / max(count, 1)


@torch.no_grad()
def evaluate_distill(student: SongTransformer, teacher: SongTransformer,
                     batches: list[tuple[torch.Tensor, dict, dict]],
                     strength: float = DISTILL_EVAL_STRENGTH) -> float:
    """Mean KL divergence (nats) per event from the teacher's guided heads to the student's at ``strength``."""
    student.eval()
    total, count = 0.0, 0
    for steps, cond, targets in batches:
        loss, events = distill_loss(student, teacher, steps, cond, targets,
                                    torch.full((len(steps),), float(strength)))
        total += float(loss)
        count += events
    student.train()
    return total / max(count, 1)


def draw_strengths(rng: np.random.Generator, size: int, highest: float) -> torch.Tensor:
    """Style strengths 1..``highest`` for a batch, denser near 1 (1 + span * u^2: half of them under a quarter of
    the span), where users ask most."""
    return torch.from_numpy(1.0 + (highest - 1.0) * rng.random(size) ** 2).float()


def style_table(stats: CorpusStats) -> list[dict[str, Any]]:
    """The style families in embedding order, with what generation needs of each."""
    programs = stats.family_programs()
    meters = {f: c.most_common(1)[0][0] for f, c in stats.family_meters.items() if c}
    return [{"id": f.id, "name": f.name, "description": f.description, "aliases": list(f.aliases),
             "tempo": list(f.tempo), "meter": meters.get(f.id, "4/4"), "programs": programs.get(f.id, {})}
            for f in STYLE_FAMILIES]


def style_file_table(stats: CorpusStats, meters: list[str]) -> list[dict[str, Any]]:
    """The style files of the training split in the offered meters, in embedding order (family order, then file):
    id, family, meter, training songs, their tempo (lowest, median, highest) and the bands they play (roles joined
    by "+" -> songs); a song asking for a family plays one of them."""
    order = {f.id: i for i, f in enumerate(STYLE_FAMILIES)}
    rows = [{"id": name, "family": family, "meter": meter, "songs": len(tempi),
             "tempo": [min(tempi), float(np.median(tempi)), max(tempi)]}
            for (family, name, meter), tempi in stats.style_files.items() if meter in meters and family in order]
    return with_bands(sorted(rows, key=lambda r: (order[r["family"]], r["id"])), stats)


def with_bands(files: list[dict[str, Any]], stats: CorpusStats) -> list[dict[str, Any]]:
    """A card's style-file table (order kept) with each file's bands read from ``stats`` (`style_file_table`)."""
    return [{**f, "bands": dict(stats.style_file_bands[(f["family"], f["id"], f["meter"])].most_common())}
            for f in files]


def model_card(model: SongTransformer, *, styles: list[dict[str, Any]], meters: list[str],
               role_ranges: dict[str, list[int]], drum_keys: list[int], energy_quantiles: dict[str, list[float]],
               harmony: dict[str, list[list]] | None = None,
               style_files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A song model's card fields (without its data and training): what generation reads besides the weights."""
    return {
        "family": "song", "arch": model.arch, "kwargs": model.kwargs, "parameters": count_parameters(model),
        "description": f"multi-track songs (drums, bass, chords, pad, lead) in {len(styles)} styles, with sections",
        "tokens": {"format": TOKEN_FORMAT, "steps_per_beat": STEPS_PER_BEAT, "fields": list(FIELDS),
                   "context": list(CONTEXT), "columns": list(COLUMNS), "sizes": SIZES,
                   "duration_bins": list(DURATION_BINS), "velocity_bin": VELOCITY_BIN, "roles": list(ROLES),
                   "sections": list(SECTIONS), "energy_levels": ENERGY_LEVELS},
        "styles": styles, "style_files": style_files or [], "meters": meters, "role_ranges": role_ranges,
        "drum_keys": drum_keys, "harmony": harmony or {},
        "energy": {"measure": "a section's notes per beat as a percentile among its style family's training "
                              "sections", "levels": ENERGY_LEVELS, "quantiles": energy_quantiles},
    }


def untrained_model(**kwargs: Any) -> tuple[SongTransformer, dict[str, Any]]:
    """A song model with random weights and a card of the shipped shape, no corpus needed (tests, benchmarks):
    every style family, the meters 4/4, 3/4 and 6/8, usual role ranges and the GM drum keys."""
    styles = [{"id": f.id, "name": f.name, "description": f.description, "aliases": list(f.aliases),
               "tempo": list(f.tempo), "meter": "3/4" if "waltz" in f.id else "4/4", "programs": {}}
              for f in STYLE_FAMILIES]
    meters = ["3/4", "4/4", "6/8"]
    model = SongTransformer(**{**network_spec(), **MODEL_DEFAULTS, **kwargs, "n_styles": len(styles),
                               "n_meters": len(meters)})
    card = model_card(model, styles=styles, meters=meters, role_ranges=dict(UNTRAINED_RANGES),
                      drum_keys=list(range(35, 82)), energy_quantiles={})
    return model, {**card, "data": {"kind": "none", "licences": {}}}


def train_song(data: Path, out: Path, config: SongTrainConfig, *, resume: bool = False,
               command: str | None = None, progress_bar: bool | None = None,
               init: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume) a song model on a grooves dataset; returns the final card. ``init``: start from the
    weights of a song model (a name, run directory or card) with the same styles and meters, on a new schedule
    (a continued training: the card lists its runs before this one)."""
    check_budget(config)
    if init is not None and resume:
        raise ParameterError("--init starts a new run from a model's weights; --resume continues a run: not both",
                             field="init")
    if config.distill is not None and not 1.0 < config.distill <= 8.0:
        raise ParameterError(f"--distill is the highest style strength to teach, 1 < S <= 8, not {config.distill}",
                             field="distill")
    if not 0.0 <= config.file_balance <= 1.0:
        raise ParameterError(f"--file-balance is 0..1, not {config.file_balance:g}", field="file_balance")
    resumed = previous_card(out, resume)
    config = resumed_config(SongTrainConfig, config, resumed)
    if config.distill is not None and config.teacher is None:
        if init is None:
            raise ParameterError("--distill teaches a trained model its own guidance: name it with --init",
                                 field="init")
        config.teacher = str(init)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + (resumed["training"]["steps"] if resumed else 0))
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset = Dataset(data)
    if dataset.kind != "grooves":
        raise DatasetError(f"{data} is a {dataset.kind!r} dataset; the song model trains on 'grooves' "
                           "(tunesmith data build grooves --out DIR)")
    examples, stats = read_corpus(data, limit=config.limit)
    songs = sum(stats.meters.values())
    meters = resumed["meters"] if resumed else sorted(
        m for m, n in stats.meters.items() if n >= min(MIN_METER_SONGS, 0.05 * songs))
    styles = [s["id"] for s in style_table(stats)]
    if config.distill is not None:  # the student is its teacher's shape: style files if and only if it has them
        config.style_files = bool(load_card(*resolve_checkpoint(config.teacher)).get("style_files"))
    files = with_bands(resumed.get("style_files") or [], stats) if resumed else (
        style_file_table(stats, meters) if config.style_files else [])
    file_ids = [f["id"] for f in files]
    train = SongCorpus([e for e in examples if e.split == "train"], styles=styles, meters=meters,
                       style_files=file_ids, file_balance=config.file_balance)
    valid = SongCorpus([e for e in examples if e.split == "valid"], styles=styles, meters=meters,
                       style_files=file_ids)
    if not len(train) or not len(valid):
        raise DatasetError(f"{data} needs songs in both its train and valid splits (has {len(train)} and "
                           f"{len(valid)} in the meters {', '.join(meters)})")
    evaluation = valid.evaluation_batches(config.window, max_events=config.eval_events)
    model = SongTransformer(**config.model_kwargs(len(styles), len(meters), len(file_ids)))
    start = _warm_start_card(init, styles, meters, file_ids)
    if start is not None:
        model = _warm_start(init, start, file_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.98))
    teacher = _teacher(config.teacher, styles, meters) if config.distill is not None else None

    def step(clock: Clock) -> dict[str, float]:
        lr = cosine_lr(clock.step, clock.elapsed, clock.budget, base=config.lr, warmup=config.warmup,
                       fraction_done=clock.fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        steps, cond, targets = train.batch(rng, size=config.batch_size, length=config.window,
                                           transpose=config.transpose)
        if teacher is not None:
            strength = draw_strengths(rng, len(steps), float(config.distill or 1.0))
            loss, events = distill_loss(model, teacher, steps, cond, targets, strength)
        else:
            loss, events = song_loss(model, steps, cond, targets)
        loss = loss / max(events, 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return {"lr": lr, "train_nll": float(loss.detach()), "events": events}

    def card() -> dict[str, Any]:
        fields = model_card(model, styles=style_table(stats), meters=meters, role_ranges=stats.role_ranges(),
                            drum_keys=sorted(k for k, n in stats.drum_keys.items() if n >= 10),
                            energy_quantiles=stats.energy.quantiles(), harmony=stats.harmony(), style_files=files)
        fields["data"] = {
            "path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
            "licences": dataset.info.get("licences", {}), "build_command": "tunesmith data build grooves --out DIR",
            "trained_on": "the grooves corpus: MMA's style library (GPL-2+) rendered as multi-track songs over chord "
                          "progressions and melodies from MMA's example songs, Bach chorales, string quartets and "
                          "folk tunes of the music21 corpus",
            "train_songs": len(train), "valid_songs": len(valid), "train_events": train.events,
            "valid_events_evaluated": sum(int((s[:, 1:, 0] > 0).sum()) for s, _, _ in evaluation)}
        if config.distill is not None:
            fields["guidance"] = {
                "kind": "distilled", "strengths": [1.0, config.distill], "teacher": config.teacher,
                "contrast": "the mean of all styles",
                "how": "the teacher's guided heads (mean + s * (own - mean), two passes) taught to this model read "
                       "with its style (and style file) moved by s from the mean of all (one pass); sampling "
                       "conditions on that moved style and runs one pass a step"}
        return fields

    def evaluate() -> dict[str, float]:
        figures = {"valid_nll": evaluate_nll(model, evaluation)}
        if teacher is not None:
            figures["valid_kl"] = evaluate_distill(model, teacher, evaluation)
        return figures

    distilling = teacher is not None
    score = "valid_kl" if distilling else "valid_nll"
    recipe = Recipe(model=model, config=config, step=step, evaluate=evaluate,
                    card=card, state=lambda: {"optimizer": optimizer.state_dict()},
                    load_state=lambda state: optimizer.load_state_dict(state["optimizer"]),
                    score=score, best_key=f"best_{score}",
                    columns=["lr", "train_nll", "valid_nll", *(["valid_kl"] if distilling else [])],
                    curves=["train_nll", score], x="events", totals=("events",), ylabel="nats per event",
                    title=f"song {model.arch}: " + ("KL to its guided teacher (train_nll: the KL)" if distilling
                                                     else "NLL per event"), log_every=50,
                    status=lambda values: f"loss {values['train_nll']:.3f}  lr {values['lr']:.2e}")
    return run(recipe, out, resumed=resumed, command=command, progress_bar=progress_bar,
               continues=start)


def _teacher(name: str | None, styles: list[str], meters: list[str]) -> SongTransformer:
    """The frozen model whose guidance a distilling run teaches (its styles and meters must be the data's)."""
    card = _warm_start_card(name, styles, meters, None)
    if card is None:
        raise ParameterError("--distill needs --init: the model whose guidance is taught", field="init")
    if card.get("guidance"):
        raise ParameterError(f"--init {name} has learned its guidance already; distill from the model it was taught "
                             f"by ({card['guidance'].get('teacher')})", field="init")
    directory, card_name = resolve_checkpoint(name)
    teacher = SongTransformer(**{**network_spec(), **card["kwargs"]})
    load_weights(directory, card_name, teacher)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _warm_start(init: str | Path, card: dict[str, Any], style_files: list[str]) -> SongTransformer:
    """The model a run starts from, with an embedding for each of ``style_files``: a file the starting model
    knows keeps its embedding, any other starts at zero (as its family; a model trained without style files
    gets them all at zero)."""
    directory, name = resolve_checkpoint(init)
    loaded = load_weights(directory, name, SongTransformer(**{**network_spec(), **card["kwargs"]}))
    known = [f["id"] for f in card.get("style_files") or []]
    if known == list(style_files):
        return loaded
    model = SongTransformer(**{**network_spec(), **card["kwargs"], "n_style_files": len(style_files)})
    state = {k: v for k, v in loaded.state_dict().items() if k != "style_file.weight"}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"style_file.weight"}:
        raise ParameterError(f"--init {init}: its weights do not fit a model with style files", field="init")
    if loaded.style_file is not None and model.style_file is not None:
        row = {file_id: i for i, file_id in enumerate(known)}
        with torch.no_grad():
            for i, file_id in enumerate(style_files):
                if file_id in row:
                    model.style_file.weight[i] = loaded.style_file.weight[row[file_id]]
    return model


def _warm_start_card(init: str | Path | None, styles: list[str], meters: list[str],
                     style_files: list[str] | None) -> dict[str, Any] | None:
    """The card of the model a run starts from (None: from scratch); its styles and meters must be the data's,
    and a model with style files starts a run with style files (`_warm_start` matches them by id)."""
    if init is None:
        return None
    directory, name = resolve_checkpoint(init)
    card = load_card(directory, name)
    if card.get("family") != "song":
        raise ParameterError(f"--init {init}: a {card.get('family')!r} model, not a song model", field="init")
    have = [s["id"] if isinstance(s, dict) else s for s in card.get("styles", [])]
    if have != list(styles) or list(card.get("meters", [])) != list(meters):
        raise ParameterError(f"--init {init}: its styles or meters are not this dataset's (it knows {len(have)} "
                             f"styles and meters {card.get('meters')}; the data has {len(styles)} and {meters})",
                             field="init")
    known = [f["id"] for f in card.get("style_files") or []]
    if style_files is not None and known and not style_files:
        raise ParameterError(f"--init {init}: it has style files; a run from it keeps them (leave out "
                             "--no-style-files)", field="init")
    return card
