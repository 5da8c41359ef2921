"""The data layer: API keys, generation records and usage. Knows nothing of HTTP or of the queue.

Functions take a `Session` and leave committing to the caller (`Database.session()` commits). A job's state
changes are conditional updates (``... WHERE status = 'queued'``), so the API and any number of workers can
race on one job and exactly one of them wins each transition; whoever moves a job to a final state settles
the audio seconds reserved for it against the key's daily usage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Float, Text, bindparam, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session, make_transient_to_detached

from tunesmith.errors import ParameterError
from tunesmith.service.db import ApiKey, Generation, Usage, is_id, utcnow

KEY_PREFIX = "ts_"


# ---------------------------------------------------------------------------------------------- keys


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, *, name: str, quota_seconds: float | None = None) -> tuple[ApiKey, str]:
    """A new key; returns the record and the secret, which is not stored anywhere (only its hash is)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[:8], key_hash=hash_secret(secret), quota_seconds=quota_seconds)
    session.add(key)
    session.flush()
    return key, secret


def api_key_by_secret(session: Session, secret: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))


def revoke_api_key(session: Session, key_id: int) -> ApiKey | None:
    """Mark key ``key_id`` revoked (its works and usage stay); None if there is no such key. Revoking twice
    keeps the first time."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked is None:
        key.revoked = utcnow()
    return key


def revocation_mark(session: Session | Connection) -> tuple[int, str | None]:
    """What changes whenever a key is revoked (how many are, and the latest time): the API processes compare it
    to drop the keys they cache."""
    count, latest = session.execute(select(func.count(ApiKey.id), func.max(ApiKey.revoked))
                                    .where(ApiKey.revoked.is_not(None))).one()
    return int(count), None if latest is None else str(latest)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# --------------------------------------------------------------------------------------------- usage


def day_of(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).date().isoformat()


# The statements of the request path are built once with bind parameters: building a statement costs more
# than running it on SQLite (SQLAlchemy caches the compiled form either way).
_USAGE_ON = select(Usage.audio_seconds).where(Usage.key_id == bindparam("key_id"), Usage.day == bindparam("day"))
_GENERATION = select(Generation).where(Generation.id == bindparam("id"))
_OWN_GENERATION = _GENERATION.where(Generation.key_id == bindparam("key_id"))
_OWN_GENERATION_ROW = select(Generation.__table__).where(Generation.id == bindparam("id"),
                                                         Generation.key_id == bindparam("key_id"))
_ADD_USAGE: dict[str, Any] = {}
_INSERT_GENERATION = insert(Generation)


def usage_on(session: Session | Connection, key_id: int, day: str) -> float:
    used = session.scalar(_USAGE_ON, {"key_id": key_id, "day": day})
    return max(0.0, float(used or 0.0))


def _add_usage_statement(dialect: str) -> Any:
    if dialect not in _ADD_USAGE:
        if dialect not in ("sqlite", "postgresql"):
            raise ParameterError(f"database {dialect!r} is not supported; use SQLite or PostgreSQL",
                                 field="database_url")
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = insert(Usage).values(key_id=bindparam("key_id"), day=bindparam("day"),
                                         audio_seconds=bindparam("seconds"))
        _ADD_USAGE[dialect] = statement.on_conflict_do_update(
            index_elements=[Usage.key_id, Usage.day],
            set_={"audio_seconds": Usage.audio_seconds + bindparam("more", type_=Float)}
        ).returning(Usage.audio_seconds)
    return _ADD_USAGE[dialect]


def add_usage(session: Session | Connection, key_id: int, day: str, seconds: float) -> float:
    """Add (or, negative, give back) audio seconds to a key's usage of ``day``: one atomic upsert; returns the
    day's total after it."""
    if not seconds:
        return usage_on(session, key_id, day)
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    statement = _add_usage_statement(dialect.name)
    total = session.execute(statement, {"key_id": key_id, "day": day, "seconds": seconds, "more": seconds}).scalar()
    return max(0.0, float(total or 0.0))


# ------------------------------------------------------------------------------------- generations


def add_generation(session: Session | Connection, *, key_id: int, model: str, params: dict[str, Any],
                   prompt: str | None, interpretation: dict[str, Any] | None, formats: list[str],
                   estimated_seconds: float, reserve: bool = True,
                   created: dt.datetime | None = None) -> Generation | SimpleNamespace:
    """A queued job; its estimated audio seconds are reserved against today's usage of the key (``reserve=False``:
    the caller reserves them, with :func:`add_usage`, which answers the day's new total).

    The row is written with one prepared INSERT (the ORM's unit of work costs several times more on the request
    path). In a ``Session`` the ORM record is attached as the persistent object it now is; on a Core
    ``Connection`` (the submit route's cheap path) the answer is a snapshot of the row's values with the same
    attribute names, and no ORM object is made at all."""
    values = {"id": str(uuid.uuid4()), "key_id": key_id, "model": model, "status": "queued", "progress": 0.0,
              "prompt": prompt, "params": params, "interpretation": interpretation, "formats": formats,
              "result": None, "artifacts": {}, "error": None, "estimated_seconds": estimated_seconds,
              "audio_seconds": None, "created": created or utcnow(), "started": None, "finished": None,
              "provenance": None, "originality": None, "interruptions": 0}
    session.execute(_INSERT_GENERATION, values)
    if reserve:
        add_usage(session, key_id, day_of(values["created"]), estimated_seconds)
    if isinstance(session, Connection):
        return SimpleNamespace(**values)
    generation = Generation(**values)
    make_transient_to_detached(generation)
    session.add(generation)
    return generation


