"""The models a server (or the local CLI) offers: model cards from the weights directory plus the operator's
extra checkpoints, each served by the registry's family for the card's ``family`` field.

Only cards are read here (small JSON files); weights are loaded on first use (:mod:`tunesmith.generation.models`).
A card may give several models (a neural instrument's card: its own id plays notes, `perform` plays a score), and a
model of its own id may be made of several cards (`perform`: every neural instrument's; `ModelEntry.members`).
The analyzer's card is kept apart in :attr:`Catalog.analyzer` (it serves analyses, not generations); a card whose
family no entry serves is listed in :attr:`Catalog.skipped` with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tunesmith import families
from tunesmith.checkpoints import resolve_checkpoint
from tunesmith.errors import ParameterError
from tunesmith.families import Family
from tunesmith.families.params import MAX_SEED, public_params

FORMATS = ("wav", "flac", "mp3", "ogg", "mid")
AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")


@dataclass(frozen=True)
class ModelEntry:
    """One servable model: its id, its card (and the card's file) and the family that serves it."""

    id: str
    card_path: Path
    card: dict[str, Any]
    family: Family
    # a model of its own id (`perform`) made of several cards: each card's own entry, by card id; the entry's card
    # is the first card's, with every member's instruments (each tagged with its card's id, "model")
    members: dict[str, ModelEntry] = field(default_factory=dict)

    def for_params(self, params: dict[str, Any]) -> ModelEntry:
        """The entry that runs a job with ``params``: the member card that plays what they ask for, or itself."""
        if not self.members or self.family.member_for is None:
            return self
        return self.members.get(self.family.member_for(self.card, params) or "", self)

    @property
    def version(self) -> str:
        return str(self.card.get("version") or "0.0.0+local")

    @property
    def formats(self) -> tuple[str, ...]:
        return FORMATS if not self.family.audio_only else AUDIO_FORMATS

    def public(self, *, max_bars: int) -> dict[str, Any]:
        """The model card as the API shows it: id, version, kind, parameters with ranges and defaults, licences."""
        card, family = self.card, self.family
        data = card.get("data", {})
        licences = dict(data.get("licences", {}))
        for member in list(self.members.values())[1:]:  # a model made of several cards learned from all their data
            for licence, count in member.card.get("data", {}).get("licences", {}).items():
                licences[licence] = licences.get(licence, 0) + count
        params: dict[str, Any] = {}
        if family.params is not None:
            maxima = {"bars": max_bars} if "bars" in family.params.model_fields else {}
            params = public_params(family.params, defaults=family.card_defaults(card),
                                   choices=family.card_choices(card), maxima=maxima)
            params["seed"] = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
        return {
            "id": self.id,
            "version": self.version,
            "kind": family.kind,
            "family": family.name,
            "description": family.description(card) if family.fixed_id is None else family.summary,
            "voices": int(card.get("voices") or 1),
            "architecture": card.get("arch"),
            "parameter_count": card.get("parameters"),
            "weights_sha256": card.get("weights_sha256"),
            "training_data": {"kind": data.get("kind"), "manifest_sha256": data.get("manifest_sha256"),
                              "licences": licences},
            "licence": card.get("licence") or {"weights": "Apache-2.0", "training_data": licences},
            "params": params,
            "formats": list(self.formats),
            "outputs": sorted(family.outputs),
            "needs_input": family.input_needed,
            **family.public_info(card),
        }


@dataclass
class Catalog:
    models: dict[str, ModelEntry]
    skipped: dict[str, str] = field(default_factory=dict)  # id -> why it is not served
    analyzer: ModelEntry | None = None  # the model POST /v1/analyses runs (a card with family "analyzer")

    def get(self, model_id: str) -> ModelEntry:
        entry = self.models.get(model_id)
        if entry is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise ParameterError(f"unknown model {model_id!r}; this server offers: {known}", field="model")
        return entry


def card_path_of(path: Path) -> Path:
    """The card file of a checkpoint: a card, a run directory (best, else latest) or a shipped model's name."""
    directory, name = resolve_checkpoint(path)
    return (directory / f"{name}.json").resolve()


def load_catalog(weights_dir: Path, extra: dict[str, Path] | None = None) -> Catalog:
    """Cards in ``weights_dir`` (``NAME.json`` beside ``NAME.safetensors``) plus ``extra`` id -> checkpoint."""
    found: dict[str, Path] = {}
    if weights_dir.is_dir():
        for card in sorted(weights_dir.glob("*.json")):
            if card.with_suffix(".safetensors").is_file():
                found[card.stem] = card.resolve()
    for model_id, path in (extra or {}).items():
        try:
            found[model_id] = card_path_of(Path(path))
        except ParameterError as exc:
            raise ParameterError(f"model {model_id!r}: {exc.message}", field="models") from exc
    catalog = Catalog(models={})
    for model_id, card_path in found.items():
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError) as exc:
            catalog.skipped[model_id] = f"unreadable card {card_path}: {exc}"
            continue
        add_card(catalog, model_id, card_path, card, taken=set(found))
    return catalog


