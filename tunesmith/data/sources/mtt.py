"""The `mtt` source: MagnaTagATune as users download it, as clips with the top-50 tags.

Layout: ``SRC/annotations_final.csv`` (tab-separated, every value in double quotes; header ``clip_id``,
188 tag columns, ``mp3_path``; values 0/1) and ``SRC/0`` ... ``SRC/f`` holding the mp3 clips named
``<folder>/<artist>-<album>-<track number>-<title>-<start>-<end>.mp3``.

Decisions:

- Top-50 tags: the 50 tag columns with the most clips over the whole annotation file (common practice;
  ties keep the file's column order). No synonym merging. The list, most frequent first, is the order
  of ``multi_hot`` and is stored in ``dataset.json`` (``tags``, ``tag_counts``).
- Split by folder, the split used in the tagging literature: 0-b train, c valid, d-f test. The clips
  of one song (several 29-second excerpts, each with its own clip_id) sit in one folder, so a song never
  crosses splits; ``group`` is the song (the mp3 name without its ``-<start>-<end>`` suffix) and
  ``dataset.json`` counts songs found in more than one folder (``songs_in_several_folders``).
- Every clip is cropped or zero-padded to ``clip_seconds`` (default 29.0 s; real clips are ~29.1 s), so
  clips stack into batches; ``duration`` is the seconds of real audio kept.
- Clips without any top-50 tag are kept with empty labels (``clips_without_top_tags`` in dataset.json).
- A clip listed in the CSV but missing on disk is reported skipped; a whole clip folder that is missing
  is reported once (with its clip count) instead of once per clip.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio.io import load
from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, sha256_file
from tunesmith.data.sources import check_limit, check_positive, check_rate, describe, require_dir, spread
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.progress import progress

ANNOTATIONS = "annotations_final.csv"
FOLDERS = "0123456789abcdef"
FOLDER_SPLITS = {**dict.fromkeys("0123456789ab", "train"), "c": "valid", **dict.fromkeys("def", "test")}
LICENCE = ("CC BY-NC-SA 3.0 (MagnaTagATune: TagATune annotations by E. Law et al., "
           "audio from Magnatune.com)")
EXPECTED = ("MagnaTagATune layout: SRC/annotations_final.csv and clip folders SRC/0 ... SRC/f "
            "of mp3 files")
_CLIP_SPAN = re.compile(r"-\d+-\d+$")


@dataclass(frozen=True)
class Clip:
    """One annotated clip: its CSV id, its mp3 path as written in the CSV, and its 0/1 tag values."""

    clip_id: str
    mp3_path: str
    values: tuple[int, ...]

    @property
    def folder(self) -> str:
        return self.mp3_path.split("/", 1)[0]

    @property
    def song(self) -> str:
        """The song a clip is cut from: the file name without its ``-<start>-<end>`` seconds."""
        return _CLIP_SPAN.sub("", Path(self.mp3_path).stem)


def read_annotations(path: Path) -> tuple[list[str], list[Clip], list[tuple[str, str]]]:
    """(tag names, clips, malformed rows as (where, reason)) of an ``annotations_final.csv``."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quotechar='"'))
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc}); expected {EXPECTED}") from exc
    if not rows or len(rows[0]) < 3 or rows[0][0].strip() != "clip_id" or rows[0][-1].strip() != "mp3_path":
        raise DatasetError(f"{path} does not start with a clip_id<TAB>tags...<TAB>mp3_path header; "
                           f"expected {EXPECTED}")
    header = [name.strip() for name in rows[0]]
    tags = header[1:-1]
    clips, bad, seen = [], [], set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) != len(header):
            bad.append((where, f"malformed row: {len(row)} columns, the header has {len(header)}"))
            continue
        try:
            values = tuple(int(cell) for cell in row[1:-1])
        except ValueError:
            bad.append((where, "malformed row: tag values must be 0 or 1"))
            continue
        if any(v not in (0, 1) for v in values) or not row[-1].strip():
            bad.append((where, "malformed row: tag values must be 0 or 1 and mp3_path must be set"))
            continue
        if row[0].strip() in seen:
            bad.append((where, f"duplicate clip_id {row[0].strip()!r}; the first row is used"))
            continue
        seen.add(row[0].strip())
        clips.append(Clip(row[0].strip(), row[-1].strip(), values))
    return tags, clips, bad


def top_tags(tags: list[str], clips: list[Clip], *, top: int) -> list[int]:
    """Column indices of the ``top`` most frequent tags (ties in column order), most frequent first."""
    counts = np.sum([c.values for c in clips], axis=0) if clips else np.zeros(len(tags), dtype=int)
    order = sorted(range(len(tags)), key=lambda j: (-int(counts[j]), j))
    return order[:top]


def songs_in_several_folders(clips: list[Clip]) -> int:
    """How many songs have clips in more than one folder (0 in MagnaTagATune as released)."""
    folders: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        folders[clip.song].add(clip.folder)
    return sum(1 for f in folders.values() if len(f) > 1)


