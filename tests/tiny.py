"""Tiny debug models of every shipped family, built in the tests (random weights, a few thousand parameters):
the pipeline, the service and the CLI run on them in seconds, without the shipped weights.

    weights = tiny_weights(tmp_path)     # chorale, folk, notes (+ perform) and analyzer cards with safetensors
    tiny_song(weights)                   # and a song model
    Settings(weights_dir=weights, ...)   # a server offering them

Their cards have the shipped cards' shape (the instruments, labels and front end of the shipped ones, so every
parameter the service checks has its real range), with much smaller networks."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tunesmith.checkpoints import WEIGHTS_DIR, save_checkpoint
from tunesmith.models.analyzer import AnalyzerCNN
from tunesmith.models.gan import NoteGenerator, count_parameters
from tunesmith.models.lm import build_lm
from tunesmith.symbolic.grid import N_POSITIONS, N_SLOTS
from tunesmith.symbolic.tokens import VOCAB
from tunesmith.train.song import untrained_model


def _shipped(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())


def tiny_composer(directory: Path, name: str, *, voices: int) -> Path:
    """A one-layer LSTM of width 8 over the real vocabulary: writes valid (random-sounding) pieces."""
    torch.manual_seed(0)
    model = build_lm("rnn", dim=8, layers=1, dropout=0.0, vocab_size=VOCAB.size, n_slots=N_SLOTS,
                     n_positions=N_POSITIONS)
    card = {"family": "lm", "id": name, "version": "0.0.1+tiny", "arch": "rnn", "kwargs": model.kwargs,
            "voices": voices, "parameters": sum(p.numel() for p in model.parameters()),
            "description": f"tiny {voices}-voice debug composer", "data": {"kind": "none", "licences": {}}}
    save_checkpoint(directory, name, model, card)
    return directory / f"{name}.json"


def tiny_notes(directory: Path, name: str = "notes") -> Path:
    """A neural instrument of hidden width 8 with the shipped instrument table (42 instruments and kits)."""
    torch.manual_seed(0)
    shipped = _shipped("notes")
    kwargs = {**shipped["kwargs"], "hidden": 8, "blocks": 1, "n_harmonics": 8, "embed_dim": 4, "z_dim": 4}
    generator = NoteGenerator(**kwargs)
    card = {key: shipped[key] for key in ("instruments", "sr", "length", "note_off")}
    card |= {"family": "gan", "id": name, "version": "0.0.1+tiny", "arch": "ddsp-gan", "kwargs": generator.kwargs,
             "parameters": count_parameters(generator), "backend": "torch",
             "description": "tiny debug neural instrument", "data": {"kind": "none", "licences": {}}}
    save_checkpoint(directory, name, generator, card)
    return directory / f"{name}.json"


def tiny_analyzer(directory: Path, name: str = "analyzer") -> Path:
    """An analyzer CNN with two narrow blocks and the shipped labels and front end."""
    torch.manual_seed(0)
    shipped = _shipped("analyzer")
    kwargs = {**shipped["kwargs"], "channels": [4, 8], "embed_dim": 16, "freq_pools": [2, 2]}
    model = AnalyzerCNN(**kwargs)
    card = {key: shipped[key] for key in ("frontend", "labels", "crop_frames")}
    card |= {"family": "analyzer", "id": name, "version": "0.0.1+tiny", "arch": "cnn", "kwargs": model.kwargs,
             "parameters": sum(p.numel() for p in model.parameters()), "data": {"kind": "none", "licences": {}}}
    save_checkpoint(directory, name, model, card)
    return directory / f"{name}.json"


def tiny_song(directory: Path, name: str = "song") -> Path:
    """A song Transformer of width 16 (one layer, random weights) with a card of the shipped shape: every style
    family, the meters 3/4, 4/4 and 6/8, usual role ranges, the GM drum keys, any chord."""

    torch.manual_seed(0)
    model, card = untrained_model(dim=16, layers=1, heads=2, head_hidden=16)
    card |= {"id": name, "version": "0.0.1+tiny", "description": "tiny debug song model",
             "training": {"config": {"window": 96}}}
    save_checkpoint(directory, name, model, card)
    return directory / f"{name}.json"


def tiny_weights(directory: Path) -> Path:
    """A weights directory with a tiny model of every shipped family."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_composer(directory, "chorale", voices=4)
    tiny_composer(directory, "folk", voices=1)
    tiny_notes(directory)
    tiny_analyzer(directory)
    return directory
