"""`tunesmith models`: the shipped model cards (id, version, parameters, licence of the training data)."""

from __future__ import annotations

import argparse
import json

from tunesmith.cli import remote


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models and their cards",
                       description="List the shipped models: id, version, parameters, training-data licences.")
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    remote.add_server_options(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    if remote.server_of(args):
        return remote.run_models(args)
    from tunesmith.checkpoints import WEIGHTS_DIR

    cards = [json.loads(p.read_text()) for p in sorted(WEIGHTS_DIR.glob("*.json"))]
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print(f"no shipped models in {WEIGHTS_DIR}")
    for card in cards:
        licences = "; ".join(f"{n}x {lic}" for lic, n in card.get("data", {}).get("licences", {}).items())
        print(f"{card['id']:10s} v{card['version']:7s} {card.get('arch', ''):12s} {card['parameters']:>10,} params  "
              f"{card.get('description', '')}")
        print(f"{'':10s} trained on {card.get('data', {}).get('kind', '?')}: {licences}")
    return 0
