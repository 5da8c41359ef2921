"""`tunesmith evaluate song`: each of its measures on small real data and tiny models, and each one able to fail
(a classifier on shuffled labels at chance, a song at the wrong tempo or key, an untrained model above the n-gram,
a copied track flagged)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tunesmith.data.corpora.grooves import build_grooves, iter_songs
from tunesmith.evaluate.ngram import NGramModel
from tunesmith.evaluate.song import (
    compare_sparse,
    evaluate_song,
    heard_tempo,
    nll_report,
    pitched_key,
    record_stats,
    summary_lines,
    tempo_verdict,
    valid_reference,
)
from tunesmith.evaluate.song_ngram import HashedNGram, event_tokens
from tunesmith.evaluate.style_classifier import StyleClassifier, song_features
from tunesmith.provenance.originality import SymbolicIndex
from tunesmith.provenance.song_originality import RunIndex, TrackIndex, note_tokens
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.song_tokens import ROLES
from tunesmith.train.song_data import band_tracks

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A real grooves build of 9 songs (one per family in turn), split train / valid / test in turn."""
    out = tmp_path_factory.mktemp("grooves") / "grooves"
    build_grooves(out, limit=9, workers=2)
    manifest = out / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    for i, record in enumerate(records):
        record["split"] = SPLITS[i % 3]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


@pytest.fixture(scope="module")
def writer():
    """An untrained tiny song model with a card of the shipped shape."""
    from tunesmith.compose.song import SongWriter
    from tunesmith.train.song import untrained_model

    model, card = untrained_model(dim=16, layers=1, heads=2)
    return SongWriter(model, card, name="tiny")


# ---------------------------------------------------------------------------------------------- the classifier


def _song(swing: bool, rng: np.random.Generator, bars: int = 8) -> Score:
    """Drums and bass of a straight (sixteenths, backbeat) or swung (triplet ride, walking bass) song."""
    drums, bass = [], []
    for bar in range(bars):
        for beat in range(4):
            t = bar * 4 + beat
            if swing:
                drums += [Note(51, t, 0.1, 90), Note(51, t + 2 / 3, 0.1, 70)]
                bass.append(Note(int(rng.integers(36, 48)), t, 1.0, 80))
            else:
                drums += [Note(42, t + k / 4, 0.1, 80) for k in range(4)]
                drums.append(Note(36 if beat % 2 == 0 else 38, t, 0.1, 110))
                bass += [Note(int(rng.integers(36, 40)), t, 0.5, 100), Note(int(rng.integers(36, 40)), t + 0.5, 0.5)]
    return Score(parts=[Part("drums", drums, 0, True), Part("bass", bass, 33)], tempo=120.0)


