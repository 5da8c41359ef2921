"""Training of the mixture tagger (`tunesmith train analyzer --data MIXTURES`): per-frame family and instrument
presence on a built `mixtures` dataset.

Features are the analyzer's log-mel front end, computed once per excerpt (float16 in memory). A step takes random
crops (aligned to the network's output frames) and a binary cross-entropy per frame and label (instruments weigh
half). The valid score is the mean average precision of the families over one-second segments
(:func:`segment_scores`); the card carries per-family decision thresholds chosen on the valid split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tunesmith.data.corpora.mixtures import presence
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.models.analyzer import FrontEnd
from tunesmith.models.lm import count_parameters
from tunesmith.models.mixture import MixtureCNN
from tunesmith.progress import progress
from tunesmith.train.harness import Clock, Recipe, check_budget, previous_card, resumed_config, run
from tunesmith.train.schedule import cosine_lr

HEAD_WEIGHTS = {"families": 1.0, "instruments": 0.5}
SEGMENT_SECONDS = 1.0
MIN_INSTRUMENT_EXCERPTS = 5  # an instrument is a label only when this many training excerpts have it


@dataclass
class MixtureTrainConfig:
    """Everything that shapes a run; stored on the checkpoint card."""

    minutes: float = 30.0
    max_steps: int | None = None
    batch_size: int = 16
    crop_seconds: float = 4.0
    lr: float = 2e-3
    weight_decay: float = 1e-3
    warmup: int = 100
    eval_every: int = 200
    seed: int = 0
    threads: int | None = 1
    limit: int | None = None
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class Labels:
    families: list[str]
    instruments: list[str]

    def heads(self) -> dict[str, int]:
        return {"families": len(self.families), **({"instruments": len(self.instruments)} if self.instruments
                                                     else {})}

    def names(self, head: str) -> list[str]:
        return self.families if head == "families" else self.instruments


class MixtureFeatures:
    """Log-mel features and per-frame targets of one split of a mixtures dataset."""

    def __init__(self, dataset: Dataset, split: str, labels: Labels, frontend: FrontEnd, time_pool: int, *,
                 limit: int | None = None) -> None:
        records = dataset.split(split)[:limit] if limit else dataset.split(split)
        if not records:
            raise DatasetError(f"{dataset.root} has no '{split}' excerpts")
        sr = int(dataset.info["sr"])
        hop = frontend.hop_length * time_pool / frontend.sr
        mels, targets = [], {head: [] for head in labels.heads()}
        frames = None
        for record in progress(records, desc=f"features ({split})", unit="excerpt"):
            mel = frontend.features(np.asarray(dataset.array("audio", record), dtype=np.float32), sr)
            frames = frames or (mel.shape[-1] // time_pool) * time_pool
            mel = mel[:, :frames] if mel.shape[-1] >= frames else np.pad(
                mel, ((0, 0), (0, frames - mel.shape[-1])), constant_values=-1.0)
            mels.append(mel.astype(np.float16))
            for head in targets:
                targets[head].append(presence(record.labels[head], labels.names(head), frames // time_pool, hop))
        self.records = records
        self.time_pool = time_pool
        self.features = np.stack(mels)
        self.targets = {head: np.stack(v).astype(np.uint8) for head, v in targets.items()}
        self.frames_per_segment = max(1, round(SEGMENT_SECONDS / hop))

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, rng: np.random.Generator, size: int, crop: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Random crops of ``crop`` input frames (a multiple of the time pool) and their frame targets."""
        rows = rng.integers(0, len(self), size=size)
        outs = crop // self.time_pool
        total = self.features.shape[-1] // self.time_pool
        starts = rng.integers(0, max(1, total - outs + 1), size=size)
        x = np.stack([self.features[r, :, s * self.time_pool:(s + outs) * self.time_pool]
                      for r, s in zip(rows, starts, strict=True)])
        y = {head: torch.from_numpy(np.stack([t[r, :, s:s + outs] for r, s in zip(rows, starts, strict=True)])
                                    .astype(np.float32)) for head, t in self.targets.items()}
        return torch.from_numpy(x.astype(np.float32)), y


