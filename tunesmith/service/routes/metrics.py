"""GET /metrics: Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tunesmith.service.deps import ServicesDep

router = APIRouter(tags=["service"])


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    page = services.metrics.render()
    if services.worker is not None:  # `serve`'s worker process counts the jobs
        page += services.worker.job_metrics()
    return Response(page, media_type=services.metrics.content_type)
