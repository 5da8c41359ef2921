"""The training harness every family shares: the time budget (or a step count), resume, the seed, evaluation
every N steps, ``best`` and ``latest`` checkpoints with their card, the metrics CSV, the curves PNG and a
progress line on a terminal. A family supplies a :class:`Recipe`: its model, one training step, its evaluation
and its card's fields; :func:`run` does the rest.

    card = previous_card(out, resume)              # the run being resumed (None: a new run)
    ... build the model, optimizers and data from the (resumed) config ...
    return run(Recipe(...), out, resumed=card)
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch

from tunesmith.checkpoints import load_card, load_training_state, load_weights, save_checkpoint, save_training_state
from tunesmith.errors import ParameterError
from tunesmith.train.distributed import SINGLE, Group
from tunesmith.train.metrics import MetricsLog, plot_curves

STATE_FILE = "training-state.pt"


@dataclass(frozen=True)
class Clock:
    """Where a run is when a step starts: the step number, seconds spent, the budget in seconds (0 when the run
    counts steps) and the fraction of its steps done (0 when it runs on time)."""

    step: int
    elapsed: float
    budget: float
    fraction: float


@dataclass
class Recipe:
    """What a family gives the harness.

    ``step(clock)`` runs one training step and returns named values (averaged between log rows; those named in
    ``totals`` are summed over the whole run instead, e.g. tokens seen). ``evaluate()`` returns the validation
    metrics, among them ``score`` (which picks the ``best`` checkpoint; ``lower_is_better``). ``card()`` gives
    the family's card fields (family, arch, kwargs, data ...); the harness adds ``training`` and ``metrics``
    (with ``best_key``: the best score so far). ``state()``/``load_state()`` carry what a resume needs besides
    the model's weights (optimizers, a second network)."""

    model: torch.nn.Module
    config: Any  # a dataclass with seed, minutes, max_steps, eval_every (stored on the card)
    step: Callable[[Clock], dict[str, float]]
    evaluate: Callable[[], dict[str, float]]
    card: Callable[[], dict[str, Any]]
    state: Callable[[], dict[str, Any]]
    load_state: Callable[[dict[str, Any]], None]
    score: str
    best_key: str
    columns: list[str]
    curves: list[str]
    title: str
    lower_is_better: bool = True
    x: str = "step"
    ylabel: str = "loss"
    totals: tuple[str, ...] = ()
    log_every: int | None = None  # rows between evaluations (None: only at evaluations)
    on_step: Callable[[int], None] | None = None  # after every step (e.g. draw a picture every N steps)
    on_end: Callable[[], None] | None = None
    status: Callable[[dict[str, float]], str] = field(default=lambda values: "")  # the progress line's middle


def previous_card(out: Path, resume: bool) -> dict[str, Any] | None:
    """The card of the run to resume in ``out`` (InputFileError if there is none), or None for a new run."""
    return load_card(out, "latest") if resume else None


def resumed_config(cls: type, config: Any, card: dict[str, Any] | None) -> Any:
    """The config a run goes on with: the resumed run's own, with this invocation's budget and threads."""
    if card is None:
        return config
    return cls(**{**card["training"]["config"], "minutes": config.minutes, "max_steps": config.max_steps,
                  "threads": config.threads})


def check_budget(config: Any) -> None:
    if config.minutes <= 0 and not config.max_steps:
        raise ParameterError("--minutes must be positive (or give --max-steps)", field="minutes")


