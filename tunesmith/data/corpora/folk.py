"""The `folk` corpus: single-line folk melodies bundled with music21.

Two collections, each with its own licence on every record:
- the Essen Folksong Collection (ABC by Seymour Shlien): distributed for non-commercial use;
- Ryan's Mammoth Collection (1883) of fiddle tunes: public domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import music21
from music21 import converter

from tunesmith.data.corpora.symbolic_corpus import SymbolicSource, build_symbolic
from tunesmith.data.dataset import BuildSummary
from tunesmith.symbolic.io import score_from_music21
from tunesmith.symbolic.score import Score

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


def _failing(exc: Exception) -> Score:
    raise exc


def _tunes(path: Path, licence: str, prefix: str) -> Iterator[SymbolicSource]:
    """One source per tune of an ABC file; a file music21 cannot parse becomes one failing source."""
    try:
        parsed = converter.parse(str(path), format="abc")
    except Exception as exc:  # reported as a skipped file by the builder
        yield SymbolicSource(id=f"{prefix}-{path.stem}", path=path, licence=licence,
                             load=lambda e=exc: _failing(e))
        return
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    for position, m21 in enumerate(scores, start=1):
        number = getattr(m21.metadata, "number", None) if m21.metadata else None
        yield SymbolicSource(id=f"{prefix}-{path.stem}-{number or position}", path=path, licence=licence,
                             load=lambda s=m21: score_from_music21(s))


def _sources(files: list[tuple[Path, str, str]], limit: int | None) -> Iterator[SymbolicSource]:
    produced = 0
    for path, licence, prefix in files:
        for source in _tunes(path, licence, prefix):
            if limit is not None and produced >= limit:
                return
            produced += 1
            yield source


def accept_melody(score: Score) -> str | None:
    """A folk item is one melodic line with enough notes to learn from."""
    if len(score.parts) != 1:
        return f"not a single melody ({len(score.parts)} parts)"
    if score.n_notes < MIN_NOTES:
        return f"too short ({score.n_notes} notes, need {MIN_NOTES})"
    return None


def build_folk(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset()) -> BuildSummary:
    """Tokenize the folk melodies into ``out``; ``limit`` takes an even share from both collections."""
    essen, ryan = essen_files(), ryan_files()
    files: list[tuple[Path, str, str]]
    if limit is not None:
        # interleave the collections so a small build holds both
        half = max(1, limit // 2)
        files = [(p, ESSEN_LICENCE, "essen") for p in essen[:1]] + [(p, RYAN_LICENCE, "ryan") for p in ryan[:half]]
        total = limit
        sources = _interleave(_sources(files[:1], limit - min(half, len(ryan))), _sources(files[1:], half))
    else:
        files = [(p, ESSEN_LICENCE, "essen") for p in essen] + [(p, RYAN_LICENCE, "ryan") for p in ryan]
        total = sum(count_tunes(p) for p, _, _ in files)
        sources = _sources(files, None)
    return build_symbolic(out, kind="folk", sources=sources, total=total, voices=1, accept=accept_melody,
                          opt_out=opt_out, info={"corpus": "music21 essenFolksong + ryansMammoth"})


def _interleave(*iterators: Iterator[SymbolicSource]) -> Iterator[SymbolicSource]:
    live = list(iterators)
    while live:
        for it in list(live):
            try:
                yield next(it)
            except StopIteration:
                live.remove(it)
