"""Chord symbols and harmonic analysis: which chords a passage implies.

`fit_chords` cuts a score into windows (a beat for a chorale, half a bar or a bar for a quartet or a tune),
weighs the pitch classes sounding in each window by duration (notes that start on the window's first beat
count 1.5 times), and picks one chord per window from a vocabulary of templates. A chord's score in a window
is the weight of its chord tones minus 0.7 times the weight of the other notes, plus a bonus for the root and
for the bass note being the root (or a chord tone), a small prior for chords diatonic in the key, and a cost
for four-note chords, so a seventh is chosen only when it sounds. A Viterbi pass with a cost per chord change
smooths out passing notes. Melodies alone (folk tunes) use a smaller vocabulary (the diatonic triads, the
dominant seventh and V/V) and a higher change cost.

`roman_figure` names a chord as a Roman numeral in a key (music21's ``roman`` module, memoized).
Chord symbols are written the way MMA reads them ("F#m7b5", "Bbmaj7", "Cdim7").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.symbolic.keys import parse_key, scale_pitch_classes
from tunesmith.symbolic.score import Note

QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7),
    "m": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "m7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11),
    "dim": (0, 3, 6),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "aug": (0, 4, 8),
    "sus4": (0, 5, 7),
}
FIT_QUALITIES = ("", "m", "7", "m7", "maj7", "dim", "m7b5", "dim7")

# Suffixes seen in chord charts (MMA, ABC) mapped to the nearest quality above, plus their added tones.
_SUFFIXES: dict[str, tuple[str, tuple[int, ...]]] = {
    "": ("", ()), "maj": ("", ()), "M": ("", ()), "m": ("m", ()), "min": ("m", ()), "-": ("m", ()),
    "7": ("7", ()), "dom7": ("7", ()), "m7": ("m7", ()), "min7": ("m7", ()), "-7": ("m7", ()),
    "maj7": ("maj7", ()), "M7": ("maj7", ()), "ma7": ("maj7", ()), "dim": ("dim", ()), "o": ("dim", ()),
    "°": ("dim", ()), "m7b5": ("m7b5", ()), "m7-5": ("m7b5", ()), "ø": ("m7b5", ()), "dim7": ("dim7", ()),
    "o7": ("dim7", ()), "°7": ("dim7", ()), "aug": ("aug", ()), "+": ("aug", ()), "sus4": ("sus4", ()),
    "sus": ("sus4", ()), "6": ("", (9,)), "m6": ("m", (9,)), "9": ("7", (2,)), "m9": ("m7", (2,)),
    "maj9": ("maj7", (2,)), "M9": ("maj7", (2,)), "add9": ("", (2,)), "sus2": ("", (2,)), "11": ("7", (2, 5)),
    "13": ("7", (2, 9)), "7b9": ("7", (1,)), "7#9": ("7", (3,)), "7b5": ("7", (6,)), "7#5": ("aug", (10,)),
    "aug7": ("aug", (10,)), "7sus4": ("sus4", (10,)), "7sus": ("sus4", (10,)), "mM7": ("m", (11,)),
    "5": ("", ()), "69": ("", (9, 2)),
}
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_CHORD_RE = re.compile(r"^(?P<root>[A-G])(?P<acc>#|b|&)?(?P<suffix>[^/@]*)(?:/(?P<bass>[A-Ga-g])(?P<bacc>#|b|&)?)?$")


@dataclass(frozen=True, slots=True)
class Chord:
    """A chord: root pitch class, quality (a key of `QUALITIES`), optional added tones and bass."""

    root: int
    quality: str = ""
    added: tuple[int, ...] = ()
    bass: int | None = None

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in (*QUALITIES[self.quality], *self.added))

    def symbol(self, *, flats: bool = False) -> str:
        """The chord as MMA reads it ("Bbm7", "F#dim"); added tones are not spelled."""
        names = _FLAT_NAMES if flats else _SHARP_NAMES
        text = names[self.root] + self.quality
        return text if self.bass is None or self.bass == self.root else f"{text}/{names[self.bass]}"

    def transposed(self, semitones: int) -> Chord:
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return Chord((self.root + semitones) % 12, self.quality, self.added, bass)


def _pc(letter: str, accidental: str | None) -> int:
    return (_LETTERS[letter.upper()] + {"#": 1, "b": -1, "&": -1}.get(accidental or "", 0)) % 12


def parse_chord(text: str) -> Chord:
    """Read a chord symbol ("Am7", "F#m7b5", "Bb/D", "C6", "G7#9"); unknown suffixes keep their triad.

    A suffix outside the table is read by its first letters: "m" (not "maj") is minor, a "7" makes a
    seventh chord, anything else is major. A text that is not a chord at all raises a `ParameterError`.
    """
    cleaned = text.strip().split("@", 1)[0]
    match = _CHORD_RE.match(cleaned)
    if match is None:
        raise ParameterError(f"{text!r} is not a chord symbol", field="chord")
    root = _pc(match["root"], match["acc"])
    suffix = match["suffix"].strip("()").replace("&", "b")
    if suffix in _SUFFIXES:
        quality, added = _SUFFIXES[suffix]
    else:
        minor = suffix.startswith(("m", "min", "-")) and not suffix.startswith(("maj", "ma7", "M"))
        seventh = "7" in suffix
        quality = ("m7" if seventh else "m") if minor else ("7" if seventh else "")
        added = ()
    bass = _pc(match["bass"], match["bacc"]) if match["bass"] else None
    return Chord(root, quality, added, bass)


def transpose_symbol(text: str, semitones: int, *, flats: bool = False) -> str:
    """Transpose a chord symbol's root and bass, keeping its suffix exactly ("C7#9" + 2 -> "D7#9")."""
    match = _CHORD_RE.match(text.strip())
    if match is None:
        raise ParameterError(f"{text!r} is not a chord symbol", field="chord")
    names = _FLAT_NAMES if flats else _SHARP_NAMES
    out = names[(_pc(match["root"], match["acc"]) + semitones) % 12] + match["suffix"]
    if match["bass"]:
        out += "/" + names[(_pc(match["bass"], match["bacc"]) + semitones) % 12]
    return out