def build_mtt(
    src: Path,
    out: Path,
    *,
    limit: int | None = None,
    opt_out: frozenset[str] = frozenset(),
    sr: int = 16000,
    clip_seconds: float = 29.0,
    top: int = 50,
) -> BuildSummary:
    """One item per MagnaTagATune clip: ``clip_seconds`` of mono audio at ``sr`` with top-``top`` tags.

    ``limit``: at most that many clips, spread evenly over the annotation file. Cache ``audio``: float16
    1-D of ``clip_seconds * sr`` samples. Labels: clip_id, tags (names), multi_hot (``top`` ints in the
    order of dataset.json's ``tags``), folder, mp3_path, group (the song). ``opt_out`` matches a record
    id (``mtt-<clip_id>``), a bare clip_id, the CSV's mp3_path or the file's path.
    """
    sr = check_rate(sr)
    clip_seconds = check_positive(clip_seconds, "clip_seconds")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be a positive integer, got {top!r}", field="top")
    check_limit(limit)
    root = require_dir(src, expected=EXPECTED)
    csv_path = root / ANNOTATIONS
    if not csv_path.is_file():
        raise DatasetError(f"{src} has no {ANNOTATIONS}; expected {EXPECTED}")
    present = {f for f in FOLDERS if (root / f).is_dir()}
    if not present:
        raise DatasetError(f"{src} has none of the clip folders 0-9, a-f; expected {EXPECTED}")
    tags, clips, bad = read_annotations(csv_path)
    chosen = top_tags(tags, clips, top=top)
    counts = Counter(j for c in clips for j in chosen if c.values[j])
    info: dict[str, Any] = {
        "audio": True, "source": "mtt", "src": str(root), "sr": sr, "clip_seconds": clip_seconds,
        "tags": [tags[j] for j in chosen], "tag_counts": [counts[j] for j in chosen],
        "annotated_clips": len(clips), "songs_in_several_folders": songs_in_several_folders(clips),
        "split_rule": "by folder: 0-b train, c valid, d-f test",
    }
    cache = {"audio": ("float16", 1)}
    with DatasetWriter(out, kind="mtt", cache=cache, info=info, opt_out=opt_out) as writer:
        for where, reason in bad:
            writer.skip(where, reason)
        usable = spread(_report_unusable(writer, root, clips, present), limit)
        without = _add_clips(writer, root, usable, chosen, tags, sr=sr, clip_seconds=clip_seconds)
        writer.info["clips_without_top_tags"] = without
        return writer.finish()


def _report_unusable(writer: DatasetWriter, root: Path, clips: list[Clip], present: set[str]) -> list[Clip]:
    """Report clips in unknown or absent folders (one line per absent folder) and clips missing on disk;
    return the others (so ``limit`` counts clips that exist)."""
    absent: Counter[str] = Counter()
    usable = []
    for clip in clips:
        if clip.folder not in FOLDER_SPLITS:
            writer.skip(root / clip.mp3_path, f"clip {clip.clip_id} is not in a folder 0-9 or a-f")
        elif clip.folder not in present:
            absent[clip.folder] += 1
        elif not (root / clip.mp3_path).is_file():
            writer.skip(root / clip.mp3_path, f"clip {clip.clip_id} is in {ANNOTATIONS} but not on disk")
        else:
            usable.append(clip)
    for folder, count in sorted(absent.items()):
        writer.skip(root / folder, f"clip folder {folder}/ not found: its {count} annotated clip(s) are "
                                   "skipped (were all parts of the mp3 archive extracted?)")
    return usable


def _add_clips(writer: DatasetWriter, root: Path, clips: list[Clip], chosen: list[int], tags: list[str], *,
               sr: int, clip_seconds: float) -> int:
    """Decode and add every clip; returns how many were added without any top tag."""
    size = round(clip_seconds * sr)
    without = 0
    for clip in progress(clips, desc="reading MagnaTagATune clips", unit="clip"):
        path = root / clip.mp3_path
        record_id = f"mtt-{clip.clip_id}"
        if writer.is_opted_out(record_id, clip.clip_id, clip.mp3_path, str(path)):
            continue
        try:
            y, _ = load(path, sr=sr, mono=True)
        except Exception as exc:  # every decode failure is a reported skip, never a crash
            writer.skip(path, describe(exc, path))
            continue
        audio = np.zeros(size, dtype=np.float32)
        real = min(size, y.shape[-1])
        audio[:real] = y[:real]
        multi_hot = [clip.values[j] for j in chosen]
        names = [tags[j] for j, on in zip(chosen, multi_hot, strict=True) if on]
        labels = {"clip_id": clip.clip_id, "tags": names, "multi_hot": multi_hot, "folder": clip.folder,
                  "mp3_path": clip.mp3_path, "group": clip.song}
        record = Record(id=record_id, source=str(path), licence=LICENCE, sha256=sha256_file(path),
                        split=FOLDER_SPLITS[clip.folder], duration=round(real / sr, 3), labels=labels)
        if writer.add(record, {"audio": audio.astype(np.float16)}) is not None and not names:
            without += 1
    return without
