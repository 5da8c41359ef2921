"""Stems rendered while the song is written (tunesmith.symbolic.stream) are the stems rendered after it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tunesmith import families
from tunesmith.compose.song import SongWriter
from tunesmith.families.base import Work
from tunesmith.generation.pipeline import RENDER_TAIL, open_stem_stream, render_stems
from tunesmith.symbolic import Note, Part, Score
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.stream import StemStream
from tunesmith.symbolic.transform import make_monophonic

SR = 16000


@pytest.fixture(scope="module")
def writer() -> SongWriter:
    return SongWriter.load("song")  # the shipped weights


def _frames(score: Score, sr: int) -> int:
    return round(score.end_beats * 60.0 / score.tempo * sr) + round(RENDER_TAIL * sr)


def _usual(score: Score, sr: int) -> list[np.ndarray]:
    return get_renderer(sr).render_parts(score, tail=_frames(score, sr) / sr - score.end_beats * 60 / score.tempo)


def _free(renderer) -> bool:
    """The renderer is not held by a piece (a stream that was finished or cancelled lets it go)."""
    if not renderer._lock.acquire(timeout=5):
        return False
    renderer._lock.release()
    return True


def _all_free(renderer) -> bool:
    return _free(renderer) and all(_free(helper) for helper in renderer._helpers)


@pytest.mark.parametrize("meter", ["4/4", "2/2", "3/4"])
def test_a_streamed_song_has_the_same_stems_sample_for_sample(writer, meter):
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    song = writer.generate(style="bossa nova", key="A minor", tempo=128, bars=10, meter=meter, seed=7, stream=stream)
    assert stream.started
    score = song.score
    streamed = stream.finish(score, _frames(score, SR))
    assert sorted(streamed) == list(range(len(score.parts)))  # every part was played while the song was written
    usual = _usual(score, SR)
    assert sum(bool(part.notes) for part in score.parts) >= 4
    for index, part in enumerate(score.parts):
        assert np.array_equal(streamed[index], usual[index]), part.name
    assert _free(get_renderer(SR, pool="stream"))


def test_a_song_that_ends_before_its_last_bar_line_is_streamed_all_the_same():
    """The stream plays every bar up to its bar line; a song whose last note ends earlier is shorter than that,
    and its stems are what was played up to its own end."""
    bars = {4.0: [Note(48, 0.0, 2.0, 90), Note(55, 2.0, 2.0, 80)], 8.0: [Note(50, 4.0, 1.5, 100)]}  # ends at 5.5
    part = Part(name="bass", notes=[], program=33)
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    stream.start([part], tempo=120.0, time_signature=(4, 4), key="C major", end_beat=8.0)
    for end, notes in bars.items():
        stream.add_bar(end, {"bass": notes})
    score = Score(parts=[Part(name="bass", notes=[n for notes in bars.values() for n in notes], program=33)],
                  tempo=120.0, key="C major")
    assert _frames(score, SR) < 8.0 * 0.5 * SR  # shorter than the bars the stream played
    stream._stop()  # every bar played by the stream's thread (as when it keeps up with the writer)
    streamed = stream.finish(score, _frames(score, SR))
    assert list(streamed) == [0]
    assert np.array_equal(streamed[0], _usual(score, SR)[0])
    assert _free(get_renderer(SR, pool="stream"))
    # a finished score with a note the stream never played (before the last bar line it played up to): no stem
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    stream.start([part], tempo=120.0, time_signature=(4, 4), key="C major", end_beat=8.0)
    for end, notes in bars.items():
        stream.add_bar(end, {"bass": notes})
    score.parts[0].notes.append(Note(43, 6.0, 0.5, 90))
    stream._stop()
    assert stream.finish(score, _frames(score, SR)) == {}
    assert _free(get_renderer(SR, pool="stream"))


def _score_of(parts: list[Part], bars: list[tuple[float, dict[str, list[Note]]]]) -> Score:
    """The song the bars make (each part's notes, in order), at 120 BPM."""
    return Score(parts=[Part(name=p.name, notes=[n for _, notes in bars for n in notes[p.name]], program=p.program)
                        for p in parts], tempo=120.0, key="C major")


def _assert_finished_as_usual(stream: StemStream, score: Score) -> None:
    """Every part of ``score`` finished by ``stream`` is the usual render's, sample for sample."""
    streamed = stream.finish(score, _frames(score, SR))
    usual = _usual(score, SR)
    assert sorted(streamed) == list(range(len(score.parts)))
    for index, part in enumerate(score.parts):
        assert np.array_equal(streamed[index], usual[index]), part.name
    assert _free(get_renderer(SR, pool="stream"))


def test_bars_the_stream_has_not_reached_are_played_by_finish():
    """A stream that lags behind the writer leaves its queued bars to `finish`, which plays them part by part:
    the stems are still the usual render's, and a bar never played may differ from the one queued."""
    parts = [Part(name="bass", notes=[], program=33), Part(name="pad", notes=[], program=89)]
    bars = [(4.0 * (k + 1), {"bass": [Note(40 + k % 5, 4.0 * k, 2.0, 90)],
                             "pad": [Note(60 + k % 7, 4.0 * k, 4.0, 70), Note(64 + k % 7, 4.0 * k, 4.0, 70)]})
            for k in range(8)]
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    stream.start(parts, tempo=120.0, time_signature=(4, 4), key="C major", end_beat=32.0)
    stream._finishing = True  # as if the writer had outrun it: the thread plays none of the bars below
    for end, notes in bars:
        stream.add_bar(end, notes)
    score = _score_of(parts, bars)
    score.parts[0].notes[-1] = Note(47, 28.0, 2.0, 90)  # the last bar rewritten after it was queued
    _assert_finished_as_usual(stream, score)


def test_a_stream_that_falls_behind_halfway_hands_the_rest_to_finish():
    """Bars the thread played and bars left to `finish` make one stem, a line held over the bar line where the
    thread stopped included: the usual render's samples."""
    parts = [Part(name="bass", notes=[], program=33), Part(name="lead", notes=[], program=73)]
    bars = [(4.0 * (k + 1), {"bass": [Note(40 + k % 5, 4.0 * k, 2.0, 90)],
                             "lead": [Note(72 + k % 3, 4.0 * k + 1.0, 6.0, 80)]})  # each held into the next bar
            for k in range(8)]
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    stream.start(parts, tempo=120.0, time_signature=(4, 4), key="C major", end_beat=36.0, lines={"lead"})
    for end, notes in bars[:4]:
        stream.add_bar(end, notes)
    halfway = round(16.0 * 0.5 * SR)
    deadline = time.monotonic() + 20.0
    while any(part.piece.position < halfway for part in stream._streams) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(part.piece.position == halfway for part in stream._streams)  # the thread played bars 1-4
    stream._finishing = True  # then fell behind: bars 5-8 are left to finish
    for end, notes in bars[4:]:
        stream.add_bar(end, notes)
    score = _score_of(parts, bars)
    score.parts[1] = make_monophonic(score.parts[1])
    _assert_finished_as_usual(stream, score)


def test_a_line_is_cut_as_make_monophonic_cuts_it_across_bar_lines():
    """A lead kept to one line: simultaneous onsets, a note held over two bar lines and cut by the next one, a
    note ending exactly on a bar line, one at the song's end ringing past it."""
    bars = {
        4.0: [Note(60, 0.0, 1.0, 90), Note(64, 0.0, 1.0, 70), Note(67, 1.0, 9.0, 100), Note(62, 3.5, 0.25, 60)],
        8.0: [],  # the note of beat 1 still sounds
        12.0: [Note(65, 9.5, 2.5, 80), Note(69, 11.0, 0.5, 80), Note(71, 11.0, 1.5, 85)],  # cut by the next bar
        16.0: [Note(72, 12.25, 1.0, 90), Note(74, 15.0, 3.0, 90)],
    }
    part = Part(name="lead", notes=[], program=73)
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    stream.start([part], tempo=100.0, time_signature=(4, 4), key="C major", end_beat=16.0, lines={"lead"})
    for end, notes in bars.items():
        stream.add_bar(end, {"lead": notes})
    written = Part(name="lead", notes=[n for notes in bars.values() for n in notes], program=73)
    written.notes = [n if n.end <= 16.0 else Note(n.pitch, n.start, 16.0 - n.start, n.velocity) for n in written.notes]
    score = Score(parts=[make_monophonic(written)], tempo=100.0, key="C major")
    streamed = stream.finish(score, _frames(score, SR))
    assert list(streamed) == [0]
    assert np.array_equal(streamed[0], _usual(score, SR)[0])


def test_a_part_that_differs_from_what_was_played_is_left_out_and_its_synthesizer_freed(writer):
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    song = writer.generate(style="pop", tempo=120, bars=8, seed=3, stream=stream)
    score = song.score
    bass = next(i for i, p in enumerate(score.parts) if p.name == "bass")
    note = score.parts[bass].notes[0]
    score.parts[bass].notes[0] = Note(note.pitch + 1, note.start, note.duration, note.velocity)
    streamed = stream.finish(score, _frames(score, SR))
    assert bass not in streamed and len(streamed) == len(score.parts) - 1
    assert _all_free(get_renderer(SR, pool="stream"))


def test_a_loop_is_not_streamed_and_a_cancelled_stream_frees_its_synthesizers(writer):
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    writer.generate(style="house", loop=4, tempo=124, seed=1, stream=stream)  # cut from a longer song
    assert not stream.started
    stream = StemStream(get_renderer(SR, pool="stream"), tail=RENDER_TAIL)
    writer.generate(style="house", bars=8, tempo=124, seed=1, stream=stream)
    stream.cancel()
    assert _all_free(get_renderer(SR, pool="stream"))
    assert stream.finish(Score(parts=[], tempo=124.0), 1) == {}


def test_the_pipeline_mixes_a_streamed_song_as_it_mixes_one_rendered_after(writer):
    family = families.get("song")
    stream = open_stem_stream(family, SR)
    song = writer.generate(style="funk", tempo=104, bars=8, seed=11, stream=stream)

    def mixed(stream: StemStream | None):
        work = Work(score=song.score, audio=None, sr=0, result={}, signed={}, title="t", stream=stream)
        return render_stems(work, SR, family.mix_setting, soundfont=family.soundfont), work

    (mix, stems), work = mixed(stream)
    assert work.stream is None and work.result["mix"]["loudness_lufs"] == pytest.approx(-14.0, abs=1.0)
    (mix_after, stems_after), _ = mixed(None)
    assert np.array_equal(mix, mix_after) and stems.keys() == stems_after.keys()
    assert all(np.array_equal(stems[name], stems_after[name]) for name in stems)


def test_a_stream_whose_synthesizer_is_busy_is_left_unstarted_and_the_song_still_written(writer):
    renderer = get_renderer(SR, pool="stream")
    held = renderer.open_piece({0: (0, False)})  # another piece plays on it
    try:
        stream = StemStream(renderer, tail=RENDER_TAIL)
        song = writer.generate(style="pop", tempo=120, bars=8, seed=2, stream=stream)
        assert not stream.started and song.score.n_notes > 0
        assert all(_free(helper) for helper in renderer._helpers)  # what it had taken it gave back
    finally:
        held.close()
    assert _free(renderer)


def test_a_job_cancelled_after_its_song_is_written_frees_the_synthesizers(writer):
    """The worker's progress call raises when a job is cancelled: the song's stream must not keep its renderers."""
    from tunesmith.families import Resolving
    from tunesmith.families.params import check_params
    from tunesmith.generation.catalog import local_entry
    from tunesmith.generation.pipeline import make_work

    entry = local_entry("song")
    explicit = check_params(entry.family.params, {"style": "pop", "bars": 8}, model_id="song")
    params = entry.family.resolve(Resolving(model_id="song", card=entry.card, from_prompt={}, notes=[], seed=4,
                                            explicit=explicit.model_dump(exclude_none=True)))

    class Cancelled(Exception):
        pass

    def progress(fraction: float) -> None:
        if fraction >= 0.5:
            raise Cancelled

    with pytest.raises(Cancelled):
        make_work(entry, params, sr=SR, progress=progress)
    assert _all_free(open_stem_stream(families.get("song"), SR).renderer)
    made = make_work(entry, params, sr=SR)  # and the next job streams again
    assert made.work.result["stems_streamed"] == len(made.work.score.parts)
