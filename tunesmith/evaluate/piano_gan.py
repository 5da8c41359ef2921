"""The neural piano (a GAN on the Salamander notes, `train gan --subset piano`) judged as issue 16 asks.

- Pitch: librosa pyin (independent of the model) on the generated note of every recorded (pitch, velocity) and on
  the recording itself: the share within +/-50 cents of the asked pitch. Goal: generated >= real.
- The gaps: the recordings are every third key (A0, C1, D#1 ... C8). Every key between them is generated (at
  ``velocity``): its pyin pitch must be within 30 cents of the asked one (the share that is, over the keys whose
  recorded neighbours pyin can read at all), and its timbre must change smoothly across the keyboard: the spectral
  centroid (in octaves) and the MFCC vector of neighbouring generated keys may not jump further than the
  recorded neighbours (3 keys apart) do around that place (each generated step at the recordings' spacing, from
  a key between them, over the largest recorded step nearby; the report gives the worst ratio and the share that
  passes).

    report = evaluate_piano("runs/piano-gan", "datasets/samples")
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, ParameterError

GAP_CENTS = 30.0
# A step's ratio is noisy: true harmonic tones (the same tone at every key) reach 1.15 at worst with 86 % of steps
# at most 1, one key too bright reaches 3.5 (tests/test_piano.py). The goal leaves that noise room.
CONTINUITY_GOAL = {"worst_ratio": 1.5, "share_passing": 0.8}
HELD_SECONDS = 1.0  # the part of a note its timbre is measured on (after the attack)
N_MFCC = 13


def piano_notes(dataset: Dataset) -> list[Any]:
    """Every recorded piano note of a samples dataset (all splits), by pitch and velocity."""
    notes = [r for split in ("train", "valid", "test") for r in dataset.split(split)
             if r.labels.get("kind") == "piano_note" and r.labels.get("pitch") is not None]
    if not notes:
        raise DatasetError(f"{dataset.root} has no piano notes (tunesmith data build samples --sources salamander)")
    return sorted(notes, key=lambda r: (r.labels["pitch"], r.labels.get("velocity") or 0))


def timbre(y: np.ndarray, sr: int) -> tuple[float, np.ndarray]:
    """(spectral centroid in octaves above 20 Hz, mean MFCC vector without c0) of a note's held part."""
    import librosa

    segment = np.asarray(y, dtype=np.float32)[int(0.1 * sr):int((0.1 + HELD_SECONDS) * sr)]
    if segment.size < 2048 or not np.any(segment):
        raise ParameterError("a note too short or silent to measure its timbre", field="audio")
    centroid = float(np.mean(librosa.feature.spectral_centroid(y=segment, sr=sr, n_fft=2048, hop_length=512)))
    mfcc = librosa.feature.mfcc(y=segment, sr=sr, n_mfcc=N_MFCC + 1, n_fft=2048, hop_length=512)[1:].mean(axis=1)
    return float(np.log2(max(centroid, 20.0) / 20.0)), mfcc


def continuity(generated: dict[int, tuple[float, np.ndarray]],
               recorded: dict[int, tuple[float, np.ndarray]]) -> dict[str, Any]:
    """Timbre steps of the generated keys between the recordings, at the recordings' own spacing: every step from
    an unrecorded key k to k + spacing (centroid in octaves, MFCC distance) over the largest step between recorded
    neighbours near it (the recorded gaps overlapping k - spacing .. k + 2 spacing). A step passes when both ratios
    are at most 1: no generated jump larger than the recordings make there."""
    keys = sorted(recorded)
    spacing = int(np.median(np.diff(keys))) if len(keys) > 1 else 0
    if spacing < 2:
        raise ParameterError("continuity needs recordings with keys between them", field="pitches")
    real = [(a, b, abs(recorded[b][0] - recorded[a][0]), float(np.linalg.norm(recorded[b][1] - recorded[a][1])))
            for a, b in itertools.pairwise(keys)]
    steps = []
    for k in sorted(generated):
        if k in recorded or k + spacing not in generated:
            continue
        near = [r for r in real if r[1] >= k - spacing and r[0] <= k + 2 * spacing]
        if not near:
            continue
        gen_c = abs(generated[k + spacing][0] - generated[k][0])
        gen_m = float(np.linalg.norm(generated[k + spacing][1] - generated[k][1]))
        ratio_c = gen_c / max(max(r[2] for r in near), 1e-3)
        ratio_m = gen_m / max(max(r[3] for r in near), 1e-3)
        steps.append({"from": k, "to": k + spacing, "centroid_ratio": round(ratio_c, 3),
                      "mfcc_ratio": round(ratio_m, 3), "passes": bool(ratio_c <= 1.0 and ratio_m <= 1.0)})
    if not steps:
        raise ParameterError("no generated key between the recordings to compare", field="pitches")
    passing = sum(s["passes"] for s in steps)
    return {"spacing": spacing, "steps": len(steps), "passing": passing,
            "share_passing": round(passing / len(steps), 4),
            "worst_centroid_ratio": max(s["centroid_ratio"] for s in steps),
            "worst_mfcc_ratio": max(s["mfcc_ratio"] for s in steps),
            "median_centroid_ratio": float(np.median([s["centroid_ratio"] for s in steps])),
            "median_mfcc_ratio": float(np.median([s["mfcc_ratio"] for s in steps])), "goal": CONTINUITY_GOAL,
            "meets_goal": bool(max(max(s["centroid_ratio"], s["mfcc_ratio"]) for s in steps)
                               <= CONTINUITY_GOAL["worst_ratio"]
                               and passing / len(steps) >= CONTINUITY_GOAL["share_passing"]),
            "per_step": steps}


