"""The neural drum kit facade: single hits by drum sound, kit and velocity (kits morph into each other through
their learned embeddings) and the drum track of a score performed with humanized velocity and timing.

    kit = DrumKit.load("drums")
    y = kit.hit("snare", kit="kit_gmrockkit", velocity=100, seed=1)                 # (n,) float32 at 16 kHz
    y = kit.hit("kick", kit="kit_gmrockkit", morph_to="kit_hardelectro1", morph=0.5)
    performance = kit.perform(read_score("groove.mid"), kit="kit_gmrockkit", seed=3)  # the drum parts only

The generator is a drums GAN (`tunesmith train gan --subset drums`): conditioned on a kit, a General MIDI drum
key and a velocity. A score's drum key that the kits never recorded plays the nearest learned key of its drum
class (a low floor tom 43 plays 41, a crash 57 plays 49, an unknown hand drum the nearest learned percussion key).
Humanizing draws, per hit and from the seed, a velocity offset (normal, ``VELOCITY_SPREAD * humanize``) and a
time offset (normal, ``TIMING_SPREAD * humanize`` seconds); humanize 0 plays the score exactly. A kit that
learned several recordings of a key (a sample collection's kicks) plays them in turn, as a sampler's round robin
does, from a place the seed picks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesmith.checkpoints import WEIGHTS_DIR
from tunesmith.compose.notesynth import MAX_PERFORM_NOTES, MAX_PERFORM_SECONDS, PEAK_LIMIT, NoteSynth, Performance
from tunesmith.errors import ParameterError
from tunesmith.symbolic.score import Score

# drum sounds a hit may ask for -> the General MIDI drum key the generator is conditioned on
DRUM_SOUNDS: dict[str, int] = {
    "kick": 36, "snare": 38, "rimshot": 40, "side_stick": 37, "clap": 39, "hat_closed": 42, "hat_pedal": 44,
    "hat_open": 46, "tom_low": 41, "tom": 45, "tom_mid": 47, "tom_high": 50, "crash": 49, "cymbal": 49,
    "ride": 51, "ride_bell": 53, "splash": 55, "tambourine": 54, "cowbell": 56, "bongo": 60, "conga": 63,
    "shaker": 70, "whistle": 71, "claves": 75, "woodblock": 76, "triangle": 81, "percussion": 39,
}
# GM keys the drum kits did not record -> the key of the same sound they did
GM_SUBSTITUTES: dict[int, int] = {35: 36, 43: 41, 48: 50, 52: 49, 57: 49, 59: 51}
PERCUSSION_KEYS = (37, 39, 54, 56, 60, 63, 70, 71, 75, 76, 81)  # learned hand-percussion keys
VELOCITY_SPREAD = 12.0  # velocity units (standard deviation at humanize 1)
TIMING_SPREAD = 0.012  # seconds (standard deviation at humanize 1)
HUMANIZE_DEFAULT = 0.5


@dataclass
class DrumPerformance:
    """A performed drum track: mono audio at ``sr``, the hits as played (start s, key, velocity) and notes."""

    audio: np.ndarray
    sr: int
    hits: list[tuple[float, int, int]]
    written: list[tuple[float, int, int]]
    interpretation: list[str] = field(default_factory=list)


def drum_key(sound: str | int) -> int:
    """The GM key of a drum sound name (or a GM key given as a number)."""
    if isinstance(sound, int | np.integer) and not isinstance(sound, bool):
        return play_key(int(sound))
    name = str(sound).strip().lower().replace(" ", "_").replace("-", "_")
    if name not in DRUM_SOUNDS:
        raise ParameterError(f"unknown drum sound {sound!r}; choose one of: {', '.join(DRUM_SOUNDS)}", field="drum")
    return DRUM_SOUNDS[name]


def play_key(key: int) -> int:
    """The learned key a score's GM drum key plays (see the module docstring)."""
    if key in GM_SUBSTITUTES:
        return GM_SUBSTITUTES[key]
    if key in DRUM_SOUNDS.values():
        return key
    return min(PERCUSSION_KEYS, key=lambda k: (abs(k - key), k))


