"""The voice-grid token encoding (tunesmith.symbolic.tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.errors import InputFileError, ParameterError
from tunesmith.symbolic import Note, Part, Score
from tunesmith.symbolic.io import read_music21_corpus
from tunesmith.symbolic.tokens import (
    HEADER_LENGTH,
    VOCAB,
    Vocabulary,
    decode,
    encode,
    load_vocabulary,
    melody_step_ids,
    save_vocabulary,
    text_to_tokens,
    tokens_to_text,
)
from tunesmith.symbolic.transform import quantize

CHORALES = ["bach/bwv66.6", "bach/bwv10.7", "bach/bwv269", "bach/bwv347"]


def _assert_round_trip(score: Score, *, steps_per_beat: int = 4) -> list[int]:
    ids = encode(score, steps_per_beat=steps_per_beat)
    back = decode(ids, steps_per_beat=steps_per_beat, tempo=score.tempo)
    expected = quantize(score, steps_per_beat=steps_per_beat)
    assert len(back.parts) == len(expected.parts)
    for got, want in zip(back.parts, expected.parts, strict=True):
        assert [(n.pitch, n.start, n.duration) for n in got.notes] == [
            (n.pitch, n.start, n.duration) for n in want.notes
        ]
    assert back.key == score.key
    return ids


def test_vocabulary_layout() -> None:
    assert len(VOCAB) == VOCAB.size == 177
    assert VOCAB.pad_id == 0 and VOCAB.token(VOCAB.bos_id) == "BOS"
    assert len({VOCAB.pad_id, VOCAB.bos_id, VOCAB.eos_id, VOCAB.bar_id, VOCAB.hold_id, VOCAB.rest_id}) == 6
    assert len(VOCAB.pitch_ids) == 128 and VOCAB.token(VOCAB.pitch_ids[60]) == "P60"
    assert VOCAB.is_pitch(VOCAB.pitch_id(69)) and not VOCAB.is_pitch(VOCAB.hold_id)
    assert VOCAB.pitch_of(VOCAB.pitch_id(0)) == 0 and VOCAB.pitch_of(VOCAB.rest_id) is None
    assert VOCAB.token(VOCAB.key_id(2, "minor")) == "KEY_2_minor"
    assert VOCAB.token(VOCAB.meter_id(5, 4)) == "METER_other"
    with pytest.raises(ParameterError, match="P128"):
        VOCAB.id("P128")
    with pytest.raises(ParameterError, match="177"):
        VOCAB.token(177)


def test_vocabulary_json(tmp_path: Path) -> None:
    path = save_vocabulary(tmp_path / "vocab.json", metadata={"steps_per_beat": 4})
    data = json.loads(path.read_text())
    assert data["size"] == 177 and data["metadata"] == {"steps_per_beat": 4}
    assert load_vocabulary(path) == VOCAB
    path.write_text("{}")
    with pytest.raises(InputFileError):
        Vocabulary.load(path)
    with pytest.raises(InputFileError):
        Vocabulary.load(tmp_path / "missing.json")


@pytest.mark.parametrize("name", CHORALES)
def test_chorale_round_trip(name: str) -> None:
    score = read_music21_corpus(name)
    ids = _assert_round_trip(score)
    assert ids[0] == VOCAB.bos_id and ids[-1] == VOCAB.eos_id
    assert VOCAB.token(ids[3]) == "VOICES_4"
    per_bar = 1 + round(score.bar_beats * 4) * 4
    assert (len(ids) - HEADER_LENGTH - 1) % per_bar == 0


def test_pickup_becomes_leading_rests() -> None:
    ids = encode(read_music21_corpus("bach/bwv66.6"))  # one-beat pickup in 4/4
    assert VOCAB.token(ids[HEADER_LENGTH]) == "BAR"
    first_bar = ids[HEADER_LENGTH + 1 : HEADER_LENGTH + 1 + 64]
    assert first_bar[:48] == [VOCAB.rest_id] * 48  # three beats x four steps x four voices
    assert VOCAB.token(first_bar[48]) == "P73"  # the soprano's C#5 on beat four


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("essenFolksong/altdeu10", 1),
        ("essenFolksong/altdeu10", 3),
        ("essenFolksong/han1", None),
        ("essenFolksong/kinder0", 2),
    ],
)
def test_folk_tune_round_trip(name: str, number: int | None) -> None:
    _assert_round_trip(read_music21_corpus(name, number=number))


def test_triplet_reel_round_trip_on_finer_grid() -> None:
    reel = read_music21_corpus("ryansMammoth/AcaciaReel")
    with pytest.raises(ParameterError, match="polyphonic"):
        encode(reel)  # triplet sixteenths collide on a sixteenth grid
    _assert_round_trip(reel, steps_per_beat=12)


def test_unsupported_meter_and_voice_padding() -> None:
    melody = Part("Tune", [Note(60, 0.0, 2.0), Note(62, 2.0, 3.0), Note(64, 5.0, 1.0)])
    score = Score(parts=[melody], time_signature=(5, 4), key="C major")
    ids = encode(score, voices=3)
    assert VOCAB.token(ids[2]) == "METER_other" and VOCAB.token(ids[3]) == "VOICES_3"
    back = decode(ids, programs=[40, 41, 42])
    assert back.time_signature == (5, 4)  # recovered from the bar length
    assert [p.program for p in back.parts] == [40, 41, 42]
    assert [(n.pitch, n.start, n.duration) for n in back.parts[0].notes] == [
        (60, 0, 2),
        (62, 2, 3),
        (64, 5, 1),
    ]
    assert back.parts[1].notes == [] and back.parts[2].notes == []


def test_repeated_notes_stay_distinct_from_held_notes() -> None:
    score = Score(
        parts=[Part("P", [Note(60, 0.0, 1.0), Note(60, 1.0, 1.0), Note(60, 2.0, 2.0)])], key="C major"
    )
    text = tokens_to_text(encode(score))
    assert text.startswith("BOS KEY_0_major METER_4_4 VOICES_1 BAR P60 HOLD HOLD HOLD P60 HOLD HOLD HOLD P60")
    _assert_round_trip(score)


def test_encode_errors() -> None:
    chords = Part("Piano RH", [Note(60, 0.0, 1.0), Note(64, 0.0, 1.0)])
    with pytest.raises(ParameterError, match="Piano RH"):
        encode(Score(parts=[chords]))
    two = Score(parts=[Part("A", [Note(60, 0, 1)]), Part("B", [Note(48, 0, 1)])])
    with pytest.raises(ParameterError, match="voices=1"):
        encode(two, voices=1)
    with pytest.raises(ParameterError, match="7/16"):
        encode(Score(parts=[Part("A", [Note(60, 0, 1)])], time_signature=(7, 16)), steps_per_beat=2)
    with pytest.raises(ParameterError, match="pitched"):
        encode(Score(parts=[Part("Kit", [Note(36, 0, 1)], is_drum=True)]))


def test_key_is_estimated_when_missing() -> None:
    tune = Part("T", [Note(p, float(i), 1.0) for i, p in enumerate([57, 60, 64, 62, 60, 59, 57, 56, 57])])
    ids = encode(Score(parts=[tune]))
    assert VOCAB.token(ids[1]) == "KEY_9_minor"


def test_decode_is_lenient_with_sampled_sequences_but_not_with_broken_structure() -> None:
    tokens = "BOS KEY_7_major METER_2_4 VOICES_2 BAR HOLD P48 P67 HOLD REST HOLD PAD P69"
    score = decode(text_to_tokens(tokens))  # leading HOLD = rest, PAD skipped, half step dropped
    assert [(n.pitch, n.start, n.duration) for n in score.parts[0].notes] == [(67, 0.25, 0.25)]
    assert [(n.pitch, n.start, n.duration) for n in score.parts[1].notes] == [(48, 0.0, 0.75)]
    assert score.key == "G major" and score.time_signature == (2, 4)
    with pytest.raises(ParameterError, match="middle"):
        decode(text_to_tokens("BOS VOICES_2 BAR P60 BAR P60"))
    with pytest.raises(ParameterError, match="VOICES"):
        decode(text_to_tokens("BOS BAR P60"))
    with pytest.raises(ParameterError, match="999"):
        decode([1, 999])


def test_melody_forcing_matches_soprano_tokens() -> None:
    chorale = read_music21_corpus("bach/bwv10.7")
    ids = encode(chorale)
    n_steps = (len(ids) - HEADER_LENGTH - 1) // 65 * 16
    forced = melody_step_ids(chorale.parts[0], time_signature=chorale.time_signature)
    assert len(forced) == n_steps
    body = [i for i in ids[HEADER_LENGTH:-1] if i != VOCAB.bar_id]
    assert body[0::4] == forced


def test_text_round_trip() -> None:
    ids = encode(Score(parts=[Part("P", [Note(72, 0.0, 0.5)])], key="F major"))
    assert text_to_tokens(tokens_to_text(ids, bar_lines=True)) == ids
