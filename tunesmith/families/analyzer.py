"""The analyzer family (cards with ``family == "analyzer"``): tags, key, tempo, loudness and melody of a
recording. It serves POST /v1/analyses, not generations (:class:`tunesmith.analyze.analyzer.Analyzer`)."""

from __future__ import annotations

from typing import Any

from tunesmith.families.base import Family, Trainer


def load(card_path: Any) -> Any:
    from tunesmith.analyze.analyzer import Analyzer

    return Analyzer.load(card_path)


def train(args: Any) -> dict[str, Any]:
    """`tunesmith train analyzer`: the CNN on a `notes` dataset (or MagnaTagATune tags on an `mtt` one); on a
    `mixtures` dataset, the mixture tagger (per-frame family presence)."""
    from tunesmith.train.analyzer import AnalyzerTrainConfig, train_analyzer
    from tunesmith.train.mixtures import is_mixtures, train_mixture_run

    if is_mixtures(args.data):
        return train_mixture_run(args)

    config = AnalyzerTrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size or 32,
                                 eval_every=args.eval_every, seed=args.seed, threads=args.threads or 1,
                                 **({"lr": args.lr} if args.lr else {}))
    return train_analyzer(args.data, args.out, config, resume=args.resume)


ANALYZER = Family(name="analyzer", card_family="analyzer", kind="analyzer",
                  summary="instrument, pitch, key, tempo, loudness and melody of a recording", load=load,
                  outputs=frozenset(), trainer=Trainer("analyzer", "the CNN analyzer", train))
