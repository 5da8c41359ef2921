"""Originality of generated works against the training data their model card names.

The checks themselves are :mod:`tunesmith.provenance` (a symbolic work's longest shared run, a sound's nearest
training note in the analyzer's embedding space); this module builds their indexes from the built datasets
(:mod:`tunesmith.data`) and keeps them per process. :class:`OriginalityGate` checks a symbolic work against the
training corpus its model card names (the index is built once per process, cached under a directory); a corpus
that is not on this machine gives an ``unchecked`` report with the reason instead of failing the work. A song
(a multi-track score, from a model trained on the grooves corpus) is checked per track instead
(:meth:`OriginalityGate.check_tracks`, :mod:`tunesmith.provenance.song_originality`). Its
:attr:`OriginalityGate.audio` (:class:`AudioOriginalityGate`) does the same for the neural instrument's notes:
the nearest training note, from an index built in a background thread.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.checkpoints import dataset_of
from tunesmith.data.corpora.grooves import iter_songs, role_notes
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, DependencyError, ParameterError, TunesmithError
from tunesmith.progress import progress
from tunesmith.provenance.audio_gate import AUDIO_THRESHOLD, BATCH, EmbeddingIndex, check_audio
from tunesmith.provenance.gate import check_symbolic, load_index, save_index
from tunesmith.provenance.originality import SymbolicIndex, voice_steps
from tunesmith.provenance.song_copy_guard import CopyGuard
from tunesmith.provenance.song_originality import CACHE_VERSION, HASH_TAG, SongTracks, TrackIndex, check_song
from tunesmith.symbolic.score import Note, Score

log = logging.getLogger("tunesmith.worker")


def training_pieces(dataset_dir: str | os.PathLike[str], splits: Sequence[str] = ("train",)) -> list[tuple[str, Score]]:
    """(record id, score) of every piece in the given splits of a symbolic dataset (decoded from its tokens)."""
    dataset = Dataset(dataset_dir)
    records = [r for r in dataset.records if r.split in splits]
    if not records:
        raise DatasetError(f"{dataset_dir} has no records in split(s) {', '.join(splits)}")
    try:
        return [(r.id, dataset.score(r)) for r in progress(records, desc="originality index", unit="piece")]
    except (FileNotFoundError, KeyError) as exc:
        raise DatasetError(f"{dataset_dir} has no token cache: is it a symbolic dataset? ({exc})") from exc


def index_for_dataset(dataset_dir: str | os.PathLike[str], *, splits: Sequence[str] = ("train",),
                      cache_dir: str | os.PathLike[str] | None = None) -> SymbolicIndex:
    """The originality index of a dataset's training pieces; read from / written to `cache_dir` if given."""
    cache = None
    if cache_dir is not None:
        digest = Dataset(dataset_dir).manifest_sha256[:16] or "unknown"
        cache = Path(cache_dir) / f"originality-{digest}-{'-'.join(splits)}.npz"
        if cache.is_file():
            return load_index(cache)
    voices = [(pid, v[1:]) for pid, score in training_pieces(dataset_dir, splits) for v in voice_steps(score)]
    index = SymbolicIndex.from_voices(voices)
    if cache is not None:
        save_index(index, cache)
    return index


def song_tracks(dataset_dir: str | os.PathLike[str], split: str = "train") -> SongTracks:
    """(record id, notes by band role, bar length in beats, bars) of each song in a split of a grooves dataset:
    what `TrackIndex.build` indexes."""
    for song in progress(iter_songs(dataset_dir, split), desc="song originality index", unit="song"):
        yield song.record.id, role_notes(song), song.score.bar_beats, math.ceil(song.labels["bars"])


def track_index_for_dataset(dataset_dir: str | os.PathLike[str], *, split: str = "train",
                            cache_dir: str | os.PathLike[str] | None = None) -> TrackIndex:
    """The per-track originality index of a grooves dataset's ``split``; read from / written to `cache_dir` if
    given (keyed by the dataset's manifest hash)."""
    dataset = Dataset(dataset_dir)
    if dataset.kind != "grooves":
        raise DatasetError(f"{dataset_dir} is a {dataset.kind!r} dataset; songs are checked against 'grooves'")
    if not dataset.split(split):
        raise DatasetError(f"{dataset_dir} has no '{split}' songs to index")
    cache = None
    if cache_dir is not None:
        digest = dataset.manifest_sha256[:16] or "unknown"
        # the index's version in the name: an index of an older measure is not read (nor in the way)
        cache = Path(cache_dir) / f"song-originality-{digest}-{split}-v{CACHE_VERSION}-{HASH_TAG}.npz"
        if cache.is_file():
            return TrackIndex.load(cache)
    index = TrackIndex.build(song_tracks(dataset_dir, split))
    if cache is not None:
        index.save(cache)
    return index


def index_for_card(card: dict[str, Any], *, cache_dir: str | os.PathLike[str] | None = None) -> SymbolicIndex:
    """The originality index of the corpus a model card says the model learned from (DatasetError when it is not
    on this machine: `tunesmith.checkpoints.dataset_of`)."""
    return index_for_dataset(dataset_of(card), cache_dir=cache_dir)


