"""Provenance of the service's works: the server's signing key, the watermark and signed manifest of every file.

One :class:`Stamper` per process (made by `start_services`): it loads the data directory's Ed25519 key (made on
first start, mode 0600, by `tunesmith.provenance.signing`). The worker marks a work's audio with
:func:`tunesmith.provenance.stamp.watermark_audio` (payload: :func:`work_payload`, the work id's first four hex
digits, so a detected payload points at the work) before it encodes any format, then :meth:`Stamper.stamp`
embeds the signed manifest (model, version, weights and training-data hashes from the card, params, seed, time,
sha256 of the requesting key's id) in every file.
The work's record keeps :meth:`Stamper.record`: the manifest, the signer's key id and each file's content hash.

:class:`OriginalityGate` checks a symbolic work against the training corpus its model card names (the index is
built once per process, cached under ``<data dir>/originality``); a corpus that is not on this machine gives
an ``unchecked`` report with the reason instead of failing the work. Its :attr:`OriginalityGate.audio`
(:class:`AudioOriginalityGate`) does the same for the neural instrument's notes: the nearest training note in
the analyzer's embedding space, from an index built in a background thread (cached under the same directory).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import DependencyError, InputFileError, TunesmithError
from tunesmith.provenance.audio_gate import AUDIO_THRESHOLD, EmbeddingIndex, check_audio, index_for_audio_dataset
from tunesmith.provenance.embed import embed_manifest
from tunesmith.provenance.gate import check_symbolic, index_for_card
from tunesmith.provenance.manifest import Manifest
from tunesmith.provenance.originality import SymbolicIndex
from tunesmith.provenance.signing import key_id, load_or_create_signing_key, public_key_b64, public_key_pem
from tunesmith.provenance.stamp import payload_for, stamp_outputs, watermark_audio
from tunesmith.provenance.verify import verify_file
from tunesmith.provenance.watermark import check_payload

__all__ = ["AudioOriginalityGate", "OriginalityGate", "OriginalityRejected", "Stamper", "watermark_audio",
           "work_payload"]
log = logging.getLogger("tunesmith.worker")


def work_payload(work_id: str) -> int:
    """The 16-bit watermark payload of a work: the first four hex digits of its id (a UUID), e.g. 0x87b9 for
    87b9...; an id that does not start with hex digits gets the first 16 bits of its sha256."""
    head = work_id[:4]
    return int(head, 16) if len(head) == 4 and all(c in "0123456789abcdefABCDEF" for c in head) \
        else payload_for(work_id)


class Stamper:
    """The server's signing key and the stamping of a work's files with it."""

    def __init__(self, data_dir: Path) -> None:
        self.key = load_or_create_signing_key(data_dir)
        self.key_id = key_id(self.key)

    def public_key(self) -> dict[str, str]:
        """What GET /v1/provenance/public-key serves."""
        return {"algorithm": "Ed25519", "key_id": self.key_id, "pem": public_key_pem(self.key),
                "raw_base64": public_key_b64(self.key)}

    @staticmethod
    def manifest(model_id: str, version: str, card: Mapping[str, Any], params: Mapping[str, Any], *,
                 requester: int | str | None) -> Manifest:
        """The manifest of a work of model ``model_id`` (as served) made with ``params`` for API key ``requester``."""
        return Manifest.for_model({**card, "id": model_id, "version": version}, params=dict(params),
                                  seed=params.get("seed"), key_id=None if requester is None else str(requester))

    def stamp(self, files: Mapping[str, Path], manifest: Manifest, payload: int, *,
              marked: bool = True) -> dict[str, str]:
        """Sign every file (fmt -> path) in place; returns fmt -> signed content sha256.

        ``marked``: the audio was watermarked before it was encoded (what the worker does), so the manifest is
        embedded at once. Otherwise each audio file is first checked for the mark and marked if needed
        (`stamp_outputs`), which decodes it and, for MP3/OGG, would encode it a second time."""
        formats = list(files)
        if marked:
            stamped = Manifest.from_dict({**manifest.to_dict(), "watermark_payload": check_payload(payload)})
            signed = [embed_manifest(files[f], stamped, self.key) for f in formats]
        else:
            signed = stamp_outputs([files[f] for f in formats], manifest, self.key, payload=payload)
        return {fmt: str(m.content_sha256) for fmt, m in zip(formats, signed, strict=True)}

    def record(self, manifest: Manifest, payload: int, contents: Mapping[str, str]) -> dict[str, Any]:
        """The work's ``provenance``: the manifest as signed (without the per-file content hash), the signer's
        key id and each file's signed content hash."""
        signed = {k: v for k, v in manifest.to_dict().items() if k != "content_sha256"}
        return {"manifest": signed | {"watermark_payload": payload}, "key_id": self.key_id,
                "watermark_payload": f"0x{payload:04x}", "content_sha256": dict(contents)}

    @staticmethod
    def manifest_of(record: Mapping[str, Any]) -> Manifest:
        """The manifest a work's record keeps (to sign a format made later, e.g. an MP3 asked for afterwards)."""
        return Manifest.from_dict(dict(record["manifest"]))

    def verify(self, path: Path, filename: str) -> dict[str, Any]:
        """The verdict on a file: signature (valid, tampered, unsigned), manifest, watermark, one-line summary.

        The signature is checked against this server's key first (``key_trusted``: true); a file whose content
        is intact but which another key signed (another Tunesmith server) is ``valid`` with ``key_trusted``
        false. InputFileError (naming ``filename``, not the server's path) for files that are not audio or MIDI.
        """
        try:
            verdict = verify_file(path, self.key.public_key())
            if verdict.signature == "tampered":
                other = verify_file(path, None)
                verdict = other if other.signature == "valid" else verdict
        except TunesmithError as exc:
            raise InputFileError(exc.message.replace(str(path), filename), field="file") from exc
        return {"file": filename, **{k: v for k, v in verdict.to_dict().items() if k != "path"},
                "server_key_id": self.key_id}


