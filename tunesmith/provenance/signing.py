"""Ed25519 signing keys for provenance manifests.

The private key is made on first use and kept in ``DATA_DIR/provenance/signing-key.pem`` (PKCS#8 PEM,
unencrypted, file mode 0600); its public key is what ``GET /v1/provenance/public-key`` serves and what
``tunesmith verify --public-key`` takes (PEM, or the raw 32 bytes in base64).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tunesmith.errors import InputFileError, ParameterError

KEY_DIR = "provenance"
KEY_FILE = "signing-key.pem"
log = logging.getLogger("tunesmith.provenance")


def key_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the signing key of a data directory lives."""
    return Path(data_dir) / KEY_DIR / KEY_FILE


def load_or_create_signing_key(data_dir: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The data directory's signing key, generated (mode 0600) the first time it is asked for.

    Safe against two processes starting at once: the key is written to a private temporary file and linked
    into place, so exactly one key wins and both processes use it. A key file readable by others is tightened
    to 0600 (with a warning) before use.
    """
    path = key_path(data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process made one first: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("signing key %s had mode %o; tightened to 0600", path, mode)
        os.chmod(path, 0o600)
    return _read_private(path)


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputFileError(f"{path}: not a PEM private key ({exc})", field="signing_key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputFileError(f"{path}: not an Ed25519 private key", field="signing_key")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of the public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key in base64 (44 characters)."""
    return base64.b64encode(public_key_raw(key)).decode()


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short fingerprint of the public key: the first 16 hex digits of sha256(raw key)."""
    return hashlib.sha256(public_key_raw(key)).hexdigest()[:16]


def load_public_key(text: str | bytes | os.PathLike[str]) -> Ed25519PublicKey:
    """A public key from PEM text, raw base64, or a file holding either; ParameterError otherwise."""
    if isinstance(text, os.PathLike):
        path = Path(text)
        if not path.is_file():
            raise InputFileError(f"{path}: no such public key file", field="public_key")
        text = path.read_bytes()
    data = text.encode() if isinstance(text, str) else bytes(text)
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ParameterError(f"not a PEM public key ({exc})", field="public_key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ParameterError("the public key is not an Ed25519 key", field="public_key")
        return key
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ParameterError("public key must be PEM or 32 raw bytes in base64", field="public_key")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `message`."""
    return key.sign(message)


def verify(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when `signature` is `public`'s signature of `message`."""
    try:
        public.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
