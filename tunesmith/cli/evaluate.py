"""`tunesmith evaluate {lm,gan,analyzer,watermark}`: measure a model and print its figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.errors import ParameterError

TARGETS = ("lm", "gan", "analyzer", "watermark")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model (figures as text or JSON)",
                       description="Evaluate a model against held-out data and baselines.")
    p.add_argument("target", choices=TARGETS, help="what to evaluate (available now: lm)")
    p.add_argument("--checkpoint", default=None,
                   help="model name (e.g. chorale, folk) or a training run directory (default: chorale)")
    p.add_argument("--data", type=Path, help="the dataset the model was trained on (default: from its card)")
    p.add_argument("--pieces", type=int, default=100, help="lm: pieces to generate (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    if args.target != "lm":
        raise ParameterError(f"evaluating '{args.target}' is not available yet (available: lm)", field="target")
    if args.pieces <= 0:
        raise ParameterError(f"--pieces must be positive, got {args.pieces}", field="pieces")
    from tunesmith.compose.weights import resolve_checkpoint
    from tunesmith.evaluate.lm import evaluate_lm
    from tunesmith.train.checkpoint import load_card

    checkpoint = args.checkpoint or "chorale"
    data = args.data
    if data is None:
        directory, name = resolve_checkpoint(checkpoint)
        data = Path(load_card(directory, name)["data"]["path"])
        if not data.is_dir():
            raise ParameterError(f"the model's dataset {data} is not here; build it or pass --data", field="data")
    report = evaluate_lm(checkpoint, data, pieces=args.pieces, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    return 0


def summary_lines(report: dict) -> list[str]:
    """A short human-readable summary of an lm evaluation."""
    nll, stats, orig = report["nll"], report["statistics"], report["originality"]
    lines = [f"{report['checkpoint']} ({report['arch']}, {report['parameters']:,} parameters)",
             f"test NLL {nll['model_test_nll']:.4f} nats/token vs {nll['ngram']['order']}-gram "
             f"{nll['ngram']['test_nll']:.4f}: {100 * nll['improvement_over_ngram']:.1f}% lower (goal 25%)",
             f"key found by music21 in {100 * report['key_accuracy']['music21_agrees']:.0f}% of pieces (goal 90%)"]
    for name, s in stats["by_statistic"].items():
        lines.append(f"  {name:24s} generated {s['generated']:.3f}  held-out {s['held_out']:.3f}  "
                     f"diff {100 * s['relative_difference']:.1f}%")
    runs = orig["longest_shared_run"]
    lines.append(f"originality: longest shared run median {runs['median']:.0f}, p99 {runs['p99']:.0f}, max "
                 f"{runs['max']} notes; {100 * orig['share_at_most_12']:.1f}% at most 12 (goal 99%)")
    lines.append(f"generation: {report['speed']['seconds_per_piece']:.2f} s per piece")
    return lines
