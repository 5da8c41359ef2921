"""Where shipped weights live and how a model name or a run directory resolves to a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

from tunesmith.errors import ParameterError

WEIGHTS_DIR = Path(os.environ.get("TUNESMITH_WEIGHTS", Path(__file__).resolve().parents[2] / "weights"))


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
