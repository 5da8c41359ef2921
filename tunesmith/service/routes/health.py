"""GET /v1/health: liveness and which models are loaded, or still loading in the worker process after a start."""

from __future__ import annotations

import os

from fastapi import APIRouter

from tunesmith import __version__
from tunesmith.generation.models import is_loaded
from tunesmith.service.deps import ServicesDep
from tunesmith.service.generations.tasks import preloaded_ids
from tunesmith.service.schemas import Health
from tunesmith.service.state import Services

router = APIRouter(tags=["service"])


@router.get("/v1/health", response_model=Health, summary="liveness and loaded models")
def health(services: ServicesDep) -> Health:
    loaded = set(services.loaded_models())
    loading = preloading(services)
    models = {m.id: {"version": m.version, "loaded": m.id in loaded, "loading": m.id not in loaded and m.id in loading}
              for m in services.catalog.models.values()}
    if (analyzer := services.catalog.analyzer) is not None:
        in_worker = services.worker is not None and analyzer.id in services.worker.loaded
        is_in = in_worker or is_loaded(analyzer.card_path)
        models[analyzer.id] = {"version": analyzer.version, "loaded": is_in,
                               "loading": not is_in and analyzer.id in loading, "kind": "analyzer"}
    queue = {"depth": services.queue_depth(), "embedded_workers": services.workers}
    if services.worker is not None:
        queue |= {"worker_process": services.worker.pid, "worker_threads": services.settings.workers,
                  "worker_alive": services.worker.alive()}
    return Health(status="ok", version=__version__, models=models, queue=queue, process=os.getpid())


def preloading(services: Services) -> set[str]:
    """The models the worker process loads at its start (`preloaded_ids`) while it has not finished; none once it
    reported, or without a worker process."""
    worker = services.worker
    if worker is None or worker.ready or not worker.alive():
        return set()
    return set(preloaded_ids(services.catalog, services.settings.preload))
