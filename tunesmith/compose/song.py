"""The song facade: whole multi-track songs in a style, with sections, from a trained `song` model.

    writer = SongWriter.load("song")                         # a shipped name, a run directory or a card
    song = writer.generate(style="bossa nova", key="A minor", tempo=128, seconds=90, seed=1)
    song.score        # Score: a part per track (drums, bass, chords, pad, lead), GM programs, drums on channel 10
    song.sections     # [{"name": "intro", "bars": [1, 4]}, {"name": "verse", "bars": [5, 12]}, ...]

How a song is made: the plan (`tunesmith.compose.song_plan`: style blend, meter, sections, repeats, energy),
then the sampler (`tunesmith.compose.song_sampler`: one step per event through the stepper (a thread's
own, with a key/value cache), constraints enforced while sampling), then the steps decoded into a score.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.compose.sampling import STYLE_STRENGTH, check_sampling, check_style_strength
from tunesmith.compose.song_input import (
    band_roles,
    bar_blocks,
    clip_notes,
    estimate_chords,
    input_key,
    input_sections,
    kept_rows,
    melody_part,
    role_notes,
)
from tunesmith.compose.song_plan import (
    MeterPlan,
    SongPlan,
    blend_value,
    chord_chart,
    default_tempo,
    family_style_files,
    instrument_program,
    loop_plan,
    meter_plan,
    resolve_style,
    song_plan,
)
from tunesmith.compose.song_sampler import BarGuard, Constraints, SongSampler
from tunesmith.errors import ParameterError
from tunesmith.models.song import SongStepper, SongTransformer, guided_conditioning, without_style
from tunesmith.symbolic.harmony import Chord, prefers_flats
from tunesmith.symbolic.instruments import DRUM_KITS, EXTRA_PROGRAMS, GM_PROGRAM_NAMES, INSTRUMENTS
from tunesmith.symbolic.keys import key_name, parse_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.song_tokens import (
    ROLES,
    STEPS_PER_BEAT,
    TOKEN_FORMAT,
    DecodedSong,
    SectionSpan,
    bar_steps,
    chord_events_by_bar,
    chord_fields,
    decode_song,
    encode_song,
    head_targets,
    network_spec,
    song_score,
)
from tunesmith.symbolic.stream import StemStream
from tunesmith.symbolic.transform import make_monophonic

MIN_BARS, MAX_SECONDS = 8, 180.0
MAX_LOOP_BARS = 32
MAX_BARS = 256  # a song with an input: the input's bars and those added
INPUT_MODES = ("arrange", "continue", "regenerate", "restyle")
TEMPO_LIMITS = (40.0, 300.0)
# steps a sampled step attends to (at most the training window): every step of a training window's first half
# saw as few, so this is within what the model learned; a step costs a quarter less (the keys and values of a
# longer look-back do not fit the core's cache), and songs kept their style, statistics and key (docs/models.md,
# "Attention window")
SAMPLING_WINDOW = 256
# drum kits (bank 128 presets) that suit a style better than the standard kit
STYLE_KITS = {"swing": 32, "big_band": 32, "jazz": 32, "bebop": 32, "jazz_waltz": 32, "bossa_nova": 40,
              "latin_ballad": 40, "house": 25, "hip_hop": 25, "trip_hop": 25, "techno_trance": 24,
              "drum_and_bass": 24, "ambient": 24}
DEFAULT_PROGRAMS = {"drums": 0, "bass": 33, "chords": 0, "pad": 48, "lead": 73}


@dataclass
class Song:
    """A generated song and how it was made."""

    score: Score
    params: dict[str, Any]
    sections: list[dict[str, Any]]
    tracks: list[dict[str, Any]]
    chords: list[dict[str, Any]]
    seconds: float
    steps: int
    sampled: int
    copied: int
    tokens: np.ndarray | None = None  # the steps the sampler wrote (the loop's two times, a 2/4 song's 4/4 bars)
    notes: list[str] = field(default_factory=list)
    copy_redraws: int = 0  # bars drawn again because a track ran on along a training track (the copy guard)
    copy_notes: int = 0  # notes of those redraws drawn again because they would have ended such a run

    @property
    def steps_per_second(self) -> float:
        return self.sampled / self.seconds if self.seconds > 0 else 0.0


def instrument_name(program: int, *, drum: bool) -> str:
    """A name for a GM program (a kit name for drums): the project's instrument name, else General MIDI's."""
    if drum:
        return next((k.name for k in DRUM_KITS if k.program == program), f"drum kit {program}")
    names = {i.program: i.name for i in INSTRUMENTS} | {p: n for n, p in EXTRA_PROGRAMS.items()}
    if program in names:
        return names[program]
    return GM_PROGRAM_NAMES[program] if 0 <= program < len(GM_PROGRAM_NAMES) else f"program {program}"


# how sharply a style file is drawn by its songs' bands (`band_fit`): 12 instead of session 21's 4, which still
# drew a file whose songs never play the asked band for a quarter of the evaluation's prompts (docs/models.md)
BAND_SHARPNESS = 12


def tempo_fit(tempo: float, span: Sequence[float] | None) -> float:
    """How usual ``tempo`` is for a style file whose training songs span (lowest, median, highest): 1 within the
    span, falling off by a normal curve in log tempo (a fifth of an octave per standard deviation) outside it;
    never below 1e-3, so a tempo no file plays still draws among all."""
    if not span:
        return 1.0
    low, _, high = span
    outside = max(math.log2(low / tempo), math.log2(tempo / high), 0.0)
    return max(math.exp(-0.5 * (outside / 0.2) ** 2), 1e-3)


def band_fit(tracks: Sequence[str], bands: Mapping[str, int] | None) -> float:
    """How well a style file suits the band asked for (``tracks``): over its training songs (``bands``: the roles
    a song plays, joined by "+", -> songs), the mean overlap of a song's band with the asked one (shared roles over
    roles in either) to the power `BAND_SHARPNESS`: a file whose songs play just these tracks scores 1, one whose
    songs play a track more or less 0.03-0.07, so a few songs of the very band outweigh many of another (never
    below 1e-3); 1 when the card does not say. The model only ever heard a file's grooves with the bands its songs
    have."""
    if not bands:
        return 1.0
    asked, overlap = set(tracks), 0.0
    for band, songs in bands.items():
        roles = set(band.split("+"))
        overlap += songs * (len(asked & roles) / len(asked | roles)) ** BAND_SHARPNESS
    return max(overlap / max(1, sum(bands.values())), 1e-3)


def home_chords(tonic: int, mode: str, bars: int) -> dict[int, list[tuple[int, int, int]]]:
    """Chord events that open and close a song of ``bars`` bars on its tonic chord, as a player would (and as a
    listener, or a key finder, hears the key from): the first and the last bar hold it; the model writes the
    harmony of every bar between."""
    home = (0, *chord_fields(Chord(tonic, "m" if mode == "minor" else "")))
    return {0: [home], bars - 1: [home]}


class SongWriter:
    """A loaded song model (its card says its styles, meters, ranges) and its sampler."""

    def __init__(self, model: SongTransformer, card: dict[str, Any], *, name: str) -> None:
        if (card.get("tokens") or {}).get("format") != TOKEN_FORMAT:
            raise ParameterError(f"model {name!r} was trained on song tokens {card.get('tokens', {}).get('format')!r}"
                                 f"; this version reads {TOKEN_FORMAT}", field="model")
        self.model = model.eval()
        self.card = card
        self.name = name
        # makes the copy guard of a song, (meter, sampled roles) -> a `BarGuard` that keeps its tracks from running
        # along a training track past the originality gate; given by whoever has the training tracks' index (the
        # pipeline from the service's gate, the evaluation, the bench); None: no copy guard
        self.copy_guard: Callable[[tuple[int, int], Sequence[str]], BarGuard] | None = None
        self.styles: list[dict[str, Any]] = list(card["styles"])
        self.meters: list[str] = list(card["meters"])
        window = int(((card.get("training") or {}).get("config") or {}).get("window") or 512)
        self._window = min(window, SAMPLING_WINDOW)
        self._steppers = threading.local()
        self._thread_stepper()  # made now: the kernels are compiled (or read from Numba's cache) as the model loads
        self.distilled = (card.get("guidance") or {}).get("kind") == "distilled"  # it learned its style guidance

    @property
    def stepper(self) -> SongStepper:
        """This thread's stepper: each holds the key/value cache of the song it writes, so threads that share the
        writer (a server's worker threads) write songs at the same time."""
        return self._thread_stepper()

    def _thread_stepper(self) -> SongStepper:
        stepper = getattr(self._steppers, "stepper", None)
        if stepper is None:
            stepper = self._steppers.stepper = SongStepper(self.model, window=self._window)
        return stepper

    @classmethod
    def load(cls, name_or_path: str | Path) -> SongWriter:
        """Load a shipped model by name ("song") or a training run directory or card."""
        directory, name = resolve_checkpoint(name_or_path)
        card = load_card(directory, name)
        model = SongTransformer(**{**network_spec(), **card["kwargs"]})
        load_weights(directory, name, model)
        return cls(model, card, name=str(name_or_path))

    # ---- what a request may ask -------------------------------------------------------------------------

    def style_weights(self, style: str) -> dict[str, float]:
        return resolve_style(style, self.styles)

    def meter_plan(self, meter: str) -> MeterPlan:
        return meter_plan(meter, self.meters)

    def default_tempo(self, style: str) -> float:
        return float(default_tempo(self.style_weights(style), self.styles))

    @staticmethod
    def bars_for(seconds: float, tempo: float, meter: str) -> int:
        """Whole bars closest to ``seconds`` at ``tempo`` quarter notes per minute."""
        numerator, denominator = (int(x) for x in meter.split("/"))
        return max(1, round(seconds * tempo / 60.0 / (numerator * 4 / denominator)))

    # ---- generation -------------------------------------------------------------------------------------

    def generate(self, *, style: str, key: str = "C major", tempo: float | None = None, bars: int | None = None,
                 seconds: float | None = None, meter: str = "4/4", energy: float = 0.5,
                 tracks: Sequence[str] = ROLES, loop: int | None = None,
                 instruments: Mapping[str, str | int] | None = None, chords: Sequence[tuple[float, str]] | None = None,
                 chart: str | None = None, seed: int | None = None, temperature: float = 1.0,
                 top_p: float = 0.95, style_strength: float = STYLE_STRENGTH, stream: StemStream | None = None) -> Song:
        """A song (or with ``loop`` a seamless loop of that many bars) in ``style``; ``bars`` or ``seconds`` give
        its length; ``chords`` (beat, symbol) changes or a ``chart`` ("Am | F | C | G", repeated) to follow
        instead of the model's own harmony; ``style_strength``: see `check_style_strength`. ``stream``: each
        bar's notes go to it as soon as the bar is written, to be rendered on another core meanwhile (a song
        written in its own meter and not cut from a longer one; else the stream is left unstarted)."""
        started = time.perf_counter()
        check_sampling(temperature, top_p)
        check_style_strength(style_strength)
        weights = self.style_weights(style)
        tonic, mode = parse_key(key)
        plan_meter = self.meter_plan(meter)
        tempo = float(tempo) if tempo is not None else float(default_tempo(weights, self.styles))
        tracks = self._tracks(tracks)
        bars = self._bars(bars, seconds, tempo, meter, loop)
        if not 0.0 <= energy <= 1.0:
            raise ParameterError(f"energy must be 0..1, got {energy}", field="energy")
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(0, 2**31 - 1))
        model_bars = plan_meter.model_bars(bars)
        plan = loop_plan(model_bars, energy) if loop else song_plan(model_bars, energy)
        if chart:  # over every bar the model writes (a loop's two times, a 2/4 song's whole 4/4 bars)
            numerator, denominator = (int(x) for x in meter.split("/"))
            covered = plan.bars * (2 if plan_meter.conversion == "halves" else 1)
            chords = chord_chart(chart, bar_beats=numerator * 4 / denominator, bars=covered)
        given = self._given_chords(chords, plan_meter, plan) if chords else None
        if given is None and not loop:
            given = home_chords(tonic, mode, plan.bars)
        constraints = Constraints(meter=plan_meter.model, tracks=tracks, role_ranges=self.card["role_ranges"],
                                  drum_keys=self.card["drum_keys"], tonic=tonic, mode=mode,
                                  harmony=(self.card.get("harmony") or {}).get(mode, ()),
                                  triplets=plan_meter.conversion == "triplets")
        style_files = self.style_files_for(weights, plan_meter, tempo, seed, tracks=tracks)
        cond = self._condition(weights, tonic, mode, plan_meter, tempo, tracks, style_files)
        programs = self._programs(weights, instruments)
        roles, title = [r for r in ROLES if r in tracks], f"Tunesmith song: {style}"
        on_bar = None
        if stream is not None and plan.keep is None and plan_meter.conversion in ("native", "cut"):
            on_bar = _stream_bars(stream, roles, programs, plan_meter.model, tempo, plan.bars,
                                  key=key_name(tonic, mode), title=title)
        with threadpool_limits(limits=1, user_api="blas"), torch.no_grad():
            self._start(cond, style_strength)
            guard = self._copy_guard(plan_meter.model, tracks)
            sampler = SongSampler(self.stepper, constraints, rng=np.random.default_rng(seed),
                                  temperature=temperature, top_p=top_p, guard=guard)
            written = sampler.write(plan, given, on_bar=on_bar)
        decoded = decode_song(written.steps, meter=plan_meter.model)
        if plan.keep is not None:
            decoded = crop_bars(decoded, *plan.keep, meter=plan_meter.model)
        decoded, score_meter = convert_meter(decoded, plan_meter, bars)
        score = song_score(decoded, programs=programs, tempo=tempo, key=key_name(tonic, mode), meter=score_meter,
                           roles=roles, title=title)
        score.parts = [make_monophonic(p) if p.name == "lead" else p for p in score.parts]  # one line: a tune
        elapsed = time.perf_counter() - started
        sections = [{"name": "loop" if loop else s.name, "bars": [s.start_bar + 1, s.start_bar + s.bars],
                     "energy": round(s.energy / 4, 2)} for s in decoded.sections]
        params = {"style": style, "styles": {k: round(v, 3) for k, v in weights.items()},
                  "style_files": {k: round(v, 3) for k, v in style_files.items()}, "key": key_name(tonic, mode),
                  "tempo": tempo, "bars": bars, "meter": meter, "energy": energy, "tracks": list(tracks),
                  "loop": loop, "seed": seed, "temperature": temperature, "top_p": top_p,
                  "style_strength": style_strength, "copy_guard": guard is not None}
        return Song(score=score, params=params, sections=sections, tracks=self._track_report(score),
                    chords=chord_report(decoded, score_meter, key_name(tonic, mode)), seconds=elapsed,
                    steps=len(written.steps), sampled=written.sampled, copied=written.copied, tokens=written.steps,
                    copy_redraws=guard.redrawn if guard is not None else 0, copy_notes=written.struck)

    def generate_from(self, source: Score, *, mode: str = "arrange", style: str | None = "pop", key: str | None = None,
                      tempo: float | None = None, bars: int | None = None, seconds: float | None = None,
                      energy: float = 0.5, tracks: Sequence[str] | None = None, track: str | None = None,
                      instruments: Mapping[str, str | int] | None = None, chart: str | None = None,
                      seed: int | None = None, temperature: float = 1.0, top_p: float = 0.95,
                      style_strength: float = STYLE_STRENGTH, max_notes: int | None = None) -> Song:
        """A song made with a user's score ``source`` (`tunesmith.compose.song_input` maps its tracks to roles):

        * ``arrange``: its melody kept note for note as the lead, a band in ``style`` over chords the melody
          implies (or a ``chart``) around it;
        * ``continue``: the whole song kept and ``bars`` (or ``seconds``) more written after it;
        * ``regenerate``: a new part for its ``track``, every other track kept note for note;
        * ``restyle``: its lead (melody) and its chords kept, the rest written anew in ``style``.

        Meter and tempo are the input's (``tempo`` may change it), the key its own or ``key``, the style ``style``
        or (None) the one the input sounds like to the model (`likeliest_style`); ``max_notes`` caps the input's
        notes. Errors about the input name the field ``input``."""
        started = time.perf_counter()
        check_sampling(temperature, top_p)
        check_style_strength(style_strength)
        if mode not in INPUT_MODES:
            raise ParameterError(f"mode must be one of {', '.join(INPUT_MODES)}, got {mode!r}", field="mode")
        weights = self.style_weights(style) if style is not None else None  # None: the input's, read below
        name = source.title or "the input"
        if not 0.0 <= energy <= 1.0:
            raise ParameterError(f"energy must be 0..1, got {energy}", field="energy")
        check_input_score(source, max_notes=max_notes)
        meter = "{}/{}".format(*source.time_signature)
        try:
            plan_meter = self.meter_plan(meter)
        except ParameterError as exc:
            raise ParameterError(f"{name} is in {meter}: {exc.message}", field="input") from None
        key = key_name(*parse_key(key)) if key else input_key(source)
        tonic, key_mode = parse_key(key)
        tempo = float(tempo) if tempo is not None else min(max(float(source.tempo), TEMPO_LIMITS[0]), TEMPO_LIMITS[1])
        roles = band_roles(source)
        by_role = role_notes(source, roles)
        present = [r for r in ROLES if r in by_role]
        in_bars = max(1, source.n_bars)
        pitched = [n for r in present if r != "drums" for n in by_role[r]]
        notes = ["input tracks: " + ", ".join(f"{p.name or 'track ' + str(i + 1)} -> {r}" for i, (p, r)
                                              in enumerate(zip(source.parts, roles, strict=True)) if r)]
        kept: dict[str, list[Note]] = {}
        total = in_bars
        if mode == "arrange":
            melody = melody_part(source)
            if melody is None:
                raise ParameterError(f"{name} has no pitched notes: a melody to arrange has notes", field="input")
            kept = {"lead": melody.notes}
            playing = self._tracks(tracks or ROLES)
            chord_notes, from_melody = melody.notes, True
            notes.append(f"the melody: {melody.name or 'track'} ({len(melody.notes)} notes)")
        elif mode == "restyle":
            if not pitched:
                raise ParameterError(f"{name} has no pitched notes: no chords or melody to keep", field="input")
            kept = {"lead": by_role["lead"]} if "lead" in by_role else {}
            playing = self._tracks(tracks or ROLES)
            chord_notes, from_melody = pitched, False
        elif mode == "regenerate":
            if track not in ROLES:
                raise ParameterError(f"regenerate names a track: one of {', '.join(ROLES)}", field="track")
            if track not in present:
                raise ParameterError(f"{name} has no {track} track to regenerate; its tracks are "
                                     f"{', '.join(present)}", field="track")
            kept = {r: by_role[r] for r in present if r != track}
            playing = tuple(present)
            chord_notes, from_melody = pitched, False
        else:  # continue
            playing = self._tracks(tracks or present)
            added = int(bars) if bars is not None else self.bars_for(seconds if seconds is not None else 30.0,
                                                                     tempo, meter)
            if added < 1:
                raise ParameterError(f"continue adds at least one bar, got {added}",
                                     field="bars" if bars is not None else "length")
            total = in_bars + added
            chord_notes, from_melody = pitched, False
        if total > MAX_BARS:
            raise ParameterError(f"{name} has {in_bars} bars; with those added the song would have {total}, more "
                                 f"than {MAX_BARS}", field="input" if mode != "continue" else "length")
        for role in kept:
            if role not in playing:
                raise ParameterError(f"tracks must include {role}: {mode} keeps {name}'s {role} track", field="tracks")
        bar_beats = source.bar_beats
        if chart:
            numerator, denominator = source.time_signature
            changes = chord_chart(chart, bar_beats=numerator * 4 / denominator, bars=total)
        else:
            changes = estimate_chords(chord_notes, bars=in_bars, meter=source.time_signature, key=key,
                                      melody=from_melody, harmony=(self.card.get("harmony") or {}).get(key_mode, ())
                                      ) if chord_notes else []
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(0, 2**31 - 1))
        model_in, model_total = plan_meter.model_bars(in_bars), plan_meter.model_bars(total)
        if mode == "continue":
            plan = song_plan(model_total, energy)
            plan.copy_from = {b: a for b, a in plan.copy_from.items() if b >= model_in}
            plan.chords_from = {b: a for b, a in plan.chords_from.items() if b >= model_in}
        else:
            plan = SongPlan(bars=model_total, sections=input_sections(model_total, energy))
        scale = 1 / 1.5 if plan_meter.conversion == "triplets" else 1.0
        given = self._given_chords(changes, plan_meter, plan) if changes else None
        if given is not None and mode == "continue" and not chart:
            given = {b: events for b, events in given.items() if b < model_in}
        def encoded(tracks: Mapping[str, list[Note]]) -> np.ndarray:
            moved = [(r, [Note(n.pitch, n.start * scale, n.duration * scale, n.velocity) for n in items])
                     for r, items in tracks.items()]
            return encode_song(moved, meter=plan_meter.model, bars=model_in, tonic=tonic,
                               chords=[(b * scale, c) for b, c in changes], sections=plan.sections, end=False)

        steps = encoded(by_role if mode == "continue" else kept)
        given_bars = bar_blocks(steps) if mode == "continue" else None
        kept_notes = kept_rows(steps) if mode != "continue" else None
        constraints = Constraints(meter=plan_meter.model, tracks=playing, role_ranges=self.card["role_ranges"],
                                  drum_keys=self.card["drum_keys"], tonic=tonic, mode=key_mode,
                                  harmony=(self.card.get("harmony") or {}).get(key_mode, ()),
                                  triplets=plan_meter.conversion == "triplets", kept_tracks=tuple(kept))
        if weights is None:  # read from every track the input has (a regenerated one's old part too)
            style = self.likeliest_style(steps if mode == "continue" else encoded(by_role), tonic=tonic,
                                         mode=key_mode, plan=plan_meter, tempo=tempo, tracks=list(by_role))
            weights = self.style_weights(style)
            notes.append(f"style: {style}, the style the input sounds like to the model")
        style_files = self.style_files_for(weights, plan_meter, tempo, seed, tracks=playing)
        cond = self._condition(weights, tonic, key_mode, plan_meter, tempo, playing, style_files)
        with threadpool_limits(limits=1, user_api="blas"), torch.no_grad():
            self._start(cond, style_strength)
            guard = self._copy_guard(plan_meter.model, [r for r in playing if r not in kept])
            sampler = SongSampler(self.stepper, constraints, rng=np.random.default_rng(seed),
                                  temperature=temperature, top_p=top_p, guard=guard)
            written = sampler.write(plan, given, given_bars=given_bars, kept=kept_notes)
        decoded, score_meter = convert_meter(decode_song(written.steps, meter=plan_meter.model), plan_meter, total)
        programs = self._programs(weights, instruments)
        made = song_score(decoded, programs=programs, tempo=tempo, key=key, meter=score_meter,
                          roles=[r for r in ROLES if r in playing], title=f"Tunesmith song ({mode}): {style}")
        end = total * bar_beats
        if mode in ("arrange", "restyle"):
            for part in made.parts:
                if part.name in kept:
                    part.notes = clip_notes(kept[part.name], end)
                elif part.name == "lead":
                    part.notes = make_monophonic(part).notes
            score = made
            origins = [(p.name, "kept" if p.name in kept else "written") for p in made.parts]
        else:
            score, origins = _merged(source, roles, made, mode=mode, track=track, after=in_bars * bar_beats,
                                     instruments=instruments or {})
            score.tempo, score.key, score.time_signature = tempo, key, score_meter
            score.title = made.title
        elapsed = time.perf_counter() - started
        sections = [{"name": s.name, "bars": [s.start_bar + 1, s.start_bar + s.bars],
                     "energy": round(s.energy / 4, 2)} for s in decoded.sections]
        if mode == "continue":
            sections = continued_sections(sections, in_bars)
        params = {"mode": mode, "track": track, "style": style,
                  "styles": {k: round(v, 3) for k, v in weights.items()},
                  "style_files": {k: round(v, 3) for k, v in style_files.items()}, "key": key, "tempo": tempo,
                  "bars": total, "input_bars": in_bars, "meter": meter, "energy": energy, "tracks": list(playing),
                  "loop": None,
                  "seed": seed, "temperature": temperature, "top_p": top_p, "style_strength": style_strength,
                  "copy_guard": guard is not None}
        return Song(score=score, params=params, sections=sections, tracks=self._track_report(score, origins),
                    chords=chord_report(decoded, score_meter, key), seconds=elapsed, steps=len(written.steps),
                    sampled=written.sampled, copied=written.copied, tokens=written.steps, notes=notes,
                    copy_redraws=guard.redrawn if guard is not None else 0, copy_notes=written.struck)

    def _tracks(self, tracks: Sequence[str]) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(tracks))
        unknown = [t for t in chosen if t not in ROLES]
        if unknown or not chosen:
            raise ParameterError(f"tracks must be a non-empty subset of {', '.join(ROLES)}; got "
                                 f"{', '.join(map(str, unknown or chosen)) or 'none'}", field="tracks")
        return chosen

    def _bars(self, bars: int | None, seconds: float | None, tempo: float, meter: str, loop: int | None) -> int:
        if loop is not None:
            if not 1 <= loop <= MAX_LOOP_BARS:
                raise ParameterError(f"loop must be 1..{MAX_LOOP_BARS} bars, got {loop}", field="loop")
            return int(loop)
        if bars is None:
            bars = self.bars_for(seconds if seconds is not None else 60.0, tempo, meter)
            if bars < MIN_BARS:
                raise ParameterError(f"{seconds:g} s at {tempo:g} BPM in {meter} is {bars} bar(s); a song has at "
                                     f"least {MIN_BARS} bars (or ask for a loop)", field="length")
        if bars < MIN_BARS:
            raise ParameterError(f"a song has at least {MIN_BARS} bars, got {bars} (or ask for a loop)", field="bars")
        numerator, denominator = (int(x) for x in meter.split("/"))
        length = bars * numerator * 4 / denominator * 60.0 / tempo
        if length > MAX_SECONDS + 1e-6 and bars > MIN_BARS:
            raise ParameterError(f"{bars} bars at {tempo:g} BPM last {length:.0f} s; a song lasts at most "
                                 f"{MAX_SECONDS:g} s", field="bars" if seconds is None else "length")
        return int(bars)

    def likeliest_style(self, steps: np.ndarray, *, tonic: int, mode: str, plan: MeterPlan, tempo: float,
                        tracks: Sequence[str]) -> str:
        """The style family under which the model finds ``steps`` (a song as it reads one; its first training
        window) likeliest: the style a song a user gives sounds like to the model. Each family is read with its
        style files blended as `style_files_for` would draw them."""
        window = int(((self.card.get("training") or {}).get("config") or {}).get("window") or 512)
        steps = np.asarray(steps[:window], dtype=np.int64)
        families = [s["id"] for s in self.styles]
        conds = [self._condition({family: 1.0}, tonic, mode, plan, tempo, tracks,
                                 dict(self._file_odds(family, plan, tempo, tracks))) for family in families]
        cond = {k: torch.cat([c[k] for c in conds]) for k in conds[0]}
        batch = torch.from_numpy(steps)[None].expand(len(families), -1, -1)
        targets = head_targets(steps[1:])
        with torch.no_grad():
            logits = self.model(batch, cond)
            nll = torch.zeros(len(families))
            for head, target in targets.items():
                at = np.flatnonzero(target >= 0)
                if len(at):
                    picked = torch.log_softmax(logits[head][:, at], dim=-1)[:, np.arange(len(at)), target[at]]
                    nll -= picked.sum(dim=1)
        return families[int(torch.argmin(nll))]

    def _file_odds(self, family: str, plan: MeterPlan, tempo: float,
                   tracks: Sequence[str]) -> list[tuple[str, float]]:
        """A family's style files (in the meter the model writes, when it has some there) and the odds of each,
        summing to 1: by its training songs, by how usual ``tempo`` (the song's) is for it in that meter and by
        how well its songs' bands suit ``tracks`` (`band_fit`)."""
        tempo = tempo * plan.tempo_factor()
        fitting = family_style_files(self.card, family, plan)
        odds = np.array([float(f["songs"]) * tempo_fit(tempo, f.get("tempo")) * band_fit(tracks, f.get("bands"))
                         for f in fitting])
        return [(f["id"], float(w)) for f, w in zip(fitting, odds / odds.sum(), strict=True)] if fitting else []

    def style_files_for(self, weights: Mapping[str, float], plan: MeterPlan, tempo: float, seed: int, *,
                        tracks: Sequence[str] = ROLES) -> dict[str, float]:
        """Per style family of the blend, one of its style files (a file in the meter the model writes when the
        family has one), drawn by ``seed`` in proportion to its training songs, to how usual ``tempo`` (the
        song's) is for it in that meter and to how well its songs' bands suit ``tracks``, with the family's weight;
        empty for a model without style files. Like a player who picks one of the style's grooves that suits the
        tempo and the band, and keeps to it."""
        rng = np.random.default_rng([seed, 7])
        chosen: dict[str, float] = {}
        for family, weight in weights.items():
            files = self._file_odds(family, plan, tempo, tracks)
            if not files:
                continue
            pick = files[int(rng.choice(len(files), p=np.array([odds for _, odds in files])))][0]
            chosen[pick] = chosen.get(pick, 0.0) + weight
        return chosen

    def _condition(self, weights: Mapping[str, float], tonic: int, mode: str, plan: MeterPlan, tempo: float,
                   tracks: Sequence[str], style_files: Mapping[str, float]) -> dict[str, torch.Tensor]:
        index = {s["id"]: i for i, s in enumerate(self.styles)}
        style = torch.zeros(1, len(self.styles))
        for style_id, weight in weights.items():
            style[0, index[style_id]] = weight
        model_meter = "{}/{}".format(*plan.model)
        cond = {"style": style, "key": torch.tensor([tonic + (12 if mode == "minor" else 0)]),
                "meter": torch.tensor([self.meters.index(model_meter)]),
                "tempo": torch.tensor([tempo * plan.tempo_factor()], dtype=torch.float32),
                "tracks": torch.tensor([[1.0 if r in tracks else 0.0 for r in ROLES]])}
        files = [f["id"] for f in self.card.get("style_files") or []]
        if files:
            cond["style_file"] = torch.zeros(1, len(files))
            for name, weight in style_files.items():
                cond["style_file"][0, files.index(name)] = weight
        return cond

    def _copy_guard(self, meter: tuple[int, int], roles: Sequence[str]) -> BarGuard | None:
        """A copy guard over the sampled ``roles`` when the writer was given one (`copy_guard`), else None."""
        return self.copy_guard(meter, roles) if self.copy_guard is not None else None

    def _start(self, cond: dict[str, torch.Tensor], style_strength: float) -> None:
        """Start the stepper on ``cond``, guided away from the same song in the mean of all styles by
        ``style_strength`` (1: plain sampling): a model that learned its guidance (card ``guidance``, `train song
        --distill`) reads the moved style in one pass; another runs both conditionings (`SongStepper`)."""
        if self.distilled:
            self.stepper.start(guided_conditioning(cond, style_strength))
            return
        self.stepper.start(cond, contrast=without_style(cond), strength=style_strength)

    def _given_chords(self, chords: Sequence[tuple[float, str]], plan_meter: MeterPlan,
                      plan: SongPlan) -> dict[int, list[tuple[int, int, int]]]:
        """Chord changes (beats of the asked meter) as chord events per model bar."""
        scale = 1 / 1.5 if plan_meter.conversion == "triplets" else 1.0
        try:
            moved = [(float(beat) * scale, symbol) for beat, symbol in chords]
            return chord_events_by_bar(moved, bar_steps(plan_meter.model), plan.bars)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"chords must be (beat, symbol) pairs: {exc}", field="chords") from None

    def _programs(self, weights: Mapping[str, float], instruments: Mapping[str, str | int] | None) -> dict[str, int]:
        programs = dict(DEFAULT_PROGRAMS)
        for role, choices in (blend_value(weights, self.styles, "programs") or {}).items():
            if choices:
                programs[role] = int(choices[0])
        heaviest = max(weights, key=weights.get)
        programs["drums"] = STYLE_KITS.get(heaviest, programs["drums"])
        for role, name in (instruments or {}).items():
            if role not in ROLES:
                raise ParameterError(f"instruments: unknown track {role!r}; tracks are {', '.join(ROLES)}",
                                     field="instruments")
            programs[role] = instrument_program(role, name)
        return programs

    @staticmethod
    def _track_report(score: Score, origins: Sequence[tuple[str | None, str]] | None = None) -> list[dict[str, Any]]:
        """Each part's name, band role, instrument and notes; with ``origins`` (a song made with an input: each
        part's role and what it is of the input, "kept", "continued" or "written") also ``input``."""
        out = []
        for i, p in enumerate(score.parts):
            item = {"name": p.name, "role": p.name, "program": p.program,
                    "instrument": instrument_name(p.program, drum=p.is_drum), "notes": len(p.notes)}
            if origins is not None:
                item["role"], item["input"] = origins[i]
            out.append(item)
        return out


