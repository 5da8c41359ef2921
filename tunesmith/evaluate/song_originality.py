"""Originality of generated songs, per track: the longest run shared with a training record's track of that role.

Two measures, both against the training split with every record's tracks merged by band role (as the model reads
them) and put on the song grid as the model writes it (starts on 1/12 beat, durations in the token bins, drum
hits a sixteenth long), so a line copied from a training record is found as the model would write it:

* **notes**: the composers' measure and gate (`tunesmith.provenance.originality`: a voice as (interval, duration)
  steps, so in any key; flagged over `ORIGINALITY_THRESHOLD` notes), here per track;
* **bars**: the longest run of consecutive bars whose contents (onset positions, durations and pitches relative
  to the bar's lowest note, drums as they are) and the moves between them match a training track's bars, in any
  transposition; an empty bar ends a run.

Runs are found by binary search on their length over hashed windows (NumPy), like `SymbolicIndex` but fast enough
for the corpus's millions of notes; `tests/test_song_eval.py` checks it agrees with `SymbolicIndex`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tunesmith.provenance.gate import ORIGINALITY_THRESHOLD
from tunesmith.provenance.originality import voice_steps
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.song_tokens import DRUM_LENGTH, DURATION_BINS, STEPS_PER_BEAT, duration_bin

MAX_RUN = 256
_P = np.uint64(0x100000001B3)
_M = np.uint64(0x9E3779B97F4A7C15)
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))


def grid_notes(notes: Iterable[Note], *, drum: bool) -> list[Note]:
    """Notes as the song model writes them: starts on the grid, durations in the bins (drums a sixteenth)."""
    out = []
    for n in notes:
        start = round(n.start * STEPS_PER_BEAT) / STEPS_PER_BEAT
        steps = DRUM_LENGTH if drum else DURATION_BINS[duration_bin(n.duration * STEPS_PER_BEAT)]
        out.append(Note(n.pitch, start, steps / STEPS_PER_BEAT, n.velocity))
    return sorted(set(out), key=lambda n: (n.start, n.pitch))


def _scramble(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64)
        x = (x ^ (x >> np.uint64(31))) * _M
        return x ^ (x >> np.uint64(29))


def note_tokens(notes: Sequence[Note]) -> np.ndarray:
    """A voice's (interval, duration) steps after the first note (`voice_steps`) as integers."""
    steps = voice_steps(Score(parts=[Part(name="v", notes=list(notes))]))[0][1:]
    return np.array([(iv + 512) * 1_000_003 + round(d * 1000) for iv, d in steps], dtype=np.int64)


