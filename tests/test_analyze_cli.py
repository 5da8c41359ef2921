"""`tunesmith analyze` with the shipped analyzer: the four audio formats, MIDI out, and awkward input."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
import soundfile as sf

from tunesmith.cli import main
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Note, Part, Score

SR = 44100


@pytest.fixture(scope="module")
def melody_audio() -> np.ndarray:
    """Eight bars of a G major tune on the flute at 100 bpm, rendered with FluidSynth (stereo, 44.1 kHz)."""
    tune = [67, 71, 74, 71, 72, 69, 66, 62, 67, 71, 74, 79, 78, 74, 72, 71] * 2
    notes = [Note(p, float(i), 0.9, 96) for i, p in enumerate(tune)]
    score = Score(parts=[Part("flute", notes, program=73)], tempo=100.0, key="G major")
    return get_renderer(SR).render(score, tail=0.5)


def analyze(capsys, *args: str) -> tuple[int, dict | str]:
    code = main(["analyze", *args])
    captured = capsys.readouterr()
    if code == 0 and "--json" in args:
        return code, json.loads(captured.out)
    return code, captured.err if code else captured.out


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg"])
def test_every_audio_format_is_analyzed(melody_audio, tmp_path, capsys, suffix):
    from tunesmith.audio.io import save

    path = save(tmp_path / f"tune{suffix}", melody_audio, sr=SR)
    code, report = analyze(capsys, str(path), "--json")
    assert code == 0, report
    assert report["key"]["name"] in ("G major", "E minor", "D major")  # the tune's key or its closest relatives
    assert report["tempo"]["bpm"] > 0 and report["duration"] == pytest.approx(melody_audio.shape[-1] / SR, abs=0.1)
    assert report["family"] in report["tags"]["family"] and report["instrument"] in report["tags"]["instrument"]
    assert -40 < report["loudness_lufs"] < 0
    assert len(report["melody"]) >= 16


def test_melody_is_written_as_midi(melody_audio, tmp_path, capsys):
    path = tmp_path / "tune.wav"
    sf.write(path, melody_audio.T, SR)
    code, text = analyze(capsys, str(path), "--midi", str(tmp_path / "tune.mid"))
    assert code == 0, text
    assert "key:" in text and "melody:" in text
    events = [m for m in mido.MidiFile(tmp_path / "tune.mid") if m.type == "note_on" and m.velocity > 0]
    pitches = {m.note for m in events}
    assert len(events) >= 16 and {67, 71, 74} <= pitches


def test_silence_is_reported_not_an_error(tmp_path, capsys):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR * 2, dtype=np.float32), SR)
    code, report = analyze(capsys, str(path), "--json")
    assert code == 0 and report["silent"] is True
    assert report["key"] is None and report["melody"] == []


@pytest.mark.parametrize("name,write,reason", [
    ("click.wav", lambda p: sf.write(p, np.ones(441, dtype=np.float32) * 0.1, SR), "too short"),
    ("fake.wav", lambda p: p.write_text("this is not audio"), "fake.wav"),
])
def test_unusable_files_exit_2_with_one_line(tmp_path, capsys, name, write, reason):
    path = tmp_path / name
    write(path)
    code, err = analyze(capsys, str(path))
    assert code == 2 and reason in err and len(err.strip().splitlines()) == 1


def test_length_cap_is_a_setting(melody_audio, tmp_path, capsys):
    path = tmp_path / "tune.wav"
    sf.write(path, melody_audio.T, SR)
    code, err = analyze(capsys, str(path), "--max-seconds", "2")
    assert code == 2 and "over the limit of 2 s" in err


@pytest.mark.parametrize("channels,sr", [(8, 44100), (1, 192000)])
def test_many_channels_and_high_rates_are_analyzed(melody_audio, tmp_path, capsys, channels, sr):
    from tunesmith.audio.dsp import resample

    mono = resample(melody_audio.mean(0)[: SR * 6], orig_sr=SR, target_sr=sr)
    path = tmp_path / "odd.wav"
    sf.write(path, np.tile(mono[:, None], (1, channels)) * 0.5, sr)
    code, report = analyze(capsys, str(path), "--json", "--no-melody")
    assert code == 0, report
    assert report["channels"] == channels and report["file_sr"] == sr and "melody" not in report
    assert report["key"] is not None


def test_the_cnn_pitch_class_profile_hears_the_tunes_scale(melody_audio):
    from tunesmith.analyze.analyzer import Analyzer

    profile = Analyzer.load("analyzer").pitch_class_profile(melody_audio, SR)
    assert profile.shape == (12,) and abs(profile.sum() - 1) < 1e-3
    g_major = {7, 11, 2, 0, 9, 6, 4}
    assert sum(profile[pc] for pc in g_major) > 0.8  # the tune never leaves G major's scale
    assert set(np.argsort(profile)[::-1][:3]) <= {7, 11, 2, 6}  # its most played notes: G, B, D, F#
