"""The `grooves` corpus: MMA's style library rendered as multi-track songs over progressions from real music.

Build (``tunesmith data build grooves --out DIR [--limit N] [--workers W]``):

1. every style file of MMA's library that belongs to a style family (`tunesmith.data.styles`) is probed:
   its grooves (MMA's own ``-Djs`` inventory) and its meter (two bars of each groove rendered);
2. each family gets about ``songs_per_family`` songs, spread over its files, and each file as many more as it
   takes for every groove of it to play at least once (`tunesmith.data.arrange.choose_grooves`);
3. progressions are read from MMA's example songs, Bach's chorales, string quartets and folk tunes
   (`tunesmith.data.progressions`), and each song takes one in its meter (kinds in turn: folk 4, chorale 3,
   quartet 3, MMA example 1 of every 11 songs), a window of it, a transposition, a tempo in the style's
   range and a lead instrument;
4. songs are rendered by MMA in a process pool, up to `BATCH_SONGS` songs of one style file per MMA run
   (MMA starts in ~80 ms, most of a song's render time), and stored.

Storage: one record per song; cache ``notes`` (int32, one row per note: track, start, duration, pitch,
velocity, times in 1/1920 quarter-note beats from the song's first bar line); the manifest labels hold the
tracks (name, role, GM program, drum flag), the sections, the chord changes and the source of the
progression. `iter_songs` reads them back as `SongRecord` (a `Score` plus labels).

A small build (``--limit N``) takes N songs round-robin over the families (one per family first) and reads
only as many progressions as those songs need.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.arrange import (
    TICKS_PER_BEAT,
    GrooveChoice,
    SongNotes,
    SongPlan,
    StyleInfo,
    choose_grooves,
    probe_style,
    progression_span,
    render_songs,
    section_layout,
    stable_hash,
)
from tunesmith.data.dataset import BuildSummary, Dataset, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.data.mma import StyleFile, library_dir, mma_executable, patched_library, style_files
from tunesmith.data.progressions import PieceSource, Progression, accept, all_sources, interleave
from tunesmith.data.styles import EXCLUDED_FILES, STYLE_FAMILIES, family, family_of_file
from tunesmith.errors import DatasetError, ParameterError, TunesmithError
from tunesmith.progress import progress
from tunesmith.symbolic.score import Note, Part, Score

MMA_LICENCE = "GPL-2+ (MMA style library, Bob van der Poel; Debian package mma)"
SONGS_PER_FAMILY = 96
BATCH_SONGS = 8   # songs of one style file per MMA run: MMA's start-up (~80 ms) is most of a song's render time
KIND_WEIGHTS = {"folk": 4, "chorale": 3, "quartet": 3, "mma": 1}
# Progression meters a style meter accepts, and how many progression bars make one style bar.
COMPATIBLE: dict[tuple[int, int], tuple[tuple[tuple[int, int], int], ...]] = {
    (4, 4): (((4, 4), 1), ((2, 2), 1), ((2, 4), 2)),
    (3, 4): (((3, 4), 1),),
    (6, 8): (((6, 8), 1), ((3, 8), 2)),
    (12, 8): (((12, 8), 1), ((6, 8), 2)),
    (2, 4): (((2, 4), 1),),
    (5, 4): (((5, 4), 1),),
}


# ------------------------------------------------------------------------------------------- the workers


def _probe(task: tuple[StyleFile, Path]) -> StyleInfo | str:
    style, library = task
    workdir = Path(tempfile.mkdtemp(prefix="tunesmith-mma-"))
    try:
        return probe_style(style, workdir, library)
    except TunesmithError as exc:
        return str(exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _load(source: PieceSource) -> list[Progression] | str:
    try:
        return source.load()
    except TunesmithError as exc:
        return str(exc)
    except Exception as exc:  # music21 raises many types on malformed notation
        return f"{type(exc).__name__}: {exc}"


def _render(batch: list[tuple[SongPlan, str]]) -> list[SongNotes | str]:
    workdir = Path(tempfile.mkdtemp(prefix="tunesmith-mma-"))
    try:
        return render_songs([plan for plan, _ in batch], workdir, [rhythm for _, rhythm in batch])
    except TunesmithError as exc:
        return [str(exc)] * len(batch)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _batches(plans: list[SongPlan], size: int) -> list[list[tuple[SongPlan, str]]]:
    """Plans grouped by style file (in order of first appearance), at most ``size`` per MMA run."""
    by_style: dict[str, list[SongPlan]] = defaultdict(list)
    for plan in plans:
        by_style[plan.style.name].append(plan)
    return [[(p, family(p.style.family).harmonic_rhythm) for p in group[i:i + size]]
            for group in by_style.values() for i in range(0, len(group), size)]


class _Pool:
    """``map`` in order over a process pool, or in this process for one worker."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ProcessPoolExecutor(workers) if workers > 1 else None

    def map(self, function, items: list, *, desc: str, unit: str) -> Iterator:
        if self.executor is None:
            return progress(map(function, items), total=len(items), desc=desc, unit=unit)
        chunk = max(1, min(16, len(items) // (self.workers * 8) or 1))
        return progress(self.executor.map(function, items, chunksize=chunk), total=len(items), desc=desc, unit=unit)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()


# -------------------------------------------------------------------------------------------- planning


@dataclass
class _Slot:
    """One song to make: a style file and its n-th groove choice."""

    style: StyleInfo
    number: int
    choice: GrooveChoice


def _family_slots(infos: dict[str, StyleInfo], songs_per_family: int) -> dict[str, list[_Slot]]:
    """Per family, its songs interleaved over its files (file 1 song 1, file 2 song 1, ...)."""
    out: dict[str, list[_Slot]] = {}
    for fam in STYLE_FAMILIES:
        files = [infos[f] for f in fam.files if f in infos]
        if not files:
            continue
        base = -(-songs_per_family // len(files))
        per_file = [[_Slot(info, n, c) for n, c in enumerate(choose_grooves(info, base))] for info in files]
        out[fam.id] = [slot for row in _zip_longest(per_file) for slot in row]
    return out


def _zip_longest(lists: list[list]) -> Iterator[list]:
    for i in range(max(map(len, lists), default=0)):
        yield [items[i] for items in lists if i < len(items)]


def _round_robin(by_family: dict[str, list[_Slot]]) -> list[_Slot]:
    """All slots, one family after another in turn: any prefix is spread over the families."""
    return [slot for row in _zip_longest(list(by_family.values())) for slot in row]


class _Pools:
    """Progressions by meter, handed out kind by kind (`KIND_WEIGHTS`) in a fixed shuffled order."""

    def __init__(self, progressions: Iterable[Progression]) -> None:
        self.by_meter: dict[tuple[int, int], dict[str, list[Progression]]] = defaultdict(lambda: defaultdict(list))
        for prog in progressions:
            self.by_meter[prog.meter][prog.kind].append(prog)
        for kinds in self.by_meter.values():
            for items in kinds.values():
                items.sort(key=lambda p: stable_hash(p.id))
        self.turns: Counter[tuple] = Counter()
        self.credit: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def count(self, meter: tuple[int, int]) -> int:
        return sum(len(items) for (m, factor) in COMPATIBLE.get(meter, ((meter, 1),))
                   for items in self.by_meter.get(m, {}).values())

    def take(self, meter: tuple[int, int]) -> tuple[Progression, str] | None:
        """The next progression for a style in ``meter`` (re-metered to it), and how it was fitted."""
        options: dict[str, list[tuple[Progression, int]]] = defaultdict(list)
        for source_meter, factor in COMPATIBLE.get(meter, ((meter, 1),)):
            for kind, items in self.by_meter.get(source_meter, {}).items():
                options[kind].extend((p, factor) for p in items)
        if not options:
            return None
        credit = self.credit[meter]
        for kind in options:
            credit[kind] += KIND_WEIGHTS.get(kind, 1)
        kind = max(sorted(options), key=lambda k: credit[k])
        credit[kind] -= sum(KIND_WEIGHTS.get(k, 1) for k in options)
        items = options[kind]
        prog, factor = items[self.turns[(meter, kind)] % len(items)]
        self.turns[(meter, kind)] += 1
        if factor == 1:
            return prog, "native"
        return replace(prog, meter=meter, bars=prog.bars // factor), "paired"

    def rebar(self, meter: tuple[int, int], number: int) -> tuple[Progression, str] | None:
        """A 4/4 progression's chords cut into bars of ``meter`` (no melody): for meters no source has."""
        items = sorted((p for kinds in self.by_meter.get((4, 4), {}).values() for p in kinds), key=lambda p: p.id)
        if not items:
            return None
        prog = items[stable_hash(number, "rebar") % len(items)]
        beats = meter[0] * 4.0 / meter[1]
        return replace(prog, meter=meter, bars=int(prog.bars * prog.bar_beats // beats), melody=[]), "rebarred"


def _plan(slot: _Slot, pools: _Pools, number: int) -> SongPlan | str:
    """Turn a slot into a song plan with a progression window, key, tempo, lead and seed."""
    style = slot.style
    record_id = f"{style.name.replace('/', '-')}-{slot.number:03d}"
    fam = family(style.family)
    for attempt in range(8):
        taken = pools.take(style.meter) if pools.count(style.meter) else pools.rebar(style.meter, number + attempt)
        if taken is None:
            return f"no progression in {style.meter[0]}/{style.meter[1]} or 4/4 to re-bar"
        prog, how = taken
        sections = section_layout(slot.choice, prog.bars)
        if sections is None or (attempt < 6 and slot.choice.bridge is not None
                                and not any(s.name == "bridge" for s in sections)):
            continue   # too short for its sections (for a while, hold out for one long enough for the bridge)
        span = progression_span(sections)
        room = prog.bars - span
        start = (stable_hash(record_id, "start") % (room + 1)) // 4 * 4 if room > 0 else 0
        sections = [replace(s, source_bar=None if s.source_bar is None else s.source_bar + start) for s in sections]
        lo, hi = style.tempo
        return SongPlan(id=record_id, style=style, progression=prog, sections=sections,
                        transpose=stable_hash(record_id, "key") % 12 - 5,
                        tempo=lo + stable_hash(record_id, "tempo") % (hi - lo + 1),
                        lead_program=fam.lead[stable_hash(record_id, "lead") % len(fam.lead)],
                        seed=stable_hash(record_id, "seed"), meter_source=how)
    return "no progression long enough for its sections"


# ----------------------------------------------------------------------------------------------- build


def build_grooves(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset(),
                  workers: int | None = None, library: Path | None = None,
                  songs_per_family: int = SONGS_PER_FAMILY) -> BuildSummary:
    """Render the grooves corpus into ``out`` (module docstring).

    ``workers``: processes for MMA and music21 (default: up to 2); ``library``: another MMA style library
    laid out like MMA's (``lib/file.mma``; default the installed one); ``songs_per_family``: songs per family
    before the extra songs that play every groove.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"workers must be a positive integer, got {workers!r}", field="workers")
    if isinstance(songs_per_family, bool) or not isinstance(songs_per_family, int) or songs_per_family < 1:
        raise ParameterError(f"songs_per_family must be a positive integer, got {songs_per_family!r}",
                             field="songs_per_family")
    root = Path(library) if library is not None else library_dir()
    if not root.is_dir():
        raise DatasetError(f"MMA library {root} is not a directory")
    mma_executable()
    pool = _Pool(workers or min(2, os.cpu_count() or 1))
    scratch = Path(tempfile.mkdtemp(prefix="tunesmith-grooves-"))
    try:
        with DatasetWriter(out, kind="grooves", cache={"notes": ("int32", 2)}, opt_out=opt_out) as writer:
            return _build(writer, root, patched_library(root, scratch / "lib"), limit, pool, songs_per_family)
    finally:
        pool.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _build(writer: DatasetWriter, root: Path, patched: Path, limit: int | None, pool: _Pool,
           songs_per_family: int) -> BuildSummary:
    clock = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    files = [s for s in style_files(root) if s.name not in EXCLUDED_FILES]
    for style in files:
        if family_of_file(style.name) is None:
            writer.skip(style.path, "belongs to no style family (tunesmith/data/styles.py)")
    files = [s for s in files if family_of_file(s.name) is not None]
    if limit is not None:
        files = _files_for_limit(files, limit)
    infos: dict[str, StyleInfo] = {}
    probes = pool.map(_probe, [(s, patched) for s in files], desc="probing MMA styles", unit="style")
    for style, info in zip(files, probes, strict=True):
        if isinstance(info, str):
            writer.skip(style.path, info)
        else:
            infos[style.name] = info
    lap("probe_styles")
    slots = _round_robin(_family_slots(infos, songs_per_family))
    if limit is not None:
        slots = slots[:limit]
    progressions, stats = _read_progressions(pool, Counter(slot.style.meter for slot in slots), limit, writer)
    lap("read_progressions")
    pools = _Pools(progressions)
    plans: list[SongPlan] = []
    for number, slot in enumerate(slots):
        plan = _plan(slot, pools, number)
        if isinstance(plan, str):
            writer.skip(f"{slot.style.path} (song {slot.number})", plan)
        elif not writer.is_opted_out(plan.progression.source, plan.progression.id):
            plans.append(plan)
    lap("plan_songs")
    writer.info.update({
        "audio": False, "ticks_per_beat": TICKS_PER_BEAT, "mma_library": str(root), "licence_mma": MMA_LICENCE,
        "families": {f.id: {"name": f.name, "description": f.description} for f in STYLE_FAMILIES},
        "styles": {name: {"family": i.family, "meter": "{}/{}".format(*i.meter), "grooves": len(i.grooves),
                          "excluded_grooves": [list(e) for e in i.excluded]} for name, i in sorted(infos.items())},
        "progressions": stats, "cache": {"notes": "int32 rows: track, start, duration, pitch, velocity (ticks)"},
        "workers": pool.workers, "seconds": timings,
    })
    sha_cache: dict[str, str] = {}
    batches = _batches(plans, BATCH_SONGS)
    for batch, results in zip(batches, pool.map(_render, batches, desc="rendering songs", unit="batch"), strict=True):
        for (plan, _), result in zip(batch, results, strict=True):
            if isinstance(result, str):
                writer.skip(f"{plan.style.path} ({plan.id} over {plan.progression.id})", result)
                continue
            if plan.style.path not in sha_cache:
                sha_cache[plan.style.path] = sha256_file(Path(plan.style.path))
            writer.add(_record(plan, result, sha_cache[plan.style.path]), {"notes": result.notes})
    lap("render_songs")
    return writer.finish(pieces=len({p.progression.group for p in plans}))


def _files_for_limit(files: list[StyleFile], limit: int) -> list[StyleFile]:
    """The style files a build of ``limit`` songs needs: the first files of each family, in turn."""
    by_family: dict[str, list[StyleFile]] = defaultdict(list)
    order = {f.id: i for i, f in enumerate(STYLE_FAMILIES)}
    for style in files:
        by_family[family_of_file(style.name).id].append(style)
    rows = _zip_longest([by_family[f] for f in sorted(by_family, key=order.get)])
    chosen = [style for row in rows for style in row]
    return chosen[:limit]


def _select_sources(meters: Counter, limit: int | None) -> list[PieceSource]:
    """The pieces to read: every chorale, quartet and MMA example (a few of each for a small build), and the
    folk tunes whose ABC meter a needed style meter accepts, twice as many as that meter's songs take (folk
    gets 4 of every 11 songs), taken in turn from the collections."""
    sources = all_sources()
    share = KIND_WEIGHTS["folk"] / sum(KIND_WEIGHTS.values())
    quota = {m: 2 * math.ceil(n * share) + 2 for m, n in meters.items()}
    accepts = {source: style for style in meters for source, _ in COMPATIBLE.get(style, ((style, 1),))}
    by_collection: dict[str, list[PieceSource]] = defaultdict(list)
    for source in sources["folk"]:
        by_collection[source.id.split("-", 1)[0]].append(source)
    folk = []
    for source in interleave(list(by_collection.values())):
        style = accepts.get(source.meter)
        if style is not None and quota[style] > 0:
            quota[style] -= 1
            folk.append(source)
    others = [sources[k] for k in ("chorale", "quartet", "mma")]
    if limit is not None:
        others = [items[: max(2, limit // 2)] for items in others]
    return list(interleave([folk, *others]))


def _read_progressions(pool: _Pool, meters: Counter, limit: int | None,
                       writer: DatasetWriter) -> tuple[list[Progression], dict[str, Any]]:
    """Progressions from the pieces `_select_sources` picks, with counts of what was read and rejected."""
    ordered = _select_sources(meters, limit)
    results = pool.map(_load, ordered, desc="reading progressions", unit="piece")
    progressions: list[Progression] = []
    rejected: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for source, result in zip(ordered, results, strict=True):
        if isinstance(result, str):
            writer.skip(f"{source.source} ({source.id})", result)
            continue
        for prog in result:
            reason = accept(prog)
            if reason:
                rejected[reason.split(" (")[0]] += 1
                continue
            progressions.append(prog)
            kinds[prog.kind] += 1
    stats = {"sources_read": len(ordered), "accepted": len(progressions), "by_kind": dict(kinds),
             "by_meter": dict(Counter("{}/{}".format(*p.meter) for p in progressions)),
             "rejected": dict(rejected), "needed_meters": {"{}/{}".format(*m): n for m, n in meters.items()}}
    return progressions, stats


def _record(plan: SongPlan, song: SongNotes, sha: str) -> Record:
    prog = plan.progression
    fam = family(plan.style.family)
    licence = f"{MMA_LICENCE}; progression and melody: {prog.licence}"
    if prog.kind == "mma":
        licence = MMA_LICENCE
    labels = {
        "family": fam.id, "family_name": fam.name, "style_file": plan.style.name,
        "grooves": sorted({s["groove"] for s in song.sections} | {s["fill"] for s in song.sections if s["fill"]}),
        "tempo": plan.tempo, "key": plan.key, "meter": "{}/{}".format(*plan.style.meter), "bars": plan.bars,
        "bar_beats": plan.style.bar_beats, "sections": song.sections,
        "section_names": [s["section"] for s in song.sections],
        "tracks": song.tracks, "roles": sorted({t["role"] for t in song.tracks}),
        "chords": [[b, s] for b, s in song.chords],
        "progression": {"id": prog.id, "kind": prog.kind, "source": prog.source, "title": prog.title,
                        "harmony": prog.harmony, "meter": plan.meter_source, "transpose": plan.transpose,
                        "key": prog.key},
        "melody": any(t.get("melody") for t in song.tracks), "notes": len(song.notes),
        "group": prog.group, "ticks_per_beat": TICKS_PER_BEAT,
    }
    return Record(id=plan.id, source=plan.style.path, licence=licence, sha256=sha, split=assign_split(prog.group),
                  duration=round(song.end_beats * 60.0 / plan.tempo, 3), labels=labels)


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class SongRecord:
    """One song of the grooves corpus: the score (a part per track), each part's role, and the labels."""

    record: Record
    score: Score
    roles: list[str]

    @property
    def labels(self) -> dict[str, Any]:
        return self.record.labels


def song_score(notes: np.ndarray, record: Record) -> tuple[Score, list[str]]:
    """The `Score` of a grooves record (parts in the record's track order) and the parts' roles."""
    labels = record.labels
    tpb = float(labels.get("ticks_per_beat", TICKS_PER_BEAT))
    parts = [Part(name=t["name"], program=int(t["program"]), is_drum=bool(t["drum"])) for t in labels["tracks"]]
    for track, start, duration, pitch, velocity in np.asarray(notes).tolist():
        parts[track].notes.append(Note(int(pitch), start / tpb, duration / tpb, int(velocity)))
    numerator, denominator = (int(x) for x in labels["meter"].split("/"))
    score = Score(parts=parts, tempo=float(labels["tempo"]), key=labels["key"],
                  time_signature=(numerator, denominator), title=record.id)
    return score, [t["role"] for t in labels["tracks"]]


def band_tracks(song: SongRecord) -> list[tuple[str, list[Note]]]:
    """(band role, notes) of a record's tracks as the song model reads them: the corpus roles, except that the
    lead is the melody (MMA's arpeggio and scale lines, role ``lead`` in the corpus, join the chords)."""
    out = []
    for part, track in zip(song.score.parts, song.labels["tracks"], strict=True):
        role = track["role"]
        if role == "lead" and not track.get("melody"):
            role = "chords"
        out.append((role, part.notes))
    return out


def role_notes(song: SongRecord) -> dict[str, list[Note]]:
    """A record's notes by band role (`band_tracks`, the tracks of one role merged)."""
    out: dict[str, list[Note]] = {}
    for role, notes in band_tracks(song):
        out.setdefault(role, []).extend(notes)
    return out


def iter_songs(dataset_dir: str | Path, split: str | None = None) -> Iterator[SongRecord]:
    """The songs of a built grooves dataset (one split, or all), each as a `SongRecord`."""
    dataset = Dataset(dataset_dir)
    if dataset.kind != "grooves":
        raise DatasetError(f"{dataset_dir} is a {dataset.kind!r} dataset, not 'grooves'")
    records = dataset.records if split is None else dataset.split(split)
    for record in records:
        score, roles = song_score(dataset.array("notes", record), record)
        yield SongRecord(record, score, roles)


__all__ = ["SongRecord", "band_tracks", "build_grooves", "iter_songs", "role_notes", "song_score"]
