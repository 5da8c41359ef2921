"""Shared builder for symbolic corpora: music21 sources -> quantized scores -> voice-grid tokens.

Split groups come from the first voice's melodic contour (its first pitch intervals), so the same tune
harmonized twice, or notated in two keys, always lands in one split.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.errors import TunesmithError
from tunesmith.progress import progress
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.tokens import Vocabulary, encode
from tunesmith.symbolic.transform import quantize

CONTOUR_NOTES = 16
STEPS_PER_BEAT = 4


@dataclass(frozen=True)
class SymbolicSource:
    """One piece to read: a stable id, the file it comes from, its licence and a loader."""

    id: str
    path: Path
    licence: str
    load: Callable[[], Score]


def contour_group(score: Score) -> str:
    """A transposition-invariant key of the first voice's opening: its first pitch intervals."""
    notes = sorted(score.parts[0].notes, key=lambda n: n.start)[: CONTOUR_NOTES + 1] if score.parts else []
    intervals = [b.pitch - a.pitch for a, b in itertools.pairwise(notes)]
    return "contour:" + ",".join(map(str, intervals))


def build_symbolic(
    out: Path,
    *,
    kind: str,
    sources: Iterable[SymbolicSource],
    total: int | None,
    voices: int,
    accept: Callable[[Score], str | None],
    prepare: Callable[[Score], Score] | None = None,
    opt_out: frozenset[str] = frozenset(),
    info: dict | None = None,
) -> BuildSummary:
    """Tokenize every source ``accept`` agrees to (it returns a reason to skip, or None).

    ``prepare`` (optional) reshapes each quantized score before it is checked, e.g. to one melodic line.
    """
    vocab = Vocabulary()
    info = {"audio": False, "voices": voices, "steps_per_beat": STEPS_PER_BEAT, "vocabulary": vocab.to_dict(),
            **(info or {})}
    sha_cache: dict[Path, str] = {}
    with DatasetWriter(out, kind=kind, cache={"tokens": ("int16", 1)}, info=info, opt_out=opt_out) as writer:
        for source in progress(sources, total=total, desc=f"building {kind}", unit="piece"):
            if writer.is_opted_out(source.id, str(source.path)):
                continue
            try:
                score = quantize(source.load(), steps_per_beat=STEPS_PER_BEAT)
                if prepare is not None:
                    score = prepare(score)
                reason = accept(score)
                if reason:
                    writer.skip(f"{source.path} ({source.id})", reason)
                    continue
                ids = encode(score, voices=voices, steps_per_beat=STEPS_PER_BEAT)
            except TunesmithError as exc:
                writer.skip(f"{source.path} ({source.id})", str(exc))
                continue
            except Exception as exc:  # music21 raises many types on malformed encodings
                writer.skip(f"{source.path} ({source.id})", f"{type(exc).__name__}: {exc}")
                continue
            if source.path not in sha_cache:
                sha_cache[source.path] = sha256_file(source.path)
            group = contour_group(score)
            labels = {
                "title": score.title, "key": score.key, "meter": "{}/{}".format(*score.time_signature),
                "bars": score.n_bars, "notes": score.n_notes, "tempo": score.tempo, "voices": voices,
                "group": group, "tokens": len(ids),
            }
            record = Record(id=source.id, source=str(source.path), licence=source.licence,
                            sha256=sha_cache[source.path], split=assign_split(group),
                            duration=round(score.duration_seconds, 3), labels=labels)
            writer.add(record, {"tokens": np.asarray(ids, dtype=np.int16)})
        return writer.finish()
