"""The analyzer family (cards with ``family == "analyzer"``): tags, key, tempo, loudness and melody of a
recording. It serves POST /v1/analyses, not generations (:class:`tunesmith.analyze.analyzer.Analyzer`)."""

from __future__ import annotations

from typing import Any

from tunesmith.families.base import Family, Trainer


def load(card_path: Any) -> Any:
    from tunesmith.analyze.analyzer import Analyzer

    return Analyzer.load(card_path)


def train(**options: Any) -> dict[str, Any]:
    from tunesmith.train.analyzer import AnalyzerTrainConfig, train_analyzer

    data, out, resume = options.pop("data"), options.pop("out"), options.pop("resume", False)
    return train_analyzer(data, out, AnalyzerTrainConfig(**options), resume=resume)


ANALYZER = Family(name="analyzer", card_family="analyzer", kind="analyzer",
                  summary="instrument, pitch, key, tempo, loudness and melody of a recording", load=load,
                  outputs=frozenset(), trainer=Trainer("analyzer", "the CNN analyzer", train))
