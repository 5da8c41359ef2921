"""Sampling a song step by step with the constraints a user expects, enforced while sampling:

* the bar count and the meter: bars are opened by the plan, positions stay inside the bar (and on the triplet
  grid when 12/8 is asked), events move forward in time in the order the model learned;
* the model's own chords are those the training songs play in the key (the card's ``harmony``: degree and
  quality above the tonic, e.g. V7 or bVII in a major key), so the harmony stays in the key;
* the lead plays one note at a time (one note per position; the facade cuts a note where the next begins), and,
  as in every training song, enters with the intro's last bar (a melody's pickup) and rests in the outro
  (`lead_resting_bars`); a kept lead (a melody to arrange) plays where it is given;
* each track plays only where it is asked (the ``tracks`` subset), pitched notes only inside their role's
  range and on the key's scale or the chord sounding (minor keys: also the raised sixth and seventh), drums
  only on the drum keys the model learned;
* the accompaniment (bass, chords, pad) starts only tones of the chord sounding on a strong beat (the downbeat,
  and the middle of 4/4, 2/2, 6/8 and 12/8 bars), as a player does; passing tones fall between;
* given chords (a chord per bar of a later verse, of a loop's second time, or a harmony to follow) are written
  at their places instead of the model's own;
* bars that replay an earlier bar (later choruses) are fed to the model in one chunk, not sampled;
* the rhythm section does not drop out: in a verse, chorus or bridge, a bar in which an asked drum or bass track
  stays silent for the second bar running is drawn again (up to `REDRAWS` times, the draw with the fewest silent
  tracks kept). In the training songs' body sections these two are almost never silent two bars running (0.0 %
  and 0.4 % of bars); sampled freely, a track that misses one bar can stay out for the rest of the song, because
  the model then continues a song without it (docs/models.md);
* with a copy guard (`tunesmith.provenance.song_copy_guard.CopyGuard`, given when the training tracks are
  indexed), a bar that makes a sampled pitched track run on along a training track past the originality gate is
  drawn again the same way, up to `COPY_REDRAWS` times (the draw with the fewest silent and copying tracks
  kept): a style's ostinato (a techno bass pumping one note) is copied by most draws, so it takes more tries,
  and its redraws after the first `REDRAWS` redraws are drawn `COPY_HEAT` times hotter and note by note: a
  note that would end a copied run (`CopyGuard.note_copies`) is drawn again without that (track, key) value
  (up to `NOTE_REDRAWS` times), so the model varies its ostinato where it would copy;
* the input modes (`tunesmith.compose.song.SongWriter.generate_from`): whole bars given (the song to continue)
  are fed as they are, and the notes of kept tracks (a melody to arrange, the tracks a regenerated one plays
  with) are written at their places while the other tracks are sampled around them: each draw of the model is
  a note of a sampled track before the next kept note (an earlier position, or the same position and a lower
  track/key), or anything else (a later note, the end of the bar, a note of a kept track), which writes the kept
  note instead; so the model plays as densely as it would, and every kept note is written, note for note.

Each field is drawn with temperature and nucleus sampling (`tunesmith.compose.sampling.sample_token`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tunesmith.compose.sampling import sample_token
from tunesmith.compose.song_plan import SongPlan
from tunesmith.models.song import SongStepper
from tunesmith.symbolic.harmony import QUALITIES
from tunesmith.symbolic.keys import scale_pitch_classes
from tunesmith.symbolic.score import strong_beats
from tunesmith.symbolic.song_tokens import (
    BAR,
    BOS,
    CHORD,
    COLUMN,
    CONTEXT,
    CONTEXT_START,
    DRUM_OFFSET,
    DRUMS,
    EOS,
    HEAD_SIZES,
    N_QUALITIES,
    N_VELOCITIES,
    NOTE,
    PHASE_CAP,
    QUALITY_NAMES,
    ROLES,
    SIZES,
    STEPS_PER_BEAT,
    WHEN_CHORD,
    WHEN_NOTE,
    bar_steps,
    chord_row,
    section_context,
    step_row,
)

MAX_EVENTS_PER_BAR = 192
LEAD = 1 + ROLES.index("lead")
CHORD_TONE_ROLES = ("bass", "chords", "pad")  # play chord tones on strong beats
TRIPLET = STEPS_PER_BEAT // 3
STEADY_TRACKS = tuple(1 + ROLES.index(role) for role in ("drums", "bass"))  # never silent two body bars running
BODY_SECTIONS = ("verse", "chorus", "bridge")
REDRAWS = 2  # draws again of a bar in which a steady track stays silent a second bar running
COPY_REDRAWS = 6  # ... and of a bar that makes a track copy a training track (styles' ostinatos need more)
COPY_HEAT = 1.3  # the temperature of a copying bar's redraws after the first `REDRAWS` redraws, times the song's
REPLAY_LOOKAHEAD = 2  # replayed bars after a sampled bar (or a replay of it) that its copy check reads
NOTE_REDRAWS = 4  # pitches struck from one note of those redraws, each because it would end a copied run


@dataclass
class Constraints:
    """What the sampler may write: the meter's grid, the tracks, pitch ranges per role, the key, drum keys."""

    meter: tuple[int, int]
    tracks: Sequence[str]
    role_ranges: dict[str, Sequence[int]]
    drum_keys: Sequence[int]
    tonic: int
    mode: str
    harmony: Sequence[Sequence] = ()  # (degree, quality, share) the model may choose in this mode; () = any chord
    triplets: bool = False
    kept_tracks: Sequence[str] = ()  # tracks of the input written as they are: the model never samples their notes
    per_bar: int = field(init=False)

    def __post_init__(self) -> None:
        self.per_bar = bar_steps(self.meter)
        self.sampled_values = np.ones(len(ROLES) * 128, dtype=bool)  # (track, key) values the model may write
        for role in self.kept_tracks:
            self.sampled_values[ROLES.index(role) * 128:(ROLES.index(role) + 1) * 128] = False
        self.track_values = np.array(sorted(1 + ROLES.index(t) for t in self.tracks), dtype=np.int64)
        scale = set(scale_pitch_classes(self.tonic, self.mode))
        if self.mode == "minor":
            scale |= {(self.tonic + 9) % 12, (self.tonic + 11) % 12}
        self.scale = scale
        self._bases: dict[int, np.ndarray] = {}  # per track value: the MIDI keys it may play
        for value in self.track_values:
            base = np.zeros(128, dtype=bool)
            role = ROLES[value - 1]
            if role == "drums":
                base[[k for k in self.drum_keys if 0 <= k < 128]] = True
            else:
                low, high = self.role_ranges.get(role, (0, 127))
                base[int(low):int(high) + 1] = True
            self._bases[int(value)] = base
        self._cache: dict[tuple[int, int, int, bool], np.ndarray] = {}
        self._what: dict[tuple[int, int, bool, frozenset[int]], np.ndarray] = {}
        self._last_what: dict[tuple[int, int, bool, frozenset[int]], int] = {}
        self.strong = np.zeros(SIZES["position"], dtype=bool)  # by position field value (1 = the downbeat)
        for beat in strong_beats(self.per_bar / STEPS_PER_BEAT, self.meter):
            self.strong[1 + round(beat * STEPS_PER_BEAT)] = True
        positions = np.zeros(SIZES["position"] - 1, dtype=bool)
        positions[:self.per_bar] = True
        if self.triplets:
            positions[np.arange(SIZES["position"] - 1) % TRIPLET != 0] = False
        self.positions = positions
        self.chords = np.zeros(12 * len(QUALITY_NAMES), dtype=bool)  # chord head: degree * qualities + quality
        for degree, quality, *_ in self.harmony:
            if quality in QUALITY_NAMES:
                self.chords[int(degree) % 12 * len(QUALITY_NAMES) + QUALITY_NAMES.index(quality)] = True
        if not self.chords.any():
            self.chords[:] = True

    def pitches(self, track: int, chord: tuple[int, int], strong: bool = False) -> np.ndarray:
        """The MIDI keys (128,) ``track`` may play over ``chord`` (root, quality field values); ``strong``: a
        note starting on a strong beat (the accompaniment then plays a chord tone)."""
        key = (track, *chord, strong)
        if key not in self._cache:
            base = self._bases[track].copy()
            if track != DRUMS:
                tones = {(chord[0] - 1 + i) % 12 for i in QUALITIES[QUALITY_NAMES[chord[1] - 1]]} if chord[0] else set()
                classes = tones if strong and tones and ROLES[track - 1] in CHORD_TONE_ROLES else self.scale | tones
                base &= np.isin(np.arange(128) % 12, list(classes))
            self._cache[key] = base
        return self._cache[key]

    def what(self, chord: tuple[int, int], position: int = 0, resting: frozenset[int] = frozenset()) -> np.ndarray:
        """The (track, key) values (track - 1) * 128 + key the tracks may play over ``chord`` at ``position``
        (its field value; 0: anywhere), the ``resting`` track values left out."""
        key = (*chord, bool(self.strong[position]), resting)
        if key not in self._what:
            mask = np.zeros(len(ROLES) * 128, dtype=bool)
            for track in self.track_values:
                if int(track) not in resting:
                    mask[(track - 1) * 128:track * 128] = self.pitches(int(track), chord, key[2])
            self._what[key] = mask
            self._last_what[key] = int(np.flatnonzero(mask)[-1]) if mask.any() else -1
        return self._what[key]

    def last_what(self, chord: tuple[int, int], position: int = 0, resting: frozenset[int] = frozenset()) -> int:
        """The highest (track, key) value allowed over ``chord`` at ``position`` (-1: none)."""
        self.what(chord, position, resting)
        return self._last_what[(*chord, bool(self.strong[position]), resting)]


