"""Monophonic melody transcription: audio -> notes (pitch, onset, offset, velocity) -> a quantized `Score`.

Pipeline (:func:`transcribe_melody`):

1. f0 per frame on audio resampled to 11025 Hz (46 ms frames, 11.6 ms hop): plain YIN (trough threshold 0.3)
   with an aperiodicity voicing rule (``method="yin"``, the default) or librosa's probabilistic YIN
   (``method="pyin"``, semitone pitch states: as accurate on our renders, ~10x slower, because librosa
   evaluates its observation model frame by frame in Python);
2. frames are voiced where the tracker says so and the frame is within 45 dB of the clip's loudest frame;
3. voiced frames are rounded to MIDI pitches, pitch runs shorter than ``min_note`` are absorbed by their
   neighbours (vibrato, attack glitches), and each run of one pitch is a note candidate;
4. repeated notes are split where the level dips >= 2 dB inside a run next to a spectral-flux peak (flux
   peaks alone split flute and violin notes at every vibrato cycle, level dips alone at every tremolo);
5. a note's start snaps to a clear spectral-flux peak up to 100 ms before the pitch change, else moves
   40 ms earlier (trackers switch late on soft attacks); notes shorter than ``min_note`` are dropped;
   velocity follows the note's peak RMS.

:func:`notes_to_score` puts the notes on the beat grid of a tempo estimate, as one monophonic part.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass, replace

import librosa
import numpy as np

from tunesmith.analyze.dsp import (
    ANALYSIS_SR,
    HALF_SR,
    HOP,
    MIN_PITCH_SECONDS,
    TempoEstimate,
    half_rate,
    is_silent,
    onset_envelope,
    prepare,
)
from tunesmith.errors import ParameterError
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.transform import make_monophonic, quantize_part

PITCH_SR = HALF_SR
PITCH_HOP = HOP * PITCH_SR // ANALYSIS_SR  # 128: the same frame times as the onset envelope
FRAME_TIME = HOP / ANALYSIS_SR
METHODS = ("pyin", "yin")
DEFAULT_FMIN, DEFAULT_FMAX = 65.4, 2093.0  # C2..C7
VOICING_RANGE_DB = 45.0
YIN_APERIODICITY = 0.5  # plain YIN: frames whose aperiodicity exceeds this are unvoiced
YIN_TROUGH = 0.3  # YIN takes the first period whose difference dips below this (0.1 gave octave-down errors)
_YIN_CHUNK = 4096
DIP_DB = 2.0  # a level dip this deep inside one pitch run splits a repeated note
DIP_WINDOW = 8  # frames (93 ms) each side in which the dip is measured
DIP_ONSET = 2.0  # onset-envelope peak (x its median) that must accompany a dip
SNAP_STRENGTH = 5.0  # onset-envelope peak (x its median) that a note start snaps to
ONSET_LAG = 0.04  # seconds a pitch change lags the attack when no clear onset peak is found
DEFAULT_METHOD = "yin"
BAR_BEATS = 4.0
MIN_STABLE = 0.5  # share of a note's frames whose own pitch rounds to the note's pitch  # notes_to_score writes 4/4


@dataclass(frozen=True)
class TranscribedNote:
    """One transcribed note: MIDI pitch, onset and offset in seconds, MIDI velocity 1..127."""

    pitch: int
    onset: float
    offset: float
    velocity: int


@dataclass(frozen=True)
class PitchTrack:
    """Frame-wise f0 in fractional MIDI (NaN where unvoiced) and RMS in dB, at FRAME_TIME spacing."""

    midi: np.ndarray
    rms_db: np.ndarray


def _check_range(fmin: object, fmax: object) -> tuple[float, float]:
    ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in (fmin, fmax))
    if not ok or not 30.0 <= float(fmin) < float(fmax) <= PITCH_SR / 4:
        raise ParameterError(
            f"need 30 <= fmin < fmax <= {PITCH_SR / 4:.0f} Hz, got fmin={fmin!r} fmax={fmax!r}", field="fmin"
        )
    return float(fmin), float(fmax)


def pitch_track(mono: np.ndarray, *, method: str = DEFAULT_METHOD, fmin: float = DEFAULT_FMIN,
                fmax: float = DEFAULT_FMAX, low: np.ndarray | None = None) -> PitchTrack:
    """f0 and level of prepared (mono, ANALYSIS_SR) audio, one frame per HOP samples; ``low`` reuses
    `tunesmith.analyze.dsp.half_rate` of the same audio (PITCH_SR is that rate)."""
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}", field="method")
    fmin, fmax = _check_range(fmin, fmax)
    low = half_rate(mono) if low is None else low
    frame = 512 if fmin >= 2.0 * PITCH_SR / 512 else 1024
    n_frames = 1 + low.size // PITCH_HOP
    if low.size < frame:
        low = np.pad(low, (0, frame - low.size))
    if method == "pyin":
        f0, voiced, _ = librosa.pyin(low, fmin=fmin, fmax=fmax, sr=PITCH_SR, frame_length=frame,
                                     hop_length=PITCH_HOP, resolution=1.0, max_transition_rate=100.0)
        f0 = np.where(voiced, f0, np.nan)
    else:
        f0 = _yin_voiced(low, fmin, fmax, frame)
    rms = librosa.feature.rms(y=low, frame_length=frame, hop_length=PITCH_HOP)[0]
    rms_db = 20.0 * np.log10(np.maximum(rms, 1e-6))
    f0, rms_db = f0[:n_frames], rms_db[:n_frames]
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = librosa.hz_to_midi(f0)
    midi[rms_db < rms_db.max() - VOICING_RANGE_DB] = np.nan
    return PitchTrack(midi=midi, rms_db=rms_db)


def _yin_voiced(low: np.ndarray, fmin: float, fmax: float, frame: int) -> np.ndarray:
    """Plain YIN f0, unvoiced (NaN) where the frame's aperiodicity exceeds :data:`YIN_APERIODICITY`.

    Aperiodicity = energy of (frame - frame shifted by one period) / energy of both: 0 for a periodic frame."""
    f0 = librosa.yin(low, fmin=fmin, fmax=fmax, sr=PITCH_SR, frame_length=frame, hop_length=PITCH_HOP,
                     trough_threshold=YIN_TROUGH)
    frames = librosa.util.frame(np.pad(low, frame // 2), frame_length=frame, hop_length=PITCH_HOP)[:, : f0.size]
    half = frame // 2
    lag = np.clip(np.round(PITCH_SR / f0).astype(int), 1, half - 1)
    aperiodicity = np.empty(f0.size, dtype=np.float32)
    for i in range(0, f0.size, _YIN_CHUNK):  # bounded (half, chunk) temporaries on long inputs
        cols = np.arange(i, min(i + _YIN_CHUNK, f0.size))
        a = frames[:half, cols]
        b = frames[lag[cols][None, :] + np.arange(half)[:, None], cols[None, :]]
        energy = (a * a).sum(axis=0) + (b * b).sum(axis=0)
        aperiodicity[cols] = ((a - b) ** 2).sum(axis=0) / np.maximum(energy, 1e-12)
    return np.where(aperiodicity <= YIN_APERIODICITY, f0, np.nan)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, stop) of the runs of equal values (-1 = unvoiced is a value too)."""
    if values.size == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [values.size]])
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, stops, strict=True)]


