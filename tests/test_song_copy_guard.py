"""The copy guard: a sampled track does not run on along a training track past the originality gate."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tunesmith.compose.song import SongWriter
from tunesmith.provenance.song_copy_guard import CopyGuard
from tunesmith.provenance.song_originality import TrackIndex, check_song
from tunesmith.symbolic.score import Note
from tunesmith.symbolic.song_tokens import COLUMN, NOTE, ROLES, SectionSpan, encode_song

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


def test_a_note_that_would_end_a_copied_run_is_caught_note_by_note():
    """`note_copies` asks about the last note of a bar drawn so far: in bar 3 of the training line, its first
    note is the 13th (12 steps: at the gate), its second would make the run 13 steps long; the same note at
    another pitch ends no run."""
    training = _walking_line(8, seed=1)
    guard = CopyGuard(TrackIndex.build([("train-1", {"bass": training}, 4.0, 8)]), (4, 4), ["bass"])
    blocks = _bar_blocks(training, 8)
    for bar in range(3):
        guard.accept(bar, blocks[bar])
    notes = [i for i, row in enumerate(blocks[3]) if row[COLUMN["kind"]] == NOTE]
    first, second = (blocks[3][:i + 1] for i in notes[:2])
    assert not guard.note_copies(3, first, BASS)
    assert guard.note_copies(3, second, BASS)
    other = second.copy()
    other[-1, COLUMN["pitch"]] += 5
    assert not guard.note_copies(3, other, BASS)
    # a run already past the gate before this note, which then leaves the line: only the last note is asked about
    third = blocks[3][:notes[2] + 1].copy()
    third[notes[2], COLUMN["pitch"]] += 5
    assert not guard.note_copies(3, third, BASS)


def test_a_run_into_the_replayed_bars_that_follow_a_bar_counts_for_that_bar():
    """A chorus played again is taken as it is, so the run from the bar before it into it is that bar's to
    break: bar 2 alone ends 11 steps of the training line, but followed by its bar 3 (replayed) it runs past the
    gate."""
    training = _walking_line(8, seed=1)
    guard = CopyGuard(TrackIndex.build([("train-1", {"bass": training}, 4.0, 8)]), (4, 4), ["bass"])
    blocks = _bar_blocks(training, 8)
    for bar in range(2):
        guard.accept(bar, blocks[bar])
    assert not guard.copied(2, blocks[2])
    assert guard.copied(2, blocks[2], [[blocks[3]]]) == {BASS}
    assert not guard.copied(2, blocks[2], [_bar_blocks(_walking_line(8, seed=2), 8)[3:4]])  # another line after


def test_the_last_window_into_a_replay_is_checked():
    """The window that ends furthest into the replay still holds the step into it: with the gate at 4 steps, a
    bar ending on the training line's 3rd note (after notes of its own) followed by a replay of notes 4-8 shares
    5 steps, 3 to 8, ending on the replay's 5th onset; without the bar's last note it shares none past the gate."""
    line = _walking_line(3, seed=1)
    guard = CopyGuard(TrackIndex.build([("train-1", {"bass": line}, 4.0, 3)]), (4, 4), ["bass"], threshold=4)
    own = [Note(90 - 17 * k, float(k), 1.0, 90) for k in range(3)]  # leaps no walking line makes
    song = [*own, Note(line[2].pitch, 3.0, 1.0, 90), *(Note(n.pitch, n.start + 1.0, 1.0, 90) for n in line[3:8])]
    blocks = _bar_blocks(song, 3)
    assert guard.copied(0, blocks[0], [blocks[1:3]]) == {BASS}
    moved = _bar_blocks([*own, Note(line[2].pitch + 1, 3.0, 1.0, 90), *song[4:]], 3)
    assert not guard.copied(0, moved[0], [moved[1:3]])


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
