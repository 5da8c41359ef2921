"""`tunesmith evaluate lm`: a composer model against an n-gram baseline, the held-out pieces and its
training data.

Reports (1) held-out NLL per token against the best smoothed n-gram baseline (order picked on valid),
(2) statistics of generated pieces against the held-out pieces, each generated piece taking the key,
meter and length of a random held-out piece, (3) how often music21's key analysis finds the requested
key, and (4) originality: the longest run of notes each generated piece shares with any training piece.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunesmith.compose.composer import Composer
from tunesmith.data.dataset import Dataset
from tunesmith.evaluate.ngram import NGramModel
from tunesmith.evaluate.symbolic_stats import compare, piece_statistics
from tunesmith.progress import progress
from tunesmith.provenance.originality import SymbolicIndex
from tunesmith.symbolic.keys import key_name, music21_key, parse_key
from tunesmith.symbolic.tokens import VOCAB
from tunesmith.train.lm import evaluate_nll
from tunesmith.train.lm_data import TokenCorpus

NGRAM_ORDERS = (2, 3, 5, 9)
MAX_EVAL_BARS = 16
ORIGINALITY_LIMIT = 12


def ngram_baseline(train: TokenCorpus, valid: TokenCorpus, test: TokenCorpus) -> dict[str, Any]:
    """Fit every order on train, keep the best on valid, report its test NLL."""
    train_seqs = [s.ids.tolist() for s in train.sequences]
    scores = {}
    for order in NGRAM_ORDERS:
        model = NGramModel(order, VOCAB.size).fit(train_seqs)
        scores[order] = (model.nll(s.ids.tolist() for s in valid.sequences), model)
    best = min(scores, key=lambda o: scores[o][0])
    return {"order": best, "valid_nll": scores[best][0],
            "test_nll": scores[best][1].nll(s.ids.tolist() for s in test.sequences),
            "valid_nll_by_order": {str(o): v[0] for o, v in scores.items()}}


def prompt_params(records: list[Any], pieces: int, seed: int) -> list[dict[str, Any]]:
    """Generation parameters of ``pieces`` pieces, each taking the key, meter and length (at most 16 bars) of a
    random piece of ``records`` whose meter the composer can write (4/2 and other rare meters it can't)."""
    writable = [r for r in records
                if VOCAB.meter_id(*(int(x) for x in r.labels["meter"].split("/"))) != VOCAB.id("METER_other")]
    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(pieces):
        record = writable[int(rng.integers(len(writable)))]
        prompts.append({"key": key_name(*parse_key(record.labels["key"])),
                        "time_signature": tuple(int(x) for x in record.labels["meter"].split("/")),
                        "bars": int(min(max(record.labels["bars"], 2), MAX_EVAL_BARS))})
    return prompts


def evaluate_lm(checkpoint: str | Path, data: str | Path, *, pieces: int = 100, seed: int = 0,
                temperature: float = 1.0, top_p: float = 0.95) -> dict[str, Any]:
    """Every figure of the composer evaluation as one JSON-ready dict."""
    torch.manual_seed(seed)
    composer = Composer.load(checkpoint)
    dataset = Dataset(data)
    train, valid, test = (TokenCorpus(dataset, s) for s in ("train", "valid", "test"))
    model_nll = evaluate_nll(composer.model, test)
    baseline = ngram_baseline(train, valid, test)
    test_records = dataset.split("test")
    held_out = [(r, dataset.score(r)) for r in test_records]
    reference = [piece_statistics(score, r.labels["key"]) for r, score in held_out]
    index = SymbolicIndex((r.id, dataset.score(r)) for r in dataset.split("train"))

    prompts = prompt_params(test_records, pieces, seed)
    generated, runs, sources, key_hits, seconds = [], [], Counter(), 0, 0.0
    for i, prompt in enumerate(progress(prompts, desc="generating", unit="piece")):
        key = prompt["key"]
        started = time.perf_counter()
        result = composer.generate(**prompt, seed=seed * 100_003 + i, temperature=temperature, top_p=top_p)
        seconds += time.perf_counter() - started
        generated.append(piece_statistics(result.score, key))
        key_hits += music21_key(result.score) == parse_key(key)
        match = index.longest_shared_run(result.score)
        runs.append(match.length)
        if match.length > ORIGINALITY_LIMIT:
            sources[match.source] += 1
    runs_arr = np.array(runs)
    statistics = compare(generated, reference)
    return {
        "checkpoint": str(checkpoint), "data": str(data), "arch": composer.card["arch"],
        "parameters": composer.card["parameters"],
        "nll": {"model_test_nll": model_nll, "ngram": baseline,
                "improvement_over_ngram": 1 - model_nll / baseline["test_nll"], "goal": 0.25},
        "statistics": {"pieces": pieces, "held_out_pieces": len(reference), "by_statistic": statistics,
                       "max_relative_difference": max(s["relative_difference"] for s in statistics.values()),
                       "goal": 0.15},
        "key_accuracy": {"music21_agrees": key_hits / pieces, "goal": 0.9},
        "originality": {"longest_shared_run": {"min": int(runs_arr.min()), "median": float(np.median(runs_arr)),
                                               "p99": float(np.percentile(runs_arr, 99)), "max": int(runs_arr.max())},
                        "histogram": {str(k): int(v) for k, v in sorted(Counter(runs).items())},
                        "share_at_most_12": float((runs_arr <= ORIGINALITY_LIMIT).mean()), "goal": 0.99,
                        "sources_over_limit": dict(sources.most_common(10))},
        "speed": {"seconds_per_piece": seconds / pieces},
    }
