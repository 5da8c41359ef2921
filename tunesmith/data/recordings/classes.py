"""Drum instrument names to drum classes and General MIDI drum notes.

Seven classes: kick, snare, hat_closed, hat_open, tom, cymbal, percussion. The name is split into words
("HatClosed-Hard" -> hat closed hard, "tomhi2" -> tomhi 2) and the first matching rule wins:

1. hand percussion and other struck things (clap, stick, rim, cowbell, tambourine, shaker, conga, djembe,
   tabla ...) -> percussion; checked first so that "Djembe Bass" or "Sangban Bell" is not a kick or a cymbal;
2. hi-hats -> hat_open when the name says open (open, op, semi-open, swish, ohh), else hat_closed (a pedal
   hat is a closed hat, GM note 44);
3. crash, ride, splash, china, cymbal, a (ride) bell -> cymbal;
4. kick, bass drum, bd -> kick (a bare "bass" only where the caller says it means the bass drum);
5. snare, rimshot, redo(blante) -> snare (a side stick or rim click is percussion, rule 1);
6. tom, floor -> tom.

Names that match no rule (a numbered slot, "Drum 1", "FX", "Zap") have no class: the builder reports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DRUM_CLASSES: tuple[str, ...] = ("kick", "snare", "hat_closed", "hat_open", "tom", "cymbal", "percussion")


@dataclass(frozen=True)
class DrumClass:
    """The class of a drum sound and its General MIDI drum note (None where GM has no such key)."""

    drum_class: str
    gm_note: int | None


# percussion words -> GM note (None: no GM key for it)
_PERCUSSION: dict[str, int | None] = {
    "clap": 39, "claps": 39, "handclap": 39, "stick": 37, "sidestick": 37, "rim": 37, "click": None,
    "cowbell": 56, "tambourine": 54, "tamb": 54, "shaker": 70, "maraca": 70, "maracas": 70, "cabasa": 69,
    "clave": 75, "claves": 75, "clav": 75, "woodblock": 76, "wood": 76, "block": 76, "agogo": 67,
    "conga": 63, "congas": 63, "bongo": 60, "bongos": 60, "timbale": 65, "timbales": 65, "triangle": 81,
    "whistle": 71, "guiro": 73, "cuica": 78, "vibraslap": 58, "snap": None, "snaps": None, "cajon": None,
    "djembe": None, "sangban": None, "dununba": None, "kenkeni": None, "tabla": None, "waterglass": None,
}
_HAT = {"hh", "hihat", "hat", "hats", "ohh", "chh"}
_HAT_OPEN = {"open", "opened", "op", "semi", "semiopen", "swish", "ohh"}
_HAT_PEDAL = {"pedal", "foot", "pd"}
_CYMBAL: dict[str, int] = {"crash": 49, "ride": 51, "bell": 53, "splash": 55, "china": 52, "cymbal": 49, "cym": 49}
_KICK = {"kick", "kik", "bd", "bassdrum", "kickdrum"}
_SNARE = {"snare", "sn", "sd", "rimshot", "redo", "redoblante"}  # redo(blante): Spanish
_TOM_NOTES = (("floor", 41), ("low", 45), ("lo", 45), ("mid", 47), ("middle", 47), ("hi", 50), ("high", 50))


def words(name: str) -> list[str]:
    """Lower-case words of a sample or instrument name: camelCase, digits and punctuation split it."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def classify_drum(name: str, *, bass_is_kick: bool = False) -> DrumClass | None:
    """The drum class of an instrument or sample name, or None when the name does not say."""
    ws = words(name)
    joined = " ".join(ws)
    found = set(ws)
    for word in ws:
        if word in _PERCUSSION:
            return DrumClass("percussion", _PERCUSSION[word])
    if found & _HAT or "hi hat" in joined:
        if found & _HAT_OPEN:
            return DrumClass("hat_open", 46)
        return DrumClass("hat_closed", 44 if found & _HAT_PEDAL else 42)
    for word in ws:
        if word in _CYMBAL:
            return DrumClass("cymbal", 53 if "bell" in found else _CYMBAL[word])
    if found & _KICK or "bass drum" in joined or (bass_is_kick and "bass" in found):
        return DrumClass("kick", 36)
    if found & _SNARE:
        return DrumClass("snare", 40 if "rimshot" in found else 38)
    if any(w.startswith("tom") for w in ws) or "floor" in found:
        rest = " ".join(w.removeprefix("tom") for w in ws)
        note = next((n for key, n in _TOM_NOTES if key in rest.split()), 45)
        return DrumClass("tom", note)
    return None
