"""Originality of symbolic music: the longest run of notes a work shares with any training piece.

A voice is read as a sequence of (pitch interval from the previous note, duration) pairs, so a copied
melody is found in any key. The index keeps, for each run length asked so far, every run of the training
voices; the longest shared run is found by binary search (a run shared at length L is shared at L-1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tunesmith.symbolic.score import Score

NoteStep = tuple[int, float]


def voice_steps(score: Score) -> list[list[NoteStep]]:
    """Each part as (interval, duration) pairs (the first interval is 0)."""
    voices = []
    for part in score.parts:
        notes = sorted(part.notes, key=lambda n: (n.start, -n.pitch))
        steps = [(b.pitch - a.pitch, round(b.duration, 3)) for a, b in zip([notes[0], *notes], notes, strict=False)] \
            if notes else []
        if steps:
            steps[0] = (0, steps[0][1])
        voices.append(steps)
    return voices


@dataclass
class Match:
    """The longest run a work shares with the corpus and where it comes from."""

    length: int
    source: str | None


class SymbolicIndex:
    """An index of training pieces for longest-shared-run queries."""

    def __init__(self, pieces: Iterable[tuple[str, Score]], *, max_length: int = 256) -> None:
        # the first step's interval is a placeholder (no previous note): runs start at the second note
        self.voices: list[tuple[str, list[NoteStep]]] = [(pid, v[1:]) for pid, s in pieces for v in voice_steps(s)]
        self.max_length = max_length
        self._runs: dict[int, dict[tuple[NoteStep, ...], str]] = {}

    @classmethod
    def from_voices(cls, voices: Iterable[tuple[str, list[NoteStep]]], *, max_length: int = 256) -> SymbolicIndex:
        """An index over ready-made voices: (piece id, steps without the first placeholder step)."""
        index = cls((), max_length=max_length)
        index.voices = [(pid, list(steps)) for pid, steps in voices]
        return index

    def _runs_of(self, length: int) -> dict[tuple[NoteStep, ...], str]:
        if length not in self._runs:
            table: dict[tuple[NoteStep, ...], str] = {}
            for pid, steps in self.voices:
                for i in range(len(steps) - length + 1):
                    table.setdefault(tuple(steps[i:i + length]), pid)
            self._runs[length] = table
        return self._runs[length]

    def _shared(self, voices: list[list[NoteStep]], length: int) -> str | None:
        table = self._runs_of(length)
        for steps in voices:
            for i in range(len(steps) - length + 1):
                hit = table.get(tuple(steps[i:i + length]))
                if hit is not None:
                    return hit
        return None

    def longest_shared_run(self, score: Score) -> Match:
        """Length (in notes) of the longest run shared with a training piece, and that piece's id."""
        voices = [v[1:] for v in voice_steps(score)]
        low, high = 0, min(self.max_length, max((len(v) for v in voices), default=0))
        best: str | None = None
        while low < high:
            mid = (low + high + 1) // 2
            hit = self._shared(voices, mid)
            if hit is not None:
                low, best = mid, hit
            else:
                high = mid - 1
        return Match(length=low, source=best)
