"""Analyses of uploaded recordings: the checks of a recording, the analysis of a stored file, the records, and
the queue's ``analyze`` job (:class:`AnalysisRunner`). What the routes do with them: :mod:`.analysis_requests`.

A recording (WAV, FLAC, MP3, OGG) is checked when it arrives: its type (by extension, else by its first bytes),
a readable header and its length (``max_analysis_seconds``; longer is a 413 naming ``file``). A file up to
``analysis_sync_seconds`` long is analyzed in the request (the route runs this in a threadpool) and answered
at once; a longer one is kept under ``<data dir>/analysis-inputs/<id>.<ext>`` and becomes a job on the same
Huey queue as generations (task ``analyze``), run by :class:`AnalysisRunner`, which deletes the file when done.
Either way the analysis is recorded (table ``analyses``), so ``GET /v1/analyses/{id}`` answers it.

The analyzer (the catalog's card with family ``analyzer``) is loaded once per process by :func:`load_analyzer`
(at start-up through `tunesmith.service.generations.tasks.preload`, else on first use), never at import.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from huey import Huey
from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tunesmith.errors import DependencyError, InputFileError, TunesmithError
from tunesmith.generation.catalog import Catalog, ModelEntry
from tunesmith.generation.models import load_analyzer
from tunesmith.service.db import Analysis, Database, is_id, utcnow
from tunesmith.service.errors import PayloadTooLarge
from tunesmith.service.leases import Leases
from tunesmith.service.metrics import JOB_BUCKETS, Metrics

if TYPE_CHECKING:
    from tunesmith.config import Settings

log = logging.getLogger("tunesmith.worker")
PREFIX = "/v1/analyses"
SUFFIXES = {".wav": "wav", ".wave": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "ogg", ".oga": "ogg"}
ACCEPTED = "WAV, FLAC, MP3 or OGG"
DECODE_RATE, DECODE_CHANNELS = 48_000, 2  # the samples a recording may decode to: max_analysis_seconds of these


# ------------------------------------------------------------------------------------------ the model


def analyzer_entry(catalog: Catalog) -> ModelEntry:
    """The model that analyzes (a 503 naming the missing weights when the server has none)."""
    if catalog.analyzer is None:
        raise DependencyError("this server has no analyzer model (weights/analyzer.json and .safetensors)",
                              field="model")
    return catalog.analyzer


# --------------------------------------------------------------------------------------- the file


def audio_format(filename: str, head: bytes) -> str:
    """wav, flac, mp3 or ogg: by the file's extension, else by its first bytes; 400 on ``file`` otherwise."""
    by_name = SUFFIXES.get(Path(filename).suffix.lower())
    if by_name:
        return by_name
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    shown = Path(filename).suffix or "no extension"
    raise InputFileError(f"{filename or 'the file'} ({shown}) is not audio this server reads; send {ACCEPTED}",
                         field="file")


def safe_name(filename: str, fmt: str) -> str:
    """The client's file name without folders or odd characters (for messages and records)."""
    name = re.sub(r"[^\w.\- ]+", "_", Path(filename.replace("\\", "/")).name).strip(" .")[:200]
    return name or f"upload.{fmt}"


def _as_file_error(exc: TunesmithError, path: Path, filename: str) -> InputFileError:
    """A decoding or analysis error about our scratch file, told about the client's file (field ``file``)."""
    message = exc.message.replace(str(path), filename)
    return InputFileError(message, field="file")


def check_audio(path: Path, filename: str, settings: Settings) -> float:
    """The recording's length in seconds from its header; 400 if unreadable, 413 if over the limit."""
    from tunesmith.audio.io import info

    try:
        facts = info(path)
    except TunesmithError as exc:
        raise _as_file_error(exc, path, filename) from exc
    if facts.duration > settings.max_analysis_seconds:
        raise PayloadTooLarge(f"{filename} lasts {facts.duration:.0f} s; this server analyzes recordings of at "
                              f"most {settings.max_analysis_seconds:g} s", field="file")
    budget = settings.max_analysis_seconds * DECODE_RATE * DECODE_CHANNELS
    if facts.frames * facts.channels > budget:  # what decoding takes before the mix to mono
        raise PayloadTooLarge(f"{filename} holds {facts.frames * facts.channels} samples ({facts.channels} channels "
                              f"at {facts.sr} Hz); this server decodes at most {budget:.0f} (its longest recording "
                              f"in stereo at {DECODE_RATE} Hz): send fewer channels or a lower rate", field="file")
    return float(facts.duration)


def analyze_path(path: Path, filename: str, entry: ModelEntry, settings: Settings) -> dict[str, Any]:
    """The analysis of a stored recording (tags, key, tempo, loudness, melody), naming the client's file."""
    from tunesmith.analyze.report import analyze_file

    analyzer = load_analyzer(entry.card_path)
    try:
        report = analyze_file(path, analyzer=analyzer, max_seconds=settings.max_analysis_seconds)
    except TunesmithError as exc:  # undecodable, truncated, too short to hear anything in
        raise _as_file_error(exc, path, filename) from exc
    return {**report, "file": filename, "model": {"id": entry.id, "version": entry.version}}


def inputs_dir(settings: Settings) -> Path:
    folder = settings.data_dir / "analysis-inputs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def input_path(settings: Settings, analysis: Analysis) -> Path:
    return inputs_dir(settings) / f"{analysis.id}.{analysis.format}"


# -------------------------------------------------------------------------------------------- records


