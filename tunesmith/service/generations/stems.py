"""A work's stems (one WAV per track, as it sits in the mix): one stem, or all of them as a zip made on first
request and kept with the work's other files."""

from __future__ import annotations

import zipfile

from tunesmith.generation.pipeline import STEM
from tunesmith.service import crud
from tunesmith.service.db import ApiKey, Generation
from tunesmith.service.errors import NotFound
from tunesmith.service.generations.jobs import succeeded
from tunesmith.service.state import Services
from tunesmith.service.storage import CONTENT_TYPES, StoredFile

ZIP = "stems.zip"


def names(generation: Generation) -> list[str]:
    """The stems a finished work has, in track order."""
    return [kind.removeprefix(STEM) for kind in (generation.artifacts or {}) if kind.startswith(STEM)]


def _with_stems(services: Services, key: ApiKey, generation_id: str) -> Generation:
    generation = succeeded(services, key, generation_id)
    if not names(generation):
        raise NotFound(f"generation {generation_id} ({generation.model}) has no stems; ask for them with "
                       'formats ["stems"] (a song always has them)', field="id")
    return generation


def stem(services: Services, key: ApiKey, generation_id: str, track: str) -> StoredFile:
    """One stem of a finished work in the store."""
    generation = _with_stems(services, key, generation_id)
    entry = (generation.artifacts or {}).get(f"{STEM}{track}")
    if entry is None:
        raise NotFound(f"generation {generation_id} has no track {track!r}; its tracks are "
                       f"{', '.join(names(generation))}", field="track")
    return StoredFile(entry["sha256"], "wav", CONTENT_TYPES["wav"])


def stems_zip(services: Services, key: ApiKey, generation_id: str) -> StoredFile:
    """All the stems of a finished work as one zip (``NAME.wav`` each) in the store."""
    generation = _with_stems(services, key, generation_id)
    entry = (generation.artifacts or {}).get(ZIP)
    if entry is None:
        with services.store.scratch_file("zip") as path:
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in names(generation):
                    wav = services.store.local(generation.artifacts[f"{STEM}{name}"]["sha256"], "wav")
                    if wav is None:
                        raise NotFound(f"the stem {name!r} of generation {generation_id} is missing from the store",
                                       field="id")
                    archive.write(wav, f"{name}.wav")
            sha, size = services.store.put_file(path, "zip")
        entry = {"sha256": sha, "bytes": size}
        with services.db.session() as session:
            record = crud.get_generation(session, generation.id, key_id=None)
            if record is not None:
                crud.add_artifact(session, record, ZIP, sha, size)
    return StoredFile(entry["sha256"], "zip", CONTENT_TYPES["zip"])
