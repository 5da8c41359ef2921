"""Chord progressions (and their melodies) taken from real music, for the grooves corpus.

Four sources, each a `Progression`: a constant-meter run of full bars with chord changes (beats from its
first bar line, MMA chord symbols) and, where the piece has one, its melody on the same beats:

* ``mma``: MMA's own example songs (Debian package ``mma``, /usr/share/doc/mma/examples), their chord charts
  as MMA expands them (``mma -r``: repeats unfolded); no melody. GPL-2+.
* ``chorale``: Bach's chorales in music21's corpus; chords fitted beat by beat to the four voices
  (`tunesmith.symbolic.harmony`, Roman numerals by music21); melody = the soprano.
* ``quartet``: string quartets by Haydn, Mozart and Beethoven in music21's corpus, one progression per
  constant-meter span of a movement; chords fitted per half bar (4/4, 2/2, 6/8) or bar to all four parts;
  melody = the first violin (its top line); key estimated on the span.
* ``folk``: tunes of Ryan's Mammoth Collection, O'Neill's Music of Ireland, Aird's Airs, the Northumbrian
  and American fife collections and the Nottingham sample in music21's corpus; their ABC chord symbols where
  the tune has them, else chords fitted bar by bar (half bar in 4/4) to the melody with the diatonic
  vocabulary; melody = the tune.

Bars come from the notation's measures: a partial measure (a pickup, or the first-time bar before a repeat
sign) is joined with the partial measure after it when the two make one bar, and dropped otherwise, so bar
lines stay on multiples of the bar length. Notes before the first full bar (a pickup) keep negative times.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import music21
import numpy as np

from tunesmith.data.corpora.chorales import LICENCE as CHORALE_LICENCE
from tunesmith.data.corpora.chorales import chorale_paths, select_satb
from tunesmith.data.corpora.folk import RYAN_LICENCE
from tunesmith.data.corpora.symbolic_corpus import contour_group
from tunesmith.data.mma import mma_executable, read_rendered
from tunesmith.errors import DatasetError, ParameterError
from tunesmith.symbolic.harmony import CHORALE, MELODY, QUARTET, Chord, FitSettings, fit_chords, parse_chord
from tunesmith.symbolic.io import pickup_shift, score_from_music21, split_abc
from tunesmith.symbolic.keys import estimate_key, key_name, parse_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.transform import make_monophonic

CORPUS_ROOT = Path(music21.__file__).parent / "corpus"
MMA_EXAMPLES = Path("/usr/share/doc/mma/examples")
MIN_BARS = 8
MIN_MELODY_NOTES = 8

MMA_EXAMPLE_LICENCE = "GPL-2+ (MMA example songs, Bob van der Poel; Debian package mma)"
QUARTET_LICENCE = ("public domain (string quartets by Haydn, Mozart and Beethoven; encodings distributed with "
                   "the music21 corpus)")
FOLK_COLLECTIONS: dict[str, tuple[str, str]] = {  # folder or file -> (id prefix, licence)
    "ryansMammoth": ("ryan", RYAN_LICENCE),
    "oneills1850": ("oneill", "public domain (O'Neill's Music of Ireland, 1850 tunes; ABC transcribed by "
                              "N. Paap, distributed with music21)"),
    "airdsAirs": ("aird", "public domain (Aird's Selection of Scotch, English, Irish and Foreign Airs, "
                          "1778-1803; ABC by J. Campin, distributed with music21)"),
    "miscFolk": ("miscfolk", "public domain (Northumbrian Minstrelsy 1882 and colonial American fife tunes; "
                             "ABC by J. Campin, distributed with music21)"),
    "nottingham-dataset": ("nottingham", "licence not stated (Nottingham Music Database, E. Foxley; ABC "
                                         "distributed with music21)"),
}
QUARTETS = ("haydn", "mozart", "beethoven")
NOT_QUARTETS = ("mozart/k545",)  # a piano sonata


@dataclass
class Progression:
    """A run of full bars in one meter: chord changes (beat, MMA symbol) from beat 0 and an optional melody."""

    id: str
    group: str
    kind: str
    source: str
    licence: str
    title: str
    key: str
    meter: tuple[int, int]
    bars: int
    chords: list[tuple[float, str]]
    melody: list[Note] = field(default_factory=list)
    harmony: str = "fit"

    @property
    def bar_beats(self) -> float:
        return self.meter[0] * 4.0 / self.meter[1]


@dataclass(frozen=True)
class PieceSource:
    """One file (or ABC tune) to read progressions from, lazily; picklable, so a process pool can read it."""

    id: str
    kind: str
    source: str
    licence: str
    text: str = ""                          # an ABC tune's text
    meter: tuple[int, int] | None = None    # an ABC tune's meter (its M: header), known before reading it

    def load(self) -> list[Progression]:
        """The progressions of this piece (a `DatasetError` or a music21 exception if it cannot be read)."""
        return _LOADERS[self.kind](self)


# -------------------------------------------------------------------------------------------------- bars


@dataclass(frozen=True)
class _Bar:
    start: float   # in Score beats
    length: float


def _measure_bars(m21_part, shift: float) -> list[tuple[tuple[int, int], list[_Bar]]]:
    """Runs of full bars per meter, from the measures of ``m21_part`` (offsets shifted like the Score)."""
    from music21 import stream

    runs: list[tuple[tuple[int, int], list[_Bar]]] = []
    meter: tuple[int, int] | None = None
    pending: _Bar | None = None
    for measure in m21_part.getElementsByClass(stream.Measure):
        ts = measure.timeSignature
        if ts is not None and (ts.numerator, ts.denominator) != meter:
            meter = (int(ts.numerator), int(ts.denominator))
            runs.append((meter, []))
            pending = None
        if meter is None:
            meter = (4, 4)
            runs.append((meter, []))
        bar = meter[0] * 4.0 / meter[1]
        start, length = float(measure.offset) + shift, float(measure.duration.quarterLength)
        if abs(length - bar) < 1e-6:
            runs[-1][1].append(_Bar(start, bar))
            pending = None
        elif pending is not None and abs(pending.start + pending.length - start) < 1e-6 \
                and abs(pending.length + length - bar) < 1e-6:
            runs[-1][1].append(_Bar(pending.start, bar))
            pending = None
        elif length < bar:
            pending = _Bar(start, length)
    return [(m, bars) for m, bars in runs if bars]


def _rebase(notes: list[Note], bars: list[_Bar], *, pickup: bool) -> list[Note]:
    """Notes mapped bar by bar onto ``k * bar`` (notes crossing into a dropped measure are cut at the bar end).

    With ``pickup``, notes in the measure before the first bar keep their (negative) place before beat 0.
    """
    if not bars:
        return []
    length = bars[0].length
    starts = np.array([b.start for b in bars])
    out = []
    for note in notes:
        index = int(np.searchsorted(starts, note.start + 1e-9, side="right")) - 1
        if index < 0:
            if pickup and note.start >= bars[0].start - length - 1e-9:
                out.append(Note(note.pitch, note.start - bars[0].start, min(note.duration, bars[0].start - note.start),
                                note.velocity))
            continue
        offset = note.start - bars[index].start
        if offset >= length - 1e-9:
            continue  # in a dropped partial measure
        contiguous = index + 1 < len(bars) and abs(bars[index + 1].start - bars[index].start - length) < 1e-6
        duration = note.duration if contiguous else min(note.duration, length - offset)
        out.append(Note(note.pitch, round(index * length + offset, 6), round(duration, 6), note.velocity))
    return sorted(out, key=lambda n: (n.start, n.pitch))


def _windows(meter: tuple[int, int], bars: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Analysis windows (starts, ends) in progression beats: a beat for chorales, else a bar or half bar."""
    bar = meter[0] * 4.0 / meter[1]
    if kind == "chorale":
        step = 1.0 if meter[1] == 4 else bar / meter[0] * (3 if meter[0] % 3 == 0 and meter[1] == 8 else 1)
    elif meter in ((4, 4), (2, 2), (12, 8), (4, 2)) or (kind == "quartet" and meter == (6, 8)):
        step = bar / 2
    else:
        step = bar
    starts = np.arange(0.0, bars * bar - 1e-9, step)
    return starts, starts + step


