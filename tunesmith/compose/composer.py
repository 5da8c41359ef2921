"""The composer facade: compose, continue and harmonize with a trained voice-grid language model.

    composer = Composer.load("chorale")
    score = composer.generate(key="D minor", bars=16, seed=1)
    score = composer.generate(melody=read_score("tune.mid").parts[0])        # harmonize
    score = composer.generate(prime=read_score("start.mid"), bars=8)        # continue

Constraints are enforced while sampling, not hoped for: the header fixes key, meter and voices; bar lines
and the number of bars are forced; each voice may only take pitches in its range; notes outside the key's
scale are penalized; the piece starts from the tonic in the bass and ends on a held tonic chord.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint
from tunesmith.compose.sampling import check_sampling, sample_token
from tunesmith.errors import ParameterError
from tunesmith.models.lm import LSTMLanguageModel, NumpyLSTMStepper, build_lm
from tunesmith.symbolic.grid import GridCursor
from tunesmith.symbolic.instruments import gm_program
from tunesmith.symbolic.keys import aarden_key, estimate_key, key_fit, key_name, parse_key, scale_pitch_classes
from tunesmith.symbolic.score import Part, Score
from tunesmith.symbolic.tokens import VOCAB, bar_steps, decode, encode, melody_step_ids
from tunesmith.symbolic.transform import is_monophonic, make_monophonic, quantize, transpose

STEPS_PER_BEAT = 4
MAX_BARS = 64
KEY_TRIES = 6  # drafts at most, when the key analysis of a draft disagrees with the requested key
OUT_OF_KEY_PENALTY = 2.5  # logit penalty of a pitch outside the key's (harmonic/melodic) scale
# logit bonus of the tonic triad's pitch classes: without it, a D minor chorale often drifts to the
# Dorian/relative-major colours of its corpus and reads as C or F major (6 and 4 of 12 first drafts;
# with it, 12 of 12 read as D minor on the first draft)
TONIC_TRIAD_BONUS = 0.5

# Voice ranges (MIDI) by number of voices: SATB for chorales, a singable/playable line for melodies.
VOICE_RANGES: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((55, 91),),
    4: ((60, 81), (53, 74), (48, 69), (36, 64)),  # the Bach chorales' SATB ranges (1st-100th percentile)
}
VOICE_NAMES: dict[int, tuple[str, ...]] = {1: ("Melody",), 4: ("Soprano", "Alto", "Tenor", "Bass")}


@dataclass
class Composition:
    """A generated score and how it was made (for provenance and the CLI's report)."""

    score: Score
    params: dict[str, Any]
    tokens: list[int]
    seconds: float
    model: str
    interpretation: list[str] = field(default_factory=list)


def _at_most_masks() -> np.ndarray:
    """AT_MOST[p]: HOLD, REST and every pitch token up to MIDI pitch p (for voice-crossing checks)."""
    masks = np.zeros((128, VOCAB.size), dtype=bool)
    for top in range(128):
        masks[top, [VOCAB.pitch_id(p) for p in range(top + 1)]] = True
        masks[top, [VOCAB.hold_id, VOCAB.rest_id]] = True
    return masks


AT_MOST = _at_most_masks()
PITCHES = np.arange(128)
PITCH_IDS = np.array(VOCAB.pitch_ids)


def nearest_shift(from_tonic: int, to_tonic: int) -> int:
    """The transposition (-6..+5 semitones) that moves one tonic pitch class to another."""
    return ((to_tonic - from_tonic + 6) % 12) - 6


def _move_to_key(score: Score, found: tuple[int, str], key: str | None, what: str,
                 notes: list[str]) -> tuple[Score, int, str]:
    """Transpose ``score`` (in key ``found``) to the requested ``key``, if one was asked; note the move."""
    if key is None:
        return score, *found
    tonic, mode = parse_key(key)
    shift = nearest_shift(found[0], tonic)
    if shift:
        score = transpose(score, shift)
        notes.append(f"{what} moved by {shift:+d} semitones from {key_name(*found)} to {key_name(tonic, mode)}")
    return score, tonic, mode


def key_pitch_classes(tonic: int, mode: str) -> set[int]:
    """Scale plus, in minor, the raised sixth and seventh (melodic/harmonic minor)."""
    pcs = set(scale_pitch_classes(tonic, mode))
    if mode == "minor":
        pcs |= {(tonic + 9) % 12, (tonic + 11) % 12}
    return pcs


class Composer:
    """A loaded composer model and its sampler."""

    def __init__(self, model: torch.nn.Module, card: dict[str, Any], *, name: str) -> None:
        self.model = model.eval()
        self.card = card
        self.name = name
        self.voices: int = int(card.get("voices") or 1)
        if self.voices not in VOICE_RANGES:
            raise ParameterError(f"no voice ranges for a {self.voices}-voice model", field="model")
        self.ranges = VOICE_RANGES[self.voices]
        self.key_tries = KEY_TRIES
        # logit penalty of a pitch making parallel fifths/octaves (None: forbidden); fitted per model
        self.parallel_penalty: float | None = (card.get("sampling") or {}).get("parallel_penalty")
        # LSTMs sample through NumPy (several times faster per token than torch at this size)
        self._stepper = NumpyLSTMStepper(self.model) if isinstance(self.model, LSTMLanguageModel) else None

    @classmethod
    def load(cls, name_or_path: str | Path) -> Composer:
        """Load a shipped model by name ("chorale", "folk") or a training run directory."""
        directory, name = resolve_checkpoint(name_or_path)
        card = load_card(directory, name)
        model = build_lm(card["arch"], **card["kwargs"])
        load_weights(directory, name, model)
        return cls(model, card, name=str(name_or_path))

    # ---- public API -------------------------------------------------------------------------------

    def generate(self, *, key: str | None = None, bars: int | None = None, time_signature: tuple[int, int] = (4, 4),
                 tempo: float | None = None, temperature: float = 1.0, top_p: float = 0.95, seed: int | None = None,
                 melody: Part | None = None, prime: Score | None = None,
                 instrument: str | None = None) -> Composition:
        """Compose from scratch, harmonize ``melody`` (chorale models) or continue ``prime``."""
        started = time.perf_counter()
        check_sampling(temperature, top_p)
        if melody is not None and prime is not None:
            raise ParameterError("give either a melody to harmonize or a piece to continue, not both", field="input")
        if melody is not None and self.voices == 1:
            raise ParameterError(f"model {self.name!r} writes one voice and cannot harmonize; use chorale",
                                 field="harmonize")
        notes: list[str] = []
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        if melody is not None:
            melody, tonic, mode, time_signature = self._prepare_melody(melody, key, time_signature, notes)
            forced = melody_step_ids(melody, time_signature=time_signature, steps_per_beat=STEPS_PER_BEAT)
            per_bar = bar_steps(time_signature, STEPS_PER_BEAT)
            bars = len(forced) // per_bar
            self._check_bars(bars)
            prefix = self._header(tonic, mode, time_signature)
        elif prime is not None and self.voices > 1 and len([p for p in prime.parts if p.notes and not p.is_drum]) == 1:
            # a melody to continue with a many-voice model: harmonize its bars, then go on freely
            line = next(p for p in prime.parts if p.notes and not p.is_drum)
            melody, tonic, mode, time_signature = self._prepare_melody(line, key or prime.key, prime.time_signature,
                                                                       notes)
            forced = melody_step_ids(melody, time_signature=time_signature, steps_per_beat=STEPS_PER_BEAT)
            given = len(forced) // bar_steps(time_signature, STEPS_PER_BEAT)
            bars = given + (8 if bars is None else bars)
            self._check_bars(bars)
            prefix = self._header(tonic, mode, time_signature)
            notes.append(f"the melody's {given} bar(s) are harmonized, then the piece goes on")
        elif prime is not None:
            prime, tonic, mode, time_signature = self._prepare_prime(prime, key, notes)
            prefix = encode(prime, voices=self.voices, steps_per_beat=STEPS_PER_BEAT)[:-1]  # drop EOS
            bars = 8 if bars is None else bars
            self._check_bars(bars)
            forced = None
        else:
            tonic, mode = parse_key(key or ("C major" if self.voices == 1 else "D minor"))
            bars = 8 if bars is None else bars
            self._check_bars(bars)
            prefix = self._header(tonic, mode, time_signature)
            forced = None
        self._check_meter(time_signature)
        tempo = float(tempo) if tempo is not None else float(prime.tempo if prime is not None else
                                                              (76.0 if self.voices == 4 else 100.0))
        if not 20 <= tempo <= 300:
            raise ParameterError(f"tempo must be between 20 and 300 BPM, got {tempo}", field="tempo")
        program = gm_program(instrument) if instrument else gm_program("church_organ" if self.voices == 4 else "flute")
        # composing from scratch, the requested key is verified by music21's analysis (aarden_key computes the
        # same answer directly); a draft in another key is resampled (bounded), and the draft that fits the key
        # best is kept if none agrees
        tries = self.key_tries if melody is None and prime is None else 1
        drafts = []
        with threadpool_limits(limits=1, user_api="blas"):  # small products: threads only cost
            for attempt in range(tries):
                draft_rng = rng if attempt == 0 else np.random.default_rng([seed, attempt])
                ids = self._sample(prefix, bars=bars, time_signature=time_signature, tonic=tonic, mode=mode,
                                   soprano=forced, temperature=temperature, top_p=top_p, rng=draft_rng,
                                   cadence_only_lower=melody is not None)
                score = decode(ids, steps_per_beat=STEPS_PER_BEAT, tempo=tempo, programs=program,
                               names=VOICE_NAMES[self.voices])
                if tries == 1 or aarden_key((n.pitch, n.duration) for n in score.all_notes()) == (tonic, mode):
                    break
                drafts.append((key_fit([(n.pitch, n.duration) for n in score.all_notes()], tonic, mode), ids, score))
            else:
                _, ids, score = max(drafts, key=lambda d: d[0])
                notes.append(f"no draft of {tries} read as {key_name(tonic, mode)} to music21; kept the closest")
        score.title = f"Tunesmith {self.name} in {key_name(tonic, mode)}"
        params = {"key": key_name(tonic, mode), "bars": score.n_bars, "time_signature": list(time_signature),
                  "tempo": tempo, "temperature": temperature, "top_p": top_p, "seed": seed,
                  "instrument": instrument, "drafts": attempt + 1, "mode": "harmonize" if melody is not None else
                  "continue" if prime is not None else "compose"}
        return Composition(score=score, params=params, tokens=ids, seconds=time.perf_counter() - started,
                           model=self.name, interpretation=notes)

    # ---- preparation ------------------------------------------------------------------------------

    def _header(self, tonic: int, mode: str, time_signature: tuple[int, int]) -> list[int]:
        return [VOCAB.bos_id, VOCAB.key_id(tonic, mode), VOCAB.meter_id(*time_signature), VOCAB.voices_id(self.voices)]

    @staticmethod
    def _check_bars(bars: int) -> None:
        if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
            raise ParameterError(f"bars must be a whole number from 1 to {MAX_BARS}, got {bars!r}", field="bars")

    @staticmethod
    def _check_meter(time_signature: tuple[int, int]) -> None:
        n, d = time_signature
        if VOCAB.meter_id(n, d) == VOCAB.id("METER_other"):
            raise ParameterError(f"meter {n}/{d} is not supported; use 2/4, 3/4, 4/4, 3/2, 6/8, 9/8, 12/8, 2/2, "
                                 "3/8 or 6/4", field="meter")

    def _prepare_melody(self, melody: Part, key: str | None, time_signature: tuple[int, int],
                        notes: list[str]) -> tuple[Part, int, str, tuple[int, int]]:
        """Quantize the melody, move it to the requested key and into the soprano's range."""
        if not melody.notes:
            raise ParameterError("the melody to harmonize has no notes", field="input")
        score = quantize(Score(parts=[melody], time_signature=time_signature), steps_per_beat=STEPS_PER_BEAT)
        found = estimate_key([(n.pitch, n.duration) for n in score.parts[0].notes])
        score, tonic, mode = _move_to_key(score, found, key, "melody", notes)
        if key is None:
            notes.append(f"melody key estimated as {key_name(tonic, mode)}")
        low, high = self.ranges[0]
        pitches = [n.pitch for n in score.parts[0].notes]
        if max(pitches) - min(pitches) > high - low:
            raise ParameterError(f"the melody spans {max(pitches) - min(pitches)} semitones; a soprano sings at most "
                                 f"{high - low} (MIDI {low}-{high})", field="input")
        octave = 0
        while min(pitches) + octave < low:
            octave += 12
        while max(pitches) + octave > high:
            octave -= 12
        if min(pitches) + octave < low:
            raise ParameterError(f"the melody (MIDI {min(pitches)}-{max(pitches)}) fits no octave of the soprano "
                                 f"range {low}-{high}", field="input")
        if octave:
            score = transpose(score, octave)
            notes.append(f"melody moved {octave // 12:+d} octave(s) into the soprano range")
        return score.parts[0], tonic, mode, time_signature

    def _prepare_prime(self, prime: Score, key: str | None, notes: list[str]) -> tuple[Score, int, str, tuple]:
        """Quantize the piece to continue; match its voices to the model; move it to ``key`` if asked."""
        prime = quantize(prime, steps_per_beat=STEPS_PER_BEAT)
        parts = [p for p in prime.parts if not p.is_drum and p.notes]
        if self.voices == 1 and len(parts) > 1:  # a melody model continues the piece's top line
            top = max(parts, key=lambda p: sum(n.pitch for n in p.notes) / len(p.notes))
            parts = [make_monophonic(top)]
            notes.append(f"continuing the top line ({top.name or 'part'}) of the {len(prime.parts)}-part input")
        elif self.voices == 1 and parts and not is_monophonic(parts[0]):
            parts = [make_monophonic(parts[0])]
        if len(parts) != self.voices:
            raise ParameterError(f"model {self.name!r} continues {self.voices}-voice music; the input has "
                                 f"{len(parts)} voice(s)", field="input")
        prime = replace(prime, parts=parts)
        found = parse_key(prime.key) if prime.key else estimate_key([(n.pitch, n.duration) for n in prime.all_notes()])
        prime, tonic, mode = _move_to_key(prime, found, key, "input", notes)
        prime.key = key_name(tonic, mode)
        self._check_meter(prime.time_signature)
        return prime, tonic, mode, prime.time_signature

    # ---- sampling ---------------------------------------------------------------------------------

    def _voice_tables(self, tonic: int, mode: str) -> tuple[list[np.ndarray], np.ndarray]:
        """Allowed-token masks per voice (range + HOLD + REST) and the key's pitch bias (out-of-key penalty,
        tonic-triad bonus)."""
        in_key = key_pitch_classes(tonic, mode)
        triad = {tonic, (tonic + (3 if mode == "minor" else 4)) % 12, (tonic + 7) % 12}
        bias = np.zeros(VOCAB.size)
        for pitch in range(128):
            if pitch % 12 not in in_key:
                bias[VOCAB.pitch_id(pitch)] = -OUT_OF_KEY_PENALTY
            elif pitch % 12 in triad:
                bias[VOCAB.pitch_id(pitch)] = TONIC_TRIAD_BONUS
        masks = []
        for low, high in self.ranges:
            mask = np.zeros(VOCAB.size, dtype=bool)
            for pitch in range(low, high + 1):
                mask[VOCAB.pitch_id(pitch)] = True
            mask[VOCAB.hold_id] = mask[VOCAB.rest_id] = True
            masks.append(mask)
        return masks, bias

    def _sample(self, prefix: list[int], *, bars: int, time_signature: tuple[int, int], tonic: int, mode: str,
                soprano: list[int] | None, temperature: float, top_p: float, rng: np.random.Generator,
                cadence_only_lower: bool) -> list[int]:
        """Feed ``prefix``, then write ``bars`` bars step by step under the constraints; returns all ids."""
        per_bar = bar_steps(time_signature, STEPS_PER_BEAT)
        masks, bias = self._voice_tables(tonic, mode)
        triad = self._pitch_classes_mask({tonic, (tonic + (3 if mode == "minor" else 4)) % 12, (tonic + 7) % 12})
        tonic_only = self._pitch_classes_mask({tonic})
        hold_only = self._only(VOCAB.hold_id)
        ids = list(prefix)
        cursor = GridCursor(self.voices)
        slots, positions = zip(*(cursor.where(t) for t in ids), strict=True)
        logits, state = self.model.step(torch.tensor([ids]), torch.tensor([slots]), torch.tensor([positions]))
        logits = logits[0].numpy()
        if self._stepper is not None:
            state = self._stepper.state_from_torch(state)
        last = self._last_tokens(prefix)
        sounding = [VOCAB.pitch_of(t) for t in last]  # pitch each voice holds now (None: resting)
        latest = list(sounding)  # the last pitch each voice sang, through rests (for parallels)
        fresh = not any(t == VOCAB.bar_id for t in prefix)
        lowest = self.voices - 1
        # a melody that starts with a pickup: the other voices wait for its first note
        pickup = next((i for i, t in enumerate(soprano) if VOCAB.is_pitch(t)), 0) if soprano else 0
        for bar in range(bars):
            final_bar = bar == bars - 1
            logits, state = self._feed(VOCAB.bar_id, cursor, state, ids)
            for step in range(per_bar):
                before = list(latest)  # each voice's last pitch before this step
                for voice in range(self.voices):
                    if soprano is not None and voice == 0 and bar * per_bar + step < len(soprano):
                        token = soprano[bar * per_bar + step]
                    elif bar * per_bar + step < pickup:
                        token = VOCAB.rest_id
                    else:
                        if final_bar and step > 0:
                            allowed = hold_only  # the final chord is held to the end of the bar
                        elif final_bar:  # the final chord: a tonic triad over the tonic in the bass
                            allowed = masks[voice] & (tonic_only if voice == lowest else triad)
                        elif fresh and bar * per_bar + step == pickup and voice == lowest:
                            allowed = masks[voice] & (tonic_only if self.voices > 1 else triad)
                        else:
                            allowed = masks[voice].copy()
                            if last[voice] == VOCAB.rest_id:
                                allowed[VOCAB.hold_id] = False
                        allowed = self._voice_leading(allowed, voice, sounding)
                        allowed, step_bias = self._against_parallels(allowed, bias, voice, before, latest)
                        token = sample_token(logits, allowed=allowed, bias=step_bias, temperature=temperature,
                                             top_p=top_p, rng=rng)
                    if token != VOCAB.hold_id:
                        last[voice] = token
                        sounding[voice] = VOCAB.pitch_of(token)
                        latest[voice] = sounding[voice] if sounding[voice] is not None else latest[voice]
                    logits, state = self._feed(token, cursor, state, ids)
        ids.append(VOCAB.eos_id)
        return ids

    def _voice_leading(self, allowed: np.ndarray, voice: int, sounding: list[int | None]) -> np.ndarray:
        """Narrow ``allowed`` for ``voice`` by the rules of part writing that concern the voices above it.

        - the four-voice texture never falls silent inside a piece (the bass sounds if all above rest);
        - no voice crossing: a voice stays at or below the voice above it.
        """
        allowed = allowed.copy()
        if voice == self.voices - 1 and self.voices > 1 and all(p is None for p in sounding[:voice]):
            allowed[VOCAB.rest_id] = False
            if sounding[voice] is None:
                allowed[VOCAB.hold_id] = False
        above = sounding[voice - 1] if voice else None
        if above is not None:
            allowed &= AT_MOST[above]
            if sounding[voice] is not None and sounding[voice] > above:
                allowed[VOCAB.hold_id] = False
        return allowed

    def _against_parallels(self, allowed: np.ndarray, bias: np.ndarray, voice: int, before: list[int | None],
                           latest: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
        """The allowed ids and the logit bias of this step, given the parallel fifths and octaves it could make.

        A pitch that moves in the same direction as a voice above and keeps a perfect fifth or octave (unison)
        with it, also across rests (``before``/``latest``: each voice's last pitch before and after this step),
        makes a parallel. With ``parallel_penalty`` None such pitches are forbidden (unless nothing else is
        left); otherwise their logits lose ``parallel_penalty``, a weight fitted so that the sampled pieces
        have the training corpus's rate of parallels (``tunesmith evaluate lm --fit-parallels``).
        """
        mine = before[voice]
        if mine is None:
            return allowed, bias
        parallels = np.zeros(VOCAB.size, dtype=bool)
        for upper in range(voice):
            old, new = before[upper], latest[upper]
            if old is None or new is None or old == new:
                continue
            interval = (old - mine) % 12
            if interval not in (0, 7):
                continue
            moves = ((new - PITCHES) % 12 == interval) & (mine != PITCHES) & ((mine < PITCHES) == (new > old))
            parallels[PITCH_IDS[moves]] = True
        parallels &= allowed
        if not parallels.any():
            return allowed, bias
        if self.parallel_penalty is None:
            strict = allowed & ~parallels
            return (strict if strict.any() else allowed), bias
        return allowed, bias - self.parallel_penalty * parallels

    def _feed(self, token: int, cursor: GridCursor, state: Any, ids: list[int]) -> tuple[np.ndarray, Any]:
        slot, position = cursor.where(token)
        ids.append(token)
        if self._stepper is not None:
            return self._stepper.step(token, slot, position, state)
        logits, state = self.model.step_one(token, slot, position, state)
        return logits.numpy(), state

    @staticmethod
    def _only(token: int) -> np.ndarray:
        mask = np.zeros(VOCAB.size, dtype=bool)
        mask[token] = True
        return mask

    @staticmethod
    def _pitch_classes_mask(pcs: set[int]) -> np.ndarray:
        mask = np.zeros(VOCAB.size, dtype=bool)
        for pitch in range(128):
            if pitch % 12 in pcs:
                mask[VOCAB.pitch_id(pitch)] = True
        return mask

    def _last_tokens(self, prefix: list[int]) -> list[int]:
        """The last non-HOLD step token of each voice in an encoded prefix."""
        last = [VOCAB.rest_id] * self.voices
        cursor = GridCursor(self.voices)
        for token in prefix:
            slot, _ = cursor.where(token)
            if slot < self.voices and token != VOCAB.hold_id:
                last[slot] = token
        return last
