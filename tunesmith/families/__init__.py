"""The registry of model families: one entry per family (:class:`tunesmith.families.base.Family`), looked up by
name or by the ``family`` field of a model card. The service's catalog, its jobs, the CLI's generate, train and
models commands and the studio's form all read it; none of them names a family.

Adding a family is a models file, a facade with a ``load``, a corpus builder and one :func:`register` call
(docs/architecture.md, "Adding a family"). Importing this module loads no model and no torch.
"""

from __future__ import annotations

from tunesmith.families.analyzer import ANALYZER
from tunesmith.families.base import Family, InputFacts, Resolving, Trainer, Work
from tunesmith.families.composer import COMPOSER
from tunesmith.families.drums import DRUMS
from tunesmith.families.instrument import INSTRUMENT, PERFORMER
from tunesmith.families.song import SONG

__all__ = ["Family", "InputFacts", "Resolving", "Trainer", "Work", "families", "for_card_family", "get",
           "register", "trainers", "unregister"]

_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (its name must be new); returns it."""
    if family.name in _REGISTRY and _REGISTRY[family.name] is not family:
        raise ValueError(f"a family named {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (tests that register a toy family take it out again)."""
    _REGISTRY.pop(name, None)


def families() -> list[Family]:
    return list(_REGISTRY.values())


def get(name: str) -> Family:
    return _REGISTRY[name]


def for_card_family(card_family: str) -> list[Family]:
    """The entries that serve cards whose ``family`` field is ``card_family`` (a card may give several models)."""
    return [f for f in _REGISTRY.values() if f.card_family == card_family]


def trainers() -> dict[str, Family]:
    """``tunesmith train NAME`` -> the family it trains."""
    return {f.trainer.name: f for f in _REGISTRY.values() if f.trainer is not None}


for _family in (COMPOSER, INSTRUMENT, PERFORMER, ANALYZER, SONG, DRUMS):
    register(_family)
