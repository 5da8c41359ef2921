"""Piano-roll pictures of scores."""

from __future__ import annotations

import matplotlib.image as mpimg

from tunesmith.symbolic.io import read_music21_corpus
from tunesmith.symbolic.pianoroll import plot_piano_roll
from tunesmith.symbolic.score import Score


def test_piano_roll_draws_every_part(tmp_path):
    path = plot_piano_roll(read_music21_corpus("bach/bwv66.6"), tmp_path / "roll.png")
    image = mpimg.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 1000
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_piano_roll_of_an_empty_score_still_draws(tmp_path):
    assert plot_piano_roll(Score(), tmp_path / "empty.png").stat().st_size > 1000
