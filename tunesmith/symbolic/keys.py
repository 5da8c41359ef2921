"""Key names: parse "D minor" / "Dm" / "f# major" / "E-flat minor", spell them canonically, estimate them.

Only the two tonal modes are modelled (``"major"``, ``"minor"``); ``ionian``/``aeolian`` are accepted as
aliases. Church modes from notation (ABC ``K:Ador``) are mapped to the mode with the same third by
:func:`mode_family` (dorian/phrygian/locrian -> minor, lydian/mixolydian -> major) by the readers, but a
user typing "D dorian" gets a `ParameterError`: we would silently lose information otherwise.

A lone lower-case tonic with no mode word ("d", "bb") follows the music21/Humdrum convention and means
minor; an upper-case one ("D", "Bb") means major.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tunesmith.errors import ParameterError

if TYPE_CHECKING:
    from tunesmith.symbolic.score import Score

MODES = ("major", "minor")

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Conventional spellings: the fewer-accidental key, and F# major / C# minor / G# minor / Eb minor /
# Bb minor where both spellings use six accidentals or the flat/sharp choice is the common one.
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

_MODE_WORDS = {
    "": None,
    "major": "major",
    "maj": "major",
    "ionian": "major",
    "minor": "minor",
    "min": "minor",
    "m": "minor",
    "aeolian": "minor",
}
_CHURCH_MODES = {
    "ionian": "major",
    "lydian": "major",
    "mixolydian": "major",
    "dorian": "minor",
    "phrygian": "minor",
    "aeolian": "minor",
    "locrian": "minor",
    "major": "major",
    "minor": "minor",
}

_KEY_RE = re.compile(
    r"^(?P<letter>[A-Ga-g])"
    r"\s*(?P<acc>##|bb|--|#|b|-|x|♯|♭|[-\s]?sharp|[-\s]?flat)?"
    r"\s*(?P<mode>[A-Za-z]*)$"
)

# Krumhansl-Kessler key profiles (C major / C minor), used by `estimate_key`.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)


_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "sharp": 1, "##": 2, "x": 2, "b": -1, "♭": -1, "flat": -1, "bb": -2}


def _accidental_shift(acc: str) -> int:
    """Semitone shift of an accidental spelling ("#", "b", "-", "--", "-flat", " sharp", ...)."""
    if acc in ("-", "--"):  # music21 spells flats with "-"
        return -len(acc)
    return _ACCIDENTALS[acc.lstrip("- ")]


def parse_key(text: str) -> tuple[int, str]:
    """Parse a key name into ``(tonic pitch class 0..11, "major" | "minor")``.

    Accepts "D minor", "Dm", "f# major", "Bb", "E-flat minor", "B- major" (music21 flat), "C#min".
    """
    if not isinstance(text, str):
        raise ParameterError(f"key must be a string like 'D minor', got {text!r}", field="key")
    cleaned = " ".join(text.strip().split())
    match = _KEY_RE.match(cleaned)
    if match is None:
        raise ParameterError(
            f"unknown key {text!r}: expected a tonic A-G with optional #/b and major/minor, e.g. 'D minor'",
            field="key",
        )
    letter, acc, mode_word = match.group("letter"), match.group("acc") or "", match.group("mode")
    shift = _accidental_shift(acc)
    if mode_word == "M":
        mode = "major"
    elif mode_word.lower() in _MODE_WORDS:
        mode = _MODE_WORDS[mode_word.lower()]
    else:
        raise ParameterError(
            f"unknown key {text!r}: mode {mode_word!r} is not supported (use major or minor)", field="key"
        )
    if mode is None:
        mode = "minor" if letter.islower() else "major"
    return (_LETTER_PC[letter.upper()] + shift) % 12, mode


def key_name(tonic_pc: int, mode: str) -> str:
    """Canonical spelling: ``key_name(2, "minor") == "D minor"``, ``key_name(10, "major") == "Bb major"``."""
    if isinstance(tonic_pc, bool) or not isinstance(tonic_pc, int) or not 0 <= tonic_pc <= 11:
        raise ParameterError(f"tonic pitch class must be an integer 0..11, got {tonic_pc!r}", field="key")
    if mode not in MODES:
        raise ParameterError(f"mode must be 'major' or 'minor', got {mode!r}", field="key")
    names = _MAJOR_NAMES if mode == "major" else _MINOR_NAMES
    return f"{names[tonic_pc]} {mode}"


def normalize_key(text: str) -> str:
    """Parse and re-spell a key name: ``normalize_key("f#m") == "F# minor"``."""
    return key_name(*parse_key(text))


def mode_family(mode: str) -> str | None:
    """Map a church/tonal mode name to "major" or "minor" by its third; None if unknown."""
    return _CHURCH_MODES.get(mode.strip().lower()) if isinstance(mode, str) else None


def scale_pitch_classes(tonic: int, mode: str) -> list[int]:
    """The seven pitch classes of the major or natural-minor scale on ``tonic`` (0..11)."""
    key_name(tonic, mode)  # validates
    steps = _MAJOR_STEPS if mode == "major" else _MINOR_STEPS
    return [(tonic + s) % 12 for s in steps]


def estimate_key(
    notes: Iterable[tuple[int, float]], *, candidates: Iterable[tuple[int, str]] | None = None
) -> tuple[int, str]:
    """Krumhansl-Kessler key estimate from ``(midi pitch, duration)`` pairs.

    ``candidates`` restricts the choice (e.g. the relative major/minor of a key signature). With no
    notes the first candidate (C major by default) is returned.
    """
    hist = _histogram(notes)
    options = list(candidates) if candidates is not None else [(t, m) for m in MODES for t in range(12)]
    if not options:
        raise ParameterError("estimate_key needs at least one candidate key")
    if sum(hist) <= 0:
        return options[0]
    best = max(options, key=lambda option: _fit(hist, *option))
    return best


def key_fit(notes: Iterable[tuple[int, float]], tonic: int, mode: str) -> float:
    """Correlation (-1..1) of the notes' duration-weighted pitch-class histogram with a key profile."""
    return _fit(_histogram(notes), tonic, mode)