def prefers_flats(key: str) -> bool:
    """Whether a key's signature has flats (F major, D minor, ...), so its chords are spelled with flats."""
    tonic, mode = parse_key(key)
    major = tonic if mode == "major" else (tonic + 3) % 12
    return major in (5, 10, 3, 8, 1, 6)


# ------------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class FitSettings:
    """Weights of the chord fit (module docstring); `CHORALE`, `QUARTET`, `BAND` and `MELODY` are the presets."""

    vocabulary: str = "full"        # "full": 12 roots x FIT_QUALITIES; "diatonic": the melody set
    outside_weight: float = 0.7
    root_bonus: float = 0.3
    bass_bonus: float = 0.15
    tetrad_cost: float = 0.08
    diatonic_bonus: float = 0.1
    change_cost: float = 0.15
    final_tonic_bonus: float = 0.0
    carried: float = 1.0            # weight of notes held on into a window from before it (`window_weights`)


CHORALE = FitSettings()
QUARTET = FitSettings(change_cost=0.25)
# a band's pitched tracks (a song given to restyle, regenerate or continue): comping rings on past its chord's
# change, so held notes count half and changes come cheaper (docs/models.md, "Songs made with an input")
BAND = FitSettings(change_cost=0.1, carried=0.5)
MELODY = FitSettings(vocabulary="diatonic", outside_weight=0.5, root_bonus=0.2, bass_bonus=0.0, tetrad_cost=0.12,
                     diatonic_bonus=0.0, change_cost=0.35, final_tonic_bonus=0.3)


def _diatonic(key: str) -> set[tuple[int, str]]:
    """(root, quality) of the chords built on the scale (minor: harmonic minor's V, V7 and vii dim too)."""
    tonic, mode = parse_key(key)
    scale = scale_pitch_classes(tonic, mode)
    chords: set[tuple[int, str]] = set()
    for quality, intervals in QUALITIES.items():
        for root in range(12):
            pcs = {(root + i) % 12 for i in intervals}
            if pcs <= set(scale):
                chords.add((root, quality))
    if mode == "minor":
        leading = (tonic + 11) % 12
        dominant = (tonic + 7) % 12
        chords |= {(dominant, ""), (dominant, "7"), (leading, "dim"), (leading, "dim7")}
    return chords


def _candidates(key: str, settings: FitSettings) -> list[Chord]:
    if settings.vocabulary == "full":
        return [Chord(root, q) for q in FIT_QUALITIES for root in range(12)]
    tonic, mode = parse_key(key)
    steps = (0, 2, 4, 5, 7, 9) if mode == "major" else (0, 3, 5, 7, 8, 10)
    chords = []
    for step in steps:
        root = (tonic + step) % 12
        for quality in ("", "m"):
            if (root, quality) in _diatonic(key):
                chords.append(Chord(root, quality))
    dominant = (tonic + 7) % 12
    chords += [Chord(dominant, ""), Chord(dominant, "7"), Chord((tonic + 2) % 12, "")]  # V, V7, V/V
    return list(dict.fromkeys(chords))


