"""Hydrogen drum kits (Debian hydrogen-drumkits and hydrogen-data): every layer of every instrument.

A kit is a folder with ``drumkit.xml``: instruments, each with one file (old format) or velocity layers
(``<layer>`` with ``<min>``/``<max>`` in 0..1). The licence of a kit is read from the package's copyright
file (the kit's archive name in hydrogen-drumkits; hydrogen-data's ``Files: *``) and the kit's own
``<license>`` field is kept beside it.

Splits: whole kits are held out, so that the drum-class and FAD checks hear kits never heard in training.
GMRockKit and The Black Pearl share 81 recordings (one Pearl kit sampled by Glen MacArthur) and the three
Millo kits are one author's variants of one kit, so each family is one split group.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tunesmith.data.recordings.classes import classify_drum
from tunesmith.data.recordings.copyright import licence_of, read_copyright
from tunesmith.data.recordings.items import SampleFile, Unusable, velocity_range

DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
PACKAGES = ("hydrogen-drumkits", "hydrogen-data")
DPKG_INFO = Path("/var/lib/dpkg/info")
# Kits held out whole: an acoustic and an electronic kit for test, two more for validation; each holds
# every drum class. The other known kits train; an unknown kit's family is hashed like any group.
KIT_SPLITS = {
    "ForzeeStereo": "test", "TR808EmulationKit": "test",
    "ColomboAcousticDrumkit": "valid", "Audiophob": "valid",
    "BJA_Pacific": "train", "ElectricEmpireKit": "train", "GMRockKit": "train", "Gimme A Hand 1.0": "train",
    "HardElectro1": "train", "Millo": "train", "VariBreaks": "train", "circAfrique v4": "train",
    "rumpf_kit_z01_h2": "train",
}
KIT_FAMILIES = {"The Black Pearl 1.0": "GMRockKit", "Millo-Drums_v.1": "Millo", "Millo_MultiLayered2": "Millo",
                "Millo_MultiLayered3": "Millo"}


@dataclass(frozen=True)
class Kit:
    """A kit's folder, name, author and licence."""

    folder: Path
    name: str
    author: str
    licence: str
    copyright: str
    kit_licence: str
    package: str

    @property
    def family(self) -> str:
        return KIT_FAMILIES.get(self.folder.name, self.folder.name)


def list_hydrogen(root: Path = DRUMKITS_DIR) -> tuple[list[SampleFile], list[Unusable], list[Kit]]:
    """Every usable layer of every kit under ``root``, the layers that are not, and the kits."""
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    kits: list[Kit] = []
    stanzas = {package: read_copyright(package) for package in PACKAGES}
    for xml_path in sorted(root.glob("*/drumkit.xml")):
        try:
            tree = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            unusable.append(Unusable(str(xml_path), f"unreadable drumkit.xml ({exc})"))
            continue
        kit = _kit(xml_path.parent, tree, stanzas)
        kits.append(kit)
        found, bad = _layers(kit, tree)
        items.extend(found)
        unusable.extend(bad)
    return items, unusable, kits


def _kit(folder: Path, tree: ET.Element, stanzas: dict[str, list]) -> Kit:
    ns = _namespace(tree)
    name = (tree.findtext(f"{ns}name") or folder.name).strip()
    author = " ".join((tree.findtext(f"{ns}author") or "").split())
    kit_licence = " ".join((tree.findtext(f"{ns}license") or "").split()) or "not stated"
    package = _owner(folder)
    if package == "hydrogen-drumkits":
        candidates = (folder.name, re.sub(r"\s*v\d+$", "", folder.name))
        stanza = next((s for c in candidates if (s := licence_of(stanzas[package], f"drumkits/{c}.h2drumkit"))),
                      None)
    else:
        stanza = licence_of(stanzas.get(package, []), f"data/drumkits/{folder.name}/drumkit.xml")
    if stanza is None:
        licence, holder = f"unknown (drumkit.xml says: {kit_licence})", author
    else:
        licence, holder = stanza.licence, re.sub(r"^[\d\s,-]+", "", stanza.copyright)  # drop leading years
    if package == "hydrogen-data":
        holder = f"{author}; the Hydrogen developers"
    full = f"{licence} ({name} drum kit by {holder or author}; Debian {package})"
    return Kit(folder, name, author, full, holder, kit_licence, package)


def _owner(folder: Path) -> str:
    """The Debian package that installed a kit folder (hydrogen-drumkits unless hydrogen-data lists it)."""
    listing = DPKG_INFO / "hydrogen-data.list"
    if listing.is_file() and f"{folder}/drumkit.xml" in listing.read_text(errors="replace").splitlines():
        return "hydrogen-data"
    return "hydrogen-drumkits"


def _layers(kit: Kit, tree: ET.Element) -> tuple[list[SampleFile], list[Unusable]]:
    ns = _namespace(tree)
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    split = KIT_SPLITS.get(kit.family)
    for instrument in tree.iter(f"{ns}instrument"):
        name = " ".join((instrument.findtext(f"{ns}name") or "").split())
        layers = [(layer.findtext(f"{ns}filename"), layer.findtext(f"{ns}min"), layer.findtext(f"{ns}max"))
                  for layer in instrument.iter(f"{ns}layer")]
        if not layers and instrument.findtext(f"{ns}filename"):
            layers = [(instrument.findtext(f"{ns}filename"), "0", "1")]
        layers = [(f.strip(), lo, hi) for f, lo, hi in layers if f and f.strip()]
        if not layers:
            continue
        drum = classify_drum(name)
        ranges = [_bounds(lo, hi) for _, lo, hi in layers]
        order = sorted(range(len(layers)), key=lambda i: ranges[i])
        midi_note = instrument.findtext(f"{ns}midiOutNote")
        for rank, index in enumerate(order):
            filename = layers[index][0]
            path = kit.folder / filename
            ref = f"{kit.folder.name}/{filename}"
            if drum is None:
                unusable.append(Unusable(str(path), f"instrument {name!r} of kit {kit.name} names no drum class"))
                continue
            if not path.is_file():
                unusable.append(Unusable(str(path), f"drumkit.xml of {kit.name} names a file that is missing"))
                continue
            items.append(SampleFile(
                path=path, source="hydrogen", kind="drum_hit", name=name, licence=kit.licence,
                group=f"kit:{kit.family}", ref=ref, split=split, kit=kit.folder.name, drum_class=drum.drum_class,
                gm_note=drum.gm_note, velocity_range=velocity_range(*ranges[index]), layer=rank + 1,
                layers=len(layers),
                extra={"kit_title": kit.name, "package": kit.package,
                       "kit_midi_note": int(midi_note) if midi_note and midi_note.strip().isdigit() else None},
            ))
    return items, unusable


def _bounds(low: str | None, high: str | None) -> tuple[float, float]:
    def number(text: str | None, default: float) -> float:
        try:
            return min(1.0, max(0.0, float(text))) if text is not None else default
        except ValueError:
            return default

    lo, hi = number(low, 0.0), number(high, 1.0)
    return (lo, hi) if lo <= hi else (hi, lo)


def _namespace(tree: ET.Element) -> str:
    match = re.match(r"\{.*\}", tree.tag)
    return match.group(0) if match else ""
