"""What the generation endpoints do, without HTTP: submit, look up, list, cancel/delete, fetch files.

Preparing a submit reads the prompt, lets explicit parameters win over it, fills the model's defaults (and a
seed, so every record can be reproduced) and checks the server's limits; :mod:`tunesmith.service.generations.submits`
then checks the key's daily quota, records the job and queues it. Errors are `TunesmithError` subclasses;
`tunesmith.service.errors` maps them to statuses.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Row

from tunesmith.errors import ParameterError
from tunesmith.families import InputFacts, Resolving
from tunesmith.families.params import MAX_SEED, check_params
from tunesmith.generation.catalog import FORMATS, ModelEntry
from tunesmith.generation.prompts import as_run, prompt_values, read_prompt
from tunesmith.generation.signing import work_payload
from tunesmith.service import crud
from tunesmith.service.db import FINISHED, ApiKey, Generation, Upload
from tunesmith.service.errors import Conflict, NotFound
from tunesmith.service.generations.submits import Submission
from tunesmith.service.generations.tasks import SAMPLE_RATE
from tunesmith.service.images import IMAGES, artifact_ext, make_missing_image, work_title
from tunesmith.service.schemas import GenerationCreate
from tunesmith.service.state import Services
from tunesmith.service.storage import CONTENT_TYPES, StoredFile
from tunesmith.service.uploads import input_score, upload_for_request, upload_store


def input_facts(upload: Upload | None) -> InputFacts | None:
    """What a job knows of its upload before it runs."""
    if upload is None:
        return None
    return InputFacts(id=upload.id, filename=upload.filename, meter=upload.meter, tempo=upload.tempo,
                      bars=upload.bars, notes=upload.notes)


def resolve_request(body: GenerationCreate, services: Services, upload: Upload | None = None
                    ) -> tuple[ModelEntry, dict[str, Any], dict[str, Any] | None]:
    """(model, the params the job runs with, the prompt's interpretation) for a request: the prompt is read,
    the explicit params are checked against the model's family schema and win over the prompt, and the family
    resolves them against the model's card (defaults, the upload's meter and tempo, the server's limits)."""
    settings = services.settings
    if body.model is not None:
        services.catalog.get(body.model)  # an unknown model is named before the prompt is read
    reading = read_prompt(body.prompt, services.catalog, model=body.model) if body.prompt and body.prompt.strip() \
        else None
    from_prompt = prompt_values(reading)
    notes = list(reading.notes) if reading else []
    model_id = body.model or (reading.model if reading else None)
    if model_id is None:
        raise ParameterError(f"give a model ({', '.join(sorted(services.catalog.models)) or 'none is installed'}) "
                             "or a prompt that names one", field="model")
    entry = services.catalog.get(model_id)
    family = entry.family
    if family.params is None or family.resolve is None:
        raise ParameterError(f"model {entry.id!r} does not generate", field="model")
    takes = family.params.model_fields  # an unset flag (false) of another family's is not asked for
    given = {k: v for k, v in body.params.items() if v is not None and (v is not False or k in takes)}
    checked = check_params(family.params, given, model_id=entry.id, strict=True)
    explicit = {k: v for k, v in checked.model_dump(exclude_none=True).items() if k in given}
    seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
    request = Resolving(model_id=entry.id, card=entry.card, explicit=explicit, from_prompt=from_prompt,
                        notes=notes, seed=seed, upload=input_facts(upload), max_bars=settings.max_bars,
                        max_input_notes=settings.max_input_notes)
    params = family.resolve(request)
    if family.check_input is not None and upload is not None:  # what only the score tells, before the job queues
        family.check_input(params, input_score(services.db, upload_store(services.store), upload.id))
    if body.originality == "reject":
        params["originality"] = "reject"
    interpretation = as_run(reading.as_dict() | {"notes": notes}, params, given=explicit) if reading else None
    return entry, params, interpretation


def prepare(services: Services, key: ApiKey, body: GenerationCreate) -> Submission:
    """Check a generation request and work out what its job runs with (ParameterError on what is wrong)."""
    input_id = body.params.get("input")
    upload = upload_for_request(services.db, key, input_id if isinstance(input_id, str) else None,
                                bool(body.params.get("harmonize")))
    entry, params, interpretation = resolve_request(body, services, upload)
    seconds = entry.family.seconds(params, input_facts(upload), entry.card) if entry.family.seconds else 0.0
    if seconds > services.settings.max_audio_seconds:
        names = entry.family.params.model_fields if entry.family.params else {}
        hint = next((f"params.{n}" for n in ("bars", "duration", "length", "input") if n in names), "params")
        raise ParameterError(f"this piece would last about {seconds:.0f} s; the limit is "
                             f"{services.settings.max_audio_seconds:g} s (ask for fewer bars or a faster tempo)",
                             field=hint)
    if entry.family.audio_only:  # audio only: no score, no MIDI
        if "formats" in body.model_fields_set and "mid" in body.formats:
            raise ParameterError(f"model {entry.id!r} makes audio only (wav, flac, mp3, ogg), not MIDI",
                                 field="formats")
        formats = [f for f in FORMATS if f in {"wav", *body.formats} and f != "mid"]
    else:
        formats = [f for f in FORMATS if f in {"wav", "mid", *body.formats}]
    if "stems" in body.formats or "stems" in entry.family.outputs:
        if entry.family.audio_only:
            raise ParameterError(f"model {entry.id!r} makes one sound, not tracks: it has no stems", field="formats")
        formats.append("stems")
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


def artifact(services: Services, key: ApiKey, generation_id: str, fmt: str) -> StoredFile:
    """A finished job's MIDI or audio in the store; an audio format not made yet is made from the WAV."""
    generation = succeeded(services, key, generation_id)
    if fmt == "mid":
        _check_has_score(generation)
    entry = (generation.artifacts or {}).get(fmt)
    if entry is None:
        entry = _transcode(services, generation, fmt)
    return StoredFile(entry["sha256"], fmt, CONTENT_TYPES[fmt])


def image(services: Services, key: ApiKey, generation_id: str, kind: str) -> StoredFile:
    """A finished job's spectrogram or piano roll in the store (drawn now if the job has none)."""
    if kind not in IMAGES:
        raise NotFound(f"no image {kind!r}; there are {', '.join(IMAGES)}", field="image")
    generation = succeeded(services, key, generation_id)
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
    return StoredFile(entry["sha256"], "png", CONTENT_TYPES["png"])


def succeeded(services: Services, key: ApiKey, generation_id: str) -> Generation:
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
    source = services.store.local(wav["sha256"], "wav")
    if source is None:
        raise NotFound(f"the wav file of generation {generation.id} is missing from the store", field="format")
    audio, sr = load(source, mono=False)  # already watermarked
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
