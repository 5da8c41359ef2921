"""The grooves corpus as compound-word step sequences for the song model: band tracks, energy, windows, batches.

* **Band roles**: a record's tracks keep their corpus role (`tunesmith.data.arrange.track_role`), except that the
  lead is the melody: MMA's arpeggio and scale lines (role ``lead`` in the corpus) join the chords, so the lead
  track the model writes is one tune, not a tune tangled with the comping's arpeggios.
* **Energy**: a section's note density (notes per beat over every track) as a percentile among the training
  sections of its style family, in `ENERGY_LEVELS` levels, so energy 0.5 means "as busy as this style usually
  is" in every style (a chorus on a busier groove variant is usually above its verse).
* **Windows** start at a bar line, get a BOS step in front and are transposed at random (pitched notes, chords
  and key together) within ``transpose`` semitones, as far as the notes stay inside MIDI's range.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.data.arrange import BASS_PROGRAMS
from tunesmith.data.corpora.grooves import SongRecord, band_tracks, iter_songs
from tunesmith.progress import progress
from tunesmith.symbolic.harmony import parse_chord
from tunesmith.symbolic.keys import parse_key
from tunesmith.symbolic.song_tokens import (
    BAR,
    BOS,
    CHORD,
    COLUMN,
    DRUMS,
    ENERGY_LEVELS,
    NOTE,
    ROLES,
    SectionSpan,
    encode_song,
    head_targets,
    step_row,
)

LOWEST, HIGHEST = 12, 115  # transposition keeps every pitched note inside this range


def role_programs(song: SongRecord) -> dict[str, int]:
    """Per band role, the General MIDI program of its busiest track."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for (role, notes), track in zip(band_tracks(song), song.labels["tracks"], strict=True):
        counts[role][int(track["program"])] += len(notes)
    return {role: c.most_common(1)[0][0] for role, c in counts.items() if sum(c.values())}


def section_densities(song: SongRecord) -> list[float]:
    """Notes per beat of each section of a record (every track)."""
    bar_beats = float(song.labels["bar_beats"])
    starts = sorted(n.start for part in song.score.parts for n in part.notes)
    out = []
    for section in song.labels["sections"]:
        begin = section["start_bar"] * bar_beats
        end = begin + section["bars"] * bar_beats
        count = np.searchsorted(starts, end - 1e-6) - np.searchsorted(starts, begin - 1e-6)
        out.append(float(count) / max(end - begin, 1e-6))
    return out


@dataclass
class EnergyTable:
    """Per style family, the sorted section densities of the training split (what energy levels are made of)."""

    densities: dict[str, np.ndarray]

    def level(self, family: str, density: float) -> int:
        table = self.densities.get(family)
        if table is None or not len(table):
            return ENERGY_LEVELS // 2
        percentile = np.searchsorted(table, density, side="right") / len(table)
        return int(min(ENERGY_LEVELS - 1, percentile * ENERGY_LEVELS))

    def quantiles(self) -> dict[str, list[float]]:
        """Per family, the densities at the level boundaries (for the card)."""
        edges = np.linspace(0, 1, ENERGY_LEVELS + 1)[1:-1]
        return {f: [round(float(np.quantile(d, q)), 3) for q in edges] for f, d in self.densities.items() if len(d)}


@dataclass
class SongExample:
    """One record as steps with its conditioning."""

    id: str
    split: str
    family: str
    style_file: str  # the MMA style file whose grooves it plays, e.g. "stdlib/blues128"
    tonic: int
    mode: str
    meter: str
    tempo: float
    steps: np.ndarray  # (T, len(COLUMNS)) int16
    tracks: np.ndarray  # (5,) float32: which roles have notes
    low: int
    high: int
    bar_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def key_index(self) -> int:
        return self.tonic + (12 if self.mode == "minor" else 0)


