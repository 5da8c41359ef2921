"""`tunesmith train {lm,gan,analyzer} --data DIR --out DIR`: train a model family on a built dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.errors import ParameterError

FAMILIES = ("lm", "gan", "analyzer")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a built dataset",
                       description="Train a model family; checkpoints (latest, best), metrics.csv and "
                                   "curves.png go to --out. Resume an interrupted run with --resume.")
    p.add_argument("family", choices=FAMILIES,
                   help="lm: composer language model; analyzer: the CNN analyzer; gan: the neural instrument")
    p.add_argument("--data", required=True, type=Path, help="dataset directory (tunesmith data build)")
    p.add_argument("--out", required=True, type=Path, help="run directory for checkpoints and logs")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of this run (default 30)")
    p.add_argument("--max-steps", type=int, help="stop after N steps instead of the time budget")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic per seed)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all)")
    lm = p.add_argument_group("lm options")
    lm.add_argument("--arch", choices=["rnn", "transformer"], default="rnn", help="model architecture")
    lm.add_argument("--dim", type=int, help="model width")
    lm.add_argument("--layers", type=int, help="number of layers")
    lm.add_argument("--batch-size", type=int, help="examples per step (lm 16, analyzer 32)")
    lm.add_argument("--window", type=int, default=384, help="tokens per training window")
    lm.add_argument("--lr", type=float, help="peak learning rate")
    lm.add_argument("--eval-every", type=int, default=200, help="steps between evaluations and checkpoints")
    gan = p.add_argument_group("gan options")
    gan.add_argument("--adv-start", type=int, help="gan: steps of spectral-loss warm-up before the GAN losses")
    gan.add_argument("--crop-frames", type=int, help="gan: training window in 8 ms frames (default 64)")
    gan.add_argument("--grid-every", type=int, help="gan: steps between spectrogram grid PNGs (default 500)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    for name in ("batch_size", "window", "eval_every", "threads", "max_steps", "dim", "layers"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ParameterError(f"--{name.replace('_', '-')} must be positive, got {value}", field=name)
    if args.family == "analyzer":
        return run_train_analyzer(args)
    if args.family == "gan":
        return run_train_gan(args)
    if args.family != "lm":
        raise ParameterError(f"training '{args.family}' is not available yet (available: lm, analyzer, gan)",
                             field="family")
    from tunesmith.train.lm import LMTrainConfig, train_lm

    model = {k: v for k in ("dim", "layers") if (v := getattr(args, k)) is not None}
    config = LMTrainConfig(arch=args.arch, minutes=args.minutes, max_steps=args.max_steps,
                           batch_size=args.batch_size or 16, window=args.window, lr=args.lr, eval_every=args.eval_every,
                           seed=args.seed, threads=args.threads, model=model)
    card = train_lm(args.data, args.out, config, resume=args.resume)
    print(json.dumps({"out": str(args.out), "arch": card["arch"], "parameters": card["parameters"],
                      "steps": card["training"]["steps"], "metrics": card["metrics"]}, indent=2))
    return 0


def run_train_analyzer(args: argparse.Namespace) -> int:
    """`train analyzer`: the CNN on a `notes` dataset (or MagnaTagATune tags on an `mtt` one)."""
    from tunesmith.train.analyzer import AnalyzerTrainConfig, train_analyzer

    config = AnalyzerTrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size or 32,
                                 eval_every=args.eval_every, seed=args.seed, threads=args.threads or 1,
                                 **({"lr": args.lr} if args.lr else {}))
    card = train_analyzer(args.data, args.out, config, resume=args.resume)
    print(json.dumps({"out": str(args.out), "parameters": card["parameters"], "steps": card["training"]["steps"],
                      "metrics": card["metrics"]}, indent=2))
    return 0


def run_train_gan(args: argparse.Namespace) -> int:
    """`train gan`: the neural instrument on a `notes` dataset (tunesmith.train.gan)."""
    from tunesmith.train.gan import GANTrainConfig, train_gan

    for name in ("adv_start", "crop_frames", "grid_every"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "adv_start" else 1):
            raise ParameterError(f"--{name.replace('_', '-')} must be positive, got {value}", field=name)
    options = {"adv_start": args.adv_start, "crop_frames": args.crop_frames, "grid_every": args.grid_every,
               "batch_size": args.batch_size, "lr_g": args.lr}
    config = GANTrainConfig(minutes=args.minutes, max_steps=args.max_steps, seed=args.seed,
                            eval_every=args.eval_every, threads=args.threads or 1,
                            **{k: v for k, v in options.items() if v is not None})
    card = train_gan(args.data, args.out, config, resume=args.resume)
    print(json.dumps({"out": str(args.out), "parameters": card["parameters"], "steps": card["training"]["steps"],
                      "metrics": card["metrics"]}, indent=2))
    return 0