def _smooth_pitches(rounded: np.ndarray, min_frames: int) -> np.ndarray:
    """Absorb pitch runs shorter than ``min_frames`` into the longer neighbouring pitched run."""
    out = rounded.copy()
    for _ in range(3):
        runs = _runs(out)
        changed = False
        for i, (value, start, stop) in enumerate(runs):
            if value < 0 or stop - start >= min_frames:
                continue
            left = runs[i - 1] if i > 0 else None
            right = runs[i + 1] if i + 1 < len(runs) else None
            options = [r for r in (left, right) if r is not None and r[0] >= 0]
            if not options:
                continue
            target = max(options, key=lambda r: r[2] - r[1])
            out[start:stop] = target[0]
            changed = True
        if not changed:
            break
    return out


def _level_dips(rms_db: np.ndarray, norm_onsets: np.ndarray, start: int, stop: int, min_frames: int) -> list[int]:
    """Frames in [start, stop) where the level dips :data:`DIP_DB` below the maxima on both sides
    (within :data:`DIP_WINDOW` frames) next to an onset peak (>= :data:`DIP_ONSET` x the median flux, within
    3 frames): a repeated note's re-attack, not a tremolo."""
    level = rms_db[start:stop]
    cuts: list[int] = []
    for k in range(min_frames, level.size - min_frames):
        if level[k] != level[max(0, k - 2) : k + 3].min():
            continue
        left = level[max(0, k - DIP_WINDOW) : k].max()
        right = level[k + 1 : k + 1 + DIP_WINDOW].max()
        attack = norm_onsets[max(0, start + k - 3) : start + k + 4].max(initial=0.0) >= DIP_ONSET
        if min(left, right) - level[k] >= DIP_DB and attack and (not cuts or k - cuts[-1] >= min_frames):
            cuts.append(k)
    return [start + k for k in cuts]


