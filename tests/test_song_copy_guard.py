"""The copy guard: a sampled track does not run on along a training track past the originality gate."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tunesmith.compose.song import SongWriter
from tunesmith.provenance.song_copy_guard import CopyGuard
from tunesmith.provenance.song_originality import TrackIndex, check_song
from tunesmith.symbolic.score import Note
from tunesmith.symbolic.song_tokens import ROLES, SectionSpan, encode_song

BASS = 1 + ROLES.index("bass")


def _walking_line(bars: int, seed: int) -> list[Note]:
    """Four quarter notes a bar, a random walk (distinct from any other seed's)."""
    rng = np.random.default_rng(seed)
    pitches = 40 + np.cumsum(rng.choice([-2, -1, 1, 2, 3, -3], size=4 * bars)) % 12
    return [Note(int(p), i * 1.0, 1.0, 90) for i, p in enumerate(pitches)]


def _bar_blocks(notes: list[Note], bars: int) -> list[np.ndarray]:
    """The song steps of a bass line, one block of rows per bar (each opening with its BAR step)."""
    steps = encode_song([("bass", notes)], meter=(4, 4), bars=bars, tonic=0, chords=[(0.0, "C")],
                        sections=[SectionSpan("verse", 0, bars, 2)], end=False)
    starts = [i for i, row in enumerate(steps) if row[0] == steps[1][0]]  # the BAR steps (row 0 is BOS)
    return [steps[a:b] for a, b in zip(starts, [*starts[1:], len(steps)], strict=True)]


def test_a_bar_that_runs_past_the_gate_is_caught_and_only_then():
    training = _walking_line(8, seed=1)
    index = TrackIndex.build([("train-1", {"bass": training}, 4.0, 8)])
    guard = CopyGuard(index, (4, 4), ["bass", "drums"])
    assert guard.roles == ["bass"]  # drums are reported by the gate, not gated
    blocks = _bar_blocks(training, 8)
    flagged = []
    for bar, block in enumerate(blocks):
        flagged.append(BASS in guard.copied(bar, block))
        guard.accept(bar, block)
    # 12 (interval, duration) steps are 13 notes: bars 0-2 hold 12 notes (11 steps), bar 3 passes the gate
    assert flagged == [False, False, False, True, True, True, True, True]


def test_a_role_whose_training_tracks_are_all_shorter_than_a_run_is_never_caught():
    index = TrackIndex.build([("train-1", {"bass": _walking_line(2, seed=1)}, 4.0, 2)])  # 8 notes
    guard = CopyGuard(index, (4, 4), ["bass"])
    for bar, block in enumerate(_bar_blocks(_walking_line(8, seed=1), 8)):
        assert not guard.copied(bar, block)
        guard.accept(bar, block)


def test_a_line_of_its_own_is_not_caught():
    index = TrackIndex.build([("train-1", {"bass": _walking_line(8, seed=1)}, 4.0, 8)])
    guard = CopyGuard(index, (4, 4), ["bass"])
    for bar, block in enumerate(_bar_blocks(_walking_line(8, seed=2), 8)):
        assert not guard.copied(bar, block)
        guard.accept(bar, block)


@pytest.fixture(scope="module")
def writer():
    return SongWriter.load("song")  # the shipped weights


def test_the_guard_steers_a_song_off_a_training_copy(writer):
    """Index a song as if it were training data, write the same song (same seed) again: without the guard it is
    flagged note for note; with it the sampler draws the bar that would pass the gate again, and the gate passes
    every track."""
    tracks = ["drums", "bass", "chords", "pad"]
    first = writer.generate(style="swing", bars=16, tempo=140, tracks=tracks, seed=5)
    parts = {p.name: p.notes for p in first.score.parts}
    index = TrackIndex.build([("the-first-song", parts, first.score.bar_beats, 16)])

    def report(song):
        return check_song(index, [(p.name, p.name, p.notes, None) for p in song.score.parts], song.score.bar_beats)

    assert report(first)["flagged"] and first.params["copy_guard"] is False
    writer.copy_guard = functools.partial(CopyGuard, index)
    try:
        again = writer.generate(style="swing", bars=16, tempo=140, tracks=tracks, seed=5)
    finally:
        writer.copy_guard = None
    checked = report(again)
    assert again.params["copy_guard"] is True and again.copy_redraws >= 1
    assert not checked["flagged"], [(t["name"], t["longest_shared_run"]) for t in checked["tracks"]]
    assert {p.name for p in again.score.parts} == set(tracks)
