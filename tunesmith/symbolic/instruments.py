"""Instruments by name: General MIDI programs, families, playable ranges, and the drum kit map.

One table serves the note corpus (what the GAN and analyzer learn), rendering (``--instrument cello``)
and the model cards. Ranges are sounding MIDI pitches a player (or the soundfont) covers well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import ParameterError


@dataclass(frozen=True, slots=True)
class Instrument:
    """A named instrument of the note corpus; for drum kits ``program`` is the kit (bank 128) preset."""

    name: str
    family: str
    program: int
    low: int
    high: int
    is_drum: bool = False
    keys: tuple[int, ...] = ()  # a drum kit's keys, when not the corpus kits' (a recorded kit: GM percussion)

    @property
    def pitches(self) -> tuple[int, ...]:
        """The MIDI pitches (for drum kits: the GM percussion keys) this instrument plays."""
        if self.is_drum:
            return self.keys or tuple(sorted(DRUM_KEYS))
        return tuple(range(self.low, self.high + 1))


def _i(name: str, family: str, program: int, low: int, high: int) -> Instrument:
    return Instrument(name, family, program, low, high)


INSTRUMENTS: tuple[Instrument, ...] = (
    _i("piano", "keyboard", 0, 21, 108),
    _i("electric_piano", "keyboard", 4, 28, 103),
    _i("harpsichord", "keyboard", 6, 29, 89),
    _i("drawbar_organ", "organ", 16, 36, 96),
    _i("church_organ", "organ", 19, 36, 96),
    _i("nylon_guitar", "guitar", 24, 40, 83),
    _i("steel_guitar", "guitar", 25, 40, 84),
    _i("electric_guitar", "guitar", 27, 40, 86),
    _i("acoustic_bass", "bass", 32, 28, 67),
    _i("electric_bass", "bass", 33, 28, 67),
    _i("synth_bass", "bass", 38, 24, 67),
    _i("violin", "string", 40, 55, 100),
    _i("viola", "string", 41, 48, 88),
    _i("cello", "string", 42, 36, 76),
    _i("contrabass", "string", 43, 28, 67),
    _i("trumpet", "brass", 56, 54, 86),
    _i("trombone", "brass", 57, 40, 77),
    _i("tuba", "brass", 58, 26, 58),
    _i("french_horn", "brass", 60, 34, 77),
    _i("alto_sax", "reed", 65, 49, 81),
    _i("oboe", "reed", 68, 58, 91),
    _i("bassoon", "reed", 70, 34, 75),
    _i("clarinet", "reed", 71, 50, 94),
    _i("piccolo", "flute", 72, 74, 108),
    _i("flute", "flute", 73, 60, 96),
    _i("recorder", "flute", 74, 60, 96),
    _i("pan_flute", "flute", 75, 60, 96),
    _i("glockenspiel", "mallet", 9, 79, 108),
    _i("vibraphone", "mallet", 11, 53, 89),
    _i("marimba", "mallet", 12, 45, 96),
    _i("xylophone", "mallet", 13, 65, 108),
    _i("square_lead", "synth_lead", 80, 36, 96),
    _i("saw_lead", "synth_lead", 81, 36, 96),
    _i("warm_pad", "synth_pad", 89, 36, 96),
    _i("choir", "vocal", 52, 40, 84),
)

# General MIDI percussion keys (channel 10) with the drum type each one is.
DRUM_KEYS: dict[int, str] = {
    35: "kick", 36: "kick", 37: "rimshot", 38: "snare", 39: "clap", 40: "snare",
    41: "tom_low", 42: "hihat_closed", 43: "tom_low", 44: "hihat_pedal", 45: "tom_mid",
    46: "hihat_open", 47: "tom_mid", 48: "tom_high", 49: "crash", 50: "tom_high",
    51: "ride", 52: "crash", 53: "ride", 55: "crash", 57: "crash", 59: "ride",
}
DRUM_TYPES: tuple[str, ...] = tuple(sorted(set(DRUM_KEYS.values())))
# Drum kits of the General MIDI soundfont (bank 128); ``program`` is the kit's preset number.
DRUM_KITS: tuple[Instrument, ...] = tuple(
    Instrument(name, "drums", kit, min(DRUM_KEYS), max(DRUM_KEYS), is_drum=True)
    for name, kit in (("drums_standard", 0), ("drums_room", 8), ("drums_power", 16), ("drums_electronic", 24),
                      ("drums_808", 25), ("drums_jazz", 32), ("drums_brush", 40))
)
ALL_INSTRUMENTS: tuple[Instrument, ...] = INSTRUMENTS + DRUM_KITS

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(i.family for i in ALL_INSTRUMENTS))
_BY_NAME = {i.name: i for i in ALL_INSTRUMENTS}
_ALIASES = {"drums": "drums_standard", "drum_kit": "drums_standard", "organ": "church_organ",
            "guitar": "nylon_guitar", "bass": "acoustic_bass", "sax": "alto_sax", "horn": "french_horn",
            "strings": "string_ensemble", "voice": "choir", "choir_aahs": "choir"}
# A few GM programs useful for rendering that the note corpus does not hold.
EXTRA_PROGRAMS = {"string_ensemble": 48, "accordion": 21, "harmonica": 22, "fiddle": 110}


def get_instrument(name: str) -> Instrument:
    """The corpus instrument called ``name`` (case and spaces forgiven)."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _BY_NAME:
        raise ParameterError(
            f"unknown instrument {name!r}; choose one of: {', '.join(sorted(_BY_NAME))}", field="instrument"
        )
    return _BY_NAME[key]


