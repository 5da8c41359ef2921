"""The `mixtures` corpus: excerpts of the grooves songs rendered as recordings, labelled with which instrument
families (and corpus instruments) sound when.

Build (``tunesmith data build mixtures --out DIR [--limit N] [--grooves DIR] [--samples DIR]``):

1. every song of a built `grooves` dataset gives ``excerpts`` windows of ``seconds`` seconds (the notes that
   start inside the window; each part's velocities scaled by a random level, so families are heard loud and soft);
2. the pitched parts (and, for half of the excerpts, the drums) are rendered by FluidSynth through a General MIDI
   soundfont; the other half play the drum part with a real drum kit from a built `samples` dataset (its recorded
   hits, chosen by General MIDI key, else by drum class);
3. the mix goes through a random recording chain (`tunesmith.audio.augment`: room, EQ, compressor, noise, level,
   MP3 coding) and is stored as 16 kHz mono float16.

Held out: the test split (the grooves songs of the test split) is rendered only with ``test_soundfont``
(default FluidR3) and only with the samples' test-split drum kits; train and valid use the other soundfonts and
the kits of their own split. No test excerpt shares a soundfont, a kit or a song with training.

Labels per record: ``families`` and ``instruments`` map a name to its sounding intervals ``[[start, end], ...]``
in seconds (a note sounds from its onset to its end plus a short release; intervals closer than `MERGE_GAP`
merge); ``parts`` lists what played (program, family, role, level); ``soundfont``, ``drums`` (the kit or
"soundfont"), ``chain`` (the recording chain) and ``song`` say how it was made. The licence names the song's
licence, the soundfont's and the kit's.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio.augment import apply_chain, random_chain
from tunesmith.audio.dsp import to_mono
from tunesmith.data.corpora.grooves import song_score
from tunesmith.data.dataset import BuildSummary, Dataset, DatasetWriter
from tunesmith.data.manifest import SPLITS, Record
from tunesmith.errors import DatasetError, ParameterError, TunesmithError
from tunesmith.progress import progress
from tunesmith.symbolic.instruments import ALL_INSTRUMENTS, DRUM_KEYS, FAMILIES
from tunesmith.symbolic.render import Soundfont, get_renderer, list_soundfonts, resolve_soundfont
from tunesmith.symbolic.score import Note, Part, Score

DEFAULT_GROOVES = Path("datasets/grooves")
DEFAULT_SAMPLES = Path("datasets/samples")
REPO_ROOT = Path(__file__).resolve().parents[3]
RELEASE = 0.15  # seconds a pitched note is taken to sound after its note-off
DRUM_SOUNDS = 0.3  # seconds a drum hit is taken to sound (at least)
MERGE_GAP = 0.3  # intervals of one label closer than this merge
REAL_DRUMS_SHARE = 0.5  # excerpts whose drum part plays a recorded kit
SILENT_PEAK = 1e-4

# General MIDI program -> instrument family of the note corpus (`tunesmith.symbolic.instruments.FAMILIES`);
# sound effects (120-127) have none.
_GM_FAMILY_RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 7, "keyboard"), (8, 15, "mallet"), (16, 20, "organ"), (21, 23, "reed"), (24, 31, "guitar"),
    (32, 39, "bass"), (40, 51, "string"), (52, 54, "vocal"), (55, 55, "synth_pad"), (56, 63, "brass"),
    (64, 71, "reed"), (72, 79, "flute"), (80, 87, "synth_lead"), (88, 103, "synth_pad"), (104, 107, "guitar"),
    (108, 108, "mallet"), (109, 109, "reed"), (110, 110, "string"), (111, 111, "reed"), (112, 114, "mallet"),
    (115, 119, "drums"),
)
GM_FAMILY: dict[int, str] = {p: fam for lo, hi, fam in _GM_FAMILY_RANGES for p in range(lo, hi + 1)}
# General MIDI program -> the corpus instrument of that program (the instrument-level labels)
GM_INSTRUMENT: dict[int, str] = {i.program: i.name for i in ALL_INSTRUMENTS if not i.is_drum}
# GM percussion key's drum type -> the samples corpus's drum class
_SAMPLE_CLASS = {"kick": "kick", "snare": "snare", "rimshot": "snare", "clap": "percussion",
                 "hihat_closed": "hat_closed", "hihat_pedal": "hat_closed", "hihat_open": "hat_open",
                 "tom_low": "tom", "tom_mid": "tom", "tom_high": "tom", "crash": "cymbal", "ride": "cymbal"}


def family_of_program(program: int, *, is_drum: bool = False) -> str | None:
    """The instrument family a General MIDI program (or the drum channel) sounds as; None for sound effects."""
    return "drums" if is_drum else GM_FAMILY.get(int(program))


# ------------------------------------------------------------------------------------------- drum kits


@dataclass
class DrumKit:
    """The recorded hits of one kit of the samples corpus, by General MIDI key and by drum class."""

    name: str
    licence: str
    by_key: dict[int, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    by_class: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))

    def hit(self, key: int, rng: np.random.Generator) -> np.ndarray | None:
        """A recorded hit for GM percussion ``key`` (same key, else the same drum class), or None."""
        choices = self.by_key.get(key) or self.by_class.get(_SAMPLE_CLASS.get(DRUM_KEYS.get(key, ""), "percussion"))
        if not choices:
            choices = self.by_class.get("percussion")
        return choices[int(rng.integers(len(choices)))] if choices else None


def read_kits(samples: Dataset, writer: DatasetWriter) -> dict[str, list[DrumKit]]:
    """split -> the drum kits of the samples dataset whose hits lie in that split (kits are held out whole)."""
    kits: dict[tuple[str, str], DrumKit] = {}
    for record in samples.records:
        lab = record.labels
        if lab.get("kind") != "drum_hit":
            continue
        try:
            y = np.asarray(samples.array("audio", record), dtype=np.float32)
        except (OSError, ValueError, IndexError, DatasetError) as exc:
            writer.skip(f"{samples.root} ({record.id})", f"unreadable drum hit: {exc}")
            continue
        if not np.isfinite(y).all() or float(np.max(np.abs(y), initial=0.0)) < SILENT_PEAK:
            writer.skip(f"{samples.root} ({record.id})", "silent or non-finite drum hit")
            continue
        kit = kits.setdefault((record.split, lab["kit"]), DrumKit(lab["kit"], record.licence))
        y = _trim_tail(y)
        if lab.get("gm_note") is not None:
            kit.by_key[int(lab["gm_note"])].append(y)
        kit.by_class[str(lab.get("drum_class") or "percussion")].append(y)
    out: dict[str, list[DrumKit]] = defaultdict(list)
    for (split, _), kit in sorted(kits.items()):
        if kit.by_class.get("kick") or kit.by_class.get("snare"):
            out[split].append(kit)
        else:
            writer.skip(f"{samples.root} (kit {kit.name})", "no kick or snare: not a kit a song can play")
    return dict(out)


def _trim_tail(y: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    loud = np.flatnonzero(np.abs(y) > floor * float(np.max(np.abs(y))))
    return y[: int(loud[-1]) + 1] if loud.size else y


def play_kit(kit: DrumKit, notes: list[Note], seconds_per_beat: float, sr: int, length: int,
             rng: np.random.Generator) -> np.ndarray:
    """The drum part's notes played with ``kit``'s recorded hits (level by velocity), mono, ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    for note in notes:
        y = kit.hit(note.pitch, rng)
        if y is None:
            continue
        start = round(note.start * seconds_per_beat * sr)
        if start >= length:
            continue
        stop = min(length, start + len(y))
        out[start:stop] += y[: stop - start] * (note.velocity / 127.0) ** 1.5
    return out