def get_generation(session: Session, generation_id: str, *, key_id: int | None) -> Generation | None:
    """A job by id; with ``key_id`` only if that key owns it (another key's job does not exist for it)."""
    if not is_id(generation_id):
        return None
    if key_id is None:
        return session.scalar(_GENERATION, {"id": generation_id})
    return session.scalar(_OWN_GENERATION, {"id": generation_id, "key_id": key_id})


def generation_row(connection: Connection, generation_id: str, key_id: int) -> Row | None:
    """A key's job as a read-only row (no ORM object: the status route's cheap path), or None."""
    if not is_id(generation_id):
        return None
    return connection.execute(_OWN_GENERATION_ROW, {"id": generation_id, "key_id": key_id}).first()


def list_generations(session: Session, key_id: int, *, limit: int, offset: int) -> tuple[list[Generation], int]:
    """A key's jobs, newest first; and how many it has in all."""
    total = session.scalar(select(func.count()).select_from(Generation).where(Generation.key_id == key_id)) or 0
    items = session.scalars(select(Generation).where(Generation.key_id == key_id)
                            .order_by(Generation.created.desc(), Generation.id).limit(limit).offset(offset))
    return list(items), int(total)


def queued_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Generation).where(Generation.status == "queued")) or 0)


def _transition(session: Session, generation_id: str, from_statuses: tuple[str, ...], *, lease: str | None = None,
                **values: Any) -> bool:
    """Change a record in one of ``from_statuses`` (and, with ``lease``, still held by that run: a worker whose
    lease ran out and whose job runs elsewhere writes nothing)."""
    query = update(Generation).where(Generation.id == generation_id, Generation.status.in_(from_statuses))
    if lease is not None:
        query = query.where(Generation.lease_owner == lease)
    result = session.execute(query.values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _settle(session: Session, generation: Generation, audio_seconds: float) -> None:
    add_usage(session, generation.key_id, day_of(generation.created), audio_seconds - generation.estimated_seconds)


def cancel_generation(session: Session, generation: Generation) -> bool:
    """Cancel a queued or running job (a worker running it discards its result); False if it had finished."""
    if not _transition(session, generation.id, ("queued", "running"), status="cancelled", finished=utcnow()):
        return False
    _settle(session, generation, 0.0)
    session.refresh(generation)
    return True


def delete_generation(session: Session, generation: Generation) -> list[tuple[str, str]]:
    """Delete a job's record; returns its artifacts (sha256, ext) that no other job refers to."""
    session.delete(generation)
    session.flush()
    return [(entry["sha256"], fmt) for fmt, entry in (generation.artifacts or {}).items()
            if not artifact_in_use(session, entry["sha256"])]


def artifact_in_use(session: Session, sha256: str) -> bool:
    """Does any job refer to this content hash? (a 64-hex digest cannot match anything else by accident)"""
    query = select(func.count()).select_from(Generation).where(cast(Generation.artifacts, Text).contains(sha256))
    return bool(session.scalar(query))


def add_artifact(session: Session, generation: Generation, fmt: str, sha256: str, size: int) -> None:
    generation.artifacts = {**(generation.artifacts or {}), fmt: {"sha256": sha256, "bytes": size}}
    session.flush()


# ------------------------------------------------------------------------------------ worker side


def claim_generation(session: Session, generation_id: str, lease: str | None = None,
                     lease_expires: dt.datetime | None = None) -> Generation | None:
    """Move a queued job to running (held by the run ``lease`` until ``lease_expires``); None if it was cancelled
    or deleted meanwhile (it is then not started)."""
    if not _transition(session, generation_id, ("queued",), status="running", started=utcnow(), progress=0.05,
                       lease_owner=lease, lease_expires=lease_expires):
        return None
    return get_generation(session, generation_id, key_id=None)


def set_progress(session: Session, generation_id: str, progress: float, lease: str | None = None) -> bool:
    """Record progress of a running job; False when it is no longer running (cancelled or deleted) or, given
    ``lease``, no longer held by that run."""
    return _transition(session, generation_id, ("running",), lease=lease, progress=max(0.0, min(1.0, progress)))


def complete_generation(session: Session, generation_id: str, *, result: dict[str, Any],
                        artifacts: dict[str, Any], audio_seconds: float, provenance: dict[str, Any] | None = None,
                        originality: dict[str, Any] | None = None, lease: str | None = None) -> bool:
    """Record a finished job's work (and its provenance and originality reports); False (and nothing recorded)
    when it was cancelled meanwhile or, given ``lease``, is no longer held by that run."""
    generation = get_generation(session, generation_id, key_id=None)
    if generation is None or not _transition(session, generation_id, ("running",), lease=lease, status="succeeded",
                                             progress=1.0, lease_expires=None,
                                             finished=utcnow(), result=result, artifacts=artifacts,
                                             audio_seconds=audio_seconds, provenance=provenance,
                                             originality=originality):
        return False
    _settle(session, generation, audio_seconds)
    return True


def fail_generation(session: Session, generation_id: str, *, code: str, message: str,
                    lease: str | None = None) -> bool:
    generation = get_generation(session, generation_id, key_id=None)
    if generation is None or not _transition(session, generation_id, ("queued", "running"), lease=lease,
                                             status="failed", finished=utcnow(), lease_expires=None,
                                             error={"code": code, "message": message}):
        return False
    _settle(session, generation, 0.0)
    return True
