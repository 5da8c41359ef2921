"""Request and response bodies of the v1 API (separate Create and Public models)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from tunesmith import families
from tunesmith.families.params import MAX_SEED

Format = Literal["wav", "flac", "mp3", "ogg", "mid", "stems"]  # stems: a WAV per track (a song makes them anyway)
AudioFormat = Literal["wav", "flac", "mp3", "ogg"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class GenerationParams(dict[str, Any]):
    """Musical parameters of the model asked for; each one left out comes from the prompt, else the model's default.

    Every family of the registry declares its own (GET /v1/models lists each model's with ranges and defaults);
    the request is checked against the chosen model's schema, and a parameter it does not take is a 422 naming
    it. The OpenAPI schema lists the union of the registered families' parameters."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(cls, handler(dict[str, Any]))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for family in families.families():
            if family.params is None:
                continue
            for name, spec in family.params.model_json_schema().get("properties", {}).items():
                properties.setdefault(name, {k: v for k, v in spec.items() if k != "title"})
        return {"type": "object", "properties": properties, "additionalProperties": False,
                "description": cls.__doc__.split("\n\n")[0] if cls.__doc__ else ""}


class GenerationCreate(BaseModel):
    """POST /v1/generations: a model (or a prompt that names one), parameters, a seed and the formats wanted."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [
            {"model": "chorale", "params": {"key": "D minor", "bars": 8}, "seed": 1, "formats": ["wav", "mid"]},
            {"prompt": "a slow chorale in D minor for organ, 12 bars"},
        ],
        "anyOf": [{"required": ["model"], "properties": {"model": {"type": "string"}}},  # a model, a prompt or both
                  {"required": ["prompt"], "properties": {"prompt": {"type": "string", "pattern": "\\S"}}}],
    })

    model: str | None = Field(None, description="model id (see GET /v1/models); may come from the prompt",
                              max_length=100)
    prompt: str | None = Field(None, max_length=500, description="free text; explicit params win over it")
    params: GenerationParams = Field(default_factory=GenerationParams)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed and params give the same music")
    formats: list[Format] = Field(default_factory=lambda: ["wav", "mid"], max_length=6,
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
    stems: dict[str, str] | None = Field(None, description="each track's WAV, by track name (works with stems)")
    stems_zip: str | None = Field(None, description="every stem in one zip (works with stems)")


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
    prompt_models: list[dict[str, Any]] = Field(default_factory=list, description="the sentence-embedding models "
                                                "that read prompts (model, package, licence, languages, size)")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: dict[str, dict[str, Any]]
    queue: dict[str, Any]
    process: int = Field(description="the id of the API process that answered (`serve` runs several)")