# ---------------------------------------------------------------------------------------------- excerpts


@dataclass(frozen=True)
class Plan:
    """How one excerpt is made."""

    song: Record
    number: int
    soundfont: Soundfont
    kit: DrumKit | None  # None: the soundfont's drums
    seed: int

    @property
    def id(self) -> str:
        return f"{self.song.id}-{self.number}-{self.soundfont.name}"


def excerpt(score: Score, start: float, seconds: float, rng: np.random.Generator) -> tuple[Score, list[float]]:
    """The notes of ``score`` that start in [start, start + seconds) (seconds), moved to time 0, each part's
    velocities scaled by a random level; returns the excerpt and the parts' levels."""
    spb = 60.0 / score.tempo
    lo, hi = start / spb, (start + seconds) / spb
    parts, levels = [], []
    for part in score.parts:
        level = float(rng.uniform(0.45, 1.0))
        notes = [Note(n.pitch, n.start - lo, min(n.duration, hi - n.start), max(1, min(127, round(n.velocity * level))))
                 for n in part.notes if lo <= n.start < hi]
        parts.append(Part(name=part.name, notes=notes, program=part.program, is_drum=part.is_drum))
        levels.append(round(level, 3))
    return Score(parts=parts, tempo=score.tempo, key=score.key, time_signature=score.time_signature,
                 title=score.title), levels