def _progression_chords(chords: list[Chord], starts: np.ndarray, key: str) -> list[tuple[float, str]]:
    from tunesmith.symbolic.harmony import prefers_flats

    flats = prefers_flats(key)
    out: list[tuple[float, str]] = []
    for start, chord in zip(starts, chords, strict=True):
        symbol = chord.symbol(flats=flats)
        if not out or out[-1][1] != symbol:
            out.append((round(float(start), 6), symbol))
    return out


def _key_of(score: Score, notes: list[Note]) -> str:
    if score.key:
        return score.key
    return key_name(*estimate_key([(n.pitch, n.duration) for n in notes]))


# ---------------------------------------------------------------------------------------- notation pieces


def progressions_from_stream(m21, *, id: str, group: str | None, kind: str, source: str, licence: str,
                             settings: FitSettings, melody_part: int = 0, harmony_parts: str = "all",
                             local_key: bool = False) -> list[Progression]:
    """One `Progression` per constant-meter run of at least `MIN_BARS` full bars of a music21 score."""
    from music21 import harmony as m21harmony
    from music21 import stream

    score = score_from_music21(m21, source=source)
    parts = list(m21.parts) if isinstance(m21, stream.Score) else [m21]
    shift = pickup_shift(parts[0])
    runs = _measure_bars(parts[0], shift)
    melody = make_monophonic(score.parts[min(melody_part, len(score.parts) - 1)])
    symbols = []
    for element in parts[0].recurse().getElementsByClass(m21harmony.ChordSymbol):
        try:
            symbols.append((float(element.getOffsetInHierarchy(parts[0])) + shift, parse_chord(element.figure)))
        except (ParameterError, AttributeError, ValueError):
            continue
    out = []
    for number, (meter, bars) in enumerate(runs):
        if len(bars) < MIN_BARS:
            continue
        suffix = f"-span{number + 1}" if len(runs) > 1 else ""
        all_notes = [n for p in (score.parts if harmony_parts == "all" else [melody]) for n in p.notes]
        harmony_notes = _rebase(sorted(all_notes, key=lambda n: n.start), bars, pickup=False)
        line = _rebase(melody.notes, bars, pickup=number == 0)
        key = key_name(*estimate_key([(n.pitch, n.duration) for n in harmony_notes])) if local_key \
            else _key_of(score, harmony_notes)
        starts, ends = _windows(meter, len(bars), kind)
        chart = _chart(symbols, bars, key)
        if chart is not None:
            chords, how = chart, "chart"
        else:
            chords = _progression_chords(fit_chords(harmony_notes, starts, ends, key, settings), starts, key)
            how = "fit-melody" if harmony_parts == "melody" else "fit-parts"
        out.append(Progression(id=id + suffix, group=group or contour_group(Score(parts=[Part("m", line)])),
                               kind=kind, source=source, licence=licence, title=score.title, key=key, meter=meter,
                               bars=len(bars), chords=chords, melody=line, harmony=how))
    return out


