"""Statistics that say whether generated pieces look like the corpus (compared as means over pieces)."""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np

from tunesmith.symbolic.keys import parse_key, scale_pitch_classes
from tunesmith.symbolic.score import Part, Score


def pitch_class_entropy(score: Score) -> float:
    """Entropy (bits) of the duration-weighted pitch-class histogram."""
    weights: Counter[int] = Counter()
    for note in score.all_notes():
        weights[note.pitch % 12] += note.duration
    total = sum(weights.values())
    return -sum(w / total * math.log2(w / total) for w in weights.values() if w > 0) if total else 0.0


def in_key_ratio(score: Score, key: str) -> float:
    """Share of notes in the key's scale (minor also admits its raised sixth and seventh)."""
    tonic, mode = parse_key(key)
    pcs = set(scale_pitch_classes(tonic, mode))
    if mode == "minor":
        pcs |= {(tonic + 9) % 12, (tonic + 11) % 12}
    notes = score.all_notes()
    return sum(n.pitch % 12 in pcs for n in notes) / len(notes) if notes else 0.0


def note_density(score: Score) -> float:
    """Notes per bar, all voices together."""
    return score.n_notes / max(score.n_bars, 1)


def mean_voice_range(score: Score) -> float:
    """Mean over voices of (highest - lowest pitch) in semitones."""
    ranges = [max(n.pitch for n in p.notes) - min(n.pitch for n in p.notes) for p in score.parts if p.notes]
    return sum(ranges) / len(ranges) if ranges else 0.0


def _sounding(part: Part, times: list[float]) -> list[int | None]:
    notes = sorted(part.notes, key=lambda n: n.start)
    out, i = [], 0
    for t in times:
        while i < len(notes) and notes[i].end <= t:
            i += 1
        out.append(notes[i].pitch if i < len(notes) and notes[i].start <= t < notes[i].end else None)
    return out


def parallel_perfect_rate(score: Score) -> float:
    """Parallel fifths and octaves per voice-pair motion in which both voices move.

    At consecutive onsets, two voices that both change pitch in the same direction and form the same
    perfect interval (fifth or octave/unison, modulo the octave) before and after make one parallel.
    """
    times = sorted({n.start for n in score.all_notes()})
    pitches = [_sounding(p, times) for p in score.parts]
    motions = parallels = 0
    for a, b in combinations(range(len(pitches)), 2):
        for t in range(1, len(times)):
            a0, a1, b0, b1 = pitches[a][t - 1], pitches[a][t], pitches[b][t - 1], pitches[b][t]
            if None in (a0, a1, b0, b1) or a0 == a1 or b0 == b1:
                continue
            motions += 1
            before, after = (a0 - b0) % 12, (a1 - b1) % 12
            if before == after and before in (0, 7) and (a1 - a0) * (b1 - b0) > 0:
                parallels += 1
    return parallels / motions if motions else 0.0


def piece_statistics(score: Score, key: str) -> dict[str, float]:
    """Every statistic of one piece (the parallels rate only for several voices)."""
    stats = {
        "pitch_class_entropy": pitch_class_entropy(score),
        "in_key_ratio": in_key_ratio(score, key),
        "note_density": note_density(score),
        "voice_range": mean_voice_range(score),
    }
    if len(score.parts) > 1:
        stats["parallel_perfect_rate"] = parallel_perfect_rate(score)
    return stats


def bootstrap_interval(values: list[float], *, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of ``values``: how precisely a set of pieces pins a statistic down."""
    data = np.asarray(values, dtype=float)
    means = data[np.random.default_rng(seed).integers(len(data), size=(draws, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def compare(generated: list[dict[str, float]], reference: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean of each statistic over both sets, the relative difference |gen - ref| / ref, and the 95 % bootstrap
    interval of the held-out mean (a rare event such as parallel fifths is only known to within it)."""
    out = {}
    for name in reference[0]:
        gen = sum(s[name] for s in generated) / len(generated)
        ref = sum(s[name] for s in reference) / len(reference)
        out[name] = {"generated": gen, "held_out": ref,
                     "relative_difference": abs(gen - ref) / abs(ref) if ref else float(gen != 0),
                     "held_out_interval95": bootstrap_interval([s[name] for s in reference])}
    return out