def run(recipe: Recipe, out: Path, *, resumed: dict[str, Any] | None = None, command: str | None = None,
        progress_bar: bool | None = None, group: Group = SINGLE,
        continues: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train until the budget is spent, evaluating and checkpointing every ``config.eval_every`` steps and at the
    end; returns the final ``latest`` card. ``continues``: the card of the model whose weights the run starts from
    (a warm start with a schedule of its own): its runs are listed before this one's.

    On several ranks (``group``, :mod:`tunesmith.train.distributed`) every rank runs this loop with rank 0's
    clock; rank 0 alone evaluates, logs and writes files (the others return its card once it is written)."""
    config = recipe.config
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    step, totals = 0, dict.fromkeys(recipe.totals, 0.0)
    best = math.inf if recipe.lower_is_better else -math.inf
    runs: list[dict[str, Any]] = list((continues or {}).get("training", {}).get("runs", []))
    if resumed is not None:
        load_weights(out, "latest", recipe.model)
        state = load_training_state(state_path)
        recipe.load_state(state)
        step, best = int(state["step"]), float(state["best"])
        totals |= {k: float(state.get("totals", state).get(k, 0.0)) for k in recipe.totals}
        runs = list(resumed["training"].get("runs", []))
    log = MetricsLog(out / "metrics.csv", ["step", *recipe.totals, "minutes", *recipe.columns]) if group.main else None
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    started, first_step = time.monotonic(), step
    budget = config.minutes * 60.0 if not config.max_steps else 0.0
    minutes_before = sum(r["minutes"] for r in runs)
    show = (sys.stderr.isatty() if progress_bar is None else progress_bar) and group.main
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def better(value: float) -> bool:
        return value < best if recipe.lower_is_better else value > best

    def card_for(metrics: dict[str, float]) -> dict[str, Any]:
        minutes = round((time.monotonic() - started) / 60, 2)
        kept = min(best, metrics[recipe.score]) if recipe.lower_is_better else max(best, metrics[recipe.score])
        training = {"config": asdict(config) if is_dataclass(config) else dict(config), "steps": step,
                    **counted(),
                    "runs": [*runs, {"command": command, "steps": step - first_step, "minutes": minutes}],
                    "minutes": round(minutes_before + minutes, 2)}
        return {**recipe.card(), "training": training, "metrics": {**metrics, recipe.best_key: kept}}

    def counted() -> dict[str, float | int]:
        return {k: int(v) if float(v).is_integer() else v for k, v in totals.items()}

    def averages() -> dict[str, float]:
        row = {k: round(sums[k] / counts[k], 5) for k in sums}
        sums.clear()
        counts.clear()
        return row

    def evaluate_and_save(row: dict[str, Any]) -> None:
        nonlocal best
        if log is None:  # not rank 0
            return
        metrics = recipe.evaluate()
        log.log(**{**counted(), **row, **metrics, "step": step, "minutes": round((time.monotonic() - started) / 60, 2)})
        card = card_for(metrics)
        if better(metrics[recipe.score]):
            best = metrics[recipe.score]
            card["metrics"][recipe.best_key] = best
            save_checkpoint(out, "best", recipe.model, card)
        save_checkpoint(out, "latest", recipe.model, card)
        save_training_state(state_path, {**recipe.state(), "step": step, "best": best, "totals": totals})
        plot_curves(log, out / "curves.png", x=recipe.x, series=recipe.curves, title=recipe.title,
                    ylabel=recipe.ylabel)

    recipe.model.train()
    last_line = 0.0
    while True:
        elapsed = group.agree(time.monotonic() - started)
        done = step - first_step
        if (config.max_steps is not None and done >= config.max_steps) or (
                config.max_steps is None and elapsed >= budget):
            break
        values = recipe.step(Clock(step=step, elapsed=elapsed, budget=budget,
                                   fraction=done / config.max_steps if config.max_steps else 0.0))
        step += 1
        for key, value in values.items():
            if key in totals:
                totals[key] += value
            else:
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
        if step % config.eval_every == 0:
            evaluate_and_save(averages())
        elif recipe.log_every and step % recipe.log_every == 0 and log is not None:
            log.log(**{**counted(), **averages(), "step": step,
                       "minutes": round((time.monotonic() - started) / 60, 2)})
        if recipe.on_step is not None and group.main:
            recipe.on_step(step)
        if show and time.monotonic() - last_line > 2:
            last_line = time.monotonic()
            left = f"  {(budget - elapsed) / 60:.1f} min left" if budget else ""
            print(f"\rstep {step}  {recipe.status(values)}{left} ", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    if step == first_step or step % config.eval_every or sums:  # unless the last step was just evaluated
        evaluate_and_save(averages())
    if recipe.on_end is not None and group.main:
        recipe.on_end()
    group.barrier()  # rank 0 has written the last checkpoint
    return load_card(out, "latest")
