"""Training loop for the composer language models (`tunesmith train lm`).

One readable loop: sample windows of transposed token sequences, next-token cross-entropy, AdamW with a
warm-up and a cosine decay over the run's time budget, evaluation on the valid split, checkpoints
``latest`` and ``best`` (safetensors + JSON card) and a CSV log with a PNG of the learning curves.
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
from tunesmith.models.lm import build_lm, count_parameters
from tunesmith.symbolic.grid import N_POSITIONS, N_SLOTS
from tunesmith.symbolic.tokens import VOCAB
from tunesmith.train.lm_data import IGNORE, TokenCorpus
from tunesmith.train.metrics import MetricsLog, plot_curves
from tunesmith.train.schedule import cosine_lr

ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "rnn": {"dim": 320, "layers": 2, "dropout": 0.25, "lr": 2e-3},
    "transformer": {"dim": 192, "layers": 4, "heads": 4, "dropout": 0.15, "lr": 1e-3},
}


@dataclass
class LMTrainConfig:
    """Everything that shapes a run; stored on the checkpoint card."""

    arch: str = "rnn"
    minutes: float = 30.0
    max_steps: int | None = None
    batch_size: int = 16
    window: int = 384
    transpose: int = 6
    lr: float | None = None
    weight_decay: float = 0.01
    warmup: int = 100
    eval_every: int = 200
    seed: int = 0
    threads: int | None = None
    model: dict[str, Any] = field(default_factory=dict)

    def model_kwargs(self) -> dict[str, Any]:
        if self.arch not in ARCH_DEFAULTS:
            raise ParameterError(f"unknown architecture {self.arch!r}; choose rnn or transformer", field="arch")
        defaults = {k: v for k, v in ARCH_DEFAULTS[self.arch].items() if k != "lr"}
        return {**defaults, **self.model, "vocab_size": VOCAB.size, "n_slots": N_SLOTS, "n_positions": N_POSITIONS}

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else ARCH_DEFAULTS[self.arch]["lr"]


def loss_of(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits, _ = model(batch["ids"], batch["slots"], batch["positions"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


@torch.no_grad()
def evaluate_nll(model: torch.nn.Module, corpus: TokenCorpus, *, window: int = 2048) -> float:
    """Mean negative log-likelihood (nats) per body token over every sequence of ``corpus``."""
    model.eval()
    total, count = 0.0, 0
    for batch in corpus.evaluation_windows(window):
        total += float(loss_of(model, batch))
        count += int((batch["targets"] != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def train_lm(data: Path, out: Path, config: LMTrainConfig, *, resume: bool = False,
             command: str | None = None, progress_bar: bool | None = None) -> dict[str, Any]:
    """Train (or resume) a language model on a tokenized dataset; returns the final card."""
    if config.minutes <= 0 and not config.max_steps:
        raise ParameterError("--minutes must be positive (or give --max-steps)", field="minutes")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset = Dataset(data)
    train, valid = TokenCorpus(dataset, "train"), TokenCorpus(dataset, "valid")
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "training-state.pt"
    runs: list[dict[str, Any]] = []
    step, tokens_seen, best = 0, 0, math.inf
    if resume:
        card = load_card(out, "latest")
        config = LMTrainConfig(**{**card["training"]["config"], "minutes": config.minutes,
                                  "max_steps": config.max_steps, "threads": config.threads})
        rng = np.random.default_rng(config.seed + card["training"]["steps"])
    model = build_lm(config.arch, **config.model_kwargs())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate(), weight_decay=config.weight_decay,
                                  betas=(0.9, 0.98))
    if resume:
        load_weights(out, "latest", model)
        state = load_training_state(state_path)
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen, best = int(state["step"]), int(state["tokens"]), float(state["best"])
        runs = list(card["training"].get("runs", []))
    log = MetricsLog(out / "metrics.csv", ["step", "tokens", "minutes", "lr", "train_nll", "valid_nll"])
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    started = time.monotonic()
    budget = config.minutes * 60.0
    first_step = step
    show = sys.stderr.isatty() if progress_bar is None else progress_bar
    running, running_count = 0.0, 0
    minutes_before = sum(r["minutes"] for r in runs)

    def card_for(valid_nll: float) -> dict[str, Any]:
        return {
            "family": "lm", "arch": config.arch, "kwargs": model.kwargs, "parameters": count_parameters(model),
            "vocabulary": VOCAB.to_dict(metadata={"steps_per_beat": dataset.info.get("steps_per_beat", 4)}),
            "voices": dataset.info.get("voices"),
            "data": {"path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
                     "licences": dataset.info.get("licences", {}), "train_tokens": train.tokens,
                     "train_pieces": len(train.sequences), "valid_pieces": len(valid.sequences)},
            "training": {"config": asdict(config), "steps": step, "tokens": tokens_seen,
                         "runs": [*runs, {"command": command, "steps": step - first_step,
                                          "minutes": round((time.monotonic() - started) / 60, 2)}],
                         "minutes": round(minutes_before + (time.monotonic() - started) / 60, 2)},
            "metrics": {"valid_nll": valid_nll, "best_valid_nll": min(best, valid_nll)},
        }

    def checkpoint(valid_nll: float) -> None:
        nonlocal best
        card = card_for(valid_nll)
        if valid_nll < best:
            best = valid_nll
            card["metrics"]["best_valid_nll"] = best
            save_checkpoint(out, "best", model, card)
        save_checkpoint(out, "latest", model, card)
        save_training_state(state_path, {"optimizer": optimizer.state_dict(), "step": step,
                                         "tokens": tokens_seen, "best": best})
        plot_curves(log, out / "curves.png", x="tokens", series=["train_nll", "valid_nll"],
                    title=f"{dataset.kind} {config.arch}: next-token NLL")

    model.train()
    last_line = 0.0
    while True:
        elapsed = time.monotonic() - started
        done = (config.max_steps is not None and step - first_step >= config.max_steps) or (
            config.max_steps is None and elapsed >= budget)
        if done:
            break
        fraction = (step - first_step) / config.max_steps if config.max_steps else 0.0
        lr = cosine_lr(step, elapsed, budget if not config.max_steps else 0, base=config.learning_rate(),
                    warmup=config.warmup, fraction_done=fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = train.batch(rng, size=config.batch_size, length=config.window, transpose=config.transpose)
        count = int((batch["targets"] != IGNORE).sum())
        loss = loss_of(model, batch) / count
        loss_value = loss.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += count
        running += float(loss_value)
        running_count += 1
        if step % config.eval_every == 0:
            valid_nll = evaluate_nll(model, valid)
            log.log(step=step, tokens=tokens_seen, minutes=round(elapsed / 60, 2), lr=lr,
                    train_nll=running / running_count, valid_nll=valid_nll)
            running, running_count = 0.0, 0
            checkpoint(valid_nll)
        if show and time.monotonic() - last_line > 2:
            last_line = time.monotonic()
            remaining = (budget - elapsed) / 60 if not config.max_steps else 0
            print(f"\rstep {step}  loss {float(loss):.3f}  lr {lr:.2e}  {tokens_seen / 1e6:.2f}M tokens"
                  f"  {remaining:.1f} min left ", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    valid_nll = evaluate_nll(model, valid)
    log.log(step=step, tokens=tokens_seen, minutes=round((time.monotonic() - started) / 60, 2),
            lr=optimizer.param_groups[0]["lr"],
            train_nll=running / running_count if running_count else "", valid_nll=valid_nll)
    checkpoint(valid_nll)
    return load_card(out, "latest")