class OriginalityRejected(TunesmithError):
    """Every try of a request with ``"originality": "reject"`` was flagged as too close to a training piece."""

    code = "originality_rejected"


class OriginalityGate:
    """Longest run a symbolic work shares with its model's training corpus; flagged over ``threshold`` notes."""

    def __init__(self, cache_dir: Path, *, threshold: int, tries: int,
                 audio_threshold: float = AUDIO_THRESHOLD) -> None:
        self.cache_dir = Path(cache_dir)
        self.threshold = threshold
        self.tries = tries  # how many pieces a request with "originality": "reject" may draw
        self.audio = AudioOriginalityGate(self.cache_dir, threshold=audio_threshold)
        self._indexes: dict[str, SymbolicIndex | str] = {}  # model id -> index, or why there is none
        self._lock = threading.Lock()

    def index(self, model_id: str, card: Mapping[str, Any]) -> SymbolicIndex | str:
        """The model's corpus index (built on first use in this process and kept), or why it cannot be built."""
        with self._lock:
            found = self._indexes.get(model_id)
            if found is None:
                found = self._indexes[model_id] = self._build(model_id, card)
            return found

    def _build(self, model_id: str, card: Mapping[str, Any]) -> SymbolicIndex | str:
        try:
            return index_for_card({**card, "id": model_id}, cache_dir=self.cache_dir)
        except TunesmithError as exc:
            log.warning("originality of model %s is unchecked: %s", model_id, exc.message)
            return exc.message

    def check(self, model_id: str, card: Mapping[str, Any], score: Any) -> dict[str, Any]:
        """The originality report of a work: checked (run, closest piece, flagged) or unchecked (reason)."""
        index = self.index(model_id, card)
        corpus = (card.get("data") or {}).get("path")
        if isinstance(index, str):
            return {"status": "unchecked", "reason": index, "corpus": corpus, "threshold": self.threshold,
                    "flagged": False, "longest_shared_run": None, "closest_piece": None}
        report = check_symbolic(score, index, self.threshold).to_dict()
        return {"status": "checked", "reason": None, "corpus": corpus, **report}


