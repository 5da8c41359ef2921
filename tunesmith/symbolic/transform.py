"""Score transforms: transpose, quantize, monophony checks, voice separation and bar windows.

Every function returns a new `Score`/`Part` and leaves its input untouched.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

from tunesmith.errors import ParameterError
from tunesmith.symbolic.keys import key_name, parse_key
from tunesmith.symbolic.score import Note, Part, Score

_EPS = 1e-6
MAX_STEPS_PER_BEAT = 96


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(f"{name} must be an integer {low}..{high}, got {value!r}", field=name)
    return value


def transpose(score: Score, semitones: int) -> Score:
    """Shift every pitched note by ``semitones`` (drum parts untouched) and re-spell the key."""
    _check_int(semitones, "semitones", -127, 127)
    parts = []
    for part in score.parts:
        if part.is_drum or semitones == 0:
            parts.append(replace(part, notes=list(part.notes)))
            continue
        notes = [replace(n, pitch=n.pitch + semitones) for n in part.notes]
        bad = next((n for n in notes if not 0 <= n.pitch <= 127), None)
        if bad is not None:
            raise ParameterError(
                f"transposing by {semitones} puts a note of part {part.name!r} at MIDI pitch {bad.pitch} "
                "(outside 0..127)",
                field="semitones",
            )
        parts.append(replace(part, notes=notes))
    return replace(score, parts=parts, key=_transposed_key(score.key, semitones))


def _transposed_key(key: str | None, semitones: int) -> str | None:
    if key is None:
        return None
    try:
        tonic, mode = parse_key(key)
    except ParameterError:
        return None  # an unparseable key name would be wrong after transposition
    return key_name((tonic + semitones) % 12, mode)


def _grid(value: float, steps_per_beat: int) -> int:
    """Nearest grid step (halves round up, unlike Python's banker's rounding)."""
    return math.floor(value * steps_per_beat + 0.5)


def quantize(score: Score, *, steps_per_beat: int = 4) -> Score:
    """Snap onsets and ends to a grid of ``steps_per_beat`` steps per quarter note.

    Notes keep at least one step; of several notes with the same pitch and onset in one part only the
    longest (loudest on ties) is kept.
    """
    _check_int(steps_per_beat, "steps_per_beat", 1, MAX_STEPS_PER_BEAT)
    return replace(score, parts=[quantize_part(p, steps_per_beat=steps_per_beat) for p in score.parts])


def quantize_part(part: Part, *, steps_per_beat: int = 4) -> Part:
    """`quantize` for one part."""
    _check_int(steps_per_beat, "steps_per_beat", 1, MAX_STEPS_PER_BEAT)
    best: dict[tuple[int, int], tuple[int, int]] = {}  # (pitch, start step) -> (end step, velocity)
    for note in part.notes:
        start = _grid(note.start, steps_per_beat)
        end = max(_grid(note.end, steps_per_beat), start + 1)
        key = (note.pitch, start)
        if key not in best or (end, note.velocity) > best[key]:
            best[key] = (end, note.velocity)
    notes = [
        Note(pitch, start / steps_per_beat, (end - start) / steps_per_beat, velocity)
        for (pitch, start), (end, velocity) in best.items()
    ]
    return replace(part, notes=notes).sorted()


def is_monophonic(part: Part) -> bool:
    """True if no two notes of the part sound at the same time (touching end/start is fine)."""
    notes = sorted(part.notes, key=lambda n: (n.start, n.pitch))
    return all(nxt.start >= prev.end - _EPS for prev, nxt in itertools.pairwise(notes))


def make_monophonic(part: Part, *, keep: str = "highest") -> Part:
    """Reduce a part to one line: of simultaneous onsets keep the highest (or ``"lowest"``) note and cut
    each note off where the next one starts ("skyline")."""
    if keep not in ("highest", "lowest"):
        raise ParameterError(f"keep must be 'highest' or 'lowest', got {keep!r}", field="keep")
    chosen: dict[float, Note] = {}
    for note in part.notes:
        current = chosen.get(note.start)
        sign = 1 if keep == "highest" else -1
        if current is None or sign * (note.pitch - current.pitch) > 0:
            chosen[note.start] = note
    line = [chosen[s] for s in sorted(chosen)]
    notes = []
    for i, note in enumerate(line):
        end = min(note.end, line[i + 1].start) if i + 1 < len(line) else note.end
        notes.append(replace(note, duration=end - note.start))
    return replace(part, notes=notes)


def split_voices(part: Part) -> list[Part]:
    """Greedy voice separation of a polyphonic part into monophonic parts (highest voice first).

    Onset by onset, the new notes (high to low) are matched to the voices that are free at that time
    (ordered by their last pitch) without crossing, minimising the total leap; notes left over open new
    voices. Chorale SATB merged into one part comes back mostly intact (voice crossings cannot).
    """
    voices: list[list[Note]] = []
    for onset_group in _onset_groups(part.notes):
        free = [v for v in voices if v[-1].end <= onset_group[0].start + _EPS]
        free.sort(key=lambda v: -v[-1].pitch)
        group = sorted(onset_group, key=lambda n: -n.pitch)
        if len(group) <= len(free):
            pairs = _ordered_match(group, free)
        else:
            pairs = [(n, v) for v, n in _ordered_match(free, group)]
        matched = set()
        for note, voice in pairs:
            voice.append(note)
            matched.add(id(note))
        voices.extend([n] for n in group if id(n) not in matched)
    voices.sort(key=lambda v: -sum(n.pitch for n in v) / len(v))
    if len(voices) <= 1:
        return [replace(part, notes=voices[0] if voices else [])]
    return [replace(part, name=f"{part.name} {i + 1}", notes=v) for i, v in enumerate(voices)]


def _onset_groups(notes: list[Note]) -> list[list[Note]]:
    groups: dict[float, list[Note]] = {}
    for note in notes:
        groups.setdefault(note.start, []).append(note)
    return [groups[start] for start in sorted(groups)]


def _pitch_of(item: Note | list[Note]) -> int:
    return item[-1].pitch if isinstance(item, list) else item.pitch


def _ordered_match(short: list, long: list) -> list[tuple]:
    """Order-preserving matching of every item of ``short`` to a distinct item of ``long`` (both sorted
    high to low) with the least total pitch distance (dynamic programming)."""
    n, m = len(short), len(long)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    cost[0] = [0.0] * (m + 1)
    for i in range(1, n + 1):
        for j in range(i, m + 1):
            take = cost[i - 1][j - 1] + abs(_pitch_of(short[i - 1]) - _pitch_of(long[j - 1]))
            cost[i][j] = min(take, cost[i][j - 1])
    pairs = []
    i, j = n, m
    while i > 0:
        if cost[i][j] == cost[i][j - 1] and j - 1 >= i:
            j -= 1
            continue
        pairs.append((short[i - 1], long[j - 1]))
        i, j = i - 1, j - 1
    return pairs[::-1]


def trim_to_bars(score: Score, *, start_bar: int = 0, n_bars: int) -> Score:
    """The window of ``n_bars`` bars from ``start_bar`` (0-based), moved to beat 0.

    Notes starting inside the window are kept, their ends clipped to the window; notes starting before
    it are dropped. Parts keep their order even when they become empty.
    """
    _check_int(start_bar, "start_bar", 0, 10**6)
    _check_int(n_bars, "n_bars", 1, 10**6)
    begin = start_bar * score.bar_beats
    stop = begin + n_bars * score.bar_beats
    parts = []
    for part in score.parts:
        notes = [
            Note(n.pitch, n.start - begin, min(n.end, stop) - n.start, n.velocity)
            for n in part.notes
            if begin - _EPS <= n.start < stop - _EPS
        ]
        parts.append(replace(part, notes=notes))
    return replace(score, parts=parts)
