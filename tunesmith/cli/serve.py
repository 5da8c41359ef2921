"""`tunesmith serve` (the API with an embedded worker) and `tunesmith worker` (an extra queue consumer)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP API with an embedded worker",
                       description="Run the HTTP API (docs at /docs) with embedded queue workers. Settings come "
                                   "from TUNESMITH_* environment variables; the options below override them.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--data-dir", type=Path, help="records, queue and artifacts (default ./data-dir)")
    p.add_argument("--workers", type=int, help="worker threads, in a child process at a lower CPU priority "
                                                "(default 1; 0: only the API)")
    p.add_argument("--api-processes", type=int, help="API processes sharing the port (default: one per CPU "
                                                      "core, at most 4)")
    p.add_argument("--api-child", help=argparse.SUPPRESS)  # PID:INDEX: one API process of that `serve`
    p.set_defaults(func=run_serve)

    w = sub.add_parser("worker", help="run an extra queue worker (scale-out)",
                       description="Consume generation jobs from the queue. Point TUNESMITH_DATABASE_URL, "
                                   "TUNESMITH_QUEUE_URL and TUNESMITH_DATA_DIR at what the server uses.")
    w.add_argument("--queue", dest="queue_url", help="queue URL: sqlite:///PATH or redis://HOST:PORT/DB")
    w.add_argument("--data-dir", type=Path, help="records, queue and artifacts (default ./data-dir)")
    w.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    w.add_argument("--metrics-port", type=int, help="also serve this worker's Prometheus metrics on this port")
    w.add_argument("--serve-child", help=argparse.SUPPRESS)  # PID:FD: started by that `serve`, reports on FD
    w.set_defaults(func=run_worker)


def run_serve(args: argparse.Namespace) -> int:
    from tunesmith.config import load_settings
    from tunesmith.service.supervisor import run_api_child, serve

    _log_to_stderr()
    if args.api_child:  # one API process of a `serve` (its settings come in the environment)
        parent_pid, index = (int(x) for x in args.api_child.split(":"))
        return run_api_child(parent_pid, index)
    settings = load_settings(host=args.host, port=args.port, data_dir=args.data_dir, workers=args.workers,
                             api_processes=args.api_processes)
    base = f"http://{settings.host}:{settings.port}"
    print(f"tunesmith: serving on {base}/ with {settings.serving_processes} API process(es) and "
          f"{settings.workers} worker thread(s) (data in {settings.data_dir})\n"
          f"  studio:   {base}/\n"
          f"  API docs: {base}/docs\n"
          f"  a key:    .venv/bin/tunesmith keys create --name me --data-dir {settings.data_dir}", flush=True)
    return serve(settings)


def run_worker(args: argparse.Namespace) -> int:
    from tunesmith.config import load_settings
    from tunesmith.errors import ParameterError
    from tunesmith.service.generations.tasks import preload, prepare_audio_originality
    from tunesmith.service.metrics import Metrics
    from tunesmith.service.state import start_services

    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {args.workers}", field="workers")
    settings = load_settings(queue_url=args.queue_url, data_dir=args.data_dir)
    _log_to_stderr()
    parent_pid, report_fd = (int(x) for x in args.serve_child.split(":")) if args.serve_child else (0, -1)
    if parent_pid:  # the consumer of a `serve`: it ran recovery already; this process dies with it
        from tunesmith.service.worker_process import exit_when_orphaned

        exit_when_orphaned(parent_pid)
    metrics = Metrics()
    services = start_services(settings, metrics, recover=None if parent_pid else "worker")
    try:
        loaded = preload(services.catalog, settings.preload)
        gc.freeze()  # the loaded models live on: keep them out of every later garbage collection
        if services.queue.runner.gate is not None:  # as a server's embedded workers do
            prepare_audio_originality(services.queue.runner.gate, services.catalog, loaded)
        if parent_pid:
            from tunesmith.service.worker_process import report_loaded

            report_loaded(report_fd, loaded)
        if args.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(args.metrics_port, addr="127.0.0.1" if parent_pid else settings.host,
                              registry=metrics.registry)
        print(f"tunesmith: worker with {args.workers} thread(s) on {settings.queue_url}; models: "
              f"{', '.join(loaded) or 'none'}", flush=True)
        consumer = services.queue.consumer(workers=args.workers, poll_seconds=settings.poll_seconds, embedded=False)
        services.keep_leases()
        consumer.run()  # until SIGINT/SIGTERM; finishes running jobs first
    finally:
        services.close()
    if parent_pid:  # everything is closed: skip the interpreter's final garbage collection of the loaded models,
        sys.stdout.flush()  # which takes many seconds at a low priority, while `serve` waits for this process
        sys.stderr.flush()
        os._exit(0)
    return 0


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