def bar_tokens(notes: Sequence[Note], bar_beats: float, bars: int, *,
               drum: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """The non-empty stretches of a track's bars, each as (first, rest) tokens: ``first`` a bar's contents alone
    (a run's first bar), ``rest`` its contents with the move of its lowest note from the bar before."""
    contents: list[tuple | None] = [None] * bars
    by_bar: dict[int, list[Note]] = {}
    for n in notes:
        bar = int(n.start // bar_beats + 1e-9)
        if 0 <= bar < bars:
            by_bar.setdefault(bar, []).append(n)
    lows = [0] * bars
    for bar, items in by_bar.items():
        low = 0 if drum else min(n.pitch for n in items)
        lows[bar] = low
        contents[bar] = tuple(sorted((round((n.start - bar * bar_beats) * STEPS_PER_BEAT), n.pitch - low,
                                      round(n.duration * STEPS_PER_BEAT)) for n in items))
    stretches, current = [], []
    for bar in range(bars + 1):
        if bar < bars and contents[bar] is not None:
            current.append(bar)
            continue
        if current:
            first = [hash(contents[b]) for b in current]
            rest = [hash((contents[b], lows[b] - lows[b - 1])) for b in current]
            stretches.append((np.array(first, dtype=np.int64), np.array(rest, dtype=np.int64)))
            current = []
    return stretches


class RunIndex:
    """Training sequences of integer tokens; ``longest(first, rest)`` is the longest window a query shares with
    one of them (a window's first token compared by ``first``, the others by ``rest``)."""

    def __init__(self, sequences: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> None:
        self.ids = [sid for sid, _, _ in sequences]
        self.owner = np.concatenate([np.full(len(f), i) for i, (_, f, _) in enumerate(sequences)] or [[]])
        self.first = _scramble(np.concatenate([f for _, f, _ in sequences] or [[]]).astype(np.int64))
        self.rest = _scramble(np.concatenate([r for _, _, r in sequences] or [[]]).astype(np.int64))
        ends = np.cumsum([len(f) for _, f, _ in sequences])
        self.end = np.repeat(ends, [len(f) for _, f, _ in sequences])  # each token's sequence end
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def _windows(first: np.ndarray, rest: np.ndarray, length: int, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of every window of ``length`` tokens that stays inside its sequence, and their starts: the
        window's first token from ``first``, the others (a polynomial hash, the same wherever it stands) from
        ``rest``."""
        n = len(first)
        starts = np.nonzero(np.arange(n) + length <= end)[0]
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n, _P, dtype=np.uint64)]), dtype=np.uint64)
            inverse = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n, _P_INVERSE, dtype=np.uint64)]),
                                 dtype=np.uint64)
            sums = np.concatenate([[np.uint64(0)], np.cumsum(rest * inverse[:n], dtype=np.uint64)])
            a, b = starts + 1, starts + length  # rest[a:b], moved to position 0
            inner = (sums[b] - sums[a]) * powers[a]
            return _scramble(first[starts] ^ _scramble(inner + np.uint64(length))), starts

    def _table(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        if length not in self._tables:
            hashes, starts = self._windows(self.first, self.rest, length, self.end)
            order = np.argsort(hashes)
            self._tables[length] = (hashes[order], starts[order])
        return self._tables[length]

    def shared(self, first: np.ndarray, rest: np.ndarray, length: int) -> str | None:
        """The id of a training sequence sharing a window of ``length`` tokens with the query, or None."""
        query, _ = self._windows(_scramble(first), _scramble(rest), length, np.full(len(first), len(first)))
        if not len(query) or not len(self.first):
            return None
        table, starts = self._table(length)
        at = np.clip(np.searchsorted(table, query), 0, len(table) - 1)
        hits = np.nonzero(table[at] == query)[0]
        return self.ids[int(self.owner[starts[at[hits[0]]]])] if len(hits) else None

    def longest(self, first: np.ndarray, rest: np.ndarray, *, cap: int = MAX_RUN) -> tuple[int, str | None]:
        """The longest window the query shares with a training sequence, and that sequence's id."""
        return self.longest_many([(first, rest)], cap=cap)[0]

    def longest_many(self, queries: Sequence[tuple[np.ndarray, np.ndarray]], *,
                     cap: int = MAX_RUN) -> list[tuple[int, str | None]]:
        """`longest` of many queries at once: their binary searches share each window length's table."""
        low = [0] * len(queries)
        high = [min(cap, len(first)) for first, _ in queries]
        source: list[str | None] = [None] * len(queries)
        while True:
            asked: dict[int, list[int]] = {}
            for q in range(len(queries)):
                if low[q] < high[q]:
                    asked.setdefault((low[q] + high[q] + 1) // 2, []).append(q)
            if not asked:
                break
            for mid, items in sorted(asked.items()):
                for q in items:
                    hit = self.shared(*queries[q], mid)
                    if hit is not None:
                        low[q], source[q] = mid, hit
                    else:
                        high[q] = mid - 1
                self._tables.pop(mid, None)
        return list(zip(low, source, strict=True))


@dataclass
class TrackIndex:
    """Per band role, the training tracks as note runs and as bar runs."""

    notes: dict[str, RunIndex]
    bars: dict[str, RunIndex]

    @classmethod
    def build(cls, songs: Iterable[tuple[str, dict[str, list[Note]], float, int]]) -> TrackIndex:
        """``songs``: (record id, notes by band role, bar length in beats, bars)."""
        notes: dict[str, list] = {}
        bars: dict[str, list] = {}
        for sid, by_role, bar_beats, count in songs:
            for role, items in by_role.items():
                drum = role == "drums"
                items = grid_notes(items, drum=drum)
                if len(items) < 2:
                    continue
                tokens = note_tokens(items)
                notes.setdefault(role, []).append((sid, tokens, tokens))
                bars.setdefault(role, []).extend((sid, f, r) for f, r in bar_tokens(items, bar_beats, count, drum=drum))
        return cls({r: RunIndex(v) for r, v in notes.items()}, {r: RunIndex(v) for r, v in bars.items()})

    def check_many(self, tracks: Sequence[tuple[str, Sequence[Note], float, int]]) -> list[dict]:
        """The longest runs (notes, bars) each generated track (role, notes, bar length in beats, bars) shares
        with the training tracks of its role, and whether the composers' gate flags it."""
        out = [{"role": role, "notes": 0, "notes_source": None, "bars": 0, "bars_source": None}
               for role, _, _, _ in tracks]
        note_queries: dict[str, list[tuple[int, np.ndarray]]] = {}
        bar_queries: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for t, (role, items, bar_beats, bars) in enumerate(tracks):
            drum = role == "drums"
            items = grid_notes(items, drum=drum)
            if len(items) >= 2:
                note_queries.setdefault(role, []).append((t, note_tokens(items)))
            for first, rest in bar_tokens(items, bar_beats, bars, drum=drum):
                bar_queries.setdefault(role, []).append((t, first, rest))
        for role, queries in note_queries.items():
            if role in self.notes:
                found = self.notes[role].longest_many([(tokens, tokens) for _, tokens in queries])
                for (t, _), (length, sid) in zip(queries, found, strict=True):
                    out[t]["notes"], out[t]["notes_source"] = length, sid
        for role, queries in bar_queries.items():
            if role in self.bars:
                found = self.bars[role].longest_many([(first, rest) for _, first, rest in queries])
                for (t, _, _), (length, sid) in zip(queries, found, strict=True):
                    if length > out[t]["bars"]:
                        out[t]["bars"], out[t]["bars_source"] = length, sid
        for item in out:
            item["flagged"] = item["notes"] > ORIGINALITY_THRESHOLD
        return out


def summarize(runs: Sequence[dict], *, threshold: int = ORIGINALITY_THRESHOLD) -> dict:
    """Median, 99th percentile and maximum of the runs in notes and bars, and the share within the gate."""
    if not runs:
        return {"tracks": 0}
    notes = np.array([r["notes"] for r in runs])
    bars = np.array([r["bars"] for r in runs])
    return {"tracks": len(runs), "notes": {"median": float(np.median(notes)), "p99": float(np.percentile(notes, 99)),
                                           "max": int(notes.max())},
            "bars": {"median": float(np.median(bars)), "p99": float(np.percentile(bars, 99)), "max": int(bars.max())},
            "share_at_most_threshold": float(np.mean(notes <= threshold)), "threshold_notes": threshold,
            "goal": 0.99, "passed": bool(np.mean(notes <= threshold) >= 0.99)}


def bars_of(total_beats: float, bar_beats: float) -> int:
    return max(1, math.ceil(total_beats / bar_beats - 1e-9))
