"""The models this server offers: model cards from the weights directory plus the operator's extra checkpoints.

Only cards are read here (small JSON files); weights are loaded by the worker (`tunesmith.service.tasks`).
This slice serves the composer family (cards with ``family == "lm"``): ``chorale`` (four voices) and ``folk``
(one voice), and the neural instrument (a card with ``family == "gan"``, normally ``notes``) as two models: the card's
own id plays one note (task ``note``) and ``perform`` plays an uploaded score with it (task ``perform``).
The analyzer's card (family ``analyzer``) is kept apart in :attr:`Catalog.analyzer`: it serves
POST /v1/analyses, not generations. Other families are listed in :attr:`Catalog.skipped` until the service
can run them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.checkpoints import resolve_checkpoint
from tunesmith.errors import ParameterError
from tunesmith.symbolic.instruments import EXTRA_PROGRAMS, INSTRUMENTS

METERS = ("4/4", "3/4", "2/4", "2/2", "3/2", "6/4", "3/8", "6/8", "9/8", "12/8")
FORMATS = ("wav", "flac", "mp3", "ogg", "mid")
AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")
TEMPO_RANGE = (20.0, 300.0)
TEMPERATURE_RANGE = (0.05, 3.0)
TOP_P_RANGE = (0.05, 1.0)
MAX_SEED = 2**31 - 1
INSTRUMENT_NAMES = tuple(sorted({i.name for i in INSTRUMENTS} | set(EXTRA_PROGRAMS)))
NOTE_DURATION_RANGE = (0.05, 30.0)  # seconds held: tunesmith.compose.notesynth MIN_DURATION, MAX_DURATION
NOTE_RELEASE_SECONDS = 0.5  # the release after the key is let go (the corpus note: 2.0 s, released at 1.5 s)
PERFORM_MODEL = "perform"


@dataclass(frozen=True)
class ModelEntry:
    """One servable model: its id, the card file that `Composer.load` takes, and the card."""

    id: str
    card_path: Path
    card: dict[str, Any]
    task: str = "compose"  # compose (a composer), note or perform (the neural instrument)

    @property
    def neural(self) -> bool:
        """A model of the neural instrument (`notes`, `perform`): audio from the GAN, no composer."""
        return self.task in ("note", "perform")

    @property
    def instruments(self) -> list[str]:
        """The instruments the neural instrument plays (from its card)."""
        return [i["name"] for i in self.card.get("instruments", [])]

    @property
    def pitched_instruments(self) -> list[str]:
        return [i["name"] for i in self.card.get("instruments", []) if not i.get("drum")]

    @property
    def voices(self) -> int:
        return int(self.card.get("voices") or 1)

    @property
    def version(self) -> str:
        return str(self.card.get("version") or "0.0.0+local")

    @property
    def default_tempo(self) -> float:
        return 76.0 if self.voices == 4 else 100.0

    @property
    def default_key(self) -> str:
        return "D minor" if self.voices == 4 else "C major"

    @property
    def default_instrument(self) -> str:
        return "church_organ" if self.voices == 4 else "flute"

    def public(self, *, max_bars: int) -> dict[str, Any]:
        """The model card as the API shows it: id, version, parameters with ranges, licences."""
        if self.neural:
            return self._public_neural()
        card = self.card
        data = card.get("data", {})
        licence = card.get("licence") or {"weights": "Apache-2.0", "training_data": data.get("licences", {})}
        return {
            "id": self.id,
            "version": self.version,
            "kind": "composer",
            "description": card.get("description") or ("four-voice chorales" if self.voices == 4
                                                        else "single-line melodies"),
            "voices": self.voices,
            "architecture": card.get("arch"),
            "parameter_count": card.get("parameters"),
            "weights_sha256": card.get("weights_sha256"),
            "training_data": {"kind": data.get("kind"), "manifest_sha256": data.get("manifest_sha256"),
                              "licences": data.get("licences", {})},
            "licence": licence,
            "params": {
                "key": {"type": "string", "default": self.default_key,
                        "description": 'tonic and mode, e.g. "D minor", "F# major", "Bb"'},
                "bars": {"type": "integer", "minimum": 1, "maximum": max_bars, "default": 8},
                "meter": {"type": "string", "enum": list(METERS), "default": "4/4"},
                "tempo": {"type": "number", "minimum": TEMPO_RANGE[0], "maximum": TEMPO_RANGE[1],
                          "default": self.default_tempo, "unit": "quarter notes per minute"},
                "temperature": {"type": "number", "minimum": TEMPERATURE_RANGE[0],
                                "maximum": TEMPERATURE_RANGE[1], "default": 1.0},
                "top_p": {"type": "number", "minimum": TOP_P_RANGE[0], "maximum": TOP_P_RANGE[1], "default": 0.95},
                "instrument": {"type": "string", "enum": list(INSTRUMENT_NAMES),
                               "default": self.default_instrument},
                "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            },
            "formats": list(FORMATS),
        }

    def _public_neural(self) -> dict[str, Any]:
        card = self.card
        data = card.get("data", {})
        params: dict[str, Any] = {}
        if self.task == "note":
            params = {
                "instrument": {"type": "string", "enum": sorted(self.instruments), "default": self.instruments[0]},
                "pitch": {"type": "integer", "minimum": 0, "maximum": 127, "default": 60,
                          "description": "MIDI note number inside the instrument's range (drum kits: a GM drum key)"},
                "velocity": {"type": "integer", "minimum": 1, "maximum": 127, "default": 100},
                "duration": {"type": "number", "minimum": NOTE_DURATION_RANGE[0], "maximum": NOTE_DURATION_RANGE[1],
                             "default": 1.5, "description": f"seconds the key is held; a {NOTE_RELEASE_SECONDS:g} s "
                             "release follows"},
                "morph_to": {"type": "string", "enum": sorted(self.instruments),
                             "description": "a second instrument to morph the timbre towards"},
                "morph": {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.0,
                          "description": "how far towards morph_to"},
            }
        else:
            params = {
                "input": {"type": "string",
                          "description": "id of an uploaded MIDI or MusicXML file (POST /v1/uploads)"},
                "instrument": {"type": "string", "enum": sorted(self.pitched_instruments), "default": "piano"},
            }
        params["seed"] = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
        return {
            "id": self.id,
            "version": self.version,
            "kind": "instrument" if self.task == "note" else "performer",
            "description": ("one note of the neural instrument (any pitch, velocity and length; timbre morphs)"
                            if self.task == "note" else "an uploaded score performed by the neural instrument"),
            "voices": 1,
            "architecture": card.get("arch"),
            "parameter_count": card.get("parameters"),
            "weights_sha256": card.get("weights_sha256"),
            "training_data": {"kind": data.get("kind"), "manifest_sha256": data.get("manifest_sha256"),
                              "licences": data.get("licences", {})},
            "licence": card.get("licence") or {"weights": "Apache-2.0", "training_data": data.get("licences", {})},
            "params": params,
            "formats": list(AUDIO_FORMATS) if self.task == "note" else list(FORMATS),
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

    def by_card(self, card_path: Path) -> list[str]:
        return [m.id for m in self.models.values() if m.card_path == card_path]


def _card_path(path: Path) -> Path:
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
            found[model_id] = _card_path(Path(path))
        except ParameterError as exc:
            raise ParameterError(f"model {model_id!r}: {exc.message}", field="models") from exc
    catalog = Catalog(models={})
    for model_id, card_path in found.items():
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError) as exc:
            catalog.skipped[model_id] = f"unreadable card {card_path}: {exc}"
            continue
        if card.get("family") == "analyzer":
            if catalog.analyzer is None or model_id == "analyzer":
                catalog.analyzer = ModelEntry(id=model_id, card_path=card_path, card=card)
            continue
        if card.get("family") == "gan":
            catalog.models[model_id] = ModelEntry(id=model_id, card_path=card_path, card=card, task="note")
            if PERFORM_MODEL not in found and PERFORM_MODEL not in catalog.models:
                catalog.models[PERFORM_MODEL] = ModelEntry(id=PERFORM_MODEL, card_path=card_path, card=card,
                                                           task="perform")
            continue
        if card.get("family", "lm") != "lm":
            catalog.skipped[model_id] = f"family {card.get('family')!r} is not served yet"
            continue
        catalog.models[model_id] = ModelEntry(id=model_id, card_path=card_path, card=card)
    return catalog
