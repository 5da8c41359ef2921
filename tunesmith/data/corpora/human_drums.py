"""The `human-drums` corpus: drum patterns people wrote, from Hydrogen's and LMMS's demo projects.

A held-out evaluation set (every record is in the ``test`` split), never training data: it checks that
generated drum tracks look like a person's and not only like MMA's templates.

* Hydrogen (Debian package ``hydrogen-data``): every pattern of the demo songs (``.h2song`` XML). A note's
  instrument id is looked up in the song's instrument list and then, by name, in the drum kit's
  ``drumkit.xml``, whose ``midiOutNote`` is the General MIDI drum note (the song's own ``midiOutNote`` is
  the fallback; a few kit choices outside GM's percussion map are corrected, see `HYDROGEN_NOTE_FIXES`).
  Positions are 48 ticks per quarter note; velocity 0..1 is scaled to 1..127.
* LMMS (Debian package ``lmms-common``): the demo projects (``.mmpz`` = 4-byte length + zlib-compressed XML,
  or plain ``.mmp``). Drum tracks are instrument tracks that play a drum sample (AudioFileProcessor with a
  sample under ``drums/`` or ``drumsynth/`` whose name says which drum, `drum_note_for_name`), an SF2
  drum bank (bank 128: the notes are GM drum keys) or whose track name says which drum. Beat+Bassline
  patterns become one record per pattern (all its drum tracks together); drum clips placed in the song
  become records by clip position (4-bar pieces of longer clips). Positions are 48 ticks per quarter note;
  note volume 0..200 % maps to velocity (100 % -> 100).

Identical patterns of one project are kept once. The licence of every record comes from the package's
Debian copyright file (DEP-5 ``Files:`` stanzas, the last match wins), per project for LMMS.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.data.arrange import TICKS_PER_BEAT
from tunesmith.data.dataset import BuildSummary, Dataset, DatasetWriter
from tunesmith.data.manifest import Record, sha256_file
from tunesmith.errors import DatasetError, DependencyError
from tunesmith.progress import progress

HYDROGEN_DATA = Path("/usr/share/hydrogen/data")
HYDROGEN_COPYRIGHT = Path("/usr/share/doc/hydrogen-data/copyright")
LMMS_PROJECTS = Path("/usr/share/lmms/projects")
LMMS_COPYRIGHT = Path("/usr/share/doc/lmms-common/copyright")
SOURCE_TICKS_PER_BEAT = 48          # Hydrogen and LMMS both count 48 ticks per quarter note
DRUM_HIT_BEATS = 0.25               # the stored length of a one-shot drum hit
SEGMENT_BARS = 4
HYDROGEN_NOTE_FIXES = {"hat semi-open": 46}  # GMRockKit sends it as 82 (GM2 "shaker"): it is a hi-hat

# Drum words in sample and track names, most specific first, and their GM drum notes.
_DRUM_WORDS: tuple[tuple[str, int], ...] = (
    (r"snare_?rim|rimshot|rim\b|rim0|side_?stick|sidestick|stick", 37),
    (r"hat_?o|open_?h|opened|o-hihat|openhat|open", 46),
    (r"pedal", 44),
    (r"hat|hh\b|hh_|_hh|hihat", 42),
    (r"kick|bassdrum|bass_drum|\bbd\b|bd_|_bd|kik|boom", 36),
    (r"snare|snr|\bsd\b", 38),
    (r"clap", 39),
    (r"crash|cymbal", 49),
    (r"splash", 55),
    (r"china", 52),
    (r"ride", 51),
    (r"tom_?l|tom low|low_?tom|floor", 45),
    (r"tom_?m|tom mid|mid_?tom", 47),
    (r"tom_?h|tom hi|hi_?tom|high_?tom", 50),
    (r"tom", 47),
    (r"cowbell|cow_bell", 56),
    (r"tamb", 54),
    (r"shak|maraca", 70),
    (r"conga|cga", 63),
    (r"bongo", 60),
    (r"clave", 75),
    (r"wood|block|knock", 76),
    (r"cabasa", 69),
    (r"triangle", 81),
    (r"guiro", 73),
    (r"timbal", 65),
    (r"agogo", 67),
)
_NOT_DRUMS = ("drumsynth/instrument", "drumsynth/effects", "drumsynth/misc_fx")


def drum_note_for_name(name: str) -> int | None:
    """The GM drum note a sample or track name says ("hihat_closed02.ogg" -> 42), or None."""
    text = Path(name).stem.lower().replace("-", "_") if "/" in name or "." in name else name.lower()
    for pattern, note in _DRUM_WORDS:
        if re.search(pattern, text):
            return note
    return None


def require_packages() -> None:
    """Both packages must be installed; a `DependencyError` names the missing one(s)."""
    missing = [pkg for pkg, path in (("hydrogen-data", HYDROGEN_DATA / "demo_songs"),
                                     ("lmms-common", LMMS_PROJECTS)) if not path.is_dir()]
    if missing:
        raise DependencyError("the human-drums corpus is read from Debian packages that are not installed: "
                              f"{', '.join(missing)} (apt-get install {' '.join(missing)})")


# -------------------------------------------------------------------------------------------- licences


@dataclass(frozen=True)
class CopyrightStanza:
    files: tuple[str, ...]
    licence: str


def read_dep5(path: Path) -> list[CopyrightStanza]:
    """The ``Files:`` stanzas of a Debian (DEP-5) copyright file: glob patterns and the licence name."""
    if not path.is_file():
        return []
    stanzas, files, licence, in_files = [], [], None, False
    for line in [*path.read_text(encoding="utf-8", errors="replace").splitlines(), ""]:
        if not line.strip():
            if files and licence:
                stanzas.append(CopyrightStanza(tuple(files), licence))
            files, licence, in_files = [], None, False
            continue
        if line.startswith("Files:"):
            files, in_files = line[6:].split(), True
        elif line.startswith("License:"):
            licence, in_files = line[8:].strip(), False
        elif line[0] in " \t" and in_files:
            files.extend(line.split())
        else:
            in_files = False
    return stanzas


def licence_for(stanzas: list[CopyrightStanza], upstream_path: str) -> str:
    """The licence of a file by its upstream path (the last stanza whose pattern matches wins)."""
    found = "unknown"
    for stanza in stanzas:
        if any(fnmatch.fnmatch(upstream_path, pattern) for pattern in stanza.files):
            found = stanza.licence
    return found


# -------------------------------------------------------------------------------------------- patterns


@dataclass
class DrumPattern:
    """Drum hits (start beat, GM note, velocity) of one pattern, with its context."""

    id: str
    source: Path
    project: str
    name: str
    tempo: float
    meter: tuple[int, int]
    bars: float
    hits: list[tuple[float, int, int]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.hits)).encode()).hexdigest()


def hydrogen_song_paths() -> list[Path]:
    return sorted((HYDROGEN_DATA / "demo_songs").glob("*.h2song"))


def _kit_notes(kit: str) -> dict[str, int]:
    """Instrument name (lower case) -> GM note from a Hydrogen drum kit's drumkit.xml."""
    path = HYDROGEN_DATA / "drumkits" / kit / "drumkit.xml"
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    notes = {}
    for inst in root.iter(f"{ns}instrument"):
        name, note = inst.findtext(f"{ns}name"), inst.findtext(f"{ns}midiOutNote")
        if name and note and note.lstrip("-").isdigit():
            notes[name.strip().lower()] = int(note)
    return notes


