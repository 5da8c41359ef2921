"""The neural drum kit judged by the independent drum-class classifier (:mod:`tunesmith.evaluate.drum_classifier`).

For every (kit, drum key, velocity) of the training hits the generator is asked for that hit; the classifier,
trained on the real training hits only, names its class. Issue 16's goal: generated hits are recognised at least
0.9 times as often as real hits of the kits held out of training (the classifier's test accuracy).

    report = evaluate_drum_gan("runs/drums-gan", "datasets/samples")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import ParameterError
from tunesmith.evaluate.drum_classifier import (
    DRUM_CLASSES,
    SR,
    _audio,
    _samples,
    drum_hits,
    hit_features,
)
from tunesmith.evaluate.drum_classifier import DrumClassifier as _Classifier

GOAL_RATIO = 0.9
SECONDS_OF_HIT = 2.0  # the drum-hit window of the samples dataset


def evaluate_drum_gan(checkpoint: str | Path, data: str | Path, *, seed: int = 0,
                      per_condition: int = 1) -> dict[str, Any]:
    """Generated-hit accuracy beside real held-out accuracy, per class, with the ratio and the goal."""
    from tunesmith.compose.notesynth import NoteSynth

    started = time.perf_counter()
    dataset = _samples(data)
    synth = NoteSynth.load(checkpoint)
    if (synth.card.get("data") or {}).get("subset") != "drums":
        raise ParameterError(f"{checkpoint} is not a drum kit GAN (train gan --subset drums)", field="checkpoint")
    train, test = drum_hits(dataset, "train"), drum_hits(dataset, "test")
    classifier = _Classifier.fit_features(hit_features([_audio(dataset, r) for r in train]),
                                          [r.labels["drum_class"] for r in train], seed=seed)
    kits = {i["kit"]: i["name"] for i in synth.card["instruments"] if i.get("kit")}
    played = [r for r in train if r.labels["kit"] in kits and r.labels.get("gm_note")]
    conditions = sorted({(kits[r.labels["kit"]], int(r.labels["gm_note"]), int(r.labels.get("velocity") or 100),
                          r.labels["drum_class"]) for r in played})
    generated, asked = [], []
    for index, (kit, key, velocity, drum_class) in enumerate(conditions):
        for repeat in range(per_condition):
            y = synth.note(kit, key, velocity=velocity, seed=seed + index * per_condition + repeat)
            generated.append(np.asarray(y, dtype=np.float32) if synth.sr == SR else _resample(y, synth.sr))
            asked.append(drum_class)
    predicted = classifier.predict_features(hit_features(generated))
    real = classifier.predict_features(hit_features([_audio(dataset, r) for r in test]))
    truth = [r.labels["drum_class"] for r in test]
    generated_accuracy = float(np.mean([p == a for p, a in zip(predicted, asked, strict=True)]))
    real_accuracy = float(np.mean([p == t for p, t in zip(real, truth, strict=True)]))
    ratio = generated_accuracy / real_accuracy if real_accuracy else float("nan")
    return {
        "checkpoint": str(checkpoint), "data": str(dataset.root), "generated_hits": len(generated),
        "generated_accuracy": round(generated_accuracy, 4), "real_heldout_accuracy": round(real_accuracy, 4),
        "heldout_kits": sorted({r.labels["kit"] for r in test}), "ratio": round(ratio, 4), "goal_ratio": GOAL_RATIO,
        "meets_goal": bool(ratio >= GOAL_RATIO),
        "per_class_generated": {c: round(float(np.mean([p == a for p, a in zip(predicted, asked, strict=True)
                                                        if a == c])), 4) for c in DRUM_CLASSES if c in asked},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _resample(y: np.ndarray, sr: int) -> np.ndarray:
    from tunesmith.audio.dsp import resample

    return resample(np.asarray(y, dtype=np.float32), orig_sr=sr, target_sr=SR)


NDB_BINS_DRUMS = 20  # ~140 held-out hits: 50 bins would leave a handful of hits per bin


def evaluate_drum_distribution(checkpoint: str | Path, data: str | Path, *, seed: int = 0,
                               analyzer: str = "analyzer") -> dict[str, Any]:
    """FAD, NDB and diversity of generated hits against the real hits of the held-out kits (the test split), in
    the analyzer's embedding, as `evaluate gan` does for `notes`.

    For every held-out hit the generator plays the same drum key (the nearest key it learned of that class) at the
    same velocity on a training kit (kits taken in turn); the baseline is the training hit of the same key
    and kit class nearest in velocity (kits in turn). FAD ratio = FAD(generated, held-out) / FAD(training hits,
    held-out) at equal counts; NDB: k-means bins of all training hits, generated vs held-out shares; diversity:
    mean pairwise embedding distance within a drum class, generated over held-out."""
    from tunesmith.compose.notesynth import NoteSynth
    from tunesmith.evaluate.gan import _load_analyzer, frechet_distance, kmeans, mean_pairwise_distance, ndb

    started = time.perf_counter()
    dataset = _samples(data)
    synth = NoteSynth.load(checkpoint)
    model, why = _load_analyzer(analyzer)
    if model is None:
        raise ParameterError(why or "no analyzer", field="analyzer")
    train = [r for r in drum_hits(dataset, "train") if r.labels.get("gm_note")]
    test = [r for r in drum_hits(dataset, "test") if r.labels.get("gm_note")]
    kits = {i["kit"]: i["name"] for i in synth.card["instruments"] if i.get("kit")}
    train = [r for r in train if r.labels["kit"] in kits]
    learned = sorted({int(r.labels["gm_note"]) for r in train})
    by_class: dict[str, list[int]] = {}
    for r in train:
        by_class.setdefault(r.labels["drum_class"], []).append(int(r.labels["gm_note"]))
    kit_names = sorted(kits.values())
    generated, baseline = [], []
    for row, r in enumerate(test):
        keys = sorted(set(by_class.get(r.labels["drum_class"], learned)))
        key = min(keys, key=lambda k: (abs(k - int(r.labels["gm_note"])), k))
        velocity = int(r.labels.get("velocity") or 100)
        y = synth.note(kit_names[row % len(kit_names)], key, velocity=velocity, seed=seed + row)
        generated.append(y if synth.sr == SR else _resample(y, synth.sr))
        pool = [t for t in train if int(t.labels["gm_note"]) == key]
        pool_kits = sorted({t.labels["kit"] for t in pool})
        chosen_kit = pool_kits[row % len(pool_kits)]
        baseline.append(min((t for t in pool if t.labels["kit"] == chosen_kit),
                            key=lambda t: abs(int(t.labels.get("velocity") or 100) - velocity)))
    n = round(SECONDS_OF_HIT * SR)

    def embed(hits: list[np.ndarray]) -> np.ndarray:
        batch = np.zeros((len(hits), n), dtype=np.float32)
        for i, y in enumerate(hits):
            batch[i, :min(n, len(y))] = np.asarray(y, dtype=np.float32)[:n]
        return np.concatenate([np.asarray(model.embed(batch[i:i + 64], SR)) for i in range(0, len(batch), 64)])

    emb_gen = embed(generated)
    emb_test = embed([_audio(dataset, r) for r in test])
    emb_base = embed([_audio(dataset, r) for r in baseline])
    emb_train = embed([_audio(dataset, r) for r in train])
    fad_gen, fad_base = frechet_distance(emb_gen, emb_test), frechet_distance(emb_base, emb_test)
    centres = kmeans(emb_train, NDB_BINS_DRUMS, seed=seed)
    ndb_gen, ndb_base = ndb(centres, emb_test, emb_gen), ndb(centres, emb_test, emb_base)
    # the kits it learned: every training hit's condition generated once, against the training hits themselves
    own = [synth.note(kits[r.labels["kit"]], int(r.labels["gm_note"]), velocity=int(r.labels.get("velocity") or 100),
                      seed=seed + 100_000 + i) for i, r in enumerate(train)]
    ndb_own = ndb(centres, emb_train, embed([y if synth.sr == SR else _resample(y, synth.sr) for y in own]))
    classes = [r.labels["drum_class"] for r in test]
    groups = [[i for i, c in enumerate(classes) if c == k] for k in DRUM_CLASSES]
    groups = [g for g in groups if len(g) >= 3]
    div_gen = float(np.nanmean([mean_pairwise_distance(emb_gen[g]) for g in groups]))
    div_real = float(np.nanmean([mean_pairwise_distance(emb_test[g]) for g in groups]))
    return {
        "checkpoint": str(checkpoint), "data": str(dataset.root), "heldout_hits": len(test),
        "heldout_kits": sorted({r.labels["kit"] for r in test}), "embedding": f"analyzer {analyzer}",
        "fad": {"generated_vs_heldout": round(fad_gen, 4), "train_vs_heldout": round(fad_base, 4),
                "ratio": round(fad_gen / fad_base, 4), "goal": 2.0, "meets_goal": bool(fad_gen / fad_base <= 2.0)},
        "ndb": {"generated_vs_heldout": ndb_gen, "train_vs_heldout": ndb_base,
                "generated_vs_training_kits": ndb_own, "goal_share": 0.2,
                "meets_goal_heldout": bool(ndb_gen["share"] <= 0.2),
                "meets_goal_training_kits": bool(ndb_own["share"] <= 0.2)},
        "diversity": {"generated": round(div_gen, 4), "real_heldout": round(div_real, 4),
                      "ratio": round(div_gen / div_real, 4), "within": "drum class", "groups": len(groups),
                      "goal": 0.5, "meets_goal": bool(div_gen / div_real >= 0.5)},
        "seconds": round(time.perf_counter() - started, 1),
    }
