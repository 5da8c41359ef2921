"""Read and write audio files (WAV, FLAC, OGG/Vorbis, MP3) through libsndfile.

Decoding goes by the file's content, not its extension: libsndfile sniffs the header, so a FLAC
file named ``.mp3`` still loads. Content libsndfile cannot parse raises AudioDecodeError.
"""

from __future__ import annotations

import numbers
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tunesmith.audio.dsp import check_seconds, resample, validate_audio
from tunesmith.errors import AudioDecodeError, ParameterError
from tunesmith.files import check_input_file

SUPPORTED_FORMATS = ("wav", "flac", "ogg", "mp3")
EXTENSION_FORMATS = {
    ".wav": "wav", ".wave": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg", ".mp3": "mp3"
}
AUDIO_EXTENSIONS = tuple(EXTENSION_FORMATS)
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000

_SF_FORMAT = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
_DEFAULT_SUBTYPE = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}
_FORMAT_NAMES = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}
_MP3_FRAME_SAMPLES = 1152
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (no full decode)."""

    sr: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str


# --------------------------------------------------------------------------- libmpg123 chatter


class _Mpg123Quieter:
    """libmpg123 (inside libsndfile) prints notes about damaged MP3s straight to fd 2, which
    would break one-line CLI errors. While any decode runs, fd 2 goes to a temporary file; when
    the last one ends, everything captured is replayed to the real fd 2 except mpg123's lines.
    Re-entrant across threads (reference-counted); a no-op when fd 2 cannot be duplicated."""

    _NOISE = re.compile(rb"^(Note|Warning): |^\[src/libmpg123/")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None
        self._capture = None

    def _start(self) -> None:
        capture = tempfile.TemporaryFile()  # noqa: SIM115 - open until the last decode ends
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            capture.close()
            return
        os.dup2(capture.fileno(), 2)
        self._saved, self._capture = saved, capture

    def _stop(self) -> None:
        if self._saved is None or self._capture is None:
            return
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._capture.seek(0)
        kept = [line for line in self._capture.read().splitlines(True) if not self._NOISE.match(line)]
        self._capture.close()
        self._saved = self._capture = None
        if kept:
            os.write(2, b"".join(kept))

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._start()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._stop()


_quiet = _Mpg123Quieter()


# --------------------------------------------------------------------------- header checks


def _wav_data_shortfall(p: Path) -> tuple[int, int] | None:
    """(declared, present) data-chunk bytes of a RIFF/WAVE file whose data chunk is cut short."""
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # RIFX / RF64 / not a WAV: nothing we can check cheaply
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                present = size - pos - 8
                streamed = chunk_size in (0, 0xFFFFFFFF)  # size left unset by a streaming writer
                return None if streamed or present >= chunk_size else (chunk_size, present)
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


# MPEG audio frame headers, to measure MP3s that carry no Xing/Info/VBRI length header.
_MP3_KBPS = {
    (1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame(header: bytes) -> tuple[int, int] | None:
    """(frame bytes, samples) of an MPEG audio frame header, or None if it is not one."""
    b1, b2 = header[1], header[2]
    if header[0] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version, layer = (b1 >> 3) & 3, 4 - ((b1 >> 1) & 3)
    rate_index, kbps_index, padding = (b2 >> 2) & 3, b2 >> 4, (b2 >> 1) & 1
    if version == 1 or layer == 4 or rate_index == 3 or kbps_index in (0, 15):
        return None  # reserved values, or free-format bitrate (length unknowable here)
    mpeg1 = version == 3
    kbps = _MP3_KBPS[(1, layer) if mpeg1 else (2, min(layer, 2))][kbps_index - 1]
    rate = _MP3_RATES[version][rate_index]
    if layer == 1:
        return (12_000 * kbps // rate + padding) * 4, 384
    if layer == 3 and not mpeg1:
        return 72_000 * kbps // rate + padding, 576
    return 144_000 * kbps // rate + padding, 1152


def _mp3_scanned_samples(p: Path) -> int | None:
    """Samples counted frame by frame, or None when the MP3 has a length header (or is odd).

    Only the first frame is read for files with a Xing/Info/VBRI header (nearly all of them)."""
    with p.open("rb") as fh:
        head = fh.read(10)
        pos = 0
        if head[:3] == b"ID3" and len(head) == 10:
            pos = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
        fh.seek(pos)
        probe = fh.read(65536)
        sync = next((i for i in range(len(probe) - 4) if _mp3_frame(probe[i : i + 4])), None)
        if sync is None:
            return None
        first_frame = probe[sync : sync + _mp3_frame(probe[sync : sync + 4])[0]]
        if any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI")):
            return None
        fh.seek(pos + sync)
        data = fh.read()
    total = offset = 0
    while offset + 4 <= len(data) and (frame := _mp3_frame(data[offset : offset + 4])):
        total, offset = total + frame[1], offset + frame[0]
    return total


def _probe(p: Path) -> sf._SoundFileInfo:
    try:
        with _quiet():
            meta = sf.info(str(p))
    except _DECODE_ERRORS as exc:
        raise AudioDecodeError(f"{p}: not a readable audio file ({_reason(exc)})", field="path") from exc
    if not MIN_SAMPLE_RATE <= meta.samplerate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            f"{p}: implausible sample rate {meta.samplerate} Hz in the header "
            f"(accepted: {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})",
            field="path",
        )
    if meta.channels < 1 or meta.frames <= 0:
        raise AudioDecodeError(f"{p}: contains no audio frames", field="path")
    return meta


def _check_complete(p: Path, meta: sf._SoundFileInfo) -> None:
    """Reject files whose header promises more audio than the file holds."""
    fmt = _FORMAT_NAMES.get(meta.format)
    short = _wav_data_shortfall(p) if fmt == "wav" else None
    if short and short[0] - short[1] >= 8 * meta.channels:  # less than one frame missing: sloppy writer
        raise AudioDecodeError(
            f"{p}: truncated WAV: the header declares {short[0]} data bytes, the file holds {short[1]}",
            field="path",
        )
    counted = _mp3_scanned_samples(p) if fmt == "mp3" else None
    if counted is not None and counted > meta.frames + max(3 * _MP3_FRAME_SAMPLES, counted // 100):
        raise AudioDecodeError(
            f"{p}: MP3 without a Xing/Info length header; libsndfile would decode only "
            f"{meta.frames / meta.samplerate:.1f} s of about {counted / meta.samplerate:.1f} s "
            "(re-encode it, e.g. to FLAC)",
            field="path",
        )


def _check_file_rate(sr: object) -> int:
    ok = isinstance(sr, numbers.Integral) and not isinstance(sr, bool)
    if not ok or not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sr must be an int in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {sr!r}", field="sr"
        )
    return int(sr)


def _reason(exc: BaseException) -> str:
    """libsndfile's reason, minus its "Error opening '<path>': " prefix and misleading wording."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r"^Error opening .*?: (Error : )?", "", lines[-1] if lines else type(exc).__name__)
    if "does not exist or is not a regular file" in text:  # libsndfile's words for unknown content
        return "format not recognised"
    return text


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header facts of an audio file; raises InputFileError / AudioDecodeError like `load`."""
    p = check_input_file(path)
    meta = _probe(p)
    _check_complete(p, meta)
    return AudioInfo(
        sr=int(meta.samplerate),
        channels=int(meta.channels),
        frames=int(meta.frames),
        duration=meta.frames / meta.samplerate,
        format=_FORMAT_NAMES.get(meta.format, meta.format.lower()),
        subtype=meta.subtype,
    )


# --------------------------------------------------------------------------- load


def _frame_range(
    p: Path, meta: sf._SoundFileInfo, offset: float, duration: float | None, max_duration: float | None
) -> tuple[int, int]:
    sr, total = meta.samplerate, meta.frames
    start = round(check_seconds(offset, "offset", allow_zero=True) * sr)
    if start >= total:
        raise ParameterError(f"offset={offset} s is at or past the end of {p} ({total / sr:.3f} s)")
    stop = total if duration is None else min(total, start + round(check_seconds(duration, "duration") * sr))
    stop = max(stop, start + 1)
    if max_duration is not None and (stop - start) / sr > check_seconds(max_duration, "max_duration"):
        raise ParameterError(
            f"{p}: {(stop - start) / sr:.1f} s of audio exceeds max_duration={max_duration} s",
            field="max_duration",
        )
    return start, stop


def _decode(p: Path, meta: sf._SoundFileInfo, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as float32 (frames, channels). MP3 seeks are not sample-accurate in
    libsndfile, so an MP3 is decoded from its beginning and sliced."""
    exact_seek = _FORMAT_NAMES.get(meta.format) != "mp3"
    first = start if exact_seek else 0
    try:
        with _quiet(), sf.SoundFile(str(p)) as fh:
            if first:
                fh.seek(first)
            data = fh.read(stop - first, dtype="float32", always_2d=True)
    except _DECODE_ERRORS as exc:
        raise AudioDecodeError(f"{p}: corrupt or truncated audio ({_reason(exc)})", field="path") from exc
    got = first + data.shape[0]
    tolerance = 0 if exact_seek else _MP3_FRAME_SAMPLES
    if got < stop - tolerance:
        raise AudioDecodeError(
            f"{p}: truncated: the header promises {meta.frames} frames, decoding stopped at {got}",
            field="path",
        )
    return data[start - first :]


