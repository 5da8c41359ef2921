"""Key names (tunesmith.symbolic.keys) and score transforms (tunesmith.symbolic.transform)."""

from __future__ import annotations

import pytest

from tunesmith.errors import ParameterError
from tunesmith.symbolic import Note, Part, Score
from tunesmith.symbolic.io import read_music21_corpus
from tunesmith.symbolic.keys import estimate_key, key_name, normalize_key, parse_key, scale_pitch_classes
from tunesmith.symbolic.transform import (
    is_monophonic,
    make_monophonic,
    quantize,
    split_voices,
    transpose,
    trim_to_bars,
)

# ------------------------------------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("D minor", (2, "minor")),
        ("Dm", (2, "minor")),
        ("f# major", (6, "major")),
        ("Bb", (10, "major")),
        ("E-flat minor", (3, "minor")),
        ("B- major", (10, "major")),
        ("C#min", (1, "minor")),
        ("G sharp minor", (8, "minor")),
        ("Cb major", (11, "major")),
        ("A aeolian", (9, "minor")),
        ("  e   MINOR ", (4, "minor")),
        ("bb", (10, "minor")),  # lone lower-case tonic = minor (music21/Humdrum convention)
    ],
)
def test_parse_key(text: str, expected: tuple[int, str]) -> None:
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["H# lydian", "X major", "", "D dorian", "Dmaj7", "C##m#"])
def test_parse_key_rejects(text: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_key(text)
    assert repr(text) in str(info.value)


def test_key_name_spellings() -> None:
    assert key_name(2, "minor") == "D minor"
    assert key_name(6, "major") == "F# major"
    assert key_name(10, "major") == "Bb major"
    assert key_name(3, "minor") == "Eb minor"
    assert key_name(1, "major") == "Db major"
    assert normalize_key("g#m") == "G# minor"
    for pc in range(12):
        for mode in ("major", "minor"):
            assert parse_key(key_name(pc, mode)) == (pc, mode)
    with pytest.raises(ParameterError, match="12"):
        key_name(12, "major")
    with pytest.raises(ParameterError, match="dorian"):
        key_name(0, "dorian")


def test_scales_and_estimate() -> None:
    assert scale_pitch_classes(0, "major") == [0, 2, 4, 5, 7, 9, 11]
    assert scale_pitch_classes(9, "minor") == [9, 11, 0, 2, 4, 5, 7]
    d_minor = [(62, 2.0), (64, 1.0), (65, 1.0), (67, 1.0), (69, 2.0), (70, 1.0), (61, 1.0), (62, 2.0)]
    assert estimate_key(d_minor) == (2, "minor")
    assert estimate_key(d_minor, candidates=[(5, "major"), (2, "minor")]) == (2, "minor")


# ----------------------------------------------------------------------------------------- transforms


def _score() -> Score:
    melody = Part("Melody", [Note(60, 0.0, 1.0), Note(64, 1.0, 1.0), Note(67, 2.0, 2.0)])
    drums = Part("Drums", [Note(36, 0.0, 0.5)], is_drum=True)
    return Score(parts=[melody, drums], key="C major")


def test_transpose() -> None:
    score = _score()
    up = transpose(score, 3)
    assert [n.pitch for n in up.parts[0].notes] == [63, 67, 70]
    assert up.parts[1].notes == score.parts[1].notes  # drums untouched
    assert up.key == "Eb major"
    assert score.parts[0].notes[0].pitch == 60  # input untouched
    assert transpose(Score(parts=score.parts, key="A minor"), -2).key == "G minor"
    with pytest.raises(ParameterError, match="pitch 128"):
        transpose(score, 64)
    with pytest.raises(ParameterError, match="semitones"):
        transpose(score, 1.5)  # type: ignore[arg-type]


def test_quantize() -> None:
    part = Part(
        "P",
        [
            Note(60, 0.02, 0.97, 80),
            Note(62, 1.1, 0.01, 80),  # too short: becomes one step
            Note(64, 2.0, 1.0, 70),
            Note(64, 2.01, 0.5, 90),  # duplicate onset and pitch: the longer note wins
        ],
    )
    q = quantize(Score(parts=[part]), steps_per_beat=4).parts[0]
    assert q.notes == [Note(60, 0.0, 1.0, 80), Note(62, 1.0, 0.25, 80), Note(64, 2.0, 1.0, 70)]
    with pytest.raises(ParameterError, match="steps_per_beat"):
        quantize(Score(parts=[part]), steps_per_beat=0)


def test_monophony() -> None:
    mono = Part("M", [Note(60, 0.0, 1.0), Note(62, 1.0, 1.0)])
    chords = Part("C", [Note(60, 0.0, 2.0), Note(64, 0.0, 1.0), Note(67, 1.0, 1.0)])
    assert is_monophonic(mono)
    assert not is_monophonic(chords)
    top = make_monophonic(chords)
    assert top.notes == [Note(64, 0.0, 1.0), Note(67, 1.0, 1.0)]
    assert is_monophonic(top)
    bottom = make_monophonic(chords, keep="lowest")
    assert bottom.notes == [Note(60, 0.0, 1.0), Note(67, 1.0, 1.0)]


def test_split_voices_recovers_chorale_parts() -> None:
    chorale = quantize(read_music21_corpus("bach/bwv66.6"))
    merged = Part("All", [n for p in chorale.parts for n in p.notes])
    voices = split_voices(merged)
    assert len(voices) == 4
    assert all(is_monophonic(v) for v in voices)
    assert sum(len(v.notes) for v in voices) == chorale.n_notes
    kept = sum(len(set(v.notes) & set(p.notes)) for v, p in zip(voices, chorale.parts, strict=True))
    assert kept / chorale.n_notes > 0.95


def test_trim_to_bars() -> None:
    part = Part("P", [Note(60, 0.0, 4.0), Note(62, 4.0, 2.0), Note(64, 9.0, 5.0), Note(65, 12.0, 1.0)])
    window = trim_to_bars(Score(parts=[part]), start_bar=1, n_bars=2)
    assert window.parts[0].notes == [Note(62, 0.0, 2.0), Note(64, 5.0, 3.0)]  # the last note is clipped
