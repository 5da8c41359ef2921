"""Evaluation of the analyzer CNN on held-out clips, through the same facade users call.

On a `notes` dataset: accuracy of instrument family, instrument, exact pitch (MIDI number) and drum type on the
test split, the share of pitch errors that are whole octaves, accuracy per family, and a PNG of the family
confusion matrix. On an `mtt` dataset: macro ROC-AUC and PR-AUC of the tags over the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.analyze.analyzer import Analyzer
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.plotting import pyplot, save_figure
from tunesmith.progress import progress

GOALS = {"family_acc": 0.95, "pitch_acc": 0.90}
BATCH = 64


def evaluate_cnn(checkpoint: str | Path, data: Path, *, split: str = "test", picture: Path | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    """Figures of the analyzer ``checkpoint`` on ``split`` of the dataset at ``data``."""
    analyzer = Analyzer.load(checkpoint)
    dataset = Dataset(data)
    records = dataset.split(split)[:limit] if limit else dataset.split(split)
    if not records:
        raise DatasetError(f"{data} has no '{split}' items to evaluate on")
    sr = int(dataset.info["sr"])
    if dataset.kind == "mtt":
        return _evaluate_tags(analyzer, dataset, records, sr)
    found: dict[str, list] = {"family": [], "instrument": [], "pitch": [], "drum": []}
    for start in progress(range(0, len(records), BATCH), desc="analyzing held-out notes", unit="batch"):
        chunk = records[start:start + BATCH]
        audio = np.stack([np.asarray(dataset.array("audio", r), dtype=np.float32) for r in chunk])
        pred = analyzer.predict(audio, sr)
        found["family"] += pred.family.tolist()
        found["instrument"] += pred.instrument.tolist()
        found["pitch"] += pred.pitch.tolist()
        found["drum"] += pred.drum.tolist()
    truth = {
        "family": [r.labels["family"] for r in records],
        "instrument": [r.labels["instrument"] for r in records],
        "pitch": [r.labels.get("pitch") if not r.labels.get("drum_type") else None for r in records],
        "drum": [r.labels.get("drum_type") for r in records],
    }
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "data": str(data), "split": split,
                              "clips": len(records), "goals": GOALS}
    for head in ("family", "instrument"):
        report[f"{head}_acc"] = _accuracy(found[head], truth[head])
    pitched = [i for i, p in enumerate(truth["pitch"]) if p is not None]
    pitch_hits = [found["pitch"][i] == truth["pitch"][i] for i in pitched]
    report["pitch_acc"] = float(np.mean(pitch_hits)) if pitched else None
    misses = [(found["pitch"][i] - truth["pitch"][i]) for i in pitched if found["pitch"][i] != truth["pitch"][i]]
    report["pitch_errors_octave_share"] = (float(np.mean([m % 12 == 0 for m in misses])) if misses else 0.0)
    report["pitch_within_1_semitone"] = (float(np.mean([abs(found["pitch"][i] - truth["pitch"][i]) <= 1
                                                        for i in pitched])) if pitched else None)
    drums = [i for i, d in enumerate(truth["drum"]) if d]
    report["drum_acc"] = _accuracy([found["drum"][i] for i in drums], [truth["drum"][i] for i in drums])
    families = sorted(set(truth["family"]))
    report["family_acc_by_family"] = {
        f: _accuracy([found["family"][i] for i, t in enumerate(truth["family"]) if t == f], [f] * truth["family"]
                     .count(f)) for f in families}
    report["goals_met"] = {k: report[k] is not None and report[k] >= v for k, v in GOALS.items()}
    if picture is not None:
        report["confusion_png"] = str(plot_confusion(truth["family"], found["family"], families, picture))
    return report


def _accuracy(found: list, truth: list) -> float | None:
    return float(np.mean([f == t for f, t in zip(found, truth, strict=True)])) if truth else None


def _evaluate_tags(analyzer: Analyzer, dataset: Dataset, records: list, sr: int) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    tags = analyzer.labels["tags"]
    if not tags:
        raise DatasetError("this analyzer has no tag head; evaluate it on a 'notes' dataset")
    probs = []
    for record in progress(records, desc="tagging held-out clips", unit="clip"):
        y = np.asarray(dataset.array("audio", record), dtype=np.float32)
        probs.append(analyzer.window_probabilities(y, sr)["tags"])
    truth = np.asarray([r.labels["multi_hot"] for r in records], dtype=np.float32)
    p = np.stack(probs)
    usable = (truth.sum(0) > 0) & (truth.sum(0) < len(truth))
    report: dict[str, Any] = {"clips": len(records), "tags": len(tags), "tags_scored": int(usable.sum())}
    if usable.any():
        report["roc_auc"] = float(roc_auc_score(truth[:, usable], p[:, usable], average="macro"))
        report["pr_auc"] = float(average_precision_score(truth[:, usable], p[:, usable], average="macro"))
    else:
        report["roc_auc"] = report["pr_auc"] = None
        report["note"] = "no tag is both present and absent in this split: AUCs are undefined"
    return report


def plot_confusion(truth: list[str], found: list[str], classes: list[str], png: Path) -> Path:
    """Row-normalised confusion matrix of ``classes`` as a PNG."""
    plt = pyplot()

    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)))
    for t, f in zip(truth, found, strict=True):
        if f in index:
            matrix[index[t], index[f]] += 1
    matrix /= np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j] >= 0.01:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted family")
    ax.set_ylabel("true family")
    ax.set_title("analyzer: instrument family on held-out notes")
    return save_figure(fig, png)