def load(
    path: str | os.PathLike[str],
    *,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32: (n,) when mono, else (channels, n); returns (y, sr).

    `sr` resamples (soxr HQ) after the mono mix-down; `offset`/`duration` (seconds) select a
    span; `max_duration` (seconds) rejects a longer span with ParameterError before decoding.

    Errors: a missing, non-regular or empty file raises InputFileError. AudioDecodeError (naming
    the file) covers content libsndfile cannot parse, zero frames, a header sample rate outside
    1000..768000 Hz, NaN/inf samples, and truncation. libsndfile itself reads a truncated WAV
    silently (it shortens the frame count to the bytes present), so WAVs are checked by comparing
    the RIFF data-chunk size with the bytes present (streamed WAVs with a 0 / 0xFFFFFFFF size are
    accepted). FLAC/OGG cut mid-stream make libsndfile fail; an MP3 cut short is caught by
    comparing the frames decoded with its Xing/Info header. An MP3 *without* such a header is
    measured frame by frame, because libsndfile would stop at its bitrate-based length estimate.
    """
    p = check_input_file(path)
    if sr is not None:
        _check_file_rate(sr)
    meta = _probe(p)
    _check_complete(p, meta)
    start, stop = _frame_range(p, meta, offset, duration, max_duration)
    data = _decode(p, meta, start, stop)
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"{p}: contains NaN or infinite samples", field="path")
    if not mono:
        y = np.ascontiguousarray(data.T)
    elif data.shape[1] == 1:
        y = np.ascontiguousarray(data[:, 0])
    else:  # a matrix-vector product: far faster than data.mean(axis=1) on (frames, channels)
        y = data @ np.full(data.shape[1], 1.0 / data.shape[1], dtype=np.float32)
    native = int(meta.samplerate)
    if sr is None or sr == native:
        return y, native
    return resample(y, orig_sr=native, target_sr=sr), sr


# --------------------------------------------------------------------------- save


def _save_format(p: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in SUPPORTED_FORMATS:
            raise ParameterError(f"format must be one of {SUPPORTED_FORMATS}, got {format!r}", field="format")
        return fmt
    fmt = EXTENSION_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ParameterError(
            f"{p}: unknown audio extension {p.suffix!r} (use one of {', '.join(AUDIO_EXTENSIONS)})",
            field="path",
        )
    return fmt


def save(
    path: str | os.PathLike[str],
    y: np.ndarray,
    sr: int,
    *,
    format: str | None = None,
    subtype: str | None = None,
) -> Path:
    """Write `y` ((n,) or (channels, n)) to `path`; returns the path.

    The format comes from the extension (or `format`): WAV 16-bit PCM, FLAC 16-bit, OGG Vorbis,
    MP3. Samples are clipped to [-1, 1]; parent directories are created; the file is written to
    a temporary name and renamed, so a failed write leaves no partial file.
    """
    p = Path(path)
    fmt = _save_format(p, format)
    y = validate_audio(y)
    if y.shape[-1] == 0:
        raise ParameterError("y is empty: refusing to write an audio file with no frames", field="y")
    _check_file_rate(sr)
    sub = subtype or _DEFAULT_SUBTYPE[fmt]
    if not sf.check_format(_SF_FORMAT[fmt], sub):
        raise ParameterError(f"subtype {sub!r} is not valid for {fmt} files", field="subtype")
    data = np.clip(y.T if y.ndim == 2 else y, -1.0, 1.0)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), data, sr, format=_SF_FORMAT[fmt], subtype=sub)
        os.replace(tmp, p)
    except _DECODE_ERRORS as exc:
        raise ParameterError(
            f"cannot write {p} as {fmt}/{sub} with sr={sr}, {1 if y.ndim == 1 else y.shape[0]} channel(s) "
            f"({_reason(exc)})"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return p

