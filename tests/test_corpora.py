"""The bundled corpora, built small with --limit: rendered notes, chorales and folk melodies."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from tunesmith.data.corpora.chorales import build_chorales
from tunesmith.data.corpora.folk import build_folk
from tunesmith.data.corpora.notes import build_notes, note_jobs
from tunesmith.data.dataset import Dataset
from tunesmith.errors import ParameterError
from tunesmith.symbolic.instruments import ALL_INSTRUMENTS, FAMILIES, get_instrument
from tunesmith.symbolic.tokens import decode


@pytest.fixture(scope="module")
def notes_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("notes") / "notes"
    summary = build_notes(out, instruments=["violin", "flute", "cello", "piano", "drums"],
                          velocities=(60, 110), limit=40)
    return summary, Dataset(out)


def test_corpus_spans_enough_instruments_and_families():
    melodic = [i for i in ALL_INSTRUMENTS if not i.is_drum]
    assert len(melodic) >= 24
    assert len({i.family for i in melodic}) >= 10
    assert "drums" in FAMILIES
    assert len(note_jobs(ALL_INSTRUMENTS, (50, 85, 120))) > 3 * 24 * 20


def test_notes_have_labels_lengths_and_splits(notes_dataset):
    summary, ds = notes_dataset
    assert summary.items == len(ds) > 30
    assert {r.labels["instrument"] for r in ds.records} == {"violin", "flute", "cello", "piano", "drums_standard"}
    for record in ds.records:
        y = ds.array("audio", record)
        assert y.shape == (32000,) and y.dtype == np.float16
        assert record.split in {"train", "valid", "test"}
        assert record.licence.startswith("MIT")
        assert len(record.sha256) == 64
    groups: dict[str, str] = {}
    for record in ds.records:  # velocities of one (instrument, pitch) never cross splits
        assert groups.setdefault(record.labels["group"], record.split) == record.split


def test_rendered_notes_have_the_labelled_pitch(notes_dataset):
    _, ds = notes_dataset
    checked = 0
    for record in ds.records:
        if record.labels["family"] == "drums" or not 40 <= record.labels["pitch"] <= 84:
            continue
        y = ds.array("audio", record).astype(np.float32)[: 16000]
        f0, voiced, _ = librosa.pyin(y, sr=16000, fmin=50, fmax=2000, frame_length=2048)
        f0 = f0[voiced & ~np.isnan(f0)]
        assert f0.size > 5, record.id
        midi = float(np.median(librosa.hz_to_midi(f0)))
        assert abs(midi - record.labels["pitch"]) < 0.5, (record.id, midi)
        checked += 1
    assert checked >= 10


def test_drum_hits_are_labelled_by_type(notes_dataset):
    _, ds = notes_dataset
    drums = [r for r in ds.records if r.labels["family"] == "drums"]
    assert drums and all(r.labels["drum_type"] for r in drums)
    assert all(np.abs(ds.array("audio", r)).max() > 0.01 for r in drums)


def test_notes_reject_bad_options(tmp_path):
    with pytest.raises(ParameterError):
        build_notes(tmp_path / "x", velocities=(0,))
    with pytest.raises(ParameterError):
        build_notes(tmp_path / "x", note_off=3.0, length=2.0)
    with pytest.raises(ParameterError, match="unknown instrument"):
        get_instrument("kazoo")


def test_chorales_build_tokenizes_four_voices(tmp_path):
    summary = build_chorales(tmp_path / "ch", limit=6)
    ds = Dataset(tmp_path / "ch")
    assert summary.items == len(ds) >= 4
    for record in ds.records:
        assert record.labels["voices"] == 4 and record.labels["key"]
        assert record.licence.startswith("public domain")
        score = decode(ds.array("tokens", record).astype(int).tolist())
        assert len(score.parts) == 4
        assert score.n_notes == record.labels["notes"]


def test_folk_build_holds_both_collections_with_their_licences(tmp_path):
    summary = build_folk(tmp_path / "folk", limit=10)
    ds = Dataset(tmp_path / "folk")
    assert summary.items == len(ds) >= 8
    licences = {r.id.split("-")[0]: r.licence for r in ds.records}
    assert set(licences) == {"essen", "ryan"}
    assert "non-commercial" in licences["essen"] and "public domain" in licences["ryan"]
    for record in ds.records:
        assert len(decode(ds.array("tokens", record).astype(int).tolist()).parts) == 1


def test_opt_out_removes_a_chorale(tmp_path):
    first = build_chorales(tmp_path / "a", limit=3)
    victim = Dataset(tmp_path / "a").records[0].id
    second = build_chorales(tmp_path / "b", limit=3, opt_out=frozenset({victim}))
    assert second.items == first.items - 1 and second.excluded == [victim]
    assert victim not in {r.id for r in Dataset(tmp_path / "b").records}
