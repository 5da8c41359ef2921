"""Per-track song statistics and the MMA-versus-human drum report."""

from __future__ import annotations

import pytest

from tunesmith.data.corpora.grooves import build_grooves
from tunesmith.data.corpora.human_drums import build_human_drums
from tunesmith.evaluate.song_stats import (
    chord_tone_ratio,
    drum_in_pattern_rate,
    drum_report,
    empty_beat_rate,
    groove_consistency,
    polyphony,
    scale_consistency,
    song_statistics,
)
from tunesmith.symbolic.score import Note, Part, Score


def _drums(bars: int, pattern: list[float], jitter: float = 0.0) -> Part:
    notes = [Note(36 if beat % 2 == 0 else 38, bar * 4 + beat + jitter, 0.25, 100)
             for bar in range(bars) for beat in pattern]
    return Part("Drum", notes, 0, True)


def test_groove_consistency_and_drum_pattern():
    steady = _drums(4, [0.0, 1.0, 2.0, 3.0])
    assert groove_consistency(steady, 4.0, 4) == 1.0
    assert drum_in_pattern_rate(steady) == 1.0
    changing = Part("Drum", [*steady.notes, Note(42, 4 * 3 + 0.5, 0.25)], 0, True)
    assert groove_consistency(changing, 4.0, 4) < 1.0
    late = _drums(2, [0.0, 1.0], jitter=0.1)    # 0.1 beat off the sixteenth grid
    assert drum_in_pattern_rate(late) == 0.0


def test_empty_beats_polyphony_and_scale():
    chord = Part("Chord", [Note(p, 0.0, 2.0) for p in (60, 64, 67)])
    assert empty_beat_rate(chord, 4.0) == 0.5
    assert polyphony(chord, 4.0) == 3.0
    chromatic = Part("Lead", [Note(60 + i, float(i), 1.0) for i in range(12)])
    assert scale_consistency(chromatic) == pytest.approx(7 / 12)
    assert scale_consistency(Part("Lead", [Note(p, 0.0, 1.0) for p in (62, 64, 66, 67, 69)])) == 1.0


def test_chord_tone_ratio_on_strong_beats():
    bass = Part("Bass", [Note(36, 0.0, 1.0), Note(43, 2.0, 1.0), Note(41, 4.0, 1.0), Note(37, 6.0, 1.0)])
    chords = [(0.0, "C"), (4.0, "F")]
    assert chord_tone_ratio(bass, chords, 4.0, (4, 4), 8.0) == pytest.approx(3 / 4)   # C#2 is not in F
    assert chord_tone_ratio(bass, chords, 3.0, (3, 4), 6.0) is not None
    score = Score([bass, _drums(2, [0.0, 2.0])], time_signature=(4, 4))
    stats = song_statistics(score, ["bass", "drums"], chords=chords, bars=2)
    assert set(stats) == {"bass", "drums"}
    assert stats["bass"]["chord_tone_ratio"] == pytest.approx(0.75)
    assert "drum_in_pattern_rate" in stats["drums"] and "pitch_class_entropy" not in stats["drums"]


def test_drum_report_puts_mma_beside_human_drums(tmp_path):
    build_grooves(tmp_path / "grooves", limit=3, workers=1)
    build_human_drums(tmp_path / "human", limit=4)
    report = drum_report(tmp_path / "grooves", tmp_path / "human", split=None)
    assert report["mma_songs"] >= 2 and report["human_patterns"] >= 10
    for name in ("groove_consistency", "drum_in_pattern_rate", "empty_beat_rate", "note_density"):
        row = report["overall"][name]
        assert row["human"] >= 0 and row["mma"] >= 0 and row["relative_difference"] >= 0
        low, high = row["human_interval95"]
        assert low <= row["human"] <= high
    assert set(report["by_family"]) <= {"swing", "big_band", "jazz"}
