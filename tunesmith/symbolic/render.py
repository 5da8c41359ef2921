"""Render scores and single notes to audio with FluidSynth and a General MIDI soundfont.

One `Renderer` per sample rate loads the soundfont once (the compressed MuseScore_General_Lite.sf3
takes ~2.5 s to load) and is reused; :func:`get_renderer` caches one per process and sample rate.
Audio comes straight from ``fluid_synth_write_float`` (no int16 round trip).

Gain: pieces render at FluidSynth gain :data:`PIECE_GAIN` (0.7) with reverb and chorus on, which puts a
four-voice chorale at velocity 80-100
around 0.25-0.75 peak (piano ~0.37, trumpet ~0.74); a piece that would still exceed 0.99 is scaled
down as a whole (never clipped). Single notes (`Renderer.render_note`, for the note corpus) render at
:data:`NOTE_GAIN` (1.0) with reverb and chorus off, so a note at velocity 127 peaks around 0.2-0.5
depending on the preset, and there is no reverb tail to leak into the next note.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from tunesmith.errors import DependencyError, ParameterError
from tunesmith.symbolic.score import DRUM_CHANNEL, Score, channel_plan

SOUNDFONT_ENV = "TUNESMITH_SOUNDFONT"
Event = tuple[int, int, int, int, int]  # (sample, 0 = off / 1 = on, channel, pitch, velocity), sorted as tuples


@dataclass(frozen=True)
class Soundfont:
    """A General MIDI soundfont: its short name, file, the Debian package that installs it and its licence."""

    name: str
    path: Path
    package: str | None
    licence: str


# The GM soundfonts Debian packages install, the default (Lite) first.
GM_SOUNDFONTS: tuple[Soundfont, ...] = (
    Soundfont("lite", Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"), "musescore-general-soundfont-small",
              "MIT (MuseScore General soundfont by S. Christian Collins)"),
    Soundfont("full", Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"), "musescore-general-soundfont",
              "MIT, parts CC0 and public domain (MuseScore General soundfont by S. Christian Collins)"),
    Soundfont("fluidr3", Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), "fluid-soundfont-gm",
              "MIT (Fluid R3 GM soundfont by Frank Wen)"),
)
USER_SOUNDFONT_LICENCE = "as given by the soundfont's author (a user-supplied file)"
KNOWN_SOUNDFONTS = (
    GM_SOUNDFONTS[0].path,
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
    GM_SOUNDFONTS[1].path,
    Path("/usr/share/sounds/sf3/default-GM.sf3"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
)
SF2_DIR = Path("/usr/share/sounds/sf2")
PIECE_GAIN = 0.7
NOTE_GAIN = 1.0
PEAK_LIMIT = 0.99
DRUM_BANK = 128
N_CHANNELS = 64
MIN_SR, MAX_SR = 8000, 96000
_FLUID_BLOCK = 64  # FLUID_BUFSIZE: FluidSynth's internal synthesis block
_LOG_LEVELS_SILENCED = (2, 3, 4)  # FLUID_WARN, FLUID_INFO, FLUID_DBG
_MISSING_SOUNDFONT = (
    "no General MIDI soundfont found; install the Debian package musescore-general-soundfont-small "
    f"or set {SOUNDFONT_ENV}"
)


def find_soundfont() -> Path:
    """The soundfont to use: $TUNESMITH_SOUNDFONT, else the first known Debian GM soundfont."""
    configured = os.environ.get(SOUNDFONT_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise DependencyError(f"{SOUNDFONT_ENV}={configured} is not a file; {_MISSING_SOUNDFONT}")
        return path
    for path in KNOWN_SOUNDFONTS:
        if path.is_file():
            return path
    extra = sorted(SF2_DIR.glob("*.sf2")) if SF2_DIR.is_dir() else []
    for path in extra:
        if path.is_file():
            return path
    raise DependencyError(_MISSING_SOUNDFONT)


def list_soundfonts() -> list[Soundfont]:
    """The General MIDI soundfonts of :data:`GM_SOUNDFONTS` installed on this machine, with their licences."""
    return [font for font in GM_SOUNDFONTS if font.path.is_file()]


def preferred_soundfont(name: str | None) -> Path:
    """The soundfont a family's scores render with: $TUNESMITH_SOUNDFONT when set (the user's choice wins), else
    the known soundfont ``name`` (``full``, ...) when installed, else :func:`find_soundfont`'s."""
    if name and not os.environ.get(SOUNDFONT_ENV, "").strip():
        font = next((f for f in GM_SOUNDFONTS if f.name == name), None)
        if font is not None and font.path.is_file():
            return font.path
    return find_soundfont()


