"""FluidSynth rendering (tunesmith.symbolic.render)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tunesmith.errors import DependencyError, ParameterError
from tunesmith.symbolic import Note, Part, Score
from tunesmith.symbolic.io import read_music21_corpus
from tunesmith.symbolic.render import Renderer, find_soundfont, get_renderer, render_to_file


@pytest.fixture(scope="module")
def r16() -> Renderer:
    return get_renderer(16000)


@pytest.fixture(scope="module")
def r44() -> Renderer:
    return get_renderer(44100)


def _peak_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


def test_a440(r16: Renderer) -> None:
    y = r16.render_note(program=0, pitch=69, velocity=100, note_off=0.75, length=1.0)
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert abs(_peak_hz(y, 16000) - 440.0) < 5.0
    assert 0.01 < np.abs(y).max() < 1.0


@pytest.mark.parametrize("length", [0.01234, 0.5, 1.0, 4.0])
def test_render_note_length_is_exact(r16: Renderer, length: float) -> None:
    y = r16.render_note(program=40, pitch=60, velocity=90, note_off=min(3.0, length), length=length)
    assert y.shape == (round(length * 16000),)


def test_render_note_is_reproducible_and_does_not_bleed(r16: Renderer) -> None:
    first = r16.render_note(program=0, pitch=69, velocity=100, note_off=0.5, length=1.0)
    # a loud sustained organ chord note cut off mid-sound must leave nothing behind
    r16.render_note(program=19, pitch=40, velocity=127, note_off=0.3, length=0.3013)
    again = r16.render_note(program=0, pitch=69, velocity=100, note_off=0.5, length=1.0)
    np.testing.assert_array_equal(first, again)


def test_drums(r16: Renderer) -> None:
    snare = r16.render_note(program=0, pitch=38, velocity=110, note_off=0.2, length=0.5, is_drum=True)
    assert np.abs(snare).max() > 0.01
    kit = Part(
        "Kit", [Note(36, 0.0, 0.5, 110), Note(42, 0.5, 0.5, 90), Note(38, 1.0, 0.5, 100)], is_drum=True
    )
    y = r16.render(Score(parts=[kit], tempo=120.0), tail=0.5)
    assert y.shape == (2, 20000) and np.abs(y).max() > 0.01


def test_chorale_duration_and_headroom(r44: Renderer) -> None:
    chorale = read_music21_corpus("bach/bwv66.6")
    loud = Score(
        parts=[
            Part(p.name, [Note(n.pitch, n.start, n.duration, 100) for n in p.notes], 56)
            for p in chorale.parts
        ],
        tempo=chorale.tempo * 2,  # trumpets at velocity 100: the loudest case of the gain table
    )
    y = r44.render(loud, tail=1.0)
    assert y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - (loud.duration_seconds + 1.0) * 44100) <= 1
    assert 0.05 < np.abs(y).max() < 1.0
    # the pickup bar is leading silence; the first note starts at beat 3
    onset = int(3 * 60 / loud.tempo * 44100)
    assert np.abs(y[:, : onset - 256]).max() < 1e-4 and np.abs(y[:, onset : onset + 4410]).max() > 0.01


def test_renderer_is_cached(r16: Renderer, r44: Renderer) -> None:
    assert get_renderer(16000) is r16
    assert get_renderer(44100) is r44 and r44 is not r16
    assert (r16.sr, r44.sr) == (16000, 44100)


def test_parameter_errors(r16: Renderer) -> None:
    with pytest.raises(ParameterError, match="pitch"):
        r16.render_note(program=0, pitch=128, velocity=100, note_off=0.5, length=1.0)
    with pytest.raises(ParameterError, match="velocity"):
        r16.render_note(program=0, pitch=60, velocity=0, note_off=0.5, length=1.0)
    with pytest.raises(ParameterError, match="tail"):
        r16.render(Score(parts=[Part("P", [Note(60, 0, 1)])]), tail=-1.0)
    with pytest.raises(ParameterError, match="sr"):
        get_renderer(1000)


def test_find_soundfont(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TUNESMITH_SOUNDFONT", raising=False)
    assert find_soundfont().suffix in (".sf2", ".sf3")
    fake = tmp_path / "custom.sf2"
    fake.write_bytes(b"RIFF")
    monkeypatch.setenv("TUNESMITH_SOUNDFONT", str(fake))
    assert find_soundfont() == fake
    monkeypatch.setenv("TUNESMITH_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(DependencyError, match="musescore-general-soundfont-small"):
        find_soundfont()


def test_render_to_file(tmp_path: Path) -> None:
    score = Score(parts=[Part("P", [Note(60, 0.0, 1.0), Note(64, 1.0, 1.0)], program=73)], tempo=120.0)
    path = render_to_file(score, tmp_path / "out" / "tune.wav", sr=16000, tail=0.5)
    data, sr = sf.read(str(path))
    assert sr == 16000 and data.shape == (24000, 2)


def test_a_piece_renders_the_same_every_time(r44: Renderer) -> None:
    """The same score gives the same samples however many pieces and notes the renderer played before (the
    reverb's and chorus's modulation would otherwise carry their phase from one piece into the next)."""
    score = Score(parts=[Part("m", [Note(60 + i, i * 0.5, 0.5, 90) for i in range(8)], program=73)], tempo=120.0)
    first = r44.render(score)
    r44.render(Score(parts=[Part("x", [Note(48, 0.0, 3.0, 120)], program=48)], tempo=90.0))
    r44.render_note(program=0, pitch=60, velocity=100, note_off=0.3, length=0.5)
    again = r44.render(score)
    assert np.array_equal(first, again)
    assert float(np.abs(first).max()) > 0.01


def test_samples_decoded_as_presets_are_played_sound_the_same_as_all_decoded_up_front(monkeypatch) -> None:
    """Synthesizers read only the soundfont's preset table and decode a preset's samples when it is first played
    (kept for later synthesizers: each piece has a fresh one); what they play is what a synthesizer that decoded
    every sample as it loaded plays, piece after piece."""
    from tunesmith.symbolic import render

    scores = [Score(parts=[Part("m", [Note(60 + i, i * 0.5, 0.5, 90) for i in range(6)], program=program),
                           Part("d", [Note(36, 0.0, 0.5), Note(38, 1.0, 0.5)], is_drum=True)], tempo=120.0)
              for program in (0, 73, 33, 0)]
    on_demand = Renderer(22050)
    played = [on_demand.render(score) for score in scores]
    monkeypatch.setattr(render, "DYNAMIC_SAMPLE_LOADING", False)
    up_front = Renderer(22050)
    for score, audio in zip(scores, played, strict=True):
        assert np.array_equal(up_front.render(score), audio)
        assert float(np.abs(audio).max()) > 0.01


def test_a_server_decodes_every_preset_in_the_background() -> None:
    from tunesmith.symbolic import render

    render.decode_soundfont_in_background(find_soundfont()).join(timeout=120)
    kept = render._pins_of(render._import_fluidsynth(), find_soundfont())._pinned
    assert len({p for bank, p in kept if bank == 0}) == 128 and any(bank == render.DRUM_BANK for bank, _ in kept)


def test_stems_are_the_same_however_many_threads_and_are_finished_in_place(r16: Renderer) -> None:
    """render_parts: one stem per part, all the length of the whole piece (a part with no notes is silence), the
    same on one thread as on two, each handed to ``finish`` with its part's index as soon as it is rendered."""
    kit = Part("Kit", [Note(36, 0.0, 0.5, 110), Note(38, 1.0, 0.5, 100)], is_drum=True)
    bass = Part("Bass", [Note(40, 0.0, 2.0, 90), Note(43, 2.0, 1.0, 90)], program=33)
    lead = Part("Lead", [Note(72, 0.5, 0.5, 100), Note(74, 1.0, 0.5, 100), Note(76, 1.5, 1.5, 100)], program=73)
    score = Score(parts=[kit, Part("Rest", []), bass, lead], tempo=120.0)
    whole = round(3.0 * 0.5 * 16000) + round(0.5 * 16000)
    one = r16.render_parts(score, tail=0.5, threads=1)
    finished: list[int] = []
    two = r16.render_parts(score, tail=0.5, threads=2,
                           finish=lambda index, y: finished.append(index) or y * np.float32(0.5))
    assert [y.shape for y in one] == [(2, whole)] * 4 and not one[1].any()
    assert all(one[i].any() for i in (0, 2, 3))
    assert sorted(finished) == [0, 1, 2, 3]
    for alone, halved in zip(one, two, strict=True):
        np.testing.assert_allclose(halved, 0.5 * alone, atol=1e-7)
    # the stems add up to the piece played at once, up to the chorus's and reverb's modulation (measured: 5 %)
    together = r16.render(score, tail=0.5)
    assert np.abs(sum(one) - together).max() < 0.1 * np.abs(together).max()


