"""Benchmarks run by `tunesmith bench NAME`; each module exposes `run(*, seconds, json) -> dict`."""

BENCHMARKS = ("data", "lm", "gan", "render", "analyzer", "service")
AVAILABLE = ("data", "lm")
