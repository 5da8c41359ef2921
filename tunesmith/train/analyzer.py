"""Training loop of the analyzer CNN (`tunesmith train analyzer`).

Random time crops of log-mel features, a cross-entropy per single-label head (each over the clips it applies
to: pitch over pitched notes, drum type over drum hits) or binary cross-entropy for MagnaTagATune tags,
AdamW with warm-up and cosine decay over the time budget, evaluation on the valid split, checkpoints
``latest`` and ``best`` (by the valid score) with their card, a CSV log and a PNG of the curves.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tunesmith.checkpoints import (
    load_card,
    load_training_state,
    load_weights,
    save_checkpoint,
    save_training_state,
)
from tunesmith.data.dataset import Dataset
from tunesmith.errors import ParameterError
from tunesmith.models.analyzer import AnalyzerCNN, FrontEnd
from tunesmith.models.lm import count_parameters
from tunesmith.train.analyzer_data import IGNORE, FeatureSet, LabelSpace
from tunesmith.train.metrics import MetricsLog, plot_curves
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
    if config.minutes <= 0 and not config.max_steps:
        raise ParameterError("--minutes must be positive (or give --max-steps)", field="minutes")
    runs: list[dict[str, Any]] = []
    if resume:
        card = load_card(out, "latest")
        config = AnalyzerTrainConfig(**{**card["training"]["config"], "minutes": config.minutes,
                                        "max_steps": config.max_steps, "threads": config.threads})
        runs = list(card["training"].get("runs", []))
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
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "training-state.pt"
    step, best = 0, -math.inf
    if resume:
        load_weights(out, "latest", model)
        state = load_training_state(state_path)
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state["best"])
    rng = np.random.default_rng(config.seed + step)
    metric_names = ["roc_auc", "pr_auc"] if labels.kind == "mtt" else [f"{h}_acc" for h in labels.heads()]
    log = MetricsLog(out / "metrics.csv", ["step", "minutes", "lr", "train_loss", "valid_loss", *metric_names])
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    started, first_step = time.monotonic(), step
    minutes_before = sum(r["minutes"] for r in runs)
    budget = config.minutes * 60.0
    show = sys.stderr.isatty() if progress_bar is None else progress_bar

    def card_for(metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "family": "analyzer", "arch": "cnn", "kwargs": model.kwargs, "parameters": count_parameters(model),
            "frontend": frontend.to_dict(), "labels": labels.to_dict(), "crop_frames": crop,
            "data": {"path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
                     "licences": dataset.info.get("licences", {}), "train_clips": len(train),
                     "valid_clips": len(valid)},
            "training": {"config": asdict(config), "steps": step,
                         "runs": [*runs, {"command": command, "steps": step - first_step,
                                          "minutes": round((time.monotonic() - started) / 60, 2)}],
                         "minutes": round(minutes_before + (time.monotonic() - started) / 60, 2)},
            "metrics": {**metrics, "best_score": max(best, metrics["score"])},
        }

    def evaluate_and_save(train_loss: float | str) -> None:
        nonlocal best
        probs = predict_split(model, valid, crop)
        metrics = score_split(probs, valid)
        valid_loss = _valid_loss(probs, valid)
        log.log(step=step, minutes=round((time.monotonic() - started) / 60, 2),
                lr=optimizer.param_groups[0]["lr"], train_loss=train_loss, valid_loss=valid_loss,
                **{k: metrics.get(k, "") for k in metric_names})
        card = card_for({**metrics, "valid_loss": valid_loss})
        if metrics["score"] > best:
            best = metrics["score"]
            card["metrics"]["best_score"] = best
            save_checkpoint(out, "best", model, card)
        save_checkpoint(out, "latest", model, card)
        save_training_state(state_path, {"optimizer": optimizer.state_dict(), "step": step, "best": best})
        plot_curves(log, out / "curves.png", x="step", series=["train_loss", "valid_loss", *metric_names],
                    title=f"analyzer on {dataset.kind}: losses and valid metrics", ylabel="loss / metric")

    model.train()
    running, running_count, last_line = 0.0, 0, 0.0
    while True:
        elapsed = time.monotonic() - started
        if (config.max_steps is not None and step - first_step >= config.max_steps) or (
                config.max_steps is None and elapsed >= budget):
            break
        fraction = (step - first_step) / config.max_steps if config.max_steps else 0.0
        lr = cosine_lr(step, elapsed, 0 if config.max_steps else budget, base=config.lr, warmup=config.warmup,
                       fraction_done=fraction)
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
        step += 1
        running += float(loss.detach())
        running_count += 1
        if step % config.eval_every == 0:
            evaluate_and_save(running / running_count)
            running, running_count = 0.0, 0
        if show and time.monotonic() - last_line > 2:
            last_line = time.monotonic()
            left = f"  {(budget - elapsed) / 60:.1f} min left" if not config.max_steps else ""
            print(f"\rstep {step}  loss {float(loss):.3f}  lr {lr:.2e}{left} ", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    evaluate_and_save(running / running_count if running_count else "")
    return load_card(out, "latest")


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
