"""Manifests, deterministic splits, the shard cache and the dataset writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunesmith.data.build import build, read_opt_out
from tunesmith.data.dataset import Dataset, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, read_manifest, write_manifest
from tunesmith.data.store import ShardReader, ShardWriter
from tunesmith.errors import DatasetError, ParameterError


def _record(i: int, group: str = "g") -> Record:
    return Record(id=f"item-{i}", source=f"src/{i}.wav", licence="CC0", sha256="0" * 64,
                  split=assign_split(group), duration=1.0, labels={"group": group})


def test_split_is_deterministic_and_roughly_proportional():
    groups = [f"piece-{i}" for i in range(4000)]
    first = [assign_split(g) for g in groups]
    assert first == [assign_split(g) for g in groups]
    shares = {s: first.count(s) / len(first) for s in ("train", "valid", "test")}
    assert 0.77 < shares["train"] < 0.83
    assert 0.08 < shares["valid"] < 0.12
    assert 0.08 < shares["test"] < 0.12


def test_split_rejects_bad_fractions():
    with pytest.raises(DatasetError):
        assign_split("x", valid=0.6, test=0.5)


def test_manifest_round_trip(tmp_path):
    records = [_record(i) for i in range(5)]
    sha = write_manifest(tmp_path / "m.jsonl", records)
    assert len(sha) == 64
    back = list(read_manifest(tmp_path / "m.jsonl"))
    assert [r.id for r in back] == [r.id for r in records]
    assert back[0].labels == {"group": "g"}


def test_manifest_names_malformed_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(_record(0).to_json() + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"m\.jsonl:2"):
        list(read_manifest(path))


def test_shards_round_trip_ragged_items_across_shards(tmp_path):
    rng = np.random.default_rng(0)
    items = [rng.standard_normal(int(n)).astype(np.float32) for n in rng.integers(1, 50, size=23)]
    writer = ShardWriter(tmp_path, "audio", dtype="float32", ndim=1, shard_items=5)
    for item in items:
        writer.add(item)
    writer.close()
    reader = ShardReader(tmp_path, "audio")
    assert len(reader) == len(items)
    assert len(list(tmp_path.glob("audio-*.index.npy"))) == 5
    for i, item in enumerate(items):
        np.testing.assert_array_equal(reader[i], item)
    with pytest.raises(IndexError):
        reader[len(items)]


def test_shards_keep_2d_shapes(tmp_path):
    writer = ShardWriter(tmp_path, "mel", dtype="float16", ndim=2)
    writer.add(np.ones((3, 7)))
    writer.add(np.zeros((3, 2)))
    writer.close()
    reader = ShardReader(tmp_path, "mel")
    assert reader[0].shape == (3, 7) and reader[1].shape == (3, 2)
    with pytest.raises(DatasetError):
        ShardWriter(tmp_path, "x", dtype="float32", ndim=1).add(np.ones((2, 2)))


def test_writer_builds_atomically_and_opts_out(tmp_path):
    out = tmp_path / "ds"
    with DatasetWriter(out, kind="toy", cache={"audio": ("float32", 1)}, info={"audio": True},
                       opt_out=frozenset({"item-1", "src/2.wav"})) as writer:
        for i in range(4):
            writer.add(_record(i, group=f"g{i}"), {"audio": np.full(10, i, dtype=np.float32)})
        writer.skip("bad.wav", "truncated")
        summary = writer.finish()
    assert summary.items == 2 and summary.excluded == ["item-1", "src/2.wav"]
    assert [s.source for s in summary.skipped] == ["bad.wav"]
    ds = Dataset(out)
    assert [r.id for r in ds.records] == ["item-0", "item-3"]
    np.testing.assert_array_equal(ds.array("audio", ds.records[1]), np.full(10, 3, dtype=np.float32))
    info = json.loads((out / "dataset.json").read_text())
    assert info["summary"]["manifest_sha256"] == ds.manifest_sha256
    assert not list(tmp_path.glob(".ds.partial-*"))


def test_failed_build_leaves_previous_dataset_alone(tmp_path):
    out = tmp_path / "ds"
    with DatasetWriter(out, kind="toy", cache={"audio": ("float32", 1)}) as writer:
        writer.add(_record(0), {"audio": np.zeros(3)})
        writer.finish()
    with pytest.raises(RuntimeError), DatasetWriter(out, kind="toy", cache={"audio": ("float32", 1)}) as writer:
        writer.add(_record(1), {"audio": np.zeros(3)})
        raise RuntimeError("interrupted")
    assert [r.id for r in Dataset(out).records] == ["item-0"]
    assert not list(tmp_path.glob(".ds.partial-*"))


def test_writer_refuses_a_foreign_non_empty_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a Tunesmith dataset"):
        DatasetWriter(tmp_path, kind="toy", cache={})


def test_dataset_open_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a Tunesmith dataset"):
        Dataset(tmp_path)


def test_build_validates_kind_limit_source_and_options(tmp_path):
    with pytest.raises(ParameterError, match="unknown dataset kind"):
        build("nope", None, tmp_path / "x")
    with pytest.raises(ParameterError, match="--limit"):
        build("chorales", None, tmp_path / "x", limit=0)
    with pytest.raises(ParameterError, match="takes no SRC"):
        build("chorales", tmp_path, tmp_path / "x")
    with pytest.raises(ParameterError, match="needs a source"):
        build("folder", None, tmp_path / "x")
    with pytest.raises(DatasetError, match="not a directory"):
        build("mtt", tmp_path / "missing", tmp_path / "x")
    with pytest.raises(ParameterError, match="--segment does not apply"):
        build("chorales", None, tmp_path / "x", limit=1, segment=2.0)


def test_read_opt_out(tmp_path):
    path = tmp_path / "optout.txt"
    path.write_text("# removed at the author's request\nbach-bwv66.6\n\n  ryan-Foo-1  # note\n")
    assert read_opt_out(path) == frozenset({"bach-bwv66.6", "ryan-Foo-1"})
    assert read_opt_out(None) == frozenset()
    with pytest.raises(ParameterError):
        read_opt_out(tmp_path / "missing.txt")


def test_shards_flush_by_bytes_to_bound_memory(tmp_path):
    writer = ShardWriter(tmp_path, "clips", dtype="float32", ndim=1, shard_bytes=4000)
    for i in range(10):
        writer.add(np.full(500, i, dtype=np.float32))  # 2000 bytes each: a shard every 2 items
    writer.close()
    assert len(list(tmp_path.glob("clips-*.index.npy"))) == 5
    assert ShardReader(tmp_path, "clips")[7][0] == 7
