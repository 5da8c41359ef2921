"""The families the prompt engine knows today, as :class:`FamilySpec` s: what the service's registry will provide.

The service builds these from its model registry (:func:`~tunesmith.prompting.spec.family_from_json_schema`);
this module gives the same five for the evaluator, the tests and the bench, and shows the lead which fields the
engine reads. Ranges follow the service's catalogue and issue 14 (songs from 8 bars to 3 minutes).
"""

from __future__ import annotations

from tunesmith.prompting.instruments import DRUM_KIT_NAMES, GM_PROGRAMS
from tunesmith.prompting.spec import FamilySpec, ParamSpec
from tunesmith.prompting.vocabulary import STYLE_IDS, TRACKS
from tunesmith.symbolic.instruments import DRUM_KITS, EXTRA_PROGRAMS, INSTRUMENTS

METERS = ("4/4", "3/4", "2/4", "2/2", "3/2", "6/4", "3/8", "6/8", "9/8", "12/8")
# what the composer and the neural instrument render (the service's INSTRUMENT_NAMES)
COMPOSER_INSTRUMENTS = tuple(sorted({i.name for i in INSTRUMENTS} | set(EXTRA_PROGRAMS)))
NOTE_INSTRUMENTS = tuple(sorted({i.name for i in INSTRUMENTS} | {k.name for k in DRUM_KITS}))
SONG_INSTRUMENTS = tuple(sorted(set(COMPOSER_INSTRUMENTS) | set(GM_PROGRAMS) | (DRUM_KIT_NAMES - {"drums"})))


def _key() -> ParamSpec:
    return ParamSpec("key", "str", "tonic and mode, e.g. 'A minor'")


def _tempo() -> ParamSpec:
    return ParamSpec("tempo", "float", "beats per minute", 20, 300)


def default_families() -> dict[str, FamilySpec]:
    """song, chorale, folk, notes and perform, with the parameters a prompt can set."""
    song = FamilySpec("song", "a whole song by a multi-track band (drums, bass, chords, pad, lead) in a style", (
        ParamSpec("style", "str", "a style family id or a blend 'a+b' of " + ", ".join(STYLE_IDS)),
        _key(), ParamSpec("tempo", "float", "beats per minute", 40, 300),
        ParamSpec("length", "float", "seconds", 8, 180), ParamSpec("bars", "int", "bars", 4, 128),
        ParamSpec("meter", "enum", "time signature", choices=METERS),
        ParamSpec("energy", "float", "0 still .. 1 intense", 0, 1),
        ParamSpec("tracks", "list", "which tracks play", choices=TRACKS, default=list(TRACKS)),
        ParamSpec("instruments", "mapping", "track -> General MIDI instrument", keys=TRACKS, choices=SONG_INSTRUMENTS),
        ParamSpec("loop", "int", "a seamless loop of this many bars", 1, 32)), priority=1.0)
    chorale = FamilySpec("chorale", "a four-voice chorale (hymn harmony) in the style of Bach", (
        _key(), ParamSpec("bars", "int", "bars", 2, 64), ParamSpec("meter", "enum", "time signature", choices=METERS),
        _tempo(), ParamSpec("instrument", "enum", "instrument", choices=COMPOSER_INSTRUMENTS,
                            default="church_organ")))
    folk = FamilySpec("folk", "a single-line folk melody (jig, reel, air, song tune)", (
        _key(), ParamSpec("bars", "int", "bars", 2, 64), ParamSpec("meter", "enum", "time signature", choices=METERS),
        _tempo(), ParamSpec("instrument", "enum", "instrument", choices=COMPOSER_INSTRUMENTS, default="flute")))
    notes = FamilySpec("notes", "one note or drum hit of the neural instrument", (
        ParamSpec("instrument", "enum", "instrument", choices=NOTE_INSTRUMENTS, default="piano"),
        ParamSpec("pitch", "int", "MIDI pitch", 0, 127, default=60),
        ParamSpec("velocity", "int", "MIDI velocity", 1, 127, default=100),
        ParamSpec("duration", "float", "seconds held", 0.05, 30, default=1.0)))
    perform = FamilySpec("perform", "an uploaded score or MIDI file performed by the neural instrument", (
        ParamSpec("instrument", "enum", "instrument", choices=NOTE_INSTRUMENTS, default="piano"),))
    return {f.id: f for f in (song, chorale, folk, notes, perform)}
