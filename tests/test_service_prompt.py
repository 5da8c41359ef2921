"""Prompts against the models a server offers (tunesmith.generation.prompts): the engine is offered exactly the
served models, each with the parameters its family takes; the engine itself is tested in tests/test_prompting.py."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_song, tiny_weights
from tunesmith.errors import ParameterError
from tunesmith.generation.catalog import load_catalog
from tunesmith.generation.prompts import model_specs, prompt_values, read_prompt


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return load_catalog(tiny_weights(tmp_path_factory.mktemp("weights")))


def test_the_engine_is_offered_the_served_models_with_their_params(catalog):
    specs = model_specs(catalog)
    assert set(specs) == {"chorale", "folk", "notes", "perform"}  # no song here: it is not served
    takes = {model: {p.name for p in spec.params} for model, spec in specs.items()}
    assert takes["chorale"] <= set(catalog.get("chorale").family.params.model_fields)
    assert {"key", "bars", "tempo", "instrument"} <= takes["chorale"] and "style" not in takes["chorale"]
    assert takes["perform"] == {"instrument"} and "pitch" in takes["notes"]


@pytest.mark.parametrize(("prompt", "model", "values"), [
    ("a slow chorale in D minor for organ, 12 bars", "chorale", {"key": "D minor", "bars": 12}),
    ("a jig in D for fiddle", "folk", {"meter": "6/8", "instrument": "fiddle"}),
    ("violin note, C5, loud", "notes", {"instrument": "violin", "pitch": 72}),
    ("一首D小调的众赞歌，十二小节", "chorale", {"key": "D minor", "bars": 12}),
])
def test_prompts_choose_a_served_model_and_its_values(catalog, prompt, model, values):
    reading = read_prompt(prompt, catalog)
    assert reading.model == model, reading.as_dict()
    assert values.items() <= prompt_values(reading).items(), reading.as_dict()


def test_a_model_the_caller_chose_is_kept_and_refusals_say_what_was_understood(catalog):
    assert read_prompt("a jig", catalog, model="chorale").model == "chorale"
    with pytest.raises(ParameterError) as caught:
        read_prompt("buy cheap shoes online", catalog)
    assert caught.value.field == "prompt" and "understood" in caught.value.message


def test_every_music_prompt_of_the_set_gets_a_job(tmp_path):
    """The labelled set (English and Chinese) through POST /v1/generations of a server with the tiny models: every
    music prompt is queued (2xx), every prompt labelled as refused answers 422 on the field `prompt`; the song
    model is served, so "lo-fi hip hop" and "一首欢快的流行歌" are songs, and most prompts are labelled song."""
    import json
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.test_service_support import make_key
    from tests.test_service_uploads import MELODY, midi_bytes
    from tunesmith.config import Settings
    from tunesmith.service import create_app

    prompts = [json.loads(line) for line in (Path(__file__).parent / "data" / "prompts.jsonl").open()]
    weights = tiny_weights(tmp_path / "weights")
    tiny_song(weights)
    settings = Settings(data_dir=tmp_path / "data", weights_dir=weights, workers=0,
                        requests_per_minute=100_000, daily_audio_seconds=10**9, max_audio_seconds=10**5)
    headers = make_key(settings, "set")
    wrong: list[str] = []
    songs = 0
    with TestClient(create_app(settings)) as client:
        melody = client.post("/v1/uploads", headers=headers, files={"file": ("m.mid", midi_bytes(MELODY))}).json()
        for item in prompts:
            body = {"prompt": item["text"]}
            if item["expect"].get("model") == "perform":  # "play my file on the cello": with the file uploaded
                body["params"] = {"input": melody["id"]}
            response = client.post("/v1/generations", json=body, headers=headers)
            refused = "refused" in item["expect"]
            ok = (response.status_code == 422 and response.json()["error"]["field"] == "prompt") if refused \
                else response.status_code == 202
            songs += response.status_code == 202 and response.json()["model"] == "song"
            if response.status_code == 202:  # what the reading shows is what the job runs with, defaults too
                job = response.json()
                readings = job["interpretation"]["params"]
                shown = {name: r["value"] for name, r in readings.items() if name in job["params"]}
                if shown != {name: job["params"][name] for name in shown}:
                    wrong.append(f"{item['id']} {item['text']!r}: reading {shown} but the job has {job['params']}")
            if not ok:
                wrong.append(f"{item['id']} {item['text']!r}: {response.status_code} {response.text[:200]}")
        given = client.post("/v1/generations", json={"prompt": "a samba", "params": {"tempo": 150}}, headers=headers)
        tempo = given.json()["interpretation"]["params"]["tempo"]  # the request's own value, not the model's choice
        assert (tempo["value"], tempo["source"]) == (150, "given"), tempo
    assert not wrong, f"{len(wrong)} of {len(prompts)}:\n" + "\n".join(wrong[:20])
    labelled_song = sum(item["expect"].get("model") == "song" for item in prompts)
    assert labelled_song > 100 and songs >= 0.95 * labelled_song, (songs, labelled_song)


def test_the_reading_is_shown_a_line_per_parameter(catalog):
    from tunesmith.generation.prompts import reading_lines

    lines = reading_lines(read_prompt("a calm chorale in G major, 40 bars of it", catalog).as_dict())
    assert lines[0].startswith("model: chorale")
    assert any(line.startswith("key: G major from") for line in lines)
    assert any("'calm'" in line for line in lines), lines
    assert reading_lines(None) == []