def resolve_soundfont(choice: str | os.PathLike[str] | None = None) -> Soundfont:
    """A soundfont by short name (``lite``, ``full``, ``fluidr3``) or path; ``None`` is :func:`find_soundfont`'s.

    A known name that is not installed raises DependencyError naming its Debian package."""
    if choice is None:
        path = find_soundfont()
        return next((f for f in GM_SOUNDFONTS if f.path.resolve() == path.resolve()),
                    Soundfont("custom", path, None, USER_SOUNDFONT_LICENCE))
    by_name = {font.name: font for font in GM_SOUNDFONTS}
    if str(choice) in by_name:
        font = by_name[str(choice)]
        if not font.path.is_file():
            raise DependencyError(f"soundfont {font.name!r} ({font.path}) is not installed; install the Debian "
                                  f"package {font.package}")
        return font
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ParameterError(f"soundfont {str(choice)!r} is neither one of {', '.join(by_name)} nor a file",
                             field="soundfont")
    return next((f for f in GM_SOUNDFONTS if f.path.resolve() == path.resolve()),
                Soundfont("custom", path, None, USER_SOUNDFONT_LICENCE))


_fluidsynth_lock = threading.Lock()
_fluidsynth_module: Any = None


def _import_fluidsynth() -> Any:
    """Import pyfluidsynth, declare the C calls we use, and silence FluidSynth's warning chatter."""
    global _fluidsynth_module
    with _fluidsynth_lock:
        if _fluidsynth_module is not None:
            return _fluidsynth_module
        try:
            # pyfluidsynth prints where it found the library when $CI is set; keep stdout ours
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth
        except (ImportError, OSError) as exc:
            raise DependencyError(
                f"the FluidSynth library is missing ({exc}); install the Debian package fluidsynth"
            ) from exc
        lib = fluidsynth._fl
        for name in ("fluid_synth_write_float", "fluid_synth_set_gain"):
            if not hasattr(lib, name):
                raise DependencyError(
                    f"libfluidsynth lacks {name}; install the Debian package fluidsynth (2.x)"
                )
        voidp, cint = ctypes.c_void_p, ctypes.c_int
        lib.fluid_synth_write_float.argtypes = [voidp, cint, voidp, cint, cint, voidp, cint, cint]
        lib.fluid_synth_write_float.restype = cint
        lib.fluid_synth_set_gain.argtypes = [voidp, ctypes.c_float]
        lib.fluid_synth_set_gain.restype = None
        for name in ("fluid_synth_reverb_on", "fluid_synth_chorus_on"):
            if hasattr(lib, name):
                getattr(lib, name).argtypes = [voidp, cint, cint]
                getattr(lib, name).restype = cint
        if hasattr(lib, "fluid_set_log_function"):
            lib.fluid_set_log_function.argtypes = [cint, voidp, voidp]
            lib.fluid_set_log_function.restype = voidp
            for level in _LOG_LEVELS_SILENCED:
                lib.fluid_set_log_function(level, None, None)
        _fluidsynth_module = fluidsynth
        return fluidsynth


