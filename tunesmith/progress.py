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
