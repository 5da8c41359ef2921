"""The composer family (`chorale`, `folk`): a language model over symbolic tokens that writes, continues or
harmonizes a piece (cards with ``family == "lm"``; :class:`tunesmith.compose.composer.Composer`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.errors import ParameterError
from tunesmith.families.base import Family, InputFacts, Resolving, Trainer, Work
from tunesmith.families.params import (
    INSTRUMENT_NAMES,
    METERS,
    TEMPERATURE_RANGE,
    TEMPO_RANGE,
    TOP_P_RANGE,
    Instrument,
    Key,
    Meter,
    UploadId,
)
from tunesmith.symbolic.score import Score

RENDER_TAIL_SECONDS = 1.0
PROMPT_PARAMS = ("key", "bars", "meter", "tempo", "instrument")  # what a prompt may say for a composer


class ComposerParams(BaseModel):
    """Musical parameters of a composer; each one left out comes from the prompt, else the model's default."""

    model_config = ConfigDict(extra="forbid")

    key: Key | None = None
    bars: int | None = Field(None, ge=1, le=64, description="number of bars (the server's max_bars may be lower)")
    meter: Meter | None = Field(None, json_schema_extra={"enum": list(METERS), "default": "4/4"})
    tempo: float | None = Field(None, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1],
                                json_schema_extra={"unit": "quarter notes per minute"})
    temperature: float | None = Field(None, ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1],
                                      json_schema_extra={"default": 1.0})
    top_p: float | None = Field(None, ge=TOP_P_RANGE[0], le=TOP_P_RANGE[1], json_schema_extra={"default": 0.95})
    instrument: Instrument | None = Field(None, json_schema_extra={"enum": list(INSTRUMENT_NAMES)})
    input: UploadId | None = Field(None, description="id of an upload (POST /v1/uploads) to continue, or to "
                                   "harmonize with `harmonize`")
    harmonize: bool = Field(False, description="harmonize the first pitched part of `input` (chorale models)")


def voices(card: Mapping[str, Any]) -> int:
    return int(card.get("voices") or 1)


def defaults(card: Mapping[str, Any]) -> dict[str, Any]:
    """A composer's defaults: a four-voice model writes a D minor chorale for organ, a one-voice one a C major
    tune for flute."""
    four = voices(card) == 4
    return {"key": "D minor" if four else "C major", "tempo": 76.0 if four else 100.0,
            "instrument": "church_organ" if four else "flute", "bars": 8, "meter": "4/4"}


def estimate_seconds(params: dict[str, Any], input_bars: int = 0) -> float:
    """Length of the audio a job will make: its bars (an upload's bars harmonized, or continued by ``bars``)
    at its tempo plus the reverb tail."""
    numerator, denominator = (int(x) for x in params["meter"].split("/"))
    bars = input_bars if params.get("harmonize") else input_bars + params["bars"]
    beats = bars * numerator * 4 / denominator
    return round(beats * 60.0 / params["tempo"] + RENDER_TAIL_SECONDS, 3)


def seconds(params: dict[str, Any], upload: InputFacts | None, _card: Mapping[str, Any]) -> float:
    return estimate_seconds(params, input_bars=upload.bars if upload is not None else 0)


def resolve(request: Resolving) -> dict[str, Any]:
    """The params a composer job runs with. With an upload to continue or harmonize, meter and tempo not asked
    for come from the file, and the key is the file's own unless one is asked for (then the piece is moved)."""
    explicit, upload = request.explicit, request.upload
    if explicit.get("harmonize") and voices(request.card) == 1:
        raise ParameterError(f"model {request.model_id!r} writes one voice and cannot harmonize; use a four-voice "
                             "model such as chorale", field="params.harmonize")
    if explicit.get("harmonize") and upload is None:
        raise ParameterError("harmonize needs a melody: upload it with POST /v1/uploads and give its id as "
                             "params.input", field="params.harmonize")
    params = request.merged(PROMPT_PARAMS)
    params.update({k: v for k, v in explicit.items() if v is not None})
    fit_prompt_values(params, explicit, request.max_bars, request.notes)
    if params.get("bars", 0) > request.max_bars:
        raise ParameterError(f"bars must be at most {request.max_bars} on this server, got {params['bars']}",
                             field="params.bars")
    own = defaults(request.card)
    base = ({"key": None, "meter": upload.meter, "tempo": upload.tempo} if upload is not None else own)
    resolved = {"key": params.get("key", base["key"]), "bars": params.get("bars", 8),
                "meter": params.get("meter", base["meter"]), "tempo": float(params.get("tempo", base["tempo"])),
                "temperature": params.get("temperature", 1.0), "top_p": params.get("top_p", 0.95),
                "instrument": params.get("instrument", own["instrument"]), "seed": request.seed}
    if upload is not None:
        if resolved["meter"] not in METERS:
            raise ParameterError(f"{upload.filename} is in {upload.meter}; the composer writes {', '.join(METERS)}",
                                 field="params.input")
        resolved |= {"input": upload.id, "harmonize": bool(explicit.get("harmonize"))}
    return resolved


