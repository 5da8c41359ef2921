"""Evaluation of the DSP analyzer (key, tempo, melody transcription) with mir_eval on audio we render ourselves.

* Key and tempo: held-out (split ``test``) chorales, each transposed by a random -5..+6 semitones and rendered
  with FluidSynth at a random tempo of 60-160 quarter-note BPM on one random instrument (piano, organ, strings,
  choir). Truth: the transposed notated key and the rendered tempo. Key: `mir_eval.key.weighted_score`
  (1 right, 0.5 fifth, 0.3 relative, 0.2 parallel). Tempo: Acc1 = share of estimates within 4% of the truth
  (a direct check; `mir_eval.tempo.detection` scores a two-tempo P-score, not Acc1) and Acc2, which also
  accepts x2, x1/2, x3, x1/3. There are fewer test chorales than pieces asked for, so a chorale can be
  rendered more than once, each time in another key, tempo and instrument.
* Transcription: held-out folk melodies (first ``clip_seconds``), rendered monophonically at a random 70-140
  BPM on flute, violin and piano in turn; each note sounds ``articulation`` of its written length (0.9: a
  player's detached articulation; 1.0 legato, where a repeated note has no audible re-attack on a flute).
  `mir_eval.transcription.precision_recall_f1_overlap` with a 50 ms onset tolerance and offsets ignored.

Every key profile and both chroma front ends are scored on the same renders, so the report says which wins.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.analyze import dsp
from tunesmith.analyze import transcribe as tr
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, DependencyError, ParameterError
from tunesmith.plotting import pyplot, save_figure
from tunesmith.progress import progress
from tunesmith.symbolic.keys import key_name, parse_key
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.tokens import decode
from tunesmith.symbolic.transform import transpose

GOALS = {"key_weighted_score": 0.80, "tempo_acc1": 0.90, "transcription_f1": 0.80}
RENDER_SR = dsp.ANALYSIS_SR
CHORALE_PROGRAMS = {"piano": 0, "organ": 19, "strings": 48, "choir": 52}
MELODY_PROGRAMS = {"flute": 73, "violin": 40, "piano": 0}
CHORALE_TEMPI = (60.0, 160.0)
MELODY_TEMPI = (70.0, 140.0)
TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def _mir_eval() -> Any:
    try:
        import mir_eval
    except ImportError as exc:
        raise DependencyError("the analyzer evaluation needs mir_eval: pip install 'mir_eval>=0.7'") from exc
    return mir_eval


def _test_split(path: str | Path, kind: str) -> tuple[Dataset, list]:
    data = Dataset(path)
    if data.kind != kind:
        raise DatasetError(f"{path} is a {data.kind!r} dataset, expected {kind!r}")
    records = data.split("test")
    if not records:
        raise DatasetError(f"{path} has no 'test' items to evaluate on")
    return data, records


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"mean": None, "n": 0}
    return {"mean": round(float(arr.mean()), 4), "median": round(float(np.median(arr)), 4),
            "p10": round(float(np.percentile(arr, 10)), 4), "min": round(float(arr.min()), 4), "n": int(arr.size)}


def _key_category(reference: str, estimate: str) -> str:
    ref_tonic, ref_mode = parse_key(reference)
    est_tonic, est_mode = parse_key(estimate)
    shift = (est_tonic - ref_tonic) % 12
    if ref_mode == est_mode:
        return "correct" if shift == 0 else "fifth" if shift in (5, 7) else "other"
    if shift == 0:
        return "parallel"
    relative = 9 if ref_mode == "major" else 3
    return "relative" if shift == relative else "other"


def tempo_hit(estimate: float | None, truth: float, *, factors: tuple[float, ...] = (1.0,)) -> bool:
    """True when ``estimate`` is within 4% of ``truth`` times one of ``factors``."""
    return estimate is not None and any(abs(estimate - f * truth) <= TEMPO_TOLERANCE * f * truth for f in factors)


# ------------------------------------------------------------------------------------------- chorales


def _evaluate_chorales(path: str | Path, pieces: int, rng: np.random.Generator, *,
                       analyzer: Any | None = None) -> dict[str, Any]:
    mir_eval = _mir_eval()
    data, records = _test_split(path, "chorales")
    renderer = get_renderer(RENDER_SR)
    combos = [(c, p) for c in dsp.CHROMA_METHODS for p in dsp.PROFILES]
    scores: dict[tuple[str, str], list[float]] = {combo: [] for combo in combos}
    if analyzer is not None:  # the CNN as a key front end: its pitch head's pitch classes, read by each profile
        scores.update({("cnn", p): [] for p in dsp.PROFILES})
    categories: dict[str, int] = {}
    tempo_rows: list[dict[str, Any]] = []
    for i in progress(range(pieces), total=pieces, desc="chorales: key and tempo", unit="piece"):
        record = records[i % len(records)]
        bpm = round(float(rng.uniform(*CHORALE_TEMPI)), 1)
        instrument = str(rng.choice(list(CHORALE_PROGRAMS)))
        shift = int(rng.integers(-5, 7))
        score = decode(data.array("tokens", record), tempo=bpm, programs=CHORALE_PROGRAMS[instrument])
        truth_key = key_name(*parse_key(record.labels.get("key") or score.key or "C major"))
        score = transpose(replace(score, key=truth_key), shift)
        audio = renderer.render(score)
        mono = dsp.prepare(audio, RENDER_SR)
        frames = dsp.chroma_frames(mono)
        tempo = dsp.tempo_from_onsets(dsp.tempo_envelope(mono, chroma=frames))
        chroma = {method: dsp.chroma_vector(mono, method=method, frames=frames) for method in dsp.CHROMA_METHODS}
        key_found = None
        for method, profile in combos:
            found = dsp.key_from_chroma(chroma[method], profile=profile)
            estimate = found.name if found else "C major"
            scores[(method, profile)].append(float(mir_eval.key.weighted_score(score.key, estimate)))
            if (method, profile) == (dsp.DEFAULT_CHROMA, dsp.DEFAULT_PROFILE):
                key_found = estimate
                category = _key_category(score.key, estimate)
                categories[category] = categories.get(category, 0) + 1
        if analyzer is not None:
            heard = analyzer.pitch_class_profile(audio, RENDER_SR)
            for profile in dsp.PROFILES:
                found = dsp.key_from_chroma(heard, profile=profile)
                scores[("cnn", profile)].append(float(mir_eval.key.weighted_score(score.key, found.name if found
                                                                                   else "C major")))
        estimate_bpm = tempo.bpm if tempo else None
        tempo_rows.append({"id": record.id, "instrument": instrument, "truth": bpm, "estimate": estimate_bpm,
                           "key": score.key, "key_found": key_found})
    default = (dsp.DEFAULT_CHROMA, dsp.DEFAULT_PROFILE)
    errors = [abs(r["estimate"] - r["truth"]) / r["truth"] for r in tempo_rows if r["estimate"] is not None]
    ratios = [r["estimate"] / r["truth"] for r in tempo_rows if r["estimate"] is not None]
    return {
        "pieces": pieces,
        "distinct_chorales": len({r["id"] for r in tempo_rows}),
        "key": {
            "weighted_score": _summary(scores[default]),
            "chroma": dsp.DEFAULT_CHROMA,
            "profile": dsp.DEFAULT_PROFILE,
            "categories": categories,
            "by_front_end": {f"{m}/{p}": round(float(np.mean(v)), 4) for (m, p), v in scores.items()},
        },
        "tempo": {
            "acc1": round(float(np.mean([tempo_hit(r["estimate"], r["truth"]) for r in tempo_rows])), 4),
            "acc2": round(float(np.mean([tempo_hit(r["estimate"], r["truth"], factors=OCTAVE_FACTORS)
                                         for r in tempo_rows])), 4),
            "relative_error": _summary(errors),
            "ratio_histogram": _ratio_histogram(ratios),
            "check": "direct: |estimate - truth| <= 4% of truth",
        },
        "renders": tempo_rows,
    }


def _ratio_histogram(ratios: list[float]) -> dict[str, int]:
    """How many tempo estimates land near each of 1/3, 1/2, 2/3, 1, 3/2, 2, 3 times the truth (else other)."""
    names = {"1/3": 1 / 3, "1/2": 0.5, "2/3": 2 / 3, "1": 1.0, "3/2": 1.5, "2": 2.0, "3": 3.0}
    out: dict[str, int] = {}
    for ratio in ratios:
        name = next((n for n, f in names.items() if abs(ratio - f) <= TEMPO_TOLERANCE * f), "other")
        out[name] = out.get(name, 0) + 1
    return out


# ---------------------------------------------------------------------------------------------- folk


def _melody_clip(score: Score, clip_seconds: float, articulation: float) -> tuple[Score, np.ndarray, np.ndarray]:
    """The melody's notes starting in the first ``clip_seconds``, shortened to ``articulation`` of their
    length for rendering; returns (score to render, truth intervals in s, truth pitches in Hz)."""
    beat = 60.0 / score.tempo
    notes = [n for n in score.parts[0].notes if n.start * beat < clip_seconds]
    intervals = np.array([[n.start * beat, n.end * beat] for n in notes])
    pitches = 440.0 * 2.0 ** ((np.array([n.pitch for n in notes]) - 69) / 12.0)
    played = [replace(n, duration=n.duration * articulation) for n in notes]
    part = replace(score.parts[0], notes=played)
    return replace(score, parts=[part]), intervals, pitches


def _evaluate_folk(path: str | Path, pieces: int, rng: np.random.Generator, *, method: str, clip_seconds: float,
                   articulation: float, picture: Path | None) -> dict[str, Any]:
    mir_eval = _mir_eval()
    data, records = _test_split(path, "folk")
    renderer = get_renderer(RENDER_SR)
    chosen = rng.choice(len(records), size=min(pieces, len(records)), replace=False)
    rows: list[dict[str, Any]] = []
    seconds = audio_seconds = 0.0
    example = None
    instruments = list(MELODY_PROGRAMS)
    for i, index in enumerate(progress(chosen, total=len(chosen), desc="folk: transcription", unit="melody")):
        record = records[int(index)]
        instrument = instruments[i % len(instruments)]
        bpm = round(float(rng.uniform(*MELODY_TEMPI)), 1)
        score = decode(data.array("tokens", record), tempo=bpm, programs=MELODY_PROGRAMS[instrument])
        played, ref_intervals, ref_pitches = _melody_clip(score, clip_seconds, articulation)
        audio = renderer.render(played)
        started = time.perf_counter()
        notes = tr.transcribe_melody(audio, RENDER_SR, method=method)
        seconds += time.perf_counter() - started
        audio_seconds += audio.shape[-1] / RENDER_SR
        if notes:
            est_intervals = np.array([[n.onset, n.offset] for n in notes])
            est_pitches = 440.0 * 2.0 ** ((np.array([n.pitch for n in notes]) - 69) / 12.0)
            precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
                ref_intervals, ref_pitches, est_intervals, est_pitches, onset_tolerance=0.05, offset_ratio=None)
        else:
            precision = recall = f1 = 0.0
        rows.append({"id": record.id, "instrument": instrument, "bpm": bpm, "notes": len(ref_pitches),
                     "found": len(notes), "precision": precision, "recall": recall, "f1": f1})
        if example is None and instrument == "violin":
            example = (record.id, instrument, ref_intervals, ref_pitches, notes, f1)
    if picture is not None and example is not None:
        plot_transcription(picture, *example)
    f1s = [r["f1"] for r in rows]
    return {
        "pieces": len(rows),
        "method": method,
        "articulation": articulation,
        "clip_seconds": clip_seconds,
        "f1": _summary(f1s),
        "precision": _summary([r["precision"] for r in rows]),
        "recall": _summary([r["recall"] for r in rows]),
        "f1_by_instrument": {name: round(float(np.mean([r["f1"] for r in rows if r["instrument"] == name])), 4)
                             for name in instruments if any(r["instrument"] == name for r in rows)},
        "melodies": [{"id": r["id"], "instrument": r["instrument"], "bpm": r["bpm"], "notes": r["notes"],
                      "found": r["found"], "f1": round(r["f1"], 4)} for r in rows],
        "realtime_factor": round(audio_seconds / seconds, 1) if seconds else None,
        "picture": str(picture) if picture is not None and example is not None else None,
    }


def plot_transcription(path: Path, piece: str, instrument: str, ref_intervals: np.ndarray, ref_pitches: np.ndarray,
                       notes: list, f1: float) -> Path:
    """A piano roll PNG: the rendered melody's notes (grey) under the transcribed ones (red outlines)."""
    plt = pyplot()

    ref_midi = 69 + 12 * np.log2(ref_pitches / 440.0)
    fig, ax = plt.subplots(figsize=(12, 4), dpi=100)
    for (start, end), pitch in zip(ref_intervals, ref_midi, strict=True):
        ax.add_patch(plt.Rectangle((start, pitch - 0.4), end - start, 0.8, color="#999999", linewidth=0))
    for note in notes:
        ax.add_patch(plt.Rectangle((note.onset, note.pitch - 0.4), note.offset - note.onset, 0.8, fill=False,
                                   edgecolor="#d1495b", linewidth=1.2))
    ax.plot([], [], color="#999999", linewidth=6, label="truth (rendered score)")
    ax.plot([], [], color="#d1495b", linewidth=2, label="transcribed")
    pitches = np.concatenate([ref_midi, [n.pitch for n in notes]]) if notes else ref_midi
    ax.set_xlim(0, float(ref_intervals[:, 1].max()) + 0.5)
    ax.set_ylim(float(pitches.min()) - 2, float(pitches.max()) + 2)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"{piece} on {instrument}: note F = {f1:.2f} (onset within 50 ms)")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- entry


