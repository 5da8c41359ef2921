"""Multi-track songs as compound-word steps: the representation of the `song` model.

One *step* per event, each a row of integer fields (0 everywhere means "does not apply"):

==========  ===================================================================================
kind        BOS, BAR, CHORD, NOTE, EOS
position    grid step in the bar, :data:`STEPS_PER_BEAT` = 12 per quarter beat (sixteenths *and* triplets:
            swung and 12/8 grooves put a third of their notes on triplet steps, which a sixteenth grid
            would move), CHORD and NOTE
degree      chord root in semitones above the song's tonic (CHORD): what the model chooses, the same in every key
root        chord root pitch class (CHORD), derived from degree and key, so a note sees the chord it sounds over
quality     chord quality, a key of `tunesmith.symbolic.harmony.QUALITIES` (CHORD)
track       band role (NOTE): drums, bass, chords, pad, lead
pitch       MIDI pitch; drums: the General MIDI drum key, offset by 128 so the two never share a value
duration    a duration bin (:data:`DURATION_BINS`, in grid steps) of a pitched note; drums have none
velocity    velocity // 8 (NOTE)
==========  ===================================================================================

and the *context* of the plan, the same on every step of a bar and never predicted: ``section`` (intro,
verse, chorus, bridge, outro), ``energy`` (the section's level 0..4), ``bar_in_section`` and ``bars_left``
(both capped at 8, so fills and endings know where they are).

Order: ``BOS``, then per bar ``BAR``, the chord sounding at the bar line (a CHORD at position 0, so every bar
names its harmony and a given progression can be forced bar by bar), then the events by position; at one
position a chord change comes first, then notes by track (role order) and pitch; ``EOS`` ends the song.

Why compound words (Hsiao et al., 2021) and not a flat REMI stream: a flat stream spends a token on each of
position, track, pitch, duration and velocity, about 4 tokens per note, where a step holds a whole note; on the
grooves corpus that is ~36 steps per bar against ~120 REMI tokens per bar (``tunesmith bench song`` measures
both), and generation time is proportional to the number of steps.

Round trip: :func:`decode_song` of :func:`encode_song` gives the song's notes on the grid (starts on the
nearest step, durations in the nearest bin, velocities to their bin's middle, drum notes a sixteenth long),
the chords reduced to root and quality, and the sections; encoding that again gives the same steps.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.symbolic.harmony import QUALITIES, Chord, parse_chord
from tunesmith.symbolic.score import Note, Part, Score

TOKEN_FORMAT = "song-compound-v2"  # a model card names the format its model reads
STEPS_PER_BEAT = 12
MAX_BAR_STEPS = 72  # 12/8 and 6/4: six quarter beats
ROLES = ("drums", "bass", "chords", "pad", "lead")  # the band, in the order notes of one position are written
SECTIONS = ("intro", "verse", "chorus", "bridge", "outro")
KINDS = ("BOS", "BAR", "CHORD", "NOTE", "EOS")
QUALITY_NAMES = tuple(QUALITIES)
DURATION_BINS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 22, 24, 30, 36, 42, 48, 60, 72, 84, 96,
                 120, 144, 192, 240, 288)  # grid steps: up to six beats one by one, then coarser
VELOCITY_BIN = 8
ENERGY_LEVELS = 5
PHASE_CAP = 8  # bar_in_section and bars_left count up to this
DRUM_LENGTH = 3  # grid steps a decoded drum hit lasts (a sixteenth)
DRUM_OFFSET = 128

FIELDS = ("kind", "position", "degree", "root", "quality", "track", "pitch", "duration", "velocity")
CONTEXT = ("section", "energy", "bar_in_section", "bars_left")
COLUMNS = FIELDS + CONTEXT
COLUMN = {name: i for i, name in enumerate(COLUMNS)}
CONTEXT_START = len(FIELDS)  # the columns from here on are the bar's context
# how many values each column takes, the 0 ("does not apply") included
SIZES: dict[str, int] = {
    "kind": 1 + len(KINDS), "position": 1 + MAX_BAR_STEPS, "degree": 13, "root": 13, "quality": 1 + len(QUALITY_NAMES),
    "track": 1 + len(ROLES), "pitch": 1 + 2 * 128, "duration": 1 + len(DURATION_BINS),
    "velocity": 1 + 128 // VELOCITY_BIN, "section": 1 + len(SECTIONS), "energy": 1 + ENERGY_LEVELS,
    "bar_in_section": 1 + PHASE_CAP, "bars_left": 1 + PHASE_CAP,
}
BOS, BAR, CHORD, NOTE, EOS = range(1, 1 + len(KINDS))
DRUMS = 1 + ROLES.index("drums")
# the fields a step of each kind chooses (the rest are 0, or derived: a chord's root); a drum note has no duration
PREDICTED: dict[int, tuple[str, ...]] = {
    BAR: (), CHORD: ("position", "degree", "quality"),
    NOTE: ("position", "track", "pitch", "duration", "velocity"), EOS: (), BOS: (),
}


# The model's output heads, each over the joint values of two fields (`tunesmith.models.song`): "when" (0 ends the
# bar, 1 ends the song, then a chord or a note at each position), "chord" (degree x quality), "what" (track x MIDI
# key) and "how" (duration x velocity); and the fields of the step each head reads besides the hidden state.
N_QUALITIES = len(QUALITY_NAMES)
N_VELOCITIES = 128 // VELOCITY_BIN
WHEN_CHORD, WHEN_NOTE = 2, 2 + MAX_BAR_STEPS  # the "when" value of a chord / a note at position 0
HEAD_SIZES = {"when": 2 + 2 * MAX_BAR_STEPS, "chord": 12 * N_QUALITIES, "what": len(ROLES) * 128,
              "how": SIZES["duration"] * N_VELOCITIES}
HEAD_READS = {"when": (), "chord": ("kind", "position"), "what": ("kind", "position"),
              "how": ("kind", "position", "track", "pitch")}


def network_spec() -> dict[str, Any]:
    """What the network needs to know of the steps: column sizes in order, head sizes, what each head reads."""
    return {"columns": dict(SIZES), "outputs": dict(HEAD_SIZES),
            "output_reads": {name: list(reads) for name, reads in HEAD_READS.items()}, "n_tracks": len(ROLES)}


def head_targets(steps: np.ndarray) -> dict[str, np.ndarray]:
    """Per head, the joint value (..., T) each step asks of it, or -1 where the step does not use the head."""
    steps = np.asarray(steps, dtype=np.int64)
    kind, position = steps[..., COLUMN["kind"]], steps[..., COLUMN["position"]] - 1
    when = np.full(kind.shape, -1, dtype=np.int64)
    when[kind == BAR] = 0
    when[kind == EOS] = 1
    when = np.where(kind == CHORD, WHEN_CHORD + position, when)
    when = np.where(kind == NOTE, WHEN_NOTE + position, when)
    chord = np.where(kind == CHORD, (steps[..., COLUMN["degree"]] - 1) * N_QUALITIES + steps[..., COLUMN["quality"]]
                     - 1, -1)
    note = kind == NOTE
    what = np.where(note, (steps[..., COLUMN["track"]] - 1) * 128 + (steps[..., COLUMN["pitch"]] - 1) % 128, -1)
    how = np.where(note, steps[..., COLUMN["duration"]] * N_VELOCITIES + steps[..., COLUMN["velocity"]] - 1, -1)
    return {"when": when, "chord": chord, "what": what, "how": how}


@dataclass(frozen=True)
class SectionSpan:
    """One section of a song: its name, first bar (0-based), length in bars and energy level (0..4)."""

    name: str
    start_bar: int
    bars: int
    energy: int = 2

    def __post_init__(self) -> None:
        if self.name not in SECTIONS:
            raise ParameterError(f"unknown section {self.name!r}; sections are {', '.join(SECTIONS)}",
                                 field="sections")
        if not 0 <= self.energy < ENERGY_LEVELS:
            raise ParameterError(f"energy level must be 0..{ENERGY_LEVELS - 1}, got {self.energy}", field="energy")


@dataclass
class DecodedSong:
    """What a step sequence says: notes by role (on the grid, in beats), chord changes, bars and sections."""

    notes: dict[str, list[Note]]
    chords: list[tuple[float, Chord]]
    bars: int
    sections: list[SectionSpan] = field(default_factory=list)


def bar_steps(meter: tuple[int, int]) -> int:
    """Grid steps in one bar of ``meter`` (4/4 -> 48, 6/8 -> 36)."""
    numerator, denominator = meter
    steps = numerator * 4 * STEPS_PER_BEAT / denominator
    if steps != int(steps) or not 0 < steps <= MAX_BAR_STEPS:
        raise ParameterError(f"meter {numerator}/{denominator} does not fit the song grid (at most "
                             f"{MAX_BAR_STEPS // STEPS_PER_BEAT} quarter beats a bar)", field="meter")
    return int(steps)


def duration_bin(steps: float) -> int:
    """The index of the duration bin nearest to ``steps`` grid steps (nearest on a log scale)."""
    if steps <= DURATION_BINS[0]:
        return 0
    if steps >= DURATION_BINS[-1]:
        return len(DURATION_BINS) - 1
    i = bisect.bisect_left(DURATION_BINS, steps)
    low, high = DURATION_BINS[i - 1], DURATION_BINS[i]
    return i if math.log(steps / low) > math.log(high / steps) else i - 1


def velocity_value(level: int) -> int:
    """The velocity a bin decodes to (its middle)."""
    return min(127, level * VELOCITY_BIN + VELOCITY_BIN // 2)


def chord_fields(chord: Chord | str) -> tuple[int, int]:
    """(root, quality) field values of a chord or chord symbol (added tones and the bass are not kept)."""
    chord = parse_chord(chord) if isinstance(chord, str) else chord
    return 1 + chord.root, 1 + QUALITY_NAMES.index(chord.quality)


def chord_of(root: int, quality: int) -> Chord:
    return Chord(root - 1, QUALITY_NAMES[quality - 1])


def section_context(sections: Sequence[SectionSpan], bars: int) -> np.ndarray:
    """(bars, 4) context fields per bar: section, energy, bar_in_section, bars_left (a bar in no section:
    zeros)."""
    out = np.zeros((bars, len(CONTEXT)), dtype=np.int16)
    for span in sections:
        for k in range(span.bars):
            bar = span.start_bar + k
            if 0 <= bar < bars:
                out[bar] = (1 + SECTIONS.index(span.name), 1 + span.energy, 1 + min(k, PHASE_CAP - 1),
                            1 + min(span.bars - 1 - k, PHASE_CAP - 1))
    return out


def step_row(kind: int, context: np.ndarray | Sequence[int] = (0, 0, 0, 0), **values: int) -> np.ndarray:
    """One step: ``kind`` with the given field values and a bar's context."""
    row = np.zeros(len(COLUMNS), dtype=np.int16)
    row[COLUMN["kind"]] = kind
    for name, value in values.items():
        row[COLUMN[name]] = value
    row[CONTEXT_START:] = context
    return row


