"""Reading untrusted files in a child process with a time and a memory limit.

The readers of uploaded files (music21 for MusicXML and ABC, mido for MIDI, the provenance checks) can take
minutes and gigabytes on a small hostile file: music21 reads an ABC tune of 20,000 notes (30 KB) in about five
minutes, and a 16 MB MIDI file of two million notes takes 1.8 GB. A thread cannot be stopped, so
:func:`run_bounded` runs the reading in a child process: forked from a fork server that has the readers imported
(a fork takes milliseconds), with its address space limited to what it has plus ``memory_bytes`` (RLIMIT_AS),
killed when it has not answered after ``seconds``. Over either limit the request is answered 413 naming the
field ``file``; a reader that crashes is a 400. At most :data:`CONCURRENT` readings run at a time in a process
(the others wait their turn before their clock starts), so memory stays bounded under a flood of uploads.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import spawn
from typing import Any, TypeVar

from tunesmith.errors import InputFileError, ParameterError, TunesmithError
from tunesmith.service.errors import PayloadTooLarge

T = TypeVar("T")
CONCURRENT = 2  # readings at a time per process
PRELOAD = ["tunesmith.service.sandbox", "tunesmith.service.uploads", "tunesmith.symbolic.io", "music21.converter",
           "music21.musicxml.xmlToM21", "music21.abcFormat", "mido", "tunesmith.generation.signing",
           "tunesmith.audio.io", "tunesmith.audio.features", "librosa"]
PR_SET_PDEATHSIG = 1
MAIN_ENV = "TUNESMITH_FORK_SERVER_MAIN"
_slots = threading.BoundedSemaphore(CONCURRENT)
_context_lock = threading.Lock()
_context: Any = None
ERRORS = {cls.__name__: cls for cls in (InputFileError, ParameterError, PayloadTooLarge)}


@dataclass(frozen=True)
class Limits:
    seconds: float
    memory_bytes: int

    @classmethod
    def of(cls, settings: Any) -> Limits:
        return cls(seconds=settings.max_decode_seconds, memory_bytes=settings.max_decode_megabytes * 2**20)


def _fork_server() -> Any:
    """The fork server's context (started on first use, with the readers imported once)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            main = spawn.get_preparation_data("main").get("init_main_from_path")
            if main:  # a program run as a script (a console script, pytest): see _import_main_in_fork_server
                os.environ[MAIN_ENV] = main
            _context = context
        return _context


def _import_main_in_fork_server() -> None:
    """In the fork server (this module is preloaded there): import the program's main script once, as Python 3.11's
    fork server means to with the preload "__main__" but does not (it looks for a key that is never set); else
    every child would run the script again before its work (importing torch: 1.7 s a child)."""
    main = os.environ.get(MAIN_ENV)
    if main and sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules:
        with contextlib.suppress(Exception):
            spawn.import_main_path(main)


def run_bounded(function: Callable[..., T], *args: Any, limits: Limits, name: str) -> T:
    """``function(*args)`` (an importable function whose result pickles) in a child process within ``limits``;
    its TunesmithError comes back as it was raised. ``name`` (the client's file name) is what errors call it."""
    context = _fork_server()
    with _slots:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(sender, function, args, limits.memory_bytes), daemon=True)
        child.start()  # returns once the child is forked (after the fork server's first start and imports)
        sender.close()
        try:
            if not receiver.poll(limits.seconds):
                raise PayloadTooLarge(f"{name} takes longer than {limits.seconds:g} s to read; this server reads an "
                                      "upload for at most that long (a shorter or simpler file reads in time)",
                                      field="file")
            outcome = receiver.recv()
        except EOFError:  # the child died without answering
            child.join(5)
            raise InputFileError(f"{name} could not be read: the reader stopped ({_death(child.exitcode)})",
                                 field="file") from None
        finally:
            if child.is_alive():
                child.kill()
            child.join(5)
            receiver.close()
    kind, value = outcome
    if kind == "ok":
        return value
    if kind == "memory":
        raise PayloadTooLarge(f"{name} needs more than {limits.memory_bytes / 2**20:.0f} MB to read; this server "
                              "reads an upload within that much memory", field="file")
    class_name, message, field = value
    raise ERRORS.get(class_name, InputFileError)(message, field=field)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _child(sender: Any, function: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int) -> None:
    """In the child: limit the address space, call, send ("ok", result), ("memory", None) or ("error", ...)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the fork server
    _limit_memory(memory_bytes)
    try:
        outcome: tuple[str, Any] = ("ok", function(*args))
    except MemoryError:
        outcome = ("memory", None)
    except TunesmithError as exc:
        outcome = ("error", (type(exc).__name__, exc.message, exc.field))
    except RecursionError:
        outcome = ("error", ("InputFileError", "the file nests too deeply to read", "file"))
    except Exception as exc:  # a bug of a reader on hostile input: the file is refused, the server lives on
        outcome = ("error", ("InputFileError", f"the file could not be read ({type(exc).__name__})", "file"))
    try:
        sender.send(outcome)
    except Exception as exc:  # a result that does not pickle (or is too large to send)
        sender.send(("error", ("InputFileError", f"the file could not be read ({type(exc).__name__})", "file")))
    sender.close()


def _limit_memory(extra: int) -> None:
    """RLIMIT_AS = the address space the child has now (its imports, the allocators' reservations) + ``extra``."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + extra, resource.RLIM_INFINITY))


def verify_as(data_dir: str, path: str, name: str) -> dict[str, Any]:
    """(In the child) the verdict on the file at ``path``: signature against the key of the server whose data
    directory is ``data_dir``, and watermark (:meth:`tunesmith.generation.signing.Stamper.verify`)."""
    from pathlib import Path

    from tunesmith.generation.signing import Stamper

    return Stamper(Path(data_dir)).verify(Path(path), name)


_import_main_in_fork_server()
