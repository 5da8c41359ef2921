"""A CSV metrics log for training runs and a PNG of its learning curves."""

from __future__ import annotations

import csv
from pathlib import Path

from tunesmith.plotting import pyplot, save_figure


class MetricsLog:
    """Append rows of named values to a CSV (columns fixed by the first row); keeps an existing log, whose own
    header then names the columns (a run resumed after a trainer's columns changed keeps its rows aligned)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        header = None
        if path.exists():
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), None)
        if header:
            self.columns = header
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerow(columns)

    def log(self, **values: float | int | str) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([values.get(c, "") for c in self.columns])

    def read(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))


def plot_curves(log: MetricsLog, png: Path, *, x: str, series: list[str], title: str,
                ylabel: str = "nats per token") -> Path:
    """Draw each column of ``series`` against ``x`` (blank cells skipped) into ``png``."""
    plt = pyplot()

    rows = log.read()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name in series:
        points = [(float(r[x]), float(r[name])) for r in rows if r.get(name) not in ("", None)]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=name, marker="o" if len(points) < 30 else None, markersize=3)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, png)
