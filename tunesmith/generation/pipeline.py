"""The generation pipeline below the service and the CLI:

    request -> load (cached) -> generate -> render -> originality -> watermark -> encode -> sign -> files

:func:`make_work` loads the model (once per process), runs the family's task with the request's seed (again with
the next seed while the work is flagged, when the request asked to reject near-copies), checks its originality
and renders its score with FluidSynth (or resamples the family's own audio) to :data:`SAMPLE_RATE`.
:func:`deliver` marks the audio with the watermark, encodes every format and signs each file. The worker wraps
both with job state, progress and cancel (:mod:`tunesmith.service.generations.tasks`); the CLI calls them directly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.families import Work
from tunesmith.families.params import MAX_SEED
from tunesmith.generation.catalog import ModelEntry
from tunesmith.generation.models import load_once
from tunesmith.generation.originality import OriginalityGate, OriginalityRejected
from tunesmith.generation.signing import Stamper, watermark_audio
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.stream import StemStream

SAMPLE_RATE = 44100
STEM = "stem/"  # files[STEM + name]: the WAV of one stem
RENDER_TAIL = 1.0  # s of a rendered score after its last beat (the reverb's tail; `Renderer.render`'s default)
AUDIO_INDEX_WAIT = 300.0  # s a note asked to be rejected when flagged waits for the training-audio index
Progress = Callable[[float], None]


@dataclass
class Made:
    """A work ready to be written: the family's :class:`Work`, its audio at :data:`SAMPLE_RATE` (channels,
    samples; None when only MIDI was asked for) and its originality report."""

    work: Work
    audio: np.ndarray | None
    originality: dict[str, Any] | None
    sr: int = SAMPLE_RATE
    stems: dict[str, np.ndarray] | None = None  # each part as it sits in the mix (name -> (2, n)), when asked for
    entry: ModelEntry | None = None  # the model that made it (of a model made of several cards, the card's)


def load_model(entry: ModelEntry) -> Any:
    """The entry's model, loaded on first use in this process and kept."""
    return load_once(entry.card_path, entry.family.load, entry.family.name)


def make_work(entry: ModelEntry, params: Mapping[str, Any], *, source: Score | None = None,
              gate: OriginalityGate | None = None, analyzer_card: Path | None = None, audio: bool = True,
              sr: int = SAMPLE_RATE, index_wait: float | None = None, stems: bool | None = None,
              progress: Progress | None = None) -> Made:
    """Load, generate (with the originality check and its retries), render at ``sr``. ``source``: the input
    score; ``audio`` False: only a score is wanted (no rendering); ``index_wait``: seconds a sound's check may
    wait for the training-audio index (default: only a request that rejects near-copies waits); ``stems``: render
    each part alone and mix them (default: when the family's outputs include stems)."""
    entry = entry.for_params(dict(params))  # of a model made of several cards, the card that plays this
    family = entry.family
    if family.run is None:
        raise ValueError(f"family {family.name!r} does not generate")
    step = progress or (lambda _fraction: None)
    model = load_model(entry)
    step(0.1)
    check = _originality_check(entry, params, gate, analyzer_card, index_wait)
    if gate is not None and family.use_copy_guard is not None:  # the sampler steers clear of what the gate flags
        family.use_copy_guard(model, gate.copy_guard(entry.id, entry.card))

    want_stems = ("stems" in family.outputs) if stems is None else stems
    streaming = family.streams and (want_stems or (audio and family.mix_setting is not None))

    def make(seed: int | None) -> Work:
        p = {**params, "model": entry.id, "seed": seed}
        if not streaming:
            return family.run(model, p, copy.deepcopy(source))
        stream = open_stem_stream(family, sr)
        try:
            return family.run(model, p, copy.deepcopy(source), stream=stream)  # type: ignore[call-arg]
        except BaseException:
            stream.cancel()
            raise

    work, report = draw(params, make, check, tries=gate.tries if gate is not None else 1)
    try:
        if report is None and family.originality is None and family.originality_note:
            report = {"status": "not_applicable", "reason": family.originality_note, "flagged": False}
        step(0.5)  # a job cancelled meanwhile stops here
        mixed_family = family.mix_setting is not None or work.perform_part is not None
        if work.audio is None and work.score is not None and (want_stems or (audio and mixed_family)):
            # a family with a mix (levels, pans, loudness) is always mixed from its parts; the stems kept if asked
            mixed, placed = render_stems(work, sr, family.mix_setting, soundfont=family.soundfont)
            return Made(work=work, audio=mixed, originality=report, sr=sr, stems=placed if want_stems else None,
                        entry=entry)
    finally:
        _discard(work)  # whatever was not finished (a cancelled job, a failed render) frees its synthesizers
    rendered = render(work, sr, soundfont=family.soundfont) if audio or work.audio is not None else None
    return Made(work=work, audio=rendered, originality=report, sr=sr, entry=entry)


