"""The Salamander Grand Piano V3 (Alexander Holm, CC-BY 3.0) from the npm packages @audio-samples/piano-velocityN.

Each package holds one of the 16 velocity layers: 30 notes, every minor third from A0 to C8 (A, C, D#, F#),
named like ``D#4v10.ogg`` (note, octave, layer). The layer's MIDI velocity range is the one the Salamander
SFZ plays it for.

Split: a note's velocity layers stay together, and whole notes are held out: 4 notes for test and 3 for
validation, spread over the keyboard, never the lowest or highest (their neighbours train, 3 semitones away on
each side). A held-out note is a real reference for a pitch the model did not hear; the pitches between the
recorded ones (two of every three semitones) have no recording at all, so there the pitch must be checked by
an estimator (pyin).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tunesmith.data.recordings.items import SampleFile, Unusable
from tunesmith.data.recordings.npm import FetchedPackage, NpmPackage

VERSION = "1.0.5"
INTEGRITY = {
    4: "sha512-q7TqNxzGPpr+WsluagKkyU7DqpoXzU8YqOuV0N06g6FsiaC6swyQ9PSLUvbJwQ8wLn6dMKWfKfLPJLhJPjsdUQ==",
    7: "sha512-vKjgDqDZNdRsgkU67hg6YVZL6aXauVEMngJkLt/y2SOtEsHCV28diyjz0EsTpU2yEsADbtkrUuhsV3ZGbsxbLQ==",
    10: "sha512-u56gCoMSSy1uLUhCaXjaobBx90dD0e/Hec7K/oAkmyfdV6CtDim2Rd9hSL3TlCetiLe3iryffSgnhb7Bb+WmZg==",
    13: "sha512-osCvWunCx4wmL/Xb9SE1yxWgoqefs4wd77PhQSHH9Xz+5wDg5r3U+AopufCYqfC01x4w+IloyGhw5XA2Qvgh2g==",
    16: "sha512-JhTYYAv30PXMa0yUpXHKp+OmOSduXcCVgtsMQN2U4i7YH/eUbr0hGlr0znDzuXXnoCa7KBpE9Li4Jknc1uPrrQ==",
}
DEFAULT_LAYERS = (4, 7, 10, 13, 16)
# MIDI velocity range of each layer (lovel..hivel of "Salamander Grand Piano V3.sfz")
LAYER_VELOCITIES = {1: (1, 26), 2: (27, 34), 3: (35, 36), 4: (37, 43), 5: (44, 46), 6: (47, 50), 7: (51, 56),
                    8: (57, 64), 9: (65, 72), 10: (73, 80), 11: (81, 88), 12: (89, 96), 13: (97, 104),
                    14: (105, 112), 15: (113, 120), 16: (121, 127)}
LICENCE = "CC-BY-3.0 (Salamander Grand Piano V3 by Alexander Holm; npm @audio-samples/piano-velocityN@1.0.5)"
TEST_NOTES = (33, 54, 75, 96)   # A1, F#3, D#5, C7
VALID_NOTES = (45, 66, 87)      # A2, F#4, D#6
_NAME = re.compile(r"^([A-G])(#?)(\d)v(\d+)$")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def package(layer: int) -> NpmPackage:
    """The pinned npm package of one velocity layer."""
    if layer not in INTEGRITY:
        raise KeyError(layer)
    return NpmPackage(f"@audio-samples/piano-velocity{layer}", VERSION, INTEGRITY[layer])


def note_pitch(stem: str) -> tuple[int, int] | None:
    """(MIDI pitch, layer) of a name like ``D#4v10``; None when the name does not read so."""
    match = _NAME.match(stem)
    if not match:
        return None
    letter, sharp, octave, layer = match.groups()
    return 12 * (int(octave) + 1) + _STEPS[letter] + (1 if sharp else 0), int(layer)


def list_salamander(fetched: Sequence[FetchedPackage]) -> tuple[list[SampleFile], list[Unusable]]:
    """Every note of the given velocity-layer packages."""
    items: list[SampleFile] = []
    unusable: list[Unusable] = []
    layers = len(fetched)
    for rank, pack in enumerate(sorted(fetched, key=lambda f: _layer_of(f.package)), start=1):
        for path in sorted((pack.root / "audio").glob("*")):
            ref = f"{pack.package.spec}/audio/{path.name}"
            parsed = note_pitch(path.stem)
            if parsed is None:
                unusable.append(Unusable(ref, "file name does not say a note and layer (like D#4v10.ogg)"))
                continue
            pitch, layer = parsed
            split = "test" if pitch in TEST_NOTES else "valid" if pitch in VALID_NOTES else "train"
            items.append(SampleFile(
                path=path, source="salamander", kind="piano_note", name=path.stem, licence=LICENCE,
                group=f"piano:{pitch}", ref=ref, split=split, instrument="piano", pitch=pitch,
                velocity_range=LAYER_VELOCITIES.get(layer), layer=rank, layers=layers,
                extra={"salamander_layer": layer, "package": pack.package.spec},
            ))
    return items, unusable


def _layer_of(package: NpmPackage) -> int:
    return int(package.name.rsplit("velocity", 1)[1])
