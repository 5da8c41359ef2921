"""Write and read a signed provenance manifest inside WAV, FLAC, OGG Vorbis, MP3 and MIDI files.

Where it goes (the *envelope*: canonical JSON ``{"key_id", "manifest", "public_key", "signature", "v"}``):

| format | place | content hash covers |
|---|---|---|
| WAV  | a RIFF chunk ``tnsm`` at the end | the ``fmt `` and ``data`` chunks |
| FLAC | Vorbis comment ``TUNESMITH_PROVENANCE`` (mutagen) | the audio frames after the metadata blocks |
| OGG  | Vorbis comment ``TUNESMITH_PROVENANCE`` (mutagen) | the Vorbis audio packets (after the 3 headers) |
| MP3  | ID3v2 ``TXXX:TUNESMITH_PROVENANCE`` (mutagen) | the MPEG frames (ID3v2 / ID3v1 tags excluded) |
| MIDI | track 0, first event: sequencer-specific meta ``7D 'TNSM' + envelope`` | every other event, with its tick |

The signature is Ed25519 over ``SIGNING_CONTEXT + canonical(manifest)``, and the manifest holds the content
hash, so editing either the manifest or the samples/events breaks verification. Formats are recognised by
their first bytes, never by the extension.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tunesmith.errors import InputFileError, MidiDecodeError, ParameterError
from tunesmith.files import check_input_file
from tunesmith.provenance.manifest import Manifest, canonical_json
from tunesmith.provenance.signing import key_id, public_key_b64, sign

TAG = "TUNESMITH_PROVENANCE"
WAV_CHUNK = b"tnsm"
MIDI_MARKER = bytes([0x7D]) + b"TNSM"  # 0x7D: the MIDI manufacturer id for non-commercial use
SIGNING_CONTEXT = b"tunesmith-provenance-v1\x00"
ENVELOPE_VERSION = 1
FORMATS = ("wav", "flac", "ogg", "mp3", "midi")
MAX_ENVELOPE_BYTES = 1 << 20
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Envelope:
    """A signed manifest as read from a file (not yet verified)."""

    manifest: dict[str, Any]
    signature: bytes
    key_id: str
    public_key: str

    def signed_message(self) -> bytes:
        return SIGNING_CONTEXT + canonical_json(self.manifest)


# ---------------------------------------------------------------------------------------------- formats


def detect_format(path: str | os.PathLike[str]) -> str:
    """'wav', 'flac', 'ogg', 'mp3' or 'midi' from the file's first bytes; InputFileError otherwise."""
    p = check_input_file(path)
    with p.open("rb") as fh:
        head = fh.read(4096)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        if b"\x01vorbis" in head:
            return "ogg"
        raise InputFileError(f"{p}: an Ogg file without a Vorbis stream (only Ogg Vorbis is supported)", field="path")
    if head[:4] == b"MThd":
        return "midi"
    if head[:3] == b"ID3":
        after = _id3_size(head)
        with p.open("rb") as fh:
            fh.seek(after)
            rest = fh.read(4)
        return "flac" if rest == b"fLaC" else "mp3"
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "mp3"
    raise InputFileError(f"{p}: not an audio (WAV, FLAC, OGG Vorbis, MP3) or MIDI file", field="path")


