"""Training loop for the composer language models (`tunesmith train lm`).

One readable loop: sample windows of transposed token sequences, next-token cross-entropy, AdamW with a
warm-up and a cosine decay over the run's time budget, evaluation on the valid split, checkpoints
``latest`` and ``best`` (safetensors + JSON card) and a CSV log with a PNG of the learning curves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tunesmith.checkpoints import load_card
from tunesmith.data.dataset import Dataset
from tunesmith.errors import ParameterError
from tunesmith.models.lm import build_lm, count_parameters
from tunesmith.symbolic.grid import N_POSITIONS, N_SLOTS
from tunesmith.symbolic.tokens import VOCAB
from tunesmith.train.distributed import SINGLE, Group, check_nproc, launch
from tunesmith.train.harness import Clock, Recipe, check_budget, previous_card, resumed_config, run
from tunesmith.train.lm_data import IGNORE, TokenCorpus
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
    nproc: int = 1  # processes sharing each batch (torch.distributed); the batch size is the global one
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
    """Train (or resume) a language model on a tokenized dataset; returns the final card.

    ``config.nproc`` > 1 trains on that many processes (:mod:`tunesmith.train.distributed`), each on its share
    of every batch: the same steps as one process on the whole batch, up to float rounding and dropout."""
    check_budget(config)
    going_on = replace(resumed_config(LMTrainConfig, config, previous_card(out, resume)), nproc=config.nproc)
    check_nproc(going_on.nproc, going_on.batch_size)
    if config.nproc == 1:
        return _train_lm(data, out, config, resume, command, progress_bar)
    Dataset(data)  # a bad directory fails here, with its reason, rather than in every process
    launch(_train_lm, config.nproc, data, out, config, resume, command or _command(), progress_bar,
           threads=config.threads)
    return load_card(out, "latest")


def _command() -> str:
    import shlex
    import sys

    return " ".join(shlex.quote(a) for a in sys.argv)


def _train_lm(data: Path, out: Path, config: LMTrainConfig, resume: bool, command: str | None,
              progress_bar: bool | None, group: Group = SINGLE) -> dict[str, Any]:
    """One process's part of :func:`train_lm` (the whole run when ``group`` is :data:`SINGLE`)."""
    resumed = previous_card(out, resume)
    config = replace(resumed_config(LMTrainConfig, config, resumed), nproc=config.nproc)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + (resumed["training"]["steps"] if resumed else 0))
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset = Dataset(data)
    train, valid = TokenCorpus(dataset, "train"), TokenCorpus(dataset, "valid")
    model = build_lm(config.arch, **config.model_kwargs())
    network = group.wrap(model)  # what the step runs: DistributedDataParallel over ``model`` on several ranks
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate(), weight_decay=config.weight_decay,
                                  betas=(0.9, 0.98))

    def step(clock: Clock) -> dict[str, float]:
        lr = cosine_lr(clock.step, clock.elapsed, clock.budget, base=config.learning_rate(), warmup=config.warmup,
                       fraction_done=clock.fraction)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        batch = train.batch(rng, size=config.batch_size, length=config.window, transpose=config.transpose)
        count = int((batch["targets"] != IGNORE).sum())  # of the global batch: every rank draws the same one
        loss = loss_of(network, group.shard(batch)) / count  # this rank's part of the global mean
        optimizer.zero_grad(set_to_none=True)
        (loss * group.size).backward()  # DistributedDataParallel averages over the ranks: their sum is the mean
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return {"lr": lr, "train_nll": group.total(float(loss.detach())), "tokens": count}

    def card() -> dict[str, Any]:
        return {
            "family": "lm", "arch": config.arch, "kwargs": model.kwargs, "parameters": count_parameters(model),
            "vocabulary": VOCAB.to_dict(metadata={"steps_per_beat": dataset.info.get("steps_per_beat", 4)}),
            "voices": dataset.info.get("voices"),
            "data": {"path": str(data), "kind": dataset.kind, "manifest_sha256": dataset.manifest_sha256,
                     "licences": dataset.info.get("licences", {}), "train_tokens": train.tokens,
                     "train_pieces": len(train.sequences), "valid_pieces": len(valid.sequences)},
        }

    recipe = Recipe(model=model, config=config, step=step, evaluate=lambda: {"valid_nll": evaluate_nll(model, valid)},
                    card=card, state=lambda: {"optimizer": optimizer.state_dict()},
                    load_state=lambda state: optimizer.load_state_dict(state["optimizer"]),
                    score="valid_nll", best_key="best_valid_nll", columns=["lr", "train_nll", "valid_nll"],
                    curves=["train_nll", "valid_nll"], x="tokens", totals=("tokens",), ylabel="nats per token",
                    title=f"{dataset.kind} {config.arch}: next-token NLL",
                    status=lambda values: f"loss {values['train_nll']:.3f}  lr {values['lr']:.2e}")
    return run(recipe, out, resumed=resumed, command=command, progress_bar=progress_bar, group=group)
