"""Nucleus sampling over the whole vocabulary and per group of ids (a song's (track, key) head)."""

from __future__ import annotations

import numpy as np

from tunesmith.compose.sampling import sample_token


def drum_and_bass_logits() -> np.ndarray:
    """Two likely drum hits (ids 0-1 of the group 0..127) and a bass line's mass spread over 12 keys (128..139)."""
    probs = np.full(256, 1e-12)
    probs[0], probs[1] = 0.46, 0.30
    probs[128:140] = 0.02  # the bass plays 24 % of the time, no single key of it is likely
    return np.log(probs)


def shares(group_size: int | None, top_p: float, draws: int = 4000) -> tuple[float, set[int]]:
    rng = np.random.default_rng(0)
    allowed = np.ones(256, dtype=bool)
    ids = [sample_token(drum_and_bass_logits(), allowed=allowed, top_p=top_p, group_size=group_size, rng=rng)
           for _ in range(draws)]
    return float(np.mean([i >= 128 for i in ids])), set(ids)


def test_a_nucleus_over_the_vocabulary_starves_a_spread_out_group_and_a_grouped_one_does_not():
    whole, _ = shares(None, 0.9)
    grouped, seen = shares(128, 0.9)
    assert whole < 0.2  # most of the bass keys fall outside the top 90 % of the vocabulary
    assert abs(grouped - 0.24) < 0.03  # the bass plays as often as the model says
    assert seen <= {0, 1, *range(128, 140)}  # the near-zero ids stay cut


def test_a_grouped_nucleus_still_cuts_the_unlikely_ids_inside_a_group():
    probs = np.full(256, 1e-12)
    probs[128], probs[129], probs[130:140] = 0.6, 0.3, 0.01  # one group: two likely keys and ten stray ones
    rng = np.random.default_rng(1)
    ids = {sample_token(np.log(probs), allowed=np.ones(256, dtype=bool), top_p=0.85, group_size=128, rng=rng)
           for _ in range(2000)}
    assert ids == {128, 129}


def test_without_a_nucleus_groups_change_nothing():
    logits = drum_and_bass_logits()
    allowed = np.ones(256, dtype=bool)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [sample_token(logits, allowed=allowed, top_p=1.0, rng=a) for _ in range(200)] == \
        [sample_token(logits, allowed=allowed, top_p=1.0, group_size=128, rng=b) for _ in range(200)]


def test_a_group_the_model_rules_out_stays_out_and_breaks_nothing():
    logits = drum_and_bass_logits()
    logits[128:256] = -1e4  # the whole bass group underflows to probability 0
    allowed = np.ones(256, dtype=bool)
    rng = np.random.default_rng(2)
    ids = {sample_token(logits, allowed=allowed, top_p=0.9, group_size=group, rng=rng)
           for group in (1, 128) for _ in range(300)}
    assert ids == {0, 1}
