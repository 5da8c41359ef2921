"""The Python SDK: a small client for a Tunesmith server's HTTP API (v1).

    from tunesmith.client import Client

    with Client("http://127.0.0.1:8000", api_key="ts_...") as client:
        work = client.generate("chorale", key="D minor", bars=8, seed=1, progress=print)
        client.download(work, "chorale.wav")            # the format follows the suffix: wav flac mp3 ogg mid
        job = client.generate("folk", bars=16, wait=False)  # a handle: job.wait(), job.refresh(), job.cancel()

Every error of the API is raised as a subclass of :class:`ApiError` (``.status``, ``.code``, ``.field``, the
message of the server); a server that cannot be reached raises :class:`ServerUnreachable`, a ConnectionError.
All of them are `tunesmith.errors.TunesmithError`, so the `tunesmith` CLI prints them as one line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from tunesmith import __version__
from tunesmith.errors import InputFileError, ParameterError, TunesmithError

FORMATS = ("wav", "flac", "mp3", "ogg", "mid")
FINISHED = ("succeeded", "failed", "cancelled")
ProgressCallback = Callable[[float, str], None]  # (fraction done 0..1, status)


# ------------------------------------------------------------------------------------------------- errors


class ClientError(TunesmithError):
    """Base class of the SDK's errors."""

    code = "client_error"


class ApiError(ClientError):
    """The server answered with an error: ``{"error": {"code", "message", "field"}}`` and an HTTP status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.code = code
        self.body = body or {}

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field and self.field not in self.message else ""
        return f"{self.status} {self.code}: {self.message}{where}"


class BadRequest(ApiError):
    """400: the content is wrong (e.g. an upload that is not a score)."""


class Unauthorized(ApiError):
    """401: missing or unknown API key."""


class NotFound(ApiError):
    """404: no such resource for this key (another key's work is 404 too)."""


class Conflict(ApiError):
    """409: not possible in the resource's state (e.g. the audio of a job that has not succeeded)."""


class PayloadTooLarge(ApiError):
    """413: the upload is over the server's size limit."""


class Unprocessable(ApiError):
    """422: a parameter is invalid; ``field`` names it (e.g. ``params.bars``)."""


class RateLimited(ApiError):
    """429: rate limit or daily quota exceeded; retry after ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed (always a bug of the server, or a missing dependency there)."""


ERRORS: dict[int, type[ApiError]] = {400: BadRequest, 401: Unauthorized, 404: NotFound, 409: Conflict,
                                     413: PayloadTooLarge, 422: Unprocessable, 429: RateLimited}


class ServerUnreachable(ClientError, ConnectionError):
    """The server could not be reached (refused, DNS, TLS, timeout, connection dropped)."""

    code = "server_unreachable"


class GenerationFailed(ClientError):
    """A generation ended failed or cancelled; ``work`` is its record (``work.error`` says why)."""

    code = "generation_failed"

    def __init__(self, work: Work) -> None:
        error = work.error or {}
        reason = f": {error.get('code')}: {error.get('message')}" if error else ""
        super().__init__(f"generation {work.id} {work.status}{reason}")
        self.work = work


class WaitTimeout(ClientError, TimeoutError):
    """A generation did not finish within the time the caller was willing to wait."""

    code = "wait_timeout"


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Work:
    """A generation job and its work, as the server reports it."""

    id: str
    model: str
    status: str
    progress: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    interpretation: dict[str, Any] | None = None
    formats: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    audio_seconds: float | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    links: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Work:
        names = set(cls.__dataclass_fields__) - {"raw"}
        return cls(**{k: v for k, v in data.items() if k in names}, raw=data)

    @property
    def done(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.status in FINISHED


class Job:
    """A handle on a generation that may still be running (``Client.generate(..., wait=False)``)."""

    def __init__(self, client: Client, work: Work) -> None:
        self.client = client
        self.work = work

    @property
    def id(self) -> str:
        return self.work.id

    def refresh(self) -> Work:
        """Fetch the job's current record."""
        self.work = self.client.work(self.id)
        return self.work

    def wait(self, progress: ProgressCallback | None = None, timeout: float | None = None) -> Work:
        """Follow the job's events until it finishes; GenerationFailed if it failed or was cancelled."""
        self.work = self.client.follow(self.id, progress=progress, timeout=timeout)
        if self.work.status != "succeeded":
            raise GenerationFailed(self.work)
        return self.work

    def cancel(self) -> Work:
        """Cancel the job if it is queued or running; a job that already finished is left as it is."""
        if not self.refresh().done:
            cancelled = self.client.delete(self.id)
            self.work = cancelled if cancelled is not None else self.work
        return self.work

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.work.status!r})"


# ---------------------------------------------------------------------------------------------- client