def test_a_piece_never_waits_for_a_spare_synthesizer_still_being_made() -> None:
    """The next piece's synthesizer is made in a thread at a low CPU priority (it takes little from a job still
    finishing); a piece that starts before it is ready makes its own at once and keeps the spare for the next."""
    import os
    import sys
    import threading

    from tunesmith.symbolic.render import SPARE_NICE, _Spare

    renderer = Renderer(16000)
    score = Score(parts=[Part("m", [Note(69, 0.0, 0.5, 100)], program=0)], tempo=120.0)
    first = renderer.render(score)
    release, priority = threading.Event(), []

    def slow_synth():
        if sys.platform == "linux":
            priority.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        release.wait(30)
        return renderer._new_synth()

    made_after_the_first = renderer._spare
    renderer._spare = _Spare(slow_synth)
    pending = renderer._spare
    try:
        assert np.array_equal(renderer.render(score), first)  # did not wait for the spare
        assert renderer._spare is pending and not pending.ready
    finally:
        release.set()
    pending.join()
    assert np.array_equal(renderer.render(score), first)  # played on the spare, now ready
    assert renderer._spare is not pending
    niced = min(19, os.getpriority(os.PRIO_PROCESS, 0) + SPARE_NICE)
    assert priority == [niced] or (sys.platform != "linux" and not priority)
    renderer.close()
    made_after_the_first.join()
    made_after_the_first.synth[0].delete()


def test_a_spare_that_becomes_ready_while_a_piece_starts_is_used_once(monkeypatch) -> None:
    """The spare's thread may finish between two looks at it: the piece either takes it (and it is no longer the
    spare) or makes its own (and the spare stays spare), never both."""
    from tunesmith.symbolic.render import _Spare

    renderer = Renderer(16000)
    score = Score(parts=[Part("m", [Note(69, 0.0, 0.5, 100)], program=0)], tempo=120.0)
    renderer.render(score)
    renderer._spare.join()
    looks = iter([False, True, True, True])
    monkeypatch.setattr(_Spare, "ready", property(lambda self: next(looks, True)))
    renderer.render(score)
    assert renderer._spare is None or renderer._spare.synth is not renderer._synth
    renderer.render(score)
    renderer.close()
