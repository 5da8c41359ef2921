"""Instrument names for prompts: General MIDI programs by name, and fitting a named instrument to what a family takes.

A prompt names an instrument with a word ("rhodes", "钢琴"); the vocabulary turns it into a canonical name, either
one of the project's instruments (:mod:`tunesmith.symbolic.instruments`: ``piano``, ``church_organ``, drum kits
``drums_808`` ...) or a General MIDI program in snake_case (``slap_bass_1``, ``steel_drums``). A family takes a set
of names (its parameter's choices); :func:`fit_instrument` finds the one that sounds the same (same GM program),
else the closest of the same GM group ("tin whistle" -> ``pan_flute`` for a family without a whistle).
"""

from __future__ import annotations

from collections.abc import Iterable

from tunesmith.errors import ParameterError
from tunesmith.symbolic.instruments import DRUM_KITS, GM_PROGRAM_NAMES, GM_SHORT_NAMES, gm_program

GM_PROGRAMS = GM_PROGRAM_NAMES
GM_GROUPS: tuple[str, ...] = ("piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble",
                              "brass", "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic",
                              "percussive", "sound_effects")
_GM_INDEX = {name: i for i, name in enumerate(GM_PROGRAMS)}
_SHORT = GM_SHORT_NAMES
DRUM_KIT_NAMES: frozenset[str] = frozenset(k.name for k in DRUM_KITS) | {"drums"}


def is_drum_kit(name: str) -> bool:
    return name in DRUM_KIT_NAMES


def program_of(name: str) -> int:
    """The General MIDI program (0..127) of an instrument name; -1 for a drum kit. ParameterError if unknown."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if is_drum_kit(key):
        return -1
    if key in _GM_INDEX:
        return _GM_INDEX[key]
    if key in _SHORT:
        return _SHORT[key]
    try:
        return gm_program(key)
    except ParameterError:
        raise ParameterError(f"unknown instrument {name!r}: not a project instrument nor a General MIDI program",
                             field="instrument") from None


def gm_group(name: str) -> str:
    """The General MIDI group ("piano", "bass", "brass" ...) of an instrument, "drums" for a kit."""
    program = program_of(name)
    return "drums" if program < 0 else GM_GROUPS[program // 8]


def fit_instrument(name: str, allowed: Iterable[str]) -> str | None:
    """The member of ``allowed`` that plays ``name``: itself, one with the same GM program, else the nearest
    program of the same GM group; None if the family has nothing like it (or ``allowed`` is empty)."""
    allowed = list(allowed)
    if not allowed or name in allowed:
        return name if allowed else None
    program = program_of(name)
    programs: dict[str, int] = {}
    for choice in allowed:
        try:
            programs[choice] = program_of(choice)
        except ParameterError:
            continue
    if program < 0:  # a drum kit: the same kit, else any kit
        kits = [c for c, p in programs.items() if p < 0]
        return next((k for k in kits if k == "drums_standard"), kits[0] if kits else None)
    same = [c for c, p in programs.items() if p == program]
    if same:
        return min(same, key=len)
    group = [c for c, p in programs.items() if p >= 0 and p // 8 == program // 8]
    return min(group, key=lambda c: (abs(programs[c] - program), len(c))) if group else None
