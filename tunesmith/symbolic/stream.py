"""Stems rendered while their song is still being written.

A song model writes a bar at a time on one core; FluidSynth can play each finished bar on the other. A
`StemStream` gives every part its own synthesizer (`Renderer.open_piece`) and a thread that plays each bar as it
arrives, up to the bar line: every note-on before it is known, and so is every note-off (a part kept to one line,
``lines``, has a note cut where the next one starts, which is never before the next bar line)::

    stream = StemStream(get_renderer(44100, pool="stream"), tail=1.0)
    stream.start(parts, tempo=120.0, time_signature=(4, 4), key="C major", end_beat=256.0, lines={"lead"})
    stream.add_bar(4.0, {"drums": [...], "bass": [...]})          # each bar's notes, in beats, as it is written
    ...
    stems = stream.finish(score, frames)                            # index -> stem, the parts that match

A track whose synthesizer another piece still holds after `WAIT_FOR_SYNTHESIZER` leaves the stream unstarted.
`finish` compares every part's events with those of the finished score and keeps only stems whose every event
was played as `Renderer.render` would have played it (then they are the same samples); a part that differs, or
any failure in the thread, leaves that part out, for the caller to render the usual way. Bars still queued when
the song is finished (the stream lags behind a fast writer) are not played by the thread: `finish` plays each
part's remaining events itself, two parts at a time, on the core the writer has just freed. `cancel` frees the
synthesizers of a song that will not be used.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tunesmith.symbolic.render import Event, Piece, Renderer, limit_peak
from tunesmith.symbolic.score import Note, Part, Score

log = logging.getLogger(__name__)

FINISH_THREADS = 2
WAIT_FOR_SYNTHESIZER = 2.0  # s a stream waits for a track's synthesizer held by another piece; then it renders after


class _Busy(Exception):
    """A synthesizer is held by another piece: the song is rendered after it is written."""


class _PartStream:
    """One part played on its own synthesizer as its bars arrive."""

    def __init__(self, renderer: Renderer, part: Part, score: Score, frames: int, *, line: bool) -> None:
        self.renderer = renderer
        self.part = Part(name=part.name, notes=[], program=part.program, is_drum=part.is_drum)
        self.score = score  # tempo, key, meter and title of the song
        self.line = line
        _, channels = renderer.piece_events(self._alone([]))
        self.out = np.zeros((2, max(frames, 1)), np.float32)
        piece = renderer.open_piece(channels, wait=WAIT_FOR_SYNTHESIZER)  # nothing after it may fail
        if piece is None:
            raise _Busy(part.name)
        self.piece: Piece = piece
        self.pending: list[Event] = []  # events known but not yet played (a heap)
        self.fed: list[Event] = []  # events played, in order
        self.tail: Note | None = None  # a line's last note, whose end the next note may still cut

    def _alone(self, notes: list[Note]) -> Score:
        part = Part(name=self.part.name, notes=notes, program=self.part.program, is_drum=self.part.is_drum)
        return Score(parts=[part], tempo=self.score.tempo, key=self.score.key,
                     time_signature=self.score.time_signature, title=self.score.title)

    def add(self, notes: list[Note], until: int, until_beat: float) -> None:
        """Take a bar's notes (sorted by start, pitch) and play every event before sample ``until``."""
        for event in self._line(notes, until_beat) if self.line else self._events(notes):
            heapq.heappush(self.pending, event)
        due: list[Event] = []
        while self.pending and self.pending[0][0] < until:
            due.append(heapq.heappop(self.pending))
        if due and due[0][0] < self.piece.position:  # a note of a bar already played: it would sound late
            raise ValueError(f"{self.part.name}: an event at sample {due[0][0]}, after {self.piece.position}")
        self.piece.play(due, self.out)
        self.fed.extend(due)
        self.piece.advance(self.out, until)

    def _events(self, notes: list[Note]) -> list[Event]:
        return self.renderer.piece_events(self._alone(notes))[0] if notes else []

    def _line(self, notes: list[Note], until_beat: float) -> list[Event]:
        """The events now known of a part kept to one line, as `tunesmith.symbolic.transform.make_monophonic`
        makes it: of notes starting together the highest, each cut where the next one starts. The last note's
        note-off waits for the next note unless it comes before ``until_beat``."""
        chosen: dict[float, Note] = {}
        for note in notes:
            current = chosen.get(note.start)
            if current is None or note.pitch > current.pitch:
                chosen[note.start] = note
        new = [chosen[start] for start in sorted(chosen)]
        line = ([self.tail] if self.tail is not None else []) + new
        events: list[Event] = []
        for note, after in itertools.pairwise(line):
            cut = Note(note.pitch, note.start, min(note.end, after.start) - note.start, note.velocity)
            events += [e for e in self._events([cut]) if note is not self.tail or not e[1]]
        if line:
            last = line[-1]
            ends = last.end < until_beat  # its note-off is known: no next note can start before until_beat
            events += [e for e in self._events([last]) if (last is not self.tail or not e[1]) and (ends or e[1])]
            self.tail = None if ends else last
        return events

    def finish(self, part: Part, frames: int) -> np.ndarray | None:
        """The stem of ``part`` (the finished song's) if every event played matches its events, else None."""
        try:
            if (part.name, part.program, part.is_drum) != (self.part.name, self.part.program, self.part.is_drum):
                return None
            if not part.notes:
                return np.zeros((2, max(frames, 1)), np.float32)
            events, _ = self.renderer.piece_events(self._alone(part.notes))
            played = len(self.fed)
            if events[:played] != self.fed or frames > self.out.shape[1]:
                return None
            if played < len(events) and events[played][0] < self.piece.position:
                return None  # (also when the last bar line, played up to, lies beyond ``frames``: then every
                # event must have been played, and what was written after ``frames`` is cut off)
            self.piece.play(events[played:], self.out)
            self.piece.advance(self.out, frames)
            return limit_peak(self.out[:, :frames])
        finally:
            self.close()

    def close(self) -> None:
        self.piece.close()


