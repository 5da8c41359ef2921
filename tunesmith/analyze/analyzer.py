"""The analyzer facade: `Analyzer.load("analyzer").analyze(y, sr)` for the CLI and the service.

The CNN hears short windows: a clip of a note (up to ~2 s) is one window that starts a quarter second
before its onset, as in training; longer audio is cut into half-overlapping windows whose probabilities
are averaged. The DSP half (tempo, key, loudness, melody transcription) lives in `tunesmith.analyze.recording`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.audio.dsp import to_mono, validate_audio
from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.errors import ParameterError
from tunesmith.models.analyzer import AnalyzerCNN, FrontEnd

ONSET_LEAD_SECONDS = 0.25  # silence put before a clip, as the evaluation crops saw it
MIN_SECONDS = 0.05
TOP_TAGS = 5
SILENCE_PEAK = 1e-4  # -80 dBFS: quieter than this, there is nothing to tag
MAX_WINDOWS = 8  # a recording's tags average at most this many windows, spread evenly over it


@dataclass
class Predictions:
    """The CNN's answer for a batch of clips; names are "" (and pitch -1) where a head does not apply."""

    family: np.ndarray  # (B,) str
    instrument: np.ndarray  # (B,) str
    pitch: np.ndarray  # (B,) int MIDI number, -1 for drum hits
    drum: np.ndarray  # (B,) str, "" for pitched notes
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # head -> (B, classes)


