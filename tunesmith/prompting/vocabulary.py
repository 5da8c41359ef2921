"""The vocabulary table (``vocabulary.toml``): what words mean to a musician, loaded and checked once.

Entries (styles, moods, scenes, ensembles) carry the parameters a musician would choose for them; word tables
(tempo, loudness, drum sounds, tracks, instruments) give exact meanings. :class:`Vocabulary` turns the table into
a phrase lexicon (phrase -> meanings) for the exact matcher and into described entries for the embedding matcher.
A malformed table is a `DatasetError` naming the file, the entry and the reason.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tunesmith.errors import DatasetError, ParameterError
from tunesmith.prompting.instruments import GM_GROUPS, program_of
from tunesmith.symbolic.keys import MODES

STYLE_IDS: tuple[str, ...] = (
    "swing", "big_band", "jazz", "bebop", "jazz_waltz", "blues", "boogie", "ragtime", "rock", "metal", "pop",
    "pop_ballad", "funk", "rnb_soul", "reggae_ska", "country", "bossa_nova", "samba", "latin", "tango", "latin_ballad",
    "waltz", "march", "house", "techno_trance", "hip_hop", "trip_hop", "drum_and_bass", "ambient", "folk", "gospel",
    "polka", "show_tune", "fusion", "calypso")
TRACKS: tuple[str, ...] = ("drums", "bass", "chords", "pad", "lead")
ENTRY_KINDS: tuple[str, ...] = ("style", "form", "mood", "scene", "ensemble", "topic")
FORM_WEIGHT = 1.2
_TABLES = {"styles": "style", "forms": "form", "moods": "mood", "scenes": "scene", "ensembles": "ensemble",
           "not_music": "topic"}


@dataclass(frozen=True)
class Entry:
    """A described vocabulary entry (a style family, form, mood, scene or ensemble) and the parameters it implies."""

    kind: str
    id: str
    words: tuple[str, ...]
    description: str
    tempo: tuple[float, float] | None = None
    mode: str | None = None
    energy: float | None = None
    density: float | None = None
    meter: str | None = None
    styles: tuple[str, ...] = ()
    instruments: Mapping[str, str] = field(default_factory=dict)
    instrument: str | None = None
    tracks: tuple[str, ...] | None = None
    parent: str | None = None  # a style family this style belongs to ("bebop" -> "jazz")
    family: str | None = None  # the model family a form names ("jig" -> "folk")
    doubled: bool = False  # a style written at twice the tempo a musician counts (vocabulary.toml, "doubled")

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Meaning:
    """One thing a phrase means: ``kind`` (family, style, mood, scene, ensemble, tempo, dynamics, duration, drum,
    track, instrument, generic, music), ``key`` (an id or name) and a ``value`` (weight, BPM range, level ...)."""

    kind: str
    key: str
    value: Any = None


@dataclass(frozen=True)
class GenericInstrument:
    """A word like "guitar" whose instrument depends on the style."""

    word: str
    default: str
    by_style: Mapping[str, str]


class Vocabulary:
    """The loaded table: entries, the phrase lexicon, fillers and defaults."""

    def __init__(self, table: Mapping[str, Any], source: str, sha256: str) -> None:
        self.source, self.sha256 = source, sha256
        self.entries: dict[str, Entry] = {}
        self.phrases: dict[str, list[Meaning]] = {}
        self.family_words: dict[str, dict[str, float]] = {}
        self.generic: dict[str, GenericInstrument] = {}
        self._load(table)

    # ----- loading and checking -----
    def _fail(self, where: str, reason: str) -> DatasetError:
        return DatasetError(f"{self.source}: {where}: {reason}")

    def _add(self, phrase: str, meaning: Meaning, where: str) -> None:
        phrase = " ".join(str(phrase).lower().split())
        if not phrase:
            raise self._fail(where, "an empty phrase")
        meanings = self.phrases.setdefault(phrase, [])
        if meaning not in meanings:
            meanings.append(meaning)

    def _instrument(self, name: Any, where: str) -> str:
        try:
            program_of(str(name))
        except ParameterError:
            raise self._fail(where, f"unknown instrument {name!r} (a project instrument or a General MIDI "
                                    f"program name in snake_case)") from None
        return str(name)

    def _range(self, value: Any, where: str, low: float, high: float) -> tuple[float, float]:
        if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int | float) for v in value)
                or not low <= value[0] <= value[1] <= high):
            raise self._fail(where, f"expected [low, high] within {low:g}..{high:g}, got {value!r}")
        return float(value[0]), float(value[1])

    def _unit(self, value: Any, where: str) -> float:
        if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise self._fail(where, f"expected a number 0..1, got {value!r}")
        return float(value)

    def _entry(self, kind: str, entry_id: str, raw: Mapping[str, Any]) -> Entry:
        where = f"[{'not_music' if kind == 'topic' else kind + 's'}.{entry_id}]"
        known = {"words", "description", "tempo", "mode", "energy", "density", "meter", "styles", "instruments",
                 "instrument", "tracks", "parent", "family", "doubled"}
        if unknown := set(raw) - known:
            raise self._fail(where, f"unknown field(s) {', '.join(sorted(unknown))} "
                                    f"(known: {', '.join(sorted(known))})")
        if kind == "style" and entry_id not in STYLE_IDS:
            raise self._fail(where, f"{entry_id!r} is not a style family id ({', '.join(STYLE_IDS)})")
        words, description = raw.get("words", []), raw.get("description", "")
        if not words or not isinstance(words, list):
            raise self._fail(where, "needs a list of words")
        if not isinstance(description, str) or not description.strip():
            raise self._fail(where, "needs a description (a sentence for the embedding model)")
        mode = raw.get("mode")
        if mode is not None and mode not in MODES:
            raise self._fail(where, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        styles = tuple(raw.get("styles", ()))
        parent = raw.get("parent")
        if parent is not None and (kind != "style" or parent not in STYLE_IDS or parent == entry_id):
            raise self._fail(where, f"parent must be another style family id, got {parent!r}")
        family = raw.get("family")
        if family is not None and (not isinstance(family, str) or not family):
            raise self._fail(where, f"family must be a model family id, got {family!r}")
        if bad := [s for s in styles if s not in STYLE_IDS]:
            raise self._fail(where, f"unknown style(s) {', '.join(bad)}")
        instruments = dict(raw.get("instruments", {}))
        for track, name in instruments.items():
            if track not in TRACKS:
                raise self._fail(where, f"unknown track {track!r} (tracks: {', '.join(TRACKS)})")
            self._instrument(name, f"{where} instruments.{track}")
        tracks = raw.get("tracks")
        if tracks is not None and (not tracks or set(tracks) - set(TRACKS)):
            raise self._fail(where, f"tracks must be a non-empty subset of {', '.join(TRACKS)}, got {tracks!r}")
        doubled = raw.get("doubled", False)
        if not isinstance(doubled, bool) or (doubled and (kind != "style" or "tempo" not in raw)):
            raise self._fail(where, f"doubled must be true or false, on a style with a tempo; got {doubled!r}")
        meter = raw.get("meter")
        if meter is not None and (not isinstance(meter, str) or "/" not in meter):
            raise self._fail(where, f"meter must look like '3/4', got {meter!r}")
        return Entry(
            kind, entry_id, tuple(str(w) for w in words), description.strip(),
            self._range(raw["tempo"], f"{where} tempo", 20, 300) if "tempo" in raw else None, mode,
            self._unit(raw["energy"], f"{where} energy") if "energy" in raw else None,
            self._unit(raw["density"], f"{where} density") if "density" in raw else None, meter, styles, instruments,
            self._instrument(raw["instrument"], f"{where} instrument") if "instrument" in raw else None,
            tuple(tracks) if tracks is not None else None, parent, family, doubled)

    def _load(self, table: Mapping[str, Any]) -> None:
        defaults = table.get("defaults", {})
        tonic = defaults.get("tonic", {})
        self.default_tonic = {"major": str(tonic.get("major", "C")), "minor": str(tonic.get("minor", "A"))}
        self.loop_bars = int(defaults.get("loop_bars", 8))
        self.beats_per_bar = int(defaults.get("beats_per_bar", 4))
        self.default_tempo = float(defaults.get("tempo", 110))
        for family_id, raw in table.get("families", {}).items():
            weights = {}
            for phrase, weight in raw.get("words", {}).items():
                if not isinstance(weight, int | float) or not 0 < weight <= 2:
                    raise self._fail(f"[families.{family_id}] {phrase!r}", f"weight must be in (0, 2], got {weight!r}")
                weights[" ".join(phrase.lower().split())] = float(weight)
                self._add(phrase, Meaning("family", family_id, float(weight)), f"[families.{family_id}]")
            self.family_words[family_id] = weights
        for table_name, kind in _TABLES.items():
            for entry_id, raw in table.get(table_name, {}).items():
                entry = self._entry(kind, entry_id, raw)
                self.entries[entry.key] = entry
                if kind == "topic":  # described for the embedding model only: their words set nothing
                    continue
                for word in entry.words:
                    self._add(word, Meaning(kind, entry_id), f"[{table_name}.{entry_id}]")
                    if entry.family:  # a form names its family as surely as the family's own words
                        self._add(word, Meaning("family", entry.family, FORM_WEIGHT), f"[{table_name}.{entry_id}]")
                        self.family_words.setdefault(entry.family, {})[" ".join(word.lower().split())] = FORM_WEIGHT
        for phrase, value in table.get("tempo_words", {}).items():
            self._add(phrase, Meaning("tempo", phrase, self._range(value, f"[tempo_words] {phrase!r}", 20, 300)),
                      "[tempo_words]")
        for phrase, value in table.get("dynamics_words", {}).items():
            self._add(phrase, Meaning("dynamics", phrase, self._unit(value, f"[dynamics_words] {phrase!r}")),
                      "[dynamics_words]")
        for phrase, value in table.get("duration_words", {}).items():
            if not isinstance(value, int | float) or value <= 0:
                raise self._fail(f"[duration_words] {phrase!r}", f"expected seconds > 0, got {value!r}")
            self._add(phrase, Meaning("duration", phrase, float(value)), "[duration_words]")
        for phrase, value in table.get("drum_sounds", {}).items():
            if not isinstance(value, int) or not 27 <= value <= 87:
                raise self._fail(f"[drum_sounds] {phrase!r}", f"expected a GM drum key 27..87, got {value!r}")
            self._add(phrase, Meaning("drum", phrase, value), "[drum_sounds]")
        for track, words in table.get("track_words", {}).items():
            if track not in TRACKS:
                raise self._fail(f"[track_words] {track}", f"unknown track (tracks: {', '.join(TRACKS)})")
            for word in words:
                self._add(word, Meaning("track", track), "[track_words]")
        self.track_of_group = dict(table.get("track_of_gm_group", {}))
        for group, track in self.track_of_group.items():
            if group not in GM_GROUPS or track not in TRACKS:
                raise self._fail(f"[track_of_gm_group] {group}", f"expected a GM group ({', '.join(GM_GROUPS)}) "
                                                                  f"and a track ({', '.join(TRACKS)})")
        for name, words in table.get("instruments", {}).items():
            self._instrument(name, f"[instruments] {name}")
            for word in words:
                self._add(word, Meaning("instrument", name), "[instruments]")
        for word_id, raw in table.get("generic_instruments", {}).items():
            where = f"[generic_instruments.{word_id}]"
            generic = GenericInstrument(word_id, self._instrument(raw.get("default"), f"{where} default"),
                                        {s: self._instrument(n, f"{where} by_style.{s}")
                                         for s, n in raw.get("by_style", {}).items()})
            if bad := [s for s in generic.by_style if s not in STYLE_IDS]:
                raise self._fail(where, f"unknown style(s) {', '.join(bad)}")
            self.generic[word_id] = generic
            for word in raw.get("words", []):
                self._add(word, Meaning("generic", word_id), where)
        for word in table.get("music_words", {}).get("words", []):
            self._add(word, Meaning("music", word), "[music_words]")
        fillers = table.get("fillers", {})
        self.fillers_en = frozenset(w.lower() for w in fillers.get("en", []))
        self.fillers_zh = tuple(sorted(set(fillers.get("zh", [])), key=len, reverse=True))

    # ----- queries -----
    def entry(self, kind: str, entry_id: str) -> Entry | None:
        return self.entries.get(f"{kind}:{entry_id}")

    def described(self) -> list[Entry]:
        """Every entry the embedding model matches against (styles, forms, moods, scenes, ensembles, topics)."""
        return list(self.entries.values())


def _read(path: Path | None) -> tuple[bytes, str]:
    if path is None:
        resource = resources.files("tunesmith.prompting").joinpath("vocabulary.toml")
        return resource.read_bytes(), "tunesmith/prompting/vocabulary.toml"
    try:
        return Path(path).read_bytes(), str(path)
    except OSError as exc:
        raise DatasetError(f"cannot read the vocabulary {path}: {exc.strerror}") from exc


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The vocabulary at ``path`` (default: the packaged table), checked; the default one is loaded once."""
    return _load_cached(None if path is None else Path(path).resolve())


@cache
def _load_cached(path: Path | None) -> Vocabulary:
    data, source = _read(path)
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{source} is not valid TOML: {exc}") from exc
    return Vocabulary(table, source, hashlib.sha256(data).hexdigest())
