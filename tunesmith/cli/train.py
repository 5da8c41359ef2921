"""`tunesmith train {lm,gan,analyzer} --data DIR --out DIR`: train a model family on a built dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith import families
from tunesmith.errors import ParameterError


def register(sub: argparse._SubParsersAction) -> None:
    trainers = families.trainers()
    p = sub.add_parser("train", help="train a model on a built dataset",
                       description="Train a model family; checkpoints (latest, best), metrics.csv and "
                                   "curves.png go to --out. Resume an interrupted run with --resume.")
    p.add_argument("family", choices=sorted(trainers),
                   help="; ".join(f"{name}: {f.trainer.help}" for name, f in sorted(trainers.items()) if f.trainer))
    p.add_argument("--data", required=True, type=Path, help="dataset directory (tunesmith data build)")
    p.add_argument("--out", required=True, type=Path, help="run directory for checkpoints and logs")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of this run (default 30)")
    p.add_argument("--max-steps", type=int, help="stop after N steps instead of the time budget")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic per seed)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all)")
    p.add_argument("--batch-size", type=int, help="examples per step (lm 16, analyzer 32)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--eval-every", type=int, default=200, help="steps between evaluations and checkpoints")
    for name, family in sorted(trainers.items()):
        if family.trainer is not None:
            family.trainer.add_options(p.add_argument_group(f"{name} options"))
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    for name in ("batch_size", "window", "eval_every", "threads", "max_steps", "dim", "layers"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ParameterError(f"--{name.replace('_', '-')} must be positive, got {value}", field=name)
    trainer = families.trainers()[args.family].trainer
    card = trainer.run(args)
    print(json.dumps({"out": str(args.out), **({"arch": card["arch"]} if "arch" in card else {}),
                      "parameters": card["parameters"], "steps": card["training"]["steps"],
                      "metrics": card["metrics"]}, indent=2))
    return 0
