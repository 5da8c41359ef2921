"""Read a free-text prompt ("a slow chorale in D minor for organ, 12 bars") into generation parameters.

Rule-based and predictable: each rule finds phrases it knows (a model word, a key, a tempo word or ``N bpm``,
``N bars``, a meter, an instrument) and consumes them; the words no rule and no filler word accounts for are
reported as not understood. A prompt of which nothing is understood, or one that contradicts itself ("a
chorale ... a jig", "in D minor ... in G"), is a `ParameterError` on the field ``prompt`` that says what was
understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunesmith.errors import ParameterError
from tunesmith.families.params import METERS
from tunesmith.symbolic.instruments import EXTRA_PROGRAMS, INSTRUMENTS, get_instrument, gm_program
from tunesmith.symbolic.keys import key_name, parse_key

EXAMPLE = "a slow chorale in D minor for organ, 12 bars"

MODEL_WORDS = {"chorale": "chorale", "chorales": "chorale", "choral": "chorale", "hymn": "chorale",
               "hymns": "chorale", "bach": "chorale", "folk": "folk", "jig": "folk", "jigs": "folk", "reel": "folk",
               "reels": "folk", "tune": "folk", "tunes": "folk", "melody": "folk", "melodies": "folk",
               "folksong": "folk", "ballad": "folk", "hornpipe": "folk"}
METER_WORDS = {"slip jig": "9/8", "jig": "6/8", "jigs": "6/8", "waltz": "3/4", "reel": "4/4", "reels": "4/4",
               "hornpipe": "4/4"}
TEMPO_WORDS = {"very slow": 50.0, "very slowly": 50.0, "largo": 50.0, "slow": 60.0, "slowly": 60.0,
               "adagio": 66.0, "andante": 84.0, "moderate": 96.0, "moderately": 96.0, "medium": 96.0,
               "moderato": 100.0, "allegretto": 108.0, "lively": 120.0, "allegro": 120.0, "brisk": 126.0,
               "quick": 132.0, "fast": 132.0, "very fast": 160.0, "presto": 168.0}
INSTRUMENT_WORDS = {"organ": "organ", "pipe organ": "church_organ", "guitar": "guitar", "bass": "bass",
                    "sax": "sax", "saxophone": "alto_sax", "horn": "horn", "strings": "strings", "voice": "choir",
                    "voices": "choir", "singers": "choir", "choir": "choir", "fiddle": "fiddle",
                    "accordion": "accordion", "harmonica": "harmonica", "keyboard": "piano"}


def _words(text: str) -> list[str]:
    return text.split()


FILLER = frozenset(_words(
    "a an the in of for with and on at by to from please some piece pieces music musical me us make write compose "
    "generate create play played playing style key tempo time about around like that is it be my new little "
    "song songs something i want would could you can give short long mode major minor bar bars measure measures "
    "using as per written bpm"))
_UNITS = {w: i for i, w in enumerate(_words("zero one two three four five six seven eight nine ten eleven twelve "
                                             "thirteen fourteen fifteen sixteen seventeen eighteen nineteen"))}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
_NUMBER = (r"\d{1,4}|(?:" + "|".join(_TENS) + r")(?:[\s-](?:" + "|".join(list(_UNITS)[1:10]) + r"))?|"
           + "|".join(sorted(_UNITS, key=len, reverse=True)))
_ACC = r"(?:#|♯|♭|b|\s?-?\s?sharp|\s?-?\s?flat)?"
_MODE = r"(?:\s*(?P<mode>major|minor|maj|min|m))?(?![a-z#♯♭])"


@dataclass
class PromptReading:
    """What a prompt asks for: parameters, how each was read, and the words not understood."""

    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "notes": list(self.notes), "not_understood": list(self.not_understood)}


def _number(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    parts = re.split(r"[\s-]+", text)
    return _TENS.get(parts[0], 0) + (_UNITS.get(parts[-1], 0) if len(parts) > 1 else 0) or _UNITS.get(parts[0], 0)


def _instrument_phrases() -> dict[str, str]:
    """Phrase -> instrument name, for every pitched instrument of the table, plural forms and common words."""
    names = {name.replace("_", " "): name for name in [i.name for i in INSTRUMENTS] + list(EXTRA_PROGRAMS)}
    phrases: dict[str, str] = {}
    for phrase, name in (names | INSTRUMENT_WORDS).items():
        try:
            gm_program(name)
        except ParameterError:
            continue
        try:
            canonical = get_instrument(name).name
        except ParameterError:  # a render-only program ("strings", "fiddle")
            canonical = name
        phrases.setdefault(phrase, canonical)
        if not phrase.endswith("s"):
            phrases.setdefault(phrase + "s", canonical)
    return phrases


INSTRUMENT_PHRASES = _instrument_phrases()


class _Reader:
    def __init__(self, text: str) -> None:
        self.original = text
        self.text = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)  # same length as text
        self.used = [False] * len(text)
        self.reading = PromptReading()
        self.found: dict[str, list[tuple[Any, str]]] = {}

    def take(self, pattern: str, handle: Callable[[re.Match[str]], tuple[str, Any] | None], *,
             case_sensitive: bool = False) -> None:
        source = self.original if case_sensitive else self.text
        for match in re.finditer(pattern, source):
            start, end = match.span()
            if any(self.used[start:end]):
                continue
            outcome = handle(match)
            if outcome is None:
                continue
            name, value = outcome
            self.found.setdefault(name, []).append((value, self.original[start:end].strip(" ,.")))
            self.used[start:end] = [True] * (end - start)

    def leftover_words(self) -> list[str]:
        chars = [c if not used else " " for c, used in zip(self.text, self.used, strict=True)]
        words = re.findall(r"[a-z0-9#♯♭'/-]+", "".join(chars))
        return [w for w in words if w.strip("-'") and w.strip("-'") not in FILLER]


def _key_from(match: re.Match[str], *, bare_letter_ok: bool) -> tuple[str, Any] | None:
    letter, accidental, mode = match.group("letter"), (match.group("acc") or "").strip(), match.group("mode")
    if not accidental and not mode and not bare_letter_ok:
        return None
    sign = "#" if accidental.endswith(("#", "♯", "sharp")) else "b" if accidental else ""
    mode_word = {"m": "minor", "min": "minor", "maj": "major"}.get(mode or "", mode or "")
    spelled = f"{letter.upper()}{sign} {mode_word}".strip()
    try:
        return "key", key_name(*parse_key(spelled))
    except ParameterError:
        return None


def read_prompt(text: str) -> PromptReading:
    """Parse ``text``; raises ParameterError (field ``prompt``) if nothing is understood or it contradicts itself."""
    reader = _Reader(text)
    reader.take(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", lambda m: ("tempo", float(m.group(1))))
    reader.take(rf"\b({_NUMBER})[\s-]*(?:bars?|measures?)\b", lambda m: ("bars", _number(m.group(1))))
    reader.take(r"\b(\d{1,2})\s*/\s*(\d{1,2})\b(?:\s*time)?", lambda m: ("meter", f"{m.group(1)}/{m.group(2)}"))
    # keys: "in D minor", "in the key of F#", "in Bb", then "D minor" anywhere, then "Dm" / "F#m" as written
    reader.take(rf"\b(?:in(?: the key of)?|key of)\s+(?P<letter>[a-g])(?P<acc>{_ACC}){_MODE}",
                lambda m: _key_from(m, bare_letter_ok=reader.original[m.start("letter")] != "a"))
    reader.take(rf"\b(?P<letter>[a-g])(?P<acc>{_ACC})\s*(?P<mode>major|minor)\b",
                lambda m: _key_from(m, bare_letter_ok=False))
    reader.take(r"\b(?P<letter>[A-G])(?P<acc>#|b)?(?P<mode>m)\b(?![-'])", lambda m: _key_from(m, bare_letter_ok=False),
                case_sensitive=True)
    reader.take(r"\b(?P<letter>[a-g])(?P<acc>#)(?P<mode>m)?(?=\s|$|[,.;])", lambda m: _key_from(m, bare_letter_ok=True))
    for phrase, meter in sorted(METER_WORDS.items(), key=lambda kv: -len(kv[0])):  # before the model words
        reader.take(rf"\b{re.escape(phrase)}\b", lambda m, meter=meter, phrase=phrase: _meter_and_model(reader, meter,
                                                                                                           phrase))
    for phrase, tempo in sorted(TEMPO_WORDS.items(), key=lambda kv: -len(kv[0])):
        reader.take(rf"\b{re.escape(phrase)}\b", lambda m, tempo=tempo: ("tempo_word", tempo))
    for phrase, model in MODEL_WORDS.items():
        reader.take(rf"\b{re.escape(phrase)}\b", lambda m, model=model: ("model", model))
    for phrase, instrument in sorted(INSTRUMENT_PHRASES.items(), key=lambda kv: -len(kv[0])):
        reader.take(rf"\b{re.escape(phrase)}\b", lambda m, instrument=instrument: ("instrument", instrument))
    return _settle(reader)


def _meter_and_model(reader: _Reader, meter: str, phrase: str) -> tuple[str, Any]:
    model = MODEL_WORDS.get(phrase.split()[-1])
    if model:
        reader.found.setdefault("model", []).append((model, phrase))
    return "meter", meter


def _settle(reader: _Reader) -> PromptReading:
    reading, found = reader.reading, reader.found
    tempo_words = found.pop("tempo_word", [])
    if "tempo" in found and tempo_words:
        reading.notes.append(f"tempo words ({', '.join(repr(p) for _, p in tempo_words)}) give way to "
                             f"{found['tempo'][0][1]!r}")
    elif tempo_words:
        found["tempo"] = tempo_words
    understood = [f"{name} {values[0][0]} (from {values[0][1]!r})" for name, values in found.items()]
    for name, values in found.items():
        distinct = list(dict.fromkeys(v for v, _ in values))
        if len(distinct) > 1:
            raise ParameterError(
                f"the prompt asks for more than one {name}: "
                + ", ".join(f"{v} (from {p!r})" for v, p in values)
                + f"; understood: {'; '.join(understood)}", field="prompt")
        reading.params[name] = distinct[0]
        label = f"{distinct[0]:g} BPM" if name == "tempo" else str(distinct[0])
        reading.notes.append(f"{name}: {label} (from {', '.join(repr(p) for _, p in values)})")
    reading.not_understood = reader.leftover_words()
    meter = reading.params.get("meter")
    if meter is not None and meter not in METERS:
        raise ParameterError(f"the prompt asks for meter {meter}, which is not supported (use one of "
                             f"{', '.join(METERS)}); understood: {'; '.join(understood)}", field="prompt")
    if not reading.params:
        missing = ", ".join(repr(w) for w in reading.not_understood) or "nothing"
        raise ParameterError(
            f"could not understand the prompt: no model, key, tempo, meter, bars or instrument found "
            f"(understood: nothing; not understood: {missing}); try e.g. {EXAMPLE!r}", field="prompt")
    if reading.not_understood:
        reading.notes.append("not understood: " + ", ".join(repr(w) for w in reading.not_understood))
    return reading
