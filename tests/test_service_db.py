"""Records: the migration matches the models, keys are stored hashed, usage is reserved and settled."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tunesmith.config import Settings, load_settings
from tunesmith.errors import ParameterError
from tunesmith.service import crud
from tunesmith.service.db import MIGRATIONS_DIR, Base, Database


@pytest.fixture
def db(tmp_path, fresh_database_url):
    database = Database(fresh_database_url or f"sqlite:///{tmp_path / 'records.db'}")
    database.migrate()
    yield database
    database.close()


def test_migrations_build_exactly_the_models_and_rerun_as_no_ops(db):
    db.migrate()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                Base.metadata) == []
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert connection.exec_driver_sql("select version_num from alembic_version").scalar() == head


def test_only_a_hash_of_a_key_is_stored(db, tmp_path):
    with db.session() as session:
        key, secret = crud.create_api_key(session, name="alice", quota_seconds=60)
    assert secret.startswith("ts_") and len(secret) > 40
    with db.session() as session:
        assert crud.api_key_by_secret(session, secret).id == key.id
        assert crud.api_key_by_secret(session, secret + "x") is None
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql("select key_hash, prefix from api_keys").fetchall()
    assert [tuple(row) for row in rows] == [(crud.hash_secret(secret), secret[:8])]
    db.close()
    if db.is_sqlite:  # the whole file (and its WAL) never holds the secret
        raw = (tmp_path / "records.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("records.db-*"))
        assert secret.encode() not in raw and secret[8:].encode() not in raw
        rows = sqlite3.connect(tmp_path / "records.db").execute("select key_hash, prefix from api_keys").fetchall()
        assert rows == [(crud.hash_secret(secret), secret[:8])]


def test_usage_is_reserved_then_settled_by_whoever_finishes_the_job(db):
    with db.session() as session:
        key, _ = crud.create_api_key(session, name="k")
        job = crud.add_generation(session, key_id=key.id, model="folk", params={}, prompt=None, interpretation=None,
                                  formats=["wav", "mid"], estimated_seconds=10.0)
        other = crud.add_generation(session, key_id=key.id, model="folk", params={}, prompt=None,
                                    interpretation=None, formats=["wav", "mid"], estimated_seconds=5.0)
        day = crud.day_of(job.created)
    with db.session() as session:
        assert crud.usage_on(session, key.id, day) == pytest.approx(15.0)
        assert crud.claim_generation(session, job.id) is not None
        assert crud.claim_generation(session, job.id) is None  # claimed once
        assert crud.complete_generation(session, job.id, result={}, artifacts={}, audio_seconds=12.5)
        assert not crud.fail_generation(session, job.id, code="x", message="late")  # already final
        assert crud.usage_on(session, key.id, day) == pytest.approx(17.5)
        assert crud.cancel_generation(session, crud.get_generation(session, other.id, key_id=key.id))
        assert crud.usage_on(session, key.id, day) == pytest.approx(12.5)
        assert not crud.set_progress(session, other.id, 0.5)  # a cancelled job does not run on
        assert crud.get_generation(session, other.id, key_id=key.id + 1) is None  # not another key's


def test_settings_default_to_the_data_dir_and_refuse_bad_values(tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'tunesmith.db'}"
    assert settings.queue_url == f"sqlite:///{tmp_path / 'queue.db'}"
    monkeypatch.setenv("TUNESMITH_REQUESTS_PER_MINUTE", "7")
    monkeypatch.setenv("TUNESMITH_MODELS", '{"chorale": "/runs/chorale"}')
    settings = load_settings(data_dir=tmp_path, port=None)
    assert settings.requests_per_minute == 7 and str(settings.models["chorale"]) == "/runs/chorale"
    monkeypatch.setenv("TUNESMITH_REQUESTS_PER_MINUTE", "lots")
    with pytest.raises(ParameterError, match="requests_per_minute"):
        load_settings()
    monkeypatch.delenv("TUNESMITH_REQUESTS_PER_MINUTE")
    with pytest.raises(ParameterError, match="queue_url"):
        load_settings(queue_url="amqp://elsewhere")
