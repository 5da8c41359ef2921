"""A memory of librosa's constant-Q filter bases, so a key estimate does not rebuild them on every call.

`librosa.cqt` builds its wavelet basis (one per octave) from scratch on each call unless librosa's joblib disk
cache is configured; for a 30 s clip that is three quarters of the CQT chroma's cost. The basis depends only on
the sample rate, the bin frequencies (fmin and the tuning estimate, 0.01 semitone steps) and fixed options, so
at most a few hundred distinct bases exist for the analyzer's settings. :func:`install_basis_cache` wraps
librosa's private basis builder with a bounded memory that hands out copies (librosa rescales the basis in
place): the CQT's numbers stay identical. If a librosa release renames the builder, nothing is wrapped and
the CQT is just slower.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import librosa.core.constantq as _constantq
import numpy as np

_BUILDER = "__vqt_filter_fft"  # librosa 0.10-0.11: (sr, freqs, filter_scale, norm, sparsity, ...) -> basis
MAX_BASES = 1024  # 5 octaves x 100 tuning steps x a few settings; all 500 of the analyzer's take ~4 MB
_lock = threading.Lock()


def install_basis_cache() -> bool:
    """Wrap librosa's CQT basis builder with a memory (once per process); True when it is in place."""
    with _lock:
        current = getattr(_constantq, _BUILDER, None)
        if current is None:
            return False
        if getattr(current, "_tunesmith_cached", False):
            return True
        setattr(_constantq, _BUILDER, _cached(current))
        return True


def _array_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.dtype | type):
        return ("dtype", np.dtype(value).str)
    hash(value)  # anything else must be hashable (a window name or tuple); raises TypeError otherwise
    return value


def _cached(build: Callable[..., Any]) -> Callable[..., Any]:
    memory: OrderedDict[tuple, Any] = OrderedDict()
    memory_lock = threading.Lock()

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            key = tuple(_array_key(a) for a in args) + tuple((k, _array_key(v)) for k, v in sorted(kwargs.items()))
        except TypeError:  # e.g. an array window given as a list: build it every time
            return build(*args, **kwargs)
        with memory_lock:
            found = memory.get(key)
            if found is not None:
                memory.move_to_end(key)
        if found is None:
            found = build(*args, **kwargs)
            with memory_lock:
                memory[key] = found
                while len(memory) > MAX_BASES:
                    memory.popitem(last=False)
        basis, n_fft, lengths = found
        return basis.copy(), n_fft, np.copy(lengths)

    wrapper._tunesmith_cached = True  # type: ignore[attr-defined]
    return wrapper
