"""Pictures: matplotlib without a display, and one way to write a figure to a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg back end (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: float | None = None) -> Path:
    """Lay out ``fig``, write it as a PNG at ``path`` (making its folder), close it and return the path."""
    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **({"dpi": dpi} if dpi else {}))
    pyplot().close(fig)
    return path
