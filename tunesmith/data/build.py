"""One entry point for every dataset build: ``build(kind, src, out, ...)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.dataset import BuildSummary
from tunesmith.errors import DatasetError, ParameterError


@dataclass(frozen=True)
class Builder:
    """A dataset kind: whether it reads a user's SRC, and the function that builds it."""

    kind: str
    needs_source: bool
    summary: str
    load: Callable[[], Callable[..., BuildSummary]]


def _notes() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.notes import build_notes
    return build_notes


def _samples() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.samples import build_samples
    return build_samples


def _chorales() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.chorales import build_chorales
    return build_chorales


def _folk() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.folk import build_folk
    return build_folk


def _grooves() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.grooves import build_grooves
    return build_grooves


def _human_drums() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.human_drums import build_human_drums
    return build_human_drums


def _mixtures() -> Callable[..., BuildSummary]:
    from tunesmith.data.corpora.mixtures import build_mixtures
    return build_mixtures


def _folder() -> Callable[..., BuildSummary]:
    from tunesmith.data.sources.folder import build_folder
    return build_folder


def _musdb() -> Callable[..., BuildSummary]:
    from tunesmith.data.sources.musdb import build_musdb
    return build_musdb


def _mtt() -> Callable[..., BuildSummary]:
    from tunesmith.data.sources.mtt import build_mtt
    return build_mtt


BUILDERS: dict[str, Builder] = {
    b.kind: b
    for b in (
        Builder("notes", False, "single notes and drum hits rendered from the GM soundfont", _notes),
        Builder("samples", False, "real recordings: drum kits, grand piano, instrument samples, loops", _samples),
        Builder("chorales", False, "Bach four-part chorales from music21's corpus", _chorales),
        Builder("folk", False, "Essen and Ryan's Mammoth folk melodies from music21's corpus", _folk),
        Builder("grooves", False, "MMA's style library rendered as multi-track songs (Debian package mma)", _grooves),
        Builder("human-drums", False, "drum patterns of Hydrogen's and LMMS's demo projects (evaluation)",
                _human_drums),
        Builder("mixtures", False, "grooves songs rendered as recordings (soundfonts, real kits, room, MP3), "
                "labelled with the instrument families sounding when", _mixtures),
        Builder("folder", True, "any folder of audio or MIDI files (recursive)", _folder),
        Builder("musdb", True, "MUSDB18 / MUSDB18-HQ stems as segments", _musdb),
        Builder("mtt", True, "MagnaTagATune clips with top-50 tags", _mtt),
    )
}


def read_opt_out(path: Path | None) -> frozenset[str]:
    """Ids or source paths to leave out of every build, one per line (``#`` starts a comment)."""
    if path is None:
        return frozenset()
    if not path.is_file():
        raise ParameterError(f"opt-out list {path} does not exist", field="opt_out")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line)


def build(kind: str, src: Path | None, out: Path, *, limit: int | None = None,
          opt_out: frozenset[str] = frozenset(), **options: Any) -> BuildSummary:
    """Build a dataset of ``kind`` into ``out``; options are passed to that kind's builder."""
    if kind not in BUILDERS:
        raise ParameterError(f"unknown dataset kind {kind!r}; choose one of {', '.join(BUILDERS)}", field="kind")
    if limit is not None and limit <= 0:
        raise ParameterError(f"--limit must be a positive number, got {limit}", field="limit")
    builder = BUILDERS[kind]
    function = builder.load()
    accepted = inspect.signature(function).parameters
    for name in options:
        if name not in accepted:
            raise ParameterError(f"option --{name} does not apply to '{kind}' datasets", field=name)
    if builder.needs_source:
        if src is None:
            raise ParameterError(f"'{kind}' needs a source directory (SRC)", field="src")
        if not src.is_dir():
            raise DatasetError(f"source {src} is not a directory")
        return function(src, out, limit=limit, opt_out=opt_out, **options)
    if src is not None:
        raise ParameterError(f"'{kind}' is built from bundled data and takes no SRC (got {src})", field="src")
    return function(out, limit=limit, opt_out=opt_out, **options)