def check_morph(inst: Instrument, target: Instrument, pitch: int, prefix: str = "") -> None:
    """ParameterError unless a note of ``inst`` at ``pitch`` can morph towards ``target`` (the error's field is
    ``prefix`` + "morph_to" or "pitch": the service names its fields "params.…")."""
    if target.is_drum != inst.is_drum:
        raise ParameterError("morphs go between two pitched instruments or between two drum kits",
                             field=f"{prefix}morph_to")
    if not target.is_drum and not target.low <= pitch <= target.high:
        raise ParameterError(f"pitch {pitch} is outside the range of the morph target {target.name} "
                             f"({target.low}..{target.high})", field=f"{prefix}pitch")


def gm_program(name: str) -> int:
    """General MIDI program (0-127) for an instrument name: the project's instruments, render-only ones, and every
    General MIDI program by its snake_case name ("muted_trumpet", "banjo") or a short one ("brass", "strings")."""
    key = _ALIASES.get(name.strip().lower().replace(" ", "_"), name.strip().lower().replace(" ", "_"))
    if key in EXTRA_PROGRAMS:
        return EXTRA_PROGRAMS[key]
    if key not in _BY_NAME:
        if key in _GM_INDEX:
            return _GM_INDEX[key]
        if key in GM_SHORT_NAMES:
            return GM_SHORT_NAMES[key]
    return get_instrument(name).program


GM_NAMES_TEXT = """
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
GM_PROGRAM_NAMES: tuple[str, ...] = tuple(GM_NAMES_TEXT.split())  # the 128 General MIDI programs in order
assert len(GM_PROGRAM_NAMES) == 128
# Short GM names people and the vocabulary use, beside the full ones above.
GM_SHORT_NAMES = {"synth_bass": 38, "slap_bass": 36, "brass": 61, "strings": 48, "music_box": 10, "saw_lead": 81,
                  "square_lead": 80, "warm_pad": 89, "choir": 52, "timpani": 47, "celesta": 8, "steel_drums": 114}
_GM_INDEX = {name: i for i, name in enumerate(GM_PROGRAM_NAMES)}


PIANO_RANGE = (21, 108)
GM_PERCUSSION = tuple(range(27, 88))  # the General MIDI percussion keys (35-81) and GM2's additions


def instrument_table(entries: Iterable[Mapping[str, Any]]) -> dict[str, Instrument]:
    """The instruments a model's card lists (``[{"name", "family", "program", "drum"}]``), by name: the corpus
    instrument of that name, else the one the entry describes (a recorded drum kit plays the GM drum keys, a
    recorded pitched instrument the piano's range)."""
    table: dict[str, Instrument] = {}
    for entry in entries:
        name = str(entry["name"])
        if name in _BY_NAME:
            table[name] = _BY_NAME[name]
            continue
        drum = bool(entry.get("drum"))
        low, high = (GM_PERCUSSION[0], GM_PERCUSSION[-1]) if drum else PIANO_RANGE
        table[name] = Instrument(name, str(entry.get("family") or ("drums" if drum else "other")),
                                 int(entry.get("program") or 0), low, high, drum, GM_PERCUSSION if drum else ())
    return table


def find_instrument(table: Mapping[str, Instrument], name: str, *, field: str = "instrument") -> Instrument:
    """The instrument of ``table`` called ``name`` (case, spaces and the corpus's aliases forgiven); a
    ParameterError on ``field`` listing the table's names otherwise."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in table:
        return table[key]
    raise ParameterError(f"this model does not play {name!r}; choose one of: {', '.join(sorted(table))}",
                         field=field)
