"""Uploaded scores: check and store a MIDI, MusicXML or ABC file, keep its record, hand it to a generation job.

An upload is read once when it arrives (the same reader as `tunesmith generate --input`:
:func:`tunesmith.symbolic.io.read_score`), so a file that is not a readable score, or has no pitched notes, is
refused at once (400 naming the field ``file``). Its bytes are stored by content hash in
``<data dir>/uploads/<sha256[:2]>/<sha256><suffix>``; its record (owned by one API key) says what it holds.
A generation names an upload in ``params.input``; the worker reads the file again and gives the composer the
piece to continue or, with ``params.harmonize``, its first pitched part as the melody.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tunesmith.errors import InputFileError, ParameterError, TunesmithError
from tunesmith.families.params import TEMPO_RANGE
from tunesmith.files import sha256_file
from tunesmith.service.db import ApiKey, Database, Upload, is_id, utcnow
from tunesmith.service.errors import NotFound, PayloadTooLarge
from tunesmith.service.sandbox import Limits, run_bounded
from tunesmith.service.storage import ArtifactStore, LocalObjects, Objects
from tunesmith.symbolic.score import Part, Score

log = logging.getLogger("tunesmith.service")

SUFFIXES = {".mid": "midi", ".midi": "midi", ".xml": "musicxml", ".musicxml": "musicxml", ".mxl": "musicxml",
            ".abc": "abc"}
ACCEPTED = ", ".join(SUFFIXES)
MAX_UPLOAD_BARS = 100_000


class UploadStore:
    """Uploaded files by content hash (identical files are stored once): under ``root``, or in the object store
    the artifacts are in (``objects``)."""

    def __init__(self, root: Path, objects: Objects | None = None) -> None:
        self.root = Path(root)
        self.scratch = self.root / ".tmp"
        self.objects: Objects = objects if objects is not None else LocalObjects(self.root, self.scratch)

    @staticmethod
    def key(sha256: str, suffix: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256) or suffix not in SUFFIXES:
            raise ParameterError(f"not a stored upload: {sha256!r}{suffix}", field="input")
        return f"{sha256[:2]}/{sha256}{suffix}"

    def local(self, sha256: str, suffix: str) -> Path | None:
        """A file on this machine with the upload's bytes; None when it is not stored."""
        return self.objects.local(self.key(sha256, suffix))

    def put(self, source: Path, suffix: str) -> str:
        """Store a copy of ``source``; returns its sha256."""
        digest = sha256_file(source)
        self.objects.put(source, self.key(digest, suffix))
        return digest


def upload_store(artifacts: ArtifactStore) -> UploadStore:
    """The upload store beside an artifact store (in the data directory, or in the same object store)."""
    store = UploadStore(artifacts.root.parent / "uploads", artifacts.upload_objects)
    store.scratch.mkdir(parents=True, exist_ok=True)
    return store


# ------------------------------------------------------------------------------------------ reading


def suffix_of(filename: str, head: bytes) -> str:
    """The file's type as one of :data:`SUFFIXES`: by its extension, else by its first bytes."""
    suffix = Path(filename).suffix.lower()
    if suffix in SUFFIXES:
        return suffix
    text = head[:4096].decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if head.startswith(b"MThd"):
        return ".mid"
    if head.startswith(b"PK\x03\x04"):
        return ".mxl"
    if "<score-partwise" in text or "<score-timewise" in text:
        return ".musicxml"
    if re.match(r"(%[^\n]*\n\s*)*X:\s*\d", text):
        return ".abc"
    shown = suffix or "no extension"
    raise InputFileError(f"{filename or 'the file'} ({shown}) is not a score this server reads; upload MIDI, "
                         f"MusicXML or ABC ({ACCEPTED})", field="file")


def safe_filename(filename: str, suffix: str) -> str:
    """The client's file name without folders or odd characters, ending in ``suffix`` (for messages and files)."""
    name = re.sub(r"[^\w.\- ]+", "_", Path(filename.replace("\\", "/")).name).strip(" .")[:200] or "upload"
    return name if Path(name).suffix.lower() == suffix else f"{Path(name).stem or 'upload'}{suffix}"


def pitched_parts(score: Score) -> list[Part]:
    return [p for p in score.parts if not p.is_drum and p.notes]


def read_upload(path: Path) -> Score:
    """Read a stored or arriving score; any failure is a 400 (InputFileError) naming the field ``file``."""
    from tunesmith.symbolic.io import read_score

    try:
        score = read_score(path)
    except TunesmithError as exc:
        raise InputFileError(exc.message, field="file") from exc
    except Exception as exc:  # the notation parsers can fail in many ways on hostile input
        log.info("upload %s could not be read: %r", path.name, exc)
        raise InputFileError(f"{path.name} could not be read as a score ({type(exc).__name__}: {exc})",
                             field="file") from exc
    if not pitched_parts(score):
        raise InputFileError(f"{path.name} has no pitched notes", field="file")
    return score


