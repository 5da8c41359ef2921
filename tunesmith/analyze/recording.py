"""The whole-recording measurement: duration, loudness, tempo, key and the melody, from the DSP primitives of
:mod:`tunesmith.analyze.dsp` and the transcription of :mod:`tunesmith.analyze.transcribe` (which builds on dsp)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tunesmith.analyze.dsp import (
    ANALYSIS_SR,
    DEFAULT_CHROMA,
    DEFAULT_PROFILE,
    MAX_SECONDS,
    MIN_PITCH_SECONDS,
    MIN_TEMPO_SECONDS,
    KeyEstimate,
    TempoEstimate,
    _half_rate_spectra,
    check_input,
    chroma_vector,
    half_rate,
    is_silent,
    key_from_chroma,
    loudness,
    one_blas_thread,
    prepare,
    tempo_envelope,
    tempo_from_onsets,
)
from tunesmith.analyze.transcribe import METHODS, transcribe_prepared
from tunesmith.errors import ParameterError


@dataclass(frozen=True)
class DspAnalysis:
    """Everything :func:`analyze_dsp` measures. ``None`` where the clip holds nothing to measure
    (silence, or too short for a tempo); ``loudness_lufs`` is None for silence."""

    duration: float
    loudness_lufs: float | None
    tempo: TempoEstimate | None
    key: KeyEstimate | None
    notes: list[Any] | None = None  # list[TranscribedNote] when the melody was transcribed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (beats and notes as lists)."""
        out = asdict(self)
        if self.tempo is not None:
            out["tempo"]["beats"] = [round(b, 4) for b in self.tempo.beats]
        return out


def analyze_dsp(
    y: np.ndarray,
    sr: int,
    *,
    melody: bool = True,
    max_seconds: float | None = MAX_SECONDS,
    profile: str = DEFAULT_PROFILE,
    chroma: str = DEFAULT_CHROMA,
    melody_method: str = "yin",
) -> DspAnalysis:
    """Duration, loudness, tempo, key and (with ``melody``) the transcribed melody of ``y``.

    ``profile``/``chroma`` choose the key method, ``melody_method`` the pitch tracker ("yin" or "pyin").

    Raises ParameterError for unusable input (not a float array, NaN/inf, a bad rate, longer than
    ``max_seconds``); silence and very short clips give a result with None where nothing was measurable."""
    if melody_method not in METHODS:
        raise ParameterError(f"melody_method must be one of {METHODS}, got {melody_method!r}", field="melody_method")
    arr, rate = check_input(y, sr, max_seconds=max_seconds)
    with one_blas_thread():
        return _analyze_checked(arr, rate, melody=melody, profile=profile, chroma=chroma, melody_method=melody_method)


def _analyze_checked(arr: np.ndarray, rate: int, *, melody: bool, profile: str, chroma: str,
                     melody_method: str) -> DspAnalysis:
    """:func:`analyze_dsp` on checked input: one resampling to each rate, one STFT for chroma and tuning."""
    mono = prepare(arr, rate, max_seconds=None)
    lufs = loudness(arr, rate)
    result_lufs = round(lufs, 2) if math.isfinite(lufs) else None
    if is_silent(mono) or mono.size < MIN_PITCH_SECONDS * ANALYSIS_SR:
        return DspAnalysis(duration=arr.shape[-1] / rate, loudness_lufs=result_lufs, tempo=None, key=None,
                           notes=[] if melody else None)
    low = half_rate(mono)
    frames, tuning = _half_rate_spectra(low, tuning=chroma == "cqt")
    long_enough = mono.size >= MIN_TEMPO_SECONDS * ANALYSIS_SR
    tempo = tempo_from_onsets(tempo_envelope(mono, chroma=frames)) if long_enough else None
    vector = chroma_vector(mono, method=chroma, frames=frames, low=low, tuning=tuning)
    key = key_from_chroma(vector, profile=profile)
    notes = transcribe_prepared(mono, method=melody_method, low=low) if melody else None
    return DspAnalysis(duration=arr.shape[-1] / rate, loudness_lufs=result_lufs, tempo=tempo, key=key, notes=notes)
