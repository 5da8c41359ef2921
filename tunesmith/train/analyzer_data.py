"""Training data of the analyzer: log-mel features of a built audio dataset and the label of every head.

Two kinds of dataset are understood:
- ``notes`` (the note corpus): single-label heads ``family``, ``instrument``, ``pitch`` (pitched notes only) and
  ``drum`` (drum hits only). Each clip gets ``LEAD_SECONDS`` of silence in front, so random crops put the onset
  anywhere in the first half second, as it would be in a user's recording.
- ``mtt`` (MagnaTagATune): one multi-label ``tags`` head over the dataset's top tags.
Features are computed once (progress bar) and kept in memory as float16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from tunesmith.audio.dsp import resample
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.models.analyzer import FrontEnd
from tunesmith.progress import progress

LEAD_SECONDS = 0.5
IGNORE = -100
N_PITCHES = 128
SINGLE_LABEL_HEADS = ("family", "instrument", "pitch", "drum")


@dataclass
class LabelSpace:
    """The classes of every head, stored on the model card so predictions can be named."""

    kind: str
    families: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    drums: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, dataset: Dataset) -> LabelSpace:
        if dataset.kind == "notes":
            instruments = dataset.info.get("instruments") or []
            if not instruments:
                raise DatasetError(f"{dataset.root} lists no instruments in dataset.json; rebuild it")
            families = sorted({i["family"] for i in instruments})
            drums = sorted({r.labels["drum_type"] for r in dataset.records if r.labels.get("drum_type")})
            return cls("notes", families=families, instruments=[i["name"] for i in instruments], drums=drums)
        if dataset.kind == "mtt":
            return cls("mtt", tags=list(dataset.info["tags"]))
        raise DatasetError(f"the analyzer trains on a 'notes' or 'mtt' dataset; {dataset.root} is "
                           f"'{dataset.kind}'")

    def heads(self) -> dict[str, int]:
        if self.kind == "mtt":
            return {"tags": len(self.tags)}
        return {"family": len(self.families), "instrument": len(self.instruments), "pitch": N_PITCHES,
                "drum": max(1, len(self.drums))}

    def to_dict(self) -> dict[str, list[str] | str]:
        return {"kind": self.kind, "families": self.families, "instruments": self.instruments,
                "drums": self.drums, "tags": self.tags}


class FeatureSet:
    """Features and targets of one split: ``features`` (n, n_mels, frames) float16, ``targets`` per head.

    ``pitch_shifts`` (semitones, notes only) adds a copy of every pitched clip played that much higher or lower
    (resampled, so its pitch label moves with it): the pitch head then sees every pitch on more instruments."""

    def __init__(self, dataset: Dataset, split: str, labels: LabelSpace, frontend: FrontEnd, *,
                 limit: int | None = None, pitch_shifts: tuple[int, ...] = ()) -> None:
        records = dataset.split(split)
        if limit is not None:
            records = records[:limit]
        if not records:
            raise DatasetError(f"{dataset.root} has no '{split}' items")
        sr = int(dataset.info["sr"])
        lead = np.zeros(round(LEAD_SECONDS * sr), dtype=np.float32)
        mels, rows, shifts = [], [], []
        for i, record in enumerate(progress(records, desc=f"features ({split})", unit="clip")):
            y = np.asarray(dataset.array("audio", record), dtype=np.float32)
            if labels.kind == "notes":
                y = np.concatenate([lead, y])
            pitch = record.labels.get("pitch") if labels.kind == "notes" and not record.labels.get("drum_type") \
                else None
            for shift in (0, *pitch_shifts):
                if shift and (pitch is None or not 0 <= pitch + shift < N_PITCHES):
                    continue
                shifted = y if not shift else resample(y, orig_sr=sr * 2 ** (shift / 12), target_sr=sr)
                mels.append(_fit_frames(frontend.features(shifted, sr), len(mels) and mels[0].shape[-1]))
                rows.append(i)
                shifts.append(shift)
        self.records = records
        self.lead_frames = round(LEAD_SECONDS * frontend.sr / frontend.hop_length) if labels.kind == "notes" else 0
        self.features = np.stack(mels)  # (n, n_mels, frames)
        targets = _targets(records, labels)
        self.targets = {k: v[rows] for k, v in targets.items()}
        if "pitch" in self.targets:
            moved = self.targets["pitch"] != IGNORE
            self.targets["pitch"][moved] += np.asarray(shifts)[moved]

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, rng: np.random.Generator, size: int, crop: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A random batch of random time crops of ``crop`` frames."""
        rows = rng.integers(0, len(self), size=size)
        frames = self.features.shape[-1]
        starts = rng.integers(0, max(1, frames - crop + 1), size=size)
        x = np.stack([self.features[r, :, s:s + crop] for r, s in zip(rows, starts, strict=True)])
        return torch.from_numpy(x.astype(np.float32)), {k: torch.from_numpy(v[rows]) for k, v in self.targets.items()}

    def evaluation_batches(self, size: int, crop: int | None) -> list[tuple[slice, torch.Tensor]]:
        """Every clip once, in order: from its onset (notes) or whole (crop None)."""
        start = self.lead_frames // 2
        stop = None if crop is None else start + crop
        return [(slice(i, i + size), torch.from_numpy(self.features[i:i + size, :, start:stop].astype(np.float32)))
                for i in range(0, len(self), size)]


def _fit_frames(mel: np.ndarray, frames: int) -> np.ndarray:
    """float16 features cut or zero-padded (at -1, the floor) to ``frames`` (0: keep as they are)."""
    mel = mel.astype(np.float16)
    if not frames or mel.shape[-1] == frames:
        return mel
    if mel.shape[-1] > frames:
        return mel[:, :frames]
    return np.pad(mel, ((0, 0), (0, frames - mel.shape[-1])), constant_values=-1.0)


def _targets(records: list, labels: LabelSpace) -> dict[str, np.ndarray]:
    if labels.kind == "mtt":
        return {"tags": np.asarray([r.labels["multi_hot"] for r in records], dtype=np.float32)}
    family = {name: i for i, name in enumerate(labels.families)}
    instrument = {name: i for i, name in enumerate(labels.instruments)}
    drum = {name: i for i, name in enumerate(labels.drums)}
    out = {name: np.full(len(records), IGNORE, dtype=np.int64) for name in SINGLE_LABEL_HEADS}
    for i, record in enumerate(records):
        lab = record.labels
        out["family"][i] = family[lab["family"]]
        out["instrument"][i] = instrument[lab["instrument"]]
        if lab.get("drum_type"):
            out["drum"][i] = drum[lab["drum_type"]]
        elif lab.get("pitch") is not None:
            out["pitch"][i] = int(lab["pitch"])
    return out
