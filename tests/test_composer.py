"""The composer facade with a small model trained in the test: constraints, determinism, modes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tunesmith.compose.composer import VOICE_RANGES, Composer
from tunesmith.data.corpora.chorales import build_chorales
from tunesmith.errors import ParameterError
from tunesmith.evaluate.symbolic_stats import parallel_perfect_rate
from tunesmith.symbolic.io import read_music21_corpus, read_score, write_midi
from tunesmith.symbolic.keys import parse_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.train.lm import LMTrainConfig, train_lm


@pytest.fixture(scope="module")
def composer_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("composer")
    build_chorales(root / "data", limit=30)
    config = LMTrainConfig(arch="rnn", max_steps=40, eval_every=20, batch_size=8, window=128, threads=1,
                           model={"dim": 64, "layers": 1}, warmup=5)
    train_lm(root / "data", root / "run", config, command="test")
    return root / "run"


@pytest.fixture(scope="module")
def composer(composer_dir):
    return Composer.load(composer_dir)


def final_chord(score: Score) -> list[Note]:
    last_start = max(n.start for n in score.all_notes())
    return [n for n in score.all_notes() if n.start == last_start]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_constraints_hold_on_every_seed(composer, seed):
    result = composer.generate(key="D minor", bars=6, time_signature=(3, 4), seed=seed)
    score = result.score
    assert score.n_bars == 6 and score.time_signature == (3, 4)
    assert len(score.parts) == 4
    for part, (low, high) in zip(score.parts, VOICE_RANGES[4], strict=True):
        assert all(low <= n.pitch <= high for n in part.notes), part.name
    tonic, _ = parse_key("D minor")
    chord = final_chord(score)
    assert len(chord) == 4
    assert min(chord, key=lambda n: n.pitch).pitch % 12 == tonic
    assert score.parts[-1].notes[-1].pitch % 12 == tonic
    for upper, lower in zip(score.parts, score.parts[1:], strict=False):  # no voice crossing
        for note in lower.notes:
            above = [n.pitch for n in upper.notes if n.start <= note.start < n.end]
            assert not above or note.pitch <= above[0], (upper.name, lower.name, note)
    assert parallel_perfect_rate(score) <= 0.02  # the rule yields only when it would leave no choice
    assert {n.pitch % 12 for n in chord} <= {2, 5, 9}
    assert score.key == "D minor"


def test_same_seed_same_music_and_different_seed_differs(composer):
    a = composer.generate(key="G major", bars=4, seed=7)
    b = composer.generate(key="G major", bars=4, seed=7)
    c = composer.generate(key="G major", bars=4, seed=8)
    assert a.tokens == b.tokens
    assert a.tokens != c.tokens


def test_harmonization_keeps_the_melody_note_for_note(composer):
    chorale = read_music21_corpus("bach/bwv66.6")
    melody = chorale.parts[0]
    result = composer.generate(melody=melody, seed=3)
    soprano = result.score.parts[0].notes
    assert [(n.pitch, n.start, n.duration) for n in soprano] == [(n.pitch, n.start, n.duration)
                                                                 for n in melody.notes]
    assert len(result.score.parts) == 4 and all(p.notes for p in result.score.parts)
    first = melody.notes[0].start  # bwv66.6 opens with a pickup: the lower voices wait for it
    assert first > 0 and all(p.notes[0].start >= first for p in result.score.parts[1:])


def test_continuation_starts_with_the_given_notes(composer):
    chorale = read_music21_corpus("bach/bwv66.6")
    result = composer.generate(prime=chorale, bars=3, seed=1)
    assert result.score.n_bars == chorale.n_bars + 3
    for given, made in zip(chorale.parts, result.score.parts, strict=True):
        assert [(n.pitch, n.start) for n in made.notes[: len(given.notes)]] == [(n.pitch, n.start)
                                                                                 for n in given.notes]


def test_bad_requests_are_parameter_errors(composer):
    with pytest.raises(ParameterError, match="bars"):
        composer.generate(bars=0)
    with pytest.raises(ParameterError, match="bars"):
        composer.generate(bars=1000)
    with pytest.raises(ParameterError):
        composer.generate(key="H# lydian")
    with pytest.raises(ParameterError, match="meter"):
        composer.generate(time_signature=(5, 4))
    with pytest.raises(ParameterError, match="temperature"):
        composer.generate(temperature=0)
    wide = Part("m", [Note(40, 0, 1), Note(90, 1, 1)])
    with pytest.raises(ParameterError, match="spans"):
        composer.generate(melody=wide)
    with pytest.raises(ParameterError, match="no notes"):
        composer.generate(melody=Part("m", []))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", "generate", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_writes_midi_and_audio_and_rejects_bad_input(composer_dir, tmp_path):
    out = tmp_path / "c.mid"
    ok = cli("chorale", "--checkpoint", str(composer_dir), "--key", "F major", "--bars", "4", "--seed", "5",
             "-o", str(out))
    assert ok.returncode == 0, ok.stderr
    assert read_score(out).n_bars == 4
    wav = tmp_path / "c.ogg"
    ok = cli("chorale", "--checkpoint", str(composer_dir), "--bars", "2", "--seed", "5", "-o", str(wav))
    assert ok.returncode == 0, ok.stderr and wav.stat().st_size > 1000
    empty = tmp_path / "empty.mid"
    write_midi(Score(parts=[Part("x", [])]), empty)
    for args, needle in [
        (("--bars", "0"), "bars"),
        (("--key", "X major"), "X major"),
        (("--input", str(empty), "--harmonize"), "no notes"),
        (("--input", str(tmp_path / "missing.mid")), "missing.mid"),
    ]:
        bad = cli("chorale", "--checkpoint", str(composer_dir), *args, "-o", str(tmp_path / "x.mid"))
        assert bad.returncode == 2, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and needle in bad.stderr


def test_evaluate_lm_reports_every_figure(composer_dir):
    result = subprocess.run([sys.executable, "-m", "tunesmith", "evaluate", "lm", "--checkpoint", str(composer_dir),
                             "--pieces", "3", "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["nll"]["ngram"]["test_nll"] > 0 and report["nll"]["model_test_nll"] > 0
    assert set(report["statistics"]["by_statistic"]) >= {"pitch_class_entropy", "in_key_ratio", "note_density",
                                                         "voice_range", "parallel_perfect_rate"}
    assert 0 <= report["key_accuracy"]["music21_agrees"] <= 1
    assert sum(report["originality"]["histogram"].values()) == 3


def test_a_melody_is_continued_in_four_voices(composer):
    chorale = read_music21_corpus("bach/bwv66.6")
    melody_only = Score(parts=[chorale.parts[0]], tempo=chorale.tempo, key=chorale.key,
                        time_signature=chorale.time_signature)
    result = composer.generate(prime=melody_only, bars=2, seed=4)
    assert len(result.score.parts) == 4
    assert result.score.n_bars == chorale.n_bars + 2
    given = [(n.pitch, n.start) for n in chorale.parts[0].notes]
    assert [(n.pitch, n.start) for n in result.score.parts[0].notes[: len(given)]] == given
    assert len(result.score.parts[0].notes) > len(given)


def test_ship_publishes_weights_with_a_card_that_models_lists(composer_dir, tmp_path):
    import json
    import os

    from tunesmith.train.ship import ship

    card_path = ship(composer_dir, "tiny", weights_dir=tmp_path, description="a test model",
                     evaluation={"x": 1}, evaluation_command="tunesmith evaluate lm")
    card = json.loads(card_path.read_text())
    assert (tmp_path / "tiny.safetensors").is_file() and card["id"] == "tiny"
    assert "public domain" in next(iter(card["licence"]["training_data"]))
    assert card["licence"]["note"] == "trained only on public-domain data"
    listed = subprocess.run([sys.executable, "-m", "tunesmith", "models"], capture_output=True, text=True,
                            env={**os.environ, "TUNESMITH_WEIGHTS": str(tmp_path)}, timeout=120)
    assert listed.returncode == 0 and "tiny" in listed.stdout and "public domain" in listed.stdout
    assert Composer.load(card_path).generate(bars=2, seed=1).score.n_bars == 2


def test_a_parallel_penalty_lets_parallels_through_that_the_hard_rule_forbids(composer):
    def rate(penalty: float | None) -> float:
        composer.parallel_penalty = penalty
        try:
            return sum(parallel_perfect_rate(composer.generate(key="G major", bars=8, seed=s).score) for s in (1, 2))
        finally:
            composer.parallel_penalty = None

    assert rate(0.0) > rate(None)  # no penalty: the barely trained model writes parallels freely


def test_fit_parallels_bisects_the_penalty_against_the_training_split(composer_dir):
    result = subprocess.run([sys.executable, "-m", "tunesmith", "evaluate", "lm", "--checkpoint", str(composer_dir),
                             "--fit-parallels", "--pieces", "2", "--json"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    import json

    fit = json.loads(result.stdout)
    assert len(fit["trials"]) == 5 and 2.0 <= fit["parallel_penalty"] <= 10.0
    assert fit["target_train_rate"] > 0  # Bach's own chorales do have a few parallels
