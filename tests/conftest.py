"""Shared fixtures: synthetic test signals and the files written from them; the service databases and Redis."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def sine(
    freq: float = 440.0, *, sr: int = 16_000, seconds: float = 1.0, amplitude: float = 0.5, channels: int = 1
) -> np.ndarray:
    """A float32 sine: (n,) for one channel, else (channels, n) with channel k at freq * (k + 1)."""
    t = np.arange(round(seconds * sr)) / sr
    rows = [amplitude * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)]
    y = np.asarray(rows, dtype=np.float32)
    return y[0] if channels == 1 else y


@pytest.fixture
def make_sine() -> Callable[..., np.ndarray]:
    """Factory for sine arrays (see `sine`)."""
    return sine


@pytest.fixture
def sine_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a sine to tmp_path/name with soundfile (independent of tunesmith.audio)."""

    def write(name: str = "sine.wav", *, sr: int = 16_000, subtype: str | None = None, **kwargs) -> Path:
        y = sine(sr=sr, **kwargs)
        path = tmp_path / name
        sf.write(path, y.T if y.ndim == 2 else y, sr, subtype=subtype)
        return path

    return write


def dominant_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a mono signal (Hann-windowed, parabolic peak)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + shift) * sr / len(y)


# ------------------------------------------------------------------------------------------- service fixtures
# PostgreSQL and Redis are real servers started once per session (tests/service_fixtures.py says how); the
# tests that touch the service database take `database_url` and run once on SQLite and once on PostgreSQL.


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (skipped, or failed under make test, if it cannot start)."""
    from tests.service_fixtures import start_postgres, unavailable

    try:
        cluster = start_postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        unavailable("postgresql", str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server on 127.0.0.1, nothing persisted (skipped, or failed under make test)."""
    from tests.service_fixtures import start_redis, unavailable

    try:
        server = start_redis()
    except (RuntimeError, OSError) as exc:
        unavailable("redis", str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A throwaway s3rver on 127.0.0.1 with a bucket ``tunesmith`` (skipped, or failed under make test)."""
    from tests.service_fixtures import start_s3rver, unavailable

    try:
        server = start_s3rver()
    except (RuntimeError, OSError) as exc:
        unavailable("s3", str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_kind(request) -> str:
    """Which database the service tests of a module run on (each module runs once per kind)."""
    return request.param


def _new_database(request, kind: str) -> str | None:
    return None if kind == "sqlite" else request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture(scope="module")
def database_url(request, database_kind) -> str | None:
    """A module's service database: None (the SQLite default in the data dir) or a fresh PostgreSQL database."""
    return _new_database(request, database_kind)


@pytest.fixture
def fresh_database_url(request, database_kind) -> str | None:
    """Like `database_url`, but a new empty database for each test."""
    return _new_database(request, database_kind)


@pytest.fixture(scope="session")
def shipped_server(tmp_path_factory):
    """A real Tunesmith on 127.0.0.1 (uvicorn in a thread) with the shipped models and one embedded worker.

    Yields (server, settings): ``server.url`` is its address; make keys with `make_key(settings, name)`."""
    from tests.service_fixtures import live_server
    from tunesmith.config import Settings

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    settings = Settings(data_dir=tmp_path_factory.mktemp("shipped-server"), workers=1, poll_seconds=0.1,
                        preload=["chorale"], requests_per_minute=10_000)
    with live_server(settings) as server:
        yield server, settings
