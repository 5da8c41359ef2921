"""The independent drum-class classifier, trained on a small real build of the Hydrogen kits."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.data.corpora.samples import build_samples
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.evaluate.drum_classifier import (
    DrumClassifier,
    drum_features,
    drum_hits,
    evaluate_drum_classifier,
    train_drum_classifier,
)


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    out = tmp_path_factory.mktemp("kits") / "samples"
    build_samples(out, sources="hydrogen", limit=160)
    return Dataset(out)


def test_classifier_hears_drum_classes_in_kits_it_never_heard(kits):
    report = evaluate_drum_classifier(kits)
    assert report["train"]["accuracy"] > 0.8
    test = report["test"]
    assert set(test["kits"]) <= {"ForzeeStereo", "TR808EmulationKit"} and test["hits"] >= 15
    assert test["accuracy"] > 0.4  # chance is 1/7 (0.14) with balanced classes
    assert sum(sum(row.values()) for row in test["confusion"].values()) == test["hits"]


def test_predictions_are_class_names_and_accuracy_counts_them(kits):
    classifier = train_drum_classifier(kits)
    records = drum_hits(kits, "train")[:10]
    hits = [kits.array("audio", r).astype(np.float32) for r in records]
    truth = [r.labels["drum_class"] for r in records]
    predicted = classifier.predict(hits)
    assert classifier.accuracy(hits, truth) == np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert classifier.predict([]) == []


def test_features_do_not_depend_on_level(kits):
    y = kits.array("audio", drum_hits(kits, "train")[0]).astype(np.float32)
    np.testing.assert_allclose(drum_features(y), drum_features(0.25 * y), atol=1e-3)


def test_bad_input_is_refused(kits, tmp_path):
    with pytest.raises(ParameterError, match="unknown drum classes"):
        DrumClassifier.fit([np.zeros(100, np.float32)] * 2, ["kick", "cowbell"])
    with pytest.raises(ParameterError, match="16000 Hz"):
        drum_features(np.zeros(100, np.float32), 44100)
    build_samples(tmp_path / "lmms", sources="lmms", limit=3)
    (tmp_path / "lmms" / "dataset.json").write_text((tmp_path / "lmms" / "dataset.json").read_text()
                                                    .replace('"kind": "samples"', '"kind": "notes"'))
    with pytest.raises(DatasetError, match="not samples"):
        train_drum_classifier(tmp_path / "lmms")
