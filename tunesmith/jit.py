"""Numba compilation for the few hot loops that NumPy's per-call dispatch would make slow (the song sampler's
step, heads and draw). Numba is installed with librosa.

Compiled code is cached (beside the module in ``__pycache__``, else in the user's cache directory), so a process
after the first on a machine starts at once; where neither can be written (a read-only install without a home
directory), the functions are compiled in each process instead of failing to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def compiled(*, fastmath: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` without the GIL, cached where a cache can be written; ``fastmath`` lets sums be reordered."""

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, fastmath=fastmath, nogil=True)(function)
        except RuntimeError:  # "no locator available": nowhere to write the cache
            return numba.njit(fastmath=fastmath, nogil=True)(function)

    return decorate