class StemStream:
    """Renders the parts of a song bar by bar while it is being written (module docstring)."""

    def __init__(self, renderer: Renderer, *, tail: float) -> None:
        self.renderer = renderer
        self.tail = tail
        self._streams: list[_PartStream] = []
        self._bars: queue.Queue[tuple[float, Mapping[str, list[Note]]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._cancelled = False
        self._finishing = False  # the bars still queued are left to `finish`, which plays them part by part
        self._beat_samples = 0.0

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self, parts: list[Part], *, tempo: float, time_signature: tuple[int, int], key: str | None,
              end_beat: float, lines: Collection[str] = (), title: str = "") -> None:
        """Open a synthesizer per part (name, program, drum or not; their notes are not read), for a song of at
        most ``end_beat`` beats; parts named in ``lines`` are played as one line (highest note, cut at the next)."""
        self._beat_samples = 60.0 / tempo * self.renderer.sr
        frames = round(end_beat * self._beat_samples) + round(self.tail * self.renderer.sr)
        skeleton = Score(parts=[], tempo=tempo, key=key, time_signature=time_signature, title=title)
        renderers = [self.renderer, *self.renderer._stem_helpers(max(0, len(parts) - 1))]
        try:
            for renderer, part in zip(renderers, parts, strict=False):
                self._streams.append(_PartStream(renderer, part, skeleton, frames, line=part.name in lines))
        except _Busy as busy:
            log.info("the synthesizer of %s is busy: the song is rendered after it is written", busy)
            self.cancel()
            return
        except BaseException:
            self.cancel()
            raise
        self._thread = threading.Thread(target=self._play_bars, name="stem-stream", daemon=True)
        self._thread.start()

    def add_bar(self, end_beat: float, notes: Mapping[str, list[Note]]) -> None:
        """A finished bar: its notes by part name (sorted by start, pitch), every one starting before
        ``end_beat``, where the next bar begins."""
        if self._thread is not None:
            self._bars.put((end_beat, notes))

    def _play_bars(self) -> None:
        while (item := self._bars.get()) is not None:
            if self._failed is not None or self._cancelled or self._finishing:  # the bars queued are not played here
                continue
            end_beat, notes = item
            until = round(end_beat * self._beat_samples)
            try:
                for stream in self._streams:
                    stream.add(notes.get(stream.part.name, []), until, end_beat)
            except Exception as error:  # the parts are rendered the usual way instead
                log.warning("streaming the stems failed (%s); they are rendered after the song", error)
                self._failed = error

    def _stop(self) -> None:
        if self._thread is not None:
            self._bars.put(None)
            self._thread.join()
            self._thread = None

    def finish(self, score: Score, frames: int,
               place: Callable[[int, np.ndarray], np.ndarray] | None = None) -> dict[int, np.ndarray]:
        """Stems of ``score``'s parts (index -> ``frames`` samples, through ``place`` if given) for the parts
        that were played exactly as `Renderer.render` plays them; the others are left out. The bars the stream
        has not reached yet are played here, each part on a thread of :data:`FINISH_THREADS` (with the song
        written, the core that wrote it is free)."""
        self._finishing = True
        self._stop()
        if self._failed is not None or len(self._streams) != len(score.parts):
            self.cancel()
            return {}
        streams, self._streams = self._streams, []

        def one(index: int) -> tuple[int, np.ndarray | None]:
            y = streams[index].finish(score.parts[index], frames)
            return index, (place(index, y) if place is not None and y is not None else y)

        # the parts with the most notes left to play first, so the threads end close together
        order = sorted(range(len(streams)), key=lambda index: len(streams[index].fed)
                       - 2 * len(score.parts[index].notes))
        with ThreadPoolExecutor(FINISH_THREADS, thread_name_prefix="stem-finish") as pool:
            done = dict(pool.map(one, order))
        return {index: y for index, y in done.items() if y is not None}

    def cancel(self) -> None:
        """Stop and free the synthesizers (a song that will not be rendered)."""
        self._cancelled = True
        self._stop()
        streams, self._streams = self._streams, []
        for stream in streams:
            stream.close()
