"""The LMMS sample library (Debian lmms-common): drum hits, beats, basses, instruments, pads, effects.

Files are classified by folder, drum hits by name. Not read: ``drumsynth/`` (DrumSynth presets, parameters
rather than audio), ``shapes/`` and ``waveforms/`` (single-cycle oscillator waveforms and LFO shapes, not
recordings). The licence is the copyright file's ``Files: *`` paragraph (the samples have no paragraph of
their own).
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.data.recordings.classes import classify_drum
from tunesmith.data.recordings.copyright import licence_of, read_copyright
from tunesmith.data.recordings.items import SampleFile, Unusable

SAMPLES_DIR = Path("/usr/share/lmms/samples")
PACKAGE = "lmms-common"
KIT = "lmms"
AUDIO_SUFFIXES = (".ogg", ".flac", ".wav")
FOLDER_KINDS = {"drums": "drum_hit", "beats": "loop", "bassloops": "loop", "latin": "loop", "basses": "instrument_note",
                "instruments": "instrument_note", "stringsnpads": "instrument_note", "misc": "effect",
                "effects": "effect"}
NOT_READ = {"drumsynth": "DrumSynth presets (synthesis parameters, not audio)",
            "shapes": "single-cycle oscillator waveforms, not recordings",
            "waveforms": "single-cycle waveforms and LFO shapes, not recordings"}
_FOLDER_INSTRUMENT = {"basses": "bass", "stringsnpads": "pad"}


def licence(root_package: str = PACKAGE) -> str:
    """The samples' licence from the package's copyright file."""
    stanza = licence_of(read_copyright(root_package), "data/samples/drums/kick01.ogg")
    name = stanza.licence if stanza else "unknown (no copyright file)"
    return f"{name} (LMMS sample library; Debian {root_package}, copyright paragraph 'Files: *')"


def list_lmms(root: Path = SAMPLES_DIR) -> tuple[list[SampleFile], list[Unusable]]:
    """Every audio file of the folders in :data:`FOLDER_KINDS`."""
    text = licence()
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        kind = FOLDER_KINDS.get(folder.name)
        if kind is None:
            if folder.name not in NOT_READ:
                unusable.append(Unusable(str(folder), "folder of an unknown kind (not read)"))
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                unusable.append(Unusable(str(path), f"not an audio sample ({path.suffix or 'no extension'})"))
                continue
            items.append(_item(path, folder.name, kind, text))
    return items, unusable


def _item(path: Path, folder: str, kind: str, text: str) -> SampleFile:
    base = {"path": path, "source": "lmms", "name": path.stem, "licence": text, "ref": f"{folder}/{path.name}",
            "extra": {"package": PACKAGE, "folder": folder}}
    if kind == "drum_hit":
        drum = classify_drum(path.stem, bass_is_kick=True)
        if drum is None:  # zap01..03: synthesizer zaps in the drums folder
            return SampleFile(kind="effect", group=f"lmms:{folder}/{path.stem}", **base)
        return SampleFile(kind="drum_hit", group=f"kit:{KIT}", split="train", kit=KIT, drum_class=drum.drum_class,
                          gm_note=drum.gm_note, **base)
    if kind == "instrument_note":
        instrument = _FOLDER_INSTRUMENT.get(folder) or path.stem.rstrip("0123456789").rstrip("_")
        return SampleFile(kind=kind, group=f"lmms:{folder}/{path.stem}", instrument=instrument, **base)
    return SampleFile(kind=kind, group=f"lmms:{folder}/{path.stem}", **base)