class AudioOriginalityGate:
    """Nearest training note of a generated note in the analyzer's embedding space; flagged under ``threshold``.

    The index of a model's training audio (the dataset its card names, embedded by the server's analyzer) takes
    30 s or more to build the first time, so it is built once per process in a background thread: by
    :meth:`prepare` at start-up, else by the first job that needs it. It is cached as ``.npz`` in ``cache_dir``,
    so a later start (or another process) only reads it. A job does not wait for a build unless it asked to
    reject flagged notes (``wait`` seconds at most); otherwise its report is ``unchecked`` with the reason."""

    def __init__(self, cache_dir: Path, *, threshold: float = AUDIO_THRESHOLD) -> None:
        self.cache_dir = Path(cache_dir)
        self.threshold = float(threshold)
        self._indexes: dict[str, EmbeddingIndex | str] = {}  # model id -> index, or why there is none
        self._builds: dict[str, tuple[threading.Thread, float]] = {}  # model id -> build thread, start time
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the builds still running (between two batches) and wait for them, at most ``timeout`` s."""
        self._closing.set()
        with self._lock:
            threads = [thread for thread, _ in self._builds.values()]
        for thread in threads:
            thread.join(timeout=timeout)

    def prepare(self, model_id: str, card: Mapping[str, Any], analyzer_card: Path | None) -> None:
        """Start building the index of ``model_id``'s training audio in the background (once per process)."""
        with self._lock:
            if model_id in self._indexes or model_id in self._builds or self._closing.is_set():
                return
            thread = threading.Thread(target=self._build, args=(model_id, dict(card), analyzer_card),
                                      name=f"audio-originality-{model_id}", daemon=True)
            self._builds[model_id] = (thread, time.monotonic())
        thread.start()

    def _build(self, model_id: str, card: dict[str, Any], analyzer_card: Path | None) -> None:
        from tunesmith.compose.weights import dataset_of
        from tunesmith.service.analyses import load_analyzer

        started = time.perf_counter()
        try:
            if analyzer_card is None:
                raise DependencyError("this server has no analyzer model to embed the notes with")
            dataset = dataset_of({**card, "id": model_id})
            found: EmbeddingIndex | str = index_for_audio_dataset(dataset, load_analyzer(analyzer_card),
                                                                  cache_dir=self.cache_dir, cancel=self._closing)
            log.info("audio originality index of model %s: %d training notes in %.1f s", model_id,
                     len(found.ids), time.perf_counter() - started)
        except TunesmithError as exc:
            log.warning("audio originality of model %s is unchecked: %s", model_id, exc.message)
            found = exc.message
        except Exception as exc:  # a bug: the works are delivered unchecked, the trace is logged
            log.exception("building the audio originality index of model %s failed", model_id)
            found = f"the index could not be built ({type(exc).__name__}); see the server log"
        with self._lock:
            self._indexes[model_id] = found
            self._builds.pop(model_id, None)

    def index(self, model_id: str, card: Mapping[str, Any], analyzer_card: Path | None, *,
              wait: float = 0.0) -> EmbeddingIndex | str:
        """The model's index, or why there is none (yet): starts the build if needed, waits ``wait`` s for it."""
        self.prepare(model_id, card, analyzer_card)
        with self._lock:
            found = self._indexes.get(model_id)
            build = self._builds.get(model_id)
        if found is not None or build is None:
            return found if found is not None else "the index was not built"
        build[0].join(timeout=max(0.0, wait))
        with self._lock:
            found = self._indexes.get(model_id)
        if found is None:
            return (f"the index of the training notes is still being built (started "
                    f"{time.monotonic() - build[1]:.0f} s ago); works made after it is ready are checked")
        return found

    def check(self, model_id: str, card: Mapping[str, Any], analyzer_card: Path | None, y: Any, sr: int, *,
              wait: float = 0.0) -> dict[str, Any]:
        """The originality report of a generated note ``y`` at ``sr``: checked (distance, nearest training note,
        flagged) or unchecked (reason)."""
        corpus = (card.get("data") or {}).get("path")
        index = self.index(model_id, card, analyzer_card, wait=wait)
        if isinstance(index, str):
            return {"status": "unchecked", "reason": index, "corpus": corpus, "threshold": self.threshold,
                    "flagged": False, "distance": None, "nearest_item": None}
        from tunesmith.service.analyses import load_analyzer

        report = check_audio(y, sr, index, load_analyzer(analyzer_card), self.threshold).to_dict()
        return {"status": "checked", "reason": None, "corpus": corpus, **report}
