"""The generation job, as a queue worker runs it, and the per-process cache of loaded models.

A worker process loads each composer (:func:`load_composer`) and the neural instrument of `notes` and `perform`
(:func:`load_notesynth`) once, normally at start-up through :func:`preload`, and keeps them. A job: claim (a
cancelled job is not started) -> compose -> render -> write MIDI, WAV and the other requested formats into the
artifact store -> record. Progress is written to the job's
record at each stage (0.1 loaded, 0.5 composed, 0.9 rendered, 1.0 done); when a stage finds the job cancelled
it stops, and a result that comes back after a cancellation is discarded. A job with ``params.input`` continues
(or, with ``params.harmonize``, harmonizes) an uploaded score; every job also draws a spectrogram and a piano roll.
A `notes` job plays one note with the GAN (WAV and audio formats, a spectrogram; no MIDI, no piano roll); a `perform`
job plays an uploaded score with it (its MIDI artifact is the uploaded score as performed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tunesmith.errors import TunesmithError
from tunesmith.generation.models import load_analyzer, load_composer, load_notesynth
from tunesmith.generation.originality import OriginalityGate, OriginalityRejected
from tunesmith.generation.signing import Stamper, watermark_audio, work_payload
from tunesmith.service import crud
from tunesmith.service.catalog import MAX_SEED, Catalog
from tunesmith.service.db import Database
from tunesmith.service.images import artifact_ext, work_title, write_images
from tunesmith.service.metrics import Metrics
from tunesmith.service.storage import ArtifactStore
from tunesmith.service.uploads import composer_input, upload_store

log = logging.getLogger("tunesmith.worker")
SAMPLE_RATE = 44100
AUDIO_INDEX_WAIT = 300.0  # s a note asked to be rejected when flagged waits for the training-audio index
PERFORM_ORIGINALITY = ("the music is the requester's uploaded score, not generated; the sound is the neural "
                       "instrument note by note, whose single notes `notes` works check against the training notes "
                       "(a mix of many notes has no meaningful distance to the 2 s single training notes)")
T = TypeVar("T")

def preload(catalog: Catalog, model_ids: list[str] | None) -> list[str]:
    """Load ``model_ids`` (None: every model of the catalog, and the analyzer) and the synthesizer; returns the
    ids loaded."""
    from tunesmith.symbolic.render import get_renderer

    analyzer = catalog.analyzer.id if catalog.analyzer is not None else None
    ids = [m for m in (list(catalog.models) if model_ids is None else model_ids) if m != analyzer]
    for model_id in ids:
        entry = catalog.get(model_id)
        (load_notesynth if entry.neural else load_composer)(entry.card_path)
    if any(not catalog.get(m).neural for m in ids):
        get_renderer(SAMPLE_RATE)
    if catalog.analyzer is not None and (model_ids is None or analyzer in model_ids):
        load_analyzer(catalog.analyzer.card_path)
        ids.append(catalog.analyzer.id)
    return ids


def prepare_audio_originality(gate: OriginalityGate, catalog: Catalog, loaded: list[str]) -> None:
    """Start building, in the background, the training-audio index of every loaded note model (the first
    `notes` job would start it otherwise); it never delays start-up or the API."""
    analyzer = catalog.analyzer.card_path if catalog.analyzer is not None else None
    for model_id in loaded:
        entry = catalog.models.get(model_id)
        if entry is not None and entry.task == "note":
            gate.audio.prepare(entry.id, entry.card, analyzer)


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

    def __init__(self, db: Database, store: ArtifactStore, catalog: Catalog, metrics: Metrics | None = None, *,
                 stamper: Stamper | None = None, gate: OriginalityGate | None = None) -> None:
        self.db = db
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.stamper = stamper  # watermark + signed manifest in every file (None: files are left unsigned)
        self.gate = gate  # originality against the training corpus (None: not checked)

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
                                               list(generation.formats), generation.key_id)
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

    def _make(self, generation_id: str, model: str, params: dict[str, Any], formats: list[str],
              key_id: int | None = None) -> tuple[str, float]:
        from tunesmith.symbolic.render import get_renderer

        entry = self.catalog.get(model)
        if entry.neural:
            return self._make_neural(generation_id, entry, params, formats, key_id)
        composer = load_composer(entry.card_path)
        self._progress(generation_id, 0.1)
        source = (composer_input(self.db, upload_store(self.store), params["input"], bool(params.get("harmonize")))
                  if params.get("input") else {})
        composition, originality = self._compose(composer, entry, params, source)
        composition.score.title = f"Tunesmith {work_title(model, composition.params)}"  # not the server's card path
        self._progress(generation_id, 0.5)
        audio = get_renderer(SAMPLE_RATE).render(composition.score)
        signed = {**params, "seed": composition.params.get("seed", params.get("seed"))}
        result = {**composition.params, "notes": composition.interpretation,
                  "compose_seconds": round(composition.seconds, 3), "n_notes": composition.score.n_notes}
        return self._deliver(generation_id, entry, signed, key_id, composition.score, audio, formats, result,
                             originality, title=work_title(model, composition.params))

    def _make_neural(self, generation_id: str, entry: Any, params: dict[str, Any], formats: list[str],
                     key_id: int | None) -> tuple[str, float]:
        """A `notes` job (one note) or a `perform` job (an uploaded score played by the GAN)."""
        from tunesmith.audio.dsp import resample

        synth = load_notesynth(entry.card_path)
        self._progress(generation_id, 0.1)
        score = None
        if entry.task == "perform":
            score = composer_input(self.db, upload_store(self.store), params["input"], False)["prime"]
            performance = synth.perform(score, params["instrument"], SAMPLE_RATE, seed=int(params["seed"]))
            program = next(i["program"] for i in entry.card["instruments"] if i["name"] == params["instrument"])
            for part in score.parts:  # the MIDI artifact: the piece as performed, on the instrument that played it
                if not part.is_drum:
                    part.program = int(program)
            mono, result = performance.audio, {"instrument": params["instrument"], "seed": params["seed"],
                                               "n_notes": performance.notes, "notes": performance.interpretation}
            originality: dict[str, Any] | None = {"status": "not_applicable", "reason": PERFORM_ORIGINALITY,
                                                  "flagged": False}
        else:
            note, originality, seed = self._draw(params, lambda seed: synth.note(
                params["instrument"], params["pitch"], velocity=params["velocity"], duration=params["duration"],
                seed=int(seed or 0), morph_to=params["morph_to"], morph=params["morph"]),
                self._note_check(entry, synth.sr, params), too_close_note)
            params = {**params, "seed": seed}  # the seed of the note delivered (signed in its manifest)
            mono = resample(note, orig_sr=synth.sr, target_sr=SAMPLE_RATE)
            result = {k: params[k] for k in ("instrument", "pitch", "velocity", "duration", "morph_to", "morph",
                                             "seed")}
        self._progress(generation_id, 0.5)
        audio = np.asarray(mono, dtype=np.float32)[None, :]
        return self._deliver(generation_id, entry, params, key_id, score, audio, formats, result, originality,
                             title=f"{entry.id}: {params['instrument']}")

    def _deliver(self, generation_id: str, entry: Any, signed: dict[str, Any], key_id: int | None, score: Any,
                 audio: np.ndarray, formats: list[str], result: dict[str, Any],
                 originality: dict[str, Any] | None, *, title: str) -> tuple[str, float]:
        """Watermark, sign, write and record a finished work (``score`` None: a note, with no MIDI or piano roll);
        its files are removed again if the job was cancelled meanwhile."""
        from tunesmith.service.images import plot_spectrogram

        payload = work_payload(generation_id)
        if self.stamper is not None:  # the watermark goes into the samples before any format is encoded
            audio = watermark_audio(audio, SAMPLE_RATE, payload)
        self._progress(generation_id, 0.9)
        manifest = (Stamper.manifest(entry.id, entry.version, entry.card, signed, requester=key_id)
                    if self.stamper is not None else None)
        artifacts, contents = self._write(score, audio, formats, manifest, payload)
        provenance = (self.stamper.record(manifest, payload, contents)
                      if self.stamper is not None and manifest is not None else None)
        if score is not None:
            artifacts |= write_images(self.store, score, audio, SAMPLE_RATE, title=title)
        else:
            with self.store.scratch_file("png") as path:  # a note has no score: no piano roll
                plot_spectrogram(audio, SAMPLE_RATE, path, title=title)
                sha, size = self.store.put_file(path, "png")
            artifacts["spectrogram"] = {"sha256": sha, "bytes": size}
        audio_seconds = round(audio.shape[1] / SAMPLE_RATE, 3)
        result = {**result, "model_version": entry.version, "sample_rate": SAMPLE_RATE}
        with self.db.session() as session:
            done = crud.complete_generation(session, generation_id, result=result, artifacts=artifacts,
                                            audio_seconds=audio_seconds, provenance=provenance,
                                            originality=originality)
        if not done:
            self._discard(artifacts)
            raise Cancelled
        return "succeeded", audio_seconds

    def _progress(self, generation_id: str, progress: float) -> None:
        with self.db.session() as session:
            running = crud.set_progress(session, generation_id, progress)
        if not running:
            raise Cancelled

    def _compose(self, composer: Any, entry: Any, params: dict[str, Any],
                 source: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """The composition and its originality report (see :meth:`_draw`)."""
        arguments = composer_arguments(params)
        check = (lambda composition: self.gate.check(entry.id, entry.card, composition.score)) \
            if self.gate is not None else None
        composition, report, _ = self._draw(params, lambda seed: composer.generate(**(arguments | {"seed": seed}),
                                                                                   **source), check, too_close_piece)
        return composition, report

    def _note_check(self, entry: Any, sr: int, params: dict[str, Any]) -> Callable[[Any], dict[str, Any]] | None:
        """The audio originality check of a `notes` job's note (None without a gate); a job that asked to reject
        flagged notes waits for the training-audio index (up to AUDIO_INDEX_WAIT s), others never wait."""
        if self.gate is None:
            return None
        gate, analyzer = self.gate.audio, self.catalog.analyzer
        wait = AUDIO_INDEX_WAIT if params.get("originality") == "reject" else 0.0
        return lambda note: gate.check(entry.id, entry.card, analyzer.card_path if analyzer is not None else None,
                                       note, sr, wait=wait)

    def _draw(self, params: dict[str, Any], make: Callable[[int | None], T],
              check: Callable[[T], dict[str, Any]] | None,
              refusal: Callable[[int, dict[str, Any]], str]) -> tuple[T, dict[str, Any] | None, int | None]:
        """(work, its originality report, its seed): ``make(seed)`` with the job's seed, checked by ``check``.

        With ``"originality": "reject"`` a flagged work is made again with the next seed, up to the gate's
        ``tries`` (OriginalityRejected with the ``refusal(tries, report)`` message when every one is flagged)."""
        reject = params.get("originality") == "reject" and self.gate is not None and check is not None
        tries = self.gate.tries if reject and self.gate is not None else 1
        first = params.get("seed")
        seeds: list[int | None] = []
        for attempt in range(tries):
            seeds.append(first if not attempt else (int(first or 0) + attempt) % (MAX_SEED + 1))
            made = make(seeds[-1])
            if check is None:
                return made, None, seeds[-1]
            report = check(made)
            if not report["flagged"]:
                break
        report |= {"tries": len(seeds), "seeds": seeds, "mode": "reject" if reject else "report"}
        if reject and report["flagged"]:
            raise OriginalityRejected(refusal(len(seeds), report), field="originality")
        return made, report, seeds[-1]

    def _write(self, score: Any, audio: np.ndarray, formats: list[str], manifest: Any = None,
               payload: int = 0) -> tuple[dict[str, Any], dict[str, str]]:
        """Write MIDI (unless ``score`` is None), WAV and the other formats, sign them (with a stamper), store them;
        returns (artifacts, each format's signed content sha256)."""
        from tunesmith.audio.io import save
        from tunesmith.symbolic.io import write_midi

        artifacts: dict[str, Any] = {}
        with ExitStack() as scratch:
            files: dict[str, Path] = {}
            if score is not None:
                files["mid"] = scratch.enter_context(self.store.scratch_file("mid"))
                write_midi(score, files["mid"])
            for fmt in ["wav", *[f for f in formats if f not in ("wav", "mid")]]:
                files[fmt] = scratch.enter_context(self.store.scratch_file(fmt))
                save(files[fmt], audio, SAMPLE_RATE, format=fmt)
            contents = (self.stamper.stamp(files, manifest, payload)
                        if self.stamper is not None and manifest is not None else {})
            for fmt, path in files.items():
                sha, size = self.store.put_file(path, fmt)
                artifacts[fmt] = {"sha256": sha, "bytes": size}
        return artifacts, contents

    def _discard(self, artifacts: dict[str, Any]) -> None:
        with self.db.session() as session:
            unused = [(e["sha256"], kind) for kind, e in artifacts.items() if not crud.artifact_in_use(session,
                                                                                                       e["sha256"])]
        for sha, kind in unused:
            self.store.remove(sha, artifact_ext(kind))

    def _fail(self, generation_id: str, code: str, message: str) -> None:
        with self.db.session() as session:
            crud.fail_generation(session, generation_id, code=code, message=message)


def too_close_piece(tries: int, report: dict[str, Any]) -> str:
    """Why a symbolic request with ``"originality": "reject"`` failed."""
    return (f"every one of {tries} tries shared a run of at least {report['longest_shared_run']} notes with the "
            f"training piece {report['closest_piece']} (the limit is {report['threshold']})")


def too_close_note(tries: int, report: dict[str, Any]) -> str:
    """Why a `notes` request with ``"originality": "reject"`` failed."""
    return (f"every one of {tries} tries was a near-copy of the training note {report['nearest_item']} (cosine "
            f"distance {report['distance']:.4f} in the analyzer's embedding space; the limit is "
            f"{report['threshold']})")
