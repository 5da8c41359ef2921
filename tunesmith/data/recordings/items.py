"""One recording a source offers, with everything known about it before it is decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS: tuple[str, ...] = ("drum_hit", "piano_note", "instrument_note", "loop", "effect")


@dataclass
class SampleFile:
    """A file to decode, and its labels.

    ``group`` keeps related recordings in one split (a drum kit and the kits that share its recordings, a
    piano note's velocity layers); ``split`` fixes the split of a group chosen to be held out, otherwise the
    group's hash decides. ``velocity_range`` is the MIDI velocity range the source plays this file for.
    """

    path: Path
    source: str
    kind: str
    name: str
    licence: str
    group: str
    ref: str = ""
    split: str | None = None
    kit: str | None = None
    drum_class: str | None = None
    gm_note: int | None = None
    instrument: str | None = None
    pitch: int | None = None
    velocity_range: tuple[int, int] | None = None
    layer: int | None = None
    layers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def velocity(self) -> int | None:
        """The middle of the velocity range (None when the source does not say)."""
        if self.velocity_range is None:
            return None
        low, high = self.velocity_range
        return max(1, min(127, round((low + high) / 2)))


@dataclass(frozen=True)
class Unusable:
    """A file a source lists that cannot go into the dataset, and why."""

    source: str
    reason: str


def velocity_range(low: float, high: float) -> tuple[int, int]:
    """A 0..1 range (Hydrogen's layer bounds) as a MIDI velocity range within 1..127."""
    lo = max(1, min(127, round(low * 127)))
    hi = max(lo, min(127, round(high * 127)))
    return lo, hi
