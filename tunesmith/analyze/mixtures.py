"""Which instrument families play when in a recording: the mixture tagger's facade.

`MixtureTagger.load("analyzer-mixtures")` (a shipped model, or a training run directory) hears a recording in
windows as long as its training excerpts (each referenced to its own peak, as in training), gives per-frame
probabilities per family, smooths them over about a second and reads them as segments: stretches in which the
same families sound (each family present where its probability passes the threshold chosen on the valid split).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.audio.dsp import resample
from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.errors import ParameterError
from tunesmith.models.analyzer import FrontEnd
from tunesmith.models.mixture import MixtureCNN

SMOOTH_SECONDS = 1.0  # moving average over the frame probabilities before thresholds
MIN_SEGMENT_SECONDS = 2.0  # shorter segments merge into their longer neighbour
DEFAULT_MIXTURES = "analyzer-mixtures"


class MixtureTagger:
    """A trained mixture tagger with its front end, labels and decision thresholds."""

    def __init__(self, model: MixtureCNN, card: dict[str, Any], *, name: str) -> None:
        self.model = model.eval()
        self.card = card
        self.name = name
        self.frontend = FrontEnd(**card["frontend"])
        self.families: list[str] = list(card["labels"]["families"])
        self.instruments: list[str] = list(card["labels"].get("instruments", []))
        self.thresholds: dict[str, dict[str, float]] = card.get("thresholds", {})
        self.window = float(card.get("window_seconds", 8.0))
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_MIXTURES) -> MixtureTagger:
        directory, checkpoint = resolve_checkpoint(name_or_path)
        card = load_card(directory, checkpoint)
        if card.get("arch") != "mixture-cnn":
            raise ParameterError(f"{name_or_path} is not a mixture tagger (arch {card.get('arch')!r})",
                                 field="mixtures")
        model = MixtureCNN(**card["kwargs"])
        load_weights(directory, checkpoint, model)
        return cls(model, card, name=str(card.get("id", checkpoint)))

    @property
    def hop_seconds(self) -> float:
        return self.frontend.hop_length * self.model.time_pool / self.frontend.sr

    def probabilities(self, y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """head -> (classes, frames) presence probabilities of mono ``y``, one frame per :attr:`hop_seconds`."""
        mono = np.asarray(y, dtype=np.float32)
        if mono.ndim != 1 or not mono.size:
            raise ParameterError(f"the mixture tagger hears mono audio (n,), got shape {mono.shape}", field="y")
        if sr != self.frontend.sr:
            mono, sr = resample(mono, orig_sr=sr, target_sr=self.frontend.sr), self.frontend.sr
        step = self.frontend.hop_length * self.model.time_pool  # samples per output frame
        size = max(1, int(self.window * sr) // step) * step
        chunks = [mono[i:i + size] for i in range(0, len(mono), size)]
        floor = max(1, round(0.5 * sr))
        if len(chunks) > 1 and len(chunks[-1]) < size:  # the last window: the recording's final full window
            chunks[-1] = mono[-size:]
        outputs: dict[str, list[np.ndarray]] = {}
        for i, chunk in enumerate(chunks):
            mel = self.frontend.features(np.pad(chunk, (0, max(0, floor - len(chunk)))), sr)
            with self._lock, torch.inference_mode():
                logits = self.model(torch.from_numpy(mel[None]))
            frames = self.model.frames(mel.shape[-1])
            start = i * size
            for head, value in logits.items():
                probs = torch.sigmoid(value[0, :, :frames]).numpy()
                if i == len(chunks) - 1 and len(chunks) > 1 and len(mono) % size:
                    overlap = round((start + size - len(mono)) / step)
                    probs = probs[:, overlap:]
                outputs.setdefault(head, []).append(probs)
        total = max(1, round(len(mono) / sr / self.hop_seconds))
        return {head: np.concatenate(parts, axis=1)[:, :total] for head, parts in outputs.items()}

    def describe(self, y: np.ndarray, sr: int) -> dict[str, Any]:
        """The families heard in ``y`` (confidence: mean probability where present; seconds present) and the
        segments of constant families, JSON-ready."""
        probs = self.probabilities(y, sr)
        fam = smooth(probs["families"], max(1, round(SMOOTH_SECONDS / self.hop_seconds)))
        limits = np.asarray([self.thresholds.get("families", {}).get(f, 0.5) for f in self.families])[:, None]
        present = fam >= limits
        hop = self.hop_seconds
        heard = []
        for i, name in enumerate(self.families):
            if present[i].any():
                heard.append({"family": name, "confidence": round(float(fam[i][present[i]].mean()), 3),
                              "seconds": round(float(present[i].sum() * hop), 2)})
        heard.sort(key=lambda f: (-f["seconds"], -f["confidence"]))
        out: dict[str, Any] = {"model": self.name, "families": heard,
                               "segments": segments_of(present, fam, self.families, hop)}
        if "instruments" in probs and self.instruments:
            inst = smooth(probs["instruments"], max(1, round(SMOOTH_SECONDS / self.hop_seconds)))
            limits = np.asarray([self.thresholds.get("instruments", {}).get(n, 0.5) for n in self.instruments])
            on = inst >= limits[:, None]
            named = [{"instrument": n, "confidence": round(float(inst[i][on[i]].mean()), 3),
                      "seconds": round(float(on[i].sum() * hop), 2)}
                     for i, n in enumerate(self.instruments) if on[i].any()]
            out["instruments"] = sorted(named, key=lambda f: (-f["seconds"], -f["confidence"]))
        return out


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """A centred moving average of width ``width`` frames along the last axis (edges averaged over fewer)."""
    if width <= 1:
        return values
    kernel = np.ones(width) / width
    total = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), -1, values)
    norm = np.convolve(np.ones(values.shape[-1]), kernel, mode="same")
    return total / norm


def segments_of(present: np.ndarray, probs: np.ndarray, names: list[str], hop: float) -> list[dict[str, Any]]:
    """Runs of frames with the same set of present labels (runs shorter than `MIN_SEGMENT_SECONDS` join their
    previous neighbour), each with its families' mean probability."""
    frames = present.shape[1]
    if not frames:
        return []
    runs: list[list[int]] = []  # [start, stop)
    for t in range(frames):
        if runs and (present[:, t] == present[:, runs[-1][0]]).all():
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1])
    shortest = max(1, round(MIN_SEGMENT_SECONDS / hop))
    merged: list[list[int]] = []
    for run in runs:
        if merged and (run[1] - run[0] < shortest or merged[-1][1] - merged[-1][0] < shortest):
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    out = []
    for start, stop in merged:
        mean = probs[:, start:stop].mean(axis=1)
        on = present[:, start:stop].mean(axis=1) >= 0.5
        fams = {names[i]: round(float(mean[i]), 3) for i in np.argsort(-mean) if on[i]}
        out.append({"start": round(start * hop, 2), "end": round(stop * hop, 2), "families": fams})
    return out