def _stream_bars(stream: StemStream, roles: list[str], programs: Mapping[str, int], meter: tuple[int, int],
                 tempo: float, bars: int, *, key: str, title: str) -> Callable[[int, np.ndarray], None]:
    """Start ``stream`` with the song's parts and return what gives it each written bar's notes (the lead kept
    to one line, as the score will have it)."""
    bar_beats = bar_steps(meter) / STEPS_PER_BEAT
    stream.start([Part(name=role, notes=[], program=int(programs.get(role, 0)), is_drum=role == "drums")
                  for role in roles], tempo=tempo, time_signature=meter, key=key, end_beat=bars * bar_beats,
                 lines={"lead"}, title=title)

    def on_bar(bar: int, rows: np.ndarray) -> None:
        notes = decode_song(rows, meter=meter, first_bar=bar).notes
        stream.add_bar((bar + 1) * bar_beats, {role: notes[role] for role in roles})

    return on_bar


def continued_sections(sections: list[dict[str, Any]], in_bars: int) -> list[dict[str, Any]]:
    """The sections of a continued song as a user reads them: its first ``in_bars`` bars are the input (one
    section, "input"), then the planned sections of the bars written after it (one that began in the input starts
    after it)."""
    after = [{**s, "bars": [max(s["bars"][0], in_bars + 1), s["bars"][1]]} for s in sections
             if s["bars"][1] > in_bars]
    energy = next((s["energy"] for s in sections if s["bars"][0] <= in_bars <= s["bars"][1]), 0.5)
    return [{"name": "input", "bars": [1, in_bars], "energy": energy}, *after]