def sounding(score: Score, seconds: float) -> tuple[dict[str, list[list[float]]], dict[str, list[list[float]]]]:
    """family -> intervals and corpus instrument -> intervals in which a note of it sounds (seconds)."""
    spb = 60.0 / score.tempo
    fams: dict[str, list[tuple[float, float]]] = defaultdict(list)
    insts: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for part in score.parts:
        fam = family_of_program(part.program, is_drum=part.is_drum)
        if fam is None:
            continue
        inst = None if part.is_drum else GM_INSTRUMENT.get(part.program)
        for note in part.notes:
            begin = note.start * spb
            end = begin + (max(note.duration * spb, DRUM_SOUNDS) if part.is_drum else note.duration * spb + RELEASE)
            span = (round(begin, 3), round(min(end, seconds), 3))
            if span[1] > span[0]:
                fams[fam].append(span)
                if inst:
                    insts[inst].append(span)
    return ({k: merge(v) for k, v in sorted(fams.items())}, {k: merge(v) for k, v in sorted(insts.items())})


def merge(spans: list[tuple[float, float]], gap: float = MERGE_GAP) -> list[list[float]]:
    """Sorted intervals with those closer than ``gap`` joined."""
    out: list[list[float]] = []
    for begin, end in sorted(spans):
        if out and begin - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return out


def presence(intervals: dict[str, list[list[float]]], names: list[str], frames: int, hop_seconds: float,
             ) -> np.ndarray:
    """(len(names), frames) 0/1 matrix: label i sounds somewhere in frame t (frames of ``hop_seconds``)."""
    out = np.zeros((len(names), frames), dtype=np.float32)
    index = {name: i for i, name in enumerate(names)}
    for name, spans in intervals.items():
        if name not in index:
            continue
        for begin, end in spans:
            a = max(0, int(np.floor(begin / hop_seconds)))
            b = min(frames, int(np.ceil(end / hop_seconds)))
            out[index[name], a:b] = 1.0
    return out


# ------------------------------------------------------------------------------------------------ build