def read_hydrogen_song(path: Path) -> list[DrumPattern]:
    """Every pattern of a Hydrogen song with its notes mapped to GM drum notes."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"not a readable Hydrogen song ({exc})") from exc
    if root.tag != "song" or root.find("patternList") is None or root.find("instrumentList") is None:
        raise DatasetError("not a Hydrogen song (no <song> with instruments and patterns)")
    tempo = float(root.findtext("bpm") or 120)
    instruments: dict[str, int | None] = {}
    kits: dict[str, dict[str, int]] = {}
    for inst in root.find("instrumentList"):
        name = (inst.findtext("name") or "").strip()
        kit = (inst.findtext("drumkit") or "").strip()
        if kit not in kits:
            kits[kit] = _kit_notes(kit)
        note = HYDROGEN_NOTE_FIXES.get(name.lower(), kits[kit].get(name.lower()))
        if note is None and (inst.findtext("midiOutNote") or "").isdigit():
            note = int(inst.findtext("midiOutNote"))
        if note is None or not 27 <= note <= 87:
            note = drum_note_for_name(name)
        instruments[(inst.findtext("id") or "").strip()] = note
    patterns = []
    for pattern in root.find("patternList"):
        name = (pattern.findtext("name") or "").strip()
        size = int(pattern.findtext("size") or 192)
        beats = size / SOURCE_TICKS_PER_BEAT
        meter = (4, 4) if size % 192 == 0 else (int(beats), 4) if beats.is_integer() else (int(beats * 2), 8)
        bar_beats = meter[0] * 4 / meter[1]
        record = DrumPattern(id=f"hydrogen-{path.stem}-{name}", source=path, project=path.stem, name=name,
                             tempo=tempo, meter=meter, bars=beats / bar_beats)
        for note in pattern.iter("note"):
            gm = instruments.get((note.findtext("instrument") or "").strip())
            if gm is None:
                record.unmapped.append(note.findtext("instrument") or "?")
                continue
            position = int(float(note.findtext("position") or 0))
            velocity = max(1, min(127, round(float(note.findtext("velocity") or 0.8) * 127)))
            record.hits.append((position / SOURCE_TICKS_PER_BEAT, gm, velocity))
        patterns.append(record)
    return patterns


def lmms_project_paths() -> list[Path]:
    return sorted(p for p in LMMS_PROJECTS.rglob("*") if p.suffix in (".mmp", ".mmpz"))


def read_lmms_xml(path: Path) -> ET.Element:
    """The XML of an LMMS project: ``.mmpz`` is a 4-byte big-endian length then zlib data; ``.mmp`` is XML.

    LMMS 1.x writes ``<lmms-project>``, older versions ``<multimedia-project>``; both have the same ``<song>``.
    """
    try:
        data = path.read_bytes()
        if path.suffix == ".mmpz":
            data = zlib.decompress(data[4:])
        root = ET.fromstring(data)
    except (zlib.error, ET.ParseError, OSError) as exc:
        raise DatasetError(f"not a readable LMMS project ({type(exc).__name__}: {exc})") from exc
    if root.tag not in ("lmms-project", "multimedia-project") or root.find("song") is None:
        raise DatasetError("not an LMMS project (no <lmms-project> or <multimedia-project> with a <song>)")
    return root


def _lmms_drum_map(track: ET.Element) -> tuple[str, int | None] | None:
    """(kind, note) for an LMMS drum track: ("sample", GM note), ("sf2", None: keys are GM) or None."""
    inst_track = track.find("instrumenttrack")
    if inst_track is None:
        return None
    instrument = inst_track.find("instrument")
    plugin = instrument.attrib.get("name", "") if instrument is not None else ""
    settings = next(iter(instrument), None) if instrument is not None else None
    if plugin == "sf2player" and settings is not None and settings.attrib.get("bank") == "128":
        return "sf2", None
    if plugin == "audiofileprocessor" and settings is not None:
        src = settings.attrib.get("src", "")
        if src.startswith(("drums/", "drumsynth/")) and not src.startswith(_NOT_DRUMS):
            note = drum_note_for_name(src)
            return ("sample", note) if note is not None else None
        return None
    note = drum_note_for_name(track.attrib.get("name", ""))
    return ("name", note) if note is not None and plugin != "kicker" else None


def _lmms_hits(pattern: ET.Element, kind: str, note: int | None) -> list[tuple[float, int, int]]:
    hits = []
    for n in pattern.findall("note"):
        key = int(n.attrib.get("key", 57))
        gm = key + 12 if kind == "sf2" else note   # LMMS key 57 is A4 (MIDI 69)
        if gm is None or not 27 <= gm <= 87:
            continue
        velocity = max(1, min(127, round(float(n.attrib.get("vol", 100)))))
        hits.append((int(n.attrib.get("pos", 0)) / SOURCE_TICKS_PER_BEAT, gm, velocity))
    return hits


def read_lmms_project(path: Path) -> list[DrumPattern]:
    """Drum patterns of an LMMS project: one per Beat+Bassline pattern, and per drum clip position."""
    root = read_lmms_xml(path)
    head = root.find("head")
    attrs = head.attrib if head is not None else {}
    tempo = float(attrs.get("bpm", 140))
    meter = (int(attrs.get("timesig_numerator", 4)), int(attrs.get("timesig_denominator", 4)))
    if meter[0] < 1 or meter[1] not in (1, 2, 4, 8, 16):
        meter = (4, 4)
    bar_beats = meter[0] * 4 / meter[1]
    bar_ticks = round(bar_beats * SOURCE_TICKS_PER_BEAT)
    project = str(path.relative_to(LMMS_PROJECTS).with_suffix("")) if path.is_relative_to(LMMS_PROJECTS) \
        else path.stem
    tracks = root.find("song").find("trackcontainer")
    patterns: dict[str, DrumPattern] = {}

    def add(key: str, name: str, length_ticks: int, hits: list[tuple[float, int, int]], offset: float) -> None:
        record = patterns.setdefault(key, DrumPattern(
            id=f"lmms-{project.replace('/', '-')}-{key}", source=path, project=project, name=name, tempo=tempo,
            meter=meter, bars=max(1, -(-length_ticks // bar_ticks))))
        record.bars = max(record.bars, -(-length_ticks // bar_ticks))
        record.hits.extend((start - offset, gm, v) for start, gm, v in hits)

    for track in tracks.findall("track") if tracks is not None else []:
        kind = track.attrib.get("type")
        if kind == "1":  # Beat+Bassline: its container holds the patterns of every B+B index
            container = track.find("bbtrack/trackcontainer")
            for sub in container.findall("track") if container is not None else []:
                mapping = _lmms_drum_map(sub)
                if mapping is None:
                    continue
                for pattern in sub.findall("pattern"):
                    index = round(int(pattern.attrib.get("pos", 0)) / bar_ticks)
                    length = max(int(pattern.attrib.get("len", bar_ticks)), int(pattern.attrib.get("steps", 16)) *
                                 bar_ticks // 16)
                    add(f"bb{index + 1}", f"Beat+Bassline {index + 1}", length, _lmms_hits(pattern, *mapping), 0.0)
        elif kind == "0":
            mapping = _lmms_drum_map(track)
            if mapping is None:
                continue
            for pattern in track.findall("pattern"):
                start = int(pattern.attrib.get("pos", 0))
                length = int(pattern.attrib.get("len", bar_ticks))
                hits = _lmms_hits(pattern, *mapping)
                for first in range(0, max(length, 1), SEGMENT_BARS * bar_ticks):
                    chunk = [(b - first / SOURCE_TICKS_PER_BEAT, g, v) for b, g, v in hits
                             if first <= b * SOURCE_TICKS_PER_BEAT < first + SEGMENT_BARS * bar_ticks]
                    if chunk:
                        at = start + first
                        add(f"clip{at // bar_ticks + 1}", f"clip at bar {at // bar_ticks + 1}",
                            min(length - first, SEGMENT_BARS * bar_ticks), chunk, 0.0)
    return [p for p in patterns.values() if p.hits]


# ----------------------------------------------------------------------------------------------- build


def build_human_drums(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset(),
                      hydrogen_songs: list[Path] | None = None, lmms_projects: list[Path] | None = None
                      ) -> BuildSummary:
    """Read the Hydrogen and LMMS drum patterns into ``out`` (module docstring); ``limit`` caps the files read.

    ``hydrogen_songs`` / ``lmms_projects`` replace the installed demo files (tests, or a user's own).
    """
    require_packages()
    files = [("hydrogen", p) for p in (hydrogen_songs if hydrogen_songs is not None else hydrogen_song_paths())]
    files += [("lmms", p) for p in (lmms_projects if lmms_projects is not None else lmms_project_paths())]
    if limit is not None:
        hydro = [f for f in files if f[0] == "hydrogen"]
        lmms = [f for f in files if f[0] == "lmms"]
        files = [f for pair in zip(hydro, lmms, strict=False) for f in pair] + hydro[len(lmms):] + lmms[len(hydro):]
        files = files[:limit]
    copyrights = {"hydrogen": read_dep5(HYDROGEN_COPYRIGHT), "lmms": read_dep5(LMMS_COPYRIGHT)}
    info = {"audio": False, "ticks_per_beat": TICKS_PER_BEAT, "evaluation_only": True,
            "cache": {"notes": "int32 rows: track, start, duration, pitch (GM drum note), velocity (ticks)"}}
    with DatasetWriter(out, kind="human-drums", cache={"notes": ("int32", 2)}, info=info, opt_out=opt_out) as writer:
        for tool, path in progress(files, desc="reading drum patterns", unit="file"):
            if writer.is_opted_out(str(path)):
                continue
            try:
                patterns = read_hydrogen_song(path) if tool == "hydrogen" else read_lmms_project(path)
            except DatasetError as exc:
                writer.skip(path, str(exc))
                continue
            kept = [p for p in patterns if p.hits]
            if not kept:
                writer.skip(path, "no drum notes (no track plays a drum sound this reader can name)")
                continue
            licence = _licence(tool, path, copyrights[tool])
            sha = sha256_file(path)
            seen: set[str] = set()
            for pattern in kept:
                fingerprint = pattern.fingerprint()
                if fingerprint in seen:
                    continue
                seen.add(fingerprint)
                notes = _notes_array(pattern)
                labels = {
                    "tool": tool, "project": pattern.project, "pattern": pattern.name, "tempo": pattern.tempo,
                    "meter": "{}/{}".format(*pattern.meter), "bars": pattern.bars,
                    "bar_beats": pattern.meter[0] * 4 / pattern.meter[1], "notes": len(notes),
                    "drum_notes": sorted({int(n) for n in notes[:, 3]}), "unmapped_instruments": len(pattern.unmapped),
                    "tracks": [{"name": "Drums", "role": "drums", "program": 0, "drum": True, "notes": len(notes)}],
                    "roles": ["drums"], "key": None, "group": f"{tool}:{pattern.project}",
                    "ticks_per_beat": TICKS_PER_BEAT,
                }
                record = Record(id=_unique(pattern.id, writer), source=str(path), licence=licence, sha256=sha,
                                split="test", labels=labels,
                                duration=round(pattern.bars * labels["bar_beats"] * 60.0 / pattern.tempo, 3))
                writer.add(record, {"notes": notes})
        return writer.finish()


def _unique(record_id: str, writer: DatasetWriter) -> str:
    taken = {r.id for r in writer.records}
    candidate, number = record_id, 2
    while candidate in taken:
        candidate, number = f"{record_id}-{number}", number + 1
    return candidate


def _licence(tool: str, path: Path, stanzas: list[CopyrightStanza]) -> str:
    if tool == "hydrogen":
        upstream = f"data/demo_songs/{path.name}"
        return f"{licence_for(stanzas, upstream)} (Hydrogen demo song {path.name}; Debian package hydrogen-data)"
    relative = path.relative_to(LMMS_PROJECTS).as_posix() if path.is_relative_to(LMMS_PROJECTS) else path.name
    return f"{licence_for(stanzas, f'data/projects/{relative}')} (LMMS project {relative}; Debian package lmms-common)"


def _notes_array(pattern: DrumPattern) -> np.ndarray:
    rows = sorted((0, round(start * TICKS_PER_BEAT), round(DRUM_HIT_BEATS * TICKS_PER_BEAT), gm, velocity)
                  for start, gm, velocity in pattern.hits if start >= 0)
    return np.array(rows, dtype=np.int32).reshape(-1, 5)


def iter_drum_patterns(dataset_dir: str | Path):
    """The patterns of a built human-drums dataset as `SongRecord` (a one-part drum `Score` and its labels)."""
    from tunesmith.data.corpora.grooves import SongRecord, song_score

    dataset = Dataset(dataset_dir)
    if dataset.kind != "human-drums":
        raise DatasetError(f"{dataset_dir} is a {dataset.kind!r} dataset, not 'human-drums'")
    for record in dataset.records:
        score, roles = song_score(dataset.array("notes", record), record)
        yield SongRecord(record, score, roles)
