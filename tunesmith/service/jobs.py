"""What the generation endpoints do, without HTTP: submit, look up, list, cancel/delete, fetch files.

Preparing a submit reads the prompt, lets explicit parameters win over it, fills the model's defaults (and a
seed, so every record can be reproduced) and checks the server's limits; :mod:`tunesmith.service.submits`
then checks the key's daily quota, records the job and queues it. Errors are `TunesmithError` subclasses;
`tunesmith.service.errors` maps them to statuses.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from tunesmith.errors import ParameterError, TunesmithError
from tunesmith.generation.signing import work_payload
from tunesmith.service import crud
from tunesmith.service.catalog import FORMATS, MAX_SEED, METERS, NOTE_RELEASE_SECONDS, TEMPO_RANGE, ModelEntry
from tunesmith.service.db import FINISHED, ApiKey, Generation, Upload
from tunesmith.service.errors import Conflict, NotFound
from tunesmith.service.images import IMAGES, artifact_ext, make_missing_image, work_title
from tunesmith.service.prompt import read_prompt
from tunesmith.service.schemas import GenerationCreate
from tunesmith.service.state import Services
from tunesmith.service.storage import CONTENT_TYPES
from tunesmith.service.submits import Submission
from tunesmith.service.tasks import SAMPLE_RATE
from tunesmith.service.uploads import upload_for_request
from tunesmith.symbolic.instruments import DRUM_KEYS, check_morph, get_instrument

PROMPT_PARAMS = ("key", "bars", "meter", "tempo", "instrument")
RENDER_TAIL_SECONDS = 1.0
NEURAL_PARAMS = {"note": ("instrument", "pitch", "velocity", "duration", "morph_to", "morph"),
                 "perform": ("input", "instrument")}
DRUM_NOTE_SECONDS = 2.0  # a drum hit rings out fully: at most the corpus note


def estimate_seconds(params: dict[str, Any], input_bars: int = 0) -> float:
    """Length of the audio a job will make: its bars (an upload's bars harmonized, or continued by ``bars``)
    at its tempo plus the reverb tail."""
    numerator, denominator = (int(x) for x in params["meter"].split("/"))
    bars = input_bars if params.get("harmonize") else input_bars + params["bars"]
    beats = bars * numerator * 4 / denominator
    return round(beats * 60.0 / params["tempo"] + RENDER_TAIL_SECONDS, 3)


def job_seconds(entry: ModelEntry, params: dict[str, Any], upload: Upload | None) -> float:
    """Length of the audio a job will make (composers: :func:`estimate_seconds`)."""
    if entry.task == "note":
        if get_instrument(params["instrument"]).is_drum:
            return DRUM_NOTE_SECONDS
        return round(params["duration"] + NOTE_RELEASE_SECONDS, 3)
    if entry.task == "perform" and upload is not None:
        return round(estimate_seconds({"meter": upload.meter, "tempo": upload.tempo, "bars": 0},
                                      input_bars=upload.bars) + NOTE_RELEASE_SECONDS, 3)
    return estimate_seconds(params, input_bars=upload.bars if upload is not None else 0)


def _played(name: str, allowed: list[str], field: str) -> str:
    """The canonical name of an instrument the neural instrument plays (422 on ``field`` otherwise)."""
    try:
        inst = get_instrument(name)
    except TunesmithError as exc:
        raise ParameterError(exc.message, field=field) from None
    if inst.name not in allowed:
        raise ParameterError(f"the neural instrument does not play {inst.name!r} here; choose one of: "
                             f"{', '.join(sorted(allowed))}", field=field)
    return inst.name


def neural_params(body: GenerationCreate, entry: ModelEntry, upload: Upload | None) -> dict[str, Any]:
    """The params a `notes` or `perform` job runs with (checked against the model's card, not loading it)."""
    explicit = body.params.model_dump(exclude_none=True, exclude_defaults=True)
    allowed = NEURAL_PARAMS[entry.task]
    for name in explicit:
        if name not in allowed:
            raise ParameterError(f"model {entry.id!r} does not take {name}; its params are {', '.join(allowed)}",
                                 field=f"params.{name}")
    seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
    if entry.task == "perform":
        if upload is None:
            raise ParameterError("perform plays a score: upload a MIDI or MusicXML file with POST /v1/uploads and "
                                 "give its id as params.input", field="params.input")
        instrument = _played(explicit.get("instrument", "piano"), entry.pitched_instruments, "params.instrument")
        return {"input": upload.id, "instrument": instrument, "seed": seed}
    instrument = _played(explicit.get("instrument", entry.instruments[0]), entry.instruments, "params.instrument")
    inst = get_instrument(instrument)
    pitch = int(explicit.get("pitch", 60))
    if inst.is_drum and pitch not in DRUM_KEYS:
        keys = ", ".join(map(str, sorted(DRUM_KEYS)))
        raise ParameterError(f"drum key {pitch} is not in the kit; use one of: {keys}", field="params.pitch")
    if not inst.is_drum and not inst.low <= pitch <= inst.high:
        raise ParameterError(f"pitch {pitch} is outside the {instrument} range {inst.low}..{inst.high}",
                             field="params.pitch")
    morph = float(explicit.get("morph", 0.0))
    morph_to = explicit.get("morph_to")
    if morph and morph_to is None:
        raise ParameterError("morph needs morph_to: the instrument to morph towards", field="params.morph")
    if morph_to is not None:
        morph_to = _played(morph_to, entry.instruments, "params.morph_to")
        check_morph(inst, get_instrument(morph_to), pitch, prefix="params.")
    return {"instrument": instrument, "pitch": pitch, "velocity": int(explicit.get("velocity", 100)),
            "duration": float(explicit.get("duration", 1.5)), "morph_to": morph_to, "morph": morph, "seed": seed}


def resolve_request(body: GenerationCreate, services: Services, upload: Upload | None = None
                    ) -> tuple[ModelEntry, dict[str, Any], dict[str, Any] | None]:
    """(model, the params the job runs with, the prompt's interpretation) for a request.

    With an ``upload`` to continue or harmonize, meter and tempo not asked for come from the file, and the key
    is the file's own unless one is asked for (then the piece is moved to it)."""
    settings = services.settings
    reading = read_prompt(body.prompt) if body.prompt and body.prompt.strip() else None
    explicit = body.params.model_dump(exclude_none=True)
    from_prompt = dict(reading.params) if reading else {}
    notes = reading.notes if reading else []
    model_id = body.model or from_prompt.get("model")
    if model_id is None:
        raise ParameterError(f"give a model ({', '.join(sorted(services.catalog.models)) or 'none is installed'}) "
                             "or a prompt that names one", field="model")
    if body.model and from_prompt.get("model") not in (None, body.model):
        notes.append(f"model: {body.model} as given (the prompt suggested {from_prompt['model']})")
    entry = services.catalog.get(model_id)
    if entry.neural:
        reject = {"originality": "reject"} if body.originality == "reject" else {}
        return entry, neural_params(body, entry, upload) | reject, None
    if body.params.harmonize and entry.voices == 1:
        raise ParameterError(f"model {entry.id!r} writes one voice and cannot harmonize; use a four-voice model "
                             "such as chorale", field="params.harmonize")
    params: dict[str, Any] = {}
    for name in PROMPT_PARAMS:
        if name in from_prompt:
            if name in explicit and explicit[name] != from_prompt[name]:
                notes.append(f"{name}: {explicit[name]} as given in params (the prompt said {from_prompt[name]})")
            params[name] = from_prompt[name]
    params.update(explicit)
    _check_prompt_values(params, explicit, settings.max_bars)
    if params.get("bars", 0) > settings.max_bars:
        raise ParameterError(f"bars must be at most {settings.max_bars} on this server, got {params['bars']}",
                             field="params.bars")
    base = ({"key": None, "meter": upload.meter, "tempo": upload.tempo} if upload is not None else
            {"key": entry.default_key, "meter": "4/4", "tempo": entry.default_tempo})
    params = {"key": params.get("key", base["key"]), "bars": params.get("bars", 8),
              "meter": params.get("meter", base["meter"]), "tempo": float(params.get("tempo", base["tempo"])),
              "temperature": params.get("temperature", 1.0), "top_p": params.get("top_p", 0.95),
              "instrument": params.get("instrument", entry.default_instrument),
              "seed": body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)}
    if upload is not None:
        if params["meter"] not in METERS:
            raise ParameterError(f"{upload.filename} is in {upload.meter}; the composer writes {', '.join(METERS)}",
                                 field="params.input")
        params |= {"input": upload.id, "harmonize": body.params.harmonize}
    if body.originality == "reject":
        params["originality"] = "reject"
    interpretation = reading.as_dict() | {"notes": notes} if reading else None
    return entry, params, interpretation


def _check_prompt_values(params: dict[str, Any], explicit: dict[str, Any], max_bars: int) -> None:
    """Values read from the prompt get the same checks as explicit ones, reported on the field ``prompt``."""
    if "bars" not in explicit and not 1 <= params.get("bars", 1) <= max_bars:
        raise ParameterError(f"the prompt asks for {params['bars']} bars; this server writes 1 to {max_bars}",
                             field="prompt")
    if "tempo" not in explicit and not TEMPO_RANGE[0] <= params.get("tempo", 100.0) <= TEMPO_RANGE[1]:
        raise ParameterError(f"the prompt asks for {params['tempo']:g} BPM; tempo must be "
                             f"{TEMPO_RANGE[0]:g}-{TEMPO_RANGE[1]:g}", field="prompt")


def prepare(services: Services, key: ApiKey, body: GenerationCreate) -> Submission:
    """Check a generation request and work out what its job runs with (ParameterError on what is wrong)."""
    upload = upload_for_request(services.db, key, body.params.input, body.params.harmonize)
    entry, params, interpretation = resolve_request(body, services, upload)
    seconds = job_seconds(entry, params, upload)
    if seconds > services.settings.max_audio_seconds:
        hint = {"note": "params.duration", "perform": "params.input"}.get(entry.task, "params.bars")
        raise ParameterError(f"this piece would last about {seconds:.0f} s; the limit is "
                             f"{services.settings.max_audio_seconds:g} s (ask for fewer bars or a faster tempo)",
                             field=hint)
    if entry.task == "note":  # one note is audio only: no score, no MIDI
        if "formats" in body.model_fields_set and "mid" in body.formats:
            raise ParameterError(f"model {entry.id!r} makes audio only (wav, flac, mp3, ogg), not MIDI",
                                 field="formats")
        formats = [f for f in FORMATS if f in {"wav", *body.formats} and f != "mid"]
    else:
        formats = [f for f in FORMATS if f in {"wav", "mid", *body.formats}]
    quota = key.quota_seconds if key.quota_seconds is not None else services.settings.daily_audio_seconds
    return Submission(key_id=key.id, model=entry.id, params=params, prompt=body.prompt,
                      interpretation=interpretation, formats=formats, seconds=seconds, quota=quota)


def get(services: Services, key: ApiKey, generation_id: str) -> Generation:
    with services.db.session() as session:
        generation = crud.get_generation(session, generation_id, key_id=key.id)
    if generation is None:
        raise NotFound(f"no generation {generation_id!r}", field="id")
    return generation


def status(services: Services, key: ApiKey, generation_id: str) -> Row:
    """A key's job as a read-only row, to show (:func:`get` returns the ORM record, to change)."""
    with services.db.transaction() as connection:
        row = crud.generation_row(connection, generation_id, key.id)
    if row is None:
        raise NotFound(f"no generation {generation_id!r}", field="id")
    return row


def list_page(services: Services, key: ApiKey, limit: int, offset: int) -> tuple[list[Generation], int]:
    with services.db.session() as session:
        return crud.list_generations(session, key.id, limit=limit, offset=offset)


def cancel_or_delete(services: Services, key: ApiKey, generation_id: str) -> Generation | None:
    """Cancel a queued or running job (returns it), or delete a finished one and its files (returns None)."""
    with services.db.session() as session:
        generation = crud.get_generation(session, generation_id, key_id=key.id)
        if generation is None:
            raise NotFound(f"no generation {generation_id!r}", field="id")
        if generation.status not in FINISHED and crud.cancel_generation(session, generation):
            return generation
        session.refresh(generation)
        orphans = crud.delete_generation(session, generation)
    for sha, kind in orphans:
        services.store.remove(sha, artifact_ext(kind))
    return None


def artifact(services: Services, key: ApiKey, generation_id: str, fmt: str) -> tuple[Path, str]:
    """(file, content type) of a finished job's MIDI or audio; an audio format not made yet is made from the WAV."""
    generation = _succeeded(services, key, generation_id)
    if fmt == "mid":
        _check_has_score(generation)
    entry = (generation.artifacts or {}).get(fmt)
    if entry is None:
        entry = _transcode(services, generation, fmt)
    path = services.store.path(entry["sha256"], fmt)
    if not path.is_file():
        raise NotFound(f"the {fmt} file of generation {generation_id} is missing from the store", field="format")
    return path, CONTENT_TYPES[fmt]


def image(services: Services, key: ApiKey, generation_id: str, kind: str) -> tuple[Path, str]:
    """(file, content type) of a finished job's spectrogram or piano roll (drawn now if the job has none)."""
    if kind not in IMAGES:
        raise NotFound(f"no image {kind!r}; there are {', '.join(IMAGES)}", field="image")
    generation = _succeeded(services, key, generation_id)
    if kind == "pianoroll":
        _check_has_score(generation)
    entry = (generation.artifacts or {}).get(kind)
    if entry is None:
        entry = make_missing_image(services.store, generation.artifacts or {}, kind,
                                   title=work_title(generation.model, generation.result))
        if entry is None:
            raise NotFound(f"generation {generation_id} has no file to draw its {kind} from", field="id")
        with services.db.session() as session:
            record = crud.get_generation(session, generation.id, key_id=None)
            if record is not None:
                crud.add_artifact(session, record, kind, entry["sha256"], entry["bytes"])
    path = services.store.path(entry["sha256"], "png")
    if not path.is_file():
        raise NotFound(f"the {kind} of generation {generation_id} is missing from the store", field="id")
    return path, CONTENT_TYPES["png"]


def _succeeded(services: Services, key: ApiKey, generation_id: str) -> Generation:
    generation = get(services, key, generation_id)
    if generation.status != "succeeded":
        raise Conflict(f"generation {generation_id} is {generation.status}; its files exist once it has succeeded",
                       field="id")
    return generation


def _check_has_score(generation: Generation) -> None:
    """A work made without a score (a `notes` job: audio only) has no MIDI and no piano roll: 409."""
    if "mid" not in (generation.formats or []):
        raise Conflict(f"generation {generation.id} ({generation.model}) is audio only: it has no score, so no MIDI "
                       "and no piano roll", field="id")


def _transcode(services: Services, generation: Generation, fmt: str) -> dict[str, Any]:
    from tunesmith.audio.io import load, save

    wav = (generation.artifacts or {}).get("wav")
    if wav is None or fmt == "mid":
        raise NotFound(f"generation {generation.id} has no {fmt} file", field="format")
    audio, sr = load(services.store.path(wav["sha256"], "wav"), mono=False)  # already watermarked
    contents: dict[str, str] = {}
    with services.store.scratch_file(fmt) as path:
        save(path, audio, sr or SAMPLE_RATE, format=fmt)
        if generation.provenance:  # signed like the work's other files, with the manifest of its record
            contents = services.stamper.stamp({fmt: path}, services.stamper.manifest_of(generation.provenance),
                                              work_payload(generation.id))
        sha, size = services.store.put_file(path, fmt)
    with services.db.session() as session:
        record = crud.get_generation(session, generation.id, key_id=None)
        if record is not None:
            crud.add_artifact(session, record, fmt, sha, size)
            if contents and record.provenance:
                signed = {**record.provenance.get("content_sha256", {}), **contents}
                record.provenance = {**record.provenance, "content_sha256": signed}
    return {"sha256": sha, "bytes": size}
