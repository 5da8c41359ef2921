"""The DSP analyzer on signals with known answers: click tracks, rendered cadences and melodies, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.analyze import dsp
from tunesmith.analyze.recording import analyze_dsp
from tunesmith.analyze.transcribe import TranscribedNote, notes_to_score, transcribe_melody
from tunesmith.errors import ParameterError
from tunesmith.symbolic.io import read_score, write_midi
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Note, Part, Score

SR = 22050


def click_track(bpm: float, seconds: float, sr: int = SR) -> np.ndarray:
    """Short decaying 1 kHz blips every 60/bpm seconds, an accented one every fourth beat."""
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    blip = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.008)).astype(np.float32)
    for i, start in enumerate(np.arange(0.25, seconds - 0.05, 60.0 / bpm)):
        at = int(start * sr)
        y[at : at + blip.size] += blip[: y.size - at] * (0.8 if i % 4 == 0 else 0.5)
    return y


def render(notes: list[Note], *, tempo: float = 100.0, program: int = 0) -> np.ndarray:
    score = Score(parts=[Part(name="p", notes=notes, program=program)], tempo=tempo)
    return get_renderer(SR).render(score)


def scale_and_cadence(tonic: int, steps: tuple[int, ...], chords: list[tuple[int, ...]]) -> list[Note]:
    """A scale up and down in quarter notes, then whole-note chords (semitones above the tonic)."""
    line = [tonic + s for s in steps] + [tonic + s for s in reversed(steps[:-1])]
    notes = [Note(p, float(i), 1.0, 90) for i, p in enumerate(line)]
    start = float(len(line))
    for chord in chords:
        notes += [Note(tonic + s, start, 2.0, 80) for s in chord]
        start += 2.0
    return notes


@pytest.mark.parametrize("bpm", [84.0, 126.0])
def test_click_track_tempo_within_four_percent(bpm: float) -> None:
    found = dsp.estimate_tempo(click_track(bpm, 12.0), SR)
    assert found is not None
    assert abs(found.bpm - bpm) <= 0.04 * bpm, found.bpm
    intervals = np.diff(found.beats)
    assert len(found.beats) >= 12
    assert np.median(intervals) == pytest.approx(60.0 / bpm, rel=0.05)


def test_rendered_cadences_give_their_keys() -> None:
    major = scale_and_cadence(60, (0, 2, 4, 5, 7, 9, 11, 12), [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7, 12)])
    minor = scale_and_cadence(57, (0, 2, 3, 5, 7, 8, 11, 12), [(0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7, 12)])
    c_major = dsp.estimate_key(render(major), SR)
    a_minor = dsp.estimate_key(render(minor), SR)
    assert c_major is not None and c_major.name == "C major"
    assert a_minor is not None and (a_minor.tonic, a_minor.mode) == (9, "minor")
    assert len(a_minor.correlations) == 24
    assert a_minor.correlations["A minor"] == max(a_minor.correlations.values())
    assert 1 / 24 < c_major.confidence <= 1.0


def test_rendered_melody_is_transcribed() -> None:
    import mir_eval

    pitches = [67, 69, 71, 72, 74, 74, 72, 71, 69, 67, 71, 74, 79, 78, 76, 74]
    lengths = [1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 1.0, 0.5, 0.5, 2.0]
    notes, start = [], 0.0
    for pitch, length in zip(pitches, lengths, strict=True):
        notes.append(Note(pitch, start, length * 0.9, 90))  # detached, as a player would articulate
        start += length
    tempo = 110.0
    beat = 60.0 / tempo
    found = transcribe_melody(render(notes, tempo=tempo, program=73), SR)
    ref = np.array([[n.start * beat, (n.start + n.duration) * beat] for n in notes])
    est = np.array([[n.onset, n.offset] for n in found])
    hz = lambda midi: 440.0 * 2.0 ** ((np.asarray(midi) - 69) / 12.0)  # noqa: E731
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref, hz(pitches), est, hz([n.pitch for n in found]), onset_tolerance=0.05, offset_ratio=None)
    assert f1 >= 0.8, (f1, [(n.pitch, n.onset) for n in found])


def test_notes_to_score_writes_a_monophonic_midi(tmp_path) -> None:
    notes = [TranscribedNote(60, 0.51, 1.0, 90), TranscribedNote(62, 1.0, 1.52, 80), TranscribedNote(64, 1.5, 2.6, 70)]
    tempo = dsp.TempoEstimate(bpm=120.0, beats=(0.5, 1.0, 1.5, 2.0, 2.5), confidence=0.9)
    score = notes_to_score(notes, tempo)
    assert [n.pitch for n in score.parts[0].notes] == [60, 62, 64]
    assert [n.start for n in score.parts[0].notes] == [1.0, 2.0, 3.0]  # on the tracked beats (0.5 s = beat 1)
    assert [n.duration for n in score.parts[0].notes] == [1.0, 1.0, 2.25]
    back = read_score(write_midi(score, tmp_path / "melody.mid"))
    assert [(n.pitch, n.start) for n in back.parts[0].notes] == [(60, 1.0), (62, 2.0), (64, 3.0)]
    late = notes_to_score([TranscribedNote(n.pitch, n.onset + 20.0, n.offset + 20.0, 80) for n in notes], tempo)
    assert late.parts[0].notes[0].start == 1.0  # 40 beats = 10 bars of silence dropped
    with pytest.raises(ParameterError):
        notes_to_score(notes, 0.0)


def test_silence_and_tiny_clips_give_empty_results() -> None:
    silent = analyze_dsp(np.zeros(SR * 3, dtype=np.float32), SR)
    assert (silent.tempo, silent.key, silent.notes, silent.loudness_lufs) == (None, None, [], None)
    assert silent.duration == pytest.approx(3.0)
    tiny = analyze_dsp(0.1 * np.sin(np.linspace(0, 60, 441, dtype=np.float32)), 44100)
    assert tiny.duration == pytest.approx(0.01)
    assert tiny.tempo is None
    assert dsp.estimate_tempo(np.zeros(10, dtype=np.float32), SR) is None
    assert transcribe_melody(np.zeros(SR, dtype=np.float32), SR) == []


def test_many_channels_and_high_rates_are_analysed() -> None:
    clicks = click_track(100.0, 8.0, sr=192_000)
    eight = np.stack([clicks * (0.5 + 0.05 * c) for c in range(8)])
    result = analyze_dsp(eight, 192_000, melody=False)
    assert result.tempo is not None and abs(result.tempo.bpm - 100.0) <= 4.0
    assert result.loudness_lufs is not None and np.isfinite(result.loudness_lufs)
    assert dsp.loudness(eight, 192_000) > dsp.loudness(eight[:1], 192_000)
    assert result.to_dict()["tempo"]["bpm"] == result.tempo.bpm


@pytest.mark.parametrize(
    ("y", "sr", "field"),
    [
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), SR, "y"),
        (np.zeros(100, dtype=np.int16), SR, "y"),
        (np.zeros((2, 2, 100), dtype=np.float32), SR, "y"),
        (np.zeros(100, dtype=np.float32), 0, "sr"),
        (np.zeros(100, dtype=np.float32), 44100.5, "sr"),
        (np.zeros(100, dtype=np.float32), True, "sr"),
    ],
)
def test_bad_input_is_a_parameter_error(y: np.ndarray, sr: object, field: str) -> None:
    for call in (analyze_dsp, dsp.estimate_tempo, dsp.estimate_key, transcribe_melody, dsp.loudness):
        with pytest.raises(ParameterError) as info:
            call(y, sr)
        assert info.value.field == field


def test_length_cap_and_bad_options() -> None:
    with pytest.raises(ParameterError, match="limited to 2 s"):
        analyze_dsp(np.zeros(SR * 3, dtype=np.float32), SR, max_seconds=2.0)
    y = click_track(100.0, 3.0)
    with pytest.raises(ParameterError):
        dsp.estimate_key(y, SR, profile="nonsense")
    with pytest.raises(ParameterError):
        transcribe_melody(y, SR, method="crepe")
    with pytest.raises(ParameterError):
        transcribe_melody(y, SR, fmin=500.0, fmax=100.0)


def test_shared_spectra_equal_librosas_chroma_and_tuning() -> None:
    """analyze_dsp computes one STFT for the tempo chroma and the CQT's tuning: the same numbers as librosa's
    own chroma_stft and estimate_tuning (which chroma_cqt would run)."""
    import librosa

    notes = scale_and_cadence(62, (0, 2, 4, 5, 7, 9, 11, 12), [(0, 4, 7)])
    mono = dsp.prepare(render(notes, tempo=120.0, program=0), SR)
    low = dsp.half_rate(mono)
    chroma, tuning = dsp._half_rate_spectra(low, tuning=True)
    reference = librosa.feature.chroma_stft(y=low, sr=dsp.HALF_SR, n_fft=2048, hop_length=dsp.HOP // 2, norm=None,
                                            tuning=0.0)
    assert chroma.shape == reference.shape
    assert np.allclose(chroma, reference, rtol=1e-3, atol=1e-3 * float(reference.max()))
    assert tuning == pytest.approx(librosa.estimate_tuning(y=low, sr=dsp.HALF_SR, bins_per_octave=36), abs=1e-9)
    assert np.array_equal(dsp.chroma_frames(mono), chroma)


def test_remembered_cqt_bases_give_librosas_chroma(monkeypatch) -> None:
    """The CQT basis memory hands out copies: a first and a repeated call both equal librosa's uncached CQT."""
    import librosa
    import librosa.core.constantq as constantq

    from tunesmith.analyze import cqt

    mono = dsp.prepare(render(scale_and_cadence(57, (0, 2, 3, 5, 7, 8, 11, 12), [(0, 3, 7)])), SR)
    low = dsp.half_rate(mono)
    assert cqt.install_basis_cache()
    cached = getattr(constantq, cqt._BUILDER)
    with monkeypatch.context() as patch:
        patch.setattr(constantq, cqt._BUILDER, cached.__wrapped__)  # librosa as shipped
        reference = [librosa.feature.chroma_cqt(y=low, sr=dsp.HALF_SR, hop_length=2048, n_octaves=5, tuning=t,
                                                fmin=librosa.note_to_hz("C2")) for t in (0.0, 0.17)]
    for tuning, expected in zip((0.0, 0.17), reference, strict=True):
        for _ in range(2):  # a miss, then a hit
            got = librosa.feature.chroma_cqt(y=low, sr=dsp.HALF_SR, hop_length=2048, n_octaves=5, tuning=tuning,
                                             fmin=librosa.note_to_hz("C2"))
            assert np.array_equal(got, expected)
    whole = analyze_dsp(mono, SR, melody=False)
    assert whole.key is not None and whole.key.name == "A minor"


def test_period_is_placed_by_its_multiples() -> None:
    """A broad first autocorrelation peak pulled early (as a choir's soft attacks make it) is re-placed where
    its 2nd and 3rd multiples, which are sharp, agree; a clean periodic curve keeps its period."""
    lags = np.arange(384, dtype=float)
    true = 40.0
    sharp = sum(np.exp(-0.5 * ((lags - k * true) / 2.0) ** 2) for k in (2, 3))
    broad = 0.6 * np.exp(-0.5 * ((lags - 38.4) / 6.0) ** 2)  # the first peak, broad and 4% early
    refined = dsp._refine_period(broad + sharp, 38.4)
    assert abs(refined - true) / true < 0.01
    clean = sum(np.exp(-0.5 * ((lags - k * true) / 2.0) ** 2) for k in (1, 2, 3, 4))
    assert dsp._refine_period(clean, 40.3) == pytest.approx(true, rel=0.005)
