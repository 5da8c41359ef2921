"""The prompt reader: what it understands, what it reports, and what it refuses."""

from __future__ import annotations

import pytest

from tunesmith.errors import ParameterError
from tunesmith.service.prompt import read_prompt


@pytest.mark.parametrize(("prompt", "params"), [
    ("a slow chorale in D minor for organ, 12 bars",
     {"model": "chorale", "key": "D minor", "tempo": 60.0, "instrument": "church_organ", "bars": 12}),
    ("a lively jig in G for fiddle", {"model": "folk", "meter": "6/8", "key": "G major", "tempo": 120.0,
                                      "instrument": "fiddle"}),
    ("folk tune in F#m at 90 bpm, sixteen bars", {"model": "folk", "key": "F# minor", "tempo": 90.0, "bars": 16}),
    ("Bach hymn in e flat major, 3/4 time, choir", {"model": "chorale", "key": "Eb major", "meter": "3/4",
                                                    "instrument": "choir"}),
    ("hymn in the key of c sharp minor", {"model": "chorale", "key": "C# minor"}),
    ("Dm chorale for strings", {"model": "chorale", "key": "D minor", "instrument": "strings"}),
    ("twenty-four bars of a reel in Bb", {"model": "folk", "meter": "4/4", "bars": 24, "key": "Bb major"}),
    ("a melody for violins, allegro", {"model": "folk", "instrument": "violin", "tempo": 120.0}),
    ("slip jig in A", {"model": "folk", "meter": "9/8", "key": "A major"}),
    ("a waltz for piano in a minor", {"meter": "3/4", "instrument": "piano", "key": "A minor"}),
])
def test_prompts_are_read_into_params(prompt, params):
    assert read_prompt(prompt).params == params


def test_an_article_a_is_not_a_key_and_unknown_words_are_reported():
    reading = read_prompt("in a slow tempo a gloomy melody for flute")
    assert reading.params == {"tempo": 60.0, "model": "folk", "instrument": "flute"}
    assert reading.not_understood == ["gloomy"]
    assert "not understood: 'gloomy'" in reading.notes


def test_a_number_of_bpm_wins_over_tempo_words():
    reading = read_prompt("a slow chorale at 72 bpm")
    assert reading.params["tempo"] == 72.0
    assert any("give way" in note for note in reading.notes)


@pytest.mark.parametrize(("prompt", "needle"), [
    ("", "understood: nothing"),
    ("xyzzy plugh", "not understood: 'xyzzy', 'plugh'"),
    ("a chorale that is also a jig", "more than one model"),
    ("slow and fast chorale", "more than one tempo"),
    ("in D minor or in G", "more than one key"),
    ("a hymn in 7/4", "meter 7/4"),
])
def test_unreadable_prompts_say_what_was_understood(prompt, needle):
    with pytest.raises(ParameterError) as caught:
        read_prompt(prompt)
    assert caught.value.field == "prompt" and needle in caught.value.message
    if "more than one" in needle:
        assert "understood:" in caught.value.message
