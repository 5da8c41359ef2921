"""The generation job as a queue worker runs it: the pipeline (:mod:`tunesmith.generation.pipeline`) wrapped with
job state, progress and cancel.

A worker process loads each model once (normally at start-up through :func:`preload`) and keeps it. A job: claim
(a cancelled job is not started) -> the pipeline's load, generate, originality and render -> watermark, encode and
sign every requested format into the artifact store -> pictures -> record. Progress is written to the job's
record at each stage (0.1 loaded, 0.5 generated, 0.9 rendered, 1.0 done); when a stage finds the job cancelled
it stops, and a result that comes back after a cancellation is discarded. A job with ``params.input`` reads its
uploaded score; a work without a score (one note) has no MIDI and no piano roll.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from typing import Any

from tunesmith.errors import TunesmithError
from tunesmith.generation.catalog import Catalog, ModelEntry
from tunesmith.generation.models import load_analyzer
from tunesmith.generation.originality import OriginalityGate
from tunesmith.generation.pipeline import SAMPLE_RATE, STEM, Made, deliver, load_model, make_work
from tunesmith.generation.signing import Stamper, work_payload
from tunesmith.service import crud
from tunesmith.service.db import Database, Generation
from tunesmith.service.images import artifact_ext, plot_spectrogram, write_images
from tunesmith.service.leases import Leases
from tunesmith.service.metrics import Metrics
from tunesmith.service.storage import ArtifactStore
from tunesmith.service.uploads import input_score, upload_store

log = logging.getLogger("tunesmith.worker")
__all__ = ["SAMPLE_RATE", "GenerationRunner", "preload", "prepare_audio_originality"]


def preloaded_ids(catalog: Catalog, model_ids: list[str] | None) -> list[str]:
    """The ids `preload` loads for ``model_ids`` (None: every model of the catalog, then the analyzer)."""
    analyzer = catalog.analyzer.id if catalog.analyzer is not None else None
    ids = [m for m in (list(catalog.models) if model_ids is None else model_ids) if m != analyzer]
    if analyzer is not None and (model_ids is None or analyzer in model_ids):
        ids.append(analyzer)
    return ids


def preload(catalog: Catalog, model_ids: list[str] | None) -> list[str]:
    """Load ``model_ids`` (None: every model of the catalog, and the analyzer) and the synthesizer (the
    soundfonts their scores render with decoded in the background); returns the ids loaded."""
    from tunesmith.symbolic.render import decode_soundfont_in_background, get_renderer, preferred_soundfont

    ids = preloaded_ids(catalog, model_ids)
    analyzer = catalog.analyzer.id if catalog.analyzer is not None else None
    models = [catalog.get(m) for m in ids if m != analyzer]
    for entry in models:
        for member in entry.members.values() or (entry,):  # a model made of several cards: each card's
            load_model(member)
    soundfonts = {preferred_soundfont(e.family.soundfont) for e in models if "midi" in e.family.outputs}
    if soundfonts:
        get_renderer(SAMPLE_RATE)
        for soundfont in soundfonts:
            decode_soundfont_in_background(soundfont)
    if analyzer in ids:
        load_analyzer(catalog.analyzer.card_path)
    return ids


def prepare_audio_originality(gate: OriginalityGate, catalog: Catalog, loaded: list[str]) -> None:
    """Start building, in the background, the training-audio index of every loaded model whose works are checked
    as sounds (the first job would start it otherwise); it never delays start-up or the API."""
    analyzer = catalog.analyzer.card_path if catalog.analyzer is not None else None
    for model_id in loaded:
        entry = catalog.models.get(model_id)
        if entry is not None and entry.family.originality == "audio":
            gate.audio.prepare(entry.id, entry.card, analyzer)


class Cancelled(Exception):
    """The job was cancelled (or deleted) while it ran."""


class LeaseLost(Exception):
    """This run's lease ran out and the job was queued again (it runs elsewhere): this run stops, writing nothing."""


