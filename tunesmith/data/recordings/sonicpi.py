"""Sonic Pi's samples (npm supersonic-scsynth-samples, CC0): drum hits, loops, basses, ambiences.

206 FLAC files (plus an AIFF twin of bd_haus.flac) named by family prefix: ``bd_`` kicks, ``sn_`` snares, ``hat_``
hats, ``drum_`` one acoustic kit (menegass, soft and hard hits), ``elec_`` an electronic kit (looppool),
``tabla_`` tabla strokes, ``loop_``/``arovane_beat_`` loops, ``bass_`` bass notes, ``guit_`` guitar,
``ambi_``/``misc_``/``vinyl_``/``mehackit_`` effects. PROVENANCE.md in the package gives each file's origin.
"""

from __future__ import annotations

import re
from pathlib import Path

from tunesmith.data.recordings.classes import DrumClass, classify_drum
from tunesmith.data.recordings.items import SampleFile, Unusable
from tunesmith.data.recordings.npm import FetchedPackage, NpmPackage

PACKAGE = NpmPackage("supersonic-scsynth-samples", "0.84.2",
                     "sha512-XWq1FU3+LQWfnKgf9XGO7Z3SB9Q3H9aFW6ThTjWD0YsThKrJCjyMIO9rMbryXlEe9+UxyvB21SKmJJBXlSZjCw==")
LICENCE = "CC0-1.0 (Sonic Pi samples, from freesound.org and Arovane; npm supersonic-scsynth-samples@0.84.2)"
# kits of drum hits: one source each, except "mixed" (kicks, snares, hats from many freesound authors)
KIT_SPLITS = {"sonic-pi-acoustic": "valid", "sonic-pi-electro": "train", "sonic-pi-tabla": "train",
              "sonic-pi-mixed": "train"}
_PERCUSSION_NAMES = {"elec_triangle": 81, "elec_wood": 76, "elec_tick": None, "perc_bell": None, "perc_bell2": None,
                     "perc_snap": None, "perc_snap2": None, "drum_cowbell": 56, "tbd_perc_tap_1": None,
                     "tbd_perc_tap_2": None, "tbd_perc_blip": None}
# one-shot families named by prefix (hat_snap is a hat, not a finger snap)
_FAMILIES = {"bd_": DrumClass("kick", 36), "sn_": DrumClass("snare", 38), "hat_": DrumClass("hat_closed", 42),
             "ride_": DrumClass("cymbal", 51)}
_INSTRUMENTS = (("bass_", "bass"), ("glitch_bass", "bass"), ("guit_", "guitar"), ("tbd_highkey", "synth"),
                ("tbd_pad", "pad"), ("tbd_voctone", "voice"))
_NOTE_IN_NAME = re.compile(r"_([a-g])(\d)?$")


def list_sonicpi(fetched: FetchedPackage) -> tuple[list[SampleFile], list[Unusable]]:
    """Every sample of the unpacked package, classified by its name."""
    folder = fetched.root / "samples"
    origins = _origins(fetched.root / "PROVENANCE.md")
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    flac_stems = {p.stem for p in folder.glob("*.flac")}
    for path in sorted(folder.iterdir()):
        ref = f"{PACKAGE.spec}/samples/{path.name}"
        if path.suffix.lower() != ".flac":
            reason = "the same sample as its .flac twin" if path.stem in flac_stems else "not a FLAC sample"
            unusable.append(Unusable(ref, reason))
            continue
        items.append(_item(path, ref, origins.get(path.stem.replace("_", ""))))
    return items, unusable


def _item(path: Path, ref: str, origin: str | None) -> SampleFile:
    stem = path.stem
    extra = {"origin": origin, "package": PACKAGE.spec}
    base = {"path": path, "source": "sonicpi", "name": stem, "licence": LICENCE, "ref": ref, "extra": extra}
    drum = _drum(stem)
    if drum is not None:
        kit = _kit(stem)
        level = re.search(r"_(soft|hard)$", stem)
        velocity = None if level is None else ((1, 63) if level.group(1) == "soft" else (64, 127))
        return SampleFile(kind="drum_hit", group=f"kit:{kit}", split=KIT_SPLITS[kit], kit=kit,
                          drum_class=drum.drum_class, gm_note=drum.gm_note, velocity_range=velocity,
                          layer=None if level is None else 1 + (level.group(1) == "hard"),
                          layers=None if level is None else 2, **base)
    instrument = next((name for prefix, name in _INSTRUMENTS if stem.startswith(prefix)), None)
    if instrument is not None:
        note = _NOTE_IN_NAME.search(stem)
        if note:
            extra["pitch_class"] = note.group(1).upper()
        return SampleFile(kind="instrument_note", group=f"sonicpi:{stem}", instrument=instrument, **base)
    if stem.startswith(("loop_", "arovane_beat_")) or stem in ("drum_roll", "tbd_fxbed_loop"):
        return SampleFile(kind="loop", group=f"sonicpi:{stem}", **base)
    return SampleFile(kind="effect", group=f"sonicpi:{stem}", **base)


def _drum(stem: str) -> DrumClass | None:
    """The drum class of a Sonic Pi sample name, None for a sample that is not a drum hit."""
    fixed = {"drum_cymbal_closed": DrumClass("hat_closed", 42), "drum_cymbal_pedal": DrumClass("hat_closed", 44),
             "drum_cymbal_open": DrumClass("hat_open", 46), "drum_cymbal_soft": DrumClass("cymbal", 49),
             "drum_cymbal_hard": DrumClass("cymbal", 49), "tbd_perc_hat": DrumClass("hat_closed", 42)}
    if stem in fixed:
        return fixed[stem]
    if stem == "elec_bell":  # an electronic bell tone, not a ride bell
        return None
    if stem in _PERCUSSION_NAMES:
        return DrumClass("percussion", _PERCUSSION_NAMES[stem])
    if stem.startswith("tabla_") or stem.startswith("glitch_perc"):
        return DrumClass("percussion", None)
    family = next((drum for prefix, drum in _FAMILIES.items() if stem.startswith(prefix)), None)
    if family is not None:
        return family
    if stem.startswith(("drum_bass", "drum_heavy", "drum_snare", "drum_tom", "drum_splash", "elec_")):
        return classify_drum(stem.replace("drum_bass", "bass_drum"))
    return None


def _kit(stem: str) -> str:
    if stem.startswith("drum_"):
        return "sonic-pi-acoustic"
    if stem.startswith("elec_"):
        return "sonic-pi-electro"
    if stem.startswith("tabla_"):
        return "sonic-pi-tabla"
    return "sonic-pi-mixed"


def _origins(provenance: Path) -> dict[str, str]:
    """Sample name (underscores dropped) -> the URL PROVENANCE.md gives for it."""
    if not provenance.is_file():
        return {}
    found = {}
    for match in re.finditer(r"`:([a-z0-9_]+)`\s*-\s*(\S+)", provenance.read_text(encoding="utf-8")):
        found[match.group(1).replace("_", "")] = match.group(2)
    return found
