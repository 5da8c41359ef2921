"""Statistics of multi-track songs, per track role, and the drum report MMA versus human-written drums.

Every statistic is computed per track (a `Part`) on a grid of sixteenth notes (``steps`` per quarter beat)
and averaged over the tracks of a role (drums, bass, chords, pad, lead):

* ``pitch_class_entropy``: entropy (bits) of the duration-weighted pitch-class histogram (pitched tracks);
* ``scale_consistency``: the share of notes in the best-fitting major or natural-minor scale (pitched);
* ``groove_consistency``: 1 - the mean Hamming distance between the onset patterns of consecutive bars,
  divided by the grid positions per bar (Wu & Yang's grooving-pattern similarity): 1 = every bar the same;
* ``drum_in_pattern_rate``: the share of drum onsets on the sixteenth-note grid (MuseGAN's DP; within 1/64
  of a beat), drums only;
* ``empty_beat_rate``: the share of beats (quarter notes) of the song in which the track sounds nothing;
* ``polyphony``: the mean number of pitches sounding at the grid steps where the track sounds;
* ``note_density``: onsets per bar;
* ``chord_tone_ratio``: for bass, chords and pad tracks, the share of notes sounding at strong beats (bar
  starts and the middle of 4/4 and 6/8 bars) that are tones of the chord in force there (needs the song's
  chord changes, e.g. a grooves record's ``chords`` label);
* ``velocity_spread``: the standard deviation of velocities (drums: a person's dynamics vs a template's).

`compare` (from `tunesmith.evaluate.symbolic_stats`) reports generated against held-out means with the
relative difference the song model's gate reads (within 15 %). `drum_report` puts MMA's drum tracks (a
grooves dataset split) beside the human-written drums (the human-drums dataset).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.evaluate.symbolic_stats import compare
from tunesmith.symbolic.harmony import parse_chord
from tunesmith.symbolic.keys import MODES, scale_pitch_classes
from tunesmith.symbolic.score import Part, Score, strong_beats

STEPS_PER_BEAT = 4
ON_GRID_TOLERANCE = 1 / 64
DRUM_STATS = ("groove_consistency", "drum_in_pattern_rate", "empty_beat_rate", "polyphony", "note_density",
              "velocity_spread")


def pitch_class_entropy(part: Part) -> float:
    weights: Counter[int] = Counter()
    for note in part.notes:
        weights[note.pitch % 12] += note.duration
    total = sum(weights.values())
    return -sum(w / total * math.log2(w / total) for w in weights.values() if w > 0) if total else 0.0


def scale_consistency(part: Part) -> float:
    """Share of notes in the best-fitting of the 24 major/minor scales."""
    if not part.notes:
        return 0.0
    counts = Counter(n.pitch % 12 for n in part.notes)
    best = max(sum(counts[pc] for pc in scale_pitch_classes(tonic, mode))
               for tonic in range(12) for mode in MODES)
    return best / len(part.notes)


def onset_grid(part: Part, bar_beats: float, bars: int, steps: int = STEPS_PER_BEAT) -> np.ndarray:
    """Bars x positions boolean matrix of onsets on the ``steps``-per-beat grid."""
    per_bar = max(1, round(bar_beats * steps))
    grid = np.zeros((max(bars, 1), per_bar), dtype=bool)
    for note in part.notes:
        step = round(note.start * steps)
        bar, position = divmod(step, per_bar)
        if 0 <= bar < grid.shape[0]:
            grid[bar, position] = True
    return grid


def groove_consistency(part: Part, bar_beats: float, bars: int) -> float:
    grid = onset_grid(part, bar_beats, bars)
    if len(grid) < 2:
        return 1.0
    distances = np.mean(grid[1:] != grid[:-1], axis=1)
    return float(1.0 - distances.mean())


def drum_in_pattern_rate(part: Part) -> float:
    if not part.notes:
        return 0.0
    on = sum(abs(n.start * STEPS_PER_BEAT - round(n.start * STEPS_PER_BEAT)) <= ON_GRID_TOLERANCE * STEPS_PER_BEAT
             for n in part.notes)
    return on / len(part.notes)


def _sounding_steps(part: Part, total_steps: int) -> np.ndarray:
    """Number of pitches sounding at each grid step (drum hits sound for one step)."""
    count = np.zeros(max(total_steps, 1), dtype=np.int32)
    for note in part.notes:
        start = max(0, math.floor(note.start * STEPS_PER_BEAT + 1e-9))
        end = start + 1 if part.is_drum else max(start + 1, math.ceil(note.end * STEPS_PER_BEAT - 1e-9))
        count[start:min(end, len(count))] += 1
    return count


def empty_beat_rate(part: Part, total_beats: float) -> float:
    beats = max(1, math.ceil(total_beats - 1e-9))
    sounding = _sounding_steps(part, beats * STEPS_PER_BEAT).reshape(beats, STEPS_PER_BEAT)
    return float(np.mean(sounding.sum(axis=1) == 0))


def polyphony(part: Part, total_beats: float) -> float:
    counts = _sounding_steps(part, math.ceil(total_beats * STEPS_PER_BEAT))
    active = counts[counts > 0]
    return float(active.mean()) if active.size else 0.0


def chord_tone_ratio(part: Part, chords: list[tuple[float, str]], bar_beats: float, meter: tuple[int, int],
                     total_beats: float) -> float | None:
    """Share of the notes sounding at strong beats that belong to the chord in force (None: no such note)."""
    if not chords or not part.notes:
        return None
    times = [bar * bar_beats + beat for bar in range(math.ceil(total_beats / bar_beats))
             for beat in strong_beats(bar_beats, meter)]
    starts = [b for b, _ in chords]
    tones = [parse_chord(s).pitch_classes for _, s in chords]
    hits = total = 0
    notes = sorted(part.notes, key=lambda n: n.start)
    for t in times:
        index = int(np.searchsorted(starts, t + 1e-9, side="right")) - 1
        if index < 0:
            continue
        for note in notes:
            if note.start > t + 1e-6:
                break
            if note.end > t + 1e-6:
                total += 1
                hits += note.pitch % 12 in tones[index]
    return hits / total if total else None


def track_statistics(part: Part, *, bar_beats: float, meter: tuple[int, int], total_beats: float,
                     chords: list[tuple[float, str]] | None = None, role: str | None = None) -> dict[str, float]:
    """Every statistic of one track (pitch statistics only for pitched tracks, drum pattern only for drums)."""
    bars = max(1, math.ceil(total_beats / bar_beats - 1e-9))
    stats = {
        "groove_consistency": groove_consistency(part, bar_beats, bars),
        "empty_beat_rate": empty_beat_rate(part, total_beats),
        "polyphony": polyphony(part, total_beats),
        "note_density": len(part.notes) / bars,
        "velocity_spread": float(np.std([n.velocity for n in part.notes])) if part.notes else 0.0,
    }
    if part.is_drum:
        stats["drum_in_pattern_rate"] = drum_in_pattern_rate(part)
    else:
        stats["pitch_class_entropy"] = pitch_class_entropy(part)
        stats["scale_consistency"] = scale_consistency(part)
        if chords and role in ("bass", "chords", "pad"):
            ratio = chord_tone_ratio(part, chords, bar_beats, meter, total_beats)
            if ratio is not None:
                stats["chord_tone_ratio"] = ratio
    return stats


def song_statistics(score: Score, roles: list[str], *, chords: list[tuple[float, str]] | None = None,
                    bars: int | None = None) -> dict[str, dict[str, float]]:
    """Per role, the mean of each statistic over that role's tracks (tracks without notes are left out)."""
    total_beats = bars * score.bar_beats if bars else max(score.end_beats, score.bar_beats)
    by_role: dict[str, list[dict[str, float]]] = defaultdict(list)
    for part, role in zip(score.parts, roles, strict=True):
        if part.notes:
            by_role[role].append(track_statistics(part, bar_beats=score.bar_beats, meter=score.time_signature,
                                                  total_beats=total_beats, chords=chords, role=role))
    return {role: _mean(items) for role, items in by_role.items()}


