"""The `folk` corpus: single-line folk melodies bundled with music21.

Two collections, each with its own licence on every record:
- the Essen Folksong Collection (ABC by Seymour Shlien): distributed for non-commercial use;
- Ryan's Mammoth Collection (1883) of fiddle tunes: public domain.

Tunes are parsed one by one (a malformed tune is skipped alone). On the sixteenth-note grid, triplets can
put two notes on one step; the melody keeps the higher of them (`make_monophonic`), as documented in
docs/data.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path

import music21

from tunesmith.data.corpora.symbolic_corpus import SymbolicSource, build_symbolic
from tunesmith.data.dataset import BuildSummary
from tunesmith.symbolic.io import read_abc_text, split_abc
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.transform import make_monophonic

CORPUS_ROOT = Path(music21.__file__).parent / "corpus"
ESSEN_LICENCE = ("non-commercial use permitted (Essen Folksong Collection, ed. H. Schaffrath and "
                 "E. Dahlig-Turek; ABC encoding by S. Shlien, distributed with music21)")
RYAN_LICENCE = "public domain (Ryan's Mammoth Collection, 1883; ABC distributed with music21)"
MIN_NOTES = 8


def essen_files() -> list[Path]:
    """The Essen ABC files, without music21's own test files."""
    return sorted(p for p in (CORPUS_ROOT / "essenFolksong").glob("*.abc") if not p.name.startswith("test"))


def ryan_files() -> list[Path]:
    return sorted((CORPUS_ROOT / "ryansMammoth").glob("*.abc"))


def count_tunes(path: Path) -> int:
    """Number of tunes (``X:`` headers) in an ABC file."""
    with open(path, encoding="latin-1") as handle:
        return sum(1 for line in handle if line.startswith("X:"))


def _tunes(paths: list[Path], licence: str, prefix: str) -> Iterator[SymbolicSource]:
    """One lazily parsed source per tune of each ABC file."""
    for path in paths:
        text = path.read_text(encoding="latin-1")
        for number, tune in split_abc(text):
            name = f"{path}#X:{number}"
            yield SymbolicSource(id=f"{prefix}-{path.stem}-{number}", path=path, licence=licence,
                                 load=lambda t=tune, n=name: read_abc_text(t, source=n))


def _interleave(*iterators: Iterator[SymbolicSource]) -> Iterator[SymbolicSource]:
    """Alternate between collections, so a build with --limit holds both."""
    live = list(iterators)
    while live:
        for it in list(live):
            try:
                yield next(it)
            except StopIteration:
                live.remove(it)


def melody_line(score: Score) -> Score:
    """Reduce every part to one line (triplets squeezed onto the grid keep their higher note)."""
    return replace(score, parts=[make_monophonic(p) for p in score.parts])


def accept_melody(score: Score) -> str | None:
    """A folk item is one melodic line with enough notes to learn from."""
    if len(score.parts) != 1:
        return f"not a single melody ({len(score.parts)} parts)"
    if score.n_notes < MIN_NOTES:
        return f"too short ({score.n_notes} notes, need {MIN_NOTES})"
    return None


def build_folk(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset()) -> BuildSummary:
    """Tokenize the folk melodies into ``out``."""
    essen, ryan = essen_files(), ryan_files()
    sources: Iterator[SymbolicSource] = _interleave(_tunes(essen, ESSEN_LICENCE, "essen"),
                                                    _tunes(ryan, RYAN_LICENCE, "ryan"))
    total = sum(count_tunes(p) for p in essen + ryan)
    if limit is not None:
        sources, total = islice(sources, limit), min(limit, total)
    return build_symbolic(out, kind="folk", sources=sources, total=total, voices=1, accept=accept_melody,
                          prepare=melody_line, opt_out=opt_out,
                          info={"corpus": "music21 essenFolksong + ryansMammoth"})
