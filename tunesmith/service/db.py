"""Records of the service (SQLAlchemy 2 typed models) and the database handle.

Tables: ``api_keys`` (only a SHA-256 of each secret is stored), ``generations`` (one job and its work),
``uploads`` (scores a key uploaded), ``analyses`` (recordings analyzed) and ``usage`` (generated audio
seconds per key per UTC day). The schema
is owned by the Alembic migrations in ``tunesmith/service/migrations``; :meth:`Database.migrate` applies them.
SQLite is the default; any URL SQLAlchemy understands (``postgresql+psycopg://...``) works the same.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores no zone: it is put back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_id(value: object) -> bool:
    """Whether ``value`` can be the id of a record (a UUID as the server writes it): the lookups answer "none"
    to anything else without asking the database (PostgreSQL refuses a NUL byte in text with an error)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


class ApiKey(Base):
    """An API key: a name, its secret's SHA-256 and an optional daily quota override."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters of the secret, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    quota_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # refused from then on


class Generation(Base):
    """One generation job: what was asked, how it went, and the artifacts it made."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what the job runs with
    interpretation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the prompt's reading
    formats: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # what the model reports it did
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # format -> {sha256, bytes}
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {code, message}
    estimated_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # reserved against the quota
    audio_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the signed manifest
    originality: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # vs the training corpus
    interruptions: Mapped[int] = mapped_column(Integer, default=0)  # server stops that left it running
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)  # the run holding it (host/pid/id)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class Upload(Base):
    """A score a key uploaded (to continue or harmonize); the file itself is in the upload store by sha256."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))  # midi, musicxml, abc
    suffix: Mapped[str] = mapped_column(String(16))  # the stored file's extension, e.g. ".mxl"
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    notes: Mapped[int] = mapped_column(Integer)
    bars: Mapped[int] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    meter: Mapped[str] = mapped_column(String(8))
    tempo: Mapped[float] = mapped_column(Float)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Analysis(Base):
    """One analysis of an uploaded recording: answered at once (short files) or run as a queued job."""

    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))  # wav, flac, mp3, ogg
    bytes: Mapped[int] = mapped_column(Integer)
    duration: Mapped[float] = mapped_column(Float)  # seconds, from the file's header
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the analysis
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {code, message}
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    interruptions: Mapped[int] = mapped_column(Integer, default=0)  # server stops that left it running
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)  # the run holding it (host/pid/id)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class Usage(Base):
    """Generated audio seconds of one key on one UTC day (queued work is reserved, then settled)."""

    __tablename__ = "usage"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date, UTC
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the worker's writes
    # WAL + NORMAL: a commit survives the process being killed (kill -9); only a power loss may drop the last
    # commits (never corrupting the file). FULL would fsync every commit: about 6 ms each, the cost of a submit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA mmap_size=268435456")  # read pages from a shared mapping, not a copy per process
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` database URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.sqlite_file = sqlite_file(url)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if self.sqlite_file is not None:
                self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
        self.engine: Engine = create_engine(url, pool_pre_ping=not self.is_sqlite, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._kept: tuple[int, Connection] | None = None  # (thread, its own connection): see keep_connection

    def keep_connection(self) -> Path | None:
        """Give the calling thread (the server's event loop) one connection of its own for good, which
        :meth:`transaction` then reuses there. Only for SQLite, where a statement takes microseconds and
        checking a connection out of the pool, with an ORM session around it, costs ten times more.

        The connection never checkpoints the WAL itself: returns the file for a
        :class:`~tunesmith.service.wal.WalCheckpointer` to do it (None: not a SQLite file)."""
        if self.sqlite_file is None:
            return None
        if self._kept is None:
            connection = self.engine.connect()
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            connection.commit()
            self._kept = (threading.get_ident(), connection)
        return self.sqlite_file

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core connection in a transaction that commits on success and rolls back on error: for the few
        short statements of the busiest routes (submit, status), which need no ORM unit of work."""
        kept = self._kept
        if kept is None or kept[0] != threading.get_ident():
            with self.engine.begin() as connection:
                yield connection
            return
        connection = kept[1]
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Bring the schema up to the newest Alembic revision (a no-op when it is current)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        command.upgrade(config, "head")

    def close(self) -> None:
        if self._kept is not None:
            self._kept[1].close()
            self._kept = None
        self.engine.dispose()