class Client:
    """A Tunesmith server at ``url`` (e.g. ``http://127.0.0.1:8000``) used with one API key."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ParameterError(f"server URL must start with http:// or https://, got {url!r}", field="server")
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": f"tunesmith-client/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx2.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- service

    def health(self) -> dict[str, Any]:
        """Liveness, version and which models the server has loaded."""
        return self._json("GET", "/v1/health")

    def models(self) -> list[dict[str, Any]]:
        """The model cards: id, version, parameters with ranges, licences of the training data."""
        return self._json("GET", "/v1/models")["models"]

    # -- generations

    def generate(self, model: str | None = None, *, prompt: str | None = None, seed: int | None = None,
                 formats: list[str] | None = None, input: str | Path | dict[str, Any] | None = None,
                 harmonize: bool = False, wait: bool = True, progress: ProgressCallback | None = None,
                 timeout: float | None = None, **params: Any) -> Work | Job:
        """Generate with ``model`` (or the model a ``prompt`` names) and ``params`` (key, bars, tempo, ...).

        ``input`` is a score file (MIDI, MusicXML, ABC) to continue, or with ``harmonize=True`` whose melody to
        harmonize; it is uploaded first. The song model arranges its melody, or with ``mode="continue"``,
        ``mode="regenerate", track="drums"`` or ``mode="restyle", style="house"`` makes a song of it.
        With ``wait`` (default) this follows the job's progress events, calls
        ``progress(fraction, status)`` on each, and returns the finished Work (GenerationFailed if it failed);
        ``wait=False`` returns a :class:`Job` handle at once."""
        body: dict[str, Any] = {"params": {k: v for k, v in params.items() if v is not None}}
        if model is not None:
            body["model"] = model
        if prompt is not None:
            body["prompt"] = prompt
        if seed is not None:
            body["seed"] = seed
        if formats is not None:
            body["formats"] = list(formats)
        if harmonize and input is None:
            raise ParameterError("harmonize needs an input melody (input=PATH)", field="harmonize")
        if input is not None:
            upload = input if isinstance(input, dict) else self.upload(input)
            body["params"] |= {"input": upload["id"], "harmonize": bool(harmonize)}
        job = Job(self, Work.from_json(self._json("POST", "/v1/generations", json=body)))
        if not wait:
            return job
        return job.wait(progress=progress, timeout=timeout)

    def work(self, work: Work | str) -> Work:
        """The current record of a generation."""
        return Work.from_json(self._json("GET", f"/v1/generations/{_id(work)}"))

    def works(self, limit: int = 20, offset: int = 0) -> Iterator[Work]:
        """The key's works, newest first, fetched ``limit`` at a time from ``offset`` on."""
        while True:
            page = self._json("GET", "/v1/generations", params={"limit": limit, "offset": offset})
            yield from (Work.from_json(item) for item in page["items"])
            if not page.get("next") or not page["items"]:
                return
            offset += len(page["items"])

    def follow(self, work: Work | str, *, progress: ProgressCallback | None = None,
               timeout: float | None = None) -> Work:
        """Follow a generation's server-sent events until it finishes; returns the final record.

        A dropped stream is reopened (up to 5 failures in a row); WaitTimeout after ``timeout`` seconds."""
        generation_id = _id(work)
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            try:
                finished = self._follow_once(generation_id, progress, deadline)
                failures = 0
            except ServerUnreachable:
                failures += 1
                if failures >= 5:
                    raise
                time.sleep(min(2.0, 0.2 * 2**failures))
                finished = None
            if finished is not None:
                return finished
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"generation {generation_id} did not finish within {timeout:g} s")

    def _follow_once(self, generation_id: str, progress: ProgressCallback | None,
                     deadline: float | None) -> Work | None:
        """One events stream: the final record, or None when it ended without one or the deadline passed."""
        read = max(self.timeout, 60.0)  # the server sends a keep-alive every 15 s
        if deadline is not None:
            read = min(read, max(0.05, deadline - time.monotonic()))
        try:
            with self._http.stream("GET", f"/v1/generations/{generation_id}/events",
                                   timeout=httpx2.Timeout(self.timeout, read=read)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                last: tuple[float, str] | None = None
                for name, data in _server_sent_events(response.iter_lines()):
                    if name == "progress" and progress is not None:
                        last = (float(data.get("progress", 0.0)), str(data.get("status", "")))
                        progress(*last)
                    elif name == "done":
                        if data.get("status") == "deleted":
                            raise NotFound(404, "not_found", f"generation {generation_id} was deleted", "id")
                        work = Work.from_json(data)
                        if progress is not None and last != (work.progress, work.status):
                            progress(work.progress, work.status)
                        return work
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
        except httpx2.ReadTimeout as exc:
            if deadline is not None and time.monotonic() >= deadline - 0.01:
                return None
            raise self._unreachable(exc) from exc
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from exc
        return None

    def delete(self, work: Work | str) -> Work | None:
        """Cancel a queued or running job (returns its cancelled record) or delete a finished work (None)."""
        response = self._request("DELETE", f"/v1/generations/{_id(work)}")
        return Work.from_json(response.json()) if response.status_code == 202 else None

    def download(self, work: Work | str, path: str | Path, format: str | None = None) -> Path:
        """Write a succeeded work's audio or MIDI to ``path``; the format is ``format`` or the path's suffix."""
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".")).lower()
        fmt = "mid" if fmt == "midi" else fmt
        if fmt not in FORMATS:
            raise ParameterError(f"cannot download {path.name!r} as {fmt or 'no format'!r}: use one of "
                                 f"{', '.join(FORMATS)}", field="format")
        generation_id = _id(work)
        if fmt == "mid":
            return self.fetch(f"/v1/generations/{generation_id}/midi", path)
        return self.fetch(f"/v1/generations/{generation_id}/audio", path, params={"format": fmt})

    def download_stems(self, work: Work | str, directory: str | Path) -> list[Path]:
        """Write every stem of a succeeded work (one WAV per track) into ``directory``; returns the files."""
        import zipfile

        directory = Path(directory)
        archive = self.fetch(f"/v1/generations/{_id(work)}/stems.zip", directory / ".stems.zip")
        try:
            with zipfile.ZipFile(archive) as stems:
                names = [n for n in stems.namelist() if n.endswith(".wav") and "/" not in n and ".." not in n]
                for name in names:
                    (directory / name).write_bytes(stems.read(name))
        finally:
            archive.unlink(missing_ok=True)
        return [directory / name for name in names]

    def fetch(self, link: str, path: str | Path, params: dict[str, str] | None = None) -> Path:
        """Stream the file at ``link`` (a path on the server, e.g. one of a Work's links) into ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        try:
            with self._http.stream("GET", link, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            partial.replace(path)
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return path

    # -- files in

    def upload(self, path: str | Path) -> dict[str, Any]:
        """Upload a score (MIDI, MusicXML, ABC) to continue or harmonize; returns the upload record (``id``...)."""
        return self._post_file("/v1/uploads", path)

    def analyze(self, path: str | Path, *, timeout: float | None = None) -> dict[str, Any]:
        """Analyze an audio file (tags, key, tempo, loudness, melody); waits for the result of a long file."""
        return self._settle(self._post_file("/v1/analyses", path), timeout)

    def verify(self, path: str | Path) -> dict[str, Any]:
        """Check a file's provenance manifest and watermark; returns the verdict."""
        return self._post_file("/v1/verifications", path)

    def _post_file(self, route: str, path: str | Path) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"no such file: {path}", field="file")
        with path.open("rb") as handle:
            return self._json("POST", route, files={"file": (path.name, handle, "application/octet-stream")})

    def _settle(self, record: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """A record answered as a job (status queued/running and a ``links.self``) is polled until it finishes."""
        link = (record.get("links") or {}).get("self")
        deadline = None if timeout is None else time.monotonic() + timeout
        while record.get("status") in ("queued", "running") and link:
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"{link} did not finish within {timeout:g} s")
            time.sleep(0.5)
            record = self._json("GET", link)
        return record

    # -- transport

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ServerError(response.status_code, "bad_response", f"{method} {path} did not answer JSON: "
                              f"{response.text[:200]!r}") from None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx2.TimeoutException):
            reason = f"no answer within {self.timeout:g} s ({type(exc).__name__})"
        return ServerUnreachable(f"cannot reach the Tunesmith server at {self.url}: {reason}")

    def _error(self, response: httpx2.Response) -> ApiError:
        status = response.status_code
        body: dict[str, Any] = {}
        try:
            body = response.json()
            error = body["error"]
            code, message, field_name = str(error["code"]), str(error["message"]), error.get("field")
        except (ValueError, KeyError, TypeError):
            code = response.reason_phrase.lower().replace(" ", "_") or "error"
            message, field_name = response.text.strip()[:300] or response.reason_phrase, None
        cls = ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
        if cls is RateLimited:
            retry = response.headers.get("retry-after")
            return RateLimited(status, code, message, field_name, body,
                               retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)
        return cls(status, code, message, field_name, body)


def _id(work: Work | str) -> str:
    return work.id if isinstance(work, Work) else str(work)


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of each event in a text/event-stream (comments and retry lines skipped)."""
    name, data = "message", []
    for line in _with_blank_end(lines):
        if not line:
            event = _json_or_none("\n".join(data)) if data else None
            if event is not None:
                yield name, event
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def _with_blank_end(lines: Iterator[str]) -> Iterator[str]:
    yield from lines
    yield ""


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