def _id3_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag that starts `head` (0 if none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


# ------------------------------------------------------------------------------------------ content hash


def content_sha256(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """sha256 of the part of the file that carrying a manifest never changes (see the module table)."""
    p = check_input_file(path)
    fmt = fmt or detect_format(p)
    digest = hashlib.sha256(fmt.encode() + b"\x00")
    parts = {"wav": _wav_content, "flac": _flac_content, "ogg": _ogg_content, "mp3": _mp3_content,
             "midi": _midi_content}[fmt](p)
    for block in parts:
        digest.update(block)
    return digest.hexdigest()


def _wav_chunks(p: Path) -> list[tuple[bytes, int, int]]:
    """(id, payload offset, payload size) of each RIFF chunk; sizes are clipped to the bytes present."""
    size = p.stat().st_size
    chunks = []
    with p.open("rb") as fh:
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            chunks.append((chunk_id, pos + 8, min(chunk_size, size - pos - 8)))
            pos += 8 + chunk_size + (chunk_size & 1)
    return chunks


def _read_range(p: Path, start: int, length: int) -> Iterator[bytes]:
    with p.open("rb") as fh:
        fh.seek(start)
        while length > 0:
            block = fh.read(min(_BLOCK, length))
            if not block:
                return
            length -= len(block)
            yield block


def _wav_content(p: Path) -> Iterator[bytes]:
    for chunk_id, start, size in _wav_chunks(p):
        if chunk_id in (b"fmt ", b"data"):
            yield chunk_id + struct.pack("<Q", size)
            yield from _read_range(p, start, size)


def _flac_audio_start(p: Path) -> int:
    with p.open("rb") as fh:
        pos = _id3_size(fh.read(10))
        fh.seek(pos)
        if fh.read(4) != b"fLaC":
            raise InputFileError(f"{p}: not a FLAC file", field="path")
        pos += 4
        while True:
            header = fh.read(4)
            if len(header) < 4:
                return p.stat().st_size  # truncated inside the metadata: no audio
            length = int.from_bytes(header[1:4], "big")
            pos += 4 + length
            fh.seek(pos)
            if header[0] & 0x80:
                return pos


def _flac_content(p: Path) -> Iterator[bytes]:
    start = _flac_audio_start(p)
    yield from _read_range(p, start, p.stat().st_size - start)


def _ogg_content(p: Path) -> Iterator[bytes]:
    """The Vorbis audio packets (each prefixed with its length), skipping the three header packets."""
    from mutagen.ogg import OggPage

    packets_seen = 0
    pending = b""
    with p.open("rb") as fh:
        while True:
            try:
                page = OggPage(fh)
            except Exception:  # mutagen raises EOFError at the end, its own errors on damage
                break
            for index, packet in enumerate(page.packets):
                last = index == len(page.packets) - 1
                pending += packet
                if last and not page.complete:
                    continue  # the packet goes on in the next page
                packets_seen += 1
                if packets_seen > 3:
                    yield struct.pack("<Q", len(pending)) + pending
                pending = b""
    if pending:
        yield struct.pack("<Q", len(pending)) + pending


def _mp3_content(p: Path) -> Iterator[bytes]:
    size = p.stat().st_size
    with p.open("rb") as fh:
        start = _id3_size(fh.read(10))
        end = size
        if size >= 128:
            fh.seek(size - 128)
            if fh.read(3) == b"TAG":
                end = size - 128
    yield from _read_range(p, start, max(0, end - start))


def _read_midi(p: Path) -> Any:
    import mido

    try:
        return mido.MidiFile(str(p))
    except Exception as exc:  # mido raises many types on bad bytes
        reason = "truncated" if isinstance(exc, EOFError) else str(exc) or type(exc).__name__
        raise MidiDecodeError(f"{p}: not a readable MIDI file ({reason})", field="path") from exc


def _is_envelope_event(msg: Any) -> bool:
    return msg.type == "sequencer_specific" and bytes(msg.data[: len(MIDI_MARKER)]) == MIDI_MARKER


def _midi_content(p: Path) -> Iterator[bytes]:
    mid = _read_midi(p)
    yield struct.pack("<HH", mid.type, mid.ticks_per_beat)
    for index, track in enumerate(mid.tracks):
        yield b"track" + struct.pack("<I", index)
        tick = 0
        for msg in track:
            tick += msg.time
            if _is_envelope_event(msg):
                continue
            data = bytes(msg.bin())
            yield struct.pack("<QI", tick, len(data)) + data


# --------------------------------------------------------------------------------------------- envelope


def make_envelope(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    """The signed envelope bytes for a manifest that already carries its content hash."""
    if manifest.content_sha256 is None:
        raise ParameterError("the manifest has no content hash; embed_manifest fills it in", field="manifest")
    data = manifest.to_dict()
    signature = sign(key, SIGNING_CONTEXT + canonical_json(data))
    return canonical_json({"v": ENVELOPE_VERSION, "manifest": data, "signature": base64.b64encode(signature).decode(),
                           "key_id": key_id(key), "public_key": public_key_b64(key)})


def parse_envelope(raw: bytes | str) -> Envelope:
    """An `Envelope` from its JSON bytes; ParameterError naming what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParameterError(f"provenance data is not JSON ({exc})", field="manifest") from exc
    if not isinstance(data, dict) or not isinstance(data.get("manifest"), dict):
        raise ParameterError("provenance data lacks a manifest object", field="manifest")
    if data.get("v") != ENVELOPE_VERSION:
        raise ParameterError(f"unknown provenance format version {data.get('v')!r}", field="manifest")
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ParameterError("provenance signature is not base64", field="signature") from exc
    return Envelope(manifest=data["manifest"], signature=signature, key_id=str(data.get("key_id", "")),
                    public_key=str(data.get("public_key", "")))


def embed_manifest(path: str | os.PathLike[str], manifest: Manifest, key: Ed25519PrivateKey) -> Manifest:
    """Sign `manifest` (with the file's content hash filled in) and write it into the file at `path`.

    Replaces an earlier Tunesmith manifest; returns the manifest as signed.
    """
    p = check_input_file(path)
    fmt = detect_format(p)
    signed = manifest.with_content(content_sha256(p, fmt))
    write_envelope(p, make_envelope(signed, key))
    return signed


def write_envelope(path: str | os.PathLike[str], envelope: bytes) -> None:
    """Write raw envelope bytes into a file (replacing an earlier one); `embed_manifest` is the normal way."""
    p = check_input_file(path)
    fmt = detect_format(p)
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise ParameterError(f"provenance data of {len(envelope)} bytes is too large", field="manifest")
    {"wav": _write_wav, "flac": _write_vorbis_comment, "ogg": _write_vorbis_comment, "mp3": _write_id3,
     "midi": _write_midi}[fmt](p, envelope, fmt)


def read_envelope(path: str | os.PathLike[str]) -> tuple[str, bytes | None]:
    """(format, raw envelope bytes or None when the file carries none)."""
    p = check_input_file(path)
    fmt = detect_format(p)
    reader = {"wav": _read_wav, "flac": _read_vorbis_comment, "ogg": _read_vorbis_comment, "mp3": _read_id3,
              "midi": _read_midi_envelope}[fmt]
    return fmt, reader(p, fmt)


# ------------------------------------------------------------------------------------------- per format


def _replace_atomically(p: Path, write: Any) -> None:
    tmp = p.with_name(f".{p.name}.{os.getpid()}.sign.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


def _write_wav(p: Path, envelope: bytes, _fmt: str) -> None:
    chunks = [c for c in _wav_chunks(p) if c[0] != WAV_CHUNK]

    def write(fh: Any) -> None:
        fh.write(b"RIFF\x00\x00\x00\x00WAVE")
        for chunk_id, start, size in chunks:
            fh.write(chunk_id + struct.pack("<I", size))
            for block in _read_range(p, start, size):
                fh.write(block)
            if size & 1:
                fh.write(b"\x00")
        fh.write(WAV_CHUNK + struct.pack("<I", len(envelope)) + envelope + (b"\x00" if len(envelope) & 1 else b""))
        riff_size = fh.tell() - 8
        if riff_size > 0xFFFFFFFF:
            raise ParameterError(f"{p}: too large for a RIFF file after adding the manifest", field="path")
        fh.seek(4)
        fh.write(struct.pack("<I", riff_size))

    _replace_atomically(p, write)


def _read_wav(p: Path, _fmt: str) -> bytes | None:
    for chunk_id, start, size in _wav_chunks(p):
        if chunk_id == WAV_CHUNK and size <= MAX_ENVELOPE_BYTES:
            return b"".join(_read_range(p, start, size))
    return None


def _vorbis_file(p: Path, fmt: str) -> Any:
    from mutagen import MutagenError
    from mutagen.flac import FLAC
    from mutagen.oggvorbis import OggVorbis

    try:
        return (FLAC if fmt == "flac" else OggVorbis)(str(p))
    except (MutagenError, OSError, ValueError) as exc:
        raise InputFileError(f"{p}: cannot read the {fmt.upper()} metadata ({exc})", field="path") from exc


def _write_vorbis_comment(p: Path, envelope: bytes, fmt: str) -> None:
    audio = _vorbis_file(p, fmt)
    if audio.tags is None:
        audio.add_tags()
    audio.tags[TAG] = envelope.decode("utf-8")
    audio.save()


def _read_vorbis_comment(p: Path, fmt: str) -> bytes | None:
    audio = _vorbis_file(p, fmt)
    values = audio.tags.get(TAG) if audio.tags is not None else None
    return values[0].encode("utf-8") if values else None


def _write_id3(p: Path, envelope: bytes, _fmt: str) -> None:
    from mutagen.id3 import ID3, TXXX, ID3NoHeaderError

    try:
        tags = ID3(str(p))
    except ID3NoHeaderError:
        tags = ID3()
    tags.delall(f"TXXX:{TAG}")
    tags.add(TXXX(encoding=3, desc=TAG, text=[envelope.decode("utf-8")]))
    tags.save(str(p))


def _read_id3(p: Path, _fmt: str) -> bytes | None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        tags = ID3(str(p))
    except ID3NoHeaderError:
        return None
    except Exception as exc:  # a damaged tag
        raise InputFileError(f"{p}: cannot read the ID3 tag ({exc})", field="path") from exc
    frames = tags.getall(f"TXXX:{TAG}")
    return frames[0].text[0].encode("utf-8") if frames and frames[0].text else None


def _write_midi(p: Path, envelope: bytes, _fmt: str) -> None:
    import mido

    mid = _read_midi(p)
    if not mid.tracks:
        mid.tracks.append(mido.MidiTrack())
    for track in mid.tracks:
        kept = mido.MidiTrack()
        carry = 0
        for msg in track:
            if _is_envelope_event(msg):
                carry += msg.time  # keep the following events at their ticks
                continue
            kept.append(msg.copy(time=msg.time + carry))
            carry = 0
        track[:] = kept
    mid.tracks[0].insert(0, mido.MetaMessage("sequencer_specific", data=tuple(MIDI_MARKER + envelope), time=0))
    _replace_atomically(p, lambda fh: mid.save(file=fh))


def _read_midi_envelope(p: Path, _fmt: str) -> bytes | None:
    mid = _read_midi(p)
    for track in mid.tracks[:1]:
        for msg in track:
            if _is_envelope_event(msg):
                return bytes(msg.data[len(MIDI_MARKER):])
    return None
