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
