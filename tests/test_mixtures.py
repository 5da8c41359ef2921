"""The mixtures corpus, the mixture tagger's training, its facade in the analysis and its evaluation.

Tiny real data: three grooves songs rendered by MMA (their splits set to train, valid and test so every split has
one), the Hydrogen kits of a small samples build, MuseScore General Lite for training and FluidR3 held out.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pytest

from tests.test_cli import assert_one_line_error, tunesmith
from tunesmith.analyze.analyzer import Analyzer
from tunesmith.analyze.mixtures import MixtureTagger, segments_of, smooth
from tunesmith.audio.augment import Chain, apply_chain, mp3_roundtrip, random_chain, room
from tunesmith.data.corpora.grooves import build_grooves
from tunesmith.data.corpora.mixtures import build_mixtures, family_of_program, merge, presence, sounding
from tunesmith.data.corpora.samples import build_samples
from tunesmith.data.dataset import Dataset
from tunesmith.data.manifest import MANIFEST_NAME, read_manifest, write_manifest
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.evaluate.mixtures import evaluate_mixtures, held_out_check
from tunesmith.symbolic.render import resolve_soundfont
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.train.mixtures import MixtureTrainConfig, segment_scores, train_mixtures

SR = 16000
SECONDS = 4.0


def _resplit(root, splits):
    records = list(read_manifest(root / MANIFEST_NAME))
    for record, split in zip(records, splits, strict=False):
        record.split = split
    write_manifest(root / MANIFEST_NAME, records)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("mixture-sources")
    build_grooves(base / "grooves", limit=3, workers=1)
    _resplit(base / "grooves", ["train", "valid", "test"])
    build_samples(base / "samples", sources=["hydrogen"], limit=120)
    return base / "grooves", base / "samples"


@pytest.fixture(scope="module")
def mixtures(sources, tmp_path_factory):
    grooves, samples = sources
    out = tmp_path_factory.mktemp("mixtures") / "mixtures"
    summary = build_mixtures(out, grooves=grooves, samples=samples, seconds=SECONDS, excerpts=2,
                             soundfonts=["lite"], test_soundfont="fluidr3")
    return summary, Dataset(out)


@pytest.fixture(scope="module")
def run(mixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixture-run")
    card = train_mixtures(mixtures[1].root, out, MixtureTrainConfig(max_steps=3, eval_every=3, batch_size=4,
                                                                   crop_seconds=2.0), progress_bar=False)
    return out, card


# ------------------------------------------------------------------------------------------------ corpus


def test_build_holds_out_a_soundfont_and_kits(mixtures):
    summary, data = mixtures
    assert summary.splits == {"train": 2, "valid": 2, "test": 1}
    kits = data.info["kits"]
    for record in data.records:
        if record.split == "test":
            assert record.labels["soundfont"] == "fluidr3"
            assert record.labels["drums"] in {*kits["test"], "soundfont"}
        else:
            assert record.labels["soundfont"] == "lite"
            assert record.labels["drums"] in {*kits[record.split], "soundfont"}
    assert not set(kits["test"]) & (set(kits["train"]) | set(kits["valid"]))


def test_records_carry_audio_labels_and_licences(mixtures):
    _, data = mixtures
    lite, fluid = resolve_soundfont("lite"), resolve_soundfont("fluidr3")
    for record in data.records:
        y = np.asarray(data.array("audio", record), dtype=np.float32)
        assert y.shape == (round(SECONDS * SR),) and np.isfinite(y).all() and np.abs(y).max() > 1e-3
        assert "MMA" in record.licence
        assert (fluid if record.split == "test" else lite).licence in record.licence
        if record.labels["drums"] != "soundfont":
            assert "drums:" in record.licence
        families = record.labels["families"]
        assert families and set(families) <= set(data.info["families"])
        for spans in families.values():
            assert all(0 <= a < b <= SECONDS for a, b in spans)
        played = {p["family"] for p in record.labels["parts"]}
        assert set(families) <= played
    assert data.info["licences"] and sum(data.info["licences"].values()) == len(data.records)


def test_a_corrupt_song_is_reported_and_skipped(sources, tmp_path):
    grooves, samples = sources
    broken = tmp_path / "grooves"
    shutil.copytree(grooves, broken)
    records = list(read_manifest(broken / MANIFEST_NAME))
    records[0].labels["tracks"] = []  # its notes name tracks the record no longer has
    write_manifest(broken / MANIFEST_NAME, records)
    summary = build_mixtures(tmp_path / "out", grooves=broken, samples=samples, seconds=2.0,
                             soundfonts=["lite"], test_soundfont="fluidr3")
    assert summary.items == 2
    assert any(records[0].id in s.source and "IndexError" in s.reason for s in summary.skipped)


def test_bad_options_are_refused(sources, tmp_path):
    grooves, samples = sources
    with pytest.raises(ParameterError, match="differ from the held-out"):
        build_mixtures(tmp_path / "x", grooves=grooves, samples=samples, soundfonts=["lite"], test_soundfont="lite")
    with pytest.raises(DatasetError, match="not 'samples'"):
        build_mixtures(tmp_path / "x", grooves=grooves, samples=grooves)
    with pytest.raises(ParameterError, match="seconds"):
        build_mixtures(tmp_path / "x", grooves=grooves, samples=samples, seconds=0.5)


def test_cli_names_a_missing_source_dataset(tmp_path):
    result = tunesmith("data", "build", "mixtures", "--out", str(tmp_path / "m"), "--grooves", str(tmp_path / "no"))
    assert_one_line_error(result, "no built grooves dataset")


def test_labels_from_notes():
    score = Score(parts=[Part("p", [Note(60, 0.0, 1.0), Note(62, 1.0, 1.0)], program=0),
                         Part("d", [Note(36, 2.0, 0.1)], program=0, is_drum=True),
                         Part("fx", [Note(60, 0.0, 1.0)], program=122)], tempo=60.0)
    families, instruments = sounding(score, 4.0)
    assert families == {"drums": [[2.0, 2.3]], "keyboard": [[0.0, 2.15]]}  # notes joined, release added
    assert instruments == {"piano": [[0.0, 2.15]]}
    assert family_of_program(40) == "string" and family_of_program(122) is None
    assert merge([(0.0, 1.0), (2.0, 3.0)]) == [[0.0, 1.0], [2.0, 3.0]]
    matrix = presence(families, ["keyboard", "drums", "bass"], frames=8, hop_seconds=0.5)
    assert matrix[0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert matrix[1].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert not matrix[2].any()


# ---------------------------------------------------------------------------------------------- augment


def test_recording_chain_keeps_length_and_changes_the_sound():
    rng = np.random.default_rng(0)
    t = np.arange(SR * 2) / SR
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for _ in range(5):
        out = apply_chain(y, SR, random_chain(rng), rng)
        assert out.shape == y.shape and np.isfinite(out).all()
    click = np.zeros(SR, dtype=np.float32)
    click[100] = 1.0
    wet = room(click, SR, 0.8, 0.5, rng)
    assert np.abs(wet[SR // 4:]).sum() > 0.01  # a tail after the click
    coded = mp3_roundtrip(y, SR, 0.9)
    assert coded.shape == y.shape and 0 < np.abs(coded - y).mean() < 0.2
    assert np.allclose(apply_chain(y, SR, Chain(gain_db=0.0), rng), y * 0.95 / 0.5, atol=1e-4)


# --------------------------------------------------------------------------------------- model and facade


def test_training_writes_a_tagger_card(run):
    out, card = run
    assert card["arch"] == "mixture-cnn" and card["family"] == "analyzer"
    assert card["training"]["steps"] == 3
    assert "families_map" in card["metrics"] and card["labels"]["families"][-1] == "drums"
    assert set(card["thresholds"]["families"]) == set(card["labels"]["families"])
    assert (out / "best.safetensors").is_file()


def test_tagger_describes_a_recording_in_segments(run, mixtures):
    out, _ = run
    tagger = MixtureTagger.load(out)
    y = np.concatenate([mixtures[1].array("audio", r).astype(np.float32) for r in mixtures[1].records])
    probs = tagger.probabilities(y, SR)
    expected = round(len(y) / SR / tagger.hop_seconds)
    assert probs["families"].shape == (len(tagger.families), expected)
    heard = tagger.describe(y, SR)
    segs = heard["segments"]
    assert segs[0]["start"] == 0 and abs(segs[-1]["end"] - len(y) / SR) < 0.2
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(segs))


def test_segments_follow_presence():
    present = np.zeros((2, 40), dtype=bool)
    present[0, :] = True
    present[1, 20:] = True
    probs = present.astype(float) * 0.9
    segs = segments_of(present, probs, ["drums", "bass"], hop=0.128)
    assert [list(s["families"]) for s in segs] == [["drums"], ["drums", "bass"]]
    assert segs[1]["start"] == round(20 * 0.128, 2)
    assert np.allclose(smooth(np.ones((1, 10)), 3), 1.0)


def test_analysis_reports_instruments_with_a_tagger(run, mixtures):
    out, _ = run
    analyzer = Analyzer.load("analyzer", mixtures=out)
    y = mixtures[1].array("audio", mixtures[1].records[0]).astype(np.float32)
    report = analyzer.analyze(y, SR, melody=False)
    assert {"families", "segments", "model"} <= set(report["instruments"])
    assert "family" in report  # the note-level tags stay
    plain = Analyzer.load("analyzer", mixtures=False).analyze(y, SR, melody=False)
    assert "instruments" not in plain
    with pytest.raises(ParameterError, match="mixture tagger"):
        Analyzer.load(out)


def test_evaluation_on_the_held_out_split(run, mixtures):
    out, _ = run
    report = evaluate_mixtures(out, mixtures[1].root)
    assert report["excerpts"] == 1 and report["held_out"]["test_soundfonts"] == ["fluidr3"]
    assert set(report["families"]["ap"]) == set(MixtureTagger.load(out).families)
    assert "weighted_score" in report["key"] and "acc1" in report["tempo"]
    card = json.loads((out / "best.json").read_text())
    card["data"]["soundfonts"]["train"].append({"name": "fluidr3"})
    with pytest.raises(DatasetError, match="trained on"):
        held_out_check(card, mixtures[1])


def test_segment_scores_are_average_precision():
    truth = np.zeros((2, 2, 16), dtype=np.float32)
    truth[0, 0, :8] = 1
    truth[1, 1, :] = 1
    perfect, mean = segment_scores(truth.copy(), truth, ["a", "b"], 8)
    assert perfect == {"a": 1.0, "b": 1.0} and mean == 1.0
    wrong, _ = segment_scores(1 - truth, truth, ["a", "b"], 8)
    assert wrong["a"] < 1.0
    _, always = segment_scores(truth, np.ones_like(truth), ["a", "b"], 8)
    assert math.isnan(always)
