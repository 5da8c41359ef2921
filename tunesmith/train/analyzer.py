"""Training loop of the analyzer CNN (`tunesmith train analyzer`).

Random time crops of log-mel features, a cross-entropy per single-label head (each over the clips it applies
to: pitch over pitched notes, drum type over drum hits) or binary cross-entropy for MagnaTagATune tags,
AdamW with warm-up and cosine decay over the time budget, evaluation on the valid split, checkpoints
``latest`` and ``best`` (by the valid score) with their card, a CSV log and a PNG of the curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tunesmith.data.dataset import Dataset
from tunesmith.models.analyzer import AnalyzerCNN, FrontEnd
from tunesmith.models.lm import count_parameters
from tunesmith.train.analyzer_data import IGNORE, FeatureSet, LabelSpace
from tunesmith.train.harness import Clock, Recipe, check_budget, previous_card, resumed_config, run
from tunesmith.train.schedule import cosine_lr

HEAD_WEIGHTS = {"family": 1.0, "instrument": 1.0, "pitch": 1.0, "drum": 0.5, "tags": 1.0}


@dataclass
class AnalyzerTrainConfig:
    """Everything that shapes a run; stored on the checkpoint card."""

    minutes: float = 40.0
    max_steps: int | None = None
    batch_size: int = 32
    crop_seconds: float = 1.0
    lr: float = 2e-3
    weight_decay: float = 1e-3
    warmup: int = 100
    eval_every: int = 200
    seed: int = 0
    threads: int | None = 1
    limit: int | None = None  # use only the first N clips of each split (tests, quick looks)
    pitch_shifts: list[int] = field(default_factory=lambda: [-1, 1])  # extra pitched training copies (semitones)
    model: dict[str, Any] = field(default_factory=lambda: {"freq_pools": [1, 2, 2, 2]})

    def crop_frames(self, frontend: FrontEnd) -> int:
        return max(8, round(self.crop_seconds * frontend.sr / frontend.hop_length))


def head_losses(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean loss of each head over the clips it applies to (heads with no such clip are left out)."""
    losses = {}
    for name, out in logits.items():
        target = targets[name]
        if name == "tags":
            losses[name] = F.binary_cross_entropy_with_logits(out, target)
        elif bool((target != IGNORE).any()):
            losses[name] = F.cross_entropy(out, target, ignore_index=IGNORE)
    return losses


