"""The neural instrument (cards with ``family == "gan"``, normally `notes`) as two families: the card's own id
plays one note (:data:`INSTRUMENT`), and `perform` plays an input score with it (:data:`PERFORMER`)
(:class:`tunesmith.compose.notesynth.NoteSynth`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tunesmith.errors import ParameterError
from tunesmith.families.base import Family, InputFacts, Resolving, Trainer, Work
from tunesmith.families.composer import estimate_seconds
from tunesmith.families.params import PlayedInstrument, UploadId
from tunesmith.symbolic.instruments import Instrument, check_morph, find_instrument, instrument_table
from tunesmith.symbolic.score import Score

NOTE_DURATION_RANGE = (0.05, 30.0)  # seconds held: tunesmith.compose.notesynth MIN_DURATION, MAX_DURATION
NOTE_RELEASE_SECONDS = 0.5  # the release after the key is let go (the corpus note: 2.0 s, released at 1.5 s)
DRUM_NOTE_SECONDS = 2.0  # a drum hit rings out fully: at most the corpus note
NOISE_FFTS = (256, 512, 1024)  # `train gan --noise-fft` choices
PERFORM_MODEL = "perform"
PERFORM_ORIGINALITY = ("the music is the requester's uploaded score, not generated; the sound is the neural "
                       "instrument note by note, whose single notes `notes` works check against the training notes "
                       "(a mix of many notes has no meaningful distance to the 2 s single training notes)")


class NoteParams(BaseModel):
    """One note of the neural instrument."""

    model_config = ConfigDict(extra="forbid")

    instrument: PlayedInstrument | None = Field(None, description="an instrument the neural instrument plays")
    pitch: int | None = Field(None, ge=0, le=127, description="MIDI note number inside the instrument's range "
                              "(drum kits: a GM drum key)", json_schema_extra={"default": 60})
    velocity: int | None = Field(None, ge=1, le=127, description="MIDI velocity", json_schema_extra={"default": 100})
    duration: float | None = Field(None, ge=NOTE_DURATION_RANGE[0], le=NOTE_DURATION_RANGE[1],
                                   description=f"seconds the key is held; a {NOTE_RELEASE_SECONDS:g} s release "
                                   "follows", json_schema_extra={"default": 1.5})
    morph_to: PlayedInstrument | None = Field(None, description="a second instrument to morph the timbre towards")
    morph: float | None = Field(None, ge=0.0, le=1.0, description="how far towards morph_to",
                                json_schema_extra={"default": 0.0})


class PerformParams(BaseModel):
    """An uploaded score played by the neural instrument."""

    model_config = ConfigDict(extra="forbid")

    input: UploadId | None = Field(None, description="id of an uploaded MIDI or MusicXML file (POST /v1/uploads)")
    instrument: PlayedInstrument | None = Field(None, description="a pitched instrument of the neural instrument",
                                                json_schema_extra={"default": "piano"})
    drums: Literal["neural", "notes"] | None = Field(None, description="who plays the drum track (channel 10): the "
                                                     "neural drum kit learned from recorded kits (`drums`, the "
                                                     "default when installed) or this instrument's own kit")


def instruments(card: Mapping[str, Any]) -> list[str]:
    """The instruments the neural instrument plays (from its card)."""
    return [i["name"] for i in card.get("instruments", [])]


def pitched_instruments(card: Mapping[str, Any]) -> list[str]:
    return [i["name"] for i in card.get("instruments", []) if not i.get("drum")]


def played(card: Mapping[str, Any], name: str, allowed: list[str], field: str) -> Instrument:
    """An instrument of the card among ``allowed`` (a ParameterError on ``field`` listing them otherwise)."""
    table = instrument_table(card.get("instruments", []))
    inst = find_instrument({n: table[n] for n in allowed}, name, field=field)
    return inst


def resolve_note(request: Resolving) -> dict[str, Any]:
    """The params a `notes` job runs with (checked against the model's card, not loading it)."""
    explicit, card = request.merged(list(NoteParams.model_fields)), request.card
    allowed = instruments(card)
    inst = played(card, explicit.get("instrument") or allowed[0], allowed, "params.instrument")
    instrument = inst.name
    pitch = int(explicit.get("pitch") if explicit.get("pitch") is not None else 60)
    if inst.is_drum and pitch not in inst.pitches:
        keys = ", ".join(map(str, inst.pitches))
        raise ParameterError(f"drum key {pitch} is not in the kit; use one of: {keys}", field="params.pitch")
    if not inst.is_drum and not inst.low <= pitch <= inst.high:
        raise ParameterError(f"pitch {pitch} is outside the {instrument} range {inst.low}..{inst.high}",
                             field="params.pitch")
    morph = float(explicit.get("morph") or 0.0)
    morph_to = explicit.get("morph_to")
    if morph and morph_to is None:
        raise ParameterError("morph needs morph_to: the instrument to morph towards", field="params.morph")
    if morph_to is not None:
        target = played(card, morph_to, allowed, "params.morph_to")
        morph_to = target.name
        check_morph(inst, target, pitch, prefix="params.")
    velocity = explicit.get("velocity")
    duration = explicit.get("duration")
    return {"instrument": instrument, "pitch": pitch, "velocity": int(velocity if velocity is not None else 100),
            "duration": float(duration if duration is not None else 1.5), "morph_to": morph_to, "morph": morph,
            "seed": request.seed}


def resolve_perform(request: Resolving) -> dict[str, Any]:
    """The params a `perform` job runs with: the upload to play and a pitched instrument of the card."""
    if request.upload is None:
        raise ParameterError("perform plays a score: upload a MIDI or MusicXML file with POST /v1/uploads and "
                             "give its id as params.input", field="params.input")
    instrument = played(request.card, request.merged(["instrument"]).get("instrument") or "piano",
                        pitched_instruments(request.card), "params.instrument")
    drums = request.merged(["drums"]).get("drums") or ("neural" if neural_drums_installed() else "notes")
    if drums == "neural" and not neural_drums_installed():
        raise ParameterError("the neural drum kit (model drums) is not installed here", field="params.drums")
    return {"input": request.upload.id, "instrument": instrument.name, "drums": drums, "seed": request.seed}


def player(card: Mapping[str, Any], instrument: str | None) -> str | None:
    """The id of the card whose neural instrument plays ``instrument`` (`perform` joins every card's)."""
    return next((i.get("model") for i in card.get("instruments", []) if i["name"] == instrument), None)


def neural_drums_installed() -> bool:
    """Whether the shipped neural drum kit (weights/drums.json) is here (nothing is loaded)."""
    from tunesmith.compose.drumkit import kit_installed

    return kit_installed()


def note_seconds(params: dict[str, Any], _upload: InputFacts | None, card: Mapping[str, Any]) -> float:
    if instrument_table(card.get("instruments", []))[params["instrument"]].is_drum:
        return DRUM_NOTE_SECONDS
    return round(params["duration"] + NOTE_RELEASE_SECONDS, 3)


def perform_seconds(_params: dict[str, Any], upload: InputFacts | None, _card: Mapping[str, Any]) -> float:
    if upload is None:
        return 0.0
    return round(estimate_seconds({"meter": upload.meter, "tempo": upload.tempo, "bars": 0},
                                  input_bars=upload.bars) + NOTE_RELEASE_SECONDS, 3)


def run_note(synth: Any, params: dict[str, Any], _source: Score | None) -> Work:
    """One note (mono, at the synthesizer's rate)."""
    note = synth.note(params["instrument"], params["pitch"], velocity=params["velocity"],
                      duration=params["duration"], seed=int(params.get("seed") or 0), morph_to=params.get("morph_to"),
                      morph=params.get("morph") or 0.0)
    names = ("instrument", "pitch", "velocity", "duration", "morph_to", "morph", "seed")
    result = {k: params.get(k) for k in names}
    return Work(score=None, audio=np.asarray(note, dtype=np.float32)[None, :], sr=synth.sr, result=result,
                signed={k: v for k, v in params.items() if k != "model"},
                title=f"{params.get('model') or 'notes'}: {params['instrument']}")


def run_perform(synth: Any, params: dict[str, Any], source: Score | None) -> Work:
    """The input score played note by note; its MIDI is the score as performed, on the instrument that played."""
    if source is None:
        raise ParameterError("perform plays a score: give an input file", field="input")
    if params.get("drums") == "neural" and any(p.is_drum and p.notes for p in source.parts):
        from tunesmith.compose.drumkit import perform_with_kit

        performance = perform_with_kit(synth, source, params["instrument"], seed=int(params.get("seed") or 0))
    else:
        performance = synth.perform(source, params["instrument"], seed=int(params.get("seed") or 0))
    program = next(i["program"] for i in synth.card["instruments"] if i["name"] == params["instrument"])
    for part in source.parts:
        if not part.is_drum:
            part.program = int(program)
    result = {"instrument": params["instrument"], "drums": params.get("drums"), "seed": params.get("seed"),
              "n_notes": performance.notes,
              "notes": performance.interpretation}
    return Work(score=source, audio=np.asarray(performance.audio, dtype=np.float32)[None, :], sr=performance.sr,
                result=result, signed={k: v for k, v in params.items() if k != "model"},
                title=f"{params.get('model') or PERFORM_MODEL}: {params['instrument']}")


def load(card_path: Any) -> Any:
    from tunesmith.compose.notesynth import NoteSynth

    return NoteSynth.load(card_path)


def train_options(group: Any) -> None:
    group.add_argument("--adv-start", type=int, help="gan: steps of spectral-loss warm-up before the GAN losses")
    group.add_argument("--crop-frames", type=int, help="gan: training window in 8 ms frames (default 64)")
    group.add_argument("--grid-every", type=int, help="gan: steps between spectrogram grid PNGs (default 500)")
    group.add_argument("--subset", choices=["drums", "piano"],
                       help="gan on a `samples` dataset of real recordings: its drum hits or its piano notes")
    group.add_argument("--sweeps", type=int, metavar="S",
                       help="gan: S swept sinusoids besides the partials (a drum head's falling pitch; default 0)")
    group.add_argument("--noise-fft", type=int, metavar="N", choices=NOISE_FFTS,
                       help="gan: FFT size of the filtered noise, 256 (default), 512 or 1024: a longer one shapes "
                            "the low end more finely and smears attacks more")


def train(args: Any) -> dict[str, Any]:
    """`tunesmith train gan`: the neural instrument on a `notes` dataset (tunesmith.train.gan)."""
    from tunesmith.train.gan import V2_MODEL, GANTrainConfig, train_gan

    for name in ("adv_start", "crop_frames", "grid_every"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "adv_start" else 1):
            raise ParameterError(f"--{name.replace('_', '-')} must be positive, got {value}", field=name)
    options = {"adv_start": args.adv_start, "crop_frames": args.crop_frames, "grid_every": args.grid_every,
               "batch_size": args.batch_size, "lr_g": args.lr, "subset": args.subset}
    if args.subset:  # real recordings: every instrument family weighs the same
        options["family_weights"] = {}
    model: dict[str, Any] = {}
    if args.sweeps is not None:
        if not 0 <= args.sweeps <= 16:
            raise ParameterError(f"--sweeps must be 0..16, got {args.sweeps}", field="sweeps")
        model["sweeps"] = args.sweeps
    if getattr(args, "noise_fft", None) is not None:
        model["noise_fft"] = args.noise_fft
    if model:
        if args.resume:
            option = "--sweeps" if "sweeps" in model else "--noise-fft"
            raise ParameterError(f"{option} shapes a new run; a resumed run keeps its model",
                                 field=option[2:].replace("-", "_"))
        options["model"] = {**V2_MODEL, **model}
    config = GANTrainConfig(minutes=args.minutes, max_steps=args.max_steps, seed=args.seed,
                            eval_every=args.eval_every, threads=args.threads or 1,
                            **{k: v for k, v in options.items() if v is not None})
    return train_gan(args.data, args.out, config, resume=args.resume)


INSTRUMENT = Family(
    name="instrument", card_family="gan", kind="instrument",
    summary="one note of the neural instrument (any pitch, velocity and length; timbre morphs)",
    load=load, params=NoteParams, run=run_note, resolve=resolve_note, seconds=note_seconds,
    outputs=frozenset({"audio", "images"}), originality="audio",
    card_choices=lambda card: {"instrument": sorted(instruments(card)), "morph_to": sorted(instruments(card))},
    card_defaults=lambda card: {"instrument": instruments(card)[0] if instruments(card) else None},
    cli_required=("pitch",), default_seed=0,
    summary_line=lambda r: (f"{r.get('instrument')} pitch {r.get('pitch')} velocity {r.get('velocity')}, "
                            f"{r.get('seconds_of_audio')} s, seed {r.get('seed')}"),
    trainer=Trainer("gan", "the neural instrument (a GAN)", train, train_options),
)
PERFORMER = Family(
    name="performer", card_family="gan", kind="performer",
    summary="an uploaded score performed by the neural instrument",
    load=load, params=PerformParams, run=run_perform, resolve=resolve_perform, seconds=perform_seconds,
    originality=None, originality_note=PERFORM_ORIGINALITY, fixed_id=PERFORM_MODEL, input_needed=True,
    member_for=lambda card, params: player(card, params.get("instrument")),
    public_info=lambda card: {"played_by": {i["name"]: i["model"] for i in card.get("instruments", [])
                                            if not i.get("drum") and "model" in i}},
    card_choices=lambda card: {"instrument": sorted(pitched_instruments(card))},
    cli_required=("instrument", "input"), default_seed=0,
    summary_line=lambda r: (f"{r.get('n_notes')} notes played by the neural {r.get('instrument')}, "
                            f"{r.get('seconds_of_audio')} s"),
)
