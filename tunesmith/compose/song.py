"""The song facade: whole multi-track songs in a style, with sections, from a trained `song` model.

    writer = SongWriter.load("song")                         # a shipped name, a run directory or a card
    song = writer.generate(style="bossa nova", key="A minor", tempo=128, seconds=90, seed=1)
    song.score        # Score: a part per track (drums, bass, chords, pad, lead), GM programs, drums on channel 10
    song.sections     # [{"name": "intro", "bars": [1, 4]}, {"name": "verse", "bars": [5, 12]}, ...]

How a song is made: the plan (`tunesmith.compose.song_plan`: style blend, meter, sections, repeats, energy),
then the sampler (`tunesmith.compose.song_sampler`: one step per event through the NumPy stepper with a
key/value cache, constraints enforced while sampling), then the steps decoded into a score.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.compose.sampling import check_sampling
from tunesmith.compose.song_plan import (
    MeterPlan,
    SongPlan,
    blend_value,
    chord_chart,
    default_tempo,
    instrument_program,
    loop_plan,
    meter_plan,
    resolve_style,
    song_plan,
)
from tunesmith.compose.song_sampler import Constraints, SongSampler
from tunesmith.errors import ParameterError
from tunesmith.models.song import SongStepper, SongTransformer
from tunesmith.symbolic.harmony import prefers_flats
from tunesmith.symbolic.instruments import DRUM_KITS, EXTRA_PROGRAMS, INSTRUMENTS
from tunesmith.symbolic.keys import key_name, parse_key
from tunesmith.symbolic.score import Note, Score
from tunesmith.symbolic.song_tokens import (
    ROLES,
    STEPS_PER_BEAT,
    TOKEN_FORMAT,
    DecodedSong,
    SectionSpan,
    bar_steps,
    chord_events_by_bar,
    decode_song,
    network_spec,
    song_score,
)
from tunesmith.symbolic.transform import make_monophonic

MIN_BARS, MAX_SECONDS = 8, 180.0
MAX_LOOP_BARS = 32
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

    @property
    def steps_per_second(self) -> float:
        return self.sampled / self.seconds if self.seconds > 0 else 0.0


def instrument_name(program: int, *, drum: bool) -> str:
    """A name for a GM program (a kit name for drums), or "program N"."""
    if drum:
        return next((k.name for k in DRUM_KITS if k.program == program), f"drum kit {program}")
    names = {i.program: i.name for i in INSTRUMENTS} | {p: n for n, p in EXTRA_PROGRAMS.items()}
    return names.get(program, f"program {program}")


class SongWriter:
    """A loaded song model (its card says its styles, meters, ranges) and its sampler."""

    def __init__(self, model: SongTransformer, card: dict[str, Any], *, name: str) -> None:
        if (card.get("tokens") or {}).get("format") != TOKEN_FORMAT:
            raise ParameterError(f"model {name!r} was trained on song tokens {card.get('tokens', {}).get('format')!r}"
                                 f"; this version reads {TOKEN_FORMAT}", field="model")
        self.model = model.eval()
        self.card = card
        self.name = name
        self.styles: list[dict[str, Any]] = list(card["styles"])
        self.meters: list[str] = list(card["meters"])
        window = int(((card.get("training") or {}).get("config") or {}).get("window") or 512)
        self.stepper = SongStepper(self.model, window=window)  # attention looks back as far as in training

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
                 top_p: float = 0.95) -> Song:
        """A song (or with ``loop`` a seamless loop of that many bars) in ``style``; ``bars`` or ``seconds`` give
        its length; ``chords`` (beat, symbol) changes or a ``chart`` ("Am | F | C | G", repeated) to follow
        instead of the model's own harmony."""
        started = time.perf_counter()
        check_sampling(temperature, top_p)
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
        constraints = Constraints(meter=plan_meter.model, tracks=tracks, role_ranges=self.card["role_ranges"],
                                  drum_keys=self.card["drum_keys"], tonic=tonic, mode=mode,
                                  harmony=(self.card.get("harmony") or {}).get(mode, ()),
                                  triplets=plan_meter.conversion == "triplets")
        cond = self._condition(weights, tonic, mode, plan_meter, tempo, tracks)
        with threadpool_limits(limits=1, user_api="blas"), torch.no_grad():
            self.stepper.start(cond)
            sampler = SongSampler(self.stepper, constraints, rng=np.random.default_rng(seed),
                                  temperature=temperature, top_p=top_p)
            written = sampler.write(plan, given)
        decoded = decode_song(written.steps, meter=plan_meter.model)
        if plan.keep is not None:
            decoded = crop_bars(decoded, *plan.keep, meter=plan_meter.model)
        decoded, score_meter = convert_meter(decoded, plan_meter, bars)
        programs = self._programs(weights, instruments)
        score = song_score(decoded, programs=programs, tempo=tempo, key=key_name(tonic, mode), meter=score_meter,
                           roles=[r for r in ROLES if r in tracks], title=f"Tunesmith song: {style}")
        score.parts = [make_monophonic(p) if p.name == "lead" else p for p in score.parts]  # one line: a tune
        elapsed = time.perf_counter() - started
        sections = [{"name": "loop" if loop else s.name, "bars": [s.start_bar + 1, s.start_bar + s.bars],
                     "energy": round(s.energy / 4, 2)} for s in decoded.sections]
        params = {"style": style, "styles": {k: round(v, 3) for k, v in weights.items()}, "key": key_name(tonic, mode),
                  "tempo": tempo, "bars": bars, "meter": meter, "energy": energy, "tracks": list(tracks),
                  "loop": loop, "seed": seed, "temperature": temperature, "top_p": top_p}
        return Song(score=score, params=params, sections=sections, tracks=self._track_report(score),
                    chords=chord_report(decoded, score_meter, key_name(tonic, mode)), seconds=elapsed,
                    steps=len(written.steps), sampled=written.sampled, copied=written.copied, tokens=written.steps)

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

    def _condition(self, weights: Mapping[str, float], tonic: int, mode: str, plan: MeterPlan, tempo: float,
                   tracks: Sequence[str]) -> dict[str, torch.Tensor]:
        index = {s["id"]: i for i, s in enumerate(self.styles)}
        style = torch.zeros(1, len(self.styles))
        for style_id, weight in weights.items():
            style[0, index[style_id]] = weight
        model_meter = "{}/{}".format(*plan.model)
        return {"style": style, "key": torch.tensor([tonic + (12 if mode == "minor" else 0)]),
                "meter": torch.tensor([self.meters.index(model_meter)]),
                "tempo": torch.tensor([tempo * plan.tempo_factor()], dtype=torch.float32),
                "tracks": torch.tensor([[1.0 if r in tracks else 0.0 for r in ROLES]])}

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
    def _track_report(score: Score) -> list[dict[str, Any]]:
        return [{"name": p.name, "role": p.name, "program": p.program,
                 "instrument": instrument_name(p.program, drum=p.is_drum), "notes": len(p.notes)}
                for p in score.parts]


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