class DrumKit:
    """A loaded neural drum kit (the generator of a drums GAN) played through :class:`NoteSynth`."""

    def __init__(self, synth: NoteSynth) -> None:
        if not synth.instrument_names or not all(i.get("drum") for i in synth.card["instruments"]):
            raise ParameterError(f"{synth.name} is not a drum-kit model (train gan --subset drums)", field="model")
        self.synth = synth
        self.card = synth.card
        self.sr = synth.sr
        self.kits: list[str] = list(synth.instrument_names)

    @classmethod
    def load(cls, name_or_path: str | Path = "drums") -> DrumKit:
        """A shipped model name ("drums"), a training run directory or a card path."""
        return cls(NoteSynth.load(name_or_path))

    def kit(self, name: str | None) -> str:
        """The kit ``name`` (None: the first), a ParameterError listing the kits otherwise."""
        if name is None:
            return self.kits[0]
        return self.synth.instrument(name).name

    def hit(self, sound: str | int = "snare", *, kit: str | None = None, velocity: int = 100, seed: int = 0,
            morph_to: str | None = None, morph: float = 0.0) -> np.ndarray:
        """One hit (n,) float32 at ``self.sr``; ``morph`` 0..1 moves the kit embedding towards ``morph_to``."""
        target = self.kit(morph_to) if morph_to is not None else None
        return self.synth.note(self.kit(kit), drum_key(sound), velocity=velocity, seed=seed, morph_to=target,
                               morph=morph)

    def perform(self, score: Score, *, kit: str | None = None, seed: int = 0, humanize: float = HUMANIZE_DEFAULT,
                sr: int | None = None, max_notes: int = MAX_PERFORM_NOTES) -> DrumPerformance:
        """The drum parts of ``score`` (GM channel 10) played by the kit, humanized from ``seed``."""
        if not isinstance(score, Score):
            raise ParameterError(f"expected a Score, got {type(score).__name__}", field="score")
        if not 0.0 <= float(humanize) <= 1.0:
            raise ParameterError(f"humanize must be 0..1, got {humanize!r}", field="humanize")
        kit_name = self.kit(kit)
        spb = 60.0 / score.tempo
        written = sorted((n.start * spb, int(n.pitch), int(n.velocity)) for part in score.parts if part.is_drum
                         for n in part.notes)
        if not written:
            raise ParameterError("the score has no drum part (General MIDI channel 10) to play", field="input")
        if len(written) > max_notes:
            raise ParameterError(f"the drum part has {len(written)} hits; the limit is {max_notes}", field="input")
        if score.duration_seconds > MAX_PERFORM_SECONDS:
            raise ParameterError(f"the score lasts {score.duration_seconds:.0f} s; the limit is "
                                 f"{MAX_PERFORM_SECONDS:.0f} s", field="input")
        rng = np.random.default_rng(seed)
        played = []
        for start, key, velocity in written:
            shift = rng.normal(0.0, TIMING_SPREAD * humanize) if humanize else 0.0
            loud = rng.normal(0.0, VELOCITY_SPREAD * humanize) if humanize else 0.0
            played.append((max(0.0, start + float(shift)), play_key(key), int(np.clip(round(velocity + loud), 1, 127))))
        sounds: dict[tuple[int, int, int], np.ndarray] = {}
        turns: dict[int, int] = {}  # round robin: a key's recordings in turn (written order), from where the seed says
        placed = []
        for index, (start, key, velocity) in enumerate(played):
            count = self.synth.variant_count(kit_name, key, velocity)
            turn = turns.setdefault(key, int(rng.integers(0, 1 << 16)))
            turns[key] += 1
            variant = turn % count
            if (key, velocity, variant) not in sounds:
                sounds[(key, velocity, variant)] = self.synth.note(kit_name, key, velocity=velocity,
                                                                   seed=seed + 7919 * index, variant=variant)
            placed.append((round(start * self.sr), sounds[(key, velocity, variant)]))
        out = np.zeros(max(at + len(y) for at, y in placed), dtype=np.float32)
        for at, y in placed:
            out[at:at + len(y)] += y
        peak = float(np.abs(out).max())
        if peak > PEAK_LIMIT:
            out *= PEAK_LIMIT / peak
        moved = sum(1 for _, key, _ in written if play_key(key) != key)
        notes = [f"{moved} drum note(s) on keys the kits never recorded played by the nearest key of their sound"] \
            if moved else []
        pitched = sum(len(p.notes) for p in score.parts if not p.is_drum)
        if pitched:
            notes.append(f"{pitched} pitched note(s) of the score are not drums and are not played by the drum kit")
        out_sr = self.sr if sr is None else int(sr)
        if out_sr != self.sr:
            from tunesmith.audio.dsp import resample

            out = resample(out, orig_sr=self.sr, target_sr=out_sr)
        return DrumPerformance(audio=out, sr=out_sr, hits=played, written=written, interpretation=notes)