def _chart(symbols: list[tuple[float, Chord]], bars: list[_Bar], key: str) -> list[tuple[float, str]] | None:
    """The notation's own chord symbols on the progression's beats, if they cover at least half the bars."""
    if not symbols:
        return None
    from tunesmith.symbolic.harmony import prefers_flats

    flats = prefers_flats(key)
    starts = np.array([b.start for b in bars])
    length = bars[0].length
    placed, covered = [], set()
    for offset, chord in symbols:
        index = int(np.searchsorted(starts, offset + 1e-9, side="right")) - 1
        if index < 0 or offset - starts[index] >= length - 1e-9:
            continue
        placed.append((round(index * length + offset - starts[index], 6), chord.symbol(flats=flats)))
        covered.add(index)
    if len(covered) < len(bars) / 2 or not placed:
        return None
    placed.sort()
    if placed[0][0] > 0:
        placed.insert(0, (0.0, placed[0][1]))
    return [c for i, c in enumerate(placed) if i == 0 or c[1] != placed[i - 1][1]]


def chorale_sources() -> list[PieceSource]:
    """Bach's chorales (harmony fitted per beat to SATB, soprano melody)."""
    return [PieceSource(f"bach-{p.name.rsplit('.', 1)[0]}", "chorale", str(p), CHORALE_LICENCE)
            for p in chorale_paths()]


