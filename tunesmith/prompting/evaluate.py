"""`tunesmith evaluate prompts`: the labelled prompt set read by the engine, scored per language.

Each line of the set (tests/data/prompts.jsonl) is ``{"id", "lang", "text", "expect"}``; ``expect`` holds what a
musician expects: ``model`` (a family id or a list of acceptable ones), the fields that matter (``style``, ``key``,
``mode``, ``tempo``, ``meter``, ``bars``, ``length``, ``loop``, ``energy``, ``instrument``, ``instruments``,
``instruments_any``, ``tracks``, ``tracks_include``, ``tracks_exclude``, ``pitch``, ``velocity``, ``duration``), or
``refused`` ("not_music" / "contradiction") for prompts that must be refused. A number must match exactly, a
``[low, high]`` pair is a range, a list of strings means any of them, a style ``"a+b"`` is a blend of both.

Figures per language: the share of music prompts given a model (not refused), the share whose model is the
labelled one, the share of labelled fields matched, the share of refusals right, and the parse latency.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import ParameterError
from tunesmith.prompting.engine import DEFAULT_SETTINGS, EngineSettings, interpret, warm_up
from tunesmith.prompting.families import default_families
from tunesmith.prompting.instruments import program_of
from tunesmith.prompting.interpretation import Interpretation
from tunesmith.prompting.spec import FamilySpec
from tunesmith.symbolic.keys import normalize_key

DEFAULT_SET = Path("tests/data/prompts.jsonl")
GOALS = {"share_given_model": 1.0, "field_match": 0.85}


def load_set(path: str | Path = DEFAULT_SET) -> list[dict[str, Any]]:
    """The labelled prompts of a JSON-lines file; ParameterError naming the line if one is malformed."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"the prompt set {path} is not here (run from the repository or pass --data)",
                             field="data")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"{path}:{number}: not JSON ({exc.msg})", field="data") from exc
        if not isinstance(row, dict) or not {"id", "lang", "text", "expect"} <= set(row):
            raise ParameterError(f"{path}:{number}: needs id, lang, text and expect", field="data")
        rows.append(row)
    return rows