def test_style_classifier_learns_styles_and_is_at_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    labels = ["swing" if i % 2 else "rock" for i in range(40)]
    x = np.stack([song_features(_song(label == "swing", rng), ["drums", "bass"]) for label in labels])
    train, test = slice(0, 24), slice(24, 40)
    fitted = StyleClassifier.fit(x[train], labels[train], candidates=["extra_trees"])
    accuracy = np.mean(np.array(fitted.predict(x[test])) == np.array(labels[test]))
    assert accuracy == 1.0
    # labels shuffled so that each half of either style gets either label: nothing left to learn
    shuffled = ["swing" if (i // 2) % 2 else "rock" for i in range(24)]
    chance = StyleClassifier.fit(x[train], shuffled, candidates=["extra_trees"])
    assert 0.25 <= np.mean(np.array(chance.predict(x[test])) == np.array(labels[test])) <= 0.75


def test_features_leave_out_tempo():
    rng = np.random.default_rng(0)
    song = _song(True, rng)
    fast = Score(parts=song.parts, tempo=200.0)
    assert np.array_equal(song_features(song, ["drums", "bass"]), song_features(fast, ["drums", "bass"]))


# ---------------------------------------------------------------------------------------- statistics, tempo, key


def test_statistics_within_and_off_the_goal():
    held = [{"bass.note_density": 4.0, "drums.polyphony": 1.5}, {"bass.note_density": 4.4, "drums.polyphony": 1.7}]
    close = compare_sparse([{"bass.note_density": 4.1, "drums.polyphony": 1.6}], held)
    assert all(v["within_goal"] for v in close.values())
    busy = compare_sparse([{"bass.note_density": 8.0}], held)  # a statistic only one side has is left out
    assert list(busy) == ["bass.note_density"] and not busy["bass.note_density"]["within_goal"]


def _beat(tempo: float, bars: int = 12) -> Score:
    notes = [Note(36 if b % 2 == 0 else 38, b, 0.25, 110) for b in range(4 * bars)]
    notes += [Note(42, b / 2, 0.25, 70) for b in range(8 * bars)]
    return Score(parts=[Part("drums", notes, 0, True)], tempo=tempo)


def test_tempo_heard_by_the_beat_tracker_and_a_wrong_tempo_fails():
    renderer = get_renderer(22050)
    heard = heard_tempo(renderer.render(_beat(120.0), tail=0.5), 22050)
    assert tempo_verdict(heard, 120.0)["within"]
    wrong = tempo_verdict(heard, 100.0)
    assert not wrong["within"] and not wrong["octave_error"]
    assert tempo_verdict(heard, 60.0)["octave_error"] and not tempo_verdict(heard, 60.0)["within"]


def test_key_found_in_the_pitched_tracks():
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 55, 60]
    melody = Part("lead", [Note(p, i, 1.0) for i, p in enumerate(scale)], 73)
    drums = Part("drums", [Note(k, i / 2, 0.1) for i, k in enumerate([37, 39, 49, 61] * 6)], 0, True)
    assert pitched_key(Score(parts=[melody, drums], tempo=100.0)) == "C major"
    shifted = Part("lead", [Note(p + 1, n.start, n.duration) for p, n in zip(scale, melody.notes, strict=True)], 73)
    assert pitched_key(Score(parts=[shifted], tempo=100.0)) != "C major"
    assert pitched_key(Score(parts=[drums], tempo=100.0)) is None  # a drums-only song (MMA has some) has no key


# ------------------------------------------------------------------------------------------------ the n-gram


def test_hashed_ngram_is_the_dict_ngram():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 6, size=int(rng.integers(5, 30))).tolist() for _ in range(20)]
    test = [rng.integers(0, 7, size=15).tolist() for _ in range(3)]
    for order in (1, 2, 4):
        reference = NGramModel(order, 7).fit(sequences)
        hashed = HashedNGram(order, 7).fit(sequences).token_nll(test)
        expected = [-np.log(reference.prob(s[max(0, i - order + 1):i], s[i])) for s in test for i in range(1, len(s))]
        assert np.allclose(hashed, expected)


def test_event_tokens_one_event_per_step(corpus):
    from tunesmith.train.song_data import EnergyTable, encode_record

    song = next(iter_songs(corpus))
    steps = encode_record(song, EnergyTable({})).steps
    tokens, events = event_tokens(steps)
    assert events[-1] + 1 == len(steps) - 1  # every step after BOS is one event
    assert len(tokens) > len(steps)  # notes take three tokens


def test_untrained_model_is_not_below_the_ngram(corpus, writer, tmp_path):
    report = nll_report(writer, corpus, max_events=3000, cache_dir=tmp_path)
    assert report["ngram"]["test_nll"] > 0 and report["model_test_nll"] > 0
    assert report["improvement_over_ngram"] < 0.25 and not report["passed"]


def test_the_test_nll_reads_each_songs_style_file(corpus, tmp_path):
    """A model with style files is scored on the test songs with their own style files, as it was trained."""
    import torch

    from tunesmith.compose.song import SongWriter
    from tunesmith.train.song import untrained_model

    records = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    files = sorted({(r["labels"]["family"], r["labels"]["style_file"], r["labels"]["meter"]) for r in records})
    torch.manual_seed(0)  # the same tiny model whatever ran before (the global generator's state)
    model, card = untrained_model(dim=16, layers=1, heads=2, n_style_files=len(files))
    card = {**card, "style_files": [{"id": name, "family": family, "meter": meter, "songs": 1, "tempo": [60, 120, 180]}
                                    for family, name, meter in files]}
    with torch.no_grad():
        model.style_file.weight.normal_(0.0, 1.0)  # style files that matter
    read = nll_report(SongWriter(model, card, name="tiny"), corpus, max_events=3000, cache_dir=tmp_path)
    unread = nll_report(SongWriter(model, {**card, "style_files": []}, name="tiny"), corpus, max_events=3000,
                        cache_dir=tmp_path)
    # unread, the same computation gives the same number to the last bit; read, the style files move it
    assert abs(read["model_test_nll"] - unread["model_test_nll"]) > 1e-5
    assert read["ngram"] == unread["ngram"]


# ------------------------------------------------------------------------------------------------ originality


