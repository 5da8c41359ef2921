"""Evaluation pieces on hand-made cases: the n-gram baseline, corpus statistics and originality."""

from __future__ import annotations

import math

import pytest

from tunesmith.evaluate.ngram import NGramModel
from tunesmith.evaluate.symbolic_stats import (
    in_key_ratio,
    note_density,
    parallel_perfect_rate,
    pitch_class_entropy,
)
from tunesmith.provenance.originality import SymbolicIndex
from tunesmith.symbolic.io import read_music21_corpus
from tunesmith.symbolic.keys import music21_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.transform import transpose


def line(pitches: list[int], *, duration: float = 1.0) -> Part:
    return Part("v", [Note(p, i * duration, duration) for i, p in enumerate(pitches)])


def test_ngram_probabilities_sum_to_one_and_learn_patterns():
    model = NGramModel(3, vocab_size=10).fit([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 5 for _ in range(3)])
    for context in ([1, 2], [9, 9], []):
        assert math.isclose(sum(model.prob(context, t) for t in range(10)), 1.0, rel_tol=1e-9)
    assert model.prob([1, 2], 3) > 0.9
    assert model.prob([1, 2], 7) > 0  # smoothed, never zero
    repetitive = model.nll([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3])
    shuffled = model.nll([[0, 5, 2, 8, 1, 9, 3, 7, 4, 6] * 3])
    assert repetitive < 0.2 < shuffled


def test_parallel_fifths_are_counted_and_contrary_motion_is_not():
    parallel = Score(parts=[line([67, 69, 71]), line([60, 62, 64])])  # fifths moving together
    contrary = Score(parts=[line([67, 69, 71]), line([60, 58, 57])])
    assert parallel_perfect_rate(parallel) == 1.0
    assert parallel_perfect_rate(contrary) == 0.0


def test_key_and_pitch_statistics():
    scale = Score(parts=[line([60, 62, 64, 65, 67, 69, 71, 72])], time_signature=(4, 4))
    assert in_key_ratio(scale, "C major") == 1.0
    assert in_key_ratio(scale, "F# major") < 0.5
    assert note_density(scale) == 4.0
    assert math.isclose(pitch_class_entropy(Score(parts=[line([60, 72])])), 0.0)
    assert music21_key(Score(parts=[line([60, 64, 67, 65, 62, 67, 71, 72, 67, 64, 60])])) == (0, "major")


@pytest.fixture(scope="module")
def index():
    names = ["bach/bwv66.6", "bach/bwv26.6", "bach/bwv10.7"]
    return SymbolicIndex((n, read_music21_corpus(n)) for n in names)


def test_a_copied_training_piece_is_found_with_its_source(index):
    copied = read_music21_corpus("bach/bwv26.6")
    match = index.longest_shared_run(copied)
    assert match.source == "bach/bwv26.6"
    assert match.length >= len(copied.parts[0].notes) - 1
    moved = index.longest_shared_run(transpose(copied, 5))  # a transposed copy is a copy
    assert moved.source == "bach/bwv26.6" and moved.length == match.length


def test_an_unrelated_line_shares_only_short_runs(index):
    odd = Score(parts=[line([60, 73, 61, 74, 62, 75, 63, 76, 64, 77], duration=0.75)])
    assert index.longest_shared_run(odd).length <= 2


def test_the_bootstrap_interval_widens_for_a_rare_event():
    from tunesmith.evaluate.symbolic_stats import bootstrap_interval

    common = [0.5 + 0.01 * (i % 3) for i in range(45)]
    rare = [0.0] * 40 + [0.01] * 5  # a few pieces carry all of it
    low, high = bootstrap_interval(common)
    assert low <= sum(common) / 45 <= high and (high - low) / 0.5 < 0.02
    low, high = bootstrap_interval(rare)
    assert low < sum(rare) / 45 < high and (high - low) / (sum(rare) / 45) > 0.5
