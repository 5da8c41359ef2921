"""The `chorales` corpus: J. S. Bach's four-part chorales bundled with music21 (public domain)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from music21 import corpus

from tunesmith.data.corpora.symbolic_corpus import SymbolicSource, build_symbolic
from tunesmith.data.dataset import BuildSummary
from tunesmith.symbolic.io import score_from_music21
from tunesmith.symbolic.score import Score

VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
LICENCE = "public domain (J. S. Bach chorales; encodings distributed with the music21 corpus)"
VOICES = 4
NOTATION_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")  # the corpus also holds Roman-numeral analyses


def chorale_paths() -> list[Path]:
    """Every Bach file in music21's corpus, MusicXML preferred where a work has several encodings."""
    paths = sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in NOTATION_SUFFIXES)
    chosen: dict[str, Path] = {}
    for path in paths:
        stem = path.name.split(".mxl")[0].split(".krn")[0].split(".xml")[0]
        if stem not in chosen or path.suffix == ".mxl":
            chosen[stem] = path
    return sorted(chosen.values())


def select_satb(score: Score) -> Score:
    """Keep the four vocal parts of a chorale whose score also has instruments (horns, oboes, continuo).

    Parts are matched by name (Soprano, Alto, Tenor, Bass); a score without all four names is unchanged.
    """
    by_name = {p.name.strip().lower(): p for p in score.parts}
    if len(score.parts) == VOICES or not all(v in by_name for v in VOICE_NAMES):
        return score
    return replace(score, parts=[by_name[v] for v in VOICE_NAMES])


def _sources(paths: list[Path]) -> Iterator[SymbolicSource]:
    for path in paths:
        stem = path.name.rsplit(".", 1)[0]
        yield SymbolicSource(id=f"bach-{stem}", path=path, licence=LICENCE,
                             load=lambda p=path: select_satb(score_from_music21(corpus.parse(str(p)))))


def accept_chorale(score: Score) -> str | None:
    """A chorale is four voices (SATB); anything else is skipped with this reason."""
    if len(score.parts) != VOICES:
        return f"not a four-voice chorale ({len(score.parts)} parts)"
    if any(not p.notes for p in score.parts):
        return "a voice has no notes"
    return None


def build_chorales(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset()) -> BuildSummary:
    """Tokenize the chorales into ``out``."""
    paths = chorale_paths()
    if limit is not None:
        paths = paths[:limit]
    return build_symbolic(out, kind="chorales", sources=_sources(paths), total=len(paths), voices=VOICES,
                          accept=accept_chorale, opt_out=opt_out,
                          info={"corpus": "music21 bach", "voice_names": ["soprano", "alto", "tenor", "bass"]})
