"""The neural instrument facade: play notes, morph timbres and perform scores with the `notes` GAN.

    synth = NoteSynth.load("notes")
    y = synth.note("violin", 64, velocity=100, duration=2.0, seed=1)            # (n,) float32 at 16 kHz
    y = synth.note("violin", 64, morph_to="flute", morph=0.5)                  # halfway between the two
    audio, report = synth.perform(read_score("chorale.mid"), "cello")        # every note by the GAN
    synth.export_sfz("cello-sfz", "cello")                                     # WAVs + cello.sfz

Serving. The frame network (the learned part) runs either in PyTorch eager or, exported to ONNX, in ONNX
Runtime; the fixed synthesizer DSP always runs in PyTorch. Both give the same audio within float tolerance.
The card's ``serving.backend`` (set from `tunesmith bench gan`, which times both) picks the faster one;
``backend=`` or the environment variable TUNESMITH_GAN_BACKEND overrides it. The ONNX model is the shipped
``NAME.onnx`` next to the weights when its hash matches the card, else exported from the weights at first use.

Durations. The generator makes the corpus's note (2.0 s: held 1.5 s, then released). A note of another
length is made in control space, before synthesis, so the sound stays phase-continuous: a shorter note
jumps from its held part to the release frames (scaled to the level it has reached); a longer note extends
the held part by playing the last 0.3 s of controls forwards and backwards (ping-pong: no seams), with the
note's fitted decay rate continued, then releases. Drum hits are one-shots: they always ring out fully.
"""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.checkpoints import WEIGHTS_DIR, load_card, load_weights, resolve_checkpoint
from tunesmith.errors import DependencyError, ParameterError
from tunesmith.models.gan import NoteGenerator, export_onnx, midi_to_hz, onnx_outputs, synthesize
from tunesmith.progress import progress
from tunesmith.symbolic.instruments import DRUM_KEYS, Instrument, check_morph, find_instrument, instrument_table
from tunesmith.symbolic.score import Score

MIN_DURATION = 0.05  # seconds
MAX_DURATION = 30.0
MAX_PERFORM_NOTES = int(os.environ.get("TUNESMITH_MAX_PERFORM_NOTES", "5000"))
MAX_PERFORM_SECONDS = 600.0
LOOP_FRAMES = 38  # the ping-pong sustain loop: the last ~0.3 s before the key is released
LOOP_GUARD = 6  # frames just before the release that may already anticipate it
PEAK_LIMIT = 0.99
SFZ_VELOCITIES = (50, 85, 120)
BATCH = 64
BACKENDS = ("torch", "onnxruntime")


@dataclass
class Performance:
    """A performed score: mono audio at ``sr`` and what was changed to make it playable."""

    audio: np.ndarray
    sr: int
    notes: int
    interpretation: list[str] = field(default_factory=list)


