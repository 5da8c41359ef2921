"""MMA (Musical MIDI Accompaniment, Debian package ``mma``): its style library, rendering, and its MIDI output.

MMA turns a chord chart in its text format into a type-1 MIDI file with a track per MIDI channel. We use it
three ways:

* :func:`style_files` lists the library's style files and :func:`groove_inventory` asks MMA itself
  (``mma -Djs``) for each file's grooves: name, description, length in bars and active tracks;
* :func:`render` runs MMA on a song text (one subprocess per song: MMA starts in ~0.1 s);
* :func:`read_rendered` reads MMA's MIDI: the ``MidiMark`` markers we put at section starts, the time
  signatures, and each track's notes, split wherever MMA changes a channel's owner track or program.

MMA counts time in "beats" of ``Time`` quarter notes per bar (6/8 styles use 6 or 2 beats to the bar,
some 2/4 styles 4): :func:`meter_of` turns MMA's bar length and time signature into the notated meter and
the factor that maps MMA beats to notated quarter-note beats.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tunesmith.errors import DatasetError, DependencyError

MMA_PACKAGE = "mma"
LIBRARY_DIRS = (Path("/usr/share/mma/lib"), Path("/usr/local/share/mma/lib"))
MMA_TICKS_PER_BEAT = 192  # MMA's fixed MIDI resolution
RENDER_TIMEOUT = 120.0
_COMPOUND = {6, 9, 12}


def mma_executable() -> str:
    """Path of the ``mma`` program; a `DependencyError` naming the package if it is not installed."""
    path = shutil.which("mma")
    if path is None:
        raise DependencyError(f"MMA is not installed: install the Debian package '{MMA_PACKAGE}' (apt-get install mma)")
    return path


def library_dir() -> Path:
    """MMA's style library (``.../mma/lib`` with stdlib, casio, yamaha, ...)."""
    mma_executable()
    for candidate in LIBRARY_DIRS:
        if (candidate / "stdlib").is_dir():
            return candidate
    raise DependencyError(f"MMA's style library was not found in {', '.join(map(str, LIBRARY_DIRS))}: "
                          f"reinstall the Debian package '{MMA_PACKAGE}'")


@dataclass(frozen=True)
class StyleFile:
    """One MMA style file: its library name ("stdlib/bossanova") and path."""

    name: str
    path: Path


def style_files(root: Path | None = None) -> list[StyleFile]:
    """Every ``lib/file.mma`` of the library, sorted by name."""
    root = root or library_dir()
    return [StyleFile(str(p.relative_to(root).with_suffix("")), p) for p in sorted(root.glob("*/*.mma"))]


@dataclass(frozen=True)
class Groove:
    """One groove of a style file as MMA describes it (``mma -Djs``)."""

    name: str
    description: str
    bars: int
    tracks: tuple[str, ...]


def groove_inventory(style: StyleFile) -> list[Groove]:
    """The grooves a style file defines: every ``DefGroove`` of the file, with the description, length and
    tracks MMA's JSON documentation (``mma -Djs``) gives. MMA leaves grooves without a description out of
    that JSON; their length is the ``SeqSize`` in force where the file defines them."""
    proc = _run([mma_executable(), "-Djs", str(style.path)], cwd=style.path.parent)
    text = proc.stdout
    start = text.find("[")
    if proc.returncode != 0 or start < 0:
        raise DatasetError(f"MMA could not document {style.name}: {_mma_error(proc)}")
    try:
        documented = {str(g["groove"]).upper(): Groove(
            str(g["groove"]), " ".join(str(g.get("description", "")).split()), int(g["size"]),
            tuple(str(t["track"]) for t in g.get("tracks", []))) for g in json.loads(text[start:])}
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"MMA's groove documentation of {style.name} is malformed ({exc})") from exc
    out: dict[str, Groove] = {}
    for name, size in _defined_grooves(style.path.read_text(encoding="latin-1")):
        out.setdefault(name.upper(), documented.get(name.upper(), Groove(name, "", size, ())))
    return list(out.values())


_DEFGROOVE = re.compile(r"^\s*defgroove\s+(\S+)", re.IGNORECASE)
_SEQSIZE = re.compile(r"^\s*seqsize\s+(\d+)", re.IGNORECASE)
_GROOVE = re.compile(r"^\s*groove\s+(\S+)\s*$", re.IGNORECASE)


def _defined_grooves(text: str) -> list[tuple[str, int]]:
    """(name, SeqSize in force) of each ``DefGroove`` line, in file order."""
    size, sizes, out = 1, {}, []
    for line in text.splitlines():
        line = line.split("//", 1)[0]
        if match := _SEQSIZE.match(line):
            size = int(match.group(1))
        elif match := _GROOVE.match(line):
            size = sizes.get(match.group(1).upper(), size)
        elif match := _DEFGROOVE.match(line):
            sizes[match.group(1).upper()] = size
            out.append((match.group(1), size))
    return out


def _run(args: list[str], *, cwd: Path, timeout: float = RENDER_TIMEOUT) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(f"MMA took longer than {timeout:.0f} s on {args[-1]}") from exc


def _mma_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines()
             if ln.strip() and "PLUGIN" not in ln]
    errors = [ln for ln in lines if "ERROR" in ln.upper()]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1][:300]


_MIDI_TNAME = re.compile(r"^(\s*)(\S+\s+)?miditname\b", re.IGNORECASE)


