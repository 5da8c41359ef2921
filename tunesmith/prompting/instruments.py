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
from tunesmith.symbolic.instruments import DRUM_KITS, gm_program

_GM_NAMES = """
acoustic_grand_piano bright_acoustic_piano electric_grand_piano honky_tonk_piano electric_piano_1 electric_piano_2
harpsichord clavinet celesta glockenspiel music_box vibraphone marimba xylophone tubular_bells dulcimer drawbar_organ
percussive_organ rock_organ church_organ reed_organ accordion harmonica tango_accordion acoustic_guitar_nylon
acoustic_guitar_steel electric_guitar_jazz electric_guitar_clean electric_guitar_muted overdriven_guitar
distortion_guitar guitar_harmonics acoustic_bass electric_bass_finger electric_bass_pick fretless_bass slap_bass_1
slap_bass_2 synth_bass_1 synth_bass_2 violin viola cello contrabass tremolo_strings pizzicato_strings orchestral_harp
timpani string_ensemble_1 string_ensemble_2 synth_strings_1 synth_strings_2 choir_aahs voice_oohs synth_voice
orchestra_hit trumpet trombone tuba muted_trumpet french_horn brass_section synth_brass_1 synth_brass_2 soprano_sax
alto_sax tenor_sax baritone_sax oboe english_horn bassoon clarinet piccolo flute recorder pan_flute blown_bottle
shakuhachi whistle ocarina lead_1_square lead_2_sawtooth lead_3_calliope lead_4_chiff lead_5_charang lead_6_voice
lead_7_fifths lead_8_bass_lead pad_1_new_age pad_2_warm pad_3_polysynth pad_4_choir pad_5_bowed pad_6_metallic
pad_7_halo pad_8_sweep fx_1_rain fx_2_soundtrack fx_3_crystal fx_4_atmosphere fx_5_brightness fx_6_goblins
fx_7_echoes fx_8_sci_fi sitar banjo shamisen koto kalimba bagpipe fiddle shanai tinkle_bell agogo steel_drums
woodblock taiko_drum melodic_tom synth_drum reverse_cymbal guitar_fret_noise breath_noise seashore bird_tweet
telephone_ring helicopter applause gunshot
"""
GM_PROGRAMS: tuple[str, ...] = tuple(_GM_NAMES.split())
assert len(GM_PROGRAMS) == 128
GM_GROUPS: tuple[str, ...] = ("piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble",
                              "brass", "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic",
                              "percussive", "sound_effects")
_GM_INDEX = {name: i for i, name in enumerate(GM_PROGRAMS)}
# Short GM names people and the vocabulary use, beside the full ones above.
_SHORT = {"synth_bass": 38, "slap_bass": 36, "brass": 61, "strings": 48, "music_box": 10, "saw_lead": 81,
          "square_lead": 80, "warm_pad": 89, "choir": 52, "timpani": 47, "celesta": 8, "steel_drums": 114}
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
