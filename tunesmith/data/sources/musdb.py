"""The `musdb` source: MUSDB18 / MUSDB18-HQ as users download them, cut into aligned stem segments.

Layouts (both may be mixed in one tree):

- MUSDB18-HQ: ``SRC/{train,test}/<Track Name>/{mixture,drums,bass,other,vocals}.wav``
- MUSDB18 (compressed): ``SRC/{train,test}/<Track Name>.stem.mp4``, five AAC streams in the order
  mixture, drums, bass, other, vocals (the Native Instruments stems format). These are read through
  ``stempeg`` (installed with ``pip install musdb``), which calls the ``ffmpeg``/``ffprobe`` programs;
  without them every ``.stem.mp4`` is reported as skipped with what to install.

Decisions:

- Audio is cached at 22050 Hz mono by default: half the size and compute of 44.1 kHz, while keeping
  everything up to 11 kHz (vocal formants and consonants, cymbal and hi-hat bodies, which 16 kHz would
  cut at 8 kHz). Mono because every Tunesmith audio model is mono.
- Every stem is cut into the same back-to-back ``segment``-second windows, so segment *i* of the
  mixture and segment *i* of each stem cover the same time span (``labels.start``): a separation model
  finds its (mixture, target) pairs by (track, segment).
- The official split is kept: ``SRC/test`` is ``test``. ``valid`` is carved from ``train`` by the musdb
  convention: the 14 validation tracks listed by the ``musdb`` package (``musdb.DB(subsets="train",
  split="valid")``) and copied in `VALID_TRACKS`. A tree whose train tracks are none of the real MUSDB18
  tracks (a private collection in the same layout) gets an equivalent hash split of 14% of its train
  tracks instead (none when that would leave no train track). All segments of a track share its split.
- A track missing a stem keeps its other stems; the missing stem is reported as skipped and the track is
  listed in ``dataset.json``'s ``incomplete_tracks``.
- Silent segments (vocals in an instrumental passage) are kept, labelled ``silent: true`` (RMS below
  -60 dBFS): a separation model must learn to output silence there, and a user can filter them out.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio.io import load
from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.data.sources import (
    SILENCE_DBFS,
    check_limit,
    check_positive,
    check_rate,
    describe,
    fixed_segments,
    is_silent,
    require_dir,
    spread,
)
from tunesmith.errors import DatasetError
from tunesmith.progress import progress

STEMS = ("mixture", "drums", "bass", "other", "vocals")  # also the stream order inside a .stem.mp4
SUBSETS = ("train", "test")
STEM_SUFFIX = ".stem.mp4"
LICENCE = ("MUSDB18: for non-commercial research use; each track keeps its own licence "
           "(see the MUSDB18 track list)")
EXPECTED = ("MUSDB18 layout: SRC/train and SRC/test holding one folder of "
            "mixture/drums/bass/other/vocals.wav per track (MUSDB18-HQ) or <track>.stem.mp4 files (MUSDB18)")
INSTALL_HINT = ("cannot read .stem.mp4 here: pip install musdb and apt-get install ffmpeg, "
                "or use MUSDB18-HQ (WAV stems)")
VALID_SHARE = 14 / 100  # the musdb convention: 14 of the 100 training tracks
# The musdb package's validation tracks (musdb/configs/mus.yaml, "validation_tracks").
VALID_TRACKS = frozenset({
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
})


@dataclass(frozen=True)
class Track:
    """One MUSDB track: its official subset, name, and folder (HQ) or .stem.mp4 file."""

    subset: str
    name: str
    path: Path

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(STEM_SUFFIX)


def stem_reader_available() -> bool:
    """True when .stem.mp4 files can be decoded here: stempeg importable and ffmpeg + ffprobe on PATH."""
    if importlib.util.find_spec("stempeg") is None:
        return False
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def find_tracks(root: Path) -> tuple[list[Track], list[tuple[Path, str]]]:
    """The tracks of a MUSDB tree (train then test, sorted) and the entries that are not tracks."""
    tracks: list[Track] = []
    strays: list[tuple[Path, str]] = []
    for subset in SUBSETS:
        folder = root / subset
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if path.name.startswith("."):
                strays.append((path, "hidden, not read"))
            elif path.is_dir():
                tracks.append(Track(subset, path.name, path))
            elif path.name.endswith(STEM_SUFFIX):
                tracks.append(Track(subset, path.name[: -len(STEM_SUFFIX)], path))
            else:
                strays.append((path, "not a MUSDB track (expected a folder of WAV stems or a .stem.mp4)"))
    return tracks, strays


def valid_rule(tracks: list[Track], *, valid: bool = True) -> str:
    """How ``valid`` is carved from train: "official" (the musdb validation tracks, when the train tracks
    include any of them), "hash" (14% of the train tracks by name), or "none" (``valid=False``, or a
    hash split that would leave no train track at all)."""
    train = [t for t in tracks if t.subset == "train"]
    if not valid or not train:
        return "none"
    if any(t.name in VALID_TRACKS for t in train):
        return "official"
    if all(track_split(t, rule="hash") == "valid" for t in train):
        return "none"
    return "hash"


def track_split(track: Track, *, rule: str) -> str:
    """The split of a track: test for SRC/test; valid for the validation tracks of ``rule`` (see
    `valid_rule`); else train."""
    if track.subset == "test":
        return "test"
    if rule == "none":
        return "train"
    if rule == "official":
        return "valid" if track.name in VALID_TRACKS else "train"
    return assign_split(track.name, valid=VALID_SHARE, test=0.0, salt="musdb")


RULE_NAMES = {
    "official": "musdb validation tracks",
    "hash": f"hash of the track name, {VALID_SHARE:.0%} of train",
    "none": "none (train and test only)",
}


def build_musdb(
    src: Path,
    out: Path,
    *,
    limit: int | None = None,
    opt_out: frozenset[str] = frozenset(),
    sr: int = 22050,
    segment: float = 6.0,
    valid: bool = True,
) -> BuildSummary:
    """Cut every stem of every MUSDB18(-HQ) track under ``src`` into ``segment``-second mono pieces.

    ``limit``: at most that many tracks, spread evenly over train then test. ``valid``: carve the musdb
    validation tracks out of train (see the module doc); False keeps the two official splits only.
    Cache ``audio``: float16 1-D of ``segment * sr`` samples. Labels: track, stem, segment, start (s),
    silent, subset (the official folder), group (= track). The last segment of a stem is zero-padded
    and kept if at least half of it is audio. ``opt_out`` matches a record id
    (``<subset>/<track>/<stem>/<segment>``), a track name, ``<subset>/<track>`` or a source path.
    """
    sr = check_rate(sr)
    segment = check_positive(segment, "segment")
    check_limit(limit)
    root = require_dir(src, expected=EXPECTED)
    if not any((root / s).is_dir() for s in SUBSETS):
        raise DatasetError(f"{src} has no train/ or test/ folder; expected {EXPECTED}")
    tracks, strays = find_tracks(root)
    if not tracks:
        raise DatasetError(f"no tracks in {src}/train or {src}/test; expected {EXPECTED}")
    rule = valid_rule(tracks, valid=valid)
    readable = stem_reader_available()
    info: dict[str, Any] = {
        "audio": True, "source": "musdb", "src": str(root), "sr": sr, "segment": segment, "hop": segment,
        "stems": list(STEMS), "valid_rule": RULE_NAMES[rule],
        "layouts": sorted({"MUSDB18" if t.compressed else "MUSDB18-HQ" for t in tracks}),
        "missing_subsets": [s for s in SUBSETS if not (root / s).is_dir()],
        "silence_dbfs": SILENCE_DBFS, "incomplete_tracks": {},
    }
    cache = {"audio": ("float16", 1)}
    with DatasetWriter(out, kind="musdb", cache=cache, info=info, opt_out=opt_out) as writer:
        for path, reason in strays:
            writer.skip(path, reason)
        for track in progress(spread(tracks, limit), desc="reading MUSDB tracks", unit="track"):
            if writer.is_opted_out(track.name, f"{track.subset}/{track.name}", str(track.path)):
                continue
            split = track_split(track, rule=rule)
            if track.compressed and not readable:
                writer.skip(track.path, INSTALL_HINT)
                continue
            missing = _add_track(writer, track, split=split, sr=sr, segment=segment)
            if missing:
                writer.info["incomplete_tracks"][f"{track.subset}/{track.name}"] = missing
        return writer.finish()


def _add_track(writer: DatasetWriter, track: Track, *, split: str, sr: int, segment: float) -> list[str]:
    """Add the segments of every stem of ``track``; returns the stems that could not be used."""
    stems = _read_stems(writer, track, sr=sr)
    sha = sha256_file(track.path) if track.compressed else None
    missing = [stem for stem in STEMS if stem not in stems]
    for stem, (source, y) in stems.items():
        pieces = fixed_segments(y, sr=sr, seconds=segment)
        if not pieces:
            writer.skip(source, f"{stem} stem has no audio samples")
            missing.append(stem)
            continue
        stem_sha = sha or sha256_file(source)
        for number, (start, frame, real) in enumerate(pieces):
            labels = {"track": track.name, "stem": stem, "segment": number, "start": round(start / sr, 3),
                      "silent": is_silent(frame[:real]), "subset": track.subset, "group": track.name}
            record = Record(id=f"{track.subset}/{track.name}/{stem}/{number:04d}", source=str(source),
                            licence=LICENCE, sha256=stem_sha, split=split, duration=round(real / sr, 3),
                            labels=labels)
            writer.add(record, {"audio": frame.astype(np.float16)})
    return [stem for stem in STEMS if stem in missing]


def _read_stems(writer: DatasetWriter, track: Track, *, sr: int) -> dict[str, tuple[Path, np.ndarray]]:
    """The stems of a track that decode, as {stem: (source file, float32 mono at sr)}; the others are
    reported skipped (a missing or corrupt stem never drops the track's other stems)."""
    if track.compressed:
        return _read_stem_mp4(writer, track, sr=sr)
    wanted = {f"{s}.wav" for s in STEMS}
    for path in sorted(track.path.iterdir()):
        if path.name not in wanted:
            writer.skip(path, f"not a MUSDB stem (expected {', '.join(sorted(wanted))})")
    stems: dict[str, tuple[Path, np.ndarray]] = {}
    for stem in STEMS:
        source = track.path / f"{stem}.wav"
        if not source.is_file():
            writer.skip(source, f"missing {stem} stem of track {track.name!r}; its other stems are kept")
            continue
        try:
            stems[stem] = (source, load(source, sr=sr, mono=True)[0])
        except Exception as exc:  # a corrupt stem is reported, the track's other stems are kept
            writer.skip(source, describe(exc, source))
    return stems


def _read_stem_mp4(writer: DatasetWriter, track: Track, *, sr: int) -> dict[str, tuple[Path, np.ndarray]]:
    """Every stream of a .stem.mp4 (mixture, drums, bass, other, vocals) as mono float32 at ``sr``."""
    source = track.path
    try:
        if source.stat().st_size == 0:
            raise DatasetError("file is empty")
        import stempeg  # imported here: it refuses to import at all without ffmpeg

        audio, _ = stempeg.read_stems(str(source), sample_rate=sr, dtype=np.float32, always_3d=True)
        audio = np.asarray(audio, dtype=np.float32)  # (streams, frames, channels)
        if audio.ndim != 3 or not np.isfinite(audio).all():
            raise DatasetError(f"decoded to an array of shape {audio.shape}, not finite stereo streams")
    except Exception as exc:  # ffprobe/ffmpeg failures arrive as Warning, RuntimeError, ...
        writer.skip(source, describe(exc, source))
        return {}
    if audio.shape[0] < len(STEMS):
        absent = ", ".join(STEMS[audio.shape[0]:])
        writer.skip(source, f"holds {audio.shape[0]} audio streams, not {len(STEMS)}: no {absent} stem(s)")
    return {stem: (source, np.ascontiguousarray(audio[i].mean(axis=-1)))
            for i, stem in enumerate(STEMS[: audio.shape[0]])}
