"""Originality of songs, per track: the longest run a track shares with a training record's track of that role.

Two measures, both against the training split with every record's tracks merged by band role (as the model reads
them) and put on the song grid as the model writes it (starts on 1/12 beat, durations in the token bins, drum
hits a sixteenth long), so a line copied from a training record is found as the model would write it:

* **notes**: the composers' measure and gate (`tunesmith.provenance.originality`: a voice as (interval, duration)
  steps, so in any key; flagged over `ORIGINALITY_THRESHOLD` notes), here per track. The chords and the pad
  play several notes at once, so for them a step is an *onset* (`onset_tokens`: the notes that start together,
  as the move of their top note, their length and the chord's shape below the top): a melody's 12 notes are 12
  steps, and so are 12 chords, where counting their notes would make 12 steps of three block chords;
* **bars**: the longest run of consecutive bars whose contents (onset positions, durations and pitches relative
  to the bar's lowest note, drums as they are) and the moves between them match a training track's bars, in any
  transposition; an empty bar ends a run.

Runs are found by binary search on their length over hashed windows (NumPy), seeded by the training windows that
start like one of the track's 4-token windows, like `SymbolicIndex` but fast enough for the corpus's millions of
notes; `tests/test_song_eval.py` checks it agrees with `SymbolicIndex`.

`check_song` is the gate of a generated song (`tunesmith.generation.originality.OriginalityGate.check_tracks`):
each pitched track the model wrote is flagged over the composers' threshold, like a composer's piece; drum
tracks are reported but not gated (`GATED_ROLES`: the training grooves are a style library's templates, so a
drum track that plays its style shares long runs by nature); tracks kept from a user's input are not judged.
`tunesmith evaluate song` measures many songs with the same `TrackIndex`.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DatasetError
from tunesmith.provenance.gate import ORIGINALITY_THRESHOLD, check_threshold
from tunesmith.provenance.originality import voice_steps
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.song_tokens import DRUM_LENGTH, DURATION_BINS, STEPS_PER_BEAT, duration_bin

MAX_RUN = 256
BOUND_LENGTH = 4  # tokens of the windows `RunIndex.bound` keeps
GATED_ROLES = ("bass", "chords", "pad", "lead")  # the pitched tracks; drums are reported, not gated
CHORD_ROLES = ("chords", "pad")  # measured in onsets (a chord is one step), not notes
CACHE_VERSION = 2  # 2: the chord roles in onsets
# bar and onset tokens are Python hashes of int tuples: the same in every process of one Python (no hash seed), not
# across the tuple-hash changes of some Python versions, so a cache file names the version that wrote it
HASH_TAG = f"py{sys.version_info[0]}{sys.version_info[1]}"
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


def onset_tokens(notes: Sequence[Note]) -> np.ndarray:
    """A chord part's steps after its first onset as integers: per onset (the notes starting together), the
    interval its top note moved from the last onset's top note, the onset's length (its longest note) and the
    chord's shape (each note's distance below the top), so in any key, as `note_tokens` is for a voice."""
    groups: dict[float, list[Note]] = {}
    for n in notes:
        groups.setdefault(n.start, []).append(n)
    onsets = [groups[start] for start in sorted(groups)]
    tops = [max(n.pitch for n in group) for group in onsets]
    tokens = []
    for i in range(1, len(onsets)):
        shape = tuple(sorted(tops[i] - n.pitch for n in onsets[i]))
        length = round(max(n.duration for n in onsets[i]) * 1000)
        tokens.append(hash((tops[i] - tops[i - 1], length, shape)))
    return np.array(tokens, dtype=np.int64)


def role_tokens(role: str, notes: Sequence[Note]) -> np.ndarray:
    """The steps the notes measure counts for a track of ``role``: onsets for `CHORD_ROLES`, else notes."""
    return onset_tokens(notes) if role in CHORD_ROLES else note_tokens(notes)


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
        first = _scramble(np.concatenate([f for _, f, _ in sequences] or [[]]).astype(np.int64))
        rest = first if all(f is r for _, f, r in sequences) else \
            _scramble(np.concatenate([r for _, _, r in sequences] or [[]]).astype(np.int64))
        self._set([sid for sid, _, _ in sequences], np.array([len(f) for _, f, _ in sequences], dtype=np.int64),
                  first, rest)

    def _set(self, ids: list[str], lengths: np.ndarray, first: np.ndarray, rest: np.ndarray) -> None:
        self.ids, self.lengths, self.first, self.rest = ids, lengths, first, rest
        self.owner = np.repeat(np.arange(len(ids), dtype=np.int32), lengths)  # each token's sequence
        self.end = np.repeat(np.cumsum(lengths).astype(np.int32), lengths)  # each token's sequence end
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._bound: np.ndarray | None = None  # the sorted hashes of every window of BOUND_LENGTH tokens
        self._bound_starts: np.ndarray | None = None  # where each of them starts

    @classmethod
    def from_arrays(cls, ids: list[str], lengths: np.ndarray, first: np.ndarray, rest: np.ndarray) -> RunIndex:
        """An index from the arrays `arrays` gave (sequence ids and lengths, the scrambled tokens)."""
        index = cls.__new__(cls)
        index._set(ids, np.asarray(lengths, dtype=np.int64), np.asarray(first, dtype=np.uint64),
                   np.asarray(rest, dtype=np.uint64))
        return index

    def arrays(self) -> dict[str, Any]:
        """What `from_arrays` needs, for a cache file (``rest`` left out where it is ``first``)."""
        same = self.rest is self.first or bool(np.array_equal(self.first, self.rest))
        return {"ids": self.ids, "lengths": self.lengths, "first": self.first, "rest": None if same else self.rest}

    @property
    def tokens(self) -> int:
        return len(self.first)

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
        if not len(table):  # no training sequence is that long
            return None
        at = np.clip(np.searchsorted(table, query), 0, len(table) - 1)
        hits = np.nonzero(table[at] == query)[0]
        return self.ids[int(self.owner[starts[at[hits[0]]]])] if len(hits) else None

    def _seeds(self) -> tuple[np.ndarray, np.ndarray]:
        """Every training window of `BOUND_LENGTH` tokens: their hashes sorted, and where each starts (built once
        per index: the seeds every query's search starts from)."""
        if self._bound is None:
            hashes, starts = self._windows(self.first, self.rest, BOUND_LENGTH, self.end)
            order = np.argsort(hashes)
            self._bound, self._bound_starts = hashes[order], starts[order].astype(np.int32)
        return self._bound, self._bound_starts

    def bound(self, first: np.ndarray, rest: np.ndarray, *, cap: int = MAX_RUN) -> int:
        """An upper bound of the longest window a query shares, from the windows of `BOUND_LENGTH` tokens: each
        of those inside a shared run is shared, so a run of L tokens needs L - BOUND_LENGTH + 1 shared ones in a
        row; none shared bounds the run at BOUND_LENGTH - 1."""
        n = min(cap, len(first))
        if n < BOUND_LENGTH or not len(self.first):
            return n
        seeds, _ = self._seeds()
        query, _ = self._windows(_scramble(first), _scramble(rest), BOUND_LENGTH, np.full(len(first), len(first)))
        if not len(query) or not len(seeds):
            return min(n, BOUND_LENGTH - 1)
        at = np.clip(np.searchsorted(seeds, query), 0, len(seeds) - 1)
        hit = np.concatenate([[False], seeds[at] == query, [False]])
        edges = np.flatnonzero(np.diff(hit.astype(np.int8)))  # starts and ends of the stretches of shared windows
        stretch = int(np.max(edges[1::2] - edges[::2])) if len(edges) else 0
        return min(n, stretch + BOUND_LENGTH - 1)

    def longest(self, first: np.ndarray, rest: np.ndarray, *, cap: int = MAX_RUN) -> tuple[int, str | None]:
        """The longest window the query shares with a training sequence, and that sequence's id."""
        return self.longest_many([(first, rest)], cap=cap)[0]

    def longest_many(self, queries: Sequence[tuple[np.ndarray, np.ndarray]], *,
                     cap: int = MAX_RUN) -> list[tuple[int, str | None]]:
        """`longest` of each query: a binary search on the run's length between `BOUND_LENGTH` and `bound` over
        the training windows that start like one of the query's (seed and extend: only those are hashed at each
        length, and a length that is found narrows them to its hits); a query sharing no seed is searched below
        `BOUND_LENGTH` with whole tables, as is a query shorter than a seed."""
        return [self._longest_seeded(first, rest, cap) for first, rest in queries]

    def _longest_seeded(self, first: np.ndarray, rest: np.ndarray, cap: int) -> tuple[int, str | None]:
        n = min(cap, len(first))
        if n < BOUND_LENGTH or not len(self.first):
            return self._longest_short(first, rest, n)
        seeds, seed_starts = self._seeds()
        qfirst, qrest = _scramble(first), _scramble(rest)
        query, _ = self._windows(qfirst, qrest, BOUND_LENGTH, np.full(len(first), len(first)))
        wanted = np.unique(query)
        lo, hi = np.searchsorted(seeds, wanted, "left"), np.searchsorted(seeds, wanted, "right")
        found = hi > lo
        if not found.any():
            return self._longest_short(first, rest, BOUND_LENGTH - 1)
        lo, hi = lo[found], hi[found]  # distinct hashes: disjoint ranges of the sorted seeds
        counts = hi - lo
        candidates = seed_starts[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        low, high = BOUND_LENGTH, self.bound(first, rest, cap=cap)
        source = self.ids[int(self.owner[candidates[0]])]
        while low < high:
            mid = (low + high + 1) // 2
            inside = candidates[candidates.astype(np.int64) + mid <= self.end[candidates]]
            hits = np.isin(self._hash_at(self.first, self.rest, inside, mid),
                           self._hash_at(qfirst, qrest, np.arange(len(first) - mid + 1), mid))
            if hits.any():
                low, candidates = mid, inside[hits]  # a longer shared window starts where this one does
                source = self.ids[int(self.owner[candidates[0]])]
            else:
                high = mid - 1
        return low, source

    @staticmethod
    def _hash_at(first: np.ndarray, rest: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """The hash of the window of ``length`` tokens at each of ``starts`` (its first token from ``first``, the
        others from ``rest``; every window lies inside the arrays)."""
        starts = starts.astype(np.int64)
        with np.errstate(over="ignore"):
            h = first[starts].copy()
            for k in range(1, length):
                h = h * _P + rest[starts + k]
            return _scramble(h ^ np.uint64(length))

    def _longest_short(self, first: np.ndarray, rest: np.ndarray, high: int) -> tuple[int, str | None]:
        """The longest shared window of at most ``high`` (< `BOUND_LENGTH`) tokens, by whole tables."""
        low, source = 0, None
        while low < high:
            mid = (low + high + 1) // 2
            hit = self.shared(first, rest, mid)
            self._tables.pop(mid, None)
            if hit is not None:
                low, source = mid, hit
            else:
                high = mid - 1
        return low, source


SongTracks = Iterable[tuple[str, dict[str, list[Note]], float, int]]  # (record id, notes by role, bar beats, bars)


@dataclass
class TrackIndex:
    """Per band role, the training tracks as note runs and as bar runs."""

    notes: dict[str, RunIndex]
    bars: dict[str, RunIndex]

    @classmethod
    def build(cls, songs: SongTracks) -> TrackIndex:
        """``songs``: (record id, notes by band role, bar length in beats, bars)."""
        notes: dict[str, list] = {}
        bars: dict[str, list] = {}
        for sid, by_role, bar_beats, count in songs:
            for role, items in by_role.items():
                drum = role == "drums"
                items = grid_notes(items, drum=drum)
                if len(items) < 2:
                    continue
                tokens = role_tokens(role, items)
                if len(tokens):
                    notes.setdefault(role, []).append((sid, tokens, tokens))
                bars.setdefault(role, []).extend((sid, f, r) for f, r in bar_tokens(items, bar_beats, count, drum=drum))
        return cls({r: RunIndex(v) for r, v in notes.items()}, {r: RunIndex(v) for r, v in bars.items()})

    @property
    def tokens(self) -> int:
        """Training notes indexed (every role's note runs)."""
        return sum(index.tokens for index in self.notes.values())

    def check_many(self, tracks: Sequence[tuple[str, Sequence[Note], float, int]], *,
                   threshold: int = ORIGINALITY_THRESHOLD) -> list[dict]:
        """The longest runs (notes, bars) each generated track (role, notes, bar length in beats, bars) shares
        with the training tracks of its role, and whether the composers' gate (``threshold`` notes) flags it;
        ``notes`` counts onsets for `CHORD_ROLES` (``unit`` says which)."""
        out = [{"role": role, "notes": 0, "unit": "onsets" if role in CHORD_ROLES else "notes",
                "notes_source": None, "bars": 0, "bars_source": None} for role, _, _, _ in tracks]
        note_queries: dict[str, list[tuple[int, np.ndarray]]] = {}
        bar_queries: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for t, (role, items, bar_beats, bars) in enumerate(tracks):
            drum = role == "drums"
            items = grid_notes(items, drum=drum)
            tokens = role_tokens(role, items) if len(items) >= 2 else np.zeros(0, dtype=np.int64)
            if len(tokens):
                note_queries.setdefault(role, []).append((t, tokens))
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
            item["flagged"] = item["notes"] > threshold
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index as arrays (no pickles) to an .npz file; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"version": np.array([CACHE_VERSION]), "hash": np.array(HASH_TAG)}
        layout = {}
        for kind, indexes in (("notes", self.notes), ("bars", self.bars)):
            for role, index in indexes.items():
                parts = index.arrays()
                names = sorted(set(parts["ids"]))
                number = {sid: i for i, sid in enumerate(names)}
                key = f"{kind}.{role}"
                layout[key] = names
                arrays[f"{key}.owners"] = np.array([number[sid] for sid in parts["ids"]], dtype=np.int32)
                arrays[f"{key}.lengths"] = parts["lengths"].astype(np.int32)
                arrays[f"{key}.first"] = parts["first"]
                if parts["rest"] is not None:
                    arrays[f"{key}.rest"] = parts["rest"]
        arrays["layout"] = np.array(json.dumps(layout))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrackIndex:
        """Read an index written by `save` (DatasetError when it is not one, or one of another version)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"][0]) != CACHE_VERSION or str(data["hash"]) != HASH_TAG:
                    raise DatasetError(f"{path}: a song originality index of another version; delete it to rebuild")
                found: dict[str, dict[str, RunIndex]] = {"notes": {}, "bars": {}}
                for key, names in json.loads(str(data["layout"])).items():
                    kind, role = key.split(".", 1)
                    first = data[f"{key}.first"]
                    rest = data[f"{key}.rest"] if f"{key}.rest" in data.files else first
                    ids = [names[i] for i in data[f"{key}.owners"].tolist()]
                    found[kind][role] = RunIndex.from_arrays(ids, data[f"{key}.lengths"], first, rest)
                return cls(found["notes"], found["bars"])
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"{path}: not a readable song originality index ({exc})") from exc


def bars_of(total_beats: float, bar_beats: float) -> int:
    return max(1, math.ceil(total_beats / bar_beats - 1e-9))


def check_song(index: TrackIndex, tracks: Sequence[tuple[str, str | None, Sequence[Note], str | None]],
               bar_beats: float, *, threshold: int = ORIGINALITY_THRESHOLD) -> dict[str, Any]:
    """The originality report of a song's tracks, each (name, band role, the notes the model wrote, why it is not
    judged or None): per track the longest run of notes and of bars it shares with a training track of its role
    and the record it shares it with; a track of `GATED_ROLES` over ``threshold`` notes is flagged, and so is the
    song. ``longest_shared_run`` / ``closest_piece`` are the longest run of the gated tracks (as a composer's)."""
    threshold = check_threshold(threshold)
    judged = [(i, role, notes) for i, (_, role, notes, skip) in enumerate(tracks) if skip is None and role]
    total = max((n.end for _, _, notes in judged for n in notes), default=0.0)
    bars = bars_of(total, bar_beats)
    runs = index.check_many([(role, notes, bar_beats, bars) for _, role, notes in judged], threshold=threshold)
    found = {i: run for (i, _, _), run in zip(judged, runs, strict=True)}
    out = []
    for i, (name, role, _, skip) in enumerate(tracks):
        item: dict[str, Any] = {"name": name, "role": role, "judged": i in found, "gated": role in GATED_ROLES,
                                "longest_shared_run": None, "closest_piece": None, "longest_shared_bars": None,
                                "closest_piece_bars": None, "flagged": False,
                                "reason": skip or (None if role else "a track of no band role, not judged")}
        if i in found:
            run = found[i]
            item |= {"longest_shared_run": run["notes"], "unit": run["unit"], "closest_piece": run["notes_source"],
                     "longest_shared_bars": run["bars"], "closest_piece_bars": run["bars_source"],
                     "flagged": bool(run["flagged"] and role in GATED_ROLES)}
            if role not in GATED_ROLES:
                item["reason"] = "drums: reported, not gated (the training grooves are a style's templates)"
        out.append(item)
    gated = [t for t in out if t["judged"] and t["gated"]]
    worst = max(gated, key=lambda t: t["longest_shared_run"], default=None)
    return {"longest_shared_run": worst["longest_shared_run"] if worst else None,
            "closest_piece": worst["closest_piece"] if worst else None, "threshold": threshold,
            "flagged": any(t["flagged"] for t in out), "gated_roles": list(GATED_ROLES), "tracks": out}