def _same_instrument(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return program_of(a) == program_of(b) and program_of(a) >= 0
    except ParameterError:
        return False


def _in_range(value: Any, expected: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if isinstance(expected, list):
        return expected[0] <= value <= expected[1]
    return abs(value - expected) < 0.5


def _played(result: Interpretation) -> list[str]:
    values = result.values()
    played = list(values.get("instruments", {}).values()) if isinstance(values.get("instruments"), dict) else []
    if values.get("instrument"):
        played.append(values["instrument"])
    return played


def _tracks(result: Interpretation, family: FamilySpec | None) -> list[str]:
    value = result.values().get("tracks")
    if value is not None:
        return list(value)
    spec = family.param("tracks") if family else None
    return list(spec.default or spec.choices) if spec else []


def field_matches(name: str, expected: Any, result: Interpretation, family: FamilySpec | None) -> bool:
    """Whether ``result`` gives what a label ``name: expected`` asks for."""
    values = result.values()
    if name == "style":
        got = values.get("style")
        options = expected if isinstance(expected, list) else [expected]
        return isinstance(got, str) and any(set(o.split("+")) == set(got.split("+")) for o in options)
    if name == "key":
        return isinstance(values.get("key"), str) and normalize_key(values["key"]) == normalize_key(expected)
    if name == "mode":
        key = values.get("key") or ""
        return values.get("mode", key.split(" ")[-1] if " " in key else None) == expected
    if name in ("tempo", "bars", "length", "loop", "energy", "pitch", "velocity", "duration"):
        return _in_range(values.get(name), expected)
    if name == "meter":
        return values.get("meter") == expected
    if name == "instrument":
        options = expected if isinstance(expected, list) else [expected]
        return any(_same_instrument(p, o) for p in _played(result) for o in options)
    if name == "instruments":
        return all(any(_same_instrument(p, o) for p in _played(result)) for o in expected)
    if name == "instruments_any":
        return any(_same_instrument(p, o) for p in _played(result) for o in expected)
    if name == "tracks":
        return set(_tracks(result, family)) == set(expected)
    if name == "tracks_include":
        return set(expected) <= set(_tracks(result, family))
    if name == "tracks_exclude":
        return not set(expected) & set(_tracks(result, family))
    raise ParameterError(f"unknown label {name!r}", field="data")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def evaluate(path: str | Path = DEFAULT_SET, *, settings: EngineSettings = DEFAULT_SETTINGS,
             families: Mapping[str, FamilySpec] | None = None) -> dict[str, Any]:
    """Score the engine on a labelled set; figures per language and the misses."""
    families = families or default_families()
    rows = load_set(path)
    warm_up(settings)  # load the models and embed the vocabulary before timing
    for row in rows[:5]:
        interpret(row["text"], families, settings=settings)
    by_language: dict[str, dict[str, Any]] = {}
    misses: list[dict[str, Any]] = []
    for row in rows:
        started = time.perf_counter()
        result = interpret(row["text"], families, settings=settings)
        elapsed = (time.perf_counter() - started) * 1000
        figures = by_language.setdefault(row["lang"], {"prompts": 0, "music_prompts": 0, "given_model": 0,
                                                       "model_right": 0, "fields": 0, "fields_matched": 0,
                                                       "refusals": 0, "refusals_right": 0, "latency_ms": []})
        figures["prompts"] += 1
        figures["latency_ms"].append(elapsed)
        expect = row["expect"]
        if "refused" in expect:
            figures["refusals"] += 1
            if result.refused == expect["refused"]:
                figures["refusals_right"] += 1
            else:
                misses.append({"id": row["id"], "text": row["text"], "field": "refused", "expected": expect["refused"],
                               "got": result.refused})
            continue
        figures["music_prompts"] += 1
        if result.refused is None and result.model:
            figures["given_model"] += 1
        else:
            misses.append({"id": row["id"], "text": row["text"], "field": "refused", "expected": None,
                           "got": result.refused, "conflicts": result.conflicts})
        models = expect["model"] if isinstance(expect["model"], list) else [expect["model"]]
        if result.model in models and result.refused is None:
            figures["model_right"] += 1
        else:
            misses.append({"id": row["id"], "text": row["text"], "field": "model", "expected": expect["model"],
                           "got": result.model})
        for name, expected in expect.items():
            if name == "model":
                continue
            figures["fields"] += 1
            if field_matches(name, expected, result, families.get(result.model or "")):
                figures["fields_matched"] += 1
            else:
                got = result.values()
                misses.append({"id": row["id"], "text": row["text"], "field": name, "expected": expected,
                               "got": {k: got[k] for k in got if k in (name, "key", "instrument", "instruments",
                                                                       "tracks") or name.startswith(k)}
                               | {"model": result.model}})
    report: dict[str, Any] = {"set": str(path), "embedding": {"english": settings.english_model,
                                                              "chinese": settings.chinese_model}, "languages": {}}
    for language, f in by_language.items():
        latency = f.pop("latency_ms")
        report["languages"][language] = {
            **f,
            "share_given_model": round(f["given_model"] / max(1, f["music_prompts"]), 4),
            "model_accuracy": round(f["model_right"] / max(1, f["music_prompts"]), 4),
            "field_match": round(f["fields_matched"] / max(1, f["fields"]), 4),
            "refusal_accuracy": round(f["refusals_right"] / max(1, f["refusals"]), 4),
            "latency_ms": {"p50": round(statistics.median(latency), 2), "p99": round(_percentile(latency, 0.99), 2),
                           "max": round(max(latency), 2)},
        }
    report["goals"] = GOALS
    report["meets_goals"] = all(
        lang["share_given_model"] >= GOALS["share_given_model"] and lang["field_match"] >= GOALS["field_match"]
        for lang in report["languages"].values())
    report["misses"] = misses
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"prompt set {report['set']} (embedding: English {report['embedding']['english']}, Chinese "
             f"{report['embedding']['chinese']})"]
    for language, f in report["languages"].items():
        lines.append(f"{language}: {f['music_prompts']} music prompts: {100 * f['share_given_model']:.1f}% given a "
                     f"model (goal 100%), {100 * f['model_accuracy']:.1f}% the labelled model; "
                     f"{f['fields_matched']}/{f['fields']} labelled fields = {100 * f['field_match']:.1f}% "
                     f"(goal 85%); refusals {f['refusals_right']}/{f['refusals']}; parse p50 "
                     f"{f['latency_ms']['p50']} ms, p99 {f['latency_ms']['p99']} ms")
    lines.append(f"goals {'met' if report['meets_goals'] else 'NOT met'}; {len(report['misses'])} misses "
                 "(listed with --json)")
    return lines