def check_input_score(score: Score, *, max_notes: int | None = None) -> None:
    """An input a song can be made with: notes (pitched or drums), at most ``max_notes`` of them, a meter."""
    name = score.title or "the input"
    if not score.n_notes:
        raise ParameterError(f"{name} has no notes", field="input")
    if max_notes is not None and score.n_notes > max_notes:
        raise ParameterError(f"{name} has {score.n_notes} notes; an input has at most {max_notes} "
                             "(setting max_input_notes, TUNESMITH_MAX_INPUT_NOTES)", field="input")


def _merged(source: Score, roles: Sequence[str | None], made: Score, *, mode: str, track: str | None, after: float,
            instruments: Mapping[str, str | int]) -> tuple[Score, list[tuple[str | None, str]]]:
    """The input's tracks note for note with what was written: ``regenerate``: the new part in place of the
    tracks of ``track``; ``continue``: the new bars (from beat ``after``) added to the first track of each role,
    a role the input does not have as a new track. With each part's band role and what it is of the input
    ("kept", "continued" or "written")."""
    written = {p.name: p for p in made.parts}
    parts: list[Part] = []
    origins: list[tuple[str | None, str]] = []
    placed: set[str] = set()
    for part, role in zip(source.parts, roles, strict=True):
        copy = Part(name=part.name, notes=list(part.notes), program=part.program, is_drum=part.is_drum)
        new = written.get(role) if role else None
        if new is not None and role not in placed and (mode == "continue" or role == track):
            placed.add(role)
            notes = [n for n in new.notes if n.start >= after - 1e-9] if mode == "continue" else new.notes
            if role == "lead":
                notes = make_monophonic(Part(role, notes)).notes
            if mode == "regenerate":
                copy = Part(name=part.name or role, notes=[], program=new.program if role in instruments
                            else part.program, is_drum=role == "drums")
            copy.notes = sorted(copy.notes + notes, key=lambda n: (n.start, n.pitch))
            origins.append((role, "continued" if mode == "continue" else "written"))
        elif mode == "regenerate" and role == track:
            continue  # a second track of the regenerated role: the new part replaces them all
        else:
            origins.append((role, "kept"))
        parts.append(copy)
    for role, new in written.items():
        if role not in placed and mode == "continue" and role not in roles:
            notes = [n for n in new.notes if n.start >= after - 1e-9]
            parts.append(Part(name=role, notes=make_monophonic(Part(role, notes)).notes if role == "lead" else notes,
                              program=new.program, is_drum=new.is_drum))
            origins.append((role, "written"))
    score = Score(parts=parts, tempo=made.tempo, key=made.key, time_signature=made.time_signature, title=made.title)
    return score, origins


