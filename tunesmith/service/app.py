"""The FastAPI application factory.

    app = create_app(load_settings())      # nothing is opened or loaded here
    uvicorn.run(app)                       # the lifespan opens the records, loads models, starts the worker

The lifespan runs :func:`tunesmith.service.state.start_services` once per server process: migrations, model
cards, the queue, start-up recovery of jobs a killed server left behind (:mod:`tunesmith.service.recovery`),
the models (loaded once and kept) and ``settings.workers`` embedded consumer threads. The API processes of
`tunesmith serve` skip recovery and consumers: their supervisor (:mod:`tunesmith.service.supervisor`) does
those once for all of them.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from tunesmith import __version__
from tunesmith.config import Settings, load_settings
from tunesmith.service.balance import BalanceMiddleware, ConnectionBalance
from tunesmith.service.contract import install_contract
from tunesmith.service.errors import install_error_handlers
from tunesmith.service.limits import BodySizeLimit
from tunesmith.service.metrics import Metrics, MetricsMiddleware
from tunesmith.service.routes import (
    analyses,
    generations,
    health,
    metrics,
    models,
    provenance,
    stems,
    studio,
    uploads,
)
from tunesmith.service.state import start_services
from tunesmith.service.supervisor import ServeRun
from tunesmith.service.wal import WalCheckpointer
from tunesmith.service.worker_process import WorkerView

GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest objects (Python's default: 700)

DESCRIPTION = """Tunesmith generates music with models trained on public-domain and openly licensed data.

Create an API key with `tunesmith keys create --name NAME` and send it as `Authorization: Bearer <key>`
on every /v1 route except /v1/health, /v1/models and /v1/provenance/public-key. Errors are
`{"error": {"code", "message", "field"}}`. The web studio is at `/`. Every file the server makes carries a
signed provenance manifest (and its audio an inaudible watermark): check one with POST /v1/verifications.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    run: ServeRun | None = app.state.serve_run
    if run is None:  # an app on its own: it recovers what a killed predecessor left, its consumers are threads
        services = await run_in_threadpool(start_services, settings, app.state.metrics,
                                           embedded_workers=settings.workers, recover="server")
    else:  # an API process of `serve`, whose supervisor recovered the jobs and runs the worker and the checkpoints
        services = await run_in_threadpool(start_services, settings, app.state.metrics,
                                           rate_limit_table=run.rate_limit, writer_lock=run.writer_lock)
        if settings.workers > 0:
            services.worker = WorkerView(run.worker)
    # on the event loop's thread, where the hot routes' SQLite statements run; their WAL checkpoints run on a
    # thread of their own (a checkpoint inside a commit held a request up by 5-20 ms)
    files = [path for path in (services.db.keep_connection(), services.queue.leave_checkpoints()) if path]
    checkpointer = WalCheckpointer(files) if files and run is None else None
    if checkpointer is not None:
        checkpointer.start()
    app.state.services = services
    if run is not None:  # this process's one app: what start-up made lives on, and a full collection
        gc.freeze()  # would walk it all (a pause of 0.1-0.3 s in the middle of requests)
        gc.set_threshold(GC_YOUNG_THRESHOLD)  # a request makes hundreds of short-lived objects
    try:
        yield
    finally:
        await run_in_threadpool(services.close)
        if checkpointer is not None:
            checkpointer.stop()


def create_app(settings: Settings | None = None, *, serve_run: ServeRun | None = None,
               balance: ConnectionBalance | None = None) -> FastAPI:
    """A Tunesmith API app for ``settings`` (default: from the environment).

    On its own, the app runs ``settings.workers`` consumers as threads in its process. With ``serve_run`` it is
    one API process of `tunesmith serve` (:mod:`tunesmith.service.supervisor`), which runs the consumers in a
    worker process at a lower CPU priority and shares the rate limit and metrics with its sibling processes;
    ``balance`` sheds connections while it holds more than its share of them."""
    settings = settings or load_settings()
    app = FastAPI(title="Tunesmith", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.serve_run = serve_run
    app.state.metrics = Metrics(jobs=serve_run is None)  # in `serve`, the worker process counts the jobs
    install_error_handlers(app)
    install_contract(app)
    for module in (health, models, generations, stems, uploads, analyses, provenance, metrics, studio):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if balance is not None:
        app.add_middleware(BalanceMiddleware, balance=balance)
    return app
