"""User-supplied sources: a folder of audio/MIDI, MUSDB18(-HQ) and MagnaTagATune, on fabricated trees."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tests.fabricate import (
    MTT_FOLDERS,
    MTT_RARE_TAG,
    MTT_TAGS,
    MTT_TOP_POOL,
    make_messy_folder,
    make_midi_folder,
    make_mtt_tree,
    make_musdb_tree,
)
from tunesmith.data.dataset import BuildSummary, Dataset
from tunesmith.data.manifest import SPLITS, sha256_file
from tunesmith.data.sources import fixed_segments
from tunesmith.data.sources import musdb as musdb_source
from tunesmith.data.sources.folder import build_folder
from tunesmith.data.sources.mtt import FOLDER_SPLITS, build_mtt, read_annotations
from tunesmith.data.sources.musdb import (
    VALID_SHARE,
    VALID_TRACKS,
    Track,
    build_musdb,
    track_split,
    valid_rule,
)
from tunesmith.errors import DatasetError, ParameterError


def skipped(summary: BuildSummary) -> dict[str, str]:
    """{skipped source (file name, or name#stem): reason}."""
    return {Path(s.source).name: s.reason for s in summary.skipped}


def check_records(ds: Dataset, *, cache: str, dtype: str, length: int | None = None) -> None:
    """Every record has the manifest fields and its cached array reads back with the right shape."""
    for record in ds.records:
        assert record.id and record.source and record.licence
        assert len(record.sha256) == 64 and record.split in SPLITS and record.duration > 0
        assert "group" in record.labels
        array = ds.array(cache, record)
        assert array.dtype == np.dtype(dtype) and array.ndim == 1
        if length is not None:
            assert array.shape == (length,)


def splits_by_group(ds: Dataset) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for record in ds.records:
        groups[record.labels["group"]].add(record.split)
    return groups


# ------------------------------------------------------------------------------------------ shared


def test_fixed_segments_rule():
    sr = 10
    lengths = {n: [real for _, _, real in fixed_segments(np.ones(n, np.float32), sr=sr, seconds=1.0)]
               for n in (0, 3, 10, 14, 16, 25)}
    # a short file gives one padded segment; a tail is kept only when at least half of it is audio
    assert lengths == {0: [], 3: [3], 10: [10], 14: [10], 16: [10, 6], 25: [10, 10, 5]}
    frames = fixed_segments(np.ones(16, np.float32), sr=sr, seconds=1.0)
    assert all(frame.shape == (10,) for _, frame, _ in frames)
    assert frames[1][1][6:].tolist() == [0.0] * 4


# ------------------------------------------------------------------------------------------ folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return make_messy_folder(tmp_path_factory.mktemp("messy") / "src")


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory) -> Path:
    return make_midi_folder(tmp_path_factory.mktemp("midi") / "src")


def test_folder_audio_segments_and_reports_every_bad_file(messy, tmp_path):
    summary = build_folder(messy, tmp_path / "ds", segment=4.0)
    ds = Dataset(tmp_path / "ds")
    assert ds.info["modality"] == "audio" and ds.info["sr"] == 16000
    check_records(ds, cache="audio", dtype="float16", length=4 * 16000)
    # tone 9 s -> 2 (the 1 s tail is mostly padding), noise 3 s -> 1, clicks 5 s -> 1, short 1 s -> 1
    per_file = defaultdict(list)
    for record in ds.records:
        per_file[record.labels["path"]].append(record)
    assert {k: len(v) for k, v in per_file.items()} == {
        "tone.wav": 2, "nested/deeper/noise.flac": 1, "nested/clicks.ogg": 1, "short.wav": 1}
    tone = per_file["tone.wav"]
    assert [r.labels["start"] for r in tone] == [0.0, 4.0] and [r.id for r in tone] == ["tone.wav#0000",
                                                                                          "tone.wav#0001"]
    assert tone[0].sha256 == sha256_file(messy / "tone.wav") and tone[0].source == str(messy / "tone.wav")
    assert per_file["short.wav"][0].duration == pytest.approx(1.0)
    assert all(len(splits) == 1 for splits in splits_by_group(ds).values())  # split by file
    assert {r.licence for r in ds.records} == {"CC0 1.0 (fabricated test audio)"}

    bad = skipped(summary)
    assert "truncated" in bad["truncated.wav"]
    assert "empty" in bad["empty.wav"]
    assert "not a readable audio file" in bad["garbage.mp3"]
    assert "no such file" in bad["dangling.wav"]
    assert "unsupported file type" in bad["notes.txt"]
    assert "hidden" in bad[".DS_Store"]
    assert "modality=midi" in bad["no_notes.mid"] and "modality=midi" in bad["melody.mid"]
    assert "LICENSE" not in bad
    assert summary.items == len(ds) == 5 and summary.pieces == 4


def test_folder_is_deterministic_and_honours_limit_and_opt_out(messy, tmp_path):
    first = build_folder(messy, tmp_path / "a")
    again = build_folder(messy, tmp_path / "b")
    assert first.manifest_sha256 == again.manifest_sha256

    limited = build_folder(messy, tmp_path / "limited", limit=2)
    assert len({r.labels["path"] for r in Dataset(tmp_path / "limited").records}) <= 2
    assert limited.skipped  # the bad files are still reported

    opt_out = frozenset({"tone.wav#0001", str(messy / "nested/clicks.ogg"), "short.wav"})
    summary = build_folder(messy, tmp_path / "opted", opt_out=opt_out)
    ids = {r.id for r in Dataset(tmp_path / "opted").records}
    assert ids == {"tone.wav#0000", "nested/deeper/noise.flac#0000"}
    assert set(summary.excluded) == set(opt_out)


def test_folder_midi_melodies_and_bad_scores(midi_folder, tmp_path):
    summary = build_folder(midi_folder, tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    assert ds.info["modality"] == "midi" and ds.info["voices"] == 1 and "vocabulary" in ds.info
    check_records(ds, cache="tokens", dtype="int16")
    by_id = {r.id: r for r in ds.records}
    assert set(by_id) == {"tunes/tune.mid", "tunes/tune_in_f.mid", "tunes/other.mid", "four_part.mid",
                          "chords.mid", "duet_with_chords.mid"}
    for record in ds.records:
        assert {"key", "meter", "bars", "notes", "tempo", "voices", "group"} <= set(record.labels)
        assert ds.array("tokens", record).shape == (record.labels["tokens"],)
    # the same tune transposed shares a contour group, hence a split
    tune, moved = by_id["tunes/tune.mid"], by_id["tunes/tune_in_f.mid"]
    assert tune.labels["group"] == moved.labels["group"] and tune.split == moved.split
    assert by_id["four_part.mid"].labels["notes"] == 4  # the melody (soprano) of the four parts
    assert by_id["duet_with_chords.mid"].labels["notes"] == 4  # the flute, not the chords
    bad = skipped(summary)
    assert "no notes" in bad["empty_song.mid"]
    assert "broken.mid" in bad and "modality=audio" in bad["stray.wav"]

    summary = build_folder(midi_folder, tmp_path / "four", voices=4)
    assert [r.id for r in Dataset(tmp_path / "four").records] == ["four_part.mid"]
    assert "voices=4" in skipped(summary)["chords.mid"]
    summary = build_folder(midi_folder, tmp_path / "two", voices=2)
    assert summary.items == 0 and "'Piano' is polyphonic" in skipped(summary)["duet_with_chords.mid"]


def test_folder_midi_modality_on_a_mostly_audio_folder(messy, tmp_path):
    summary = build_folder(messy, tmp_path / "ds", modality="midi")
    assert [r.id for r in Dataset(tmp_path / "ds").records] == ["midi/melody.mid"]
    bad = skipped(summary)
    assert "no notes" in bad["no_notes.mid"] and "modality=audio" in bad["tone.wav"]


def test_folder_errors(tmp_path, messy):
    with pytest.raises(DatasetError, match="does not exist"):
        build_folder(tmp_path / "missing", tmp_path / "ds")
    (tmp_path / "file.wav").write_bytes(b"RIFF")
    with pytest.raises(DatasetError, match="not a directory"):
        build_folder(tmp_path / "file.wav", tmp_path / "ds")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("no music here")
    with pytest.raises(DatasetError, match="no audio or symbolic files"):
        build_folder(tmp_path / "docs", tmp_path / "ds")
    with pytest.raises(ParameterError, match="modality"):
        build_folder(messy, tmp_path / "ds", modality="video")
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "a.mid").write_bytes(b"MThd")
    with pytest.raises(DatasetError, match="use modality=midi"):
        build_folder(tmp_path / "scores", tmp_path / "ds", modality="audio")
    with pytest.raises(ParameterError, match="segment"):
        build_folder(messy, tmp_path / "ds", segment=0)
    assert not (tmp_path / "ds").exists()


# ------------------------------------------------------------------------------------------- musdb


@pytest.fixture(scope="module")
def musdb_hq(tmp_path_factory) -> Path:
    return make_musdb_tree(tmp_path_factory.mktemp("musdb") / "MUSDB18-HQ")


def test_musdb_hq_keeps_official_split_and_aligns_stems(musdb_hq, tmp_path):
    summary = build_musdb(musdb_hq, tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    check_records(ds, cache="audio", dtype="float16", length=6 * 22050)
    assert summary.skipped == [] and summary.pieces == 3 and len(ds) == 3 * 5 * 2
    splits = {t: s.pop() for t, s in splits_by_group(ds).items() if len(s) == 1}
    assert splits == {"Actions - One Minute Smile": "valid",  # a musdb validation track
                      "Fabricated Band - Train Song": "train", "Fabricated Duo - Test Song": "test"}
    assert ds.info["valid_rule"] == "musdb validation tracks" and ds.info["layouts"] == ["MUSDB18-HQ"]
    spans = defaultdict(set)
    for record in ds.records:
        labels = record.labels
        assert labels["subset"] == ("test" if record.split == "test" else "train")
        assert record.source.endswith(f"{labels['stem']}.wav")
        spans[(labels["track"], labels["stem"])].add((labels["segment"], labels["start"]))
    assert len(set(map(frozenset, spans.values()))) == 1  # every stem of every track: the same windows
    silent = {(r.labels["stem"], r.labels["segment"]) for r in ds.records if r.labels["silent"]}
    assert silent == {("vocals", 0)}  # the instrumental intro, kept and labelled
    vocals = ds.array("audio", next(r for r in ds.records if r.labels["stem"] == "vocals"))
    assert float(np.abs(vocals.astype(np.float32)).max()) < 1e-3


def test_musdb_limit_and_opt_out(musdb_hq, tmp_path):
    build_musdb(musdb_hq, tmp_path / "limited", limit=2, valid=False)
    ds = Dataset(tmp_path / "limited")
    assert {r.split for r in ds.records} == {"train", "test"}  # spread over both official folders
    assert len(splits_by_group(ds)) == 2

    opt_out = frozenset({"Fabricated Band - Train Song", "test/Fabricated Duo - Test Song/vocals/0001"})
    summary = build_musdb(musdb_hq, tmp_path / "opted", opt_out=opt_out)
    ids = {r.id for r in Dataset(tmp_path / "opted").records}
    assert not any("Train Song" in i for i in ids)
    assert "test/Fabricated Duo - Test Song/vocals/0000" in ids
    assert "test/Fabricated Duo - Test Song/vocals/0001" not in ids
    assert set(summary.excluded) == set(opt_out)


def test_musdb_missing_corrupt_and_stray_files(tmp_path):
    root = make_musdb_tree(tmp_path / "musdb", tracks={"train": ["Band - Song"]}, seconds=6.5)
    track = root / "train" / "Band - Song"
    (track / "bass.wav").unlink()
    data = (track / "drums.wav").read_bytes()
    (track / "drums.wav").write_bytes(data[: len(data) // 3])
    (track / "vocals.wav").write_bytes(b"")
    (root / "train" / "readme.txt").write_text("not a track")
    summary = build_musdb(root, tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    assert sorted({r.labels["stem"] for r in ds.records}) == ["mixture", "other"]
    bad = skipped(summary)
    assert "missing bass stem" in bad["bass.wav"]
    assert "truncated" in bad["drums.wav"] and "empty" in bad["vocals.wav"]
    assert "not a MUSDB track" in bad["readme.txt"]
    assert ds.info["incomplete_tracks"] == {"train/Band - Song": ["drums", "bass", "vocals"]}
    assert ds.info["missing_subsets"] == ["test"]


def test_musdb_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_musdb(tmp_path / "missing", tmp_path / "ds")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "mixture.wav").write_bytes(b"RIFF")
    with pytest.raises(DatasetError, match="no train/ or test/ folder"):
        build_musdb(tmp_path / "flat", tmp_path / "ds")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no tracks"):
        build_musdb(tmp_path / "empty", tmp_path / "ds")


def test_musdb_stem_mp4_without_a_reader_is_reported(tmp_path, monkeypatch):
    root = make_musdb_tree(tmp_path / "musdb", tracks={"test": ["Band - Song"]}, seconds=6.5)
    (root / "train").mkdir()
    (root / "train" / "Other Band - Other Song.stem.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    monkeypatch.setattr(musdb_source, "stem_reader_available", lambda: False)
    summary = build_musdb(root, tmp_path / "ds")
    reason = skipped(summary)["Other Band - Other Song.stem.mp4"]
    assert "pip install musdb" in reason and "ffmpeg" in reason and "MUSDB18-HQ" in reason
    assert summary.items == 5


@pytest.mark.skipif(not musdb_source.stem_reader_available(),
                    reason="reading .stem.mp4 needs stempeg (pip install musdb) and ffmpeg")
def test_musdb_compressed_stem_mp4(tmp_path):
    root = make_musdb_tree(tmp_path / "MUSDB18", hq=False, tracks={"test": ["Band - Song"]}, seconds=6.5)
    (root / "test" / "Broken - Track.stem.mp4").write_bytes(np.random.default_rng(1).bytes(2048))
    summary = build_musdb(root, tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    check_records(ds, cache="audio", dtype="float16", length=6 * 22050)
    assert [r.labels["stem"] for r in ds.records] == list(musdb_source.STEMS)
    assert {r.split for r in ds.records} == {"test"} and ds.info["layouts"] == ["MUSDB18"]
    assert "Broken - Track.stem.mp4" in skipped(summary)
    assert float(np.abs(ds.array("audio", ds.records[0]).astype(np.float32)).max()) > 0.05


def test_musdb_validation_tracks_match_the_musdb_package():
    spec = importlib.util.find_spec("musdb")
    if spec is None or spec.origin is None:
        pytest.skip("the musdb package is not installed")
    yaml = pytest.importorskip("yaml")
    setup = yaml.safe_load((Path(spec.origin).parent / "configs" / "mus.yaml").read_text())
    assert frozenset(setup["validation_tracks"]) == VALID_TRACKS


def test_musdb_hash_valid_rule_for_other_collections():
    names = [f"Artist {i} - Song {i}" for i in range(2000)]
    tracks = [Track("train", n, Path(n)) for n in names]
    assert valid_rule(tracks) == "hash" and valid_rule(tracks, valid=False) == "none"
    splits = [track_split(t, rule="hash") for t in tracks]
    assert set(splits) == {"train", "valid"}
    assert abs(splits.count("valid") / len(splits) - VALID_SHARE) < 0.03
    assert splits == [track_split(t, rule="hash") for t in tracks]  # deterministic
    assert track_split(Track("test", "x", Path("x")), rule="official") == "test"
    # a collection whose only train track would be carved out keeps it in train
    lone = next(t for t in tracks if track_split(t, rule="hash") == "valid")
    assert valid_rule([lone]) == "none" and track_split(lone, rule="none") == "train"


# --------------------------------------------------------------------------------------------- mtt


@pytest.fixture(scope="module")
def mtt(tmp_path_factory) -> Path:
    return make_mtt_tree(tmp_path_factory.mktemp("mtt") / "magnatagatune", clips_per_folder=2)


def test_mtt_annotations_are_read_like_the_real_file(mtt):
    header = (mtt / "annotations_final.csv").read_text().splitlines()[0]
    assert header.startswith('"clip_id"\t"no voice"\t"singer"') and header.endswith('\t"mp3_path"')
    tags, clips, bad = read_annotations(mtt / "annotations_final.csv")
    assert tags == list(MTT_TAGS) and len(tags) == 188 and bad == []
    assert len(clips) == 2 * len(MTT_FOLDERS) and clips[0].mp3_path.startswith("0/")
    assert clips[0].song == "fabricated_artist_0-fabricated_album-01-song_0"


def test_mtt_clips_tags_and_folder_split(mtt, tmp_path):
    summary = build_mtt(mtt, tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    check_records(ds, cache="audio", dtype="float16", length=29 * 16000)
    assert len(ds) == 2 * len(MTT_FOLDERS) - 1  # one clip is in the CSV but not on disk
    assert len(summary.skipped) == 1 and "not on disk" in summary.skipped[0].reason
    tags = ds.info["tags"]
    assert len(tags) == 50 and tags[0] == "guitar" and set(tags) == {"guitar", *MTT_TOP_POOL}
    assert MTT_RARE_TAG not in tags
    for record in ds.records:
        labels = record.labels
        assert record.split == FOLDER_SPLITS[labels["folder"]] and record.id == f"mtt-{labels['clip_id']}"
        assert len(labels["multi_hot"]) == 50
        assert labels["tags"] == [t for t, on in zip(tags, labels["multi_hot"], strict=True) if on]
        assert record.duration == pytest.approx(29.0)  # 29.1 s clips cropped to a fixed 29 s
    assert {r.split for r in ds.records} == {"train", "valid", "test"}
    empty = [r for r in ds.records if not r.labels["tags"]]
    assert len(empty) == 1 and empty[0].labels["folder"] == "5" and ds.info["clips_without_top_tags"] == 1
    # songs (several clips each) never cross splits under the folder split
    groups = splits_by_group(ds)
    assert len(groups) == len(MTT_FOLDERS) and all(len(s) == 1 for s in groups.values())
    assert ds.info["songs_in_several_folders"] == 0 and summary.pieces == len(MTT_FOLDERS)


def test_mtt_limit_and_opt_out(mtt, tmp_path):
    build_mtt(mtt, tmp_path / "limited", limit=6)
    ds = Dataset(tmp_path / "limited")
    assert len(ds) == 6 and {r.split for r in ds.records} >= {"train", "test"}

    _, clips, _ = read_annotations(mtt / "annotations_final.csv")
    opt_out = frozenset({f"mtt-{clips[0].clip_id}", clips[1].mp3_path, str(mtt / clips[2].mp3_path)})
    summary = build_mtt(mtt, tmp_path / "opted", opt_out=opt_out)
    ids = {r.id for r in Dataset(tmp_path / "opted").records}
    assert not ids & {f"mtt-{c.clip_id}" for c in clips[:3]} and len(ids) == len(clips) - 1 - 3
    assert set(summary.excluded) == opt_out


def test_mtt_bad_clips_missing_folder_and_malformed_rows(tmp_path):
    root = make_mtt_tree(tmp_path / "mtt", seconds=3.0, missing=0)
    _, clips, _ = read_annotations(root / "annotations_final.csv")
    by_folder = {c.folder: c for c in clips}
    (root / by_folder["1"].mp3_path).write_bytes(np.random.default_rng(5).bytes(3000))  # garbage .mp3
    (root / by_folder["2"].mp3_path).write_bytes(b"")  # empty
    shutil.rmtree(root / "e")  # a part of the archive never extracted
    with open(root / "annotations_final.csv", "a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL).writerow(["999", "1", "0", "3/x.mp3"])
    summary = build_mtt(root, tmp_path / "ds", clip_seconds=4.0)
    ds = Dataset(tmp_path / "ds")
    check_records(ds, cache="audio", dtype="float16", length=4 * 16000)
    assert len(ds) == len(MTT_FOLDERS) - 3
    assert all(3.0 <= r.duration < 3.2 for r in ds.records)  # 3 s clips (+ mp3 padding), zero-padded to 4 s
    bad = skipped(summary)
    assert "not a readable audio file" in bad[Path(by_folder["1"].mp3_path).name]
    assert "empty" in bad[Path(by_folder["2"].mp3_path).name]
    assert "e/ not found" in bad["e"] and "1 annotated clip" in bad["e"]
    assert "malformed row" in bad[f"annotations_final.csv:{len(MTT_FOLDERS) + 2}"]


def test_mtt_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_mtt(tmp_path / "missing", tmp_path / "ds")
    (tmp_path / "mtt" / "0").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"annotations_final\.csv"):
        build_mtt(tmp_path / "mtt", tmp_path / "ds")
    (tmp_path / "mtt" / "annotations_final.csv").write_text("id,tags,path\n1,0,0/a.mp3\n")
    with pytest.raises(DatasetError, match="header"):
        build_mtt(tmp_path / "mtt", tmp_path / "ds")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "annotations_final.csv").write_text('"clip_id"\t"guitar"\t"mp3_path"\n')
    with pytest.raises(DatasetError, match="clip folders"):
        build_mtt(tmp_path / "flat", tmp_path / "ds")
    with pytest.raises(ParameterError, match="clip_seconds"):
        build_mtt(tmp_path / "mtt", tmp_path / "ds", clip_seconds=-1.0)
