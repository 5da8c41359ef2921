"""The mixture tagger on the held-out split of a `mixtures` dataset (`tunesmith evaluate analyzer --mixtures DIR`).

The test excerpts are rendered with a soundfont and drum kits no training excerpt heard (the card's data says
which it trained on; this module checks the two do not meet). Figures: the average precision of each family's
presence over one-second segments and their mean (goal 0.8), the same per output frame (128 ms), the instruments'
mean AP, segment F1 at the card's thresholds, and the DSP's key (MIREX weighted score) and tempo (within 4%,
and allowing octave errors) on the same recordings, as `tunesmith.evaluate.analyzer_dsp` measures them on
chorales.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.analyze.mixtures import MixtureTagger
from tunesmith.data.corpora.mixtures import presence
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.progress import progress
from tunesmith.train.mixtures import segment_scores, segments

GOAL_MAP = 0.8


def held_out_check(card: dict[str, Any], data: Dataset) -> dict[str, Any]:
    """What the test split was rendered with, and that training never heard it (DatasetError if it did)."""
    test = data.split("test")
    fonts = sorted({r.labels["soundfont"] for r in test})
    kits = sorted({r.labels["drums"] for r in test} - {"soundfont"})
    trained = card.get("data", {})
    trained_fonts = {f["name"] for f in (trained.get("soundfonts") or {}).get("train", [])}
    trained_kits = set((trained.get("kits") or {}).get("train", [])) | set((trained.get("kits") or {}).get("valid", []))
    overlap = (set(fonts) & trained_fonts) | (set(kits) & trained_kits)
    if overlap:
        raise DatasetError(f"the test excerpts of {data.root} use {sorted(overlap)}, which the model trained on")
    return {"test_soundfonts": fonts, "test_kits": kits, "train_soundfonts": sorted(trained_fonts),
            "train_kits": sorted(trained_kits)}


def evaluate_mixtures(checkpoint: str | Path, data_dir: str | Path, *, limit: int | None = None,
                      dsp: bool = True) -> dict[str, Any]:
    """The figures above for the tagger ``checkpoint`` on the test split of ``data_dir``."""
    tagger = MixtureTagger.load(checkpoint)
    data = Dataset(data_dir)
    if data.kind != "mixtures":
        raise DatasetError(f"{data_dir} is a {data.kind!r} dataset, not 'mixtures'")
    records = data.split("test")[:limit] if limit else data.split("test")
    if not records:
        raise DatasetError(f"{data_dir} has no test excerpts")
    report: dict[str, Any] = {"model": tagger.name, "data": str(data_dir), "excerpts": len(records),
                              "held_out": held_out_check(tagger.card, data)}
    sr = int(data.info["sr"])
    hop = tagger.hop_seconds
    per_segment = max(1, round(float(tagger.card.get("segment_seconds", 1.0)) / hop))
    probs: dict[str, list[np.ndarray]] = {}
    truth: dict[str, list[np.ndarray]] = {}
    heads = {"families": tagger.families, "instruments": tagger.instruments}
    key_rows, tempo_rows = [], []
    for record in progress(records, desc="mixtures: test excerpts", unit="excerpt"):
        y = np.asarray(data.array("audio", record), dtype=np.float32)
        out = tagger.probabilities(y, sr)
        frames = min(v.shape[1] for v in out.values())
        for head, value in out.items():
            probs.setdefault(head, []).append(value[:, :frames])
            truth.setdefault(head, []).append(presence(record.labels[head], heads[head], frames, hop))
        if dsp:
            key_rows.append(_key_and_tempo(y, sr, record))
    for head, parts in probs.items():
        frames = min(p.shape[1] for p in parts)
        p = np.stack([x[:, :frames] for x in parts])
        t = np.stack([x[:, :frames] for x in truth[head]])
        per, mean = segment_scores(p, t, heads[head], per_segment)
        _, frame_mean = segment_scores(p, t, heads[head], 1)
        limits = np.asarray([tagger.thresholds.get(head, {}).get(n, 0.5) for n in heads[head]])
        ps, ts = segments(p, per_segment), segments(t, per_segment) > 0.5
        f1 = _micro_f1(ps >= limits, ts)
        report[head] = {"segment_map": _round(mean), "frame_map": _round(frame_mean), "segment_micro_f1": round(f1, 4),
                        "ap": {k: _round(v) for k, v in per.items()},
                        "positives": {n: int(ts[:, i].sum()) for i, n in enumerate(heads[head])},
                        "segments": len(ts)}
    report["goal"] = {"families_segment_map": GOAL_MAP,
                      "met": bool(report["families"]["segment_map"] is not None
                                  and report["families"]["segment_map"] >= GOAL_MAP)}
    if dsp and key_rows:
        tempo_rows = [r for r in key_rows if r["tempo_truth"]]
        report["key"] = {"weighted_score": round(float(np.mean([r["key_score"] for r in key_rows])), 4),
                         "correct": round(float(np.mean([r["key_score"] == 1.0 for r in key_rows])), 4)}
        report["tempo"] = {"acc1": round(float(np.mean([r["acc1"] for r in tempo_rows])), 4),
                           "acc2": round(float(np.mean([r["acc2"] for r in tempo_rows])), 4),
                           "check": "|estimate - truth| <= 4% of truth (acc2: or of 1/2, 2, 1/3, 3 times it)"}
    return report


def _key_and_tempo(y: np.ndarray, sr: int, record: Any) -> dict[str, Any]:
    from tunesmith.analyze.recording import analyze_dsp
    from tunesmith.evaluate.analyzer_dsp import OCTAVE_FACTORS, _mir_eval, tempo_hit

    heard = analyze_dsp(y, sr, melody=False)
    truth_key = record.labels.get("key") or "C major"
    estimate = heard.key.name if heard.key else "C major"
    bpm = heard.tempo.bpm if heard.tempo else None
    truth = float(record.labels.get("tempo") or 0)
    return {"key_score": float(_mir_eval().key.weighted_score(truth_key, estimate)), "tempo_truth": truth,
            "acc1": tempo_hit(bpm, truth), "acc2": tempo_hit(bpm, truth, factors=OCTAVE_FACTORS)}


def _micro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    return 2 * tp / max(1.0, float(pred.sum() + truth.sum()))


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short account of :func:`evaluate_mixtures`' report."""
    fam = report["families"]
    held = report["held_out"]
    lines = [f"mixture tagger {report['model']} on {report['excerpts']} held-out excerpts (soundfont "
             f"{', '.join(held['test_soundfonts'])}; kits {', '.join(held['test_kits']) or 'none'}; never in training)",
             f"family presence mAP over 1 s segments: {fam['segment_map']} (goal {GOAL_MAP}); per frame "
             f"{fam['frame_map']}; segment micro-F1 at the card's thresholds {fam['segment_micro_f1']}",
             "per family AP: " + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a"
                                           for k, v in fam["ap"].items())]
    if "instruments" in report:
        lines.append(f"instrument presence mAP over 1 s segments: {report['instruments']['segment_map']}")
    if "key" in report:
        lines.append(f"key (DSP) weighted score {report['key']['weighted_score']}, correct {report['key']['correct']}; "
                     f"tempo acc1 {report['tempo']['acc1']}, acc2 {report['tempo']['acc2']}")
    return lines