class BarGuard(Protocol):
    """What the sampler asks of a copy guard: the tracks a bar would make copy, and each bar as written."""

    def copied(self, bar: int, block: np.ndarray, after: Sequence[Sequence[np.ndarray]] = ()) -> set[int]: ...

    def accept(self, bar: int, block: np.ndarray) -> None: ...

    def redrew(self) -> None: ...

    def note_copies(self, bar: int, rows: np.ndarray, track: int) -> bool: ...


@dataclass
class Written:
    """The steps of a song as sampled, the rows of each bar, and how many steps were sampled and copied."""

    steps: np.ndarray
    bar_rows: dict[int, np.ndarray]
    sampled: int
    copied: int
    struck: int = 0  # notes drawn again because they would have ended a copied run (the copy guard)


class SongSampler:
    """Writes a `SongPlan` with a `SongStepper` (already started with the song's conditioning)."""

    def __init__(self, stepper: SongStepper, constraints: Constraints, *, rng: np.random.Generator,
                 temperature: float = 1.0, top_p: float = 0.95, guard: BarGuard | None = None) -> None:
        self.stepper = stepper
        self.guard = guard
        self.c = constraints
        self.rng = rng
        self.temperature = temperature
        self.top_p = top_p
        self.sampled = 0  # steps the model wrote
        self.copied = 0  # steps replayed from earlier bars
        self.draws = 0
        self.resting: frozenset[int] = frozenset()  # track values the bar being written leaves silent
        self.guarded_bar: int | None = None  # the bar whose notes the guard checks one by one (`_uncopied`)
        self.struck = 0  # notes drawn again because they would have ended a copied run
        self._drum_how = np.zeros(HEAD_SIZES["how"], dtype=bool)
        self._drum_how[:N_VELOCITIES] = True  # a drum hit has no duration
        self._pitched_how = ~self._drum_how

    def write(self, plan: SongPlan, given_chords: dict[int, list[tuple[int, int, int]]] | None = None, *,
              given_bars: dict[int, np.ndarray] | None = None,
              kept: dict[int, list[np.ndarray]] | None = None,
              on_bar: Callable[[int, np.ndarray], None] | None = None) -> Written:
        """Every bar of ``plan`` (``given_chords``: bar -> chord events (position, root, quality) to follow;
        ``given_bars``: bar -> its rows, fed as they are; ``kept``: bar -> NOTE rows of kept tracks, in step order,
        written among the sampled ones; ``on_bar(bar, rows)`` is told of each bar as soon as it is written)."""
        contexts = section_context(plan.sections, plan.bars)
        body = {span.start_bar + k for span in plan.sections if span.name in BODY_SECTIONS for k in range(span.bars)}
        given_bars, kept = given_bars or {}, kept or {}
        sampled_lead = LEAD in self.c.track_values and "lead" not in self.c.kept_tracks
        lead_rests = lead_resting_bars(plan, given=set(given_bars)) \
            if sampled_lead and len(self.c.track_values) > 1 else set()  # a lead alone plays throughout
        steady = [t for t in STEADY_TRACKS if t in self.c.track_values and ROLES[t - 1] not in self.c.kept_tracks]
        silent_before: set[int] = set()  # steady tracks silent in the bar before
        if plan.open_end:
            contexts[:, CONTEXT.index("bars_left")] = PHASE_CAP
        rows: list[np.ndarray] = [step_row(BOS)]
        h = self.stepper.feed(rows[0])
        bar_rows: dict[int, np.ndarray] = {}
        bar = 0
        while bar < plan.bars:
            if bar in given_bars or bar in plan.copy_from:
                source = given_bars if bar in given_bars else None
                run = [bar]
                while run[-1] + 1 < plan.bars and (run[-1] + 1 in given_bars if source is not None
                                                   else run[-1] + 1 in plan.copy_from):
                    run.append(run[-1] + 1)
                chunk = [self._with_context(given_bars[b] if source is not None else bar_rows[plan.copy_from[b]],
                                            contexts[b]) for b in run]
                for b, block in zip(run, chunk, strict=True):
                    bar_rows[b] = block
                    if self.guard is not None and source is None:  # a user's bars start no run
                        self.guard.accept(b, block)
                    if on_bar is not None:
                        on_bar(b, block)
                h = self.stepper.feed(np.concatenate(chunk))
                self.copied += sum(len(block) for block in chunk)
                rows.extend(np.concatenate(chunk))
                bar = run[-1] + 1
                silent_before = set(steady) - played_tracks(chunk[-1])
                continue
            forced = None
            if given_chords is not None and bar in given_chords:
                forced = list(given_chords[bar])
            elif bar in plan.chords_from:
                forced = chord_events(bar_rows[plan.chords_from[bar]])
            expected = silent_before if bar in body and bar - 1 in body else set()
            self.resting = frozenset({LEAD}) if bar in lead_rests else frozenset()
            replays = [[None if b == bar else bar_rows[b] for b in run]
                       for run in replays_after(bar, plan.copy_from, given_bars)] if self.guard is not None else []
            block, h = self._steady_bar(h, bar, contexts[bar], forced, kept.get(bar), expected, replays)
            silent_before = set(steady) - played_tracks(block)
            bar_rows[bar] = block
            if self.guard is not None:
                self.guard.accept(bar, block)
            if on_bar is not None:
                on_bar(bar, block)
            rows.extend(block)
            bar += 1
        self.resting = frozenset()
        rows.append(step_row(EOS))
        return Written(np.stack(rows), bar_rows, self.sampled, self.copied, self.struck)

    def _steady_bar(self, h: np.ndarray, bar: int, context: np.ndarray, forced: list[tuple[int, int, int]] | None,
                    kept: list[np.ndarray] | None, expected: set[int],
                    replays: Sequence[Sequence[np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray]:
        """`bar`, drawn again (up to `REDRAWS` times) while a track of ``expected`` (silent in the bar before)
        plays nothing in it or (up to `COPY_REDRAWS` times), with a guard, a track copies a training track past
        the gate in it or in the replayed bars that follow it or a replay of it (``replays``: their rows per
        place, None for this bar; `replays_after`); the draw with the fewest such tracks is kept."""
        start_length, start_sampled = self.stepper.length, self.sampled
        draws: list[tuple[int, np.ndarray, np.ndarray, int]] = []  # (tracks amiss, rows, state, sampled)
        for attempt in range(1 + max(REDRAWS, COPY_REDRAWS)):
            if attempt:
                self.stepper.rewind(start_length)
                self.sampled = start_sampled
            temperature = self.temperature
            if attempt > REDRAWS:  # only a copying bar is drawn this often: an ostinato takes a bolder draw,
                self.temperature = temperature * COPY_HEAT  # its notes checked as they are drawn
                self.guarded_bar = bar
            try:
                block, h_after = self.bar(h, context, list(forced) if forced is not None else None, kept)
            finally:
                self.temperature, self.guarded_bar = temperature, None
            copying = guard.copied(bar, block, [[block if rows is None else rows for rows in run] for run in replays]) \
                if (guard := self.guard) is not None else set()
            draws.append((len(expected - played_tracks(block)) + len(copying), block, h_after, self.sampled))
            if not draws[-1][0] or attempt >= (COPY_REDRAWS if copying else REDRAWS):
                break
            if guard is not None and copying:
                guard.redrew()
        best = min(range(len(draws)), key=lambda i: draws[i][0])  # the first of the fewest
        _, block, h_after, self.sampled = draws[best]
        if best != len(draws) - 1:  # the model's cache holds the last draw: feed the kept one instead
            self.stepper.rewind(start_length)
            h_after = self.stepper.feed(block)
        return block, h_after

    @staticmethod
    def _with_context(block: np.ndarray, context: np.ndarray) -> np.ndarray:
        out = block.copy()
        out[:, CONTEXT_START:] = context
        return out

    def _feed(self, row: np.ndarray, out: list[np.ndarray]) -> np.ndarray:
        out.append(row)
        self.sampled += 1
        return self.stepper.feed(row)

    def bar(self, h: np.ndarray, context: np.ndarray, forced: list[tuple[int, int, int]] | None,
            kept: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One bar: its BAR step, the chord at the bar line, then events until the model closes the bar; ``kept``:
        NOTE rows of kept tracks (step order) written where they fall, the model's notes sampled around them."""
        out: list[np.ndarray] = []
        pending = [self._with_context(row[None], context)[0] for row in kept or ()]
        h = self._feed(step_row(BAR, context), out)
        if forced and forced[0][0] == 0:
            _, root, quality = forced.pop(0)
        else:  # the model's own chord (also when a given change comes later in the bar)
            root, quality = self._chord(self._when_input(h, CHORD, 1))
        h = self._feed(chord_row(0, root, quality, tonic=self.c.tonic, context=context), out)
        chord = (root, quality)
        last_position, last_what = 1, -1  # the last note's (track, key) value at last_position, -1: none yet
        while len(out) + len(pending) < MAX_EVENTS_PER_BAR:
            when = self._when_mask(last_position, last_what, chord, chords=forced is None)
            if pending:
                keep_position, keep_what = kept_place(pending[0])
                when[WHEN_NOTE + keep_position - 1] = True
            value = self._draw("when", h, when)
            kind = CHORD if WHEN_CHORD <= value < WHEN_NOTE else NOTE
            position = 1 + value - (WHEN_CHORD if kind == CHORD else WHEN_NOTE)
            if pending and (value < WHEN_CHORD or position > keep_position):  # what the model would write after
                h, chord = self._write_kept(pending.pop(0), forced, chord, context, out)  # the kept note comes first
                last_position, last_what = keep_position, keep_what
                continue
            if value < WHEN_CHORD:  # the bar is done
                break
            if kind == NOTE and forced and forced[0][0] + 1 <= position:  # a given chord change comes first
                change = forced.pop(0)
                h = self._feed(chord_row(*change, tonic=self.c.tonic, context=context), out)
                chord, last_position, last_what = change[1:], change[0] + 1, -1
                continue
            z = self._when_input(h, kind, position)
            if kind == CHORD:
                root, quality = self._chord(z)
                h = self._feed(chord_row(position - 1, root, quality, tonic=self.c.tonic, context=context), out)
                chord, last_position, last_what = (root, quality), position, -1
                continue
            if position != last_position:
                last_what = -1
            allowed = self._what_mask(last_what, chord, position)
            at_kept = bool(pending) and position == keep_position
            if at_kept:
                allowed = allowed.copy()
                allowed[keep_what] = True
            elif not pending and self.c.kept_tracks:  # after the bar's last kept note: only the sampled tracks
                allowed = allowed & self.c.sampled_values
                if not allowed.any():  # no sampled note fits at this position: the bar is done
                    break
            what = self._draw("what", z, allowed)
            if pending and ((at_kept and what >= keep_what) or not self.c.sampled_values[what]):
                # the kept note, one the model would write after it, or a note of a kept track: the kept note
                h, chord = self._write_kept(pending.pop(0), forced, chord, context, out)
                last_position, last_what = keep_position, keep_what
                continue
            row = self._note(z, what, position, context)
            if self.guarded_bar is not None and not pending:
                row, what = self._uncopied(out, row, what, z, allowed, position, context)
            h = self._feed(row, out)
            last_position, last_what = position, what
        for row in pending:  # kept notes after the bar's room for events ran out
            h, chord = self._write_kept(row, forced, chord, context, out)
        for change in forced or ():  # given changes the model did not reach
            h = self._feed(chord_row(*change, tonic=self.c.tonic, context=context), out)
        return np.stack(out), h

    def _note(self, z: np.ndarray, what: int, position: int, context: np.ndarray) -> np.ndarray:
        """The NOTE row of (track, key) value ``what`` at ``position``, its duration and velocity drawn."""
        track, key = 1 + what // 128, what % 128
        pitch = 1 + key + (DRUM_OFFSET if track == DRUMS else 0)
        how_mask = self._drum_how if track == DRUMS else self._pitched_how
        how = self._draw("how", self.stepper.add(self.stepper.add(z, "track", track), "pitch", pitch), how_mask)
        duration, velocity = divmod(how, N_VELOCITIES)
        return step_row(NOTE, context, position=position, track=track, pitch=pitch, duration=duration,
                        velocity=1 + velocity)

    def _uncopied(self, out: list[np.ndarray], row: np.ndarray, what: int, z: np.ndarray, allowed: np.ndarray,
                  position: int, context: np.ndarray) -> tuple[np.ndarray, int]:
        """(row, what) of a note that ends no copied run: while the guard finds that the drawn note makes a run
        end on a note of its track at ``position``, its value is struck and the model draws again from what is
        left (`NOTE_REDRAWS` times at most; then the last draw stands and the bar's own check judges it)."""
        guard, bar = self.guard, self.guarded_bar
        assert guard is not None and bar is not None
        for _ in range(NOTE_REDRAWS):
            if not guard.note_copies(bar, np.stack([*out, row]), 1 + what // 128):
                break
            allowed = allowed.copy()
            allowed[what] = False
            if not allowed.any():
                break
            self.struck += 1
            what = self._draw("what", z, allowed)
            row = self._note(z, what, position, context)
        return row, what

    def _write_kept(self, row: np.ndarray, forced: list[tuple[int, int, int]] | None, chord: tuple[int, int],
                    context: np.ndarray, out: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
        """Write a kept note as it is (counted as copied, not sampled), after the given chord changes at or before
        its position; (the hidden state, the chord sounding)."""
        position = kept_place(row)[0]
        while forced and forced[0][0] + 1 <= position:
            change = forced.pop(0)
            self._feed(chord_row(*change, tonic=self.c.tonic, context=context), out)
            chord = change[1:]
        out.append(row)
        self.copied += 1
        return self.stepper.feed(row), chord

    def _when_input(self, h: np.ndarray, kind: int, position: int) -> np.ndarray:
        """What the chord and what heads read: the hidden state, the kind and the position."""
        return self.stepper.add(self.stepper.add(h, "kind", kind), "position", position)

    def _chord(self, z: np.ndarray) -> tuple[int, int]:
        """(root, quality) field values of the chord the chord head draws (as a degree above the tonic)."""
        value = self._draw("chord", z, self.c.chords)
        degree, quality = divmod(value, N_QUALITIES)
        return 1 + (self.c.tonic + degree) % 12, 1 + quality

    def _when_mask(self, last_position: int, last_what: int, chord: tuple[int, int], *,
                   chords: bool) -> np.ndarray:
        """Ending the bar, a chord change (``chords``: the model writes its own) at a later position, or a note at
        a later position or at this one while a (track, key) after ``last_what`` may still play here."""
        mask = np.zeros(HEAD_SIZES["when"], dtype=bool)
        mask[:2] = True
        later = self.c.positions.copy()
        later[:last_position] = False  # positions after the last one (index = value - 1)
        if chords:
            mask[WHEN_CHORD:WHEN_NOTE] = later
        if self.c.last_what(chord, 0, self.resting) >= 0:  # some track may play (not all of them resting)
            mask[WHEN_NOTE:] = later
        if self.c.last_what(chord, last_position, self.resting) >= (self._after(last_what) if last_what >= 0 else 0):
            mask[WHEN_NOTE + last_position - 1] = True
        return mask

    def _what_mask(self, last_what: int, chord: tuple[int, int], position: int) -> np.ndarray:
        """(track, key) values a note at ``position`` may take: its track's keys, after the last note of this
        position (the order of notes at one position, by track then key, is the order of the values)."""
        mask = self.c.what(chord, position, self.resting)
        if last_what >= 0:
            mask = mask.copy()
            mask[:self._after(last_what)] = False
        return mask

    @staticmethod
    def _after(last_what: int) -> int:
        """The first (track, key) value that may follow ``last_what`` at the same position: the next key, or the
        next track after a lead note (the lead plays one note at a time)."""
        track = last_what // 128 + 1
        return track * 128 if track == LEAD else last_what + 1

    def _draw(self, name: str, z: np.ndarray, allowed: np.ndarray) -> int:
        self.draws += 1
        return sample_token(self.stepper.logits(name, z), allowed=allowed, temperature=self.temperature,
                            top_p=self.top_p, rng=self.rng)


def replays_after(bar: int, copy_from: Mapping[int, int], given: Collection[int] = ()) -> list[list[int]]:
    """The bars replayed right after ``bar`` is played, at most `REPLAY_LOOKAHEAD` of them, as the bars they replay:
    after ``bar`` itself and after each replay of it that continues a replay of the bar before (a chorus played
    twice running: its last bar, replayed, runs into its first). A run into them is ``bar``'s to break: the
    replayed bars are fed as they are. Only bars written by then count (up to ``bar``: a replay followed by the
    replay of the bar after ``bar`` plays what ``bar`` and that bar play, checked when that bar is written).
    ``given`` bars (a user's) are not replays."""
    places = [bar, *(r for r, source in copy_from.items()
                     if source == bar and r not in given and r - 1 in copy_from and copy_from[r - 1] == bar - 1)]
    runs: list[list[int]] = []
    for place in places:
        run: list[int] = []
        while (after := place + 1 + len(run)) in copy_from and after not in given and len(run) < REPLAY_LOOKAHEAD \
                and copy_from[after] <= bar:
            run.append(copy_from[after])
        if run and run not in runs:
            runs.append(run)
    return runs


def lead_resting_bars(plan: SongPlan, given: frozenset[int] | set[int] = frozenset()) -> set[int]:
    """The bars in which the lead stays silent, as it does in every training song: the intro but its last bar
    (where a melody's pickup may start) and the outro (bars of the plan: the model's 4/4 bars of a 2/4 song). In
    the grooves corpus's held-out songs the lead plays in none of the earlier intro bars (0 of 909) and in no
    outro beat, and in most last intro bars (196 of 271). An intro with ``given`` bars (a song being continued)
    is the user's: the lead plays on in it."""
    bars: set[int] = set()
    for span in plan.sections:
        if span.name == "intro" and not given & set(range(span.start_bar, span.start_bar + span.bars)):
            bars.update(range(span.start_bar, span.start_bar + span.bars - 1))
        elif span.name == "outro":
            bars.update(range(span.start_bar, span.start_bar + span.bars))
    return bars


def played_tracks(block: np.ndarray) -> set[int]:
    """The track values with a note in a bar's rows."""
    return {int(t) for t in block[block[:, COLUMN["kind"]] == NOTE, COLUMN["track"]]}


def kept_place(row: np.ndarray) -> tuple[int, int]:
    """(position field, "what" value (track - 1) * 128 + MIDI key) of a NOTE row."""
    track, pitch = int(row[COLUMN["track"]]), int(row[COLUMN["pitch"]])
    return int(row[COLUMN["position"]]), (track - 1) * 128 + (pitch - 1) % 128


def chord_events(block: np.ndarray) -> list[tuple[int, int, int]]:
    """The chord events (position, root, quality) of a bar's rows, positions from 0."""
    chords = block[block[:, COLUMN["kind"]] == CHORD]
    return [(int(r[COLUMN["position"]]) - 1, int(r[COLUMN["root"]]), int(r[COLUMN["quality"]])) for r in chords]
