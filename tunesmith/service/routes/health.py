"""GET /v1/health: liveness and which models this process has loaded."""

from __future__ import annotations

import os

from fastapi import APIRouter

from tunesmith import __version__
from tunesmith.generation.models import is_loaded
from tunesmith.service.deps import ServicesDep
from tunesmith.service.schemas import Health

router = APIRouter(tags=["service"])


@router.get("/v1/health", response_model=Health, summary="liveness and loaded models")
def health(services: ServicesDep) -> Health:
    loaded = set(services.loaded_models())
    models = {m.id: {"version": m.version, "loaded": m.id in loaded} for m in services.catalog.models.values()}
    if (analyzer := services.catalog.analyzer) is not None:
        in_worker = services.worker is not None and analyzer.id in services.worker.loaded
        models[analyzer.id] = {"version": analyzer.version, "loaded": in_worker or is_loaded(analyzer.card_path),
                               "kind": "analyzer"}
    queue = {"depth": services.queue_depth(), "embedded_workers": services.workers}
    if services.worker is not None:
        queue |= {"worker_process": services.worker.pid, "worker_threads": services.settings.workers,
                  "worker_alive": services.worker.alive()}
    return Health(status="ok", version=__version__, models=models, queue=queue, process=os.getpid())