def check_score(score: Score, name: str) -> None:
    """A score a server keeps: a time signature music has (400) and at most MAX_UPLOAD_BARS bars (413); a MIDI
    file can declare 255/2^255 or notes 2^28 ticks long, and the record's integers would overflow."""
    numerator, denominator = score.time_signature
    if not (1 <= numerator <= 64 and denominator in (1, 2, 4, 8, 16, 32, 64)):
        digits = len(str(denominator))
        shown = f"{numerator}/{denominator}" if digits < 12 else f"{numerator}/(a {digits}-digit number)"
        raise InputFileError(f"{name} declares a time signature of {shown}, which no score has", field="file")
    if score.n_bars > MAX_UPLOAD_BARS:
        raise PayloadTooLarge(f"{name} lasts {score.n_bars} bars; this server keeps scores of at most "
                              f"{MAX_UPLOAD_BARS} bars", field="file")


def check_archive(data: bytes, name: str, max_bytes: int) -> None:
    """A compressed MusicXML (zip) unpacks to at most ``max_bytes`` (413 naming ``file``: a zip bomb) and is a
    readable archive (400)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise InputFileError(f"{name} is not a readable compressed MusicXML archive ({exc})", field="file") from exc
    if unpacked > max_bytes:
        raise PayloadTooLarge(f"{name} unpacks to {unpacked} bytes; the limit is {max_bytes} bytes", field="file")


# ------------------------------------------------------------------------------------------ records


def public(upload: Upload) -> dict[str, Any]:
    """The upload as the API shows it."""
    return {"id": upload.id, "filename": upload.filename, "format": upload.format, "parts": upload.parts,
            "notes": upload.notes, "bars": upload.bars, "key": upload.key, "created": upload.created}


def get_upload(session: Session, upload_id: str, *, key_id: int | None) -> Upload | None:
    """An upload by id; with ``key_id`` only if that key owns it."""
    if not is_id(upload_id):
        return None
    query = select(Upload).where(Upload.id == upload_id)
    if key_id is not None:
        query = query.where(Upload.key_id == key_id)
    return session.scalar(query)


def save_upload(db: Database, store: UploadStore, key: ApiKey, filename: str, data: bytes, *,
                max_bytes: int, limits: Limits | None = None) -> Upload:
    """Check ``data`` (size, type, a readable score with pitched notes), store it and record it for ``key``.
    With ``limits`` the score is read in a child process within that time and memory (:mod:`.sandbox`)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{filename or 'the file'} has {len(data)} bytes; the limit is {max_bytes} bytes",
                              field="file")
    if not data:
        raise InputFileError(f"{filename or 'the file'} is empty", field="file")
    suffix = suffix_of(filename, data[:4096])
    name = safe_filename(filename, suffix)
    if suffix == ".mxl":
        check_archive(data, name, max_bytes)
    with tempfile.TemporaryDirectory(dir=store.scratch) as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        score = read_upload(path) if limits is None else run_bounded(read_upload, path, limits=limits, name=name)
        check_score(score, name)
        sha = store.put(path, suffix)
    numerator, denominator = score.time_signature
    tempo = min(max(float(score.tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1])
    upload = Upload(key_id=key.id, filename=name, format=SUFFIXES[suffix], suffix=suffix, sha256=sha,
                    bytes=len(data), parts=len(score.parts), notes=score.n_notes, bars=score.n_bars, key=score.key,
                    meter=f"{numerator}/{denominator}", tempo=round(tempo, 3), created=utcnow())
    with db.session() as session:
        session.add(upload)
    return upload


def find_upload(db: Database, key: ApiKey, upload_id: str) -> Upload:
    """The key's upload (another key's upload does not exist for it: 404)."""
    with db.session() as session:
        upload = get_upload(session, upload_id, key_id=key.id)
    if upload is None:
        raise NotFound(f"no upload {upload_id!r}", field="id")
    return upload


# ------------------------------------------------------------------------------------ generation side


def upload_for_request(db: Database, key: ApiKey, upload_id: str | None, harmonize: bool) -> Upload | None:
    """The upload a generation request names in ``params.input`` (422 on the field if it names none of the key's)."""
    if upload_id is None:
        if harmonize:
            raise ParameterError("harmonize needs a melody: upload it with POST /v1/uploads and give its id as "
                                 "params.input", field="params.harmonize")
        return None
    with db.session() as session:
        upload = get_upload(session, upload_id, key_id=key.id)
    if upload is None:
        raise ParameterError(f"no upload {upload_id!r} for this key; upload the file with POST /v1/uploads and "
                             "give the id it answers", field="params.input")
    return upload


def input_score(db: Database, store: UploadStore, upload_id: str) -> Score:
    """The score of a job's upload (ParameterError if the upload or its file is gone)."""
    with db.session() as session:
        upload = get_upload(session, upload_id, key_id=None)
    if upload is None:
        raise ParameterError(f"the upload {upload_id} of this job no longer exists", field="params.input")
    path = store.local(upload.sha256, upload.suffix)
    if path is None:
        raise ParameterError(f"the file of upload {upload_id} ({upload.filename}) is missing from the store",
                             field="params.input")
    score = read_upload(path)
    score.title = upload.filename  # not the store's hash name (messages about the input name it)
    return score