def chord_row(position: int, root: int, quality: int, *, tonic: int,
              context: np.ndarray | Sequence[int] = (0, 0, 0, 0)) -> np.ndarray:
    """A CHORD step at grid ``position`` (from 0) with root and quality field values, its degree above ``tonic``."""
    return step_row(CHORD, context, position=1 + position, degree=1 + (root - 1 - tonic) % 12, root=root,
                    quality=quality)


def encode_song(tracks: Sequence[tuple[str, Sequence[Note]]], *, meter: tuple[int, int], bars: int, tonic: int = 0,
                chords: Sequence[tuple[float, Chord | str]] = (), sections: Sequence[SectionSpan] = (),
                end: bool = True) -> np.ndarray:
    """The steps (T, len(COLUMNS)) int16 of a song: ``tracks`` as (role, notes) pairs (several tracks may share a
    role; they are merged), ``bars`` bars of ``meter``, the key's ``tonic`` pitch class (chord degrees count from
    it), chord changes as (beat, chord) and the sections. Notes starting at or after the last bar's end are left
    out; ``end`` False leaves out the EOS."""
    per_bar = bar_steps(meter)
    context = section_context(sections, bars)
    events: dict[tuple[int, int, int, int], tuple[int, int]] = {}  # (bar, position, track, pitch) -> (dur, vel)
    for role, notes in tracks:
        if role not in ROLES:
            raise ParameterError(f"unknown track role {role!r}; roles are {', '.join(ROLES)}", field="tracks")
        track = 1 + ROLES.index(role)
        drum = role == "drums"
        for note in notes:
            step = round(note.start * STEPS_PER_BEAT)
            bar, position = divmod(step, per_bar)
            if not 0 <= bar < bars or not 0 <= note.pitch <= 127:
                continue
            pitch = 1 + note.pitch + (DRUM_OFFSET if drum else 0)
            duration = 0 if drum else 1 + duration_bin(note.duration * STEPS_PER_BEAT)
            velocity = 1 + min(127, max(0, note.velocity)) // VELOCITY_BIN
            key = (bar, position, track, pitch)
            if key in events:  # the same note twice (two tracks of one role): keep the longer, louder one
                old = events[key]
                duration, velocity = max(duration, old[0]), max(velocity, old[1])
            events[key] = (duration, velocity)
    changes = chord_events_by_bar(chords, per_bar, bars)
    rows: list[np.ndarray] = [step_row(BOS)]
    by_bar: dict[int, list[tuple[int, int, int, int, int]]] = {}
    for (bar, position, track, pitch), (duration, velocity) in events.items():
        by_bar.setdefault(bar, []).append((position, track, pitch, duration, velocity))
    for bar in range(bars):
        rows.append(step_row(BAR, context[bar]))
        bar_chords = changes.get(bar, [])
        notes = sorted(by_bar.get(bar, []))
        chord_index = 0
        for position, track, pitch, duration, velocity in notes:
            while chord_index < len(bar_chords) and bar_chords[chord_index][0] <= position:
                rows.append(chord_row(*bar_chords[chord_index], tonic=tonic, context=context[bar]))
                chord_index += 1
            rows.append(step_row(NOTE, context[bar], position=1 + position, track=track, pitch=pitch,
                                 duration=duration, velocity=velocity))
        for change in bar_chords[chord_index:]:
            rows.append(chord_row(*change, tonic=tonic, context=context[bar]))
    if end:
        rows.append(step_row(EOS))
    return np.stack(rows)