def _check_number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise ParameterError(f"{name} must be a number in {low}..{high}, got {value!r}", field=name)
    return float(value)


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= int(value) <= high:
        raise ParameterError(f"{name} must be an integer {low}..{high}, got {value!r}", field=name)
    return int(value)


SPARE_NICE = 10  # niceness added: a tenth of a core's share beside a busy thread


def _lower_this_threads_priority() -> None:
    """Add :data:`SPARE_NICE` to the calling thread's niceness (Linux, where a thread has a nice value of its own)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            thread = threading.get_native_id()  # this thread only
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + SPARE_NICE))


class _Spare:
    """A synthesizer being made in a background thread at a low CPU priority (:data:`SPARE_NICE` more niceness,
    on Linux, where a thread has a nice value of its own), so it takes little from the job that is still
    finishing; ``synth`` once it is :attr:`ready` or :meth:`join` returns (None if it failed)."""

    def __init__(self, make: Any) -> None:
        self.synth: tuple[Any, int] | None = None
        self._make = make
        self._thread = threading.Thread(target=self._run, name="fluidsynth-spare", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _lower_this_threads_priority()
        try:
            self.synth = self._make()
        except DependencyError:
            self.synth = None

    @property
    def ready(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()


class _PresetPins:
    """Keeps the samples of every preset played in this process loaded, for one soundfont.

    Synthesizers load their soundfont with dynamic sample loading: opening one reads the preset table only
    (0.05 s instead of 0.4-0.8 s for each fresh synthesizer of the full MuseScore soundfont, and 15 s for the
    first, which decoded every sample), and a preset's samples are decoded when a channel first selects it.
    FluidSynth shares decoded samples between synthesizers, but frees them when no channel of any synthesizer
    has their preset selected, which happens each time a piece's synthesizer is replaced by a fresh one. So
    each preset, once played, is also selected on a channel of a synthesizer here that never plays (one more
    per :data:`N_CHANNELS` presets), and its samples stay decoded for the life of the process. The background
    decoding of every preset (`decode_soundfont_in_background`) selects on synthesizers of its own, so a piece
    never waits for it; no lock is held while samples are decoded."""

    def __init__(self, fluidsynth: Any, soundfont: Path) -> None:
        self._fluidsynth = fluidsynth
        self._soundfont = soundfont
        self._pinned: set[tuple[int, int]] = set()
        self._holders: dict[str, list[tuple[Any, int]]] = {"played": [], "background": []}
        self._used: dict[str, int] = {"played": 0, "background": 0}  # channels taken on each pool's holders
        self._lock = threading.Lock()

    def pin(self, bank: int, preset: int, *, pool: str = "played") -> None:
        """Keep ``(bank, preset)`` loaded (its samples decoded now, on the caller's thread, if no synthesizer has
        them: a piece selects its presets before pinning them, so this only adds a holder)."""
        if (bank, preset) in self._pinned:
            return
        with self._lock:
            if (bank, preset) in self._pinned:
                return
            self._pinned.add((bank, preset))
            channel = self._used[pool] % N_CHANNELS
            self._used[pool] += 1
            if channel == 0:
                self._holders[pool].append(_load_synth(self._fluidsynth, self._soundfont, 44100.0))
            synth, sfid = self._holders[pool][-1]
        synth.program_select(channel, sfid, bank, preset)

    def pin_all(self) -> None:
        """Keep every General MIDI preset and drum kit of the soundfont loaded."""
        synth, sfid = _load_synth(self._fluidsynth, self._soundfont, 44100.0)  # to read the preset table
        try:
            presets = [(bank, program) for bank in (0, DRUM_BANK) for program in range(128)
                       if synth.sfpreset_name(sfid, bank, program)]
        finally:
            synth.delete()
        for bank, program in presets:
            self.pin(bank, program, pool="background")


def decode_soundfont_in_background(soundfont: str | Path) -> threading.Thread:
    """Decode every preset of ``soundfont`` in a thread at a low priority, for a process that will render many
    pieces (a server's worker, at start): its jobs then never wait for a preset's samples (up to 3 s for the full
    soundfont's piano). A one-off render decodes only the presets it plays."""
    pins = _pins_of(_import_fluidsynth(), Path(soundfont))

    def run() -> None:
        _lower_this_threads_priority()
        with contextlib.suppress(DependencyError):
            pins.pin_all()

    thread = threading.Thread(target=run, name="fluidsynth-decode", daemon=True)
    thread.start()
    return thread


DYNAMIC_SAMPLE_LOADING = True  # False: every synthesizer decodes every sample as it loads (FluidSynth's default)
_pins: dict[Path, _PresetPins] = {}
_pins_lock = threading.Lock()


def _pins_of(fluidsynth: Any, soundfont: Path) -> _PresetPins:
    with _pins_lock:
        if soundfont not in _pins:
            _pins[soundfont] = _PresetPins(fluidsynth, soundfont)
        return _pins[soundfont]


def _load_synth(fluidsynth: Any, soundfont: Path, sr: float) -> tuple[Any, int]:
    """A new synthesizer at ``sr`` with reverb and chorus on and ``soundfont`` loaded (its samples decoded as
    presets are selected: `_PresetPins`); (synth, soundfont id)."""
    synth = fluidsynth.Synth(gain=PIECE_GAIN, samplerate=sr, channels=N_CHANNELS)
    synth.setting("synth.reverb.active", 1)
    synth.setting("synth.chorus.active", 1)
    synth.setting("synth.dynamic-sample-loading", int(DYNAMIC_SAMPLE_LOADING))
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise DependencyError(
            f"FluidSynth could not load the soundfont {soundfont} (an .sf3 needs libfluidsynth "
            "built with libsndfile, as Debian's is); install the Debian package "
            f"musescore-general-soundfont-small or point {SOUNDFONT_ENV} at an .sf2 file"
        )
    return synth, sfid


class Renderer:
    """A FluidSynth synthesizer at one sample rate with the soundfont loaded once; thread-safe."""

    def __init__(self, sr: int = 44100, *, soundfont: str | Path | None = None) -> None:
        self.sr = _check_int(sr, "sr", MIN_SR, MAX_SR)
        self.soundfont = Path(soundfont) if soundfont is not None else find_soundfont()
        if not self.soundfont.is_file():
            raise DependencyError(f"soundfont {self.soundfont} does not exist; {_MISSING_SOUNDFONT}")
        self._fluidsynth = _import_fluidsynth()
        self._lib = self._fluidsynth._fl
        self._pins = _pins_of(self._fluidsynth, self.soundfont)  # the process's holders of this soundfont's samples
        self._synth, self._sfid = self._new_synth()
        self._spare: _Spare | None = None  # the next piece's synthesizer, being made in a thread
        self._lock = threading.Lock()
        self._fx_on: bool | None = None
        self._gain: float | None = None
        self._note_program: tuple[int, int, int] | None = None
        self._closed = False
        self._cursor = 0  # samples synthesized so far (for block alignment)
        self._used = False  # the synthesizer has played something (a piece then gets a fresh one)
        self._piece_played = False  # it has played a piece (a note then gets a fresh one: no reverb tail left)
        self._helpers: list[Renderer] = []  # more synthesizers for rendering stems side by side (render_parts)
        self._helpers_lock = threading.Lock()  # (not the synthesizer's: a piece may hold that one for a song)

    def _new_synth(self) -> tuple[Any, int]:
        """A new synthesizer with the soundfont loaded (its preset table only: `_PresetPins`)."""
        return _load_synth(self._fluidsynth, self.soundfont, float(self.sr))

    def _fresh_synth(self) -> None:
        """Render the next piece on a synthesizer that has played nothing: the reverb's modulated delay lines and
        the chorus keep their phase from one piece to the next, so a reused synthesizer renders the same score a
        little differently each time (up to 0.02 of full scale). The spare made after the last piece is used if
        it is ready; else one is made now (a spare still being made, on time the cores had spare, is kept for the
        piece after). The used synthesizer is freed."""
        spare = self._spare
        fresh = None
        if spare is not None and spare.ready:  # read once: the thread may finish at any moment
            self._spare, fresh = None, spare.synth
        if fresh is None:
            fresh = self._new_synth()
        self._synth.delete()
        self._synth, self._sfid = fresh
        self._fx_on = self._gain = self._note_program = None
        self._cursor = 0
        self._used = self._piece_played = False

    def _make_spare(self) -> None:
        """Start making the next piece's synthesizer in a thread, unless a spare is pending already (being made,
        or made and not yet used); it is usually ready long before the next job."""
        if self._spare is None:
            self._spare = _Spare(self._new_synth)

    # ---------------------------------------------------------------- low level

    def _write(self, out: np.ndarray, start: int, stop: int) -> None:
        """Synthesize samples [start, stop) of the float32 (2, n) C-contiguous buffer ``out``."""
        if stop > start:
            left, right = out[0].ctypes.data, out[1].ctypes.data
            self._lib.fluid_synth_write_float(
                self._synth.synth, stop - start, left, start, 1, right, start, 1
            )
            self._cursor += stop - start

    def _clean_start(self, channels: set[int] | range) -> None:
        """Stop all sound on ``channels`` and start the next sample on a fresh synthesis block.

        FluidSynth renders in blocks of 64 samples and applies events at block boundaries; finishing the
        current block and rendering one silent block makes every render start identically (no leftover
        samples of the previous note, no onset jitter)."""
        for channel in channels:
            self._synth.all_sounds_off(channel)
        pad = (-self._cursor) % _FLUID_BLOCK + _FLUID_BLOCK
        self._write(np.zeros((2, pad), dtype=np.float32), 0, pad)

    def _set_mode(self, *, fx: bool, gain: float) -> None:
        if self._fx_on is not fx:
            for name in ("fluid_synth_reverb_on", "fluid_synth_chorus_on"):
                if hasattr(self._lib, name):
                    getattr(self._lib, name)(self._synth.synth, -1, int(fx))
            self._fx_on = fx
        if self._gain != gain:
            self._lib.fluid_synth_set_gain(self._synth.synth, gain)
            self._gain = gain

    def _select(self, channel: int, program: int, *, is_drum: bool) -> None:
        bank = DRUM_BANK if is_drum else 0
        preset = program if self._synth.sfpreset_name(self._sfid, bank, program) else 0
        self._synth.program_select(channel, self._sfid, bank, preset)  # decodes its samples if none are loaded
        self._pins.pin(bank, preset)  # and keeps them for the next synthesizers

    def _silence(self, channels: set[int] | range) -> None:
        for channel in channels:
            self._synth.all_sounds_off(channel)

    # ---------------------------------------------------------------- pieces

    def render(self, score: Score, *, tail: float = 1.0, reverb: bool = True,
               frames: int | None = None) -> np.ndarray:
        """Render ``score`` to stereo float32 ``(2, n)`` at ``self.sr``: its duration plus ``tail`` seconds, or
        exactly ``frames`` samples (cut or followed by silence: a stem as long as its whole song).

        Each pitched part gets its own channel and GM program; drum parts play the GM kit (bank 128)
        on channel 10. ``reverb=False`` renders dry.
        """
        if not isinstance(score, Score):
            raise ParameterError(f"expected a Score, got {type(score).__name__}", field="score")
        tail = _check_number(tail, "tail", 0.0, 60.0)
        _check_number(score.tempo, "tempo", 1.0, 1000.0)
        events, channels = self.piece_events(score)
        seconds_per_beat = 60.0 / score.tempo
        total = round(score.end_beats * seconds_per_beat * self.sr) + round(tail * self.sr)
        if total > self.sr * 3600:
            raise ParameterError(f"score lasts {total / self.sr:.0f} s; rendering is limited to one hour")
        out = np.zeros((2, max(total if frames is None else frames, 1)), dtype=np.float32)
        piece = self.open_piece(channels, reverb=reverb)
        try:
            piece.play(events, out)
            piece.advance(out, out.shape[1])
        finally:
            piece.close()
        return limit_peak(out)

    @overload
    def open_piece(self, channels: dict[int, tuple[int, bool]], *, reverb: bool = True, wait: None = None) -> Piece:
        ...

    @overload
    def open_piece(self, channels: dict[int, tuple[int, bool]], *, reverb: bool = True,
                   wait: float) -> Piece | None:
        ...

    def open_piece(self, channels: dict[int, tuple[int, bool]], *, reverb: bool = True,
                   wait: float | None = None) -> Piece | None:
        """Start a piece on this renderer's synthesizer (a fresh one; the renderer is held until the piece is
        closed): ``channels`` (channel -> (program, is_drum)) selected, reverb and chorus on unless ``reverb`` is
        False; None if another piece still holds the renderer after ``wait`` seconds (default: wait for it).
        `render` plays a whole score through one; a `tunesmith.symbolic.stream.StemStream` a part bar by bar as
        it is written."""
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            return None
        try:
            self._ensure_open()
            if self._used:
                self._fresh_synth()
            self._used = self._piece_played = True
            self._set_mode(fx=reverb, gain=PIECE_GAIN)
            for channel, (program, is_drum) in channels.items():
                self._select(channel, program, is_drum=is_drum)
            self._note_program = None
            self._clean_start(set(channels))
        except BaseException:
            self._lock.release()
            raise
        return Piece(self, set(channels))

    def render_parts(self, score: Score, *, tail: float = 1.0, reverb: bool = True, threads: int | None = None,
                     finish: Callable[[int, np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
        """Each part of ``score`` rendered alone (a stem), every one as long as the whole piece's render.

        The parts are rendered side by side on ``threads`` threads (default: one per CPU core, at most 4; FluidSynth
        runs without the GIL), each taking the next part when it is free, the busiest parts first. Each part has a
        synthesizer of its own, kept from call to call, whose fresh successor is made in the background after it
        plays (so it is ready for the next song): the stems are the same however many threads.
        ``finish(index, stem)``, if given, runs on each stem in its thread as soon as it is rendered (e.g. measuring
        and placing it in a mix while other parts still render); its result is the stem returned."""
        if not isinstance(score, Score):
            raise ParameterError(f"expected a Score, got {type(score).__name__}", field="score")
        total = max(1, round(score.end_beats * 60.0 / score.tempo * self.sr) + round(tail * self.sr))
        sounding = [index for index, part in enumerate(score.parts) if part.notes]
        count = max(1, min(threads or min(os.cpu_count() or 1, MAX_STEM_THREADS), len(sounding)))
        renderers = dict(zip(sounding, [self, *self._stem_helpers(max(0, len(sounding) - 1))], strict=False))
        queue = iter(sorted(sounding, key=lambda index: -len(score.parts[index].notes)))
        taking = threading.Lock()

        def render_some(_: int) -> dict[int, np.ndarray]:
            done: dict[int, np.ndarray] = {}
            while True:
                with taking:
                    index = next(queue, None)
                if index is None:
                    return done
                part = score.parts[index]
                y = renderers[index].render(Score(parts=[part], tempo=score.tempo, key=score.key,
                                                  time_signature=score.time_signature, title=score.title),
                                            tail=tail, reverb=reverb, frames=total)
                done[index] = finish(index, y) if finish else y

        if count == 1:
            rendered = render_some(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(count, thread_name_prefix="stems") as pool:
                rendered = {k: v for share in pool.map(render_some, range(count)) for k, v in share.items()}
        for index in range(len(score.parts)):
            if index not in rendered:  # a part with no notes: a silent stem
                silent = np.zeros((2, total), np.float32)
                rendered[index] = finish(index, silent) if finish else silent
        return [rendered[index] for index in range(len(score.parts))]

    def _stem_helpers(self, count: int) -> list[Renderer]:
        """``count`` more renderers of this sample rate and soundfont (made once, then kept)."""
        with self._helpers_lock:
            while len(self._helpers) < count:
                self._helpers.append(Renderer(self.sr, soundfont=self.soundfont))
            return self._helpers[:count]

    def piece_events(self, score: Score) -> tuple[list[Event], dict[int, tuple[int, bool]]]:
        """Sample-timed events ``(sample, 0=off/1=on, channel, pitch, velocity)`` and channel programs."""
        channels: dict[int, tuple[int, bool]] = {}
        events: list[Event] = []
        scale = 60.0 / score.tempo * self.sr
        for part, channel in zip(score.parts, channel_plan(score.parts, channels=N_CHANNELS), strict=True):
            channels.setdefault(channel, (_check_int(part.program, "program", 0, 127), part.is_drum))
            for note in part.notes:
                pitch = _check_int(note.pitch, "pitch", 0, 127)
                if note.start < 0:
                    raise ParameterError(f"part {part.name!r} has a note before beat 0 ({note.start})")
                start = round(note.start * scale)
                end = max(round(note.end * scale), start + 1)
                velocity = max(1, min(127, int(note.velocity)))
                events.append((start, 1, channel, pitch, velocity))
                events.append((end, 0, channel, pitch, 0))
        events.sort()
        return events, channels

    # ---------------------------------------------------------------- single notes

    def render_note(
        self,
        *,
        program: int,
        pitch: int,
        velocity: int,
        note_off: float,
        length: float,
        is_drum: bool = False,
    ) -> np.ndarray:
        """One dry note as mono float32 of exactly ``round(length * sr)`` samples; the key is released
        at ``note_off`` seconds. All sound is stopped before the note, so notes never bleed together."""
        program = _check_int(program, "program", 0, 127)
        pitch = _check_int(pitch, "pitch", 0, 127)
        velocity = _check_int(velocity, "velocity", 1, 127)
        length = _check_number(length, "length", 1.0 / self.sr, 600.0)
        note_off = _check_number(note_off, "note_off", 0.0, 600.0)
        n = round(length * self.sr)
        off = min(round(note_off * self.sr), n)
        channel = DRUM_CHANNEL if is_drum else 0
        out = np.zeros((2, n), dtype=np.float32)
        with self._lock:
            self._ensure_open()
            if self._piece_played:
                self._fresh_synth()
            self._used = True
            self._set_mode(fx=False, gain=NOTE_GAIN)
            if self._note_program != (channel, program, int(is_drum)):
                self._select(channel, program, is_drum=is_drum)
                self._note_program = (channel, program, int(is_drum))
            self._clean_start((channel,))
            self._rehearse(channel, pitch, velocity)
            self._synth.noteon(channel, pitch, velocity)
            self._write(out, 0, off)
            self._synth.noteoff(channel, pitch)
            self._write(out, off, n)
            self._synth.all_sounds_off(channel)
        return (0.5 * (out[0] + out[1])).astype(np.float32, copy=False)

    def _rehearse(self, channel: int, pitch: int, velocity: int) -> None:
        """Play the same note for one block and kill it.

        FluidSynth ramps a new voice's first block from the amplitude its recycled voice object last
        had; rehearsing leaves the voices the note will get in the same state every time, which makes
        `render_note` bit-exact reproducible whatever was rendered before."""
        self._synth.noteon(channel, pitch, velocity)
        self._write(np.zeros((2, _FLUID_BLOCK), dtype=np.float32), 0, _FLUID_BLOCK)
        self._clean_start((channel,))

    # ---------------------------------------------------------------- lifecycle

    def _ensure_open(self) -> None:
        if self._closed:
            raise ParameterError("this Renderer has been closed")

    def close(self) -> None:
        """Free the synthesizer (a closed renderer cannot render)."""
        for helper in self._helpers:
            helper.close()
        with self._lock:
            if not self._closed:
                self._synth.delete()
                if self._spare is not None:
                    self._spare.join()
                    if self._spare.synth is not None:
                        self._spare.synth[0].delete()
                    self._spare = None
                self._closed = True


class Piece:
    """A piece being played on a renderer's synthesizer (`Renderer.open_piece`), event by event, into a buffer the
    caller owns; a note-off only sounds when no other copy of that key is held. Writing in steps gives the same
    samples as writing at once (FluidSynth renders in fixed blocks whatever the length asked)."""

    def __init__(self, renderer: Renderer, channels: set[int]) -> None:
        self._renderer = renderer
        self._channels = channels
        self._held: dict[tuple[int, int], int] = {}
        self.position = 0  # samples of the buffer written so far
        self._closed = False

    def play(self, events: list[Event], out: np.ndarray) -> None:
        """Synthesize up to each event (sorted, none before `position`) and apply it."""
        synth, held = self._renderer._synth, self._held
        for sample, is_on, channel, pitch, velocity in events:
            self.advance(out, sample)
            key = (channel, pitch)
            if is_on:
                held[key] = held.get(key, 0) + 1
                synth.noteon(channel, pitch, velocity)
            else:
                held[key] -= 1
                if held[key] == 0:
                    synth.noteoff(channel, pitch)

    def advance(self, out: np.ndarray, sample: int) -> None:
        """Synthesize up to ``sample`` (at most the buffer's end)."""
        stop = min(sample, out.shape[1])
        if stop > self.position:
            self._renderer._write(out, self.position, stop)
            self.position = stop

    def close(self) -> None:
        """Stop every sound, start the renderer's next fresh synthesizer and let other pieces have it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._renderer._silence(self._channels)
            self._renderer._make_spare()
        finally:
            self._renderer._lock.release()


def limit_peak(out: np.ndarray) -> np.ndarray:
    """``out`` scaled down in place as a whole when it would peak above :data:`PEAK_LIMIT` (never clipped)."""
    peak = max(float(out.max()), -float(out.min())) if out.size else 0.0  # no |out| copy of a long piece
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    return out


MAX_STEM_THREADS = 4
_renderers: dict[tuple[int, Path, str], Renderer] = {}
_renderers_lock = threading.Lock()


def get_renderer(sr: int = 44100, *, soundfont: str | Path | None = None, pool: str = "render") -> Renderer:
    """The process-wide `Renderer` for sample rate ``sr`` and ``soundfont`` (default :func:`find_soundfont`),
    created on first use, then reused. ``pool``: renderers of another pool are other synthesizers (the stems
    rendered while a song is written hold theirs for the whole song: `tunesmith.symbolic.stream`)."""
    sr = _check_int(sr, "sr", MIN_SR, MAX_SR)
    soundfont = Path(soundfont) if soundfont is not None else find_soundfont()
    with _renderers_lock:
        renderer = _renderers.get((sr, soundfont, pool))
        if renderer is None or renderer._closed:
            renderer = Renderer(sr, soundfont=soundfont)
            _renderers[(sr, soundfont, pool)] = renderer
        return renderer


def render_to_file(score: Score, path: str | Path, *, sr: int = 44100, tail: float = 1.0) -> Path:
    """Render ``score`` and write it as an audio file (format from the extension); returns the path."""
    audio = get_renderer(sr).render(score, tail=tail)
    try:
        from tunesmith.audio.io import save
    except ImportError:
        return _save_with_soundfile(Path(path), audio, sr)
    return Path(save(path, audio, sr))


def _save_with_soundfile(path: Path, audio: np.ndarray, sr: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio.T, -1.0, 1.0), sr)
    return path