def patched_library(root: Path, dest: Path) -> Path:
    """A copy of the style library at ``dest`` without ``MidiTName`` lines, so MIDI track names stay MMA's.

    A few style files rename their MIDI tracks ("Piano1" for a Bass track); without the renaming every track
    is named after its MMA track ("Bass-1", "Chord-Piano"), which says what the track plays. Nothing else
    changes: ``MidiTName`` only names tracks.
    """
    shutil.copytree(root, dest, dirs_exist_ok=True)
    for path in dest.glob("*/*.mma"):
        text = path.read_text(encoding="latin-1")
        if "miditname" in text.lower():
            lines = ["// " + ln if _MIDI_TNAME.match(ln) else ln for ln in text.splitlines()]
            path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return dest


def render(song: str, out: Path) -> Path:
    """Run MMA on ``song`` (MMA text) and write its MIDI file to ``out``; a `DatasetError` on failure."""
    out = Path(out)
    source = out.with_suffix(".mma")
    source.write_text(song, encoding="utf-8")
    proc = _run([mma_executable(), "-w", "-xNOCREDIT", "-f", str(out), str(source)], cwd=out.parent)
    if proc.returncode != 0 or not out.is_file():
        raise DatasetError(f"MMA failed: {_mma_error(proc)}")
    return out


# ----------------------------------------------------------------------------------------------- reading


@dataclass
class RenderedTrack:
    """Notes of one MMA track on one program: (start, duration, pitch, velocity) in MMA ticks."""

    name: str
    channel: int
    program: int
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def is_drum(self) -> bool:
        return self.channel == 9


@dataclass
class Rendered:
    """What MMA wrote: markers and time signatures (tick, ...) and the tracks."""

    markers: list[tuple[int, str]]
    time_signatures: list[tuple[int, int, int]]
    end: int
    tracks: list[RenderedTrack]


def read_rendered(path: Path) -> Rendered:
    """Read an MMA MIDI file; a track is split where its channel changes owner (name) or program.

    All notes on the drum channel (MMA's Drum-* tracks share it) form one track "Drum" per drum-kit program.
    """
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except Exception as exc:  # mido raises many types on bad bytes
        raise DatasetError(f"MMA wrote an unreadable MIDI file {path.name} ({exc})") from exc
    if mid.ticks_per_beat != MMA_TICKS_PER_BEAT:
        raise DatasetError(f"{path.name}: expected MMA's {MMA_TICKS_PER_BEAT} ticks per beat, got {mid.ticks_per_beat}")
    markers: list[tuple[int, str]] = []
    signatures: list[tuple[int, int, int]] = []
    tracks: dict[tuple[str, int, int], RenderedTrack] = {}
    end = 0
    for track in mid.tracks:
        tick, name, programs = 0, "", {}
        open_notes: dict[tuple[int, int], list[tuple[int, int, str, int]]] = {}
        for msg in track:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                program = programs.get(msg.channel, 0)
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity, name, program))
            elif kind in ("note_off", "note_on"):
                starts = open_notes.get((msg.channel, msg.note))
                if starts:
                    start, velocity, owner, program = starts.pop(0)
                    if tick > start:
                        owner = "Drum" if msg.channel == 9 else owner or f"Channel {msg.channel + 1}"
                        key = (owner, msg.channel, program)
                        if key not in tracks:
                            tracks[key] = RenderedTrack(key[0], msg.channel, program)
                        tracks[key].notes.append((start, tick - start, msg.note, velocity))
                        end = max(end, tick)
            elif kind == "program_change":
                programs[msg.channel] = msg.program
            elif kind == "track_name":
                name = msg.name.strip()
            elif kind == "marker":
                markers.append((tick, msg.text))
            elif kind == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
        end = max(end, tick)
    for rendered in tracks.values():
        rendered.notes.sort(key=lambda n: (n[0], n[2]))
    ordered = sorted(tracks.values(), key=lambda t: (not t.is_drum, t.channel, t.name, t.program))
    return Rendered(sorted(markers), sorted(set(signatures)), end, ordered)


def meter_of(bar_ticks: int, signature: tuple[int, int]) -> tuple[tuple[int, int], Fraction]:
    """The notated meter of an MMA bar and the factor from MMA beats to notated quarter-note beats.

    MMA's bar has ``bar_ticks / 192`` beats. A compound signature (6/8, 9/8, 12/8) is trusted whatever
    MMA's beat count (MMA writes 6/8 with 2, 4 or 6 beats to the bar); a simple signature that disagrees
    with the beat count (a style that never set its Timesig) gives way to 6/8 for six beats (MMA's own
    reading of ``Time 6/8``) and to ``beats/4`` otherwise.
    """
    beats = Fraction(bar_ticks, MMA_TICKS_PER_BEAT)
    numerator, denominator = signature
    notated = Fraction(numerator * 4, denominator)
    if notated == beats:
        return (numerator, denominator), Fraction(1)
    if denominator == 8 and numerator in _COMPOUND:
        return (numerator, denominator), notated / beats
    if beats == 6:
        return (6, 8), Fraction(1, 2)
    if beats.denominator == 1:
        return (int(beats), 4), Fraction(1)
    raise DatasetError(f"MMA bar of {beats} beats cannot be notated (time signature {numerator}/{denominator})")
