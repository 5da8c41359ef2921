"""Facts from the matchers: a vocabulary phrase or an embedding match becomes the facts its entry implies.

A named style gives the style (named) and its usual tempo, energy and instruments (defaults); a form ("jig") its
meter (named); a mood or scene its tempo, mode, energy, density, suggested styles and instruments (implied); an
ensemble its instruments and tracks (named). The same entry matched by the embedding model gives the same facts at
the weaker level :data:`~tunesmith.prompting.text.SIMILAR`.
"""

from __future__ import annotations

from tunesmith.prompting.lexicon import PhraseMatch
from tunesmith.prompting.text import DEFAULT, IMPLIED, NAMED, SIMILAR, Fact
from tunesmith.prompting.vocabulary import Entry, Vocabulary

IMPLIED_CONFIDENCE = 0.7
DEFAULT_CONFIDENCE = 0.5


def entry_facts(entry: Entry, level: int, words: str, confidence: float) -> list[Fact]:
    """The facts an entry implies when the prompt names it (``level`` NAMED) or resembles it (SIMILAR)."""
    source = f"{'vocabulary' if level > SIMILAR else 'embedding'}:{entry.key}"
    said = (words,)
    implied = min(level, IMPLIED)
    facts: list[Fact] = []

    def add(name: str, value: object, at: int, scale: float) -> None:
        facts.append(Fact(name, value, said, source, at, confidence * scale))

    if entry.kind == "style":
        add("style", entry.id, level, 1.0)
        for track, name in entry.instruments.items():
            add("instrument_on", (track, name), DEFAULT, DEFAULT_CONFIDENCE)
        if entry.tempo:
            add("style_tempo", (entry.id, entry.tempo), DEFAULT, DEFAULT_CONFIDENCE)
        if entry.energy is not None:
            add("energy", entry.energy, DEFAULT, DEFAULT_CONFIDENCE)
        if entry.mode:
            add("mode", entry.mode, DEFAULT, DEFAULT_CONFIDENCE)
        if entry.meter:
            add("meter", entry.meter, implied, IMPLIED_CONFIDENCE)
        return facts
    at = level if entry.kind in ("form", "ensemble") else implied  # a form or an ensemble names what it implies
    if entry.meter:
        add("meter", entry.meter, at, 1.0 if at == level else IMPLIED_CONFIDENCE)
    if entry.tempo:
        add("tempo", entry.tempo, implied, IMPLIED_CONFIDENCE)
    if entry.mode:
        add("mode", entry.mode, implied, IMPLIED_CONFIDENCE)
    if entry.energy is not None:
        add("energy", entry.energy, implied, IMPLIED_CONFIDENCE)
    if entry.density is not None:
        add("density", entry.density, implied, IMPLIED_CONFIDENCE)
    if entry.styles:
        add("style_hint", entry.styles, implied, IMPLIED_CONFIDENCE)
    for track, name in entry.instruments.items():
        add("instrument_on", (track, name), at, IMPLIED_CONFIDENCE)
    if entry.tracks:
        add("tracks", entry.tracks, at, 1.0 if at == level else IMPLIED_CONFIDENCE)
    if entry.instrument:
        add("ensemble_instrument", entry.instrument, at, 1.0)
    return facts


def phrase_facts(match: PhraseMatch, vocabulary: Vocabulary, track_hint: str | None = None) -> list[Fact]:
    """The facts of one matched phrase (all its meanings); ``track_hint`` is a track word next to an instrument."""
    facts: list[Fact] = []
    words, confidence = (match.words,), match.confidence
    span = (match.start, match.end)
    for meaning in match.meanings:
        source = f"vocabulary:{meaning.kind}:{meaning.key}"
        if meaning.kind in ("style", "form", "mood", "scene", "ensemble"):
            entry = vocabulary.entry(meaning.kind, meaning.key)
            if entry is not None:
                facts.extend(entry_facts(entry, NAMED, match.words, confidence))
        elif meaning.kind == "family":
            facts.append(Fact("family", (meaning.key, meaning.value), words, source, NAMED, confidence, span))
        elif meaning.kind == "tempo":
            facts.append(Fact("tempo", meaning.value, words, source, NAMED, confidence, span))
        elif meaning.kind in ("dynamics", "duration", "drum"):
            facts.append(Fact(meaning.kind, meaning.value, words, source, NAMED, confidence, span))
        elif meaning.kind == "track":
            name = {"without": "track_without", "only": "track_only"}.get(match.scope, "track_with")
            facts.append(Fact(name, meaning.key, words, source, NAMED, confidence, span))
        elif meaning.kind in ("instrument", "generic"):
            name = "instrument" if meaning.kind == "instrument" else "generic"
            facts.append(Fact(name, (meaning.key, track_hint, match.scope), words, source, NAMED, confidence, span))
        elif meaning.kind == "music":
            facts.append(Fact("music", meaning.key, words, source, NAMED, confidence, span))
    return facts


def track_hints(matches: list[PhraseMatch], text_lower: str) -> dict[int, str]:
    """Index of an instrument match -> the track word right next to it ("piano chords", "trumpet solo")."""
    hints: dict[int, str] = {}
    for i, match in enumerate(matches):
        if not any(m.kind in ("instrument", "generic") for m in match.meanings):
            continue
        for j in (i + 1, i - 1):
            if not 0 <= j < len(matches):
                continue
            other = matches[j]
            gap = text_lower[match.end:other.start] if j > i else text_lower[other.end:match.start]
            tracks = [m.key for m in other.meanings if m.kind == "track"]
            if tracks and not gap.strip() and not other.scope:
                hints[i] = tracks[0]
                break
    return hints