def _load_chorale(source: PieceSource) -> list[Progression]:
    from music21 import corpus, stream

    parsed = corpus.parse(source.source)
    keep = {p.name for p in select_satb(score_from_music21(parsed)).parts}
    if isinstance(parsed, stream.Score) and len(parsed.parts) > 4:
        for part in list(parsed.parts):
            if str(part.partName or "") not in keep:
                parsed.remove(part)
    return progressions_from_stream(parsed, id=source.id, group=None, kind="chorale", source=source.source,
                                    licence=source.licence, settings=CHORALE)


def quartet_paths() -> list[Path]:
    paths = []
    for composer in QUARTETS:
        for path in sorted((CORPUS_ROOT / composer).rglob("*.mxl")):
            if not any(str(path).endswith(n) or n in str(path) for n in NOT_QUARTETS):
                paths.append(path)
    return paths


def quartet_sources() -> list[PieceSource]:
    """String quartet movements (harmony per half bar or bar, first-violin melody, key per span)."""
    return [PieceSource(str(p.relative_to(CORPUS_ROOT).with_suffix("")).replace("/", "-"), "quartet", str(p),
                        QUARTET_LICENCE) for p in quartet_paths()]


def _load_quartet(source: PieceSource) -> list[Progression]:
    from music21 import converter

    path = Path(source.source)
    relative = path.relative_to(CORPUS_ROOT).with_suffix("")
    work = relative.parent if relative.name.startswith("movement") else relative
    parsed = converter.parse(str(path))
    if len(getattr(parsed, "parts", [])) != 4:
        raise DatasetError(f"not a four-part quartet score ({len(getattr(parsed, 'parts', []))} parts)")
    return progressions_from_stream(parsed, id=source.id, group=f"quartet:{work}", kind="quartet",
                                    source=source.source, licence=source.licence, settings=QUARTET, local_key=True)


def folk_files() -> list[tuple[Path, str, str]]:
    """(ABC file, id prefix, licence) of every folk collection used."""
    out = []
    for folder, (prefix, licence) in FOLK_COLLECTIONS.items():
        out.extend((p, prefix, licence) for p in sorted((CORPUS_ROOT / folder).glob("*.abc")))
    return out


def folk_sources() -> list[PieceSource]:
    """Every tune of the folk collections, one source per ``X:`` tune."""
    out = []
    for path, prefix, licence in folk_files():
        for number, tune in split_abc(path.read_text(encoding="latin-1")):
            out.append(PieceSource(f"{prefix}-{path.stem}-{number}", "folk", f"{path}#X:{number}", licence, tune,
                                   abc_meter(tune)))
    return out


_ABC_METER = re.compile(r"^M:\s*(\S+)", re.MULTILINE)


def abc_meter(tune: str) -> tuple[int, int] | None:
    """The first ``M:`` of an ABC tune as (numerator, denominator); "C" is 4/4 and "C|" 2/2."""
    match = _ABC_METER.search(tune)
    if match is None:
        return None
    text = match.group(1)
    if text in ("C", "C|"):
        return (4, 4) if text == "C" else (2, 2)
    numbers = re.fullmatch(r"(\d+)/(\d+)", text)
    return (int(numbers.group(1)), int(numbers.group(2))) if numbers else None


def _load_folk(source: PieceSource) -> list[Progression]:
    from music21 import converter

    try:
        parsed = converter.parse(source.text, format="abc")
    except Exception as exc:  # music21 raises many types on malformed ABC
        raise DatasetError(f"could not be parsed as ABC ({type(exc).__name__}: {exc})") from exc
    if isinstance(parsed, music21.stream.Opus):
        if not parsed.scores:
            raise DatasetError("no tune in the ABC text")
        parsed = parsed.scores[0]
    return progressions_from_stream(parsed, id=source.id, group=None, kind="folk", source=source.source,
                                    licence=source.licence, settings=MELODY, harmony_parts="melody")


# ------------------------------------------------------------------------------------------ MMA examples


_BAR_LINE = re.compile(r"^\s*(\d+):\s*(.*)$")


def mma_example_paths() -> list[Path]:
    return sorted(MMA_EXAMPLES.glob("*/*.mma")) if MMA_EXAMPLES.is_dir() else []


def mma_example_sources() -> list[PieceSource]:
    """MMA's example songs: their chord charts as MMA expands them (no melody)."""
    return [PieceSource(f"mma-{p.parent.name}-{p.stem}", "mma", str(p), MMA_EXAMPLE_LICENCE)
            for p in mma_example_paths()]