class NoteSynth:
    """A loaded neural instrument (the generator of a `notes` GAN checkpoint)."""

    def __init__(self, generator: NoteGenerator, card: dict[str, Any], name: str = "notes", *,
                 backend: str | None = None, onnx_path: Path | None = None) -> None:
        self.generator = generator.eval()
        self.card = card
        self._variant_counts = {i["name"]: i["variants"] for i in card.get("instruments", []) if i.get("variants")}
        self.name = name
        self.sr = int(card.get("sr", generator.sr))
        self.instrument_names: list[str] = [i["name"] for i in card["instruments"]]
        self.instruments = instrument_table(card["instruments"])
        self.off_frame = int(np.ceil(generator.note_off * generator.sr / generator.hop))
        self.onnx_path = onnx_path
        self.backend = self._choose_backend(backend)
        self._session: Any = None

    @classmethod
    def load(cls, name_or_path: str | Path | None = None, *, backend: str | None = None) -> NoteSynth:
        """A shipped model name ("notes"), a training run directory (its best checkpoint) or a card path;
        None is the shipped `notes` (even when the working directory holds a folder called notes).
        ``backend``: "torch" or "onnxruntime" for the frame network (default: the card's choice)."""
        if name_or_path is None:
            shipped = WEIGHTS_DIR / "notes.json"
            name_or_path = shipped if shipped.is_file() else "notes"
        directory, name = resolve_checkpoint(name_or_path)
        card = load_card(directory, name)
        if card.get("family") not in ("gan", "drums"):
            raise ParameterError(f"{name_or_path} is a {card.get('family')!r} model, not a notes GAN", field="model")
        generator = NoteGenerator(**card["kwargs"])
        load_weights(directory, name, generator)
        return cls(generator, card, name=str(card.get("id", name_or_path)), backend=backend,
                   onnx_path=directory / f"{name}.onnx")

    # ------------------------------------------------------------------ serving backends

    def _choose_backend(self, backend: str | None) -> str:
        """The asked backend, else TUNESMITH_GAN_BACKEND, else the card's; the card's choice falls back to
        torch when onnxruntime is not installed, an explicit one raises DependencyError."""
        explicit = backend or os.environ.get("TUNESMITH_GAN_BACKEND") or None
        chosen = explicit or (self.card.get("serving") or {}).get("backend", "torch")
        if chosen not in BACKENDS:
            raise ParameterError(f"unknown backend {chosen!r}; choose one of: {', '.join(BACKENDS)}", field="backend")
        if chosen == "onnxruntime":
            try:
                import onnxruntime  # noqa: F401
            except ImportError as exc:
                if explicit:
                    raise DependencyError("the onnxruntime backend needs the onnxruntime package "
                                          "(pip install onnxruntime)") from exc
                return "torch"
        return chosen

    def onnx_model(self) -> bytes:
        """The frame network as ONNX: the shipped file when the card's hash matches it, else a fresh export."""
        import hashlib

        expected = (self.card.get("onnx") or {}).get("sha256")
        if self.onnx_path is not None and expected and self.onnx_path.is_file():
            data = self.onnx_path.read_bytes()
            if hashlib.sha256(data).hexdigest() == expected:
                return data
        return export_onnx(self.generator)

    def _onnx_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(self.onnx_model(), options, providers=["CPUExecutionProvider"])
        return self._session

    def run_controls(self, emb: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                     z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Controls of whole corpus notes from embeddings (B, E), pitches, velocities (B,) and z (B, Z), by the
        serving backend."""
        g = self.generator
        if self.backend == "torch":
            with torch.inference_mode():
                return g.controls(emb, pitch, velocity, z)
        feed = {"emb": emb.detach().numpy().astype(np.float32), "pitch": pitch.numpy().astype(np.int64),
                "velocity": velocity.numpy().astype(np.int64), "z": z.numpy().astype(np.float32)}
        names = onnx_outputs(g)
        outputs = self._onnx_session().run(list(names), feed)
        c = {name: torch.from_numpy(value) for name, value in zip(names, outputs, strict=True)}
        c["f0"] = midi_to_hz(pitch.float()).unsqueeze(1)
        return c

    # ------------------------------------------------------------------ validation

    def instrument(self, name: str) -> Instrument:
        """The instrument ``name`` if this model plays it (ParameterError listing the valid ones)."""
        return find_instrument(self.instruments, name)

    @staticmethod
    def check_pitch(inst: Instrument, pitch: object) -> int:
        if isinstance(pitch, bool) or not isinstance(pitch, int | np.integer):
            raise ParameterError(f"pitch must be a MIDI note number, got {pitch!r}", field="pitch")
        pitch = int(pitch)
        if inst.is_drum:
            if pitch not in inst.pitches:
                keys = ", ".join(f"{k} {DRUM_KEYS.get(k, '')}".strip() for k in inst.pitches)
                raise ParameterError(f"drum key {pitch} is not in the kit; use one of: {keys}", field="pitch")
        elif not inst.low <= pitch <= inst.high:
            raise ParameterError(f"pitch {pitch} is outside the {inst.name} range {inst.low}..{inst.high}",
                                 field="pitch")
        return pitch

    @staticmethod
    def check_velocity(velocity: object) -> int:
        if isinstance(velocity, bool) or not isinstance(velocity, int | np.integer) or not 1 <= velocity <= 127:
            raise ParameterError(f"velocity must be an integer 1..127, got {velocity!r}", field="velocity")
        return int(velocity)

    @staticmethod
    def check_duration(duration: object) -> float:
        ok = isinstance(duration, int | float) and not isinstance(duration, bool) and np.isfinite(duration)
        if not ok or not MIN_DURATION <= float(duration) <= MAX_DURATION:
            raise ParameterError(f"duration must be {MIN_DURATION}..{MAX_DURATION} seconds, got {duration!r}",
                                 field="duration")
        return float(duration)

    def _check_morph(self, inst: Instrument, pitch: int, morph_to: str | None, morph: object) -> Instrument | None:
        ok = isinstance(morph, int | float) and not isinstance(morph, bool) and 0.0 <= float(morph) <= 1.0
        if not ok:
            raise ParameterError(f"morph must be a number in 0..1, got {morph!r}", field="morph")
        if morph_to is None:
            return None
        target = self.instrument(morph_to)
        check_morph(inst, target, pitch)
        return target

    # ------------------------------------------------------------------ notes

    def note(self, instrument: str, pitch: int, velocity: int = 100, duration: float | None = None,
             seed: int | None = None, morph_to: str | None = None, morph: float = 0.0,
             variant: int | None = None) -> np.ndarray:
        """One note (n,) float32 at ``self.sr``: ``duration`` seconds held (default: the corpus's 1.5 s), then
        its release; ``morph`` in 0..1 interpolates the instrument embedding towards ``morph_to``; ``variant``
        (0 .. ``variant_count`` - 1) picks which recording of a kit's key it plays (default: drawn from the seed)."""
        inst = self.instrument(instrument)
        pitch = self.check_pitch(inst, pitch)
        velocity = self.check_velocity(velocity)
        duration = self.generator.note_off if duration is None else self.check_duration(duration)
        target = self._check_morph(inst, pitch, morph_to, morph)
        if variant is not None:
            count = self.variant_count(inst.name, pitch, velocity)
            if isinstance(variant, bool) or not isinstance(variant, int | np.integer) or not 0 <= variant < count:
                raise ParameterError(f"variant must be 0..{count - 1} for key {pitch} of {inst.name}, got {variant!r}",
                                     field="variant")
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        controls = self._controls([(inst.name, pitch, velocity)], seed=seed,
                                  morph_to=target.name if target else None, morph=float(morph),
                                  variants=None if variant is None else [int(variant)])
        return self._render(controls, 0, duration, drum=inst.is_drum, seed=seed)

    def _controls(self, conditions: list[tuple[str, int, int]], *, seed: int, morph_to: str | None = None,
                  morph: float = 0.0, variants: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Controls of whole corpus notes for (instrument, pitch, velocity) rows; z and, where a kit has several
        recordings of a key, which of them it plays (its variant; ``variants`` per row, else drawn from ``seed``)."""
        g = self.generator
        inst = torch.tensor([self.instrument_names.index(n) for n, _, _ in conditions])
        pitch = torch.tensor([p for _, p, _ in conditions])
        vel = torch.tensor([v for _, _, v in conditions])
        z = torch.randn(len(conditions), g.z_dim, generator=torch.Generator().manual_seed(seed))
        target = None if morph_to is None else torch.full_like(inst, self.instrument_names.index(morph_to))
        variant = None
        if g.variants and variants is not None:
            variant = torch.tensor(variants)
        elif g.variants:
            counts = [self.variant_count(n, p, v) for n, p, v in conditions]
            variant = torch.from_numpy(np.random.default_rng(seed).integers(0, counts))
        with torch.inference_mode():
            emb = g.embed(inst, target, morph, variant)
        return self.run_controls(emb, pitch, vel, z)

    def variant_count(self, instrument: str, pitch: int, velocity: int) -> int:
        """How many recordings of this key the kit learned at the velocity layer nearest ``velocity`` (1 for a key
        recorded once per layer)."""
        layers = self._variant_counts.get(instrument, {}).get(str(pitch))
        if not layers:
            return 1
        nearest = min(layers, key=lambda layer: (abs(int(layer) - velocity), int(layer)))
        return int(layers[nearest])

    def _render(self, controls: dict[str, torch.Tensor], row: int, duration: float, *, drum: bool,
                seed: int) -> np.ndarray:
        """Synthesize row ``row`` of ``controls`` at ``duration`` seconds held (plus the release)."""
        one = {k: v[row:row + 1] for k, v in controls.items()}
        if not drum:
            held = max(1, round(duration * self.sr / self.generator.hop))
            one = fit_duration(one, self.off_frame, held)
        g = self.generator
        phases = torch.rand(1, g.n_partials, generator=torch.Generator().manual_seed(seed + 1)) * 2 * np.pi
        with torch.no_grad():
            y = synthesize(one, sr=g.sr, hop=g.hop, noise_fft=g.noise_fft, noise_seed=seed + 2, phase0=phases,
                           ratios=g.ratios)
        y = y[0].numpy().astype(np.float32)
        if drum:
            y = _trim_tail(y)
        return y

    # ------------------------------------------------------------------ performing a score

    def perform(self, score: Score, instrument: str, sr: int | None = None, *, seed: int = 0,
                drum_kit: str = "drums_standard", max_notes: int = MAX_PERFORM_NOTES) -> Performance:
        """Every note of ``score`` played by the GAN at its pitch, velocity and length, placed and mixed.

        Pitched parts play ``instrument`` (notes outside its range move by octaves into it); drum parts play
        ``drum_kit`` (keys outside the kit move to the nearest kit key). Returns mono audio at ``sr``."""
        if not isinstance(score, Score):
            raise ParameterError(f"expected a Score, got {type(score).__name__}", field="score")
        inst = self.instrument(instrument)
        if inst.is_drum:
            raise ParameterError(f"{inst.name} is a drum kit; perform needs a pitched instrument "
                                 "(drum parts play the drum kit)", field="instrument")
        kit = None  # looked up only for a score with drums: a model may play no kit (the piano)
        if any(part.is_drum and part.notes for part in score.parts):
            if not any(i.get("drum") for i in self.card["instruments"]):
                raise ParameterError(f"{self.name} plays no drum kit, and the score has drum parts: play them with "
                                     "the neural drum kit (drums=neural) or leave them out", field="drums")
            kit = self.instrument(drum_kit)
            if not kit.is_drum:
                raise ParameterError(f"{kit.name} is not a drum kit", field="drum_kit")
        n_notes = score.n_notes
        if n_notes == 0:
            raise ParameterError("the score has no notes to perform", field="input")
        if n_notes > max_notes:
            raise ParameterError(f"the score has {n_notes} notes; perform is limited to {max_notes} "
                                 "(TUNESMITH_MAX_PERFORM_NOTES)", field="input")
        if score.duration_seconds > MAX_PERFORM_SECONDS:
            raise ParameterError(f"the score lasts {score.duration_seconds:.0f} s; perform is limited to "
                                 f"{MAX_PERFORM_SECONDS:.0f} s", field="input")
        spb = 60.0 / score.tempo
        notes: list[tuple[str, int, int, float, float, bool]] = []
        moved, remapped = 0, 0
        for part in score.parts:
            if part.is_drum and kit is None:  # a drum part with no notes
                continue
            player = kit if part.is_drum else inst
            for n in part.notes:
                pitch = n.pitch
                if player.is_drum:
                    if pitch not in player.pitches:
                        pitch = min(player.pitches, key=lambda k: (abs(k - n.pitch), k))
                        remapped += 1
                else:
                    if not player.low <= pitch <= player.high:
                        moved += 1
                    while pitch < player.low:
                        pitch += 12
                    while pitch > player.high:
                        pitch -= 12
                    pitch = max(player.low, pitch)
                duration = min(MAX_DURATION, max(MIN_DURATION, n.duration * spb))
                notes.append((player.name, pitch, max(1, min(127, int(n.velocity))), n.start * spb, duration,
                              player.is_drum))
        conditions = sorted({(name, p, v) for name, p, v, _, _, _ in notes})
        controls: dict[tuple[str, int, int], tuple[dict[str, torch.Tensor], int]] = {}
        for lo in range(0, len(conditions), BATCH):
            chunk = conditions[lo:lo + BATCH]
            c = self._controls(chunk, seed=seed + lo)
            for row, cond in enumerate(chunk):
                controls[cond] = (c, row)
        rendered: dict[tuple[str, int, int, int], np.ndarray] = {}
        hop = self.generator.hop
        placed = []
        for name, pitch, vel, start, duration, drum in progress(notes, desc="performing", unit="note"):
            key = (name, pitch, vel, round(duration * self.sr / hop))
            if key not in rendered:
                c, row = controls[(name, pitch, vel)]
                rendered[key] = self._render(c, row, duration, drum=drum, seed=seed + 7919 * len(rendered))
            placed.append((round(start * self.sr), rendered[key]))
        total = max(s + len(y) for s, y in placed)
        out = np.zeros(total, dtype=np.float32)
        for s, y in placed:
            out[s:s + len(y)] += y
        peak = float(np.abs(out).max())
        if peak > PEAK_LIMIT:
            out *= PEAK_LIMIT / peak
        notes_text = []
        if moved:
            notes_text.append(f"{moved} note(s) outside the {inst.name} range {inst.low}..{inst.high} moved by octaves")
        if remapped:
            notes_text.append(f"{remapped} drum note(s) on keys outside the kit moved to the nearest kit key")
        out_sr = self.sr if sr is None else int(sr)
        if out_sr != self.sr:
            from tunesmith.audio.dsp import resample

            out = resample(out, orig_sr=self.sr, target_sr=out_sr)
        return Performance(audio=out, sr=out_sr, notes=len(notes), interpretation=notes_text)

    # ------------------------------------------------------------------ SFZ export

    def export_sfz(self, directory: str | Path, instrument: str, *, step: int = 3,
                   velocities: tuple[int, ...] = SFZ_VELOCITIES, duration: float = 3.0, seed: int = 0) -> Path:
        """Write WAV samples across the instrument's range (every ``step`` semitones, each velocity layer)
        and ``INSTRUMENT.sfz`` mapping them (key ranges, pitch_keycenter, velocity layers); returns the .sfz."""
        from tunesmith.audio.io import save

        inst = self.instrument(instrument)
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 12:
            raise ParameterError(f"step must be an integer 1..12 semitones, got {step!r}", field="step")
        velocities = tuple(sorted({self.check_velocity(v) for v in velocities}))
        if not velocities:
            raise ParameterError("give at least one velocity layer", field="velocities")
        duration = self.check_duration(duration)
        root = Path(directory)
        samples = root / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        if inst.is_drum:
            centres = list(inst.pitches)
            ranges = [(k, k) for k in centres]
        else:
            centres = list(range(inst.low, inst.high + 1, step))
            if centres[-1] != inst.high:
                centres.append(inst.high)
            bounds = [inst.low] + [(a + b) // 2 + 1 for a, b in itertools.pairwise(centres)]
            ranges = [(lo, hi - 1) for lo, hi in zip(bounds, [*bounds[1:], inst.high + 1], strict=True)]
        layers = _velocity_layers(velocities)
        lines = [f"// {inst.name}: a Tunesmith neural instrument (model {self.name}, seed {seed})",
                 f"// {len(centres)} keys x {len(velocities)} velocity layers, {self.sr} Hz mono WAV",
                 "<control>", "default_path=samples/", "<global>",
                 "loop_mode=one_shot" if inst.is_drum else "ampeg_release=0.3"]
        for velocity, (lovel, hivel) in progress(list(zip(velocities, layers, strict=True)), desc="sampling",
                                                 unit="layer"):
            lines.append(f"<group> lovel={lovel} hivel={hivel}")
            conds = [(inst.name, c, velocity) for c in centres]
            for lo in range(0, len(conds), BATCH):
                chunk = conds[lo:lo + BATCH]
                controls = self._controls(chunk, seed=seed + lo)
                for row, (_, centre, _) in enumerate(chunk):
                    y = self._render(controls, row, duration, drum=inst.is_drum, seed=seed + centre)
                    wav = f"{inst.name}_{centre:03d}_v{velocity:03d}.wav"
                    save(samples / wav, y, self.sr)
                    key_lo, key_hi = ranges[centres.index(centre)]
                    extra = " pitch_keytrack=0" if inst.is_drum else ""
                    lines.append(f"<region> sample={wav} lokey={key_lo} hikey={key_hi} "
                                 f"pitch_keycenter={centre}{extra}")
        sfz = root / f"{inst.name}.sfz"
        sfz.write_text("\n".join(lines) + "\n")
        return sfz


# --------------------------------------------------------------------------- helpers


def _velocity_layers(velocities: tuple[int, ...]) -> list[tuple[int, int]]:
    """Split 1..127 between sorted velocity layers at the midpoints."""
    edges = [1] + [(a + b) // 2 + 1 for a, b in itertools.pairwise(velocities)] + [128]
    return [(lo, hi - 1) for lo, hi in itertools.pairwise(edges)]


def _trim_tail(y: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    """Cut trailing near-silence (keeps at least 50 ms)."""
    loud = np.flatnonzero(np.abs(y) > threshold)
    end = int(loud[-1]) + 1 if loud.size else 0
    return y[:max(end, 800)]


def _loud(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.clamp(min=1e-7))


def fit_duration(c: dict[str, torch.Tensor], off: int, held: int) -> dict[str, torch.Tensor]:
    """Controls (batch 1) of a note held ``held`` frames, from those of a corpus note released at frame ``off``.

    Shorter: the held frames, then the release frames scaled to the level reached. Longer: the held frames,
    a ping-pong loop over the last LOOP_FRAMES held frames with the fitted decay continued, then the release.
    """
    amp, harm, noise = c["amp"], c["harm"], c["noise"]  # (1, T), (1, T, K), (1, T, F)
    noise_level = noise.mean(-1)  # (1, T)
    if held <= off:
        body_amp, body_harm, body_noise = amp[:, :held], harm[:, :held], noise[:, :held]
    else:
        lo, hi = max(0, off - LOOP_GUARD - LOOP_FRAMES), off - LOOP_GUARD
        span = np.arange(lo, hi)
        extra = held - hi
        cycle = np.concatenate([span[::-1][1:], span[1:]])  # hi-2 .. lo, lo+1 .. hi-1: no repeated frame
        order = cycle[np.arange(extra) % len(cycle)]
        t = torch.arange(lo, hi, dtype=torch.float32)
        rate_a = _slope(t, _loud(amp[0, lo:hi]))
        rate_n = _slope(t, _loud(noise_level[0, lo:hi]))
        steps = torch.arange(1, extra + 1, dtype=torch.float32)
        idx = torch.from_numpy(order)
        # keep each looped frame's wobble around the trend, and continue the trend's decay from frame hi - 1
        trend_a = _loud(amp[0, hi - 1]) + rate_a * (idx.float() - (hi - 1))
        trend_n = _loud(noise_level[0, hi - 1]) + rate_n * (idx.float() - (hi - 1))
        ext_amp = torch.exp(_loud(amp[0, idx]) - trend_a + _loud(amp[0, hi - 1]) + rate_a * steps)
        gain_n = torch.exp(_loud(noise_level[0, idx]) - trend_n + _loud(noise_level[0, hi - 1]) + rate_n * steps)
        ext_noise = noise[0, idx] / noise_level[0, idx].clamp(min=1e-7).unsqueeze(-1) * gain_n.unsqueeze(-1)
        body_amp = torch.cat([amp[:, :hi], ext_amp.unsqueeze(0)], dim=1)
        body_harm = torch.cat([harm[:, :hi], harm[:, idx]], dim=1)
        body_noise = torch.cat([noise[:, :hi], ext_noise.unsqueeze(0)], dim=1)
    # release frames, scaled so they continue from the level the held part ended at
    ratio_a = (body_amp[0, -1] / amp[0, off - 1].clamp(min=1e-7)).clamp(max=4.0)
    ratio_n = (body_noise[0, -1].mean() / noise_level[0, off - 1].clamp(min=1e-7)).clamp(max=4.0)
    fitted = {"f0": c["f0"],
              "amp": torch.cat([body_amp, amp[:, off:] * ratio_a], dim=1),
              "harm": torch.cat([body_harm, harm[:, off:]], dim=1),
              "noise": torch.cat([body_noise, noise[:, off:] * ratio_n], dim=1)}
    if "sweep_amp" in c:  # swept sinusoids die within a hit: a longer note holds them silent
        sweep = c["sweep_amp"]
        silent = sweep.new_zeros(1, max(0, held - off), sweep.shape[-1])
        fitted |= {"sweep_amp": torch.cat([sweep[:, :min(held, off)], silent, sweep[:, off:]], dim=1),
                   "sweep_hz": c["sweep_hz"], "sweep_tau": c["sweep_tau"]}
    return fitted


def _slope(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of y(t), never rising (a held note does not swell forever)."""
    tc = t - t.mean()
    return ((tc * (y - y.mean())).sum() / (tc * tc).sum().clamp(min=1e-7)).clamp(max=0.0)
