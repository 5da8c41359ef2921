"""A copy guard for the song sampler: no sampled track runs on along a training track past the gate.

The originality gate (`tunesmith.provenance.song_originality.check_song`) judges a finished song: a pitched
track sharing more than `ORIGINALITY_THRESHOLD` steps (notes; onsets for the chords and the pad) with a training
track of its role is flagged, and a request that rejects near-copies draws the whole song again. The guard
applies the same measure while the song is written: after each sampled bar, the windows of its tracks that end
in that bar are looked up in the same training index (`RunIndex.shared`), and the sampler draws a bar that makes
a track share a run longer than the gate again (`tunesmith.compose.song_sampler.SongSampler`, up to its
`REDRAWS`, keeping the draw with the fewest such tracks). The rest of the song is left alone: a bar is only
redrawn for what it adds, and bars the song replays (a later chorus) or that a user gave are taken as they are.

A style's ostinato (a bass pumping one note, a comping figure) is copied by nearly every draw of its bar, so
the sampler's last redraws ask about each note of a gated track as it is drawn (`note_copies`): a note that would
end such a run is struck from that note's choices and the model draws another from what is left. A bar whose
copy is only the run into the replay after it is redrawn whole (its notes are checked without that replay).

It works on the model's grid (`grid_notes`) in the meter the model writes, so for a song the model writes in
another meter (2/4 as halves of 4/4 bars) and for the lead, which is made one line after sampling, the gate's
final word may differ by a note; the gate still judges every song.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tunesmith.provenance.gate import ORIGINALITY_THRESHOLD, check_threshold
from tunesmith.provenance.song_originality import CHORD_ROLES, GATED_ROLES, TrackIndex, grid_notes, role_tokens
from tunesmith.symbolic.score import Note
from tunesmith.symbolic.song_tokens import ROLES, decode_song


class CopyGuard:
    """Tracks the sampled pitched tracks of one song and tells the sampler which of them a new bar would make
    share more than ``threshold`` steps with a training track of their role."""

    def __init__(self, index: TrackIndex, meter: tuple[int, int], roles: Iterable[str], *,
                 threshold: int = ORIGINALITY_THRESHOLD) -> None:
        self.index = index
        self.meter = meter
        self.threshold = check_threshold(threshold)
        self.roles = [r for r in roles if r in GATED_ROLES and r in index.notes]
        self.notes: dict[str, list[Note]] = {role: [] for role in self.roles}
        self.redrawn = 0  # bars the sampler drew again for a copy (told by `redrew`)

    def copied(self, bar: int, block: np.ndarray, after: Sequence[Sequence[np.ndarray]] = ()) -> set[int]:
        """The track values (1 + role index) whose run would pass the gate with ``block`` as bar ``bar``, ending
        in it or in the first steps of any of ``after``: each the rows of bars that follow it as they are (a
        replayed chorus, whose own runs were checked where it was first written, but not the run into it)."""
        if not self.roles:
            return set()
        new = decode_song(block, meter=self.meter, first_bar=bar).notes
        follows = [decode_song(np.concatenate(rows), meter=self.meter, first_bar=bar + 1).notes
                   for rows in after if len(rows)]
        return {1 + ROLES.index(role) for role in self.roles
                if (new[role] and self._runs_on(role, new[role]))
                or any(follow[role] and self._runs_on(role, new[role], follow[role]) for follow in follows)}

    def accept(self, bar: int, block: np.ndarray) -> None:
        """Bar ``bar`` is written as ``block``: its notes join the song's tracks."""
        if self.roles:
            new = decode_song(block, meter=self.meter, first_bar=bar).notes
            for role in self.roles:
                self.notes[role].extend(new[role])

    def redrew(self) -> None:
        self.redrawn += 1

    def note_copies(self, bar: int, rows: np.ndarray, track: int) -> bool:
        """Whether the last row of ``rows`` (bar ``bar`` so far, drawn in time order), a note of ``track``, makes
        a run of more than the gate's steps along a training track of its role end at its position: on one of
        the notes there of a note track, on the onset there (as far as it is drawn) of a chord track. A `True`
        makes the sampler draw the note again."""
        role = ROLES[track - 1]
        if role not in self.roles:
            return False
        new = grid_notes(decode_song(rows, meter=self.meter, first_bar=bar).notes[role], drum=False)
        if not new:
            return False
        together = 1 if role in CHORD_ROLES else sum(n.start == new[-1].start for n in new)  # steps it ends
        return self._ends_run(role, new, together)

    def _runs_on(self, role: str, new: list[Note], follow: Sequence[Note] = ()) -> bool:
        """Whether a window of ``threshold + 1`` steps ending among ``new``'s steps, or among the first
        ``threshold + 1`` onsets of ``follow`` after them (the last window holding the step into ``follow``),
        is a training track's."""
        added = grid_notes([*new, *_first_onsets(follow, self.threshold + 1)], drum=False)
        return self._ends_run(role, added, len({n.start for n in added}) if role in CHORD_ROLES else len(added))

    def _ends_run(self, role: str, added: list[Note], steps: int) -> bool:
        """Whether a window of ``threshold + 1`` steps ending among the last ``steps`` steps of the track's
        notes so far followed by ``added`` is a training track's."""
        before = _last_onsets(self.notes[role], self.threshold + 1)
        tokens = role_tokens(role, grid_notes([*before, *added], drum=False))
        tail = tokens[max(0, len(tokens) - steps - self.threshold):]
        if len(tail) <= self.threshold:
            return False
        return self.index.notes[role].shared(tail, tail, self.threshold + 1) is not None


def _first_onsets(notes: Sequence[Note], count: int) -> list[Note]:
    """The notes of the first ``count`` onsets of ``notes``."""
    starts = sorted({n.start for n in notes})[:count]
    return [n for n in notes if starts and n.start <= starts[-1]]


def _last_onsets(notes: list[Note], count: int) -> list[Note]:
    """The notes of the last ``count`` onsets of ``notes`` (in time order)."""
    if not notes:
        return []
    starts = sorted({n.start for n in notes})
    cut = starts[-count] if len(starts) >= count else starts[0]
    return [n for n in notes if n.start >= cut]
