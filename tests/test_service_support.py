"""Shared pieces of the service tests (no tests here): tiny trained models, settings, keys, polling.

The models are trained once per test session (a 30-piece dataset and 30 optimizer steps each: seconds), so
every service test runs the real composer, renderer, queue and database.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tunesmith.config import Settings
from tunesmith.service import crud
from tunesmith.service.db import Database

_MODELS: dict[str, Path] = {}
TERMINAL = ("succeeded", "failed", "cancelled")


def trained_models(tmp_path_factory: Any) -> dict[str, Path]:
    """{"chorale": run dir, "folk": run dir}: tiny real checkpoints, trained once per session."""
    if not _MODELS:
        from tunesmith.data.corpora.chorales import build_chorales
        from tunesmith.data.corpora.folk import build_folk
        from tunesmith.train.lm import LMTrainConfig, train_lm

        root = tmp_path_factory.mktemp("service-models")
        config = LMTrainConfig(arch="rnn", max_steps=30, eval_every=30, batch_size=8, window=128, threads=1,
                               model={"dim": 64, "layers": 1}, warmup=5)
        for name, build in (("chorale", build_chorales), ("folk", build_folk)):
            build(root / f"{name}-data", limit=30)
            train_lm(root / f"{name}-data", root / f"{name}-run", config, command="test")
            _MODELS[name] = root / f"{name}-run"
    return dict(_MODELS)


def make_settings(root: Path, models: dict[str, Path], **overrides: Any) -> Settings:
    """Settings for a test server in ``root`` that serves only ``models`` (never the shipped weights)."""
    (root / "no-weights").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {"data_dir": root, "models": models, "weights_dir": root / "no-weights",
                              "workers": 1, "poll_seconds": 0.1, "requests_per_minute": 10_000}
    return Settings(**(values | overrides))


def make_key(settings: Settings, name: str = "test", quota_seconds: float | None = None) -> dict[str, str]:
    """A new API key in the settings' database, as request headers."""
    db = Database(settings.database_url or "")
    db.migrate()
    try:
        with db.session() as session:
            _, secret = crud.create_api_key(session, name=name, quota_seconds=quota_seconds)
    finally:
        db.close()
    return {"Authorization": f"Bearer {secret}"}


def wait_until_finished(client: Any, generation_id: str, headers: dict[str, str], *, timeout: float = 60.0) -> dict:
    """Poll a generation until it reaches a final status (bounded); returns its record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.get(f"/v1/generations/{generation_id}", headers=headers).json()
        if record["status"] in TERMINAL:
            return record
        time.sleep(0.1)
    raise AssertionError(f"generation {generation_id} did not finish in {timeout} s: {record}")
