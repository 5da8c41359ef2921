"""Prompts for the models a catalog serves: the prompt engine (:mod:`tunesmith.prompting`) offered exactly those
models, each with the parameters its family's schema takes. The service and the local CLI both read prompts here.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from tunesmith.generation.catalog import Catalog, ModelEntry
from tunesmith.prompting import FamilySpec, Interpretation, default_families, family_from_json_schema, interpret

_specs: dict[tuple[tuple[str, str], ...], dict[str, FamilySpec]] = {}
_lock = threading.Lock()


def model_spec(entry: ModelEntry) -> FamilySpec | None:
    """What the prompt engine knows of a served model: the engine's own description of a model it knows (with
    only the parameters this model's family takes), else one made from the family's schema and the card."""
    family = entry.family
    if family.params is None:
        return None
    takes = set(family.params.model_fields)
    known = default_families().get(entry.id)
    if known is not None:
        return FamilySpec(known.id, known.description, tuple(p for p in known.params if p.name in takes),
                          keywords=known.keywords, priority=known.priority)
    schema = family.params.model_json_schema()
    for name, choices in family.card_choices(entry.card).items():
        if name in schema.get("properties", {}):
            schema["properties"][name] = {**schema["properties"][name], "enum": list(choices)}
    return family_from_json_schema(entry.id, family.description(entry.card), schema)


def model_specs(catalog: Catalog) -> dict[str, FamilySpec]:
    """Every generation model of ``catalog`` for the prompt engine (made once per set of served cards)."""
    key = tuple(sorted((model_id, str(entry.card_path)) for model_id, entry in catalog.models.items()))
    with _lock:
        found = _specs.get(key)
        if found is None:
            found = _specs[key] = {m: s for m, e in catalog.models.items() if (s := model_spec(e)) is not None}
        return found


def read_prompt(text: str, catalog: Catalog, *, model: str | None = None) -> Interpretation:
    """The prompt read against the catalog's models (``model``: the caller's choice); ParameterError on the field
    ``prompt`` (saying what was understood) for text that is not about music or contradicts itself."""
    specs = model_specs(catalog)
    reading = interpret(text, specs, model=model if model in specs else None)
    reading.raise_if_refused()
    return reading


def prompt_values(reading: Interpretation | None) -> dict[str, Any]:
    """The parameters a prompt set (its defaults left to the model's family)."""
    if reading is None:
        return {}
    return {name: r.value for name, r in reading.params.items() if r.source not in ("default", "given")}


def as_run(interpretation: dict[str, Any], params: dict[str, Any], given: Collection[str] = ()) -> dict[str, Any]:
    """A prompt's reading (``Interpretation.as_dict``) with each parameter the prompt left to a default showing the
    value the job runs with: the prompt's defaults are not passed to the job (`prompt_values`), and the model's
    own can differ (the song model plays a samba at the tempo its training songs have, 160-230 BPM in 4/4 bars,
    where the prompt engine's table gives a musician's 95-120). ``given``: the parameters the request set
    itself, shown as ``given``."""
    readings = dict(interpretation.get("params") or {})
    for name, reading in readings.items():
        if reading.get("source") != "default" or name not in params or params[name] == reading.get("value"):
            continue
        if name in given:
            readings[name] = {**reading, "value": params[name], "source": "given", "detail": "given with the request"}
        else:
            readings[name] = {**reading, "value": params[name], "detail": "as the job runs it"}
    return {**interpretation, "params": readings}


def reading_lines(interpretation: dict[str, Any] | None) -> list[str]:
    """How a prompt was read, a line each (what the CLI prints, as the studio shows it): the model and why, each
    parameter with the words it came from, how and how sure, the words not used, then the notes."""
    if not interpretation:
        return []
    lines = [f"model: {interpretation['model']} ({interpretation.get('model_reason') or 'from the prompt'})"] \
        if interpretation.get("model") else []
    for name, reading in (interpretation.get("params") or {}).items():
        if reading.get("source") == "default":
            continue
        words = ", ".join(f"'{w}'" for w in reading.get("words") or [])
        sure = f", {round(100 * reading['confidence'])}%" if reading.get("confidence") is not None else ""
        lines.append(f"{name}: {reading.get('value')}" + (f" from {words}" if words else "")
                     + f" ({reading.get('source')}{sure})")
    if interpretation.get("unused_words"):
        lines.append("not used: " + ", ".join(f"'{w}'" for w in interpretation["unused_words"]))
    return lines + list(interpretation.get("notes") or [])
