"""Progress bars that show on a terminal and stay quiet in pipes."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar on stderr when stderr is a terminal."""
    enabled = sys.stderr.isatty()
    return iter(tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, leave=False))


class FractionBar:
    """A bar (on a terminal only) fed with the fraction done and a status: a job's progress events, or the
    stages of a local generation."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = tqdm(total=100, desc=label, unit="%", disable=not sys.stderr.isatty(), leave=False,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}")

    def update(self, fraction: float, status: str = "running") -> None:
        self.bar.n = round(100 * max(0.0, min(1.0, fraction)))
        self.bar.set_description_str(f"{self.label} [{status}]", refresh=False)
        self.bar.refresh()

    def __enter__(self) -> FractionBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