def window_weights(notes: list[Note], starts: np.ndarray, ends: np.ndarray, *,
                   carried: float = 1.0) -> tuple[np.ndarray, list[int | None]]:
    """Pitch-class weights (windows x 12) and the bass pitch class of each window ``[starts[i], ends[i])``;
    ``carried``: the weight of a note sounding on from before a window (a held note of the chord before)."""
    weights = np.zeros((len(starts), 12))
    lowest: list[int | None] = [None] * len(starts)
    lowest_pitch = [999] * len(starts)
    for note in notes:
        first = int(np.searchsorted(ends, note.start, side="right"))
        for index in range(first, len(starts)):
            a, b = starts[index], ends[index]
            if a >= note.end:
                break
            overlap = min(b, note.end) - max(a, note.start)
            if overlap <= 0:
                continue
            accent = 1.5 if abs(note.start - a) < 1e-6 else carried if note.start < a else 1.0
            weights[index, note.pitch % 12] += overlap * accent
            if note.start <= a + 1e-6 and note.pitch < lowest_pitch[index]:
                lowest_pitch[index], lowest[index] = note.pitch, note.pitch % 12
    for index in range(len(starts)):  # nothing sounding at the window start: lowest note in the window
        if lowest[index] is None:
            inside = [n.pitch for n in notes if n.start < ends[index] and n.end > starts[index]]
            lowest[index] = min(inside) % 12 if inside else None
    return weights, lowest


def fit_chords(notes: list[Note], starts: np.ndarray, ends: np.ndarray, key: str,
               settings: FitSettings = CHORALE, prior: Mapping[tuple[int, str], float] | None = None) -> list[Chord]:
    """One chord per window (module docstring); windows without notes keep the chord before them. ``prior``:
    a bonus per (root, quality), times the window's weight, for chords a style plays more often."""
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    if len(starts) == 0:
        return []
    weights, basses = window_weights(notes, starts, ends, carried=settings.carried)
    candidates = _candidates(key, settings)
    n = len(candidates)
    member = np.zeros((n, 12))
    for i, chord in enumerate(candidates):
        member[i, list(chord.pitch_classes)] = 1.0
    totals = weights.sum(axis=1)
    inside = weights @ member.T                                           # windows x candidates
    scores = inside - settings.outside_weight * (totals[:, None] - inside)
    roots = np.array([c.root for c in candidates])
    scores += settings.root_bonus * weights[:, roots]
    tetrad = np.array([len(QUALITIES[c.quality]) > 3 for c in candidates], dtype=float)
    scores -= settings.tetrad_cost * totals[:, None] * tetrad[None, :]
    diatonic = _diatonic(key)
    in_key = np.array([(c.root, c.quality) in diatonic for c in candidates], dtype=float)
    scores += settings.diatonic_bonus * totals[:, None] * in_key[None, :]
    for w, bass in enumerate(basses):
        if bass is not None and settings.bass_bonus:
            scores[w] += settings.bass_bonus * totals[w] * np.where(roots == bass, 1.0, 0.5 * member[:, bass])
    if settings.final_tonic_bonus:
        tonic, mode = parse_key(key)
        tonic_chord = np.array([c.root == tonic and c.quality == ("" if mode == "major" else "m")
                                for c in candidates], dtype=float)
        scores[-1] += settings.final_tonic_bonus * max(totals[-1], 1e-9) * tonic_chord
    if prior:
        scores += totals[:, None] * np.array([prior.get((c.root, c.quality), 0.0) for c in candidates])[None, :]
    scale = float(np.mean(totals[totals > 0])) if np.any(totals > 0) else 1.0
    return [candidates[i] for i in _viterbi(scores, settings.change_cost * scale)]


def _viterbi(scores: np.ndarray, change_cost: float) -> list[int]:
    """Best path through ``scores`` (windows x states) with ``change_cost`` per change of state."""
    windows, states = scores.shape
    best = scores[0].copy()
    back = np.zeros((windows, states), dtype=np.int64)
    for w in range(1, windows):
        leader = int(np.argmax(best))
        stay = best
        move = best[leader] - change_cost
        back[w] = np.where(stay >= move, np.arange(states), leader)
        best = np.maximum(stay, move) + scores[w]
    path = [int(np.argmax(best))]
    for w in range(windows - 1, 0, -1):
        path.append(int(back[w, path[-1]]))
    return path[::-1]


@lru_cache(maxsize=4096)
def roman_figure(chord: Chord, key: str) -> str:
    """The chord as a Roman numeral in ``key`` ("V7", "ii", "viio7"), by music21's ``roman`` module."""
    from music21 import chord as m21chord
    from music21 import key as m21key
    from music21 import pitch, roman

    tonic, mode = parse_key(key)
    m21 = m21chord.Chord([48 + chord.root + i for i in QUALITIES[chord.quality]])
    try:
        return str(roman.romanNumeralFromChord(m21, m21key.Key(pitch.Pitch(tonic).name, mode)).figure)
    except Exception:  # music21 cannot name some chords in some keys
        return "?"
