"""A user's score as input of the song model: which band role each track plays, the melody, the key and the
chords it implies.

* **Roles** (:func:`band_roles`): a track on the drum channel is drums; else its name says it ("bass",
  "lead", "melody", "vocal", "pad", "strings", "piano", "guitar" ... and the role names themselves); else its
  General MIDI program (basses 33-40 -> bass; strings ensembles, choirs and synth pads -> pad; synth leads,
  brass, reeds and pipes -> lead; pianos, organs and guitars -> chords); a low, one-line track of no named role
  is the bass. With no lead so named, the highest one-line pitched track becomes the lead.
* **Melody** (:func:`melody_part`): the lead track, else the first pitched track; chords in it are reduced to
  their top note (the lead plays one note at a time).
* **Key** (:func:`input_key`): the file's own key signature, else the Aarden-Essen estimate of its notes.
* **Chords** (:func:`estimate_chords`): one per half bar (a bar in 3/4 and 3/8), by the project's chord fit
  (`tunesmith.symbolic.harmony.fit_chords`): from a melody alone with the small diatonic vocabulary and a
  higher change cost (``MELODY``), from a band's pitched tracks with the full vocabulary (``BAND``: held notes count
  half, changes come cheaper).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from tunesmith.symbolic.harmony import BAND, MELODY, Chord, fit_chords
from tunesmith.symbolic.keys import aarden_key, key_name, parse_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.song_tokens import BAR, COLUMN, EOS, NOTE, SectionSpan
from tunesmith.symbolic.transform import is_monophonic, make_monophonic

NAME_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (  # checked in this order; the first word found wins
    ("drums", ("drum", "kit", "perc")),
    ("bass", ("bass",)),
    ("lead", ("lead", "melody", "melodie", "vocal", "voice", "sing", "solo", "tune", "theme")),
    ("pad", ("pad", "string", "choir", "sus", "ensemble")),
    ("chords", ("chord", "piano", "guitar", "keys", "comp", "organ", "rhodes", "rhythm", "accomp")),
)
BASS_PROGRAMS = frozenset(range(32, 40)) | {43, 58}
PAD_PROGRAMS = frozenset(range(48, 56)) | frozenset(range(88, 96))
LEAD_PROGRAMS = frozenset(range(56, 88)) | frozenset(range(40, 42))  # brass, reeds, pipes, synth leads, violin
PRIOR_WEIGHT = 0.3
PRIMARY_CHORDS = {"major": [(0, "", 1.0), (5, "", 0.6), (7, "", 0.6), (7, "7", 0.5), (9, "m", 0.4), (2, "m", 0.3)],
                  "minor": [(0, "m", 1.0), (5, "m", 0.6), (7, "", 0.6), (7, "7", 0.5), (8, "", 0.4), (3, "", 0.3)]}
LOW_MEDIAN = 50  # a one-line track of no named role whose median pitch is below D3 is the bass


def _named_role(name: str) -> str | None:
    words = re.sub(r"[^a-z]+", " ", name.lower())
    for role, stems in NAME_WORDS:
        if any(stem in words for stem in stems):
            return role
    return None


def band_roles(score: Score) -> list[str | None]:
    """The band role of each part of ``score`` (None: a part without notes), as the module docstring says."""
    roles: list[str | None] = []
    guessed: list[bool] = []
    for part in score.parts:
        if not part.notes:
            roles.append(None)
            guessed.append(False)
            continue
        if part.is_drum:
            roles.append("drums")
            guessed.append(False)
            continue
        named = _named_role(part.name)
        if named == "drums":  # a pitched track called "drums" plays pitched notes: take it by its program
            named = None
        if named is not None:
            roles.append(named)
            guessed.append(False)
        elif part.program in BASS_PROGRAMS:
            roles.append("bass")
            guessed.append(False)
        elif part.program in PAD_PROGRAMS:
            roles.append("pad")
            guessed.append(False)
        elif part.program in LEAD_PROGRAMS:
            roles.append("lead")
            guessed.append(False)
        else:
            low = np.median([n.pitch for n in part.notes]) < LOW_MEDIAN and is_monophonic(part)
            roles.append("bass" if low else "chords")
            guessed.append(not low)
    if "lead" not in roles:  # the highest one-line track of a guessed role is the tune
        lines = [i for i, part in enumerate(score.parts) if guessed[i] and _mostly_one_line(part)]
        if lines and (len([r for r in roles if r is not None]) > 1 or len(lines) == 1):
            best = max(lines, key=lambda i: float(np.mean([n.pitch for n in score.parts[i].notes])))
            roles[best] = "lead"
    return roles


def _mostly_one_line(part: Part) -> bool:
    """At most one note in ten starts while another still sounds (a tune with a few double stops)."""
    notes = sorted(part.notes, key=lambda n: (n.start, n.pitch))
    overlaps = sum(1 for a, b in itertools.pairwise(notes) if b.start < a.end - 1e-6)
    return overlaps <= 0.1 * len(notes)


def role_notes(score: Score, roles: Sequence[str | None]) -> dict[str, list[Note]]:
    """The notes of each role present (several tracks of one role merged, in time order)."""
    out: dict[str, list[Note]] = {}
    for part, role in zip(score.parts, roles, strict=True):
        if role is not None:
            out.setdefault(role, []).extend(part.notes)
    return {role: sorted(notes, key=lambda n: (n.start, n.pitch)) for role, notes in out.items()}


def melody_part(score: Score) -> Part | None:
    """The melody of ``score`` as one line (module docstring); None if it has no pitched notes."""
    roles = band_roles(score)
    pitched = [(p, r) for p, r in zip(score.parts, roles, strict=True) if p.notes and not p.is_drum]
    if not pitched:
        return None
    part = next((p for p, r in pitched if r == "lead"), pitched[0][0])
    return make_monophonic(part.sorted())


def input_key(score: Score) -> str:
    """The key of ``score``: its own, else estimated from its pitched notes."""
    if score.key:
        try:
            return key_name(*parse_key(score.key))
        except ValueError:
            pass
    notes = [(n.pitch, n.duration) for p in score.parts if not p.is_drum for n in p.notes]
    return key_name(*aarden_key(notes))


def chord_window_beats(meter: tuple[int, int]) -> float:
    """How long one estimated chord lasts: half a bar, or a bar of 3/4, 3/8 (three beats do not halve)."""
    numerator, denominator = meter
    bar = numerator * 4 / denominator
    return bar if numerator in (3, 1) or numerator % 2 else bar / 2


def chord_prior(key: str, harmony: Sequence[Sequence] = ()) -> dict[tuple[int, str], float]:
    """How much a tune's chord fit favours each chord in ``key``: :data:`PRIOR_WEIGHT` times its share among the
    chords a model's training songs play in that mode (``harmony``: (degree, quality, share), a card's), else
    among the primary chords (I, IV, V, V7, vi, ii). A tune's notes rarely tell I from iii or vi; songs do."""
    tonic, mode = parse_key(key)
    entries = [(int(d), str(q), float(share)) for d, q, share, *_ in harmony] or PRIMARY_CHORDS[mode]
    top = max((share for *_, share in entries), default=0.0)
    return {((tonic + d) % 12, q): PRIOR_WEIGHT * share / top for d, q, share in entries} if top > 0 else {}


