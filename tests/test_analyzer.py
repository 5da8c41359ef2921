"""The analyzer CNN: training on a tiny real note corpus and a fabricated MagnaTagATune tree, resume, the facade."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fabricate import make_mtt_tree
from tunesmith.analyze.analyzer import Analyzer
from tunesmith.cli import main
from tunesmith.data.corpora.notes import build_notes
from tunesmith.data.sources.mtt import build_mtt
from tunesmith.errors import ParameterError
from tunesmith.evaluate.analyzer import evaluate_cnn
from tunesmith.models.analyzer import AnalyzerCNN, FrontEnd
from tunesmith.train.analyzer import AnalyzerTrainConfig, train_analyzer
from tunesmith.train.analyzer_data import LabelSpace

SMALL = {"channels": [4, 8, 8, 8], "embed_dim": 16}


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("notes") / "notes"
    build_notes(out, instruments=["flute", "cello", "drums_standard"], velocities=(100,), limit=60)
    return out


@pytest.fixture(scope="module")
def run(notes, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "analyzer"
    config = AnalyzerTrainConfig(max_steps=6, batch_size=8, eval_every=3, warmup=2, model=SMALL)
    train_analyzer(notes, out, config, command="test")
    return out


def test_label_space_comes_from_the_dataset(notes):
    from tunesmith.data.dataset import Dataset

    labels = LabelSpace.of(Dataset(notes))
    assert labels.instruments == ["flute", "cello", "drums_standard"]
    assert labels.families == sorted(["flute", "string", "drums"])
    assert labels.drums and all(isinstance(d, str) for d in labels.drums)
    assert labels.heads() == {"family": 3, "instrument": 3, "pitch": 128, "drum": len(labels.drums)}


def test_training_writes_checkpoints_log_and_curves(run):
    card = json.loads((run / "latest.json").read_text())
    assert card["family"] == "analyzer" and card["training"]["steps"] == 6
    assert (run / "best.safetensors").is_file() and (run / "curves.png").stat().st_size > 1000
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 1 + 2  # evaluations at steps 3 and 6 (6 is the end)
    assert 0.0 <= card["metrics"]["family_acc"] <= 1.0


def test_resume_continues_from_the_latest_step(run, notes, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    card = train_analyzer(notes, copy, AnalyzerTrainConfig(max_steps=2, eval_every=100), resume=True,
                          command="resume")
    assert card["training"]["steps"] == 8
    assert [r["command"] for r in card["training"]["runs"]] == ["test", "resume"]
    assert card["kwargs"]["channels"] == SMALL["channels"]  # the model came back with its own shape


def test_same_seed_same_weights(notes, tmp_path):
    torch.set_num_threads(1)
    config = AnalyzerTrainConfig(max_steps=2, batch_size=4, eval_every=100, warmup=1, model=SMALL)
    a = train_analyzer(notes, tmp_path / "a", config, command="a")
    b = train_analyzer(notes, tmp_path / "b", config, command="b")
    assert a["weights_sha256"] == b["weights_sha256"]


def test_facade_predicts_names_and_embeds(run, notes):
    from tunesmith.data.dataset import Dataset

    analyzer = Analyzer.load(run)
    dataset = Dataset(notes)
    records = dataset.records[:5]
    clips = np.stack([np.asarray(dataset.array("audio", r), dtype=np.float32) for r in records])
    pred = analyzer.predict(clips, 16000)
    assert pred.family.shape == (5,) and set(pred.family) <= set(analyzer.labels["families"])
    assert set(pred.instrument) <= set(analyzer.labels["instruments"])
    assert all((p == -1) == (f == "drums") for p, f in zip(pred.pitch, pred.family, strict=True))
    assert np.allclose(pred.probs["family"].sum(-1), 1.0, atol=1e-5)
    emb = analyzer.embed(clips, 16000)
    assert emb.shape == (5, SMALL["embed_dim"]) and emb.dtype == np.float32
    assert np.allclose(analyzer.embed(clips[0], 16000), emb[0], atol=1e-5)  # batch or one clip: same answer
    from tunesmith.audio.dsp import resample

    at_44k = analyzer.embed(resample(clips[1], orig_sr=16000, target_sr=44100), 44100)
    cosine = at_44k @ emb[1] / (np.linalg.norm(at_44k) * np.linalg.norm(emb[1]) + 1e-9)
    assert cosine > 0.99  # any input rate: resampled to the front end's own


def test_facade_rejects_bad_clips(run):
    analyzer = Analyzer.load(run)
    with pytest.raises(ParameterError, match="NaN"):
        analyzer.predict(np.full(16000, np.nan, dtype=np.float32), 16000)
    with pytest.raises(ParameterError, match="too short"):
        analyzer.window_probabilities(np.zeros(160, dtype=np.float32), 16000)  # 10 ms
    with pytest.raises(ParameterError, match="not an analyzer"):
        Analyzer.load("chorale")


def test_evaluation_reports_every_head(run, notes, tmp_path):
    report = evaluate_cnn(run, notes, split="train", picture=tmp_path / "confusion.png")
    for key in ("family_acc", "instrument_acc", "pitch_acc", "drum_acc"):
        assert 0.0 <= report[key] <= 1.0
    assert report["clips"] > 0 and (tmp_path / "confusion.png").stat().st_size > 1000
    assert set(report["family_acc_by_family"]) == {"flute", "string", "drums"}


def test_front_end_is_level_independent():
    t = np.arange(16000) / 16000
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frontend = FrontEnd()
    assert np.allclose(frontend.features(y, 16000), frontend.features(0.01 * y, 16000), atol=1e-4)
    assert frontend.features(y, 16000).shape == (frontend.n_mels, 1 + 16000 // frontend.hop_length)


def test_cnn_pools_time_so_any_length_gives_one_embedding():
    model = AnalyzerCNN(heads={"family": 3}, **SMALL).eval()
    with torch.no_grad():
        short, _ = model(torch.randn(2, 128, 20))
        long, _ = model(torch.randn(2, 128, 300))
    assert short.shape == long.shape == (2, SMALL["embed_dim"])


def test_mtt_tags_train_and_evaluate_on_a_fabricated_tree(tmp_path):
    torch.set_num_threads(1)
    tree = make_mtt_tree(tmp_path / "magnatagatune", clips_per_folder=2, seconds=4.0)
    build_mtt(tree, tmp_path / "mtt")
    config = AnalyzerTrainConfig(max_steps=3, batch_size=4, eval_every=100, crop_seconds=2.0, model=SMALL)
    card = train_analyzer(tmp_path / "mtt", tmp_path / "run", config, command="mtt")
    assert card["labels"]["kind"] == "mtt" and len(card["labels"]["tags"]) > 0
    assert "roc_auc" in card["metrics"]
    report = evaluate_cnn(tmp_path / "run", tmp_path / "mtt")
    assert report["clips"] > 0 and "roc_auc" in report
    tags = Analyzer.load(tmp_path / "run").tag(np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32),
                                                16000)
    assert set(tags) == {"tags"} and all(0.0 <= p <= 1.0 for p in tags["tags"].values())


def test_cli_trains_with_exit_code_2_on_a_symbolic_dataset(tmp_path, capsys):
    from tunesmith.data.corpora.chorales import build_chorales

    build_chorales(tmp_path / "ch", limit=3)
    code = main(["train", "analyzer", "--data", str(tmp_path / "ch"), "--out", str(tmp_path / "run"),
                 "--max-steps", "1"])
    assert code == 2
    assert "notes" in capsys.readouterr().err


def test_pitch_shifted_copies_move_their_pitch_label(notes):
    from tunesmith.data.dataset import Dataset
    from tunesmith.train.analyzer_data import IGNORE, FeatureSet

    dataset = Dataset(notes)
    labels = LabelSpace.of(dataset)
    plain = FeatureSet(dataset, "train", labels, FrontEnd(), limit=10)
    shifted = FeatureSet(dataset, "train", labels, FrontEnd(), limit=10, pitch_shifts=(-1, 1))
    pitched = int((plain.targets["pitch"] != IGNORE).sum())
    assert len(shifted) == len(plain) + 2 * pitched  # drum hits are not shifted
    original = sorted(plain.targets["pitch"][plain.targets["pitch"] != IGNORE].tolist())
    moved = sorted(shifted.targets["pitch"][shifted.targets["pitch"] != IGNORE].tolist())
    assert moved == sorted([p + s for p in original for s in (-1, 0, 1)])
    assert shifted.features.shape[1:] == plain.features.shape[1:]
    # each pitched clip is followed by its copies one semitone down and up: their spectra move that way
    k = int(np.flatnonzero(shifted.targets["pitch"] != IGNORE)[0])
    first = int(shifted.targets["pitch"][k])
    assert shifted.targets["pitch"][k:k + 3].tolist() == [first, first - 1, first + 1]
    bins = np.arange(plain.features.shape[1])[:, None]
    power = [10 ** (2 * shifted.features[i].astype(np.float32)) for i in (k + 1, k, k + 2)]
    centroids = [float((bins * p).sum() / p.sum()) for p in power]
    assert centroids[0] < centroids[1] < centroids[2]


def test_facade_inference_layout_gives_the_plain_models_outputs(run):
    """The facade runs the CNN channels-last for speed; embeddings and logits equal the plain model's."""
    from tunesmith.checkpoints import load_card, load_weights, resolve_checkpoint

    torch.set_num_threads(1)
    analyzer = Analyzer.load(run)
    directory, checkpoint = resolve_checkpoint(run)
    plain = AnalyzerCNN(**load_card(directory, checkpoint)["kwargs"])
    load_weights(directory, checkpoint, plain)
    plain.eval()
    mel = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, 128, analyzer.crop)).astype(np.float32))
    fast_embedding, fast_logits = analyzer._forward(mel)
    with torch.inference_mode():
        embedding, logits = plain(mel)
    assert analyzer.model.trunk[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fast_embedding, embedding, rtol=1e-4, atol=1e-5)
    for head, value in logits.items():
        assert torch.allclose(fast_logits[head], value, rtol=1e-4, atol=1e-5)