def kit_installed(weights_dir: Path = WEIGHTS_DIR) -> bool:
    """Whether the shipped neural drum kit (weights/drums.json and its weights) is here."""
    return (weights_dir / "drums.json").is_file() and (weights_dir / "drums.safetensors").is_file()


@functools.lru_cache(maxsize=2)
def shipped_kit(weights_dir: Path = WEIGHTS_DIR) -> DrumKit | None:
    """The shipped neural drum kit (weights/drums.json), loaded once per process; None when it is not installed."""
    return DrumKit.load(weights_dir / "drums.json") if kit_installed(weights_dir) else None


def perform_with_kit(synth: NoteSynth, score: Score, instrument: str, *, seed: int = 0,
                     kit: DrumKit | None = None) -> Performance:
    """A score performed by the neural instrument ``synth`` (pitched parts, on ``instrument``) and the neural drum
    kit (its drum parts, humanized; default: the shipped kit), mixed at the synthesizer's rate."""
    import copy

    kit = kit or shipped_kit()
    if kit is None:
        raise ParameterError("the neural drum kit (model drums) is not installed here", field="drums")
    drums = kit.perform(score, seed=seed, sr=synth.sr)
    pitched = copy.deepcopy(score)
    pitched.parts = [p for p in pitched.parts if not p.is_drum]
    parts = [drums.audio]
    notes = [n for n in drums.interpretation if "pitched note" not in n]
    n_notes = len(drums.hits)
    if pitched.n_notes:
        played = synth.perform(pitched, instrument, seed=seed)
        parts.append(played.audio)
        notes += played.interpretation
        n_notes += played.notes
    out = np.zeros(max(len(y) for y in parts), dtype=np.float32)
    for y in parts:
        out[:len(y)] += y
    peak = float(np.abs(out).max())
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    notes.append(f"the drum track was played by the neural drum kit {kit.kits[0]} (humanized)")
    return Performance(audio=out, sr=synth.sr, notes=n_notes, interpretation=notes)


def neural_drum_performer(*, seed: int = 0, kit: DrumKit | None = None) -> Callable[[Score, int], np.ndarray | None]:
    """A work's part performer (`Work.perform_part`) that plays drum parts with the neural drum kit (default: the
    shipped one; humanized from ``seed``) as stereo (2, n) audio and leaves every pitched part to FluidSynth. The
    mix then sets the drums' level like any other stem's."""
    kit = kit or shipped_kit()
    if kit is None:
        raise ParameterError("neural_drums needs the neural drum kit (model drums), which is not installed",
                             field="neural_drums")

    def perform(part_score: Score, sr: int) -> np.ndarray | None:
        if not part_score.parts or not all(p.is_drum for p in part_score.parts) or not part_score.n_notes:
            return None
        mono = kit.perform(part_score, seed=seed, sr=sr).audio
        return np.stack([mono, mono]).astype(np.float32)

    return perform