def evaluate_dsp(
    chorales_dir: str | Path,
    folk_dir: str | Path,
    *,
    pieces: int = 50,
    seed: int = 0,
    method: str = tr.DEFAULT_METHOD,
    articulation: float = 0.9,
    clip_seconds: float = 30.0,
    picture: str | Path | None = None,
    analyzer: Any | None = None,
) -> dict[str, Any]:
    """Key, tempo and transcription figures on ``pieces`` rendered chorales and ``pieces`` folk melodies.

    ``picture`` writes a truth-vs-transcription piano roll PNG of one melody. With ``analyzer`` (a loaded
    :class:`~tunesmith.analyze.analyzer.Analyzer`) the CNN's pitch-class profile is scored as a key front end
    too. Returns per-metric means and distributions, each goal and whether it is met."""
    if isinstance(pieces, bool) or not isinstance(pieces, int) or not 1 <= pieces <= 10_000:
        raise ParameterError(f"pieces must be an integer 1..10000, got {pieces!r}", field="pieces")
    if not isinstance(articulation, int | float) or not 0.3 <= articulation <= 1.0:
        raise ParameterError(f"articulation must be 0.3..1.0, got {articulation!r}", field="articulation")
    rng = np.random.default_rng(seed)
    chorales = _evaluate_chorales(chorales_dir, pieces, rng, analyzer=analyzer)
    folk = _evaluate_folk(folk_dir, pieces, rng, method=method, clip_seconds=clip_seconds,
                          articulation=articulation, picture=Path(picture) if picture is not None else None)
    figures = {"key_weighted_score": chorales["key"]["weighted_score"]["mean"],
               "tempo_acc1": chorales["tempo"]["acc1"], "transcription_f1": folk["f1"]["mean"]}
    return {
        "seed": seed,
        "goals": {name: {"goal": goal, "value": figures[name],
                         "met": figures[name] is not None and figures[name] >= goal}
                  for name, goal in GOALS.items()},
        "chorales": chorales,
        "folk": folk,
    }
