"""Prometheus metrics of one app (its own registry, so several apps can live in one process, as in tests).

HTTP requests and latencies by route template; queue depth (read from the records at scrape time); job
durations and audio seconds generated, observed by the worker that runs the job in this process (a
`tunesmith worker` on another machine exposes its own with ``--metrics-port``).

The API processes of one `tunesmith serve` count in prometheus_client's multiprocess mode (the supervisor
gives them a shared ``PROMETHEUS_MULTIPROC_DIR``): whichever process answers ``GET /metrics`` adds up the
requests of all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
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
        self.queue_depth = QueueDepth()  # read at scrape time, by whichever process answers: never in a file
        self._queue_registry = CollectorRegistry()
        self._queue_registry.register(self.queue_depth)
        job_registry = self.registry if jobs else None
        self.job_duration = Histogram("tunesmith_job_duration_seconds", "run time of generation jobs",
                                      ("model", "status"), buckets=JOB_BUCKETS, registry=job_registry)
        self.audio_seconds = Counter("tunesmith_audio_seconds_generated", "seconds of audio generated",
                                     ("model",), registry=job_registry)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """Read the queue depth from ``depth()`` whenever metrics are scraped."""
        self.queue_depth.read = depth

    def job_finished(self, model: str, status: str, seconds: float, audio_seconds: float = 0.0) -> None:
        self.job_duration.labels(model, status).observe(seconds)
        if audio_seconds:
            self.audio_seconds.labels(model).inc(audio_seconds)

    def render(self) -> bytes:
        """The metrics page: this app's, or in multiprocess mode those of every API process of the server."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            shared = CollectorRegistry()
            MultiProcessCollector(shared, path=directory)
            return generate_latest(shared) + generate_latest(self._queue_registry)
        return generate_latest(self.registry) + generate_latest(self._queue_registry)


class QueueDepth(Collector):
    """The ``tunesmith_queue_depth`` gauge, read from ``read()`` at scrape time (nothing before one is set)."""

    def __init__(self) -> None:
        self.read: Callable[[], float] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.read is not None:
            yield GaugeMetricFamily("tunesmith_queue_depth", "generation jobs waiting to start", value=self.read())


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