def open_stem_stream(family: Any, sr: int) -> StemStream:
    """A stream to render a work's parts on while it is written (`tunesmith.symbolic.stream`), on the renderer
    `render_stems` uses; `render_stems` finishes it."""
    from tunesmith.symbolic.render import get_renderer, preferred_soundfont

    return StemStream(get_renderer(sr, soundfont=preferred_soundfont(family.soundfont), pool="stream"),
                      tail=RENDER_TAIL)


def stem_names(parts: list[Any]) -> list[str]:
    """A file-safe, unique name per part ("drums", "bass", "soprano", "lead-2")."""
    names: list[str] = []
    for index, part in enumerate(parts):
        base = re.sub(r"[^a-z0-9]+", "-", str(part.name).lower()).strip("-") or f"part-{index + 1}"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def render_stems(work: Work, sr: int, setting: Callable[[Any], Any] | None, *,
                 soundfont: str | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the mix, each part as it sits in it): every part rendered alone with FluidSynth (``soundfont``: the
    family's preferred one, see `preferred_soundfont`) and placed with the family's level and pan per part as soon
    as it is rendered (while the others still render), then brought to -14 LUFS by the mix's limiter, whose figures
    go to ``work.result["mix"]`` (a family without mix settings: summed as rendered). The parts of a work rendered
    while it was written (``work.stream``) are taken from it when they match the score (how many:
    ``work.result["stems_streamed"]``); the rest are rendered here."""
    stream, work.stream = work.stream, None
    try:
        return _render_stems(work, sr, setting, soundfont, stream)
    finally:
        if stream is not None:
            stream.cancel()  # (a finished stream has nothing left to free)


def _render_stems(work: Work, sr: int, setting: Callable[[Any], Any] | None, soundfont: str | None,
                  stream: StemStream | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from tunesmith.audio.mix import MixSetting, mix_placed, place
    from tunesmith.symbolic.render import get_renderer, preferred_soundfont

    score = work.score
    names = stem_names(score.parts)
    settings = [setting(part) if setting else MixSetting() for part in score.parts]
    renderer = get_renderer(sr, soundfont=preferred_soundfont(soundfont))
    if stream is not None and (work.perform_part is not None
                               or (stream.renderer.sr, stream.renderer.soundfont) != (sr, renderer.soundfont)):
        stream.cancel()  # performed parts set the stems' length, or another rate or soundfont: nothing streamed fits
        stream = None
    body = round(score.end_beats * 60.0 / score.tempo * sr)  # samples up to the last beat
    length = max(1, body + round(RENDER_TAIL * sr))
    performed: dict[int, np.ndarray] = {}  # the parts the work plays itself (e.g. drums by the neural kit)
    if work.perform_part is not None:
        for index, part in enumerate(score.parts):
            played = work.perform_part(_alone(score, [part]), sr)
            if played is not None:
                performed[index] = played
                length = max(length, played.shape[-1])  # a hit's decay may outlast the rendered tail
    placed = {index: place(y, settings[index], sr=sr, length=length, in_place=True) for index, y in performed.items()}
    if stream is not None:  # the parts played while the work was written (those that match the score)
        streamed = stream.finish(score, length, lambda index, y: place(y, settings[index], sr=sr, length=length,
                                                                       in_place=True))
        placed.update(streamed)
        work.result["stems_streamed"] = len(streamed)
    rest = [index for index in range(len(score.parts)) if index not in placed]
    if rest:
        stems = renderer.render_parts(_alone(score, [score.parts[i] for i in rest]), tail=(length - body) / sr,
                                      finish=lambda k, y: place(y, settings[rest[k]], sr=sr, length=length,
                                                                in_place=True))
        placed.update(zip(rest, stems, strict=True))
    if work.loop_beats:  # exactly its bars, the ring-out past its end played over its start, as when it loops
        loop = round(work.loop_beats * 60.0 / score.tempo * sr)
        placed = {index: wrap_tail(y, loop) for index, y in placed.items()}
    mixed, stems_placed, report = mix_placed({names[i]: placed[i] for i in range(len(score.parts))}, sr=sr,
                                             **({} if setting else {"target_lufs": None}))
    if report is not None:
        work.result["mix"] = report.as_dict()
    return mixed, stems_placed


def wrap_tail(y: np.ndarray, body: int) -> np.ndarray:
    """``y`` (channels, samples) cut to its first ``body`` samples, what lies past them added onto its start (a
    tail longer than the body wraps round again)."""
    out = np.zeros((*y.shape[:-1], body), dtype=np.float32)
    out[..., :min(body, y.shape[-1])] = y[..., :body]
    tail = y[..., body:]
    while tail.shape[-1]:
        k = min(body, tail.shape[-1])
        out[..., :k] += tail[..., :k]
        tail = tail[..., k:]
    return out


def _alone(score: Score, parts: list[Any]) -> Score:
    """``score`` with only ``parts`` (its tempo, key, meter and title kept)."""
    return Score(parts=parts, tempo=score.tempo, key=score.key, time_signature=score.time_signature,
                 title=score.title)


def render(work: Work, sr: int = SAMPLE_RATE, *, soundfont: str | None = None) -> np.ndarray:
    """The work's audio at ``sr``: its score rendered with FluidSynth (``soundfont`` as in `render_stems`), or its
    own audio resampled."""
    if work.audio is None:
        from tunesmith.symbolic.render import get_renderer, preferred_soundfont

        if work.score is None:
            raise ValueError("a work with neither audio nor a score")
        return get_renderer(sr, soundfont=preferred_soundfont(soundfont)).render(work.score)
    if work.sr == sr:
        return np.asarray(work.audio, dtype=np.float32)
    from tunesmith.audio.dsp import resample

    return np.stack([resample(channel, orig_sr=work.sr, target_sr=sr) for channel in work.audio]).astype(np.float32)


def draw(params: Mapping[str, Any], make: Callable[[int | None], Work],
         check: Callable[[Work], dict[str, Any]] | None, *, tries: int) -> tuple[Work, dict[str, Any] | None]:
    """(work, its originality report): ``make(seed)`` with the request's seed, checked by ``check``.

    With ``"originality": "reject"`` a flagged work is made again with the next seed, up to ``tries`` times
    (OriginalityRejected when every one is flagged). The work's signed params carry the seed it was made with."""
    reject = params.get("originality") == "reject" and check is not None
    tries = tries if reject else 1
    first = params.get("seed")
    seeds: list[int | None] = []
    for attempt in range(tries):
        seeds.append(first if not attempt else (int(first or 0) + attempt) % (MAX_SEED + 1))
        made = make(seeds[-1])
        if check is None:
            return made, None
        try:
            report = check(made)
        except BaseException:
            _discard(made)
            raise
        if not report["flagged"]:
            break
        if reject:  # drawn again, or refused: this one is not rendered
            _discard(made)
    made.signed["seed"] = made.signed.get("seed", seeds[-1])
    report |= {"tries": len(seeds), "seeds": seeds, "mode": "reject" if reject else "report"}
    if reject and report["flagged"]:
        raise OriginalityRejected(_refusal(len(seeds), report), field="originality")
    return made, report


def _discard(work: Work) -> None:
    """Free what a work that will not be delivered holds (the synthesizers rendering it while it was written)."""
    if work.stream is not None:
        work.stream.cancel()
        work.stream = None


def _originality_check(entry: ModelEntry, params: Mapping[str, Any], gate: OriginalityGate | None,
                       analyzer_card: Path | None, index_wait: float | None) -> Callable[[Work], dict[str, Any]] | None:
    """How the family's works are checked: a score against the training corpus, a sound against the training
    audio (a request that asked to reject flagged sounds waits for the audio index; others never wait)."""
    if gate is None or entry.family.originality is None:
        return None
    if entry.family.originality == "symbolic":
        return lambda work: gate.check(entry.id, entry.card, work.score)
    if entry.family.originality == "tracks":
        tracks = entry.family.originality_tracks
        return lambda work: gate.check_tracks(entry.id, entry.card, work.score, tracks(work))
    wait = index_wait if index_wait is not None else AUDIO_INDEX_WAIT if params.get("originality") == "reject" else 0.0
    return lambda work: gate.audio.check(entry.id, entry.card, analyzer_card, work.audio[0], work.sr, wait=wait)


def _refusal(tries: int, report: dict[str, Any]) -> str:
    """Why a request with ``"originality": "reject"`` failed."""
    if "nearest_item" in report:
        return (f"every one of {tries} tries was a near-copy of the training note {report['nearest_item']} (cosine "
                f"distance {report['distance']:.4f} in the analyzer's embedding space; the limit is "
                f"{report['threshold']})")
    return (f"every one of {tries} tries shared a run of at least {report['longest_shared_run']} notes with the "
            f"training piece {report['closest_piece']} (the limit is {report['threshold']})")


def deliver(made: Made, entry: ModelEntry, files: Mapping[str, Path], *, payload: int,
            stamper: Stamper | None, requester: int | str | None = None) -> dict[str, Any] | None:
    """Watermark the audio (and stems) with ``payload``, write every format (fmt -> path; "mid" is the score,
    ``"stem/NAME"`` a stem as WAV) and sign each file; returns the provenance record (None without a stamper: files
    unsigned and unmarked)."""
    from tunesmith.audio.io import save
    from tunesmith.symbolic.io import write_midi

    entry = made.entry or entry  # signed as the card that played it
    audio = made.audio
    if stamper is not None and audio is not None:  # the mark goes into the samples before any format is encoded
        audio = watermark_audio(audio, made.sr, payload)
        made.audio = audio
    if stamper is not None and made.stems:
        made.stems = {name: watermark_audio(y, made.sr, payload) for name, y in made.stems.items()}
    for fmt, path in files.items():
        if fmt.startswith(STEM):
            stem = (made.stems or {}).get(fmt.removeprefix(STEM))
            if stem is None:
                raise ValueError(f"no stem {fmt.removeprefix(STEM)!r} was rendered")
            save(path, stem, made.sr, format="wav")
        elif fmt == "mid":
            if made.work.score is None:
                raise ValueError(f"model {entry.id} made no score to write as MIDI")
            write_midi(made.work.score, path)
        else:
            if audio is None:
                raise ValueError("no audio was rendered")
            save(path, audio, made.sr, format=fmt)
    if stamper is None:
        return None
    manifest = Stamper.manifest(entry.id, entry.version, entry.card, made.work.signed, requester=requester)
    contents = stamper.stamp(dict(files), manifest, payload)
    return stamper.record(manifest, payload, contents)