def fit_prompt_values(params: dict[str, Any], explicit: dict[str, Any], max_bars: int, notes: list[str]) -> None:
    """Values read from the prompt that this server cannot make are brought into its range, with a note (a prompt
    is refused only when it is not about music or contradicts itself; explicit values get a 422 instead)."""
    bars = params.get("bars")
    if "bars" not in explicit and bars is not None and not 1 <= bars <= max_bars:
        params["bars"] = min(max(int(bars), 1), max_bars)
        notes.append(f"bars: the prompt asks for {bars}; this server writes 1 to {max_bars}, so {params['bars']}")
    tempo = params.get("tempo")
    if "tempo" not in explicit and tempo is not None and not TEMPO_RANGE[0] <= tempo <= TEMPO_RANGE[1]:
        params["tempo"] = min(max(float(tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1])
        notes.append(f"tempo: the prompt asks for {tempo:g} BPM; the range is {TEMPO_RANGE[0]:g}-"
                     f"{TEMPO_RANGE[1]:g}, so {params['tempo']:g}")


def composer_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """A job's params -> keyword arguments of `Composer.generate`."""
    numerator, denominator = (int(x) for x in str(params.get("meter") or "4/4").split("/"))
    return {"key": params.get("key"), "bars": params.get("bars"), "time_signature": (numerator, denominator),
            "tempo": params.get("tempo"), "temperature": params.get("temperature", 1.0),
            "top_p": params.get("top_p", 0.95), "seed": params.get("seed"), "instrument": params.get("instrument")}


def source_arguments(source: Score | None, harmonize: bool) -> dict[str, Any]:
    """Keyword arguments of `Composer.generate` for an input score: ``melody=`` (harmonize) or ``prime=``."""
    if source is None:
        return {}
    if harmonize:
        pitched = [p for p in source.parts if not p.is_drum and p.notes]
        if not pitched:
            raise ParameterError("the input has no melody to harmonize", field="input")
        return {"melody": pitched[0]}
    return {"prime": source}


def run(composer: Any, params: dict[str, Any], source: Score | None) -> Work:
    """Compose (the pipeline renders the score)."""
    composition = composer.generate(**composer_arguments(params),
                                    **source_arguments(source, bool(params.get("harmonize"))))
    model_id = str(params.get("model") or composer.card.get("id") or "composer")
    title = f"{model_id} in {composition.params['key']}" if composition.params.get("key") else model_id
    composition.score.title = f"Tunesmith {title}"  # not the server's card path
    result = {**composition.params, "notes": composition.interpretation,
              "compose_seconds": round(composition.seconds, 3), "n_notes": composition.score.n_notes}
    signed = {k: v for k, v in params.items() if k != "model"}
    signed["seed"] = composition.params.get("seed", params.get("seed"))
    return Work(score=composition.score, audio=None, sr=0, result=result, signed=signed, title=title)


def load(card_path: Any) -> Any:
    from tunesmith.compose.composer import Composer

    return Composer.load(card_path)


def train_options(group: Any) -> None:
    group.add_argument("--arch", choices=["rnn", "transformer"], default="rnn", help="lm: model architecture")
    group.add_argument("--dim", type=int, help="lm: model width")
    group.add_argument("--layers", type=int, help="lm: number of layers")
    group.add_argument("--window", type=int, default=384, help="lm: tokens per training window")
    group.add_argument("--nproc", type=int, default=1, help="lm: processes sharing each batch (torch.distributed, "
                                                            "gloo; default 1)")


def train(args: Any) -> dict[str, Any]:
    """`tunesmith train lm`: a composer language model on a tokenized dataset (tunesmith.train.lm)."""
    from tunesmith.train.lm import LMTrainConfig, train_lm

    model = {k: v for k in ("dim", "layers") if (v := getattr(args, k)) is not None}
    config = LMTrainConfig(arch=args.arch, minutes=args.minutes, max_steps=args.max_steps,
                           batch_size=args.batch_size or 16, window=args.window, lr=args.lr,
                           eval_every=args.eval_every, seed=args.seed, threads=args.threads, nproc=args.nproc,
                           model=model)
    return train_lm(args.data, args.out, config, resume=args.resume)


COMPOSER = Family(
    name="composer", card_family="lm", kind="composer", summary="a composer of symbolic music",
    load=load, params=ComposerParams, run=run, resolve=resolve, seconds=seconds, originality="symbolic",
    describe=lambda card: "four-voice chorales" if voices(card) == 4 else "single-line melodies",
    summary_line=lambda r: f"{r.get('mode')} {r.get('key')}, {r.get('bars')} bars, seed {r.get('seed')}",
    card_defaults=defaults, prompt_params=PROMPT_PARAMS,
    trainer=Trainer("lm", "composer language model", train, train_options),
)
