"""Exact rules for what must be exact: tempo, keys and modes, meters, bars, loops, lengths, pitches, velocities.

Each rule is a regular expression over the lower-cased, NFKC-normalised prompt (English and Chinese forms) and a
reader that turns a match into :class:`~tunesmith.prompting.text.Fact` s. Rules run in order and each takes the
characters it reads, so "an 8 bar loop" is a loop (not bars) and "C5" is a pitch (not a key).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.errors import ParameterError
from tunesmith.prompting.numbers import EN_NUMBER, ZH_NUMBER, parse_en, parse_zh
from tunesmith.prompting.text import EXPLICIT, NAMED, Fact, PromptText
from tunesmith.symbolic.keys import key_name, mode_family, parse_key

_N = rf"(?P<n>{EN_NUMBER})"
_Z = rf"(?P<z>{ZH_NUMBER})"
_ACC = r"(?P<acc>#|♯|♭|b(?![a-z])|-sharp|-flat|\s?sharp|\s?flat)?"
_LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ERA = re.compile(r"(?:19|20)?[1-9]0")  # "70s", "1940s" are decades, not seconds


def _number(match: re.Match[str]) -> float | None:
    if match.groupdict().get("n"):
        return parse_en(match.group("n"))
    if match.groupdict().get("z"):
        return parse_zh(match.group("z"))
    return None


def _shift(accidental: str | None) -> int:
    accidental = (accidental or "").strip(" -")
    if accidental in ("#", "♯", "sharp", "升"):
        return 1
    if accidental in ("b", "♭", "flat", "降"):
        return -1
    return 0


def _key(letter: str, accidental: str | None, mode: str | None) -> str | None:
    """Canonical key name ("D minor"), just the tonic ("D") when no mode was written, or None."""
    sign = {1: "#", -1: "b", 0: ""}[_shift(accidental)]
    mode = {"m": "minor", "min": "minor", "maj": "major", "大调": "major", "小调": "minor", "调": None}.get(mode or "",
                                                                                                     mode)
    try:
        name = key_name(*parse_key(f"{letter.upper()}{sign} {mode or 'major'}"))
    except ParameterError:
        return None
    return name if mode else name.split()[0]


@dataclass(frozen=True)
class Rule:
    """A named pattern and the reader of its matches (returns facts, or None to leave the words alone)."""

    name: str
    pattern: re.Pattern[str]
    read: Callable[[re.Match[str], PromptText], list[Fact] | None]
    take: str | None = ""  # "" takes the whole match, a group name takes that group, None takes nothing


def _fact(name: str, value: object, rule: str, text: PromptText, match: re.Match[str], *, level: int = EXPLICIT,
          confidence: float = 1.0) -> Fact:
    words = text.text[match.start():match.end()].strip(" ,.;:!?，。；：！？")
    return Fact(name, value, (words,), f"rule:{rule}", level, confidence, match.span())


# ----- readers -----
def _tempo(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    bpm = _number(match)
    return [_fact("tempo", bpm, "tempo", text, match)] if bpm is not None and 20 <= bpm <= 400 else None


def _bare_tempo(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    bpm = float(match.group("n"))
    return [_fact("tempo", bpm, "number as tempo", text, match, level=NAMED, confidence=0.6)] if 40 <= bpm <= 300 \
        else None


def _count(name: str) -> Callable[[re.Match[str], PromptText], list[Fact] | None]:
    def read(match: re.Match[str], text: PromptText) -> list[Fact] | None:
        value = _number(match)
        return [_fact(name, int(value), name, text, match)] if value and value == int(value) and value > 0 else None
    return read


def _seconds(scale: float) -> Callable[[re.Match[str], PromptText], list[Fact] | None]:
    def read(match: re.Match[str], text: PromptText) -> list[Fact] | None:
        unit = match.groupdict().get("unit") or ""
        if unit == "s" and (not match.group("n").isdigit() or _ERA.fullmatch(match.group("n"))):
            return None
        value = _number(match)
        if value is None:
            value = 1.0  # "a minute", "一分钟"
        if match.groupdict().get("half"):
            value += 0.5
        return [_fact("seconds", round(value * scale, 3), "length", text, match)] if value > 0 else None
    return read


def _fixed_seconds(seconds: float) -> Callable[[re.Match[str], PromptText], list[Fact]]:
    return lambda match, text: [_fact("seconds", seconds, "length", text, match)]


def _meter(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    top, bottom = int(match.group("top")), int(match.group("bottom"))
    return [_fact("meter", f"{top}/{bottom}", "meter", text, match)] if bottom in (2, 4, 8, 16) and top > 0 else None


def _fixed(name: str, value: object, rule: str) -> Callable[[re.Match[str], PromptText], list[Fact]]:
    return lambda match, text: [_fact(name, value, rule, text, match)]


def _pitch(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    letter, octave = match.group("letter").lower(), int(match.group("octave"))
    accidental = match.groupdict().get("acc") or match.groupdict().get("zacc")
    midi = 12 * (octave + 1) + _LETTER_PC[letter] + _shift(accidental)
    return [_fact("pitch", midi, "pitch", text, match)] if 0 <= midi <= 127 else None


def _midi_number(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    value = int(match.group("n"))
    return [_fact("pitch", value, "pitch", text, match)] if 0 <= value <= 127 else None


def _velocity(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    value = int(float(match.group("n")))
    return [_fact("velocity", value, "velocity", text, match)] if 1 <= value <= 127 else None


def _key_in(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    letter, accidental, mode = match.group("letter"), match.group("acc"), match.group("mode")
    written = text.text[match.start("letter")]
    if not accidental and not mode and written == "a":
        return None  # "in a ..." is an article
    if mode in ("dorian", "phrygian", "aeolian", "lydian", "mixolydian", "ionian", "locrian"):
        mode = mode_family(mode)
    name = _key(letter, accidental, mode)
    return [_fact("key", name, "key", text, match)] if name else None


def _key_zh(match: re.Match[str], text: PromptText) -> list[Fact] | None:
    name = _key(match.group("letter"), match.group("zacc"), match.group("zmode"))
    return [_fact("key", name, "key", text, match)] if name else None


def _mode(match: re.Match[str], text: PromptText) -> list[Fact]:
    word = next(v for k, v in match.groupdict().items() if k.startswith(("mode", "zmode")) and v)
    return [_fact("mode", "minor" if word in ("minor", "小调") else "major", "mode", text, match)]


def _tuning(match: re.Match[str], text: PromptText) -> list[Fact]:
    return [_fact("tuning", match.group(0).strip(), "tuning", text, match, confidence=1.0)]


def _loop_word(match: re.Match[str], text: PromptText) -> list[Fact]:
    return [_fact("loop", None, "loop", text, match, level=NAMED)]


_EN_SECONDS = r"(?P<unit>seconds?|secs?|s)(?![a-z])"
_EN_MINUTES = r"(?:minutes?|mins?)(?![a-z])"

RULES: tuple[Rule, ...] = (
    # pitches first: "升F4", "C5", "f#4", "A440", "middle C", "midi note 64", "中央C"
    Rule("pitch", re.compile(r"(?P<zacc>[升降])\s*(?P<letter>[a-g])(?P<octave>[0-8])(?![0-9])"), _pitch),
    Rule("pitch", re.compile(r"(?<![a-z0-9])(?P<letter>[a-g])(?P<acc>#|♯|♭|b)?(?P<octave>[0-8])(?![0-9a-z])"), _pitch),
    Rule("pitch", re.compile(r"(?<![a-z0-9])(?:midi\s*note|note\s*number|midi\s*pitch|pitch|midi音符|音高)\s*"
                             r"(?P<n>\d{1,3})(?!\d)"), _midi_number),
    Rule("pitch", re.compile(r"(?<![a-z0-9])a\s?440(?:\s?hz)?(?![0-9])"), _fixed("pitch", 69, "pitch")),
    Rule("pitch", re.compile(r"(?<![a-z])middle\s+c(?![a-z0-9])|中央\s*c(?![0-9])"), _fixed("pitch", 60, "pitch")),
    Rule("pitch", re.compile(r"(?<![a-z])low\s+c(?![a-z0-9])|低音\s*c(?![0-9])"), _fixed("pitch", 36, "pitch")),
    Rule("pitch", re.compile(r"(?<![a-z])high\s+c(?![a-z0-9])|高音\s*c(?![0-9])"), _fixed("pitch", 72, "pitch")),
    # tempo: "92 bpm", "at 174", "tempo 100", "每分钟一百拍", "速度120"
    Rule("tempo", re.compile(rf"(?<![a-z0-9.])(?P<n>\d+(?:\.\d+)?|{EN_NUMBER})\s*"
                             r"(?:bpm|b\.p\.m\.?|beats?\s+(?:per|a)\s+minute)(?![a-z])"), _tempo),
    Rule("tempo", re.compile(rf"(?<![a-z])(?:at|tempo(?:\s+of)?|@)\s*{_N}(?!\s*(?:bars?|measures?|seconds?|secs?|"
                             rf"minutes?|mins?|%|am|pm|years?|o'clock|db)(?![a-z]))(?![\d.a-z])"), _tempo),
    Rule("tempo", re.compile(rf"每分钟\s*{_Z}\s*拍"), _tempo),
    Rule("tempo", re.compile(rf"{_Z}\s*拍每分钟"), _tempo),
    Rule("tempo", re.compile(rf"速度\s*(?:为|是)?\s*{_Z}"), _tempo),
    # loops before bars: "an 8 bar loop", "a 4-bar hip hop loop", "8小节的鼓和贝斯循环"
    Rule("loop", re.compile(rf"(?<![a-z0-9])(?P<head>{_N}[\s-]*(?:bars?|measures?))[\s-]+(?:[a-z&'-]+[\s-]+){{0,3}}?"
                            r"loops?(?![a-z])"), _count("loop"), take="head"),
    Rule("loop", re.compile(rf"(?<![a-z])loop\s+of\s+{_N}\s*(?:bars?|measures?)(?![a-z])"), _count("loop")),
    Rule("loop", re.compile(rf"(?P<head>{_Z}\s*小节)[^，。,.;；]{{0,8}}?循环"), _count("loop"), take="head"),
    Rule("bars", re.compile(rf"(?<![a-z0-9.]){_N}[\s-]*(?:bars?|measures?)(?![a-z])"), _count("bars")),
    Rule("bars", re.compile(rf"{_Z}\s*(?:个)?小节"), _count("bars")),
    # lengths: "90 seconds", "2 minutes", "a minute and a half", "三分钟", "90秒", "一分半"
    Rule("length", re.compile(rf"(?<![a-z0-9.]){_N}(?P<half>\s+and\s+a\s+half)?[\s-]*{_EN_MINUTES}"), _seconds(60)),
    Rule("length", re.compile(r"(?<![a-z])(?:a|one)\s+minute\s+and\s+a\s+half(?![a-z])"), _fixed_seconds(90)),
    Rule("length", re.compile(r"(?<![a-z])half\s+a\s+minute(?![a-z])"), _fixed_seconds(30)),
    Rule("length", re.compile(r"(?<![a-z])half\s+a\s+second(?![a-z])|半秒钟?"), _fixed_seconds(0.5)),
    Rule("length", re.compile(r"(?<![a-z])(?:a|one)\s+minute(?![a-z])"), _fixed_seconds(60)),
    Rule("length", re.compile(rf"(?<![a-z0-9.]){_N}[\s-]*{_EN_SECONDS}"), _seconds(1)),
    Rule("length", re.compile(rf"{_Z}\s*分(?P<half>半)钟?"), _seconds(60)),
    Rule("length", re.compile(rf"{_Z}\s*分钟"), _seconds(60)),
    Rule("length", re.compile(r"半分钟"), _fixed_seconds(30)),
    Rule("length", re.compile(rf"{_Z}\s*秒钟?"), _seconds(1)),
    # meters: "3/4", "6/8 time", "waltz time", "三拍子"
    Rule("meter", re.compile(r"(?<![0-9])(?P<top>\d{1,2})\s*/\s*(?P<bottom>\d{1,2})(?![0-9])"
                             r"(?:\s*(?:time|meter|拍子?))?"), _meter),
    Rule("meter", re.compile(r"(?<![a-z])(?:three[\s-]four|waltz)\s+time(?![a-z])|三拍子"),
         _fixed("meter", "3/4", "meter")),
    Rule("meter", re.compile(r"(?<![a-z])(?:common|four[\s-]four)\s+time(?![a-z])|四拍子"),
         _fixed("meter", "4/4", "meter")),
    Rule("meter", re.compile(r"(?<![a-z])(?:cut\s+time|alla\s+breve)(?![a-z])"), _fixed("meter", "2/2", "meter")),
    Rule("meter", re.compile(r"(?<![a-z])six[\s-]eight(?:\s+time)?(?![a-z])"), _fixed("meter", "6/8", "meter")),
    Rule("velocity", re.compile(r"(?<![a-z])(?:velocity|vel|力度)\s*(?:of\s*)?(?P<n>\d{1,3})(?!\d)"), _velocity),
    # a guitar tuning is not a key: "drop D", "降D调弦"
    Rule("tuning", re.compile(r"(?<![a-z])drop[\s-]?[a-g](?![a-z])|降\s*[a-g]\s*调弦"), _tuning),
    # modes without a tonic: "in a minor key", "minor-key", "小调" alone
    Rule("mode", re.compile(r"(?<![a-z])(?:in\s+)?an?\s+(?P<mode>major|minor)[\s-]key(?![a-z])|(?<![a-z])"
                            r"(?P<mode2>major|minor)[\s-]key(?![a-z])"), _mode),
    # keys: "in D minor", "in the key of F#", "in Bb", "E flat major", "Dm", "C大调", "降B大调", "升F小调", "D调"
    Rule("key", re.compile(rf"(?<![a-z])(?:in(?:\s+the\s+key\s+of)?|key\s+of|key)\s+(?P<letter>[a-g]){_ACC}"
                           r"(?:\s*(?P<mode>major|minor|maj|min|m|dorian|phrygian|aeolian|lydian|mixolydian|ionian|"
                           r"locrian))?(?![a-z0-9#♯♭'-])"), _key_in),
    Rule("key", re.compile(rf"(?<![a-z0-9])(?P<letter>[a-g]){_ACC}\s*(?P<mode>major|minor|dorian|aeolian|mixolydian)"
                           r"(?![a-z])"), _key_in),
    Rule("key", re.compile(r"(?<![a-z0-9])(?P<letter>[a-g])(?P<acc>#|b)?(?P<mode>m|min|maj)(?![a-z0-9'-])"),
         lambda m, t: _key_in(m, t) if t.text[m.start():m.end()][0].isupper() or m.group("acc") else None),
    Rule("key", re.compile(r"(?P<zacc>[升降])?\s*(?P<letter>[a-g])\s*(?P<zmode>大调|小调|调)(?!弦)"), _key_zh),
    Rule("mode", re.compile(r"(?<![a-z])(?P<mode>major|minor)(?![a-z])|(?P<zmode>大调|小调)"), _mode),
    # a bare number in a music prompt is a tempo ("dnb at 174" is read above; "快乐硬核，170")
    Rule("tempo", re.compile(r"(?<![0-9a-z.#♯♭/])(?P<n>\d{2,3})(?![0-9a-z.%/]|\s*(?:年|岁|%|个|次|首|人|小节|秒|分))"),
         _bare_tempo),
    Rule("loop", re.compile(r"(?<![a-z])loops?(?![a-z])|循环"), _loop_word, take=None),
)


def apply_rules(text: PromptText) -> list[Fact]:
    """Run every rule over ``text`` in order; each match that reads as a fact takes its characters."""
    facts: list[Fact] = []
    for rule in RULES:
        for match in text.free_matches(rule.pattern):
            if not text.is_free(*match.span()):
                continue
            found = rule.read(match, text)
            if found:
                if rule.take:  # only part of the match: the facts name those words
                    start, end = match.span(rule.take)
                    words = (text.take(start, end),)
                    found = [Fact(f.name, f.value, words, f.source, f.level, f.confidence, (start, end)) for f in found]
                elif rule.take is not None:
                    text.take(*match.span())
                facts.extend(found)
    return facts