def test_run_index_agrees_with_symbolic_index():
    rng = np.random.default_rng(3)

    def voice(n: int, t: float = 0.0) -> list[Note]:
        out = []
        for _ in range(n):
            d = float(rng.choice([0.5, 1.0]))
            out.append(Note(int(rng.integers(60, 64)), t, d))
            t += d
        return out

    train = [voice(50) for _ in range(10)]
    fast = RunIndex([(f"t{i}", note_tokens(v), note_tokens(v)) for i, v in enumerate(train)])
    slow = SymbolicIndex((f"t{i}", Score(parts=[Part("v", v)])) for i, v in enumerate(train))
    copied = voice(6) + [Note(n.pitch + 3, n.start + 100, n.duration) for n in train[4][10:40]]
    for query in (voice(40), copied):
        tokens = note_tokens(query)
        assert fast.longest(tokens, tokens)[0] == slow.longest_shared_run(Score(parts=[Part("v", query)])).length
    assert fast.longest(note_tokens(copied), note_tokens(copied)) == (29, "t4")


def test_a_copied_track_is_flagged(corpus):
    songs = list(iter_songs(corpus, "train"))
    index = TrackIndex.build((s.record.id, {r: n for r, n in band_tracks(s)}, s.score.bar_beats,
                              int(np.ceil(s.labels["bars"]))) for s in songs)
    source = songs[0]
    drums = next(n for r, n in band_tracks(source) if r == "drums")
    bars = int(np.ceil(source.labels["bars"]))
    rng = np.random.default_rng(0)
    random_drums = [Note(int(rng.choice([36, 38, 42, 49, 56])), float(rng.integers(0, 16 * bars)) / 4, 0.25)
                    for _ in range(200)]
    copied, fresh = index.check_many([("drums", drums, source.score.bar_beats, bars),
                                      ("drums", random_drums, source.score.bar_beats, bars)])
    assert copied["flagged"] and copied["bars"] >= 4 and copied["notes_source"] == source.record.id
    assert not fresh["flagged"] and fresh["bars"] <= 1


# ------------------------------------------------------------------------------------------------ end to end


def test_evaluate_song_end_to_end(corpus, writer, tmp_path):
    report = evaluate_song("tiny", corpus, None, per_style=1, out=tmp_path, max_events=3000, writer=writer)
    assert report["songs"] == report["styles"] >= 1
    assert set(report["goals"]) == {"style_recognisable", "statistics_within_15pct", "tempo_within_4pct",
                                    "key_found_by_music21", "originality", "nll_25pct_below_ngram"}
    assert not report["goals"]["nll_25pct_below_ngram"]  # random weights
    assert report["drums"]["human_patterns"] == 0 and "note" in report["drums"]
    assert report["tempo"]["held_out_reference"]["songs"] >= 1  # the instruments on the real songs
    reference = report["originality"]["held_out_reference"]  # the real songs against the same training tracks
    assert reference["songs"] == report["tempo"]["held_out_reference"]["songs"]
    assert reference["all_tracks"]["tracks"] >= reference["songs"] and set(reference["per_track"]) <= set(ROLES)
    assert any("held-out MMA songs" in line for line in summary_lines(report))
    assert report["statistics"]["valid_reference"] is None or "real songs" in "".join(summary_lines(report))
    assert (tmp_path / "song-style-confusion.png").is_file()
    assert any(line.startswith("[") for line in summary_lines(report))
    assert report["copy_guard"] is True and report["copy_redraws"] >= 0 and writer.copy_guard is None
    assert any("written with the copy guard" in line for line in summary_lines(report))
    json.dumps(report)


def test_cli_rejects_no_songs(capsys):
    from tunesmith.cli import main

    assert main(["evaluate", "song", "--songs", "0"]) == 2
    assert "--songs" in capsys.readouterr().err


def test_real_songs_scored_as_generated_ones(corpus):
    """The statistics goal on real valid songs: against their own statistics every one is within; against the
    same statistics doubled none is."""
    valid = defaultdict(list)
    for song in iter_songs(corpus, "valid"):
        valid[song.labels["family"]].append(record_stats(song))
    styles = sorted(valid)
    same = valid_reference(corpus, valid, styles, 1, seed=0)
    assert same["songs"] == sum(len(v) for v in valid.values())
    assert same["family_statistics_within"] == same["family_statistics_graded"] > 0 and not same["off_overall"]
    doubled = {fam: [{k: 2 * v + 1 for k, v in s.items()} for s in songs] for fam, songs in valid.items()}
    other = valid_reference(corpus, doubled, styles, 1, seed=0)
    assert other["family_statistics_within"] == 0 and other["families_passed"] == 0