def build_mixtures(out: Path, *, limit: int | None = None, opt_out: frozenset[str] = frozenset(),
                   grooves: Path | None = None, samples: Path | None = None, sr: int = 16000,
                   seconds: float = 8.0, excerpts: int = 1, test_soundfont: str = "fluidr3",
                   soundfonts: list[str] | None = None) -> BuildSummary:
    """Render the mixtures corpus into ``out`` (module docstring).

    ``grooves``/``samples``: the built datasets to read (default ``datasets/grooves`` and ``datasets/samples`` in
    the working directory, else in the repository); ``seconds``: excerpt length; ``excerpts``: excerpts per song
    in train and valid (one per song in test); ``test_soundfont``: the soundfont only the test split hears;
    ``soundfonts``: the training soundfonts (default every other installed GM soundfont); ``limit``: at most
    that many excerpts, spread over the splits."""
    if seconds < 1 or seconds > 60:
        raise ParameterError(f"seconds must be between 1 and 60, got {seconds}", field="seconds")
    if isinstance(excerpts, bool) or not isinstance(excerpts, int) or excerpts < 1:
        raise ParameterError(f"excerpts must be a positive integer, got {excerpts!r}", field="excerpts")
    song_data = _open(grooves, DEFAULT_GROOVES, "grooves", "tunesmith data build grooves --out datasets/grooves")
    sample_data = _open(samples, DEFAULT_SAMPLES, "samples", "tunesmith data build samples --out datasets/samples")
    held_out = resolve_soundfont(test_soundfont)
    train_fonts = [resolve_soundfont(name) for name in soundfonts] if soundfonts else \
        [f for f in list_soundfonts() if f.path.resolve() != held_out.path.resolve()]
    if not train_fonts or any(f.path.resolve() == held_out.path.resolve() for f in train_fonts):
        raise ParameterError(f"the training soundfonts must be installed and differ from the held-out one "
                             f"({held_out.name}); got {[f.name for f in train_fonts]}", field="soundfonts")
    info = {
        "audio": True, "sr": sr, "seconds": seconds, "excerpts": excerpts,
        "families": list(FAMILIES), "instruments": sorted(set(GM_INSTRUMENT.values())),
        "grooves": str(song_data.root), "grooves_manifest_sha256": song_data.manifest_sha256,
        "samples": str(sample_data.root), "samples_manifest_sha256": sample_data.manifest_sha256,
        "soundfonts": {"train": [_font_info(f) for f in train_fonts], "test": _font_info(held_out)},
        "release_seconds": RELEASE, "drum_seconds": DRUM_SOUNDS, "merge_gap": MERGE_GAP,
        "real_drums_share": REAL_DRUMS_SHARE,
    }
    with DatasetWriter(out, kind="mixtures", cache={"audio": ("float16", 1)}, info=info, opt_out=opt_out) as writer:
        kits = read_kits(sample_data, writer)
        info_kits = {split: [k.name for k in kits.get(split, [])] for split in SPLITS}
        writer.info["kits"] = info_kits
        missing = [s for s in SPLITS if not kits.get(s)]
        if missing:
            raise DatasetError(f"{sample_data.root} has no drum kit in split(s) {', '.join(missing)}; "
                               "rebuild the samples dataset with hydrogen kits")
        plans = _plans(song_data, train_fonts, held_out, kits, excerpts, limit)
        renderers: dict[str, Any] = {}
        for plan in progress(plans, desc="rendering mixtures", unit="excerpt"):
            try:
                made = _make(plan, song_data, renderers, sr, seconds)
            except (TunesmithError, ValueError, IndexError, OSError) as exc:
                writer.skip(f"{plan.song.source} ({plan.id})", f"{type(exc).__name__}: {exc}")
                continue
            if isinstance(made, str):
                writer.skip(f"{plan.song.source} ({plan.id})", made)
                continue
            record, audio = made
            writer.add(record, {"audio": audio})
        return writer.finish(pieces=len({p.song.id for p in plans}))


def _open(path: Path | None, default: Path, kind: str, command: str) -> Dataset:
    candidates = [Path(path)] if path is not None else [default, REPO_ROOT / default]
    for candidate in candidates:
        if (candidate / "dataset.json").is_file():
            dataset = Dataset(candidate)
            if dataset.kind != kind:
                raise DatasetError(f"{candidate} is a {dataset.kind!r} dataset, not {kind!r}")
            return dataset
    raise DatasetError(f"no built {kind} dataset at {' or '.join(map(str, candidates))}; build it with {command} "
                       f"(or give --{kind} DIR)")


