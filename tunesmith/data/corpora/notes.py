"""The `notes` corpus: single notes and drum hits rendered from a General MIDI soundfont.

In the spirit of NSynth: every corpus instrument over its playable range at several velocities, 16 kHz
mono, fixed length with the note released before the end so the decay is heard. Items of one
(instrument, pitch) share a split, so no held-out note has a louder or softer twin in training.
``soundfont`` picks the timbres (``lite``, the default, ``full``, ``fluidr3`` or a file; ``all`` renders every
installed GM soundfont), and every record names its soundfont, so a model can be trained on some and tested
on another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.errors import ParameterError
from tunesmith.progress import progress
from tunesmith.symbolic.instruments import ALL_INSTRUMENTS, DRUM_KEYS, Instrument, get_instrument
from tunesmith.symbolic.render import Soundfont, get_renderer, list_soundfonts, resolve_soundfont

ALL_SOUNDFONTS = "all"
DEFAULT_VELOCITIES = (50, 85, 120)
SILENCE_PEAK = 1e-3  # -60 dBFS: a render quieter than this has no sample behind it


def note_jobs(instruments: Sequence[Instrument], velocities: Sequence[int]) -> list[tuple[Instrument, int, int]]:
    """Every (instrument, pitch, velocity) to render, in a stable order."""
    return [(inst, pitch, vel) for inst in instruments for pitch in inst.pitches for vel in velocities]


def _thin(jobs: list[tuple[Instrument, int, int]], limit: int) -> list[tuple[Instrument, int, int]]:
    """Keep ``limit`` jobs spread evenly over the list, so a small build still spans every instrument."""
    if limit >= len(jobs):
        return jobs
    picks = np.linspace(0, len(jobs) - 1, num=limit).round().astype(int)
    return [jobs[i] for i in sorted(set(picks.tolist()))]


def build_notes(
    out: Path,
    *,
    limit: int | None = None,
    sr: int = 16000,
    length: float = 2.0,
    note_off: float = 1.5,
    velocities: Sequence[int] = DEFAULT_VELOCITIES,
    instruments: Sequence[str] | None = None,
    soundfont: str | None = None,
    opt_out: frozenset[str] = frozenset(),
) -> BuildSummary:
    """Render the note corpus into ``out``; ``limit`` keeps an even spread of that many notes (per soundfont).

    ``soundfont``: ``lite``/``full``/``fluidr3``, a path, or ``all`` (every installed GM soundfont; ids then
    start with the soundfont's name). Default: the one FluidSynth renders pieces with (Lite)."""
    if not 0 < note_off <= length:
        raise ParameterError(f"note_off={note_off} must lie in (0, length={length}]", field="note_off")
    for velocity in velocities:
        if not 1 <= velocity <= 127:
            raise ParameterError(f"velocity {velocity} must be in 1..127", field="velocities")
    chosen = [get_instrument(n) for n in instruments] if instruments else list(ALL_INSTRUMENTS)
    jobs = note_jobs(chosen, velocities)
    if limit is not None:
        jobs = _thin(jobs, limit)
    fonts = _soundfonts(soundfont)
    shas = {font.name: sha256_file(font.path) for font in fonts}
    info = {
        "audio": True, "sr": sr, "length": length, "note_off": note_off, "velocities": list(velocities),
        "soundfont": fonts[0].path.name if len(fonts) == 1 else [font.path.name for font in fonts],
        "soundfont_sha256": shas[fonts[0].name] if len(fonts) == 1 else shas,
        "soundfonts": [{"name": font.name, "file": font.path.name, "package": font.package,
                        "licence": font.licence, "sha256": shas[font.name]} for font in fonts],
        "instruments": [{"name": i.name, "family": i.family, "program": i.program, "drum": i.is_drum}
                        for i in chosen],
    }
    with DatasetWriter(out, kind="notes", cache={"audio": ("float16", 1)}, info=info, opt_out=opt_out) as writer:
        for font in fonts:
            renderer = get_renderer(sr, soundfont=font.path)
            prefix = f"{font.name}-" if len(fonts) > 1 else ""
            for inst, pitch, velocity in progress(jobs, desc=f"rendering notes ({font.name})", unit="note"):
                bank = 128 if inst.is_drum else 0
                source = f"{font.path.name}#bank={bank}&program={inst.program}&pitch={pitch}&velocity={velocity}"
                y = renderer.render_note(program=inst.program, pitch=pitch, velocity=velocity,
                                         note_off=note_off, length=length, is_drum=inst.is_drum)
                peak = float(np.max(np.abs(y))) if y.size else 0.0
                if peak < SILENCE_PEAK:
                    writer.skip(source, f"silent render (peak {peak:.2e}): no sample for {inst.name} at pitch {pitch}")
                    continue
                labels = {
                    "instrument": inst.name, "family": inst.family, "pitch": pitch, "velocity": velocity,
                    "drum_type": DRUM_KEYS[pitch] if inst.is_drum else None, "program": inst.program,
                    "soundfont": font.name, "group": f"{inst.name}:{pitch}",
                }
                record = Record(
                    id=f"{prefix}{inst.name}-{pitch:03d}-{velocity:03d}", source=source, licence=font.licence,
                    sha256=shas[font.name], split=assign_split(labels["group"]), duration=length, labels=labels,
                )
                writer.add(record, {"audio": y.astype(np.float32)})
        return writer.finish()


def _soundfonts(choice: str | None) -> list[Soundfont]:
    """The soundfonts to render: one by name or path, or every installed one for ``all``."""
    if choice != ALL_SOUNDFONTS:
        return [resolve_soundfont(choice)]
    fonts = list_soundfonts()
    if not fonts:
        return [resolve_soundfont(None)]
    return fonts
