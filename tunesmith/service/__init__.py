"""The HTTP service: app factory, records, queue and worker tasks, artifacts, limits, metrics.

Layers: ``routes/`` (thin HTTP handlers) -> ``generations.jobs`` and ``analysis_requests`` (what an endpoint
does) -> ``crud`` (records) and ``queue``/``generations.tasks`` (the worker side); ``state.Services`` holds what
one process has opened. Importing this package imports nothing else: ``create_app`` loads the app on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tunesmith.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