def add_card(catalog: Catalog, model_id: str, card_path: Path, card: dict[str, Any], *,
             taken: set[str] | None = None) -> None:
    """Serve a card's models in ``catalog`` (the card's family decides which and how)."""
    card_family = str(card.get("family", "lm"))
    if card.get("arch") == "mixture-cnn":  # the analyzer's mixture tagger: loaded beside the analyzer, not alone
        return
    served = families.for_card_family(card_family)
    if not served:
        catalog.skipped[model_id] = f"family {card_family!r} is not served (no registered family serves it)"
        return
    for family in served:
        if family.params is None:  # not a generation model: the analyzer
            if catalog.analyzer is None or model_id == family.name:
                catalog.analyzer = ModelEntry(id=model_id, card_path=card_path, card=card, family=family)
            continue
        served_id = family.model_id(model_id)
        entry = ModelEntry(id=served_id, card_path=card_path, card=card, family=family)
        if family.fixed_id is not None:
            if served_id in (taken or set()):
                continue  # a card of that name is served instead
            if family.member_for is not None:  # made of every card of its family
                catalog.models[served_id] = _joined(catalog.models.get(served_id), model_id, entry)
                continue
            if served_id in catalog.models:
                continue  # a derived model comes from the first card of its family only
        catalog.models[served_id] = entry


def _joined(first: ModelEntry | None, card_id: str, entry: ModelEntry) -> ModelEntry:
    """A model of its own id made of several cards (`ModelEntry.members`): ``entry`` (card ``card_id``) added to
    ``first``; an instrument a member before it has already plays on that member."""
    tagged = [{**instrument, "model": card_id} for instrument in entry.card.get("instruments", [])]
    if first is None:
        return replace(entry, card={**entry.card, "instruments": tagged}, members={card_id: entry})
    have = {instrument["name"] for instrument in first.card.get("instruments", [])}
    card = {**first.card, "instruments": [*first.card.get("instruments", []),
                                          *(i for i in tagged if i["name"] not in have)]}
    return replace(first, card=card, members={**first.members, card_id: entry})


def local_entry(model: str, checkpoint: Path | None = None) -> ModelEntry:
    """The model the CLI runs locally: ``model`` from the shipped weights, or from ``checkpoint`` (a run directory
    or card) served as ``model``; ParameterError naming the known models otherwise."""
    from tunesmith.checkpoints import WEIGHTS_DIR

    if checkpoint is not None:
        card_path = card_path_of(checkpoint)
        catalog = Catalog(models={})
        add_card(catalog, card_path.stem, card_path, json.loads(card_path.read_text()))
        entries = list(catalog.models.values())
        match = [e for e in entries if e.id == model] or [e for e in entries if e.family.fixed_id is None]
        if not match:
            raise ParameterError(f"{checkpoint} holds no generation model", field="checkpoint")
        entry = match[0]
        return ModelEntry(id=model if entry.family.fixed_id is None else entry.id, card_path=entry.card_path,
                          card=entry.card, family=entry.family)
    return load_catalog(WEIGHTS_DIR).get(model)
