"""The provenance manifest: who made a file, with what model, weights, data and parameters.

It is serialised as canonical JSON (sorted keys, no spaces, UTF-8), the exact bytes that are signed. The
``content_sha256`` field is filled in by :mod:`tunesmith.provenance.embed` when the manifest is written into a
file: it is the hash of the part of the file the embedding never touches (audio samples, MIDI events), so the
one signature covers both the manifest and the content.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from tunesmith import __version__
from tunesmith.errors import ParameterError

MANIFEST_VERSION = 1
_HEX64 = set("0123456789abcdef")


def canonical_json(data: Any) -> bytes:
    """`data` as canonical JSON bytes: sorted keys, no whitespace, UTF-8, no NaN."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"manifest is not plain JSON data ({exc})", field="manifest") from exc


def hash_key_id(key_id: str | None) -> str | None:
    """sha256 hex of a requesting API key's id (the id itself is never written into files)."""
    return None if key_id is None else hashlib.sha256(key_id.encode("utf-8")).hexdigest()


def utc_now() -> str:
    """The current UTC time as ISO 8601 with a Z suffix, to the second."""
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Manifest:
    """What is embedded (signed) in every output file."""

    model_id: str
    model_version: str
    weights_sha256: str | None
    training_data_sha256: str | None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    created: str = field(default_factory=utc_now)
    requester_key_sha256: str | None = None
    tunesmith_version: str = __version__
    watermark_payload: int | None = None
    content_sha256: str | None = None
    manifest_version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        for name in ("model_id", "model_version", "created", "tunesmith_version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ParameterError(f"manifest field {name} must be a non-empty string", field=name)
        for name in ("weights_sha256", "training_data_sha256", "requester_key_sha256", "content_sha256"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) != 64 or set(value) - _HEX64):
                raise ParameterError(f"manifest field {name} must be a sha256 hex digest or null, got {value!r}",
                                     field=name)
        if not isinstance(self.params, dict):
            raise ParameterError("manifest field params must be an object", field="params")
        for name in ("seed", "watermark_payload", "manifest_version"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ParameterError(f"manifest field {name} must be an integer or null, got {value!r}", field=name)
        canonical_json(self.params)  # plain JSON only

    @classmethod
    def for_model(cls, card: dict[str, Any], *, params: dict[str, Any] | None = None, seed: int | None = None,
                  key_id: str | None = None, watermark_payload: int | None = None) -> Manifest:
        """A manifest for an output of the model described by a model card (weights/NAME.json)."""
        data = card.get("data") or {}
        return cls(model_id=str(card.get("id", "")), model_version=str(card.get("version", "")),
                   weights_sha256=card.get("weights_sha256"), training_data_sha256=data.get("manifest_sha256"),
                   params=dict(params or {}), seed=seed, requester_key_sha256=hash_key_id(key_id),
                   watermark_payload=watermark_payload)

    def with_content(self, content_sha256: str) -> Manifest:
        """A copy carrying the content hash."""
        return replace(self, content_sha256=content_sha256)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def canonical(self) -> bytes:
        """The canonical JSON bytes (what is signed)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Parse a manifest read from a file; ParameterError when it is not one."""
        if not isinstance(data, dict):
            raise ParameterError("manifest must be a JSON object", field="manifest")
        known = {f.name for f in fields(cls)}
        missing = {"model_id", "model_version"} - set(data)
        if missing:
            raise ParameterError(f"manifest lacks {', '.join(sorted(missing))}", field="manifest")
        unknown = set(data) - known
        if unknown:
            raise ParameterError(f"manifest has unknown fields {', '.join(sorted(unknown))}", field="manifest")
        return cls(**data)
