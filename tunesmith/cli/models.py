"""`tunesmith models`: the shipped model cards (id, version, parameters, licence of the training data)."""

from __future__ import annotations

import argparse

from tunesmith.cli import remote


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models and their cards",
                       description="List the shipped models: id, version, parameters, training-data licences.")
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    remote.add_server_options(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    """The local models, as the registry's families serve the shipped cards (the same view as GET /v1/models)."""
    if remote.server_of(args):
        return remote.run_models(args)
    from tunesmith.config import load_settings
    from tunesmith.generation.catalog import load_catalog

    settings = load_settings()
    catalog = load_catalog(settings.resolved_weights_dir(), settings.models)
    entries = [*catalog.models.values(), *([catalog.analyzer] if catalog.analyzer is not None else [])]
    cards = [entry.public(max_bars=settings.max_bars) for entry in entries]
    code = remote.print_models(cards, args, where=f"in {settings.resolved_weights_dir()}")
    if not args.json:
        from tunesmith.prompting import embedding_model_cards

        for card in embedding_model_cards():
            print(f"prompts are read with {card['model']} ({card['package']}, {card['licence']}; "
                  f"{card['languages']})")
    return code