def public(analysis: Analysis) -> dict[str, Any]:
    """The analysis as the API shows it; ``result`` is the analysis once it succeeded."""
    base = f"{PREFIX}/{analysis.id}"
    return {"id": analysis.id, "status": analysis.status, "progress": round(analysis.progress, 3),
            "filename": analysis.filename, "format": analysis.format, "bytes": analysis.bytes,
            "duration": round(analysis.duration, 3), "result": analysis.result, "error": analysis.error,
            "created": analysis.created, "started": analysis.started, "finished": analysis.finished,
            "interruptions": analysis.interruptions or 0, "links": {"self": base, "events": f"{base}/events"}}


def find_analysis(session: Session, analysis_id: str, *, key_id: int | None) -> Analysis | None:
    if not is_id(analysis_id):
        return None
    query = select(Analysis).where(Analysis.id == analysis_id)
    if key_id is not None:
        query = query.where(Analysis.key_id == key_id)
    return session.scalar(query)


def update_analysis(session: Session, analysis_id: str, from_statuses: tuple[str, ...], *, lease: str | None = None,
                    **values: Any) -> bool:
    """Change a record in one of ``from_statuses`` (and, with ``lease``, still held by that run)."""
    query = update(Analysis).where(Analysis.id == analysis_id, Analysis.status.in_(from_statuses))
    if lease is not None:
        query = query.where(Analysis.lease_owner == lease)
    result = session.execute(query.values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


# -------------------------------------------------------------------------------------------- metrics


class AnalysisMetrics:
    """Analyses counted by mode (request or job) and outcome, and how long their analysis took."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[Metrics, AnalysisMetrics]] = weakref.WeakKeyDictionary()

    def __init__(self, metrics: Metrics) -> None:
        self.count = Counter("tunesmith_analyses", "analyses answered", ("mode", "status"),
                             registry=metrics.registry)
        self.seconds = Histogram("tunesmith_analysis_duration_seconds", "time to analyze a recording", ("mode",),
                                 buckets=JOB_BUCKETS, registry=metrics.registry)

    @classmethod
    def of(cls, metrics: Metrics) -> AnalysisMetrics:
        """The analysis metrics registered in ``metrics`` (created once per registry)."""
        found = cls._by_registry.get(metrics)
        if found is None:
            found = cls._by_registry[metrics] = cls(metrics)
        return found

    def observe(self, mode: str, status: str, seconds: float) -> None:
        self.count.labels(mode, status).inc()
        if status == "succeeded":
            self.seconds.labels(mode).observe(seconds)


# ------------------------------------------------------------------------------------------- the job


class AnalysisRunner:
    """Runs analysis jobs: claim -> load the analyzer -> analyze -> record; the stored recording is deleted."""

    def __init__(self, db: Database, catalog: Catalog, settings: Settings, metrics: Metrics | None = None,
                 leases: Leases | None = None) -> None:
        self.db = db
        self.leases = leases
        self.catalog = catalog
        self.settings = settings
        self.metrics = AnalysisMetrics.of(metrics) if metrics is not None else None

    def run(self, analysis_id: str) -> str:
        """Run one job to its end; returns the final status (``skipped`` if it was not queued any more)."""
        started = time.perf_counter()
        lease = self.leases.new() if self.leases is not None else None
        with self.db.session() as session:
            claimed = update_analysis(session, analysis_id, ("queued",), status="running", started=utcnow(),
                                      progress=0.05, lease_owner=lease,
                                      lease_expires=self.leases.expiry() if self.leases is not None else None)
            analysis = find_analysis(session, analysis_id, key_id=None) if claimed else None
        if analysis is None:
            log.info("analysis %s is no longer queued; not started", analysis_id)
            return "skipped"
        if self.leases is not None and lease is not None:
            self.leases.hold(lease, Analysis, analysis_id)
        path = input_path(self.settings, analysis)
        status = "failed"
        try:
            self._analyze(analysis, path, lease)
            status = "succeeded"
        except TunesmithError as exc:
            self._fail(analysis_id, exc.code, exc.message, lease)
        except Exception as exc:  # a bug: keep the worker alive, fail the job, log the trace
            log.exception("analysis %s failed", analysis_id)
            self._fail(analysis_id, "internal_error", f"internal error ({type(exc).__name__}); this is a bug", lease)
        finally:
            if self.leases is not None and lease is not None:
                self.leases.release(lease)
            path.unlink(missing_ok=True)
            if self.metrics is not None:
                self.metrics.observe("job", status, time.perf_counter() - started)
        return status

    def _analyze(self, analysis: Analysis, path: Path, lease: str | None = None) -> None:
        if not path.is_file():
            raise InputFileError(f"the recording of analysis {analysis.id} ({analysis.filename}) is missing from "
                                 "the server; send it again", field="file")
        entry = analyzer_entry(self.catalog)
        load_analyzer(entry.card_path)
        self._progress(analysis.id, 0.2, lease)
        result = analyze_path(path, analysis.filename, entry, self.settings)
        with self.db.session() as session:
            update_analysis(session, analysis.id, ("running",), lease=lease, status="succeeded", progress=1.0,
                            result=result, finished=utcnow(), lease_expires=None)

    def _progress(self, analysis_id: str, progress: float, lease: str | None = None) -> None:
        with self.db.session() as session:
            update_analysis(session, analysis_id, ("running",), lease=lease, progress=progress)

    def _fail(self, analysis_id: str, code: str, message: str, lease: str | None = None) -> None:
        with self.db.session() as session:
            update_analysis(session, analysis_id, ("queued", "running"), lease=lease, status="failed",
                            finished=utcnow(), error={"code": code, "message": message}, lease_expires=None)


class AnalysisQueue:
    """The queue's ``analyze(analysis_id)`` task (registered on the Huey instance generations use)."""

    def __init__(self, huey: Huey, runner: AnalysisRunner) -> None:
        self.runner = runner
        self._analyze = huey.task(name="analyze")(runner.run)

    def submit(self, analysis_id: str) -> None:
        self._analyze(analysis_id)
