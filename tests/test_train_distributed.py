"""`tunesmith train lm --nproc 2`: two real processes (torch.distributed, gloo on loopback) train the same
steps as one process on the same global batch, and their checkpoint loads and resumes.

Tolerance: with the same seed every rank draws the same global batch and trains on half its rows, and
DistributedDataParallel averages the gradients; with dropout off (its masks are drawn per process, so they
cannot match one process's), the only difference is the order of float32 sums (the gradients are added
across processes, the losses over half batches): measured at most 6e-7 relative over 20 steps, so the test
allows 1e-4. One step of training moves the loss by more than 1e-2 here, so a wrong shard, a missed average
or a rank on another batch fails it. (With dropout on, the curves differ by up to 5 % per step: noise.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunesmith.checkpoints import load_card, load_weights
from tunesmith.data.corpora.chorales import build_chorales
from tunesmith.errors import ParameterError
from tunesmith.models.lm import build_lm
from tunesmith.train.lm import LMTrainConfig, train_lm

STEPS = 6
TOLERANCE = 1e-4  # relative, per logged value (see the module docstring)


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed") / "chorales"
    build_chorales(out, limit=12)
    return out


def _config(nproc: int, max_steps: int = STEPS) -> LMTrainConfig:
    return LMTrainConfig(arch="rnn", max_steps=max_steps, eval_every=1, batch_size=6, window=48, threads=1,
                         warmup=2, nproc=nproc, model={"dim": 16, "layers": 1, "dropout": 0.0})


def _curve(out, column: str) -> np.ndarray:
    rows = (out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    return np.array([float(row.split(",")[header.index(column)]) for row in rows[1:]])


def test_two_processes_follow_the_single_process_curve(chorales, tmp_path):
    single = train_lm(chorales, tmp_path / "single", _config(1), command="single")
    double = train_lm(chorales, tmp_path / "double", _config(2), command="double")

    assert double["training"]["steps"] == single["training"]["steps"] == STEPS
    assert double["training"]["config"]["nproc"] == 2 and single["training"]["config"]["nproc"] == 1
    assert double["training"]["tokens"] == single["training"]["tokens"]  # the same global batches
    for column in ("train_nll", "valid_nll", "lr"):
        one, two = _curve(tmp_path / "single", column), _curve(tmp_path / "double", column)
        assert len(one) == len(two) == STEPS
        np.testing.assert_allclose(two, one, rtol=TOLERANCE, err_msg=column)
    assert abs(_curve(tmp_path / "single", "train_nll")[-1] - _curve(tmp_path / "single", "train_nll")[0]) > 1e-2

    card = load_card(tmp_path / "double", "latest")
    model = load_weights(tmp_path / "double", "latest", build_lm(card["arch"], **card["kwargs"]))
    reference = load_weights(tmp_path / "single", "latest", build_lm(card["arch"], **card["kwargs"]))
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name

    resumed = train_lm(chorales, tmp_path / "double", _config(2, max_steps=2), resume=True, command="resume")
    assert resumed["training"]["steps"] == STEPS + 2
    assert [run["command"] for run in resumed["training"]["runs"]] == ["double", "resume"]
    assert len(_curve(tmp_path / "double", "train_nll")) == STEPS + 2


def test_nproc_must_fit_the_batch(chorales, tmp_path):
    with pytest.raises(ParameterError) as error:
        train_lm(chorales, tmp_path / "x", _config(7))
    assert error.value.field == "nproc"
    with pytest.raises(ParameterError):
        train_lm(chorales, tmp_path / "x", _config(0))
