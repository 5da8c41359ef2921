"""Models loaded once per process and kept (the pipeline loads each family's models here; the analyzer too)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("tunesmith.worker")

_loaded: dict[Path, Any] = {}
_lock = threading.Lock()


def load_once(card_path: Path, load: Callable[[Path], Any], what: str) -> Any:
    """The model of ``card_path``, loaded with ``load`` on first use in this process and kept."""
    with _lock:
        model = _loaded.get(card_path)
        if model is None:
            started = time.perf_counter()
            model = _loaded[card_path] = load(card_path)
            log.info("loaded %s %s in %.1f s", what, card_path, time.perf_counter() - started)
        return model


def is_loaded(card_path: Path) -> bool:
    with _lock:
        return card_path in _loaded


def loaded_cards() -> set[Path]:
    with _lock:
        return set(_loaded)


def load_analyzer(card_path: Path) -> Any:
    """The analyzer of a card, loaded on first use in this process and kept."""
    from tunesmith.analyze.analyzer import Analyzer

    return load_once(card_path, Analyzer.load, "analyzer")