class GenerationRunner:
    """Runs generation jobs against one database, artifact store and catalog."""

    def __init__(self, db: Database, store: ArtifactStore, catalog: Catalog, metrics: Metrics | None = None, *,
                 stamper: Stamper | None = None, gate: OriginalityGate | None = None,
                 leases: Leases | None = None) -> None:
        self.db = db
        self.leases = leases  # each run holds a lease its writes name (None: runs without, as in some tests)
        self._run = threading.local()  # the lease of the job this worker thread runs
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.stamper = stamper  # watermark + signed manifest in every file (None: files are left unsigned)
        self.gate = gate  # originality against the training corpus (None: not checked)

    def run(self, generation_id: str) -> str:
        """Run one job to its end; returns the final status (``skipped`` if it was not queued any more)."""
        started = time.perf_counter()
        lease = self.leases.new() if self.leases is not None else None
        with self.db.session() as session:
            generation = crud.claim_generation(session, generation_id, lease,
                                               self.leases.expiry() if self.leases is not None else None)
        if generation is None:
            log.info("generation %s is no longer queued; not started", generation_id)
            return "skipped"
        self._run.lease = lease
        if self.leases is not None and lease is not None:
            self.leases.hold(lease, Generation, generation_id)
        status, audio_seconds = "failed", 0.0
        try:
            status, audio_seconds = self._make(generation_id, generation.model, generation.params,
                                               list(generation.formats), generation.key_id)
            log.info("generation %s succeeded (lease %s)", generation_id, lease)
        except Cancelled:
            status = "cancelled"
        except LeaseLost:
            status = "lost"
            log.warning("generation %s: lease %s ran out and the job was queued again; this run stops", generation_id,
                        lease)
        except TunesmithError as exc:
            self._fail(generation_id, exc.code, exc.message)
        except Exception as exc:  # a bug: keep the worker alive, fail the job, log the trace
            log.exception("generation %s failed", generation_id)
            self._fail(generation_id, "internal_error", f"internal error ({type(exc).__name__}); this is a bug")
        finally:
            if self.leases is not None and lease is not None:
                self.leases.release(lease)
            self._run.lease = None
            if self.metrics is not None:
                self.metrics.job_finished(generation.model, status, time.perf_counter() - started, audio_seconds)
        return status

    def _make(self, generation_id: str, model: str, params: dict[str, Any], formats: list[str],
              key_id: int | None = None) -> tuple[str, float]:
        entry = self.catalog.get(model)
        source = (input_score(self.db, upload_store(self.store), params["input"]) if params.get("input") else None)
        analyzer = self.catalog.analyzer.card_path if self.catalog.analyzer is not None else None
        made = make_work(entry, params, source=source, gate=self.gate, analyzer_card=analyzer,
                         stems=True if "stems" in formats else None,
                         progress=lambda fraction: self._progress(generation_id, fraction))
        return self._deliver(generation_id, entry, made, formats, key_id)

    def _deliver(self, generation_id: str, entry: ModelEntry, made: Made, formats: list[str],
                 key_id: int | None) -> tuple[str, float]:
        """Watermark, encode, sign, store and record a finished work; its files are removed again if the job was
        cancelled meanwhile."""
        work = made.work
        self._progress(generation_id, 0.9)
        artifacts, provenance = self._write(generation_id, entry, made, formats, key_id)
        audio = made.audio
        if work.score is not None:
            artifacts |= write_images(self.store, work.score, audio, SAMPLE_RATE, title=work.title)
        else:
            with self.store.scratch_file("png") as path:  # no score: no piano roll
                plot_spectrogram(audio, SAMPLE_RATE, path, title=work.title)
                sha, size = self.store.put_file(path, "png")
            artifacts["spectrogram"] = {"sha256": sha, "bytes": size}
        audio_seconds = round(audio.shape[1] / SAMPLE_RATE, 3)
        result = {**work.result, "model_version": (made.entry or entry).version, "sample_rate": SAMPLE_RATE}
        if made.stems:
            result["stems"] = list(made.stems)
        with self.db.session() as session:
            done = crud.complete_generation(session, generation_id, result=result, artifacts=artifacts,
                                            audio_seconds=audio_seconds, provenance=provenance,
                                            originality=made.originality, lease=self._lease())
        if not done:
            stop = self._stopped(generation_id)
            if stop is Cancelled:  # a lost lease keeps its files: the job's new run may have stored the same bytes
                self._discard(artifacts)
            raise stop
        return "succeeded", audio_seconds

    def _write(self, generation_id: str, entry: ModelEntry, made: Made, formats: list[str],
               key_id: int | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Mark, encode and sign the work's MIDI (if it has a score), WAV and other formats into the store;
        returns (artifacts, provenance record)."""
        artifacts: dict[str, Any] = {}
        with ExitStack() as scratch:
            kinds = (["mid"] if made.work.score is not None else []) + ["wav"] + [f for f in formats
                                                                                    if f not in ("wav", "mid", "stems")]
            kinds += [f"{STEM}{name}" for name in made.stems or {}]
            files = {fmt: scratch.enter_context(self.store.scratch_file(artifact_ext(fmt))) for fmt in kinds}
            provenance = deliver(made, entry, files, payload=work_payload(generation_id), stamper=self.stamper,
                                 requester=key_id)
            for fmt, path in files.items():
                sha, size = self.store.put_file(path, artifact_ext(fmt))
                artifacts[fmt] = {"sha256": sha, "bytes": size}
        return artifacts, provenance

    def _lease(self) -> str | None:
        return getattr(self._run, "lease", None)

    def _stopped(self, generation_id: str) -> type[Cancelled] | type[LeaseLost]:
        """Why a write of this run was refused: the job was cancelled or deleted, or this run lost its lease."""
        with self.db.session() as session:
            record = crud.get_generation(session, generation_id, key_id=None)
        lost = record is not None and record.status in ("queued", "running") and record.lease_owner != self._lease()
        return LeaseLost if lost else Cancelled

    def _progress(self, generation_id: str, progress: float) -> None:
        with self.db.session() as session:
            running = crud.set_progress(session, generation_id, progress, self._lease())
        if not running:
            raise self._stopped(generation_id)

    def _discard(self, artifacts: dict[str, Any]) -> None:
        with self.db.session() as session:
            unused = [(e["sha256"], kind) for kind, e in artifacts.items() if not crud.artifact_in_use(session,
                                                                                                       e["sha256"])]
        for sha, kind in unused:
            self.store.remove(sha, artifact_ext(kind))

    def _fail(self, generation_id: str, code: str, message: str) -> None:
        with self.db.session() as session:
            crud.fail_generation(session, generation_id, code=code, message=message, lease=self._lease())