@torch.no_grad()
def predict_split(model: AnalyzerCNN, data: FeatureSet, crop: int) -> dict[str, np.ndarray]:
    """Probabilities of every head for every clip of ``data`` (tags: mean over windows of ``crop`` frames)."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {}
    if "tags" in model.heads:
        for i in range(len(data)):
            mel = torch.from_numpy(data.features[i].astype(np.float32))
            frames = mel.shape[-1]
            starts = range(0, max(1, frames - crop + 1), crop)
            windows = torch.stack([mel[:, s:s + crop] for s in starts])
            _, logits = model(windows)
            out.setdefault("tags", []).append(torch.sigmoid(logits["tags"]).mean(0, keepdim=True).numpy())
    else:
        for _, x in data.evaluation_batches(64, crop):
            _, logits = model(x)
            for name, value in logits.items():
                out.setdefault(name, []).append(torch.softmax(value, dim=-1).numpy())
    model.train()
    return {name: np.concatenate(parts) for name, parts in out.items()}


def score_split(probs: dict[str, np.ndarray], data: FeatureSet) -> dict[str, float]:
    """Accuracy per head (notes) or macro ROC-AUC and PR-AUC (tags), plus one ``score`` to pick the best."""
    if "tags" in probs:
        from sklearn.metrics import average_precision_score, roc_auc_score

        truth = data.targets["tags"]
        usable = (truth.sum(0) > 0) & (truth.sum(0) < len(truth))
        if not usable.any():
            return {"roc_auc": math.nan, "pr_auc": math.nan, "score": 0.0}
        roc = float(roc_auc_score(truth[:, usable], probs["tags"][:, usable], average="macro"))
        pr = float(average_precision_score(truth[:, usable], probs["tags"][:, usable], average="macro"))
        return {"roc_auc": roc, "pr_auc": pr, "score": roc}
    metrics = {}
    for name, p in probs.items():
        target = data.targets[name]
        mask = target != IGNORE
        if mask.any():
            metrics[f"{name}_acc"] = float((p[mask].argmax(-1) == target[mask]).mean())
    metrics["score"] = float(np.mean([metrics[k] for k in ("family_acc", "pitch_acc") if k in metrics]))
    return metrics


def train_analyzer(data: Path, out: Path, config: AnalyzerTrainConfig, *, resume: bool = False,
                   command: str | None = None, progress_bar: bool | None = None) -> dict[str, Any]:
    """Train (or resume) the analyzer on a `notes` or `mtt` dataset; returns the final card."""
    check_budget(config)
    resumed = previous_card(out, resume)
    config = resumed_config(AnalyzerTrainConfig, config, resumed)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dataset = Dataset(data)
    labels = LabelSpace.of(dataset)
    frontend = FrontEnd(**config.model.get("frontend", {}))
    train = FeatureSet(dataset, "train", labels, frontend, limit=config.limit,
                       pitch_shifts=tuple(config.pitch_shifts))
    valid = FeatureSet(dataset, "valid", labels, frontend, limit=config.limit)
    crop = config.crop_frames(frontend)
    model_kwargs = {k: v for k, v in config.model.items() if k != "frontend"}
    model = AnalyzerCNN(n_mels=frontend.n_mels, heads=labels.heads(), **model_kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed + (resumed["training"]["steps"] if resumed else 0))
    metric_names = ["roc_auc", "pr_auc"] if labels.kind == "mtt" else [f"{h}_acc" for h in labels.heads()]

    def step(clock: Clock) -> dict[str, float]:
        lr = cosine_lr(clock.step, clock.elapsed, clock.budget, base=config.lr, warmup=config.warmup,
                       fraction_done=clock.fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, targets = train.batch(rng, config.batch_size, crop)
        _, logits = model(x)
        losses = head_losses(logits, targets)
        loss = sum(HEAD_WEIGHTS[name] * value for name, value in losses.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return {"lr": lr, "train_loss": float(loss.detach())}

    def evaluate() -> dict[str, float]:
        probs = predict_split(model, valid, crop)
        return {**score_split(probs, valid), "valid_loss": _valid_loss(probs, valid)}

    def card() -> dict[str, Any]:
        return {
            "family": "analyzer", "arch": "cnn", "kwargs": model.kwargs, "parameters": count_parameters(model),
            "frontend": frontend.to_dict(), "labels": labels.to_dict(), "crop_frames": crop,
            "data": {"path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
                     "licences": dataset.info.get("licences", {}), "train_clips": len(train),
                     "valid_clips": len(valid)},
        }

    recipe = Recipe(model=model, config=config, step=step, evaluate=evaluate, card=card,
                    state=lambda: {"optimizer": optimizer.state_dict()},
                    load_state=lambda state: optimizer.load_state_dict(state["optimizer"]),
                    score="score", best_key="best_score", lower_is_better=False,
                    columns=["lr", "train_loss", "valid_loss", *metric_names],
                    curves=["train_loss", "valid_loss", *metric_names], ylabel="loss / metric",
                    title=f"analyzer on {dataset.kind}: losses and valid metrics",
                    status=lambda values: f"loss {values['train_loss']:.3f}  lr {values['lr']:.2e}")
    return run(recipe, out, resumed=resumed, command=command, progress_bar=progress_bar)


def _valid_loss(probs: dict[str, np.ndarray], data: FeatureSet) -> float:
    """Summed mean negative log-likelihood of the valid targets under ``probs`` (weighted like training)."""
    total = 0.0
    for name, p in probs.items():
        target = data.targets[name]
        if name == "tags":
            q = np.clip(p, 1e-7, 1 - 1e-7)
            total += HEAD_WEIGHTS[name] * float(-(target * np.log(q) + (1 - target) * np.log(1 - q)).mean())
            continue
        mask = target != IGNORE
        if mask.any():
            chosen = p[mask, target[mask]]
            total += HEAD_WEIGHTS[name] * float(-np.log(np.clip(chosen, 1e-9, None)).mean())
    return total