def _snap_onset(frame: int, norm_onsets: np.ndarray) -> float:
    """A note's onset time: the strongest onset-envelope peak from 100 ms before to 30 ms after the pitch
    change if it is clear (>= :data:`SNAP_STRENGTH` x the median), else the pitch change minus
    :data:`ONSET_LAG` (pitch trackers switch late on soft attacks)."""
    lo = max(1, frame - round(0.10 / FRAME_TIME))
    hi = min(norm_onsets.size - 1, frame + round(0.03 / FRAME_TIME))
    if hi > lo:
        k = lo + int(np.argmax(norm_onsets[lo : hi + 1]))
        if norm_onsets[k] >= SNAP_STRENGTH:
            return k * FRAME_TIME
    return max(0.0, frame * FRAME_TIME - ONSET_LAG)


def segment_notes(track: PitchTrack, onsets: np.ndarray, *, min_note: float = 0.06) -> list[TranscribedNote]:
    """Turn a pitch track and onset envelope (same frames) into notes (see the module doc)."""
    min_frames = max(2, round(min_note / FRAME_TIME))
    midi = track.midi
    raw = np.where(np.isnan(midi), -1, np.round(np.nan_to_num(midi, nan=0.0))).astype(int)
    rounded = _smooth_pitches(raw, min_frames)
    env = np.zeros(rounded.size) if onsets.size == 0 else np.resize(onsets, rounded.size)
    positive = env[env > 0]
    norm = env / (float(np.median(positive)) if positive.size else 1.0)
    top_db = float(track.rms_db.max()) if track.rms_db.size else 0.0
    notes: list[TranscribedNote] = []
    for value, start, stop in _runs(rounded):
        if value < 0 or stop - start < min_frames or np.mean(raw[start:stop] == value) < MIN_STABLE:
            continue  # unvoiced, too short, or a wandering pitch (noise) that smoothing glued together
        bounds = [start, *_level_dips(track.rms_db, norm, start, stop, min_frames), stop]
        for a, b in itertools.pairwise(bounds):
            onset = _snap_onset(a, norm)
            if notes and onset < notes[-1].offset:  # the earlier start wins: end the previous note there
                if onset - notes[-1].onset < min_note:
                    continue
                notes[-1] = replace(notes[-1], offset=round(onset, 4))
            if b * FRAME_TIME - onset < min_note:
                continue
            velocity = int(np.clip(round(127 + 2.0 * (float(track.rms_db[a:b].max()) - top_db)), 1, 127))
            notes.append(TranscribedNote(pitch=int(np.clip(value, 0, 127)), onset=round(onset, 4),
                                         offset=round(b * FRAME_TIME, 4), velocity=velocity))
    return notes


