"""The generation job, as a queue worker runs it, and the per-process cache of loaded models.

A worker process loads each composer once (:func:`load_composer`, normally at start-up through
:func:`preload`) and keeps it. A job: claim (a cancelled job is not started) -> compose -> render -> write
MIDI, WAV and the other requested formats into the artifact store -> record. Progress is written to the job's
record at each stage (0.1 loaded, 0.5 composed, 0.9 rendered, 1.0 done); when a stage finds the job cancelled
it stops, and a result that comes back after a cancellation is discarded. A job with ``params.input`` continues
(or, with ``params.harmonize``, harmonizes) an uploaded score; every job also draws a spectrogram and a piano roll.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import TunesmithError
from tunesmith.service import crud
from tunesmith.service.catalog import Catalog
from tunesmith.service.db import Database
from tunesmith.service.images import artifact_ext, work_title, write_images
from tunesmith.service.metrics import Metrics
from tunesmith.service.storage import ArtifactStore
from tunesmith.service.uploads import composer_input, upload_store

log = logging.getLogger("tunesmith.worker")
SAMPLE_RATE = 44100

_composers: dict[Path, Any] = {}
_composers_lock = threading.Lock()


def load_composer(card_path: Path) -> Any:
    """The composer of a model card, loaded on first use in this process and kept."""
    from tunesmith.compose.composer import Composer

    with _composers_lock:
        composer = _composers.get(card_path)
        if composer is None:
            started = time.perf_counter()
            composer = Composer.load(card_path)
            _composers[card_path] = composer
            log.info("loaded model %s in %.1f s", card_path, time.perf_counter() - started)
        return composer


def loaded_cards() -> set[Path]:
    with _composers_lock:
        return set(_composers)


def preload(catalog: Catalog, model_ids: list[str] | None) -> list[str]:
    """Load ``model_ids`` (None: every model of the catalog, and the analyzer) and the synthesizer; returns the
    ids loaded."""
    from tunesmith.service.analyses import load_analyzer
    from tunesmith.symbolic.render import get_renderer

    analyzer = catalog.analyzer.id if catalog.analyzer is not None else None
    ids = [m for m in (list(catalog.models) if model_ids is None else model_ids) if m != analyzer]
    for model_id in ids:
        load_composer(catalog.get(model_id).card_path)
    if ids:
        get_renderer(SAMPLE_RATE)
    if catalog.analyzer is not None and (model_ids is None or analyzer in model_ids):
        load_analyzer(catalog.analyzer.card_path)
        ids.append(catalog.analyzer.id)
    return ids


def composer_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """A job's stored params -> keyword arguments of `Composer.generate`."""
    numerator, denominator = (int(x) for x in str(params.get("meter", "4/4")).split("/"))
    return {"key": params.get("key"), "bars": params.get("bars"), "time_signature": (numerator, denominator),
            "tempo": params.get("tempo"), "temperature": params.get("temperature", 1.0),
            "top_p": params.get("top_p", 0.95), "seed": params.get("seed"), "instrument": params.get("instrument")}


class Cancelled(Exception):
    """The job was cancelled (or deleted) while it ran."""


class GenerationRunner:
    """Runs generation jobs against one database, artifact store and catalog."""

    def __init__(self, db: Database, store: ArtifactStore, catalog: Catalog, metrics: Metrics | None = None) -> None:
        self.db = db
        self.store = store
        self.catalog = catalog
        self.metrics = metrics

    def run(self, generation_id: str) -> str:
        """Run one job to its end; returns the final status (``skipped`` if it was not queued any more)."""
        started = time.perf_counter()
        with self.db.session() as session:
            generation = crud.claim_generation(session, generation_id)
        if generation is None:
            log.info("generation %s is no longer queued; not started", generation_id)
            return "skipped"
        status, audio_seconds = "failed", 0.0
        try:
            status, audio_seconds = self._make(generation_id, generation.model, generation.params,
                                               list(generation.formats))
        except Cancelled:
            status = "cancelled"
        except TunesmithError as exc:
            self._fail(generation_id, exc.code, exc.message)
        except Exception as exc:  # a bug: keep the worker alive, fail the job, log the trace
            log.exception("generation %s failed", generation_id)
            self._fail(generation_id, "internal_error", f"internal error ({type(exc).__name__}); this is a bug")
        finally:
            if self.metrics is not None:
                self.metrics.job_finished(generation.model, status, time.perf_counter() - started, audio_seconds)
        return status

    def _make(self, generation_id: str, model: str, params: dict[str, Any], formats: list[str]) -> tuple[str, float]:
        from tunesmith.symbolic.render import get_renderer

        composer = load_composer(self.catalog.get(model).card_path)
        self._progress(generation_id, 0.1)
        source = (composer_input(self.db, upload_store(self.store), params["input"], bool(params.get("harmonize")))
                  if params.get("input") else {})
        composition = composer.generate(**composer_arguments(params), **source)
        composition.score.title = f"Tunesmith {work_title(model, composition.params)}"  # not the server's card path
        self._progress(generation_id, 0.5)
        audio = get_renderer(SAMPLE_RATE).render(composition.score)
        self._progress(generation_id, 0.9)
        artifacts = self._write(composition.score, audio, formats)
        artifacts |= write_images(self.store, composition.score, audio, SAMPLE_RATE,
                                  title=work_title(model, composition.params))
        audio_seconds = round(audio.shape[1] / SAMPLE_RATE, 3)
        result = {**composition.params, "notes": composition.interpretation, "model_version":
                  self.catalog.get(model).version, "compose_seconds": round(composition.seconds, 3),
                  "n_notes": composition.score.n_notes, "sample_rate": SAMPLE_RATE}
        with self.db.session() as session:
            done = crud.complete_generation(session, generation_id, result=result, artifacts=artifacts,
                                            audio_seconds=audio_seconds)
        if not done:
            self._discard(artifacts)
            raise Cancelled
        return "succeeded", audio_seconds

    def _progress(self, generation_id: str, progress: float) -> None:
        with self.db.session() as session:
            running = crud.set_progress(session, generation_id, progress)
        if not running:
            raise Cancelled

    def _write(self, score: Any, audio: np.ndarray, formats: list[str]) -> dict[str, Any]:
        from tunesmith.audio.io import save
        from tunesmith.symbolic.io import write_midi

        artifacts: dict[str, Any] = {}
        with self.store.scratch_file("mid") as path:
            write_midi(score, path)
            sha, size = self.store.put_file(path, "mid")
            artifacts["mid"] = {"sha256": sha, "bytes": size}
        for fmt in ["wav", *[f for f in formats if f not in ("wav", "mid")]]:
            with self.store.scratch_file(fmt) as path:
                save(path, audio, SAMPLE_RATE, format=fmt)
                sha, size = self.store.put_file(path, fmt)
                artifacts[fmt] = {"sha256": sha, "bytes": size}
        return artifacts

    def _discard(self, artifacts: dict[str, Any]) -> None:
        with self.db.session() as session:
            unused = [(e["sha256"], kind) for kind, e in artifacts.items() if not crud.artifact_in_use(session,
                                                                                                       e["sha256"])]
        for sha, kind in unused:
            self.store.remove(sha, artifact_ext(kind))

    def _fail(self, generation_id: str, code: str, message: str) -> None:
        with self.db.session() as session:
            crud.fail_generation(session, generation_id, code=code, message=message)
