"""Request and response bodies of the v1 API (separate Create and Public models)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tunesmith.errors import ParameterError
from tunesmith.service.catalog import (
    MAX_SEED,
    METERS,
    NOTE_DURATION_RANGE,
    TEMPERATURE_RANGE,
    TEMPO_RANGE,
    TOP_P_RANGE,
)
from tunesmith.symbolic.instruments import gm_program
from tunesmith.symbolic.keys import key_name, parse_key

Format = Literal["wav", "flac", "mp3", "ogg", "mid"]
AudioFormat = Literal["wav", "flac", "mp3", "ogg"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class GenerationParams(BaseModel):
    """Musical parameters; each one left out comes from the prompt, else the model's default."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, description='tonic and mode, e.g. "D minor", "F# major", "Bb"',
                            examples=["D minor"], max_length=40)
    bars: int | None = Field(None, ge=1, le=64, description="number of bars (the server's max_bars may be lower)")
    meter: str | None = Field(None, description=f"time signature, one of {', '.join(METERS)}", examples=["3/4"])
    tempo: float | None = Field(None, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1], description="quarter notes per minute")
    temperature: float | None = Field(None, ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1])
    top_p: float | None = Field(None, ge=TOP_P_RANGE[0], le=TOP_P_RANGE[1])
    instrument: str | None = Field(None, description="General MIDI instrument, e.g. organ, choir, violin, flute",
                                   max_length=40)
    input: str | None = Field(None, max_length=36, description="id of an upload (POST /v1/uploads) to continue, "
                              "or to harmonize with `harmonize`")
    harmonize: bool = Field(False, description="harmonize the first pitched part of `input` (chorale models)")
    pitch: int | None = Field(None, ge=0, le=127, description="notes: MIDI pitch (drum kits: the GM drum key)")
    velocity: int | None = Field(None, ge=1, le=127, description="notes: MIDI velocity")
    duration: float | None = Field(None, ge=NOTE_DURATION_RANGE[0], le=NOTE_DURATION_RANGE[1],
                                   description="notes: seconds the key is held (a release follows)")
    morph_to: str | None = Field(None, max_length=40, description="notes: an instrument to morph the timbre towards")
    morph: float | None = Field(None, ge=0.0, le=1.0, description="notes: how far towards morph_to, 0..1")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return key_name(*parse_key(value)) if value is not None else None

    @field_validator("meter")
    @classmethod
    def _meter(cls, value: str | None) -> str | None:
        if value is not None and value.replace(" ", "") not in METERS:
            raise ValueError(f"meter {value!r} is not supported; use one of {', '.join(METERS)}")
        return value.replace(" ", "") if value is not None else None

    @field_validator("instrument")
    @classmethod
    def _instrument(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            gm_program(value)
        except ParameterError as exc:
            raise ValueError(exc.message) from None
        return value.strip().lower().replace(" ", "_")

    @field_validator("morph_to")
    @classmethod
    def _morph_to(cls, value: str | None) -> str | None:
        return value.strip().lower().replace(" ", "_") if value is not None else None


class GenerationCreate(BaseModel):
    """POST /v1/generations: a model (or a prompt that names one), parameters, a seed and the formats wanted."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"model": "chorale", "params": {"key": "D minor", "bars": 8}, "seed": 1, "formats": ["wav", "mid"]},
        {"prompt": "a slow chorale in D minor for organ, 12 bars"},
    ]})

    model: str | None = Field(None, description="model id (see GET /v1/models); may come from the prompt",
                              max_length=100)
    prompt: str | None = Field(None, max_length=500, description="free text; explicit params win over it")
    params: GenerationParams = Field(default_factory=GenerationParams)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed and params give the same music")
    formats: list[Format] = Field(default_factory=lambda: ["wav", "mid"], max_length=5,
                                  description="files to make; WAV and MIDI are always made")
    originality: Literal["report", "reject"] = Field(
        "report", description="report: check the work against the training corpus and report it; reject: draw "
                              "again (next seed) while the work is flagged, up to the server's originality_tries")


class ErrorInfo(BaseModel):
    code: str
    message: str


class GenerationLinks(BaseModel):
    self: str
    events: str
    audio: dict[str, str]
    midi: str = Field(description="the MIDI file (`notes` makes audio only: 409 there)")
    spectrogram: str | None = Field(None, description="log-mel spectrogram of the audio (PNG)")
    pianoroll: str | None = Field(None, description="piano roll of the score (PNG; `notes` has no score: 409)")


class GenerationPublic(BaseModel):
    """A generation job and, once it succeeded, links to its files."""

    id: str
    model: str
    status: Status
    progress: float = Field(description="0..1")
    prompt: str | None
    params: dict[str, Any] = Field(description="the parameters the job runs with (prompt and defaults resolved)")
    interpretation: dict[str, Any] | None = Field(description="how the prompt was read: params, notes, not understood")
    formats: list[str]
    result: dict[str, Any] | None = Field(description="what the model reports it made (key, bars, seed, ...)")
    error: ErrorInfo | None
    audio_seconds: float | None
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    interruptions: int = Field(0, description="server stops (kill -9, power loss) this job was running through; "
                               "it is retried once, then fails with code `interrupted`")
    links: GenerationLinks
    provenance: dict[str, Any] | None = Field(None, description="the signed manifest embedded in every file "
                                              "(model, weights and training-data hashes, params, seed, time), the "
                                              "signing key's id and each file's signed content hash")
    originality: dict[str, Any] | None = Field(None, description="symbolic works: the longest run of notes shared "
                                               "with a training piece, that piece, the threshold and flagged; notes: "
                                               "the nearest training note in the analyzer's embedding space, its "
                                               "distance, the threshold and flagged; perform: not_applicable")


class GenerationList(BaseModel):
    items: list[GenerationPublic]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="link to the next page, if any")


class ModelsList(BaseModel):
    models: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: dict[str, dict[str, Any]]
    queue: dict[str, Any]
    process: int = Field(description="the id of the API process that answered (`serve` runs several)")