def label_space(dataset: Dataset) -> Labels:
    if dataset.kind != "mixtures":
        raise DatasetError(f"the mixture tagger trains on a 'mixtures' dataset; {dataset.root} is '{dataset.kind}'")
    counts: dict[str, int] = {}
    for record in dataset.split("train"):
        for name in record.labels.get("instruments", {}):
            counts[name] = counts.get(name, 0) + 1
    instruments = [n for n in dataset.info.get("instruments", []) if counts.get(n, 0) >= MIN_INSTRUMENT_EXCERPTS]
    return Labels(families=list(dataset.info["families"]), instruments=instruments)


@torch.no_grad()
def predict(model: MixtureCNN, data: MixtureFeatures, batch: int = 32) -> dict[str, np.ndarray]:
    """Sigmoid probabilities (n, classes, frames) of every head for every excerpt of ``data``."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(data), batch):
        logits = model(torch.from_numpy(data.features[i:i + batch].astype(np.float32)))
        for head, value in logits.items():
            out.setdefault(head, []).append(torch.sigmoid(value).numpy())
    model.train()
    return {head: np.concatenate(parts) for head, parts in out.items()}


def segments(values: np.ndarray, per_segment: int) -> np.ndarray:
    """(n, classes, frames) -> (n * segments, classes): the maximum over each segment of ``per_segment`` frames."""
    n, classes, frames = values.shape
    count = max(1, frames // per_segment)
    cut = values[:, :, :count * per_segment].reshape(n, classes, count, per_segment).max(-1)
    return cut.transpose(0, 2, 1).reshape(-1, classes)


def segment_scores(probs: np.ndarray, truth: np.ndarray, names: list[str], per_segment: int,
                   ) -> tuple[dict[str, float], float]:
    """Average precision per label over segments (NaN where a label is always or never there) and their mean."""
    from sklearn.metrics import average_precision_score

    p, t = segments(probs, per_segment), segments(truth.astype(np.float32), per_segment)
    per = {}
    for i, name in enumerate(names):
        positives = t[:, i].sum()
        per[name] = float(average_precision_score(t[:, i], p[:, i])) if 0 < positives < len(t) else math.nan
    usable = [v for v in per.values() if not math.isnan(v)]
    return per, float(np.mean(usable)) if usable else math.nan


def best_thresholds(probs: np.ndarray, truth: np.ndarray, names: list[str], per_segment: int) -> dict[str, float]:
    """Per label, the segment threshold with the best F1 on these predictions (0.5 where it cannot be told)."""
    p, t = segments(probs, per_segment), segments(truth.astype(np.float32), per_segment)
    out = {}
    for i, name in enumerate(names):
        if not 0 < t[:, i].sum() < len(t):
            out[name] = 0.5
            continue
        grid = np.linspace(0.1, 0.9, 17)
        f1 = [_f1(p[:, i] >= g, t[:, i] > 0.5) for g in grid]
        out[name] = round(float(grid[int(np.argmax(f1))]), 3)
    return out


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    return 2 * tp / max(1.0, float(pred.sum() + truth.sum()))


def train_mixtures(data: Path, out: Path, config: MixtureTrainConfig, *, resume: bool = False,
                   command: str | None = None, progress_bar: bool | None = None) -> dict[str, Any]:
    """Train (or resume) the mixture tagger on a `mixtures` dataset; returns the final card."""
    check_budget(config)
    resumed = previous_card(out, resume)
    config = resumed_config(MixtureTrainConfig, config, resumed)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dataset = Dataset(data)
    labels = label_space(dataset)
    if resumed is not None:
        labels = Labels(**{k: resumed["labels"][k] for k in ("families", "instruments")})
    frontend = FrontEnd(**config.model.get("frontend", {}))
    model_kwargs = {k: v for k, v in config.model.items() if k != "frontend"}
    model = MixtureCNN(n_mels=frontend.n_mels, heads=labels.heads(), **model_kwargs)
    train = MixtureFeatures(dataset, "train", labels, frontend, model.time_pool, limit=config.limit)
    valid = MixtureFeatures(dataset, "valid", labels, frontend, model.time_pool, limit=config.limit)
    crop = max(1, round(config.crop_seconds * frontend.sr / frontend.hop_length) // model.time_pool) * model.time_pool
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed + (resumed["training"]["steps"] if resumed else 0))
    thresholds: dict[str, dict[str, float]] = dict(resumed.get("thresholds", {})) if resumed else {}

    def step(clock: Clock) -> dict[str, float]:
        lr = cosine_lr(clock.step, clock.elapsed, clock.budget, base=config.lr, warmup=config.warmup,
                       fraction_done=clock.fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, targets = train.batch(rng, config.batch_size, crop)
        logits = model(x)
        loss = sum(HEAD_WEIGHTS[h] * F.binary_cross_entropy_with_logits(v, targets[h]) for h, v in logits.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return {"lr": lr, "train_loss": float(loss.detach())}

    def evaluate() -> dict[str, float]:
        probs = predict(model, valid)
        metrics: dict[str, float] = {}
        loss = 0.0
        for head, p in probs.items():
            truth = valid.targets[head]
            names = labels.names(head)
            per, mean = segment_scores(p, truth, names, valid.frames_per_segment)
            metrics[f"{head}_map"] = mean
            if head == "families":
                metrics.update({f"ap_{k}": v for k, v in per.items()})
            thresholds[head] = best_thresholds(p, truth, names, valid.frames_per_segment)
            q = np.clip(p, 1e-6, 1 - 1e-6)
            loss += HEAD_WEIGHTS[head] * float(-(truth * np.log(q) + (1 - truth) * np.log(1 - q)).mean())
        metrics["valid_loss"] = loss
        metrics["score"] = metrics["families_map"] if not math.isnan(metrics["families_map"]) else 0.0
        return metrics

    def card() -> dict[str, Any]:
        return {
            "family": "analyzer", "arch": "mixture-cnn", "kwargs": model.kwargs,
            "parameters": count_parameters(model), "frontend": frontend.to_dict(),
            "labels": {"families": labels.families, "instruments": labels.instruments},
            "thresholds": thresholds, "segment_seconds": SEGMENT_SECONDS,
            "window_seconds": float(dataset.info.get("seconds", 8.0)),
            "data": {"path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
                     "licences": dataset.info.get("licences", {}), "soundfonts": dataset.info.get("soundfonts"),
                     "kits": dataset.info.get("kits"), "train_excerpts": len(train), "valid_excerpts": len(valid)},
        }

    columns = ["lr", "train_loss", "valid_loss", "families_map", *(["instruments_map"] if labels.instruments else [])]
    recipe = Recipe(model=model, config=config, step=step, evaluate=evaluate, card=card,
                    state=lambda: {"optimizer": optimizer.state_dict()},
                    load_state=lambda state: optimizer.load_state_dict(state["optimizer"]),
                    score="score", best_key="best_score", lower_is_better=False,
                    columns=columns, curves=["train_loss", "valid_loss", "families_map"], ylabel="loss / mAP",
                    title="mixture tagger: losses and valid family mAP",
                    status=lambda values: f"loss {values['train_loss']:.3f}  lr {values['lr']:.2e}")
    return run(recipe, out, resumed=resumed, command=command, progress_bar=progress_bar)


def is_mixtures(data: Path) -> bool:
    """Whether ``data`` is a built `mixtures` dataset (the analyzer trainer then trains the mixture tagger)."""
    import json

    info = Path(data) / "dataset.json"
    try:
        return info.is_file() and json.loads(info.read_text()).get("kind") == "mixtures"
    except (OSError, ValueError):
        return False


def train_mixture_run(args: Any) -> dict[str, Any]:
    """`tunesmith train analyzer --data MIXTURES ...`: the parsed command line -> :func:`train_mixtures`."""
    config = MixtureTrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size or 16,
                                eval_every=args.eval_every, seed=args.seed, threads=args.threads or 1,
                                **({"lr": args.lr} if args.lr else {}))
    return train_mixtures(args.data, args.out, config, resume=args.resume)
