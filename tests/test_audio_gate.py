"""The audio originality gate with the shipped analyzer: a training clip fed back is flagged and named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunesmith.analyze.analyzer import Analyzer
from tunesmith.data.corpora.notes import build_notes
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.generation.originality import index_for_audio_dataset
from tunesmith.provenance.audio_gate import EmbeddingIndex, check_audio


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("notes") / "notes"
    build_notes(out, instruments=["violin", "flute", "piano"], velocities=(60, 110), limit=48)
    analyzer = Analyzer.load("analyzer")
    cache = tmp_path_factory.mktemp("cache")
    return Dataset(out), analyzer, index_for_audio_dataset(out, analyzer, cache_dir=cache), cache


def test_a_training_clip_fed_back_is_flagged_with_its_source(setup):
    dataset, analyzer, index, _ = setup
    record = dataset.split("train")[3]
    y = np.asarray(dataset.array("audio", record), dtype=np.float32)
    report = check_audio(y, 16000, index, analyzer)
    assert report.flagged and report.nearest_item == record.id and report.distance < 1e-3
    quieter = check_audio(0.5 * y, 16000, index, analyzer)  # a level change is still the same recording
    assert quieter.flagged and quieter.nearest_item == record.id


def test_new_sounds_are_not_flagged(setup):
    dataset, analyzer, index, _ = setup
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 523.25 * t) * np.exp(-2 * t)).astype(np.float32)
    assert not check_audio(tone, 16000, index, analyzer).flagged
    held_out = [r for r in dataset.records if r.split != "train"]
    if held_out:  # the same instruments at other pitches: near, but not copies
        y = np.asarray(dataset.array("audio", held_out[0]), dtype=np.float32)
        report = check_audio(y, 16000, index, analyzer)
        assert report.distance > 0.0 and report.nearest_item in index.ids


def test_index_is_cached_without_pickles(setup):
    _, _, index, cache = setup
    files = list(cache.glob("audio-index-*.npz"))
    assert len(files) == 1
    again = EmbeddingIndex.load(files[0])
    assert again.ids == index.ids and np.allclose(again.embeddings, index.embeddings)


def test_bad_input(setup):
    _, analyzer, index, _ = setup
    with pytest.raises(ParameterError, match="threshold"):
        check_audio(np.zeros(16000, dtype=np.float32) + 0.1, 16000, index, analyzer, threshold=1.5)
    with pytest.raises(DatasetError):
        EmbeddingIndex([], np.zeros((0, 4)))


def test_dataset_of_a_card(setup, tmp_path, monkeypatch):
    """A card's relative dataset path is found from the working directory or else the repository root; an
    absolute one as it is; a missing or unnamed one is a DatasetError naming it and how to build it."""
    from tunesmith.checkpoints import REPO_ROOT, dataset_of

    dataset = setup[0]
    assert dataset_of({"data": {"path": str(dataset.root)}}) == dataset.root
    monkeypatch.chdir(dataset.root.parent)
    assert dataset_of({"data": {"path": dataset.root.name}}) == dataset.root.parent / dataset.root.name
    monkeypatch.chdir(tmp_path)  # elsewhere: the shipped cards' paths are relative to the repository
    if (REPO_ROOT / "datasets" / "notes" / "dataset.json").is_file():
        assert dataset_of({"data": {"path": "datasets/notes"}}) == REPO_ROOT / "datasets" / "notes"
    with pytest.raises(DatasetError, match=r"no-such-notes.*tunesmith data build notes"):
        dataset_of({"id": "x", "data": {"path": "no-such-notes", "build_command": "tunesmith data build notes"}})
    with pytest.raises(DatasetError, match="names no training dataset"):
        dataset_of({"id": "x"})


def test_a_cancelled_build_stops_without_an_index(setup, tmp_path):
    import threading

    dataset, analyzer, _, _ = setup
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DatasetError, match="cancelled"):
        index_for_audio_dataset(dataset.root, analyzer, cache_dir=tmp_path, cancel=cancel)
    assert not list(tmp_path.iterdir())  # nothing half-built is cached
