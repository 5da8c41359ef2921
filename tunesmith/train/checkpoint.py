"""Checkpoints: weights as safetensors beside a JSON card that rebuilds the model.

``NAME.safetensors`` holds the state dict; ``NAME.json`` holds the architecture and its keyword arguments
plus whatever the trainer adds (data, metrics, the training command). Optimizer state for ``--resume``
is saved with ``torch.save`` and read back with ``weights_only=True``; we never unpickle foreign files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tunesmith.errors import InputFileError
from tunesmith.files import sha256_file


def save_checkpoint(directory: Path, name: str, model: nn.Module, card: dict[str, Any]) -> Path:
    """Write NAME.safetensors and NAME.json atomically into ``directory``; returns the weights path."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # tied weights are stored once; load_state_dict(strict=False) restores the tie
    unique: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in state.items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        unique[key] = tensor
    tmp = weights.with_suffix(".tmp")
    save_file(unique, str(tmp))
    os.replace(tmp, weights)
    card = {**card, "weights_sha256": sha256_file(weights)}
    card_tmp = directory / f".{name}.json.tmp"
    card_tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    os.replace(card_tmp, directory / f"{name}.json")
    return weights


def load_card(directory: Path, name: str) -> dict[str, Any]:
    path = directory / f"{name}.json"
    if not path.is_file():
        raise InputFileError(f"no checkpoint card {path}")
    return json.loads(path.read_text())


def load_weights(directory: Path, name: str, model: nn.Module) -> nn.Module:
    """Load NAME.safetensors into ``model`` (tied weights may be absent from the file)."""
    path = directory / f"{name}.safetensors"
    if not path.is_file():
        raise InputFileError(f"no checkpoint weights {path}")
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("head.weight")}
    if set(missing) - tied or unexpected:
        raise InputFileError(f"{path} does not fit the model: missing {sorted(missing)}, unexpected {unexpected}")
    return model


def save_training_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFileError(f"cannot resume: {path} not found (train without --resume first)")
    return torch.load(path, weights_only=True)