@dataclass
class CorpusStats:
    """What the training split says beyond its steps: programs per family and role, pitch ranges per role, the
    drum keys played, the energy table and the meters."""

    programs: dict[str, dict[str, Counter]]
    pitches: dict[str, Counter]
    drum_keys: Counter
    energy: EnergyTable
    meters: Counter
    family_meters: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # (family, style file, meter) -> the tempi of its training songs
    style_files: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    # (family, style file, meter) -> the bands its training songs play ("drums+bass+lead") and how many songs each
    style_file_bands: dict[tuple[str, str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    chord_degrees: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def harmony(self, min_share: float = 0.004) -> dict[str, list[list]]:
        """Per mode, the chords the training songs play in a key, as [degree (semitones above the tonic),
        quality, share of the mode's chords], those of at least ``min_share``, most played first."""
        out = {}
        for mode, counts in self.chord_degrees.items():
            total = sum(counts.values())
            out[mode] = [[degree, quality, round(n / total, 4)] for (degree, quality), n in counts.most_common()
                         if n / total >= min_share]
        return out

    def role_ranges(self, low: float = 0.5, high: float = 99.5) -> dict[str, list[int]]:
        """Per pitched role, the pitch percentiles ``low`` .. ``high`` (what a generated note may play)."""
        out = {}
        for role, counts in self.pitches.items():
            values = np.repeat(np.array(list(counts), dtype=float), list(counts.values()))
            out[role] = [int(np.percentile(values, low)), int(np.percentile(values, high))]
        return out

    def family_programs(self) -> dict[str, dict[str, list[int]]]:
        """Per family and role, its programs, most used first (at most four); a bass instrument first for the bass
        (MMA's bass tracks sometimes play a low guitar)."""
        out: dict[str, dict[str, list[int]]] = {}
        for fam, roles in self.programs.items():
            out[fam] = {}
            for role, counts in roles.items():
                ranked = [p for p, _ in counts.most_common()]
                if role == "bass":
                    ranked.sort(key=lambda p: p not in BASS_PROGRAMS)  # stable: keeps the counts' order
                out[fam][role] = ranked[:4]
        return out


def read_corpus(dataset_dir: str | Path, *, limit: int | None = None) -> tuple[list[SongExample], CorpusStats]:
    """Every record of a grooves dataset as a `SongExample` (energy levels from the training split's table),
    with the training split's statistics."""
    songs = list(progress(_take(iter_songs(dataset_dir), limit), desc="reading songs", unit="song"))
    densities: dict[str, list[float]] = defaultdict(list)
    for song in songs:
        if song.record.split == "train":
            densities[song.labels["family"]].extend(section_densities(song))
    table = EnergyTable({f: np.sort(np.array(d)) for f, d in densities.items()})
    stats = CorpusStats(programs=defaultdict(lambda: defaultdict(Counter)), pitches=defaultdict(Counter),
                        drum_keys=Counter(), energy=table, meters=Counter())
    examples = []
    for song in progress(songs, desc="encoding songs", unit="song"):
        examples.append(encode_record(song, table))
        if song.record.split == "train":
            _count(song, stats)
    return examples, stats


def _take(items: Iterable, limit: int | None) -> Iterable:
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item


def _count(song: SongRecord, stats: CorpusStats) -> None:
    family = song.labels["family"]
    for role, program in role_programs(song).items():
        stats.programs[family][role][program] += 1
    tracks = band_tracks(song)
    for role, notes in tracks:
        target = stats.drum_keys if role == "drums" else stats.pitches[role]
        target.update(n.pitch for n in notes)
    stats.meters[song.labels["meter"]] += 1
    stats.family_meters[family][song.labels["meter"]] += 1
    style_file = (family, song.labels["style_file"], song.labels["meter"])
    stats.style_files[style_file].append(float(song.labels["tempo"]))
    stats.style_file_bands[style_file][song_band(tracks)] += 1
    tonic, mode = parse_key(song.labels["key"])
    for _, symbol in song.labels["chords"]:
        chord = parse_chord(symbol)
        stats.chord_degrees[mode][((chord.root - tonic) % 12, chord.quality)] += 1


def played_roles(tracks: Sequence[tuple[str, Sequence]]) -> list[str]:
    """The roles of a song's band tracks (`band_tracks`) that have notes, in `ROLES` order."""
    return [role for role in ROLES if any(r == role and notes for r, notes in tracks)]


def song_band(tracks: Sequence[tuple[str, Sequence]]) -> str:
    """The band a song plays (its band tracks' roles with notes) joined by "+": "drums+bass+chords+lead"."""
    return "+".join(played_roles(tracks))


def record_sections(song: SongRecord, table: EnergyTable) -> list[SectionSpan]:
    family = song.labels["family"]
    return [SectionSpan(s["section"], int(s["start_bar"]), int(s["bars"]), table.level(family, density))
            for s, density in zip(song.labels["sections"], section_densities(song), strict=True)]


def encode_record(song: SongRecord, table: EnergyTable) -> SongExample:
    labels = song.labels
    meter = tuple(int(x) for x in labels["meter"].split("/"))
    tracks = band_tracks(song)
    tonic, mode = parse_key(labels["key"])
    steps = encode_song(tracks, meter=meter, bars=int(labels["bars"]), tonic=tonic,
                        chords=[(float(b), s) for b, s in labels["chords"]], sections=record_sections(song, table))
    played = played_roles(tracks)
    present = np.array([role in played for role in ROLES], dtype=np.float32)
    pitched = steps[(steps[:, COLUMN["kind"]] == NOTE) & (steps[:, COLUMN["track"]] != DRUMS), COLUMN["pitch"]] - 1
    low, high = (int(pitched.min()), int(pitched.max())) if pitched.size else (60, 60)
    return SongExample(id=song.record.id, split=song.record.split, family=labels["family"],
                       style_file=labels["style_file"], tonic=tonic, mode=mode,
                       meter=labels["meter"], tempo=float(labels["tempo"]), steps=steps, tracks=present, low=low,
                       high=high, bar_rows=np.flatnonzero(steps[:, COLUMN["kind"]] == BAR))


def transpose_steps(steps: np.ndarray, shift: int) -> np.ndarray:
    """Steps moved by ``shift`` semitones: pitched notes and chord roots (drums stay; chord degrees count from the
    tonic, which moves with them)."""
    if not shift:
        return steps
    out = steps.copy()
    kind = out[:, COLUMN["kind"]]
    pitched = (kind == NOTE) & (out[:, COLUMN["track"]] != DRUMS)
    out[pitched, COLUMN["pitch"]] += shift
    chord = kind == CHORD
    out[chord, COLUMN["root"]] = (out[chord, COLUMN["root"]] - 1 + shift) % 12 + 1
    return out


class SongCorpus:
    """The examples of one split, cut into windows and batched with their conditioning."""

    def __init__(self, examples: Sequence[SongExample], *, styles: Sequence[str], meters: Sequence[str],
                 style_files: Sequence[str] = (), file_balance: float = 0.0) -> None:
        """``style_files``: the style files a model with them knows (embedding order; a song of another one
        gets none); empty: the model conditions on the family alone. ``file_balance`` (0..1): how much `batch`
        evens out the style files: a song's odds are its length over its file's songs to that power (0: a file
        drawn in proportion to its songs' length; 1: each file about as often as any other, more as its songs
        are longer)."""
        if not 0.0 <= file_balance <= 1.0:
            raise ValueError(f"file_balance is 0..1, not {file_balance}")
        self.examples = [e for e in examples if e.meter in meters and e.family in styles]
        songs_of_file = Counter(e.style_file for e in self.examples)
        self.draw_weights = np.array([len(e.steps) / songs_of_file[e.style_file] ** file_balance
                                      for e in self.examples], dtype=float)
        self.style_index = {s: i for i, s in enumerate(styles)}
        self.style_file_index = {s: i for i, s in enumerate(style_files)}
        self.meter_index = {m: i for i, m in enumerate(meters)}
        self.events = int(sum(len(e.steps) - 1 for e in self.examples))

    def __len__(self) -> int:
        return len(self.examples)

    def shifts(self, example: SongExample, limit: int) -> list[int]:
        return [s for s in range(-limit, limit + 1)
                if example.low + s >= LOWEST and example.high + s <= HIGHEST] or [0]

    def window(self, example: SongExample, start: int, length: int, shift: int) -> tuple[np.ndarray, dict[str, Any]]:
        """BOS + ``length`` steps of ``example`` from row ``start`` (a bar line), moved by ``shift``."""
        rows = example.steps[start:start + length]
        if start > 0:
            rows = np.concatenate([step_row(BOS)[None], rows])
        key = (example.tonic + shift) % 12 + 12 * (example.mode == "minor")
        cond = {"style": self.style_index[example.family], "style_file": self.style_file_index.get(example.style_file),
                "key": key,
                "meter": self.meter_index[example.meter], "tempo": example.tempo, "tracks": example.tracks}
        return transpose_steps(rows, shift), cond

    def batch(self, rng: np.random.Generator, *, size: int, length: int,
              transpose: int) -> tuple[torch.Tensor, dict, dict]:
        """Random windows starting at bar lines (songs picked in proportion to their length, evened out over the
        style files by ``file_balance``), transposed."""
        picks = rng.choice(len(self.examples), size=size, p=self.draw_weights / self.draw_weights.sum())
        windows = []
        for i in picks:
            example = self.examples[i]
            start = int(rng.choice(example.bar_rows)) if len(example.bar_rows) else 0
            if start == example.bar_rows[0]:
                start = 0  # the song's own beginning keeps its BOS
            windows.append(self.window(example, start, length, int(rng.choice(self.shifts(example, transpose)))))
        return self.collate(windows)

    def evaluation_batches(self, length: int, *, batch_size: int = 8,
                           max_events: int | None = None) -> list[tuple[torch.Tensor, dict, dict]]:
        """Songs cut at bar lines into consecutive windows of at most ``length`` steps, each event a target
        once; with ``max_events``, songs spread evenly over the split until that many events."""
        windows = []
        for example in self.spread(max_events):
            cuts = [int(r) for r in example.bar_rows] + [len(example.steps)]
            start = 0  # the first window holds the song's own BOS; each later one gets a BOS in front
            while start < len(example.steps):
                end = max((c for c in cuts if start < c <= start + length),
                          default=min(start + length, len(example.steps)))
                windows.append(self.window(example, start, end - start, 0))
                start = end
        return [self.collate(windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)]

    def spread(self, max_events: int | None) -> list[SongExample]:
        """The examples, or songs taken evenly across the split until ``max_events`` events."""
        if max_events is None or self.events <= max_events:
            return list(self.examples)
        share = max_events / self.events
        kept, total = [], 0
        for i, example in enumerate(self.examples):
            if total < share * (i + 1) * self.events / len(self.examples):
                kept.append(example)
                total += len(example.steps) - 1
        return kept

    def collate(self, windows: list[tuple[np.ndarray, dict[str, Any]]]) -> tuple[torch.Tensor, dict, dict]:
        """(steps (B, T, columns), conditioning, each head's targets (B, T - 1)) of windows padded with zeros."""
        width = max(len(rows) for rows, _ in windows)
        steps = np.zeros((len(windows), width, windows[0][0].shape[1]), dtype=np.int64)
        for i, (rows, _) in enumerate(windows):
            steps[i, :len(rows)] = rows
        targets = {name: torch.from_numpy(t) for name, t in head_targets(steps[:, 1:]).items()}
        styles = np.zeros((len(windows), len(self.style_index)), dtype=np.float32)
        for i, (_, cond) in enumerate(windows):
            styles[i, cond["style"]] = 1.0
        cond = {"style": torch.from_numpy(styles),
                "key": torch.tensor([c["key"] for _, c in windows]),
                "meter": torch.tensor([c["meter"] for _, c in windows]),
                "tempo": torch.tensor([c["tempo"] for _, c in windows], dtype=torch.float32),
                "tracks": torch.from_numpy(np.stack([c["tracks"] for _, c in windows]))}
        if self.style_file_index:
            files = np.zeros((len(windows), len(self.style_file_index)), dtype=np.float32)
            for i, (_, c) in enumerate(windows):
                if c["style_file"] is not None:
                    files[i, c["style_file"]] = 1.0
            cond["style_file"] = torch.from_numpy(files)
        return torch.from_numpy(steps), cond, targets
