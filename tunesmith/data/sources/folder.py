"""The `folder` source: any folder of audio or symbolic files, read recursively.

Files are walked in sorted order, so two builds of one folder give the same manifest. Audio becomes
fixed-length segments, split by file: every segment of a recording lands in the split of that file.
Symbolic files (MIDI, MusicXML, ABC, Humdrum) become token sequences, split by melodic contour like the
bundled corpora, so one tune saved twice or transposed lands in one split.

Nothing is dropped silently: files of the other modality, unsupported types, hidden files, links that
lead nowhere and every file that fails to decode are listed in the summary's ``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio.io import AUDIO_EXTENSIONS, load
from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.data.sources import (
    check_limit,
    check_positive,
    check_rate,
    describe,
    fixed_segments,
    require_dir,
    spread,
)
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.progress import progress

SYMBOLIC_EXTENSIONS = (".mid", ".midi", ".smf", ".xml", ".musicxml", ".mxl", ".abc", ".krn")
OTHER_AUDIO_EXTENSIONS = (".aif", ".aiff", ".aifc", ".m4a", ".aac", ".opus", ".wma", ".alac", ".caf", ".au")
LICENCE_FILES = ("license", "licence", "license.txt", "licence.txt", "license.md", "licence.md", "copying")
DEFAULT_LICENCE = "unknown (user-supplied folder)"
MODALITIES = ("auto", "audio", "midi")
EXPECTED = ("a folder of audio (.wav .flac .ogg .mp3) or symbolic (.mid .midi .xml .mxl .musicxml .abc .krn) "
            "files")


def build_folder(
    src: Path,
    out: Path,
    *,
    limit: int | None = None,
    opt_out: frozenset[str] = frozenset(),
    modality: str = "auto",
    sr: int = 16000,
    segment: float = 4.0,
    voices: int = 1,
) -> BuildSummary:
    """Build a dataset from every audio or symbolic file under ``src`` (recursive, sorted).

    ``modality``: "audio", "midi", or "auto" (whichever kind has more files; a tie goes to audio).
    Files of the other kind are skipped with a reason naming the ``modality`` that would read them.
    ``limit``: at most that many files, spread evenly over the sorted list.

    Audio: decoded at ``sr`` Hz mono and cut into back-to-back ``segment``-second pieces (hop =
    segment); the last piece is zero-padded and kept only if at least half of it is audio, or if the
    file is shorter than one segment. Cache ``audio``: float16 1-D. Labels: path (relative to src),
    segment, start (s), group (= path). Duration = seconds of real audio in the segment.

    Symbolic: read, quantized to 4 steps per beat, reduced to ``voices`` (1 = the melody: the highest
    voice of the highest pitched part; or every pitched part when ``voices`` equals their number), then
    tokenized. Cache ``tokens``: int16 1-D. Labels like the bundled corpora's.

    The licence of every record is the first line of a LICENSE/LICENCE(.txt/.md)/COPYING file at the
    root of ``src`` if there is one, else "unknown (user-supplied folder)".
    """
    if modality not in MODALITIES:
        raise ParameterError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}",
                             field="modality")
    sr = check_rate(sr)
    segment = check_positive(segment, "segment")
    if isinstance(voices, bool) or not isinstance(voices, int) or voices < 1:
        raise ParameterError(f"voices must be a positive integer, got {voices!r}", field="voices")
    check_limit(limit)
    root = require_dir(src, expected=EXPECTED)
    licence_file = _licence_file(root)
    licence = _licence(licence_file)
    entries = list(walk(root, ignore={licence_file} if licence_file else set()))
    audio = [p for p, reason in entries if reason is None and p.suffix.lower() in AUDIO_EXTENSIONS]
    symbolic = [p for p, reason in entries if reason is None and p.suffix.lower() in SYMBOLIC_EXTENSIONS]
    if not audio and not symbolic:
        raise DatasetError(f"no audio or symbolic files under {src} ({len(entries)} other entries); "
                           f"expected {EXPECTED}")
    chosen = modality if modality != "auto" else ("audio" if len(audio) >= len(symbolic) else "midi")
    if not (audio if chosen == "audio" else symbolic):
        other = "midi" if chosen == "audio" else "audio"
        raise DatasetError(f"no {chosen} files under {src} (it holds {len(audio) + len(symbolic)} {other} "
                           f"files: use modality={other})")
    files = spread(audio if chosen == "audio" else symbolic, limit)
    info: dict[str, Any] = {"source": "folder", "src": str(root), "modality": chosen, "licence": licence}
    builder = _build_audio if chosen == "audio" else _build_symbolic
    return builder(root, out, files=files, entries=entries, opt_out=opt_out, licence=licence, info=info,
                   sr=sr, segment=segment, voices=voices)


def walk(root: Path, *, ignore: set[Path] | None = None) -> Iterator[tuple[Path, str | None]]:
    """Every entry under ``root`` in sorted order: (path, None) for a regular file with a known audio or
    symbolic extension, (path, reason) for anything that will not be read (hidden, unsupported, a link
    to nothing). Hidden folders and symlinked folders are reported once and not entered."""
    ignore = ignore or set()
    try:
        children = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        yield root, f"cannot list this folder ({exc.strerror or exc})"
        return
    for path in children:
        if path in ignore:
            continue
        if path.name.startswith("."):
            kind = "folder" if path.is_dir() else "file"
            yield path, f"hidden {kind}, not read"
        elif path.is_symlink() and path.is_dir():
            yield path, "symlinked folder, not followed"
        elif path.is_dir():
            yield from walk(path, ignore=ignore)
        elif not path.is_file():
            yield path, "no such file (a link to nothing) or not a regular file"
        else:
            yield path, _unsupported_reason(path)


def _unsupported_reason(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in AUDIO_EXTENSIONS or suffix in SYMBOLIC_EXTENSIONS:
        return None
    if suffix in OTHER_AUDIO_EXTENSIONS:
        return (f"unsupported audio format {suffix!r}: convert it to one of "
                f"{', '.join(AUDIO_EXTENSIONS)}")
    return f"unsupported file type {suffix or '(no extension)'!r}; expected {EXPECTED}"


def _licence_file(root: Path) -> Path | None:
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        if path.is_file() and path.name.lower() in LICENCE_FILES:
            return path
    return None


def _licence(path: Path | None) -> str:
    """The first non-empty line of the licence file, else the default."""
    if path is None:
        return DEFAULT_LICENCE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return DEFAULT_LICENCE
    return next((line.strip() for line in text.splitlines() if line.strip()), DEFAULT_LICENCE)


def _report_unread(writer: DatasetWriter, entries: list[tuple[Path, str | None]], chosen: str) -> None:
    """Skip-report every entry that this build does not read, with the reason."""
    other = SYMBOLIC_EXTENSIONS if chosen == "audio" else AUDIO_EXTENSIONS
    other_name = "midi" if chosen == "audio" else "audio"
    label = {"audio": "an audio", "midi": "a MIDI/score"}
    for path, reason in entries:
        if reason is not None:
            writer.skip(path, reason)
        elif path.suffix.lower() in other:
            writer.skip(path, f"{label[other_name]} file, but this build reads {chosen} files; "
                              f"build with modality={other_name} (--modality {other_name}) to read it")


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# ------------------------------------------------------------------------------------------ audio


def _build_audio(root: Path, out: Path, *, files: list[Path], entries: list[tuple[Path, str | None]],
                 opt_out: frozenset[str], licence: str, info: dict[str, Any], sr: int, segment: float,
                 voices: int) -> BuildSummary:
    info = {**info, "audio": True, "sr": sr, "segment": segment, "hop": segment,
            "segment_rule": "hop = segment; the last segment is zero-padded and kept if at least half of it "
                            "is audio or it is the file's only segment"}
    cache = {"audio": ("float16", 1)}
    with DatasetWriter(out, kind="folder", cache=cache, info=info, opt_out=opt_out) as writer:
        _report_unread(writer, entries, "audio")
        for path in progress(files, desc="reading audio", unit="file"):
            rel = _relative(root, path)
            if writer.is_opted_out(rel, str(path)):
                continue
            try:
                y, _ = load(path, sr=sr, mono=True)
                pieces = fixed_segments(y, sr=sr, seconds=segment)
            except Exception as exc:  # every decode failure is a reported skip, never a crash
                writer.skip(path, describe(exc, path))
                continue
            if not pieces:
                writer.skip(path, "no audio samples")
                continue
            sha = sha256_file(path)
            split = assign_split(rel)
            for index, (start, frame, real) in enumerate(pieces):
                labels = {"path": rel, "segment": index, "start": round(start / sr, 3), "group": rel}
                record = Record(id=f"{rel}#{index:04d}", source=str(path), licence=licence, sha256=sha,
                                split=split, duration=round(real / sr, 3), labels=labels)
                writer.add(record, {"audio": frame.astype(np.float16)})
        return writer.finish()


# --------------------------------------------------------------------------------------- symbolic


def select_voices(score: Any, voices: int) -> tuple[Any, str | None]:
    """The score reduced to ``voices`` lines, or (score, reason to skip).

    1 = the melody: the highest voice (`split_voices`) of the pitched part with the highest mean pitch.
    Otherwise every pitched part, which must number exactly ``voices`` and each be monophonic.
    """
    from tunesmith.symbolic.transform import is_monophonic, split_voices

    pitched = [p for p in score.parts if not p.is_drum and p.notes]
    if not pitched:
        return score, "no notes" if not score.n_notes else "only drum notes, no pitched part"
    if voices == 1:
        top = max(pitched, key=lambda p: sum(n.pitch for n in p.notes) / len(p.notes))
        return replace(score, parts=[split_voices(top)[0]]), None
    if len(pitched) != voices:
        use = "voices=1" if len(pitched) == 1 else f"voices=1 (the melody) or voices={len(pitched)}"
        return score, f"{len(pitched)} pitched part(s), but voices={voices}; use {use}"
    poly = next((p.name for p in pitched if not is_monophonic(p)), None)
    if poly is not None:
        return score, (f"part {poly!r} is polyphonic; voices={voices} needs one line per part "
                       "(voices=1 takes the melody)")
    return replace(score, parts=pitched), None


def _build_symbolic(root: Path, out: Path, *, files: list[Path], entries: list[tuple[Path, str | None]],
                    opt_out: frozenset[str], licence: str, info: dict[str, Any], sr: int, segment: float,
                    voices: int) -> BuildSummary:
    from tunesmith.data.corpora.symbolic_corpus import STEPS_PER_BEAT, contour_group
    from tunesmith.symbolic.io import read_score
    from tunesmith.symbolic.tokens import Vocabulary, encode
    from tunesmith.symbolic.transform import quantize

    info = {**info, "audio": False, "voices": voices, "steps_per_beat": STEPS_PER_BEAT,
            "vocabulary": Vocabulary().to_dict()}
    cache = {"tokens": ("int16", 1)}
    with DatasetWriter(out, kind="folder", cache=cache, info=info, opt_out=opt_out) as writer:
        _report_unread(writer, entries, "midi")
        for path in progress(files, desc="reading scores", unit="file"):
            rel = _relative(root, path)
            if writer.is_opted_out(rel, str(path)):
                continue
            try:
                quantized = quantize(read_score(path), steps_per_beat=STEPS_PER_BEAT)
                score, reason = select_voices(quantized, voices)
                if reason is None:
                    ids = encode(score, voices=voices, steps_per_beat=STEPS_PER_BEAT)
            except Exception as exc:  # music21 and mido raise many types on malformed files
                writer.skip(path, describe(exc, path))
                continue
            if reason is not None:
                writer.skip(path, reason)
                continue
            group = contour_group(score)
            labels = {"path": rel, "title": score.title, "key": score.key,
                      "meter": "{}/{}".format(*score.time_signature), "bars": score.n_bars,
                      "notes": score.n_notes, "tempo": score.tempo, "voices": voices, "group": group,
                      "tokens": len(ids)}
            record = Record(id=rel, source=str(path), licence=licence, sha256=sha256_file(path),
                            split=assign_split(group), duration=round(score.duration_seconds, 3),
                            labels=labels)
            writer.add(record, {"tokens": np.asarray(ids, dtype=np.int16)})
        return writer.finish()