def index_for_audio_dataset(dataset_dir: str | os.PathLike[str], analyzer: Any, *, split: str = "train",
                            cache_dir: str | os.PathLike[str] | None = None,
                            cancel: threading.Event | None = None) -> EmbeddingIndex:
    """The embedding index of a built audio dataset's ``split``, from the cache when it is there.

    ``cancel``, once set, stops a build between two batches (DatasetError): a server that stops does not leave
    a thread embedding audio while the interpreter shuts down."""
    dataset = Dataset(dataset_dir)
    if not dataset.info.get("audio"):
        raise DatasetError(f"{dataset_dir} is a '{dataset.kind}' dataset without audio; the audio gate needs one")
    weights = str(analyzer.card.get("weights_sha256", ""))[:16]
    cache = (Path(cache_dir) / f"audio-index-{dataset.manifest_sha256[:16]}-{weights}-{split}.npz"
             if cache_dir is not None else None)
    if cache is not None and cache.is_file():
        return EmbeddingIndex.load(cache)
    records = dataset.split(split)
    if not records:
        raise DatasetError(f"{dataset_dir} has no '{split}' items to index")
    sr = int(dataset.info["sr"])
    parts = []
    for start in progress(range(0, len(records), BATCH), desc="embedding training audio", unit="batch"):
        if cancel is not None and cancel.is_set():
            raise DatasetError(f"the index of {dataset_dir} was not finished: its build was cancelled")
        clips = [np.asarray(dataset.array("audio", r), dtype=np.float32) for r in records[start:start + BATCH]]
        if len({c.shape for c in clips}) == 1:
            parts.append(analyzer.embed(np.stack(clips), sr))
        else:  # clips of different lengths: one at a time
            parts.append(np.stack([analyzer.embed(c, sr) for c in clips]))
    index = EmbeddingIndex([r.id for r in records], np.concatenate(parts))
    if cache is not None:
        index.save(cache)
    return index


def audio_originality(y: np.ndarray, sr: int, card: dict[str, Any], *, cache_dir: str | os.PathLike[str] | None,
                      threshold: float = AUDIO_THRESHOLD, analyzer: Any = None) -> dict[str, Any]:
    """The originality report of a generated sound against the training data named on its model's card.

    JSON-ready: the report's fields and ``status`` "checked", or ``status`` "unchecked" with the reason when the
    training dataset or the analyzer is not on this machine (never an error: the sound is still delivered)."""
    try:
        dataset = dataset_of(card)
    except DatasetError as exc:
        return {"status": "unchecked", "reason": exc.message}
    if analyzer is None:
        from tunesmith.analyze.analyzer import Analyzer

        try:
            analyzer = Analyzer.load("analyzer")
        except ParameterError as exc:
            return {"status": "unchecked", "reason": f"no analyzer model: {exc}"}
    index = index_for_audio_dataset(dataset, analyzer, cache_dir=cache_dir)
    return {"status": "checked", **check_audio(y, sr, index, analyzer, threshold).to_dict()}


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
        self._track_indexes: dict[str, TrackIndex | str] = {}  # the same for song models
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

    def track_index(self, model_id: str, card: Mapping[str, Any]) -> TrackIndex | str:
        """A song model's per-track corpus index (built on first use in this process and kept), or why not."""
        with self._lock:
            found = self._track_indexes.get(model_id)
            if found is None:
                started = time.perf_counter()
                try:
                    found = track_index_for_dataset(dataset_of({**card, "id": model_id}), cache_dir=self.cache_dir)
                    log.info("song originality index of model %s: %d training notes in %.1f s", model_id,
                             found.tokens, time.perf_counter() - started)
                except TunesmithError as exc:
                    log.warning("originality of model %s is unchecked: %s", model_id, exc.message)
                    found = exc.message
                self._track_indexes[model_id] = found
            return found

    def copy_guard(self, model_id: str, card: Mapping[str, Any]) -> Callable[..., CopyGuard] | None:
        """What makes a song's copy guard (meter, sampled roles) over this gate's index and threshold, so that
        the sampler steers clear of what `check_tracks` would flag; None without the index."""
        index = self.track_index(model_id, card)
        return None if isinstance(index, str) else functools.partial(CopyGuard, index, threshold=self.threshold)

    def check_tracks(self, model_id: str, card: Mapping[str, Any], score: Score,
                     tracks: Sequence[tuple[str, str | None, Sequence[Note], str | None]]) -> dict[str, Any]:
        """The originality report of a song, per track (`tunesmith.provenance.song_originality.check_song`):
        ``tracks`` are (name, band role, the notes the model wrote, why the track is not judged or None)."""
        index = self.track_index(model_id, card)
        corpus = (card.get("data") or {}).get("path")
        if isinstance(index, str):
            return {"status": "unchecked", "reason": index, "corpus": corpus, "threshold": self.threshold,
                    "flagged": False, "longest_shared_run": None, "closest_piece": None, "tracks": None}
        report = check_song(index, tracks, score.bar_beats, threshold=self.threshold)
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
        from tunesmith.generation.models import load_analyzer

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
        from tunesmith.generation.models import load_analyzer

        report = check_audio(y, sr, index, load_analyzer(analyzer_card), self.threshold).to_dict()
        return {"status": "checked", "reason": None, "corpus": corpus, **report}