class Analyzer:
    """A trained analyzer CNN with its front end and label names."""

    def __init__(self, model: AnalyzerCNN, card: dict[str, Any], *, name: str, mixtures: Any = None) -> None:
        # channels-last convolutions run ~40% faster on this CPU; outputs equal the plain layout's within 1e-5
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.card = card
        self.name = name
        self.frontend = FrontEnd(**card["frontend"])
        self.labels: dict[str, list[str]] = card["labels"]
        self.crop = int(card["crop_frames"])
        self.mixtures = mixtures  # a MixtureTagger: which families sound when (None: not on this machine)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name_or_path: str | Path = "analyzer", *, mixtures: str | Path | bool | None = None) -> Analyzer:
        """A shipped model by id ("analyzer") or a training run directory / card path.

        ``mixtures``: the mixture tagger heard with it (a model id or run directory); None takes the checkpoint's
        companion ``NAME-mixtures`` beside it when there is one (the shipped "analyzer-mixtures"); False none."""
        directory, checkpoint = resolve_checkpoint(name_or_path)
        card = load_card(directory, checkpoint)
        if card.get("family") != "analyzer":
            raise ParameterError(f"{name_or_path} is a {card.get('family')!r} model, not an analyzer",
                                 field="model")
        if card.get("arch") == "mixture-cnn":
            raise ParameterError(f"{name_or_path} is a mixture tagger; give it as the analyzer's mixtures model "
                                 "(--mixtures) beside a note analyzer", field="model")
        model = AnalyzerCNN(**card["kwargs"])
        load_weights(directory, checkpoint, model)
        tagger = None
        if mixtures is None and (directory / f"{checkpoint}-mixtures.json").is_file():
            mixtures = directory / f"{checkpoint}-mixtures.json"
        if mixtures:
            from tunesmith.analyze.mixtures import MixtureTagger

            tagger = MixtureTagger.load(mixtures)
        return cls(model, card, name=str(card.get("id", checkpoint)), mixtures=tagger)

    @property
    def embed_dim(self) -> int:
        return int(self.model.kwargs["embed_dim"])

    # ------------------------------------------------------------------ clips (notes)

    def _clip_features(self, y: np.ndarray, sr: int) -> torch.Tensor:
        batch = _as_batch(y)
        lead = np.zeros((batch.shape[0], round(ONSET_LEAD_SECONDS * sr)), dtype=np.float32)
        mel = self.frontend.features(np.concatenate([lead, batch], axis=1), sr)[..., :self.crop]
        return torch.from_numpy(np.ascontiguousarray(mel))

    def _forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self._lock, torch.inference_mode():
            return self.model(mel)

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The penultimate-layer embedding: (n,) -> (D,), (B, n) -> (B, D), float32."""
        embedding, _ = self._forward(self._clip_features(y, sr))
        out = embedding.numpy().astype(np.float32)
        return out[0] if np.asarray(y).ndim == 1 else out

    def predict(self, y: np.ndarray, sr: int) -> Predictions:
        """Family, instrument, pitch and drum type of each clip of (B, n) (or one clip (n,))."""
        _, logits = self._forward(self._clip_features(y, sr))
        return self._name(logits)

    def _name(self, logits: dict[str, torch.Tensor]) -> Predictions:
        if "family" not in logits:
            raise ParameterError(f"{self.name} was trained on {self.labels['kind']} tags and names no instruments",
                                 field="model")
        probs = {k: torch.softmax(v, dim=-1).numpy() for k, v in logits.items()}
        family = np.asarray(self.labels["families"])[probs["family"].argmax(-1)]
        instrument = np.asarray(self.labels["instruments"])[probs["instrument"].argmax(-1)]
        is_drum = family == "drums"
        pitch = np.where(is_drum, -1, probs["pitch"].argmax(-1))
        drums = np.asarray(self.labels["drums"] or [""])[probs["drum"].argmax(-1)]
        return Predictions(family=family, instrument=instrument, pitch=pitch.astype(int),
                           drum=np.where(is_drum, drums, ""), probs=probs)

    # ------------------------------------------------------------------ any audio

    def window_probabilities(self, y: np.ndarray, sr: int, *, max_windows: int = MAX_WINDOWS) -> dict[str, np.ndarray]:
        """Mean class probabilities of each head over windows of a recording of any length.

        Windows are half-overlapping; a longer recording is heard through ``max_windows`` of them spread
        evenly from start to end (what plays throughout a piece is in most of them; it keeps the analysis
        far faster than real time)."""
        mono = _mono(y)
        if mono.shape[-1] < MIN_SECONDS * sr:
            raise ParameterError(f"audio of {mono.shape[-1] / sr * 1000:.0f} ms is too short to analyze "
                                 f"(at least {MIN_SECONDS * 1000:.0f} ms)", field="y")
        lead = np.zeros(round(ONSET_LEAD_SECONDS * sr), dtype=np.float32)
        mel = self.frontend.features(np.concatenate([lead, mono]), sr)
        if mel.shape[-1] < self.crop:  # a clip shorter than one window: padded with silence to the window the
            # network was trained on (shorter, its pooling ran out of frames: a crash on clips under ~0.5 s)
            mel = np.pad(mel, ((0, 0), (0, self.crop - mel.shape[-1])), constant_values=float(mel.min()))
        hop = max(1, self.crop // 2)
        starts = np.arange(0, max(1, mel.shape[-1] - self.crop + 1), hop)
        if len(starts) > max_windows:
            starts = starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
        windows = torch.from_numpy(np.stack([mel[:, s:s + self.crop] for s in starts]))
        probs: dict[str, list[np.ndarray]] = {}
        for chunk in torch.split(windows, 64):
            _, logits = self._forward(chunk)
            for head, value in logits.items():
                p = torch.sigmoid(value) if head == "tags" else torch.softmax(value, dim=-1)
                probs.setdefault(head, []).append(p.numpy())
        return {head: np.concatenate(parts).mean(0) for head, parts in probs.items()}

    def pitch_class_profile(self, y: np.ndarray, sr: int, *, max_windows: int = 64) -> np.ndarray:
        """The pitch head's mean probabilities folded onto 12 pitch classes (index 0 = C): the CNN's answer to
        "which notes sound here", which a key profile can read like a chroma vector."""
        if "pitch" not in self.model.heads:
            raise ParameterError("this analyzer has no pitch head (trained on tags)", field="analyzer")
        pitch = self.window_probabilities(y, sr, max_windows=max_windows)["pitch"]
        return np.bincount(np.arange(pitch.shape[-1]) % 12, weights=pitch, minlength=12)

    def tag(self, y: np.ndarray, sr: int) -> dict[str, dict[str, float]]:
        """head -> {class name: probability} for the ``TOP_TAGS`` most likely classes of each head."""
        names = {"family": self.labels["families"], "instrument": self.labels["instruments"],
                 "drum": self.labels["drums"], "tags": self.labels["tags"],
                 "pitch": [str(p) for p in range(128)]}
        out = {}
        for head, mean in self.window_probabilities(y, sr).items():
            top = np.argsort(mean)[::-1][:TOP_TAGS]
            out[head] = {names[head][i]: round(float(mean[i]), 4) for i in top}
        return out

    def analyze(self, y: np.ndarray, sr: int, *, melody: bool = True,
                max_seconds: float | None = None) -> dict[str, Any]:
        """Everything the analyzer hears in a recording: duration, loudness, tempo, key, the CNN's tags, the
        instrument families sounding when (``instruments``, with a mixture tagger) and (``melody``) a monophonic
        melody transcription. JSON-ready; tempo and key are None in silence."""
        from tunesmith.analyze.dsp import one_blas_thread  # imported on use: embed/predict need no librosa

        with one_blas_thread():  # small products: a second BLAS thread only spins
            return self._analyze(y, sr, melody=melody, max_seconds=max_seconds)

    def _analyze(self, y: np.ndarray, sr: int, *, melody: bool, max_seconds: float | None) -> dict[str, Any]:
        from tunesmith.analyze.recording import analyze_dsp

        heard = analyze_dsp(y, sr, melody=melody, **({"max_seconds": max_seconds} if max_seconds else {}))
        silent = bool(np.max(np.abs(_mono(y))) < SILENCE_PEAK)
        report: dict[str, Any] = {"duration": round(heard.duration, 3), "sr": sr,
                                  "loudness_lufs": heard.loudness_lufs, "silent": silent}
        if not report["silent"]:
            tags = self.tag(y, sr)
            report["tags"] = tags
            if "family" in tags:
                report["family"] = next(iter(tags["family"]))
                report["instrument"] = next(iter(tags["instrument"]))
            if self.mixtures is not None:
                report["instruments"] = self.mixtures.describe(_mono(y), sr)
        plain = heard.to_dict()
        report["tempo"], report["key"] = plain["tempo"], plain["key"]
        if melody:
            report["melody"] = plain["notes"] or []
        return report


def _as_batch(y: np.ndarray) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ParameterError(f"clips must be (n,) or (batch, n) audio, got shape {arr.shape}", field="y")
    if not np.isfinite(arr).all():
        raise ParameterError("y contains NaN or infinite samples", field="y")
    return arr


def _mono(y: np.ndarray) -> np.ndarray:
    arr = validate_audio(np.asarray(y, dtype=np.float32))
    return to_mono(arr) if arr.ndim == 2 else arr
