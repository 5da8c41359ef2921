"""What the engine understood: :class:`Interpretation`, one :class:`ParamReading` per parameter, JSON-ready.

Every value says where it came from (``source``: ``given`` for an explicit parameter, ``rule`` for an exact rule,
``vocabulary`` for a named word of the table, ``embedding`` for a similarity match, ``default`` for a musician's
default), from which words, and how confident the engine is. A refused interpretation (not about music, or
contradicting itself) still carries everything understood; :meth:`Interpretation.raise_if_refused` turns it into
the `ParameterError` (field ``prompt``) that the service answers with 422.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunesmith.errors import ParameterError

REFUSAL_REASONS = ("not_music", "contradiction")


@dataclass
class ParamReading:
    """One parameter's value and its provenance."""

    name: str
    value: Any
    source: str  # given | rule | vocabulary | embedding | default
    detail: str  # e.g. "tempo word 'slow' (60-80 BPM)", "mood 'sad'", "default of style bossa_nova"
    words: list[str] = field(default_factory=list)
    confidence: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "detail": self.detail, "words": list(self.words),
                "confidence": round(self.confidence, 3)}

    def describe(self) -> str:
        words = f" from {', '.join(repr(w) for w in self.words)}" if self.words else ""
        return f"{self.name} {self.value} ({self.detail}{words})"


@dataclass
class Match:
    """A vocabulary entry the prompt matched (exactly, nearly or by embedding similarity)."""

    entry: str  # "mood:sad", "style:bossa_nova", "family:folk", "instrument:piano", ...
    words: str
    how: str  # exact | plural | near (edit distance N) | embedding
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "words": self.words, "how": self.how, "confidence": round(self.confidence, 3)}


@dataclass
class Interpretation:
    """A prompt as the engine read it for one model family."""

    text: str
    language: str  # "en" | "zh"
    about_music: bool
    model: str | None
    model_confidence: float
    model_reason: str
    params: dict[str, ParamReading] = field(default_factory=dict)
    unused_words: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    model_scores: dict[str, float] = field(default_factory=dict)
    embedding_model: str | None = None  # the sentence-embedding model used for this prompt, if one was needed

    @property
    def refused(self) -> str | None:
        """None, or why the prompt cannot become a job: ``not_music`` or ``contradiction``."""
        if not self.about_music:
            return "not_music"
        return "contradiction" if self.conflicts else None

    def values(self) -> dict[str, Any]:
        """The parameters as a plain mapping (name -> value)."""
        return {name: reading.value for name, reading in self.params.items()}

    def understood(self) -> str:
        """One line: the model and every parameter with its words (for messages)."""
        parts = [f"model {self.model}"] if self.model else []
        parts += [reading.describe() for reading in self.params.values()]
        return "; ".join(parts) or "nothing"

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "language": self.language, "about_music": self.about_music, "refused": self.refused,
            "model": self.model, "model_confidence": round(self.model_confidence, 3),
            "model_reason": self.model_reason, "model_scores": {k: round(v, 3) for k, v in self.model_scores.items()},
            "params": {name: reading.as_dict() for name, reading in self.params.items()},
            "unused_words": list(self.unused_words), "notes": list(self.notes), "conflicts": list(self.conflicts),
            "matches": [m.as_dict() for m in self.matches], "embedding_model": self.embedding_model,
        }

    def raise_if_refused(self) -> None:
        """ParameterError (field ``prompt``) if the prompt is not about music or contradicts itself."""
        if self.refused == "not_music":
            unused = ", ".join(repr(w) for w in self.unused_words) or "nothing"
            raise ParameterError(
                f"the prompt does not seem to be about music (understood: {self.understood()}; not used: {unused}); "
                "describe the music, e.g. 'a calm ambient pad for a rainy night' or 'a jig in D for fiddle'",
                field="prompt")
        if self.refused == "contradiction":
            raise ParameterError(f"the prompt contradicts itself: {'; '.join(self.conflicts)} "
                                 f"(understood: {self.understood()})", field="prompt")

    def with_explicit(self, explicit: dict[str, Any]) -> dict[str, Any]:
        """The parameters with ``explicit`` ones winning; each overridden prompt value gets a note."""
        merged = self.values()
        for name, value in explicit.items():
            if value is None:
                continue
            reading = self.params.get(name)
            if reading is not None and reading.source != "given" and reading.value != value:
                self.notes.append(f"{name}: the explicit {value!r} wins over {reading.value!r} read from the prompt")
            merged[name] = value
            self.params[name] = ParamReading(name, value, "given", "explicit parameter", [], 1.0)
        return merged