def chord_events_by_bar(chords: Sequence[tuple[float, Chord | str]], per_bar: int,
                        bars: int) -> dict[int, list[tuple[int, int, int]]]:
    """Per bar, the chord events (position from 0, root and quality field values) of chord changes given as
    (beat, chord): the chord sounding at the bar line, then each change inside the bar that differs from the
    chord before it."""
    timeline = sorted((round(beat * STEPS_PER_BEAT), chord_fields(chord)) for beat, chord in chords)
    out: dict[int, list[tuple[int, int, int]]] = {}
    current: tuple[int, int] | None = None
    index = 0
    for bar in range(bars):
        start, end = bar * per_bar, (bar + 1) * per_bar
        while index < len(timeline) and timeline[index][0] <= start:
            current = timeline[index][1]
            index += 1
        events = [(0, *current)] if current is not None else []
        while index < len(timeline) and timeline[index][0] < end:
            step, fields = timeline[index]
            if fields != current:
                events.append((step - start, *fields))
                current = fields
            index += 1
        if events:
            out[bar] = events
    return out


def decode_song(steps: np.ndarray, *, meter: tuple[int, int], first_bar: int = 0) -> DecodedSong:
    """Notes by role, chord changes, bar count and sections of a step sequence (it may stop anywhere);
    ``first_bar``: the song's bar its first BAR step opens (its notes placed there; counts and sections are of
    the steps given)."""
    per_bar = bar_steps(meter)
    notes: dict[str, list[Note]] = {role: [] for role in ROLES}
    chords: list[tuple[float, Chord]] = []
    contexts: list[tuple[int, ...]] = []
    bar = first_bar - 1
    for row in np.asarray(steps):
        kind = int(row[COLUMN["kind"]])
        if kind == EOS:
            break
        if kind == BAR:
            bar += 1
            contexts.append(tuple(int(v) for v in row[CONTEXT_START:]))
            continue
        if bar < 0 or kind not in (CHORD, NOTE):
            continue
        beat = (bar * per_bar + int(row[COLUMN["position"]]) - 1) / STEPS_PER_BEAT
        if kind == CHORD:
            chord = chord_of(int(row[COLUMN["root"]]), int(row[COLUMN["quality"]]))
            if not chords or chords[-1][1] != chord:
                chords.append((beat, chord))
            continue
        role = ROLES[int(row[COLUMN["track"]]) - 1]
        pitch = int(row[COLUMN["pitch"]]) - 1
        duration_field = int(row[COLUMN["duration"]])
        length = DRUM_LENGTH if role == "drums" or not duration_field else DURATION_BINS[duration_field - 1]
        notes[role].append(Note(pitch % DRUM_OFFSET, beat, length / STEPS_PER_BEAT,
                                velocity_value(int(row[COLUMN["velocity"]]) - 1)))
    for items in notes.values():
        items.sort(key=lambda n: (n.start, n.pitch))
    return DecodedSong(notes=notes, chords=chords, bars=bar + 1 - first_bar, sections=sections_of(contexts))


