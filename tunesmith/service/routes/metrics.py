"""GET /metrics: Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tunesmith.service.deps import ServicesDep

router = APIRouter(tags=["service"])


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=services.metrics.content_type)
