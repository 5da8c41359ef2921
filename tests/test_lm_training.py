"""Composer language models: grid streams, transposition, incremental decoding, a short real training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tunesmith.data.corpora.chorales import build_chorales
from tunesmith.data.dataset import Dataset
from tunesmith.models.lm import build_lm
from tunesmith.symbolic.grid import BAR_SLOT, N_POSITIONS, N_SLOTS, OTHER_SLOT, grid_streams
from tunesmith.symbolic.tokens import VOCAB, decode
from tunesmith.symbolic.transform import transpose
from tunesmith.train.lm import LMTrainConfig, train_lm
from tunesmith.train.lm_data import TokenCorpus, transposition_table


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "chorales"
    build_chorales(out, limit=40)
    return out


def test_grid_streams_follow_the_layout(chorales):
    ds = Dataset(chorales)
    ids = ds.array("tokens", ds.records[0]).astype(int).tolist()
    slots, positions = grid_streams(ids)
    assert list(slots[:4]) == [OTHER_SLOT] * 4 and slots[4] == BAR_SLOT
    assert list(slots[5:13]) == [0, 1, 2, 3, 0, 1, 2, 3]
    assert list(positions[5:13]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert slots[-1] == OTHER_SLOT  # EOS


def test_transposition_table_matches_score_transposition(chorales):
    ds = Dataset(chorales)
    ids = ds.array("tokens", ds.records[0]).astype(int)
    shifted = transposition_table(3)[ids].tolist()
    expected = transpose(decode(ids.tolist()), 3)
    got = decode(shifted)
    assert got.key == expected.key
    for a, b in zip(got.parts, expected.parts, strict=True):
        assert [n.pitch for n in a.notes] == [n.pitch for n in b.notes]


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_incremental_step_matches_full_forward(arch):
    torch.manual_seed(0)
    model = build_lm(arch, vocab_size=VOCAB.size, n_slots=N_SLOTS, n_positions=N_POSITIONS, dim=32, layers=2,
                     dropout=0.0).eval()
    ids = torch.randint(0, VOCAB.size, (2, 30))
    slots = torch.randint(0, N_SLOTS, (2, 30))
    positions = torch.randint(0, N_POSITIONS, (2, 30))
    full, _ = model(ids, slots, positions)
    state, steps = None, []
    for t in range(30):
        logits, state = model.step(ids[:, t : t + 1], slots[:, t : t + 1], positions[:, t : t + 1], state)
        steps.append(logits)
    assert torch.allclose(full, torch.stack(steps, dim=1), atol=1e-4)


def test_batches_start_at_bar_lines_with_the_header(chorales):
    corpus = TokenCorpus(Dataset(chorales), "train")
    batch = corpus.batch(np.random.default_rng(0), size=4, length=64, transpose=6)
    assert batch["ids"].shape == (4, 68)
    assert (batch["ids"][:, 0] == VOCAB.bos_id).all()
    assert (batch["ids"][:, 4] == VOCAB.bar_id).all()
    assert torch.equal(batch["targets"][:, :-1], batch["ids"][:, 1:])


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_short_training_lowers_validation_loss_and_resumes(chorales, tmp_path, arch):
    out = tmp_path / arch
    config = LMTrainConfig(arch=arch, max_steps=30, eval_every=10, batch_size=8, window=128, threads=1,
                           model={"dim": 64, "layers": 2}, warmup=5)
    card = train_lm(chorales, out, config, command="test")
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    valid = [float(r[-1]) for r in rows]
    assert valid[-1] < valid[0]
    assert card["metrics"]["valid_nll"] < np.log(VOCAB.size)
    for name in ("latest.safetensors", "latest.json", "best.safetensors", "best.json", "curves.png"):
        assert (out / name).is_file()
    resumed = train_lm(chorales, out, LMTrainConfig(arch=arch, max_steps=5, threads=1), resume=True,
                       command="resume")
    assert resumed["training"]["steps"] == 35
    assert [r["command"] for r in resumed["training"]["runs"]] == ["test", "resume"]
    assert json.loads((out / "latest.json").read_text())["kwargs"]["dim"] == 64


def test_same_seed_same_weights(chorales, tmp_path):
    config = LMTrainConfig(arch="rnn", max_steps=3, eval_every=100, batch_size=4, window=64, threads=1,
                           model={"dim": 32, "layers": 1})
    a = train_lm(chorales, tmp_path / "a", config, command="a")
    b = train_lm(chorales, tmp_path / "b", config, command="b")
    assert a["weights_sha256"] == b["weights_sha256"]