def transcribe_prepared(
    mono: np.ndarray,
    *,
    onsets: np.ndarray | None = None,
    method: str = DEFAULT_METHOD,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
    min_note: float = 0.06,
    low: np.ndarray | None = None,
) -> list[TranscribedNote]:
    """:func:`transcribe_melody` on audio already through `tunesmith.analyze.dsp.prepare` (``low``: its
    `tunesmith.analyze.dsp.half_rate` version, when already made)."""
    if is_silent(mono) or mono.size < MIN_PITCH_SECONDS * ANALYSIS_SR:
        return []
    env = onset_envelope(mono) if onsets is None else onsets
    return segment_notes(pitch_track(mono, method=method, fmin=fmin, fmax=fmax, low=low), env, min_note=min_note)


def transcribe_melody(
    y: np.ndarray,
    sr: int,
    *,
    method: str = DEFAULT_METHOD,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
    min_note: float = 0.06,
) -> list[TranscribedNote]:
    """Notes of a monophonic melody in ``y`` (sung, hummed or played), in time order.

    [] for silence or a clip under 0.25 s. ``method`` is "yin" (default, fast) or "pyin" (about as
    accurate, ~10x slower); ``fmin``/``fmax`` bound the pitch
    search (default C2..C7); notes shorter than ``min_note`` seconds are dropped."""
    if not isinstance(min_note, numbers.Real) or not 0.0 < float(min_note) <= 2.0:
        raise ParameterError(f"min_note must be 0..2 seconds, got {min_note!r}", field="min_note")
    return transcribe_prepared(prepare(y, sr), method=method, fmin=fmin, fmax=fmax, min_note=float(min_note))


def notes_to_score(
    notes: list[TranscribedNote],
    tempo: TempoEstimate | float,
    *,
    steps_per_beat: int = 4,
    program: int = 0,
    key: str | None = None,
) -> Score:
    """A one-part monophonic `Score` of ``notes`` on a grid of ``steps_per_beat`` steps per beat.

    Times are converted with the tempo's BPM; with a `TempoEstimate` that has beats, the grid is aligned so
    that the tracked beats fall on whole beats; whole 4/4 bars of leading silence are dropped, so the first
    note lies in the first bar."""
    bpm = tempo.bpm if isinstance(tempo, TempoEstimate) else tempo
    if isinstance(bpm, bool) or not isinstance(bpm, numbers.Real) or not 20.0 <= float(bpm) <= 400.0:
        raise ParameterError(f"tempo must be 20..400 BPM, got {bpm!r}", field="tempo")
    period = 60.0 / float(bpm)
    phase = 0.0
    if isinstance(tempo, TempoEstimate) and tempo.beats:
        phase = float(np.median(np.mod(np.asarray(tempo.beats), period)))
        if phase > period / 2:
            phase -= period
    starts = [(n.onset - phase) / period for n in notes]
    bars = math.floor(min(starts, default=0.0) / BAR_BEATS)  # whole bars of leading silence to drop
    raw = [
        Note(pitch=n.pitch, start=max(0.0, start - bars * BAR_BEATS),
             duration=max((n.offset - n.onset) / period, 1e-3), velocity=n.velocity)
        for n, start in zip(notes, starts, strict=True)
    ]
    part = Part(name="Melody", notes=raw, program=program)
    part = make_monophonic(quantize_part(part, steps_per_beat=steps_per_beat))
    part.notes = [n for n in part.notes if n.duration > 0]
    return Score(parts=[part] if part.notes else [], tempo=round(float(bpm), 3), key=key, title="transcribed melody")
