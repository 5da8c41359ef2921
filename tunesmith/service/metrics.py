"""Prometheus metrics of one app (its own registry, so several apps can live in one process, as in tests).

HTTP requests and latencies by route template; queue depth (read from the records at scrape time); job
durations and audio seconds generated, observed by the worker that runs the job in this process (a
`tunesmith worker` on another machine exposes its own with ``--metrics-port``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    """The service's metrics in one registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, jobs: bool = True) -> None:
        """``jobs=False``: this process runs no jobs (`serve` with a worker process, whose job metrics
        :class:`~tunesmith.service.worker_process.WorkerProcess` adds to this process's page)."""
        self.registry = CollectorRegistry()
        self.requests = Counter("tunesmith_http_requests", "HTTP requests answered",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("tunesmith_http_request_duration_seconds", "time to answer a request",
                                 ("method", "route"), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("tunesmith_queue_depth", "generation jobs waiting to start", registry=self.registry)
        job_registry = self.registry if jobs else None
        self.job_duration = Histogram("tunesmith_job_duration_seconds", "run time of generation jobs",
                                      ("model", "status"), buckets=JOB_BUCKETS, registry=job_registry)
        self.audio_seconds = Counter("tunesmith_audio_seconds_generated", "seconds of audio generated",
                                     ("model",), registry=job_registry)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """Read the queue depth from ``depth()`` whenever metrics are scraped."""
        self.queue_depth.set_function(depth)

    def job_finished(self, model: str, status: str, seconds: float, audio_seconds: float = 0.0) -> None:
        self.job_duration.labels(model, status).observe(seconds)
        if audio_seconds:
            self.audio_seconds.labels(model).inc(audio_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count requests and time them (to the end of the body) by method and route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _route_of(scope)
            self.metrics.requests.labels(scope["method"], route, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
