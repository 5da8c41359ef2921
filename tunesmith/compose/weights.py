"""Where shipped weights live and how a model name or a run directory resolves to a checkpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import DatasetError, ParameterError

REPO_ROOT = Path(__file__).resolve().parents[2]  # where the shipped cards' relative dataset paths were built
WEIGHTS_DIR = Path(os.environ.get("TUNESMITH_WEIGHTS", REPO_ROOT / "weights"))


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
