"""Parameter types the families share (key, meter, instrument, seed ...), and the step from a family's pydantic
schema to what the API, the studio and the CLI show of it."""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from tunesmith.errors import ParameterError
from tunesmith.symbolic.instruments import EXTRA_PROGRAMS, INSTRUMENTS, gm_program
from tunesmith.symbolic.keys import key_name, parse_key

METERS = ("4/4", "3/4", "2/4", "2/2", "3/2", "6/4", "3/8", "6/8", "9/8", "12/8")
TEMPO_RANGE = (20.0, 300.0)
TEMPERATURE_RANGE = (0.05, 3.0)
TOP_P_RANGE = (0.05, 1.0)
MAX_SEED = 2**31 - 1
INSTRUMENT_NAMES = tuple(sorted({i.name for i in INSTRUMENTS} | set(EXTRA_PROGRAMS)))


def _key(value: str) -> str:
    return key_name(*parse_key(value))


def _meter(value: str) -> str:
    if value.replace(" ", "") not in METERS:
        raise ValueError(f"meter {value!r} is not supported; use one of {', '.join(METERS)}")
    return value.replace(" ", "")


def _instrument(value: str) -> str:
    try:
        gm_program(value)
    except ParameterError as exc:
        raise ValueError(exc.message) from None
    return canonical_name(value)


def canonical_name(value: str) -> str:
    """An instrument name as the tables spell it: "French Horn" -> "french_horn"."""
    return value.strip().lower().replace(" ", "_")


Key = Annotated[str, AfterValidator(_key), Field(description='tonic and mode, e.g. "D minor", "F# major", "Bb"',
                                                 max_length=40, examples=["D minor"])]
Meter = Annotated[str, AfterValidator(_meter), Field(description=f"time signature, one of {', '.join(METERS)}",
                                                     examples=["3/4"])]
Instrument = Annotated[str, AfterValidator(_instrument),
                       Field(description="General MIDI instrument, e.g. organ, choir, violin, flute", max_length=40)]
PlayedInstrument = Annotated[str, AfterValidator(canonical_name), Field(max_length=40)]
UploadId = Annotated[str, Field(max_length=36, description="id of an upload (POST /v1/uploads)")]


def check_params(model: type[BaseModel], values: dict[str, Any], *, prefix: str = "params.",
                 model_id: str = "", strict: bool = False) -> BaseModel:
    """``values`` checked against a family's schema; a ParameterError naming the first bad field otherwise.
    ``strict``: no conversions (JSON's true is not the integer 1, "8" is not a number), as the API's schema says."""
    try:
        return model.model_validate(values, strict=strict)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            takes = ", ".join(model.model_fields)
            raise ParameterError(f"model {model_id!r} does not take {name}; its params are {takes}",
                                 field=f"{prefix}{name}") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ParameterError(f"{prefix}{name}: {message}", field=f"{prefix}{name}") from None


def public_params(model: type[BaseModel], *, defaults: dict[str, Any] | None = None,
                  choices: dict[str, list[str]] | None = None,
                  maxima: dict[str, float] | None = None) -> dict[str, dict[str, Any]]:
    """The parameters as GET /v1/models shows them (``{name: {type, minimum, maximum, enum, default,
    description}}``) from a family's schema, with the card's own defaults, choices and the server's maxima."""
    schema = model.model_json_schema()
    out: dict[str, dict[str, Any]] = {}
    for name, spec in schema.get("properties", {}).items():
        spec = _non_null(spec)
        entry = {k: spec[k] for k in ("type", "minimum", "maximum", "enum", "default", "description", "unit")
                 if spec.get(k) is not None}
        entry.pop("title", None)
        if defaults and name in defaults and defaults[name] is not None:
            entry["default"] = defaults[name]
        if choices and name in choices:
            entry["enum"] = list(choices[name])
        if maxima and name in maxima:
            entry["maximum"] = maxima[name]
        out[name] = entry
    return out


def _non_null(spec: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` -> X, keeping the outer default and description."""
    options = [s for s in spec.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return {**options[0], **{k: v for k, v in spec.items() if k != "anyOf"}}
    return spec


def option_type(model: type[BaseModel], name: str) -> type:
    """The Python type a CLI option of this parameter parses to (int, float, bool or str)."""
    annotation = model.model_fields[name].annotation
    for candidate in (annotation, *get_args(annotation)):
        base = get_args(candidate)[0] if get_origin(candidate) is Annotated else candidate
        if base in (bool, int, float, str):
            return base
    return str