def _histogram(notes: Iterable[tuple[int, float]]) -> list[float]:
    hist = [0.0] * 12
    for pitch, duration in notes:
        hist[int(pitch) % 12] += max(float(duration), 0.0)
    return hist


def _fit(hist: list[float], tonic: int, mode: str) -> float:
    profile = _KK_MAJOR if mode == "major" else _KK_MINOR
    return _correlation(hist, [profile[(pc - tonic) % 12] for pc in range(12)])


def _correlation(a: list[float], b: list[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    da = [x - mean_a for x in a]
    db = [y - mean_b for y in b]
    num = sum(x * y for x, y in zip(da, db, strict=True))
    den = (sum(x * x for x in da) * sum(y * y for y in db)) ** 0.5
    return num / den if den > 0 else 0.0


# music21's default key profiles (analysis.discrete.AardenEssen.getWeights)
_AARDEN_MAJOR = (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                 0.232998, 4.95122)
_AARDEN_MINOR = (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                 7.37619, 1.75623)


def aarden_key(notes: Iterable[tuple[int, float]]) -> tuple[int, str]:
    """The key music21's ``analyze("key")`` finds, computed directly (about a thousand times faster).

    The same method: the duration-weighted pitch-class histogram is correlated with the 24 rotations of the
    Aarden-Essen profiles and the best correlation wins (major before minor on a tie, as in music21)."""
    hist = _histogram(notes)
    best = max(((_correlation(hist, [profile[(pc - tonic) % 12] for pc in range(12)]), mode_rank, tonic)
                for mode_rank, profile in ((0, _AARDEN_MINOR), (1, _AARDEN_MAJOR)) for tonic in range(12)))
    _, mode_rank, tonic = best
    return tonic, "major" if mode_rank == 1 else "minor"


def music21_key(score: Score) -> tuple[int, str]:
    """The key music21's default analysis (Aarden-Essen key profiles) finds in ``score``."""
    from music21 import note, stream

    flat = stream.Stream()
    for n in score.all_notes():
        flat.insert(n.start, note.Note(n.pitch, quarterLength=n.duration))
    found = flat.analyze("key")
    return found.tonic.pitchClass, found.mode if found.mode in MODES else "major"
