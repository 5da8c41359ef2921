"""Songs for the grooves corpus: which grooves play which sections over which chords, and MMA's render of it.

A *song plan* takes one MMA style file and one `Progression` and lays out sections (docs/data.md, "Grooves"):

    [intro] verse chorus [bridge chorus] [outro]

* the intro plays an ``...Intro`` groove for its length (at most 8 bars) over the verse's first chords;
* the verse plays a plain groove (the base groove, its numbered, Walk and other variants, or Main A / C),
  ending with a ``...Fill`` groove's bars when the style has fills;
* the chorus plays a ``...Plus`` variant (busier: arpeggios, counter-lines) or Main B / D, else a ``...Sus``
  variant, else another plain groove; the chorus after the bridge repeats the first chorus's bars, chords and
  melody exactly, so the corpus holds choruses that recur;
* the bridge plays a ``...Sus`` variant (sustained pads) or Main C, else another groove;
* the outro plays an ``...End`` / ``...Ending`` groove for its length (at most 4 bars) on the tonic.

`render_song` writes the plan as an MMA song, runs MMA, checks that every section starts where the plan put it,
and returns the tracks (with roles) and the notes on a grid of `TICKS_PER_BEAT` per quarter note, in notated
quarter-note beats (MMA's beats are rescaled for 6/8 styles, see `tunesmith.data.mma.meter_of`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from tunesmith.data.mma import (
    MMA_TICKS_PER_BEAT,
    Rendered,
    StyleFile,
    groove_inventory,
    meter_of,
    read_rendered,
    render,
)
from tunesmith.data.progressions import Progression
from tunesmith.data.styles import family_of_file, tempo_range
from tunesmith.errors import DatasetError
from tunesmith.symbolic.harmony import parse_chord, prefers_flats, transpose_symbol
from tunesmith.symbolic.keys import key_name, parse_key
from tunesmith.symbolic.score import Note

TICKS_PER_BEAT = 1920   # stored note grid: MMA's 192 x 10, exact for 6/8 styles rescaled by 1/2 or 3/2
MAX_INTRO_BARS = 8
MAX_OUTRO_BARS = 4
MAX_FILL_BARS = 2
SECTION_BARS = 8
LEAD_RANGE = (60, 79)   # the melody's mean pitch is moved by octaves into this range
ROLES = ("drums", "bass", "chords", "pad", "lead")
PAD_PROGRAMS = frozenset(range(48, 56)) | frozenset(range(88, 96))
BASS_PROGRAMS = frozenset(range(32, 40)) | {43, 58}


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same on every machine and run."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------- grooves


def groove_kind(name: str) -> str:
    """"intro", "outro", "fill" or "main" from a groove's name (MMA's, Yamaha's and Casio's conventions)."""
    upper = name.upper()
    if "INTRO" in upper:
        return "intro"
    if re.search(r"END(ING)?[A-D]?\d*(SUS)?$", upper) or re.fullmatch(r".*\d[A-D]?E", upper):
        return "outro"
    if "FILL" in upper or "BREAK" in upper or re.fullmatch(r".*\dF[A-D]", upper):
        return "fill"
    return "main"


def main_variant(name: str, prefix: str) -> str:
    """A main groove's place in a song: "plus" (chorus), "sus" (bridge) or "plain" (verse).

    ``prefix`` is what the file's main grooves share; the letter after it (Main A-D of Yamaha and Casio
    styles) counts: A plain, B and D plus, C sus.
    """
    upper = name.upper()
    if "PLUS" in upper:
        return "plus"
    if "SUS" in upper:
        return "sus"
    rest = upper[len(prefix):].replace("MAIN", "")
    if rest in ("B", "D"):
        return "plus"
    if rest == "C":
        return "sus"
    return "plain"


def _common_prefix(names: list[str]) -> str:
    if not names:
        return ""
    first, last = min(names), max(names)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


@dataclass(frozen=True)
class GrooveInfo:
    """A groove with its role in songs and its length in bars."""

    name: str
    kind: str       # intro / outro / fill / main
    variant: str    # plain / plus / sus for mains, else the kind
    bars: int
    description: str


@dataclass(frozen=True)
class StyleInfo:
    """A style file ready for songs: its family, meter, grooves and tempo range."""

    name: str
    path: str                   # the library's file (recorded as the source)
    library: str                # the library MMA renders from (a patched copy, `mma.patched_library`)
    family: str
    meter: tuple[int, int]
    factor: tuple[int, int]     # notated quarter beats per MMA beat, as a fraction
    mma_beats: float            # MMA beats per bar
    tempo: tuple[int, int]
    grooves: tuple[GrooveInfo, ...]
    excluded: tuple[tuple[str, str], ...] = ()   # (groove, reason)

    @property
    def bar_beats(self) -> float:
        return self.meter[0] * 4.0 / self.meter[1]

    def of_kind(self, kind: str) -> list[GrooveInfo]:
        return [g for g in self.grooves if g.kind == kind]


def probe_style(style: StyleFile, workdir: Path, library: Path) -> StyleInfo:
    """Ask MMA for a style file's grooves and play each for two bars (from ``library``) to learn its meter.

    Grooves whose meter differs from the file's (e.g. a 4/4 variant in a 6/8 file) are left out, listed in
    ``excluded``. A file MMA cannot read raises a `DatasetError` with MMA's message.
    """
    owner = family_of_file(style.name)
    if owner is None:
        raise DatasetError(f"style file {style.name} belongs to no style family (tunesmith/data/styles.py)")
    grooves = groove_inventory(StyleFile(style.name, library / f"{style.name}.mma"))
    if not grooves:
        raise DatasetError("defines no grooves")
    lines = [f"SetLibPath {library}"]
    for number, groove in enumerate(grooves):
        lines += [f"Groove {style.name}:{groove.name}", f"MidiMark G{number}", f"{2 * number + 1} C",
                  f"{2 * number + 2} C"]
    lines.append("MidiMark END")
    out = workdir / f"probe-{style.name.replace('/', '-')}.mid"
    rendered = read_rendered(render("\n".join(lines) + "\n", out))
    marks = {label: tick for tick, label in rendered.markers}
    meters: dict[str, tuple[tuple[int, int], Fraction, int]] = {}
    for number, groove in enumerate(grooves):
        start, end = marks.get(f"G{number}"), marks.get(f"G{number + 1}", marks.get("END"))
        if start is None or end is None:
            raise DatasetError(f"MMA dropped the marker of groove {groove.name}")
        signature = _signature_at(rendered, start)
        meter, factor = meter_of((end - start) // 2, signature)
        meters[groove.name] = (meter, factor, (end - start) // 2)
    mains = [meters[g.name] for g in grooves if groove_kind(g.name) == "main"] or list(meters.values())
    common = Counter(mains).most_common(1)[0][0]
    meter, factor, bar_ticks = common
    prefix = _common_prefix([g.name.upper() for g in grooves if groove_kind(g.name) == "main"])
    kept, excluded = [], []
    for groove in grooves:
        if meters[groove.name] != common:
            excluded.append((groove.name, f"its meter {meters[groove.name][0]} differs from the file's {meter}"))
            continue
        kind = groove_kind(groove.name)
        variant = main_variant(groove.name, prefix) if kind == "main" else kind
        kept.append(GrooveInfo(groove.name, kind, variant, max(1, groove.bars), groove.description))
    if not any(g.kind == "main" for g in kept):
        raise DatasetError("has no main groove (only intros, fills or endings)")
    return StyleInfo(style.name, str(style.path), str(library), owner.id, meter, (factor.numerator, factor.denominator),
                     bar_ticks / MMA_TICKS_PER_BEAT, tempo_range(style.name), tuple(kept), tuple(excluded))


def _signature_at(rendered: Rendered, tick: int) -> tuple[int, int]:
    before = [(n, d) for t, n, d in rendered.time_signatures if t <= tick]
    return before[-1] if before else (4, 4)


# ---------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Section:
    """One section of a song plan: its name, grooves and bars, and where its chords come from."""

    name: str                 # intro / verse / chorus / bridge / outro
    groove: str
    bars: int
    source_bar: int | None    # first progression bar it plays (None: the tonic, for outros)
    fill: str | None = None   # a fill groove on the section's last bars
    fill_bars: int = 0
    melody: bool = True


@dataclass
class SongPlan:
    """Everything needed to render one record."""

    id: str
    style: StyleInfo
    progression: Progression
    sections: list[Section]
    transpose: int
    tempo: int
    lead_program: int
    seed: int
    meter_source: str = "native"   # native / paired (two progression bars per style bar) / rebarred

    @property
    def bars(self) -> int:
        return sum(s.bars for s in self.sections)

    @property
    def key(self) -> str:
        tonic, mode = parse_key(self.progression.key)
        return key_name((tonic + self.transpose) % 12, mode)


@dataclass
class GrooveChoice:
    """The grooves of one song: verse, chorus, bridge (or None), intro, outro and fill (or None)."""

    verse: GrooveInfo
    chorus: GrooveInfo
    bridge: GrooveInfo | None
    intro: GrooveInfo | None
    outro: GrooveInfo | None
    fill: GrooveInfo | None

    def names(self) -> set[str]:
        return {g.name for g in (self.verse, self.chorus, self.bridge, self.intro, self.outro, self.fill) if g}


def choose_grooves(style: StyleInfo, count: int) -> list[GrooveChoice]:
    """``count`` groove choices for songs of ``style`` (more if needed so every groove plays at least once).

    Songs alternate between the short form (no bridge) and the long one; each role takes the next groove of
    its list that has not played yet, so the choices cover the file's grooves in as few songs as possible.
    """
    mains = style.of_kind("main")
    plain = [g for g in mains if g.variant == "plain"] or mains
    plus = [g for g in mains if g.variant == "plus"]
    sus = [g for g in mains if g.variant == "sus"]
    chorus_pool = plus or sus or mains
    bridge_pool = sus or plus or mains
    intros, outros, fills = style.of_kind("intro"), style.of_kind("outro"), style.of_kind("fill")
    unused = {g.name for g in style.grooves}
    choices: list[GrooveChoice] = []
    turn = Counter[str]()

    def pick(role: str, pool: list[GrooveInfo], avoid: set[str] = frozenset()) -> GrooveInfo | None:
        if not pool:
            return None
        options = [g for g in pool if g.name not in avoid] or pool
        fresh = [g for g in options if g.name in unused]
        chosen = fresh[0] if fresh else options[turn[role] % len(options)]
        turn[role] += 1
        unused.discard(chosen.name)
        return chosen

    number = 0
    while number < count or unused:
        verse = pick("verse", plain)
        chorus = pick("chorus", chorus_pool, {verse.name})
        long_form = number % 2 == 1 or any(g.name in unused for g in bridge_pool if g.name not in
                                           {verse.name, chorus.name})
        bridge = pick("bridge", bridge_pool, {verse.name, chorus.name}) if long_form else None
        choices.append(GrooveChoice(verse, chorus, bridge, pick("intro", intros), pick("outro", outros),
                                    pick("fill", fills)))
        number += 1
        if number > 4 * len(style.grooves) + count:  # cannot happen with non-empty pools; a guard
            break
    return choices


def section_layout(choice: GrooveChoice, progression_bars: int) -> list[Section] | None:
    """Sections for a progression of ``progression_bars`` style bars, or None if it is too short (< 8 bars).

    Verse and chorus take 8 bars each (4 to 8 when the progression is shorter), the bridge 8 or 4 bars after
    them (verse and chorus shrink to make room for a 4-bar bridge; a progression under 12 bars has none); the
    first progression bar is chosen later (`SongPlan` start), so only lengths are set here.
    """
    half = min(SECTION_BARS, progression_bars // 2)
    if choice.bridge is not None and progression_bars - 2 * half < 4:
        half = min(half, (progression_bars - 4) // 2)
        if half < 4:
            half = min(SECTION_BARS, progression_bars // 2)
    if half < 4:
        return None
    sections: list[Section] = []
    if choice.intro is not None:
        sections.append(Section("intro", choice.intro.name, min(choice.intro.bars, MAX_INTRO_BARS), 0,
                                melody=False))
    fill_bars = min(choice.fill.bars, MAX_FILL_BARS, half // 2) if choice.fill else 0
    sections.append(Section("verse", choice.verse.name, half, 0, choice.fill.name if choice.fill else None,
                            fill_bars))
    sections.append(Section("chorus", choice.chorus.name, half, half))
    rest = progression_bars - 2 * half
    if choice.bridge is not None and rest >= 4:
        bridge_bars = SECTION_BARS if rest >= SECTION_BARS else 4
        sections.append(Section("bridge", choice.bridge.name, bridge_bars, 2 * half,
                                choice.fill.name if choice.fill else None, min(fill_bars, bridge_bars // 2)))
        sections.append(Section("chorus", choice.chorus.name, half, half))
    if choice.outro is not None:
        sections.append(Section("outro", choice.outro.name, min(choice.outro.bars, MAX_OUTRO_BARS), None,
                                melody=False))
    return sections


def progression_span(sections: list[Section]) -> int:
    """Progression bars the sections read (from their ``source_bar`` 0)."""
    return max((s.source_bar or 0) + s.bars for s in sections if s.source_bar is not None and s.name != "intro")


# -------------------------------------------------------------------------------------- chords and notes


@dataclass
class SongNotes:
    """A rendered song: tracks (name, role, program, drum) and notes (track, start, duration, pitch, velocity)."""

    tracks: list[dict]
    notes: np.ndarray
    chords: list[tuple[float, str]]
    sections: list[dict]
    end_beats: float
    warnings: list[str] = field(default_factory=list)


def reduce_rhythm(chords: list[tuple[float, str]], bar: float, beats: int, rhythm: str) -> list[tuple[float, str]]:
    """Chords on the slots a harmonic rhythm allows ("beat", "half", "bar"): per slot the longest-sounding one."""
    if rhythm == "beat":
        slot = bar / beats
    elif rhythm == "half" and beats % 2 == 0:   # 4/4: beats 1 and 3; 6/8 and 2/2 in two: each beat
        slot = bar / 2
    else:
        slot = bar
    if not chords:
        return []
    end = chords[-1][0] + slot
    reduced: list[tuple[float, str]] = []
    position = 0.0
    index = 0
    while position < end - 1e-9:
        weights: Counter[str] = Counter()
        while index + 1 < len(chords) and chords[index + 1][0] <= position + 1e-9:
            index += 1
        j = index
        while j < len(chords) and chords[j][0] < position + slot - 1e-9:
            a = max(chords[j][0], position)
            b = min(chords[j + 1][0] if j + 1 < len(chords) else position + slot, position + slot)
            weights[chords[j][1]] += max(b - a, 0.0)
            j += 1
        symbol = max(weights.items(), key=lambda kv: kv[1])[0] if weights else chords[index][1]
        if not reduced or reduced[-1][1] != symbol:
            reduced.append((round(position, 6), symbol))
        position += slot
    return reduced


def chords_between(chords: list[tuple[float, str]], start: float, end: float) -> list[tuple[float, str]]:
    """The chord changes in ``[start, end)``, shifted to start at 0, with the chord sounding at ``start`` first."""
    out: list[tuple[float, str]] = []
    current = None
    for beat, symbol in chords:
        if beat <= start + 1e-9:
            current = symbol
        elif beat < end - 1e-9:
            if current is not None and not out:
                out.append((0.0, current))
            out.append((round(beat - start, 6), symbol))
    if not out and current is not None:
        out.append((0.0, current))
    if out and out[0][0] > 0 and current is not None:
        out.insert(0, (0.0, current))
    return out


def _tonic_chord(key: str) -> str:
    tonic, mode = parse_key(key)
    names = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B") if prefers_flats(key) else \
        ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return names[tonic] + ("" if mode == "major" else "m")


def song_chords(plan: SongPlan, rhythm: str) -> list[tuple[float, str]]:
    """The song's chord changes (song beats, transposed symbols), section by section."""
    bar = plan.style.bar_beats
    beats = plan.style.meter[0] if plan.style.meter[1] == 4 else max(1, plan.style.meter[0] // 3)
    flats = prefers_flats(plan.key)
    source = reduce_rhythm(plan.progression.chords, bar, beats, rhythm)
    out: list[tuple[float, str]] = []
    position = 0.0
    for section in plan.sections:
        if section.source_bar is None:
            part = [(0.0, _tonic_chord(plan.key))]
        else:
            start = section.source_bar * bar
            part = [(b, transpose_symbol(s, plan.transpose, flats=flats))
                    for b, s in chords_between(source, start, start + section.bars * bar)]
        for beat, symbol in part:
            if not out or out[-1][1] != symbol:
                out.append((round(position + beat, 6), symbol))
        position += section.bars * bar
    return out


def song_melody(plan: SongPlan) -> list[Note]:
    """The progression's melody on the song's beats: each section plays its bars (intro and outro rest),
    transposed with the chords and moved by octaves into `LEAD_RANGE`; a pickup into the verse sounds in the
    intro's last half bar."""
    line = plan.progression.melody
    if not line:
        return []
    bar = plan.style.bar_beats
    out: list[Note] = []
    position = 0.0
    for index, section in enumerate(plan.sections):
        length = section.bars * bar
        if section.melody and section.source_bar is not None:
            start = section.source_bar * bar
            follows = index + 1 < len(plan.sections) and plan.sections[index + 1].source_bar == section.source_bar \
                + section.bars and plan.sections[index + 1].melody
            for note in line:
                if start - 1e-9 <= note.start < start + length - 1e-9:
                    duration = note.duration if follows else min(note.duration, start + length - note.start)
                    out.append(Note(note.pitch, round(position + note.start - start, 6), round(duration, 6),
                                    note.velocity))
            previous = plan.sections[index - 1] if index else None
            if section.name == "verse" and previous is not None and previous.name == "intro":
                for note in line:
                    if start - bar / 2 - 1e-9 <= note.start < start - 1e-9:
                        out.append(Note(note.pitch, round(position + note.start - start, 6),
                                        round(min(note.duration, start - note.start), 6), note.velocity))
        position += length
    if not out:
        return []
    shift = plan.transpose
    mean = sum(n.pitch for n in out) / len(out) + shift
    while mean + 12 <= LEAD_RANGE[1] and mean < LEAD_RANGE[0]:
        shift, mean = shift + 12, mean + 12
    while mean - 12 >= LEAD_RANGE[0] and mean > LEAD_RANGE[1]:
        shift, mean = shift - 12, mean - 12
    return sorted((Note(min(127, max(0, n.pitch + shift)), n.start, n.duration, n.velocity) for n in out),
                  key=lambda n: (n.start, n.pitch))


def song_lines(plan: SongPlan, chords: list[tuple[float, str]], prefix: str = "") -> list[str]:
    """One song in MMA's language: seed, tempo, then per section ``Groove``, a marker ``{prefix}S{n}:{name}``
    and one chord line per bar; a marker ``{prefix}END`` after the last bar."""
    style = plan.style
    factor = Fraction(*style.factor)
    bar = style.bar_beats
    lines = [f"// {plan.id}", f"RndSeed {plan.seed % 100000}",
             f"Tempo {plan.tempo / float(factor):.3f}".rstrip("0").rstrip(".")]
    position = 0.0
    for number, section in enumerate(plan.sections):
        fill_start = section.bars - section.fill_bars
        for index in range(section.bars):
            groove = section.fill if section.fill and index >= fill_start else section.groove
            if index == 0 or (section.fill and index == fill_start):
                lines.append(f"Groove {style.name}:{groove}")
            if index == 0:
                lines.append(f"MidiMark {prefix}S{number}:{section.name}")
            lines.append(_bar_chords(chords, position, bar, factor))
            position += bar
    lines.append(f"MidiMark {prefix}END")
    return lines


def mma_text(plans: list[SongPlan], chords: list[list[tuple[float, str]]]) -> str:
    """Songs of one style file as one MMA file: song ``k`` is marked ``K{k}S{n}``, and a silent bar (``z!``)
    separates songs, so notes that MMA's timing jitter pulls early stay with their song."""
    style = plans[0].style
    if any(p.style.name != style.name for p in plans):
        raise DatasetError("an MMA batch must hold songs of one style file")
    lines = [f"// tunesmith grooves corpus: {style.name}", f"SetLibPath {style.library}"]
    for number, (plan, song) in enumerate(zip(plans, chords, strict=True)):
        if number:
            lines.append("z!")
        lines += song_lines(plan, song, prefix=f"K{number}")
    return "\n".join(lines) + "\n"


def _bar_chords(chords: list[tuple[float, str]], start: float, bar: float, factor: Fraction) -> str:
    tokens = []
    for beat, symbol in chords_between(chords, start, start + bar):
        position = 1 + Fraction(beat).limit_denominator(960) / factor
        tokens.append(symbol if beat == 0 else f"{symbol}@{float(position):g}")
    return " ".join(tokens)


def track_role(name: str, program: int, is_drum: bool, median_pitch: float) -> str:
    """The role of an MMA track: drums, bass, chords, pad or lead (docs/data.md, "Grooves").

    By MMA track type: Drum -> drums; Bass and Walk -> bass when a bass plays it (GM 33-40, contrabass 44,
    tuba 59) or its median note is below E3, else chords (Casio's conversions put guitar and piano riffs on
    Bass tracks); Chord -> pad when sustained (a ``Sus`` track or a string, choir or synth-pad program, GM
    49-56 and 89-96) else chords; Plectrum -> chords; Arpeggio, Scale, Aria, Solo and Melody -> lead.
    Anything else -> chords.
    """
    if is_drum:
        return "drums"
    kind = name.split("-", 1)[0].upper()
    if kind in ("BASS", "WALK"):
        return "bass" if program in BASS_PROGRAMS or median_pitch < 52 else "chords"
    if kind == "CHORD":
        return "pad" if "SUS" in name.upper() or program in PAD_PROGRAMS else "chords"
    if kind in ("ARPEGGIO", "SCALE", "ARIA", "SOLO", "MELODY"):
        return "lead"
    return "chords"


def render_song(plan: SongPlan, workdir: Path, rhythm: str) -> SongNotes:
    """Render one plan with MMA (`render_songs`); a `DatasetError` if it fails."""
    (result,) = render_songs([plan], workdir, [rhythm])
    if isinstance(result, str):
        raise DatasetError(result)
    return result


def render_songs(plans: list[SongPlan], workdir: Path, rhythms: list[str]) -> list[SongNotes | str]:
    """Render songs of one style file in one MMA run (MMA's start-up is most of a short song's time) and
    collect each song's notes; a song that fails gives its reason instead. If the batch fails, every song is
    rendered alone, so one bad song costs only itself."""
    chords = [song_chords(plan, rhythm) for plan, rhythm in zip(plans, rhythms, strict=True)]
    try:
        rendered = read_rendered(render(mma_text(plans, chords), workdir / f"{plans[0].id}.mid"))
    except DatasetError as exc:
        if len(plans) == 1:
            return [str(exc)]
        return [render_songs([p], workdir, [r])[0] for p, r in zip(plans, rhythms, strict=True)]
    marks = {label.split(":", 1)[0]: tick for tick, label in rendered.markers}
    out: list[SongNotes | str] = []
    for number, (plan, song) in enumerate(zip(plans, chords, strict=True)):
        try:
            out.append(_collect(plan, song, rendered, marks, f"K{number}"))
        except DatasetError as exc:
            out.append(str(exc))
    return out


def _collect(plan: SongPlan, chords: list[tuple[float, str]], rendered: Rendered, marks: dict[str, int],
             prefix: str) -> SongNotes:
    """One song's notes from a batch render: the notes that start between its first marker (less a quarter
    beat for timing jitter) and its end marker, checked against the plan's section starts."""
    factor = Fraction(*plan.style.factor)
    scale = Fraction(TICKS_PER_BEAT, MMA_TICKS_PER_BEAT) * factor
    bar_ticks = round(plan.style.mma_beats * MMA_TICKS_PER_BEAT)
    origin = marks.get(f"{prefix}S0")
    if origin is None:
        raise DatasetError("MMA wrote no marker for the song's first section")
    sections = []
    expected = origin
    for number, section in enumerate(plan.sections):
        tick = marks.get(f"{prefix}S{number}")
        if tick != expected:
            raise DatasetError(f"MMA put section {number} ({section.name}) at tick {tick}, expected {expected}")
        sections.append({"section": section.name, "start_bar": sum(s.bars for s in plan.sections[:number]),
                         "bars": section.bars, "groove": section.groove, "fill": section.fill,
                         "fill_bars": section.fill_bars})
        expected += section.bars * bar_ticks
    if marks.get(f"{prefix}END") != expected:
        raise DatasetError(f"MMA ended the song at tick {marks.get(prefix + 'END')}, expected {expected}")
    early = MMA_TICKS_PER_BEAT // 4
    tracks: list[dict] = []
    rows: list[tuple[int, int, int, int, int]] = []
    for track in rendered.tracks:
        notes = [n for n in track.notes if origin - early <= n[0] < expected]
        if not notes:
            continue
        index = len(tracks)
        median = float(np.median([n[2] for n in notes]))
        tracks.append({"name": track.name, "role": track_role(track.name, track.program, track.is_drum, median),
                       "program": track.program, "drum": track.is_drum, "notes": len(notes)})
        for start, duration, pitch, velocity in notes:
            rows.append((index, round(max(0, start - origin) * scale), max(1, round(duration * scale)), pitch,
                         velocity))
    if not tracks:
        raise DatasetError("MMA rendered no notes")
    melody = song_melody(plan)
    if melody:
        index = len(tracks)
        tracks.append({"name": "Melody", "role": "lead", "program": plan.lead_program, "drum": False,
                       "notes": len(melody), "melody": True})
        for note in melody:
            rows.append((index, round(note.start * TICKS_PER_BEAT), max(1, round(note.duration * TICKS_PER_BEAT)),
                         note.pitch, note.velocity))
    notes = np.array(sorted(rows, key=lambda r: (r[1], r[0], r[3])), dtype=np.int32).reshape(-1, 5)
    return SongNotes(tracks, notes, chords, sections, plan.bars * plan.style.bar_beats)


def check_chord_symbols(chords: list[tuple[float, str]]) -> None:
    """Every chord symbol of a song must parse (MMA would stop on it)."""
    for _, symbol in chords:
        parse_chord(symbol)
