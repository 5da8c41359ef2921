"""Benchmarks run by `tunesmith bench NAME`; each module exposes `run(*, seconds, json) -> dict`."""

from importlib.util import find_spec

BENCHMARKS = ("data", "lm", "gan", "render", "analyzer", "service", "watermark", "prompts", "song", "fuzz", "load")
AVAILABLE = tuple(name for name in BENCHMARKS if find_spec(f"tunesmith.bench.{name}") is not None)