def load_mma_example(path: Path) -> Progression:
    """The chord chart of one MMA song, bar by bar as MMA plays it (``mma -r``), in the song's meter. MMA's random
    generator is seeded first (an init file holding ``RndSeed 1``): an example that draws its chords at random
    (rndset/rndchords) then gives the same chart every build."""
    with tempfile.TemporaryDirectory() as tmp:
        out, seeded = Path(tmp) / "song.mid", Path(tmp) / "mmarc"
        seeded.write_text("RndSeed 1\n")
        proc = subprocess.run([mma_executable(), "-i", str(seeded), "-r", "-w", "-f", str(out), str(path)],
                              cwd=path.parent, capture_output=True, text=True, timeout=120, errors="replace")
        if proc.returncode != 0 or not out.is_file():
            raise DatasetError("MMA could not play it")
        rendered = read_rendered(out)
    signatures = {(n, d) for _, n, d in rendered.time_signatures} or {(4, 4)}
    if len(signatures) != 1:
        raise DatasetError(f"changes meter ({sorted(signatures)})")
    meter = signatures.pop()
    beats_per_bar = meter[0] * 4 // meter[1] if meter[1] <= 4 else meter[0]
    bar = meter[0] * 4.0 / meter[1]
    chords: list[tuple[float, str]] = []
    bars = 0
    for line in proc.stdout.splitlines():
        match = _BAR_LINE.match(line)
        if match is None:
            continue
        tokens = re.sub(r"\[.*?\]|\{.*?\}", " ", match.group(2)).split()
        beat = 0.0
        for token in tokens:
            name, _, at = token.partition("@")
            if at:
                beat = (float(at) - 1.0) * bar / beats_per_bar
            if name not in ("/", "") and not name.lower().startswith("z"):
                parse_chord(name)  # a Roman numeral or other non-symbol raises: the example is skipped
                symbol = name.replace("&", "b")
                if not chords or chords[-1][1] != symbol:
                    chords.append((round(bars * bar + beat, 6), symbol))
            beat += bar / beats_per_bar
        bars += 1
    if not chords:
        raise DatasetError("no chords")
    if chords[0][0] > 0:  # leading bars of silence (count-ins) are dropped
        lead = int(chords[0][0] // bar) * bar
        chords = [(b - lead, s) for b, s in chords]
        bars -= int(lead // bar)
    pcs = [parse_chord(s) for _, s in chords]
    tonic, mode = estimate_key([(60 + pc, 1.0) for c in pcs for pc in c.pitch_classes])
    return Progression(id=f"mma-{path.parent.name}-{path.stem}", group=f"mma:{path.stem.rstrip('0123456789-')}",
                       kind="mma", source=str(path), licence=MMA_EXAMPLE_LICENCE, title=path.stem,
                       key=key_name(tonic, mode), meter=meter, bars=bars, chords=chords, harmony="chart")


_LOADERS: dict[str, Callable[[PieceSource], list[Progression]]] = {
    "mma": lambda source: [load_mma_example(Path(source.source))],
    "chorale": _load_chorale,
    "quartet": _load_quartet,
    "folk": _load_folk,
}


def all_sources() -> dict[str, list[PieceSource]]:
    """Every piece source by kind (MMA examples, chorales, quartets, folk)."""
    return {"mma": mma_example_sources(), "chorale": chorale_sources(), "quartet": quartet_sources(),
            "folk": folk_sources()}


def interleave(groups: list[list[PieceSource]]) -> Iterator[PieceSource]:
    """Sources taken in turn from each list, so a prefix of the stream holds every kind."""
    iters = [iter(g) for g in groups]
    while iters:
        for it in list(iters):
            item = next(it, None)
            if item is None:
                iters.remove(it)
            else:
                yield item


def accept(progression: Progression) -> str | None:
    """Why a progression cannot be used (too short, one chord, too few melody notes), or None."""
    if progression.bars < MIN_BARS:
        return f"too short ({progression.bars} bars, need {MIN_BARS})"
    if len({s for _, s in progression.chords}) < 2:
        return "a single chord"
    if progression.kind != "mma" and len(progression.melody) < MIN_MELODY_NOTES:
        return f"melody too short ({len(progression.melody)} notes)"
    parse_key(progression.key)
    return None