def evaluate_piano(checkpoint: str | Path, data: str | Path, *, seed: int = 0, velocity: int = 76,
                   max_notes: int | None = None) -> dict[str, Any]:
    """Every figure of the module docstring as a JSON-ready dict."""
    from tunesmith.compose.notesynth import NoteSynth
    from tunesmith.evaluate.gan import CENTS_TOLERANCE, cents_off, pyin_pitch

    started = time.perf_counter()
    synth = NoteSynth.load(checkpoint)
    instrument = synth.instrument_names[0]
    dataset = Dataset(data)
    notes = piano_notes(dataset)
    if max_notes:
        notes = notes[::max(1, len(notes) // max_notes)]
    sr = int(dataset.info["sr"])
    if sr != synth.sr:
        raise DatasetError(f"{dataset.root} holds audio at {sr} Hz; the model makes {synth.sr} Hz")
    ok_gen = ok_real = 0
    per_split: dict[str, list[int]] = {}
    for row, r in enumerate(notes):
        pitch, vel = int(r.labels["pitch"]), int(r.labels.get("velocity") or 100)
        real = np.asarray(dataset.array("audio", r), dtype=np.float32)
        gen = synth.note(instrument, pitch, velocity=vel, seed=seed + row)
        g = abs(cents_off(pyin_pitch(gen, sr), pitch)) <= CENTS_TOLERANCE
        ok_gen += g
        ok_real += abs(cents_off(pyin_pitch(real, sr), pitch)) <= CENTS_TOLERANCE
        per_split.setdefault(r.split, []).append(int(g))
    recorded_pitches = sorted({int(r.labels["pitch"]) for r in notes})
    layer = min({int(r.labels.get("velocity") or 100) for r in notes}, key=lambda v: abs(v - velocity))
    recorded = {int(r.labels["pitch"]): timbre(dataset.array("audio", r), sr) for r in notes
                if int(r.labels.get("velocity") or 100) == layer}
    keys = range(recorded_pitches[0], recorded_pitches[-1] + 1)
    generated, between = {}, []
    for key in keys:
        y = synth.note(instrument, key, velocity=layer, seed=seed + 1000 + key)
        generated[key] = timbre(y, sr)
        if key not in recorded:
            between.append(abs(cents_off(pyin_pitch(y, sr), key)) <= GAP_CENTS)
    real_close = [abs(cents_off(pyin_pitch(dataset.array("audio", r), sr), int(r.labels["pitch"]))) <= GAP_CENTS
                  for r in notes if int(r.labels.get("velocity") or 100) == layer]
    n = len(notes)
    report = {
        "checkpoint": str(checkpoint), "data": str(dataset.root), "instrument": instrument,
        "pitch_pyin": {"notes": n, "generated": round(ok_gen / n, 4), "real": round(ok_real / n, 4),
                       "tolerance_cents": CENTS_TOLERANCE, "meets_goal": bool(ok_gen >= ok_real),
                       "generated_by_split": {s: round(float(np.mean(v)), 4) for s, v in per_split.items()}},
        "between_keys": {"keys": len(between), "within_cents": GAP_CENTS, "velocity": layer,
                         "share_in_tune": round(float(np.mean(between)) if between else 0.0, 4),
                         "recorded_share_in_tune": round(float(np.mean(real_close)), 4)},
        "continuity": continuity(generated, recorded),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return report
