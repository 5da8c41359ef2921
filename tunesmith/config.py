"""One Settings object for the service, the worker and the key tool (environment prefix ``TUNESMITH_``).

Read once at the edges (the CLI, the app factory's caller) and passed down as plain arguments:

    settings = load_settings(data_dir="data-dir")     # TUNESMITH_DATA_DIR, TUNESMITH_DATABASE_URL, ...
    app = create_app(settings)

Defaults give a single machine with no other server: SQLite for records (``data_dir/tunesmith.db``), Huey's
SQLite storage for the queue (``data_dir/queue.db``), artifacts under ``data_dir/artifacts``. A
``postgresql://`` database URL and a ``redis://`` queue URL scale the same code out to several machines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tunesmith.checkpoints import WEIGHTS_DIR
from tunesmith.errors import ParameterError

MAX_BARS = 64  # the composer's own limit (tunesmith.compose.composer.MAX_BARS)


class Settings(BaseSettings):
    """Everything an operator may set; every field is also the environment variable ``TUNESMITH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TUNESMITH_", extra="ignore")

    data_dir: Path = Field(Path("data-dir"), description="records, queue and artifacts live here")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///{data_dir}/tunesmith.db")
    queue_url: str | None = Field(None, description="sqlite:///PATH (default {data_dir}/queue.db) or redis://...")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest request body accepted")
    max_audio_seconds: float = Field(600.0, gt=0, description="longest piece one request may ask for")
    max_bars: int = Field(MAX_BARS, ge=1, le=MAX_BARS)
    max_input_notes: int = Field(5000, ge=1, description="most notes an input score (params.input) of a song may "
                                 "have, to arrange, continue, regenerate a track of or restyle")
    requests_per_minute: int = Field(120, ge=1, description="per API key, sliding window")
    rate_limit_url: str | None = Field(None, description="redis://... where every API process counts the rate "
                                       "limit together; default the queue's Redis, else each process alone")
    daily_audio_seconds: float = Field(3600.0, ge=0, description="default quota of generated audio per key per day")
    workers: int = Field(1, ge=0, le=32, description="embedded consumer threads in `serve` (0: none)")
    api_processes: int | None = Field(None, ge=1, le=64, description="API processes of `serve`; default one per "
                                      "CPU core, at most 4")
    poll_seconds: float = Field(0.5, gt=0, le=10, description="longest pause of an idle consumer between polls")
    preload: list[str] | None = Field(None, description="models to load at start-up; default all, [] none")
    weights_dir: Path | None = Field(None, description="shipped model cards; default tunesmith's weights/")
    models: dict[str, Path] = Field(default_factory=dict,
                                    description="extra or overriding models: id -> run directory or card .json")
    analysis_sync_seconds: float = Field(30.0, ge=0, description="POST /v1/analyses answers files up to this "
                                         "long at once; longer ones become a job")
    max_analysis_seconds: float = Field(1200.0, gt=0, description="longest audio file POST /v1/analyses accepts")
    max_decode_seconds: float = Field(15.0, gt=0, description="longest an uploaded score, or a file to verify, may "
                                      "take to read (in a child process; longer is 413)")
    max_decode_megabytes: int = Field(512, ge=64, description="memory that reading one uploaded file may take "
                                      "(in a child process; more is 413)")
    originality_threshold: int = Field(12, ge=1, description="a symbolic work sharing a run of more notes than "
                                       "this with a training piece is flagged")
    originality_tries: int = Field(3, ge=1, le=20, description='pieces a request with "originality": "reject" '
                                   "may draw before it fails")
    audio_originality_threshold: float = Field(0.02, ge=0, lt=1, description="a generated note closer than this "
                                               "cosine distance to a training note (analyzer embedding) is flagged")
    artifacts_url: str | None = Field(None, description="s3://BUCKET/PREFIX: artifacts and uploads in an "
                                      "S3-compatible object store every host shares; default the data directory")
    s3_endpoint: str | None = Field(None, description="the object store's URL (MinIO, Ceph RGW, R2 ...); default "
                                    "boto3's (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3)")
    s3_cache_megabytes: int = Field(1024, ge=1, description="local copies of stored objects kept per folder "
                                    "(<data dir>/object-cache), least recently used dropped first")
    lease_seconds: float = Field(30.0, ge=1, le=3600, description="a worker renews the lease of each job it runs "
                                 "every third of this; a job whose lease ran out (its worker's host died or was cut "
                                 "off) is queued again by another worker")
    stale_seconds: float = Field(600.0, ge=0, description="a job left running this long is taken as orphaned by "
                                 "a dead process when a worker or a server on a Redis queue starts")

    @field_validator("data_dir", "weights_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("queue_url")
    @classmethod
    def _queue_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "redis://", "rediss://")):
            raise ValueError(f"must start with sqlite:/// or redis://, got {value!r}")
        return value

    @field_validator("artifacts_url")
    @classmethod
    def _artifacts_scheme(cls, value: str | None) -> str | None:
        if value is not None and value and not value.startswith("s3://"):
            raise ValueError(f"must start with s3:// (or be unset: the data directory), got {value!r}")
        return value or None

    @field_validator("rate_limit_url")
    @classmethod
    def _rate_limit_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError(f"must start with redis:// or rediss://, got {value!r}")
        return value

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'tunesmith.db'}"
        if self.queue_url is None:
            self.queue_url = f"sqlite:///{self.data_dir / 'queue.db'}"
        return self

    @property
    def serving_processes(self) -> int:
        """How many API processes `serve` runs."""
        return self.api_processes or max(1, min(4, os.cpu_count() or 1))

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def resolved_weights_dir(self) -> Path:
        """The shipped-weights directory: the setting, else tunesmith's default (which honours $TUNESMITH_WEIGHTS)."""
        if self.weights_dir is not None:
            return self.weights_dir
        return Path(WEIGHTS_DIR)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides`` (None values ignored); a bad value is a ParameterError."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise ParameterError(f"bad setting {field} (TUNESMITH_{field.upper()}): {message}", field=field) from exc