def _mean(items: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for item in items for k in item})
    return {k: float(np.mean([item[k] for item in items if k in item])) for k in keys}


def record_statistics(song) -> dict[str, dict[str, float]]:
    """`song_statistics` of a grooves or human-drums `SongRecord` with its chords and bars."""
    chords = [(float(b), s) for b, s in song.labels.get("chords", [])]
    bars = song.labels.get("bars")
    return song_statistics(song.score, song.roles, chords=chords or None,
                           bars=math.ceil(bars) if bars else None)


def drum_report(grooves_dir: str | Path, human_dir: str | Path, *, split: str | None = "test") -> dict[str, Any]:
    """MMA's drum tracks (a split of a grooves dataset) beside the human-written drums: the mean of each drum
    statistic over pieces, the relative difference and the 95 % interval of the human mean, per family too."""
    from tunesmith.data.corpora.grooves import iter_songs
    from tunesmith.data.corpora.human_drums import iter_drum_patterns

    human = [s["drums"] for s in map(record_statistics, iter_drum_patterns(human_dir)) if "drums" in s]
    mma_by_family: dict[str, list[dict[str, float]]] = defaultdict(list)
    for song in iter_songs(grooves_dir, split):
        stats = record_statistics(song)
        if "drums" in stats:
            mma_by_family[song.labels["family"]].append({k: stats["drums"][k] for k in DRUM_STATS})
    human = [{k: s[k] for k in DRUM_STATS} for s in human]
    mma = [s for items in mma_by_family.values() for s in items]
    if not human or not mma:
        return {"human_patterns": len(human), "mma_songs": len(mma), "overall": {}, "by_family": {}}
    return {
        "human_patterns": len(human), "mma_songs": len(mma), "split": split,
        "overall": {name: {"mma": v["generated"], "human": v["held_out"], "relative_difference":
                           v["relative_difference"], "human_interval95": v["held_out_interval95"]}
                    for name, v in compare(mma, human).items()},
        "by_family": {fam: {k: float(np.mean([s[k] for s in items])) for k in DRUM_STATS}
                      for fam, items in sorted(mma_by_family.items())},
    }
