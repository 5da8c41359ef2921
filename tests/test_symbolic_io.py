"""Readers and the MIDI writer of tunesmith.symbolic.io."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from tunesmith.errors import InputFileError, MidiDecodeError, ParameterError
from tunesmith.symbolic import Note, Part, Score
from tunesmith.symbolic.io import (
    read_abc_text,
    read_music21_corpus,
    read_score,
    score_from_music21,
    split_abc,
    write_midi,
)

ABC_TUNES = """%abc file header comment
X:3
T:First
M:4/4
L:1/4
K:D
{e}d2- d2 | [DFA]2 B A | G4 |]

X:7
T:Second
M:3/4
L:1/8
K:Ador
E | A2 B2 c2 | B4 A2 |]
"""


@pytest.fixture(scope="module")
def chorale() -> Score:
    return read_music21_corpus("bach/bwv66.6")


def _score() -> Score:
    melody = Part(
        "Melody", [Note(60, 0.0, 1.0, 90), Note(62, 1.0, 0.5, 70), Note(62, 1.5, 2.5, 100)], program=40
    )
    # overlapping same-pitch notes (0-2 and 1-3) must pair first-in first-out
    piano = Part("Piano", [Note(48, 0.0, 2.0, 80), Note(48, 1.0, 2.0, 81), Note(55, 0.0, 4.0, 64)], program=0)
    drums = Part("Drums", [Note(36, 0.0, 0.25, 110), Note(38, 1.0, 0.25, 100)], program=0, is_drum=True)
    return Score(
        parts=[melody, piano, drums], tempo=96.0, key="Bb major", time_signature=(3, 4), title="demo"
    )


def test_midi_round_trip_is_exact(tmp_path: Path) -> None:
    score = _score()
    path = write_midi(score, tmp_path / "sub" / "demo.mid")
    back = read_score(path)
    assert (back.tempo, back.key, back.time_signature, back.title) == (96.0, "Bb major", (3, 4), "demo")
    assert [p.name for p in back.parts] == ["Melody", "Piano", "Drums"]
    assert [(p.program, p.is_drum) for p in back.parts] == [(40, False), (0, False), (0, True)]
    for original, read in zip(score.parts, back.parts, strict=True):
        assert read.notes == original.sorted().notes


def test_midi_drums_are_on_channel_ten(tmp_path: Path) -> None:
    path = write_midi(_score(), tmp_path / "demo.mid")
    channels = {m.channel for m in mido.MidiFile(str(path)).tracks[3] if m.type == "note_on"}
    assert channels == {9}


def test_midi_reader_pairs_velocity_zero_note_offs_and_splits_channels(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("program_change", channel=2, program=33, time=0))
    track.append(mido.Message("note_on", channel=2, note=40, velocity=90, time=0))
    track.append(mido.Message("note_on", channel=9, note=42, velocity=70, time=0))
    track.append(mido.Message("note_on", channel=9, note=42, velocity=0, time=24))  # velocity-0 note-off
    track.append(mido.Message("note_on", channel=2, note=40, velocity=0, time=72))
    track.append(mido.Message("note_on", channel=2, note=43, velocity=80, time=0))  # never released
    track.append(mido.MetaMessage("end_of_track", time=192))
    path = tmp_path / "type0.mid"
    mid.save(str(path))
    score = read_score(path)
    assert score.tempo == 120.0 and score.key is None and score.time_signature == (4, 4)
    bass, drums = sorted(score.parts, key=lambda p: p.is_drum)
    assert bass.program == 33 and not bass.is_drum
    assert bass.notes == [Note(40, 0.0, 1.0, 90), Note(43, 1.0, 2.0, 80)]
    assert drums.is_drum and drums.notes == [Note(42, 0.0, 0.25, 70)]


def test_chorale_from_corpus(chorale: Score) -> None:
    assert [p.name for p in chorale.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert chorale.key == "F# minor"
    assert chorale.time_signature == (4, 4)
    assert chorale.tempo == 96.0
    # one-beat pickup: the first note sits on beat 4 of an empty first bar
    assert min(n.start for n in chorale.all_notes()) == 3.0
    assert chorale.n_notes == 163


def test_musicxml_file_matches_corpus_reader(chorale: Score) -> None:
    from music21 import corpus

    direct = read_score(corpus.getWork("bach/bwv66.6"))
    assert [p.notes for p in direct.parts] == [p.notes for p in chorale.parts]


def test_chorale_midi_round_trip(chorale: Score, tmp_path: Path) -> None:
    back = read_score(write_midi(chorale, tmp_path / "c.mid"))
    assert [p.notes for p in back.parts] == [p.notes for p in chorale.parts]
    assert back.key == chorale.key and back.tempo == chorale.tempo


def test_abc_first_tune_ties_chords_and_grace_notes(tmp_path: Path) -> None:
    path = tmp_path / "tunes.abc"
    path.write_text(ABC_TUNES)
    assert [number for number, _ in split_abc(path.read_text())] == [3, 7]
    first = read_score(path)
    notes = first.parts[0].notes
    assert notes[0] == Note(74, 0.0, 4.0, 80)  # d2-d2 tied into one note; the {e} grace note is dropped
    assert [n.pitch for n in notes if n.start == 4.0] == [62, 66, 69]  # a chord: simultaneous notes
    assert first.key == "D major" and first.time_signature == (4, 4) and first.title == "First"
    assert first.tempo == 100.0  # no tempo mark: the documented default


def test_abc_tune_by_number_with_pickup_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "tunes.abc"
    path.write_text(ABC_TUNES)
    second = read_score(path, number=7)
    assert second.title == "Second" and second.time_signature == (3, 4)
    assert second.key == "A minor"  # A dorian -> minor by its third
    assert second.parts[0].notes[0] == Note(64, 2.5, 0.5, 80)  # eighth-note pickup ends the first bar
    with pytest.raises(ParameterError, match="X:5"):
        read_score(path, number=5)


def test_split_abc_and_ties_between_different_pitches() -> None:
    tunes = split_abc(ABC_TUNES)
    assert [n for n, _ in tunes] == [3, 7]
    assert all(text.startswith("%abc file header") for _, text in tunes)
    # O'Neill's transcriptions type slurs as ties ("G3-A"): both notes must survive
    slurred = read_abc_text("X:1\nM:2/4\nL:1/16\nK:C\nG3-A B4 | c8 |]")
    assert [(n.pitch, n.start, n.duration) for n in slurred.parts[0].notes][:2] == [
        (67, 0.0, 0.75),
        (69, 0.75, 0.25),
    ]
    with pytest.raises(MidiDecodeError, match="ABC text has no notes"):
        read_abc_text("X:1\nK:C\n")


def test_essen_and_ryans_folk_tunes() -> None:
    hildebrand = read_music21_corpus("essenFolksong/altdeu10")
    assert hildebrand.title == "Das Hildebrandslied" and hildebrand.time_signature == (4, 2)
    assert hildebrand.parts[0].notes[0].start == 6.0  # half-note pickup in 4/2
    reel = read_music21_corpus("ryansMammoth/AcaciaReel")
    assert reel.time_signature == (2, 4) and len(reel.parts) == 1 and reel.parts[0].notes


def test_humdrum_file() -> None:
    from music21 import corpus

    score = read_score(corpus.getWork("palestrina/Agnus_08"))
    assert len(score.parts) == 4 and score.key == "C major" and score.time_signature == (4, 2)


def test_score_from_music21_stream() -> None:
    from music21 import meter, note, stream

    part = stream.Part()
    part.append(meter.TimeSignature("3/4"))
    part.append(note.Note("C4", quarterLength=1.0))
    part.append(note.Rest(quarterLength=1.0))
    part.append(note.Note("E4", quarterLength=2.0))
    score = score_from_music21(part)
    assert score.parts[0].notes == [Note(60, 0.0, 1.0, 80), Note(64, 2.0, 2.0, 80)]
    assert score.key is None and score.time_signature == (3, 4)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_score(tmp_path / "nope.mid")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_score(empty)


def test_corrupt_and_unsupported_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(bytes(range(256)) * 3)
    with pytest.raises(MidiDecodeError, match=r"garbage\.mid"):
        read_score(garbage)
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(write_midi(_score(), tmp_path / "full.mid").read_bytes()[:60])
    with pytest.raises(MidiDecodeError, match=r"truncated\.mid"):
        read_score(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("C D E")
    with pytest.raises(MidiDecodeError, match=r"\.txt"):
        read_score(text)
    with pytest.raises(ParameterError, match="wav"):
        read_score(garbage, fmt="wav")
    bad_xml = tmp_path / "bad.musicxml"
    bad_xml.write_text("<score-partwise><oops")
    with pytest.raises(MidiDecodeError, match=r"bad\.musicxml"):
        read_score(bad_xml)


def test_file_without_notes(tmp_path: Path) -> None:
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    path = tmp_path / "silent.mid"
    mid.save(str(path))
    with pytest.raises(MidiDecodeError, match=r"silent\.mid has no notes"):
        read_score(path)


def test_write_midi_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="ticks_per_beat"):
        write_midi(_score(), tmp_path / "x.mid", ticks_per_beat=0)
    bad = Score(parts=[Part("P", [Note(130, 0.0, 1.0)])])
    with pytest.raises(ParameterError, match="130"):
        write_midi(bad, tmp_path / "x.mid")


def test_unknown_corpus_work() -> None:
    with pytest.raises(ParameterError, match="no-such-work"):
        read_music21_corpus("no-such-work-xyz")
