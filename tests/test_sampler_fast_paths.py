"""The sampler's fast paths give the answers of the slow ones: NumPy LSTM steps and music21's key analysis."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tunesmith.models.lm import LSTMLanguageModel, NumpyLSTMStepper
from tunesmith.symbolic.keys import aarden_key, music21_key
from tunesmith.symbolic.score import Note, Part, Score


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_numpy_lstm_steps_match_torch(layers):
    torch.manual_seed(layers)
    model = LSTMLanguageModel(vocab_size=50, n_slots=6, n_positions=9, dim=32, layers=layers).eval()
    stepper = NumpyLSTMStepper(model)
    _, state = model.step(torch.tensor([[1, 2, 3]]), torch.tensor([[0, 1, 2]]), torch.tensor([[0, 0, 1]]))
    fast = stepper.state_from_torch(state)
    rng = np.random.default_rng(0)
    for _ in range(50):
        token, slot, position = int(rng.integers(50)), int(rng.integers(6)), int(rng.integers(9))
        slow_logits, state = model.step_one(token, slot, position, state)
        fast_logits, fast = stepper.step(token, slot, position, fast)
        assert np.allclose(slow_logits.numpy(), fast_logits, atol=1e-4)
        assert np.allclose(state[0][:, 0].numpy(), fast[0], atol=1e-5)


def test_aarden_key_is_music21s_answer():
    rng = random.Random(0)
    for _ in range(60):
        notes = [Note(rng.randint(40, 84), rng.random() * 8, rng.choice([0.25, 0.5, 1.0, 1.5, 2.0]))
                 for _ in range(rng.randint(4, 50))]
        assert aarden_key((n.pitch, n.duration) for n in notes) == music21_key(Score(parts=[Part("v", notes)]))


def test_aarden_key_on_a_bach_chorale():
    from tunesmith.symbolic.io import read_music21_corpus

    for score in [read_music21_corpus("bach/bwv66.6"), read_music21_corpus("bach/bwv269")]:
        assert aarden_key((n.pitch, n.duration) for n in score.all_notes()) == music21_key(score)
