"""Checkpoint I/O, the one low module every layer uses: where shipped weights live, how a model name or a run
directory resolves to a checkpoint, the JSON card, safetensors weights, resume state, and the dataset a card names.

``NAME.safetensors`` holds the state dict; ``NAME.json`` holds the architecture and its keyword arguments
plus whatever the trainer adds (data, metrics, the training command). Optimizer state for ``--resume``
is saved with ``torch.save`` and read back with ``weights_only=True``; we never unpickle foreign files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.errors import DatasetError, InputFileError, ParameterError
from tunesmith.files import sha256_file

if TYPE_CHECKING:  # torch is imported where weights are read or written, so that a card lookup does not load it
    import torch
    from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]  # where the shipped cards' relative dataset paths were built
WEIGHTS_DIR = Path(os.environ.get("TUNESMITH_WEIGHTS", REPO_ROOT / "weights"))


def save_checkpoint(directory: Path, name: str, model: nn.Module, card: dict[str, Any]) -> Path:
    """Write NAME.safetensors and NAME.json atomically into ``directory``; returns the weights path."""
    from safetensors.torch import save_file

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
    from safetensors.torch import load_file

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
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFileError(f"cannot resume: {path} not found (train without --resume first)")
    import torch

    return torch.load(path, weights_only=True)

def resolve_checkpoint(name_or_path: str | Path) -> tuple[Path, str]:
    """(directory, checkpoint name) for a shipped model name ("chorale") or a run directory / card path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return path.parent, path.stem
    if path.is_dir():
        for name in ("best", "latest"):
            if (path / f"{name}.json").is_file():
                return path, name
        raise ParameterError(f"{path} holds no checkpoint (best.json or latest.json)", field="checkpoint")
    if (WEIGHTS_DIR / f"{name_or_path}.json").is_file():
        return WEIGHTS_DIR, str(name_or_path)
    shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.json"))
    raise ParameterError(f"unknown model {str(name_or_path)!r}; shipped models: {', '.join(shipped) or 'none'}",
                         field="model")


def dataset_of(card: Mapping[str, Any]) -> Path:
    """The built dataset a model card says the model learned from (``card["data"]["path"]``).

    An absolute path is taken as it is; a relative one is looked up in the working directory, then in the
    repository root (where the shipped cards' datasets are built). DatasetError, naming the path and the card's
    build command, when the card names no dataset or no directory with a dataset.json is found."""
    data = card.get("data") or {}
    model = card.get("id") or "?"
    if not data.get("path"):
        raise DatasetError(f"the card of model {model!r} names no training dataset")
    path = Path(str(data["path"])).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if (candidate / "dataset.json").is_file():
            return candidate
    raise DatasetError(f"the training data of model {model!r} ({path}) is not on this machine; build it with "
                       f"{data.get('build_command') or 'tunesmith data build'}")