def crop_bars(song: DecodedSong, first: int, count: int, *, meter: tuple[int, int]) -> DecodedSong:
    """Bars ``first`` .. ``first + count - 1`` of a decoded song, moved to start at beat 0 (notes that start
    before the first bar are left out; the chord sounding at the first bar line is kept)."""
    beats = bar_steps(meter) / STEPS_PER_BEAT
    start, end = first * beats, (first + count) * beats
    notes = {role: [Note(n.pitch, n.start - start, n.duration, n.velocity) for n in items
                    if start - 1e-9 <= n.start < end - 1e-9] for role, items in song.notes.items()}
    sounding = [c for c in song.chords if c[0] <= start + 1e-9][-1:]
    chords = [(max(0.0, b - start), c) for b, c in sounding + [c for c in song.chords if start + 1e-9 < c[0] < end]]
    sections = [SectionSpan(s.name, s.start_bar - first if s.start_bar >= first else 0,
                            min(s.start_bar + s.bars, first + count) - max(s.start_bar, first), s.energy)
                for s in song.sections if s.start_bar < first + count and s.start_bar + s.bars > first]
    return DecodedSong(notes=notes, chords=chords, bars=count, sections=sections)


def convert_meter(song: DecodedSong, plan: MeterPlan, bars: int) -> tuple[DecodedSong, tuple[int, int]]:
    """A song written in the model's meter as the asked meter (`tunesmith.compose.song_plan`, "Meter")."""
    if plan.conversion in ("native", "cut"):
        return song, plan.asked
    if plan.conversion == "triplets":
        notes = {r: [Note(n.pitch, n.start * 1.5, n.duration * 1.5, n.velocity) for n in items]
                 for r, items in song.notes.items()}
        chords = [(b * 1.5, c) for b, c in song.chords]
        return DecodedSong(notes=notes, chords=chords, bars=song.bars, sections=song.sections), plan.asked
    # halves: each 4/4 bar becomes two 2/4 bars, cut to the bars asked
    end = bars * 2.0
    notes = {r: [n for n in items if n.start < end - 1e-9] for r, items in song.notes.items()}
    sections = [SectionSpan(s.name, 2 * s.start_bar, min(2 * s.bars, bars - 2 * s.start_bar), s.energy)
                for s in song.sections if 2 * s.start_bar < bars]
    chords = [(b, c) for b, c in song.chords if b < end - 1e-9]
    return DecodedSong(notes=notes, chords=chords, bars=bars, sections=sections), plan.asked


def chord_report(song: DecodedSong, meter: tuple[int, int], key: str) -> list[dict[str, Any]]:
    """The chord changes as [{"bar": 1, "beat": 1.0, "chord": "Am7"}] (bars and beats from 1, quarter beats)."""
    beats = meter[0] * 4 / meter[1]
    flats = prefers_flats(key)
    out = []
    for beat, chord in song.chords:
        bar, within = divmod(beat, beats)
        out.append({"bar": int(bar) + 1, "beat": round(within + 1, 3), "chord": chord.symbol(flats=flats)})
    return out