def estimate_chords(notes: Sequence[Note], *, bars: int, meter: tuple[int, int], key: str,
                    melody: bool, harmony: Sequence[Sequence] = ()) -> list[tuple[float, Chord]]:
    """One chord per window (:func:`chord_window_beats`) over ``bars`` bars as (beat, chord) changes; ``melody``:
    the notes are a tune alone (the diatonic vocabulary, favouring the chords of :func:`chord_prior`), else a
    band's pitched notes."""
    window = chord_window_beats(meter)
    bar = meter[0] * 4 / meter[1]
    count = max(1, round(bars * bar / window))
    starts = np.arange(count) * window
    chords = fit_chords(list(notes), starts, starts + window, key, MELODY if melody else BAND,
                        prior=chord_prior(key, harmony) if melody else None)
    out: list[tuple[float, Chord]] = []
    for start, chord in zip(starts, chords, strict=True):
        if not out or (out[-1][1].root, out[-1][1].quality) != (chord.root, chord.quality):
            out.append((float(start), Chord(chord.root, chord.quality)))
    return out


# ------------------------------------------------------------------------------------- steps and the result


def bar_blocks(steps: np.ndarray) -> dict[int, np.ndarray]:
    """The rows of each bar of a step sequence (its BAR step first), BOS and EOS left out."""
    kinds = steps[:, COLUMN["kind"]]
    starts = list(np.flatnonzero(kinds == BAR))
    out: dict[int, np.ndarray] = {}
    for bar, start in enumerate(starts):
        end = starts[bar + 1] if bar + 1 < len(starts) else len(steps)
        block = steps[start:end]
        out[bar] = block[block[:, COLUMN["kind"]] != EOS]
    return out


def kept_rows(steps: np.ndarray) -> dict[int, list[np.ndarray]]:
    """The NOTE rows of each bar of a step sequence, in step order (the notes a sampler keeps)."""
    return {bar: [row for row in block if row[COLUMN["kind"]] == NOTE] for bar, block in bar_blocks(steps).items()}


def input_sections(bars: int, energy: float) -> list[SectionSpan]:
    """Sections over music that plays from its first bar to its last (no intro or outro): verse and chorus in
    turn, eight bars each (four in a song under 16 bars), the last one taking the rest."""
    from tunesmith.compose.song_plan import energy_level

    unit = 8 if bars >= 16 else 4
    spans: list[SectionSpan] = []
    start = 0
    while start < bars:
        length = unit if bars - start >= 2 * unit else bars - start
        name = ("verse", "chorus")[len(spans) % 2]
        spans.append(SectionSpan(name, start, length, energy_level(energy, name)))
        start += length
    return spans


def clip_notes(notes: Sequence[Note], end: float) -> list[Note]:
    """Notes starting before beat ``end``, those ringing past it ending there."""
    return [n if n.end <= end + 1e-9 else Note(n.pitch, n.start, end - n.start, n.velocity)
            for n in notes if n.start < end - 1e-9]
