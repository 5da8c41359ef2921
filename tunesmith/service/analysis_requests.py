"""What POST /v1/analyses and GET /v1/analyses/{id} do, without HTTP: check an uploaded recording, analyze it
now (short) or queue it (long), look one up (see :mod:`tunesmith.service.analyses`)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tunesmith.errors import InputFileError, TunesmithError
from tunesmith.generation.catalog import ModelEntry
from tunesmith.service.analyses import (
    AnalysisMetrics,
    analyze_path,
    analyzer_entry,
    audio_format,
    check_audio,
    find_analysis,
    inputs_dir,
    safe_name,
    update_analysis,
)
from tunesmith.service.db import Analysis, ApiKey, utcnow
from tunesmith.service.errors import NotFound, PayloadTooLarge
from tunesmith.service.state import Services


def get(services: Services, key: ApiKey, analysis_id: str) -> Analysis:
    """The key's analysis (another key's analysis does not exist for it: 404)."""
    with services.db.session() as session:
        analysis = find_analysis(session, analysis_id, key_id=key.id)
    if analysis is None:
        raise NotFound(f"no analysis {analysis_id!r}", field="id")
    return analysis


def submit(services: Services, key: ApiKey, filename: str, data: bytes) -> tuple[Analysis, bool]:
    """Check a recording, then analyze it now (short) or queue it (long); returns (record, answered now)."""
    settings = services.settings
    entry = analyzer_entry(services.catalog)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"{filename or 'the file'} has {len(data)} bytes; the limit is "
                              f"{settings.max_upload_bytes} bytes", field="file")
    if not data:
        raise InputFileError(f"{filename or 'the file'} is empty", field="file")
    fmt = audio_format(filename, data[:16])
    name = safe_name(filename, fmt)
    analysis_id = str(uuid.uuid4())
    path = inputs_dir(settings) / f"{analysis_id}.{fmt}"
    path.write_bytes(data)
    keep = False
    try:
        duration = check_audio(path, name, settings)
        record = Analysis(id=analysis_id, key_id=key.id, filename=name, format=fmt, bytes=len(data),
                          duration=duration, status="queued", progress=0.0, created=utcnow())
        if duration > settings.analysis_sync_seconds:
            keep = True
            return _queue(services, record), False
        return _analyze_now(services, record, path, entry), True
    finally:
        if not keep:
            path.unlink(missing_ok=True)


def _analyze_now(services: Services, record: Analysis, path: Path, entry: ModelEntry) -> Analysis:
    stats = AnalysisMetrics.of(services.metrics)
    started = time.perf_counter()
    record.started = utcnow()
    try:
        result = analyze_path(path, record.filename, entry, services.settings)
    except TunesmithError:
        stats.observe("request", "failed", time.perf_counter() - started)
        raise
    stats.observe("request", "succeeded", time.perf_counter() - started)
    record.status, record.progress, record.result, record.finished = "succeeded", 1.0, result, utcnow()
    with services.db.session() as session:
        session.add(record)
    return record


def _queue(services: Services, record: Analysis) -> Analysis:
    with services.db.session() as session:
        session.add(record)
    try:
        services.analyses.submit(record.id)
    except Exception:
        with services.db.session() as session:
            update_analysis(session, record.id, ("queued",), status="failed", finished=utcnow(),
                        error={"code": "queue_unavailable", "message": "the job queue failed"})
        raise
    return record
