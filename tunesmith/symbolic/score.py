"""One score representation for every symbolic source (MIDI, MusicXML, ABC, Humdrum).

Times are in beats (quarter notes) from the start of the piece; the tempo maps beats to seconds.
Beat 0 is a downbeat: a pickup (anacrusis) is represented by leading silence, so bar lines fall on
multiples of ``Score.bar_beats`` (the readers in `tunesmith.symbolic.io` shift notation accordingly).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Note:
    """One sounding note. ``start`` and ``duration`` are in quarter-note beats."""

    pitch: int
    start: float
    duration: float
    velocity: int = 80

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(slots=True)
class Part:
    """A voice or instrument: its notes sorted by (start, pitch) and a General MIDI program."""

    name: str
    notes: list[Note] = field(default_factory=list)
    program: int = 0
    is_drum: bool = False

    def sorted(self) -> Part:
        return replace(self, notes=sorted(self.notes, key=lambda n: (n.start, n.pitch)))


@dataclass(slots=True)
class Score:
    """Parts plus the global tempo (quarter-note BPM), key ("D minor") and meter."""

    parts: list[Part] = field(default_factory=list)
    tempo: float = 120.0
    key: str | None = None
    time_signature: tuple[int, int] = (4, 4)
    title: str = ""

    @property
    def bar_beats(self) -> float:
        """Length of one bar in quarter-note beats (6/8 -> 3.0)."""
        numerator, denominator = self.time_signature
        return numerator * 4.0 / denominator

    @property
    def end_beats(self) -> float:
        return max((n.end for p in self.parts for n in p.notes), default=0.0)

    @property
    def duration_seconds(self) -> float:
        return self.end_beats * 60.0 / self.tempo

    @property
    def n_notes(self) -> int:
        return sum(len(p.notes) for p in self.parts)

    @property
    def n_bars(self) -> int:
        """Bars needed to hold every note (a partial last bar counts as one)."""
        end = self.end_beats
        bars = int(end // self.bar_beats)
        return bars + (1 if end - bars * self.bar_beats > 1e-6 else 0)

    def all_notes(self) -> list[Note]:
        return sorted((n for p in self.parts for n in p.notes), key=lambda n: (n.start, n.pitch))


DRUM_CHANNEL = 9  # General MIDI channel 10


def channel_plan(parts: list[Part], *, channels: int = 16) -> list[int]:
    """A MIDI channel per part: drums on channel 10, pitched parts in turn on the others."""
    pitched = [c for c in range(channels) if c % 16 != DRUM_CHANNEL]
    plan, n_pitched = [], 0
    for part in parts:
        if part.is_drum:
            plan.append(DRUM_CHANNEL)
        else:
            plan.append(pitched[n_pitched % len(pitched)])
            n_pitched += 1
    return plan


def strong_beats(bar_beats: float, meter: tuple[int, int]) -> tuple[float, ...]:
    """Strong beats within a bar: the downbeat, and the middle of 4/4, 2/2, 6/8 and 12/8 bars."""
    numerator, denominator = meter
    if (denominator == 4 and numerator % 2 == 0) or (denominator == 8 and numerator in (6, 12)) or denominator == 2:
        return (0.0, bar_beats / 2)
    return (0.0,)
