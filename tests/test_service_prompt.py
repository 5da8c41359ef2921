"""Prompts against the models a server offers (tunesmith.generation.prompts): the engine is offered exactly the
served models, each with the parameters its family takes; the engine itself is tested in tests/test_prompting.py."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_weights
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
