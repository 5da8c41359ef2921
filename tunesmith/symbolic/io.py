"""Read MIDI, MusicXML, ABC and Humdrum into a `Score`; write a `Score` as a type-1 MIDI file.

MIDI is read with mido (fast, exact ticks). Notation formats go through music21 and
:func:`score_from_music21`, whose conventions are:

* parts in score order, one `Part` each (parts without notes are dropped);
* tied notes become one note (what music21's ``stripTies`` does, reimplemented: 10-100x faster, and
  correct where ``stripTies`` is not: same-pitch ties in two voices of one staff, "ties" between two
  different pitches), chords become simultaneous notes, grace notes and unpitched percussion notes
  are dropped;
* **beat 0 is a downbeat**: a pickup (anacrusis) bar is kept as leading silence, i.e. every note is
  shifted right by ``bar length - pickup length`` so bar lines fall on multiples of ``Score.bar_beats``
  (a chorale with a one-beat pickup in 4/4 starts at beat 3.0);
* tempo from the first MetronomeMark with a number, else :data:`DEFAULT_NOTATION_TEMPO` (100 BPM,
  a moderate hymn/folk tempo); key from the first Key (church modes mapped to major/minor by their
  third) or, for a bare KeySignature, the better-fitting of its relative major/minor (Krumhansl);
  None if there is no signature; meter from the first TimeSignature, else 4/4;
* GM program from the part's instrument if it has one, else 0; a percussion instrument or MIDI
  channel 10 makes a drum part.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from pathlib import Path
from typing import Any

from tunesmith.errors import MidiDecodeError, ParameterError, TunesmithError
from tunesmith.files import check_input_file
from tunesmith.symbolic.keys import estimate_key, key_name, mode_family, parse_key
from tunesmith.symbolic.score import DRUM_CHANNEL, Note, Part, Score, channel_plan

DEFAULT_NOTATION_TEMPO = 100.0
DEFAULT_MIDI_TEMPO = 120.0  # the MIDI default of 500000 microseconds per quarter note

FORMATS: dict[str, tuple[str, ...]] = {
    "midi": (".mid", ".midi", ".smf"),
    "musicxml": (".xml", ".musicxml", ".mxl"),
    "abc": (".abc",),
    "humdrum": (".krn",),
}
_MIDI_KEYS = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"),
}
_ABC_X = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


# --------------------------------------------------------------------------------------------- reading


def read_score(path: str | Path, *, fmt: str | None = None, number: int | None = None) -> Score:
    """Read a MIDI, MusicXML (.xml/.musicxml/.mxl), ABC or Humdrum (.krn) file into a `Score`.

    ``fmt`` overrides the extension ("midi", "musicxml", "abc", "humdrum"); ``number`` picks the tune
    with that ``X:`` number from a multi-tune ABC file (default: the first tune).
    """
    path = check_input_file(path)
    fmt = _resolve_format(path, fmt)
    if number is not None and fmt != "abc":
        raise ParameterError(f"number={number!r} only applies to ABC files, not {path.name}", field="number")
    if fmt == "midi":
        return _read_midi(path)
    if fmt == "abc":
        return _read_abc(path, number=number)
    return _read_music21_file(path, fmt)


def _resolve_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ParameterError(
                f"unknown symbolic format {fmt!r}; use one of {sorted(FORMATS)}", field="fmt"
            )
        return fmt
    suffix = path.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for suffixes in FORMATS.values() for s in suffixes)
    raise MidiDecodeError(
        f"unsupported symbolic file extension {suffix or '(none)'!r} for {path.name}; "
        f"expected one of {known}",
        field="path",
    )


# ------------------------------------------------------------------------------------------------ MIDI


def _read_midi(path: Path) -> Score:
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except TunesmithError:
        raise
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError... on bad bytes
        reason = "truncated" if isinstance(exc, EOFError) else str(exc) or type(exc).__name__
        raise MidiDecodeError(f"{path.name} is not a readable MIDI file ({reason})", field="path") from exc
    tpb = mid.ticks_per_beat
    if not isinstance(tpb, int) or tpb <= 0 or tpb & 0x8000:
        raise MidiDecodeError(f"{path.name} uses SMPTE time division, which is not supported", field="path")
    if mid.type == 2:
        raise MidiDecodeError(f"{path.name} is a type-2 (multi-song) MIDI file, not supported", field="path")
    state = _MidiState()
    for index, track in enumerate(mid.tracks):
        _scan_track(track, index, state)
    parts = [_midi_part(key, notes, state, tpb) for key, notes in state.notes.items() if notes]
    if not parts:
        raise MidiDecodeError(f"{path.name} has no notes", field="path")
    tempo = mido.tempo2bpm(state.meta["tempo"][1]) if "tempo" in state.meta else DEFAULT_MIDI_TEMPO
    return Score(
        parts=parts,
        tempo=round(float(tempo), 6),
        key=state.meta["key"][1] if "key" in state.meta else None,
        time_signature=state.meta["meter"][1] if "meter" in state.meta else (4, 4),
        title=state.meta["title"][1] if "title" in state.meta else path.stem,
    )


class _MidiState:
    """What the track scan collects: notes per (track, channel), names, programs, global meta."""

    def __init__(self) -> None:
        self.notes: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        self.track_names: dict[int, str] = {}
        self.programs: dict[tuple[int, int], int] = {}
        self.channel_programs: dict[int, int] = {}
        self.meta: dict[str, tuple[int, Any]] = {}

    def set_meta(self, name: str, tick: int, value: Any) -> None:
        """Keep the earliest occurrence of a global meta event (tempo, meter, key)."""
        if name not in self.meta or tick < self.meta[name][0]:
            self.meta[name] = (tick, value)


def _scan_track(track: Any, index: int, state: _MidiState) -> None:
    tick = 0
    open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = {}
    for msg in track:
        tick += msg.time
        kind = msg.type
        if kind == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), deque()).append((tick, msg.velocity))
        elif kind == "note_off" or kind == "note_on":
            _close_note(open_notes, (msg.channel, msg.note), tick, index, state)
        elif kind == "program_change":
            state.programs.setdefault((index, msg.channel), msg.program)
            state.channel_programs.setdefault(msg.channel, msg.program)
        else:
            _scan_meta(msg, tick, index, state)
    for (channel, pitch), starts in open_notes.items():  # unterminated notes end with the track
        for start, velocity in starts:
            if tick > start:
                state.notes.setdefault((index, channel), []).append((pitch, start, tick, velocity))


def _close_note(
    open_notes: dict[tuple[int, int], deque[tuple[int, int]]],
    key: tuple[int, int],
    tick: int,
    index: int,
    state: _MidiState,
) -> None:
    """Pair a note-off with the oldest open note of that pitch that started before it (FIFO)."""
    starts = open_notes.get(key)
    if not starts:
        return
    for i, (start, velocity) in enumerate(starts):
        if start < tick:
            del starts[i]
            state.notes.setdefault((index, key[0]), []).append((key[1], start, tick, velocity))
            return
    starts.popleft()  # a zero-length note: drop it


def _scan_meta(msg: Any, tick: int, index: int, state: _MidiState) -> None:
    kind = msg.type
    if kind == "set_tempo":
        state.set_meta("tempo", tick, msg.tempo)
    elif kind == "time_signature":
        state.set_meta("meter", tick, (int(msg.numerator), int(msg.denominator)))
    elif kind == "key_signature":
        with contextlib.suppress(ParameterError):
            state.set_meta("key", tick, key_name(*parse_key(msg.key)))
    elif kind == "track_name":
        name = msg.name.strip()
        state.track_names.setdefault(index, name)
        if index == 0 and name:
            state.set_meta("title", tick, name)


def _midi_part(
    key: tuple[int, int], raw: list[tuple[int, int, int, int]], state: _MidiState, tpb: int
) -> Part:
    index, channel = key
    program = state.programs.get(key, state.channel_programs.get(channel, 0))
    channels = {c for (i, c), notes in state.notes.items() if i == index and notes}
    name = state.track_names.get(index, "") or f"Track {index}"
    if len(channels) > 1:
        name = f"{name} (channel {channel + 1})"
    notes = [Note(p, s / tpb, (e - s) / tpb, v) for p, s, e, v in raw]
    return Part(name=name, notes=notes, program=program, is_drum=channel == DRUM_CHANNEL).sorted()


# ------------------------------------------------------------------------------------ music21 formats


def _read_music21_file(path: Path, fmt: str) -> Score:
    from music21 import converter

    try:
        # forceSource: music21 would otherwise write (and read back) a pickle of every file it parses to its
        # scratch folder, which grows with every upload a server reads
        parsed = converter.parse(str(path), format=fmt, forceSource=True)
    except TunesmithError:
        raise
    except Exception as exc:  # music21 raises many exception types on malformed input
        raise MidiDecodeError(f"{path.name} could not be parsed as {fmt} ({exc})", field="path") from exc
    return score_from_music21(parsed, source=path.name, title=path.stem)


def split_abc(text: str) -> list[tuple[int, str]]:
    """Split ABC text into ``(X: number, tune text)`` pairs; each text starts with the file header.

    Text without any ``X:`` line is one tune numbered 1. Parsing tunes one by one (`read_abc_text`)
    is faster than music21 parsing a whole collection as an Opus, and isolates a malformed tune.
    """
    matches = list(_ABC_X.finditer(text))
    if not matches:
        return [(1, text)]
    header = text[: matches[0].start()]
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [(int(m.group(1)), header + text[m.start() : end]) for m, end in zip(matches, ends, strict=True)]


def abc_tune_text(text: str, *, number: int | None = None) -> str:
    """The text of one tune (with the file header) of an ABC file; the first tune if ``number`` is None."""
    tunes = split_abc(text)
    if number is None:
        return tunes[0][1]
    for tune_number, tune in tunes:
        if tune_number == number:
            return tune
    raise ParameterError(f"no tune with X:{number} in this ABC file", field="number")


def read_abc_text(text: str, *, source: str = "ABC text", title: str = "") -> Score:
    """Parse the text of one ABC tune (e.g. from `split_abc`) into a `Score`."""
    from music21 import converter

    try:
        parsed = converter.parse(text, format="abc")
    except TunesmithError:
        raise
    except Exception as exc:  # music21 raises many exception types on malformed ABC
        raise MidiDecodeError(f"{source} could not be parsed as ABC ({exc})") from exc
    return score_from_music21(parsed, source=source, title=title)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_abc(path: Path, *, number: int | None) -> Score:
    try:
        tune = abc_tune_text(_read_text(path), number=number)
    except ParameterError as exc:
        raise ParameterError(f"no tune with X:{number} in {path.name}", field="number") from exc
    label = path.name if number is None else f"{path.name} X:{number}"
    return read_abc_text(tune, source=label, title=path.stem)


def read_music21_corpus(path_or_name: str | Path, *, number: int | None = None) -> Score:
    """Read a work from music21's bundled corpus ("bach/bwv66.6", "essenFolksong/altdeu10") or a path.

    ABC collections are sliced to one tune (``number`` = its ``X:``; default the first), which is far
    faster than music21 parsing the whole opus.
    """
    from music21 import corpus

    if isinstance(path_or_name, Path) or Path(str(path_or_name)).is_file():
        return read_score(path_or_name, number=number)
    name = str(path_or_name)
    try:
        work = corpus.getWork(name)
    except Exception as exc:
        raise ParameterError(f"no music21 corpus work named {name!r}", field="name") from exc
    if isinstance(work, list):
        if not work:
            raise ParameterError(f"no music21 corpus work named {name!r}", field="name")
        work = work[0]
    work = Path(work)
    if work.suffix.lower() == ".abc":
        return read_score(work, number=number)
    try:
        parsed = corpus.parse(name, number=number)
    except Exception as exc:
        raise MidiDecodeError(f"music21 corpus work {name!r} could not be parsed ({exc})") from exc
    return score_from_music21(parsed, source=name, title=work.stem)


def score_from_music21(obj: Any, *, source: str = "music21 stream", title: str = "") -> Score:
    """Convert a music21 Score/Part/Opus (first score) into a `Score` (conventions in the module doc)."""
    from music21 import stream

    if isinstance(obj, stream.Opus):
        scores = list(obj.scores)
        if not scores:
            raise MidiDecodeError(f"{source} has no notes")
        obj = scores[0]
    if not isinstance(obj, stream.Stream):
        raise ParameterError(f"expected a music21 stream, got {type(obj).__name__}")
    m21_parts = list(obj.parts) if isinstance(obj, stream.Score) else []
    if not m21_parts:
        m21_parts = [obj]
    shift = pickup_shift(m21_parts[0])
    parts = []
    for index, m21_part in enumerate(m21_parts):
        notes = _music21_notes(m21_part, shift)
        if notes:
            program, is_drum = _music21_instrument(m21_part)
            name = m21_part.partName or f"Part {index + 1}"
            parts.append(Part(name=str(name), notes=notes, program=program, is_drum=is_drum).sorted())
    if not parts:
        raise MidiDecodeError(f"{source} has no notes")
    all_notes = [n for p in parts if not p.is_drum for n in p.notes]
    meta_title = obj.metadata.title if obj.metadata is not None and obj.metadata.title else ""
    return Score(
        parts=parts,
        tempo=_music21_tempo(obj),
        key=_music21_key(obj, all_notes),
        time_signature=_music21_meter(obj),
        title=str(meta_title or title),
    )


def pickup_shift(m21_part: Any) -> float:
    """Beats to add so bar lines land on multiples of the bar length (0 unless the first bar is short)."""
    from music21 import stream

    measures = m21_part.getElementsByClass(stream.Measure)
    if len(measures) < 2:
        return 0.0
    first = measures[0]
    if first.paddingLeft and first.paddingLeft > 0:
        return float(first.paddingLeft)
    missing = float(first.barDuration.quarterLength) - float(first.duration.quarterLength)
    return missing if missing > 1e-9 else 0.0


def _music21_notes(m21_part: Any, shift: float) -> list[Note]:
    """The part's sounding notes with ties merged, like ``stripTies`` without its deep copy (10x faster).

    A tie continues the open tied note of the same pitch that ends exactly where it starts (several may
    be open at once in a multi-voice part). Unlike ``stripTies`` a tie between two different pitches (an
    ABC slur typed as "G3-A") keeps both notes. Offsets stay exact (music21 Fractions) until the end.
    """
    notes: list[Note] = []
    tied: dict[int, list[list[Any]]] = {}  # midi pitch -> open tied notes as [start, length, velocity]
    for element in m21_part.flatten().notes:
        length = element.duration.quarterLength
        if element.duration.isGrace or length <= 0:
            continue
        velocity = element.volume.velocity if element.volume is not None else None
        velocity = max(1, min(127, int(velocity))) if velocity else 80
        start = element.offset
        for midi, tie in _pitches_and_ties(element):
            _add_tied(notes, tied.setdefault(midi, []), (midi, tie, start, length, velocity), shift)
    for midi, still_open in tied.items():
        notes.extend(_note(midi, *entry, shift) for entry in still_open)
    return notes


def _note(midi: int, start: Any, length: Any, velocity: int, shift: float) -> Note:
    return Note(midi, float(start) + shift, float(length), velocity)


def _pitches_and_ties(element: Any) -> list[tuple[int, str | None]]:
    """(MIDI pitch, tie type) for a note or each note of a chord; unpitched elements give nothing."""
    chord_tie = getattr(element, "tie", None)
    members = list(element.notes) if element.isChord else [element]
    out = []
    for member in members:
        pitch = getattr(member, "pitch", None)
        if pitch is None:
            continue
        midi = round(pitch.ps)
        tie = member.tie if member.tie is not None else chord_tie
        if 0 <= midi <= 127:
            out.append((midi, tie.type if tie is not None else None))
    return out


def _add_tied(notes: list[Note], still_open: list[list[Any]], event: tuple, shift: float) -> None:
    """Extend an open tied note that ends where this one starts, else emit the note or open a new tie."""
    midi, tie, start, length, velocity = event
    if tie is not None:  # "start" right after an open tie is read as "continue" (common in encodings)
        for index, entry in enumerate(still_open):
            if abs(float(entry[0] + entry[1] - start)) < 1e-6:
                entry[1] = entry[1] + length
                if tie == "stop":
                    notes.append(_note(midi, *entry, shift))
                    del still_open[index]
                return
    if tie in ("start", "continue"):
        still_open.append([start, length, velocity])
        return
    notes.append(_note(midi, start, length, velocity, shift))


def _music21_instrument(m21_part: Any) -> tuple[int, bool]:
    from music21 import instrument

    inst = m21_part.getInstrument(returnDefault=False)
    if inst is None:
        return 0, False
    is_drum = isinstance(inst, instrument.UnpitchedPercussion) or inst.midiChannel == DRUM_CHANNEL
    program = inst.midiProgram if isinstance(inst.midiProgram, int) and 0 <= inst.midiProgram <= 127 else 0
    return program, is_drum


def _music21_tempo(obj: Any) -> float:
    from music21 import tempo

    for mark in obj.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            bpm = mark.getQuarterBPM()
        except Exception:
            bpm = None
        if bpm and bpm > 0:
            return round(float(bpm), 6)
    return DEFAULT_NOTATION_TEMPO


def _music21_key(obj: Any, notes: list[Note]) -> str | None:
    from music21 import key

    signature = next(iter(obj.recurse().getElementsByClass(key.KeySignature)), None)
    if signature is None:
        return None
    if isinstance(signature, key.Key):
        family = mode_family(signature.mode or "")
        if family is not None:
            return key_name(signature.tonic.pitchClass, family)
    major = (7 * int(signature.sharps)) % 12
    candidates = [(major, "major"), ((major + 9) % 12, "minor")]
    return key_name(*estimate_key([(n.pitch, n.duration) for n in notes], candidates=candidates))


def _music21_meter(obj: Any) -> tuple[int, int]:
    from music21 import meter

    ts = next(iter(obj.recurse().getElementsByClass(meter.TimeSignature)), None)
    if ts is None:
        return (4, 4)
    return int(ts.numerator), int(ts.denominator)


# ------------------------------------------------------------------------------------------------ write


def write_midi(score: Score, path: str | Path, *, ticks_per_beat: int = 480) -> Path:
    """Write ``score`` as a type-1 MIDI file; returns the path.

    Track 0 holds title, tempo, meter and key; then one track per part (name, program change, notes),
    pitched parts on channels 0-8, 10-15 in turn and drum parts on channel 10 (index 9). Note times are
    rounded to the tick grid; at equal ticks note-offs precede note-ons, so `read_score` gives back the
    same notes (same-pitch notes nested inside each other in one part are the one ambiguity of MIDI).
    """
    import mido

    if (
        isinstance(ticks_per_beat, bool)
        or not isinstance(ticks_per_beat, int)
        or not 1 <= ticks_per_beat < 2**15
    ):
        raise ParameterError(f"ticks_per_beat must be an integer 1..32767, got {ticks_per_beat!r}")
    _check_tempo(score.tempo)
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    mid.tracks.append(_meta_track(score))
    for part, channel in zip(score.parts, channel_plan(score.parts), strict=True):
        mid.tracks.append(_part_track(part, channel, ticks_per_beat))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def _check_tempo(tempo: float) -> None:
    if not isinstance(tempo, int | float) or not 1.0 <= float(tempo) <= 1000.0:
        raise ParameterError(f"tempo must be 1..1000 BPM, got {tempo!r}", field="tempo")


def _meta_track(score: Score) -> Any:
    import mido

    track = mido.MidiTrack()
    if score.title:
        track.append(mido.MetaMessage("track_name", name=score.title, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=round(mido.bpm2tempo(score.tempo)), time=0))
    numerator, denominator = score.time_signature
    if denominator < 1 or denominator & (denominator - 1) or not 1 <= numerator <= 255:
        raise ParameterError(f"time signature {numerator}/{denominator} cannot be written to MIDI")
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
    if score.key:
        tonic, mode = parse_key(score.key)
        track.append(mido.MetaMessage("key_signature", key=_MIDI_KEYS[mode][tonic], time=0))
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _part_track(part: Part, channel: int, tpb: int) -> Any:
    import mido

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=part.name, time=0))
    if not 0 <= part.program <= 127:
        raise ParameterError(f"part {part.name!r} has GM program {part.program}, expected 0..127")
    track.append(mido.Message("program_change", channel=channel, program=part.program, time=0))
    events: list[tuple[int, int, int, int]] = []  # (tick, 0=off/1=on, pitch, velocity)
    for note in part.notes:
        if not 0 <= note.pitch <= 127:
            raise ParameterError(f"part {part.name!r} has pitch {note.pitch}, expected 0..127")
        start = round(note.start * tpb)
        end = max(round(note.end * tpb), start + 1)
        if start < 0:
            raise ParameterError(f"part {part.name!r} has a note at negative time {note.start}")
        velocity = max(1, min(127, int(note.velocity)))
        events.append((start, 1, note.pitch, velocity))
        events.append((end, 0, note.pitch, 0))
    events.sort()
    last = 0
    for tick, is_on, pitch, velocity in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track
