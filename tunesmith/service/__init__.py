"""The HTTP service: app factory, records, queue and worker tasks, artifacts, limits, metrics.

Layers: ``routes/`` (thin HTTP handlers) -> ``jobs`` (what an endpoint does) -> ``crud`` (records) and
``queue``/``tasks`` (the worker side); ``state.Services`` holds what one process has opened.
"""

from tunesmith.service.app import create_app

__all__ = ["create_app"]