def sections_of(contexts: Sequence[Sequence[int]]) -> list[SectionSpan]:
    """Sections from the per-bar context fields: a new span where the name changes or bar_in_section is 1."""
    spans: list[SectionSpan] = []
    for bar, (section, energy, bar_in_section, _left) in enumerate(contexts):
        if not section:
            continue
        name, level = SECTIONS[section - 1], max(0, energy - 1)
        if spans and spans[-1].name == name and bar_in_section != 1 and spans[-1].start_bar + spans[-1].bars == bar:
            last = spans[-1]
            spans[-1] = SectionSpan(last.name, last.start_bar, last.bars + 1, last.energy)
        else:
            spans.append(SectionSpan(name, bar, 1, level))
    return spans


def song_score(song: DecodedSong, *, programs: dict[str, int], tempo: float, key: str | None,
               meter: tuple[int, int], roles: Sequence[str] = ROLES, title: str = "") -> Score:
    """A multi-track `Score` of a decoded song: one part per role in ``roles`` (named by its role, with its General
    MIDI program; drums on the drum channel), empty parts included so every asked track is there. Notes that
    would ring past the last bar end with it."""
    end = song.bars * bar_steps(meter) / STEPS_PER_BEAT
    parts = [Part(name=role, notes=[n if n.end <= end + 1e-9 else Note(n.pitch, n.start, end - n.start, n.velocity)
                                    for n in song.notes.get(role, [])],
                  program=int(programs.get(role, 0)), is_drum=role == "drums") for role in roles]
    return Score(parts=parts, tempo=float(tempo), key=key, time_signature=meter, title=title)


def remi_length(steps: np.ndarray) -> int:
    """How many tokens the same song takes as a flat REMI+ stream (MidiTok's layout: Bar; Position once per
    position with events; a chord token per chord; per note Program, Pitch, Velocity and, pitched notes only,
    Duration). The measurement that chose compound words (module docstring)."""
    count = 0
    last: tuple[int, int] | None = None
    bar = 0
    for row in np.asarray(steps):
        kind = int(row[COLUMN["kind"]])
        if kind == BAR:
            bar += 1
            count += 1
        elif kind in (CHORD, NOTE):
            where = (bar, int(row[COLUMN["position"]]))
            count += where != last
            last = where
            count += 1 if kind == CHORD else 3 + (int(row[COLUMN["track"]]) != DRUMS)
    return count
