"""An independent style classifier for the song evaluation: which style family does a multi-track song sound like?

It is its own small model, trained on the grooves training split only and never used in generation, so it can
judge the song model: generated songs of a requested style are classified beside the held-out (test split) real
songs, and the song model passes when its accuracy is at least 0.9 of the held-out one.

Features (`song_features`, ~130 numbers per song, all in beats so tempo never enters): per band role (bass,
chords, pad, lead) onsets per bar, mean duration, polyphony, mean pitch and its spread, mean velocity and where
in the beat notes start (12 grid steps a beat: straight sixteenths vs swung triplets); for the drums, hits per bar
of each kind of drum (kick, snare, hi-hat, toms, cymbals, hand drums, shakers, bells and clicks), where in the beat
and where in the bar (eighths) the hits fall, kick and snare apart. Not used: tempo, meter, key and instruments
(GM programs), which a request gives the model, so a generated song would get them for free.

Model: the candidates of `CANDIDATES` are fitted on the training split and the one with the best accuracy on the
valid split is kept (the report says what each scored); the fitted classifier is cached beside the evaluation's
pictures (joblib; it is this evaluation's own file, read back only by it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.progress import progress
from tunesmith.symbolic.score import Note, Score

STEPS_PER_BEAT = 12  # the song grid: sixteenths and triplets
BAR_SLOTS = 12  # eighth-note slots of a bar (up to six quarter beats)
PITCHED_ROLES = ("bass", "chords", "pad", "lead")
FEATURE_VERSION = 1
DRUM_CLASSES: dict[str, tuple[int, ...]] = {
    "kick": (35, 36), "snare": (37, 38, 39, 40), "hihat": (42, 44), "hihat_open": (46,),
    "toms": (41, 43, 45, 47, 48, 50), "crash": (49, 52, 55, 57), "ride": (51, 53, 59),
    "hand_drums": (60, 61, 62, 63, 64, 65, 66, 78, 79), "shakers": (54, 69, 70, 82),
    "bells_clicks": (56, 67, 68, 75, 76, 77, 80, 81),
}
DRUM_CLASS_OF = {key: i for i, keys in enumerate(DRUM_CLASSES.values()) for key in keys}


def _beat_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Share of onsets at each of the 12 grid steps of a beat."""
    hist = np.zeros(STEPS_PER_BEAT)
    for n in notes:
        hist[round(n.start * STEPS_PER_BEAT) % STEPS_PER_BEAT] += 1
    return hist / max(1, len(notes))


def _bar_histogram(notes: Sequence[Note], bar_beats: float) -> np.ndarray:
    """Share of onsets in each eighth-note slot of the bar."""
    hist = np.zeros(BAR_SLOTS)
    for n in notes:
        hist[min(BAR_SLOTS - 1, int((n.start % bar_beats) * 2 + 1e-6))] += 1
    return hist / max(1, len(notes))


def _pitched_features(notes: Sequence[Note], bars: int) -> list[float]:
    if not notes:
        return [0.0] * (7 + STEPS_PER_BEAT)
    pitches = np.array([n.pitch for n in notes], dtype=float)
    starts = np.array([n.start for n in notes])
    chord_size = len(notes) / len(np.unique(np.round(starts * STEPS_PER_BEAT)))
    return [1.0, len(notes) / bars, float(np.mean([n.duration for n in notes])), chord_size, pitches.mean() / 127,
            pitches.std() / 12, float(np.mean([n.velocity for n in notes])) / 127, *_beat_histogram(notes)]


def song_features(score: Score, roles: Sequence[str], bars: int | None = None) -> np.ndarray:
    """The feature vector of a song: ``roles`` gives each part's band role (drums, bass, chords, pad, lead)."""
    bar_beats = score.bar_beats
    bars = max(1, bars or math.ceil(max(score.end_beats, bar_beats) / bar_beats - 1e-9))
    by_role: dict[str, list[Note]] = {}
    for part, role in zip(score.parts, roles, strict=True):
        by_role.setdefault("drums" if part.is_drum else role, []).extend(part.notes)
    drums = by_role.get("drums", [])
    classes = np.zeros(len(DRUM_CLASSES))
    for n in drums:
        if n.pitch in DRUM_CLASS_OF:
            classes[DRUM_CLASS_OF[n.pitch]] += 1
    kick = [n for n in drums if n.pitch in DRUM_CLASSES["kick"]]
    snare = [n for n in drums if n.pitch in DRUM_CLASSES["snare"]]
    velocities = [n.velocity for n in drums] or [0]
    features = [float(bool(drums)), len(drums) / bars, *(classes / bars), *_beat_histogram(drums),
                *_bar_histogram(kick, bar_beats), *_bar_histogram(snare, bar_beats),
                float(np.mean(velocities)) / 127, float(np.std(velocities)) / 127]
    for role in PITCHED_ROLES:
        features.extend(_pitched_features(by_role.get(role, []), bars))
    return np.asarray(features, dtype=np.float32)


def record_roles(song: Any) -> list[str]:
    """Band roles of a grooves record's parts, as the song model sees them (`tunesmith.train.song_data`)."""
    from tunesmith.train.song_data import band_tracks

    return [role for role, _ in band_tracks(song)]


