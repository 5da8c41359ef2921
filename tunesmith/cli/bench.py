"""`tunesmith bench NAME`: throughput benchmarks (per core)."""

from __future__ import annotations

import argparse

from tunesmith.bench import AVAILABLE, BENCHMARKS
from tunesmith.errors import ParameterError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "bench",
        help="run a throughput benchmark",
        description="Run a throughput benchmark with one thread and report x real time per core.",
    )
    parser.add_argument("name", choices=BENCHMARKS, help="which benchmark")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the test audio (default 30)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--checkpoint", help="lm: model name or training run directory (default: chorale)")
    parser.add_argument("--clients", type=int, help="service, load: concurrent clients (default 32; load 64)")
    parser.add_argument("--requests", type=int, help="service: requests per phase (default 320); load: in all "
                                                     "(default 10000)")
    parser.add_argument("--api-processes", type=int, help="service, fuzz, load: the server's API processes "
                                                            "(default: one per CPU core, at most 4)")
    parser.add_argument("--workers", help="service: worker processes to compare, e.g. 1,2,4 (generation jobs/min, "
                                           "CPU per job, latency, queue wait for each)")
    parser.add_argument("--jobs", type=int, help="service --workers: generation jobs per worker count (default 12)")
    parser.add_argument("--files", type=int, help="fuzz: hostile files to send (default 10000)")
    parser.add_argument("--seed", type=int, help="fuzz, load: the generator's seed (default 1)")
    parser.add_argument("--no-musicgen", dest="musicgen", action="store_false",
                        help="song: skip the side-by-side MusicGen-small-sized model (needs transformers)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark named in `args`; returns the exit code."""
    if args.name not in AVAILABLE:
        raise ParameterError(
            f"benchmark {args.name!r} is not available yet (available: {', '.join(AVAILABLE)})", field="name"
        )
    import importlib

    module = importlib.import_module(f"tunesmith.bench.{args.name}")  # heavy imports only when one runs
    options = {"seconds": args.seconds, "json": args.json}
    if args.checkpoint:
        options["checkpoint"] = args.checkpoint
    for name in ("clients", "requests", "api_processes", "files", "seed", "jobs"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if args.name == "song":
        options["musicgen"] = args.musicgen
    if args.workers is not None:
        options["worker_counts"] = args.workers
    module.run(**options)
    return 0