def _font_info(font: Soundfont) -> dict[str, Any]:
    return {"name": font.name, "file": font.path.name, "package": font.package, "licence": font.licence}


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _plans(songs: Dataset, train_fonts: list[Soundfont], held_out: Soundfont, kits: dict[str, list[DrumKit]],
           excerpts: int, limit: int | None) -> list[Plan]:
    """Every excerpt to make, splits interleaved (train, valid, test, train ...) so a limit spans them all."""
    by_split: dict[str, list[Plan]] = {}
    for split in SPLITS:
        plans = []
        for song in songs.split(split):
            for number in range(1 if split == "test" else excerpts):
                seed = _seed(song.id, number)
                fonts = [held_out] if split == "test" else train_fonts
                font = fonts[(seed >> 8) % len(fonts)] if split == "test" else fonts[(number + seed) % len(fonts)]
                real = (seed >> 16) % 1000 < REAL_DRUMS_SHARE * 1000
                kit = kits[split][(seed >> 24) % len(kits[split])] if real else None
                plans.append(Plan(song, number, font, kit, seed))
        by_split[split] = plans
    if limit is None:
        return [p for split in SPLITS for p in by_split[split]]
    share = -(-limit // len(SPLITS))
    for split, plans in by_split.items():  # a small build: songs spread over the whole corpus (every style)
        if len(plans) > share:
            by_split[split] = [plans[i] for i in np.linspace(0, len(plans) - 1, share).round().astype(int)]
    order, i = [], 0
    while len(order) < limit and any(i < len(v) for v in by_split.values()):
        order.extend(by_split[s][i] for s in SPLITS if i < len(by_split[s]))
        i += 1
    return order[:limit]


def _make(plan: Plan, songs: Dataset, renderers: dict[str, Any], sr: int,
          seconds: float) -> tuple[Record, np.ndarray] | str:
    rng = np.random.default_rng(plan.seed)
    score, roles = song_score(songs.array("notes", plan.song), plan.song)
    duration = score.end_beats * 60.0 / score.tempo
    if duration < 1.0:
        return f"song of {duration:.1f} s is too short for an excerpt"
    start = float(rng.uniform(0, max(0.0, duration - seconds)))
    part_score, levels = excerpt(score, start, seconds, rng)
    length = round(seconds * sr)
    played = list(part_score.parts)
    drums = [p for p in part_score.parts if p.is_drum]
    if plan.kit is not None:
        part_score.parts = [p for p in part_score.parts if not p.is_drum]
    if plan.soundfont.name not in renderers:
        renderers[plan.soundfont.name] = get_renderer(sr, soundfont=plan.soundfont.path)
    mix = np.zeros(length, dtype=np.float32)
    if any(p.notes for p in part_score.parts):
        rendered = to_mono(renderers[plan.soundfont.name].render(part_score, tail=0.0))[:length]
        mix[: len(rendered)] += rendered
    if plan.kit is not None:
        drum_level = float(rng.uniform(0.25, 0.6))
        for part in drums:
            mix += drum_level * play_kit(plan.kit, part.notes, 60.0 / score.tempo, sr, length, rng)
        part_score.parts += drums
    if float(np.max(np.abs(mix), initial=0.0)) < SILENT_PEAK:
        return "silent excerpt (no note sounds in it)"
    families, instruments = sounding(part_score, seconds)
    chain = random_chain(rng)
    audio = apply_chain(mix, sr, chain, rng)
    if not np.isfinite(audio).all():
        return "the recording chain produced non-finite samples"
    parts = [{"name": p.name, "program": p.program, "drum": p.is_drum, "role": roles[i] if i < len(roles) else "",
              "family": family_of_program(p.program, is_drum=p.is_drum), "level": levels[i], "notes": len(p.notes)}
             for i, p in enumerate(played) if p.notes]
    kit_name = plan.kit.name if plan.kit is not None else "soundfont"
    licence = f"{plan.song.licence}; sounds: {plan.soundfont.licence}"
    if plan.kit is not None:
        licence += f"; drums: {plan.kit.licence}"
    labels = {
        "song": plan.song.id, "style_family": plan.song.labels.get("family"), "start": round(start, 3),
        "seconds": seconds, "soundfont": plan.soundfont.name, "drums": kit_name, "chain": chain.to_dict(),
        "families": families, "instruments": instruments, "parts": parts, "tempo": score.tempo,
        "key": score.key, "group": plan.song.labels.get("group", plan.song.id),
    }
    record = Record(id=plan.id, source=f"{plan.song.source}#{plan.song.id}", licence=licence,
                    sha256=plan.song.sha256, split=plan.song.split, duration=seconds, labels=labels)
    return record, audio.astype(np.float32)