def corpus_features(dataset_dir: str | Path, *, cache: Path | None = None) -> dict[str, Any]:
    """Features, families and splits of every song of a grooves dataset (from ``cache`` when it is there)."""
    from tunesmith.data.corpora.grooves import iter_songs
    from tunesmith.data.dataset import Dataset

    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return {"x": data["x"], "family": data["family"].tolist(), "split": data["split"].tolist(),
                    "id": data["id"].tolist()}
    total = len(Dataset(dataset_dir).records)
    rows, families, splits, ids = [], [], [], []
    for song in progress(iter_songs(dataset_dir), total=total, desc="style features", unit="song"):
        rows.append(song_features(song.score, record_roles(song), bars=math.ceil(song.labels["bars"])))
        families.append(song.labels["family"])
        splits.append(song.record.split)
        ids.append(song.record.id)
    out = {"x": np.stack(rows), "family": families, "split": splits, "id": ids}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=out["x"], family=np.array(families), split=np.array(splits), id=np.array(ids))
    return out


def _candidates(seed: int) -> dict[str, Any]:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "extra_trees": ExtraTreesClassifier(n_estimators=300, min_samples_leaf=1, n_jobs=1, random_state=seed),
    }


# measured on the full grooves corpus (valid / test accuracy): logistic regression 0.954 / 0.969, extra trees
# 0.988 / 0.990, gradient boosting (HistGradientBoosting, 120 rounds) 0.969 / 0.974 but 7 minutes to fit here,
# so it is not a candidate
CANDIDATES = ("logistic_regression", "extra_trees")


class StyleClassifier:
    """A fitted style classifier: ``predict(features)`` -> family ids."""

    def __init__(self, model: Any, name: str, families: list[str], selection: dict[str, float]) -> None:
        self.model, self.name, self.families, self.selection = model, name, families, selection

    @classmethod
    def fit(cls, x: np.ndarray, y: Sequence[str], x_valid: np.ndarray | None = None,
            y_valid: Sequence[str] | None = None, *, candidates: Iterable[str] = CANDIDATES,
            seed: int = 0) -> StyleClassifier:
        """Fit each candidate on (x, y) and keep the best on the valid set (the only one when there is none)."""
        models = _candidates(seed)
        names = list(candidates)
        if x_valid is None or y_valid is None or len(names) == 1:
            model = models[names[0]].fit(x, list(y))
            return cls(model, names[0], sorted(set(y)), {})
        scores, fitted = {}, {}
        for name in progress(names, desc="style classifiers", unit="model"):
            fitted[name] = models[name].fit(x, list(y))
            scores[name] = float(np.mean(fitted[name].predict(x_valid) == np.asarray(y_valid)))
        best = max(names, key=lambda n: scores[n])
        return cls(fitted[best], best, sorted(set(y)), scores)

    def predict(self, x: np.ndarray) -> list[str]:
        return [str(v) for v in self.model.predict(np.atleast_2d(x))]

    def save(self, path: Path) -> Path:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.model, path)
        path.with_suffix(".json").write_text(json.dumps({"name": self.name, "families": self.families,
                                                         "valid_accuracy": self.selection}, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> StyleClassifier:
        import joblib

        meta = json.loads(path.with_suffix(".json").read_text())
        return cls(joblib.load(path), meta["name"], meta["families"], meta["valid_accuracy"])


def train_style_classifier(dataset_dir: str | Path, cache_dir: Path | None = None, *,
                           seed: int = 0) -> tuple[StyleClassifier, dict[str, Any]]:
    """The classifier of a grooves dataset (trained on its train split, chosen on valid; cached in ``cache_dir``
    by the dataset's manifest hash) and the corpus features (for the held-out songs)."""
    from tunesmith.data.dataset import Dataset

    digest = Dataset(dataset_dir).manifest_sha256[:16] or "unknown"
    features = corpus_features(dataset_dir, cache=cache_dir / f"style-features-{digest}-v{FEATURE_VERSION}.npz"
                               if cache_dir else None)
    path = cache_dir / f"style-classifier-{digest}-v{FEATURE_VERSION}-s{seed}.joblib" if cache_dir else None
    if path is not None and path.is_file():
        return StyleClassifier.load(path), features
    split = np.array(features["split"])
    family = np.array(features["family"])
    train, valid = split == "train", split == "valid"
    classifier = StyleClassifier.fit(features["x"][train], family[train],
                                     features["x"][valid] if valid.any() else None,
                                     family[valid] if valid.any() else None, seed=seed)
    if path is not None:
        classifier.save(path)
    return classifier, features


def accuracy_by_family(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per family: songs, correct, accuracy."""
    out: dict[str, dict[str, float]] = {}
    for t, p in zip(truth, predicted, strict=True):
        entry = out.setdefault(t, {"songs": 0, "correct": 0})
        entry["songs"] += 1
        entry["correct"] += t == p
    for entry in out.values():
        entry["accuracy"] = entry["correct"] / entry["songs"]
    return dict(sorted(out.items()))
