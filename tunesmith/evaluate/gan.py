"""Evaluation of the neural instrument (`tunesmith evaluate gan`), after the GANSynth protocol.

Generated notes are compared with real held-out notes (the test split) of the same conditions
(instrument, pitch, velocity):

- pitch accuracy: librosa pyin (an independent estimator) within +/-50 cents of the asked pitch, on
  generated and on real notes; the analyzer's pitch head likewise;
- instrument-family accuracy of the analyzer on generated notes, relative to its accuracy on real ones;
- FAD in the analyzer's embedding: FAD(generated, test) / FAD(train subset, test) at equal counts (the train
  subset matched to the test conditions: same instrument and velocity, nearest pitch), FAD at several
  sample counts and FAD-infinity (the intercept of FAD against 1/N, Chong & Forsyth 2020);
- NDB: k-means (50 bins) on real training embeddings, two-proportion z-tests of bin shares, generated vs test;
- diversity: mean pairwise embedding distance within an instrument, generated vs real.

The analyzer parts run when the shipped analyzer loads; otherwise the report says why they are missing.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.stats

from tunesmith.compose.notesynth import NoteSynth
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, ParameterError, TunesmithError
from tunesmith.plotting import pyplot, save_figure
from tunesmith.progress import progress

PYIN_FMIN, PYIN_FMAX = 30.0, 4300.0  # the corpus's whole pitch range (MIDI 24..108), not the asked pitch
CENTS_TOLERANCE = 50.0
NDB_BINS = 50
NDB_ALPHA = 0.05
GOALS = {"pitch_accuracy_vs_real": 1.0, "family_accuracy_ratio": 0.90, "fad_ratio": 2.0, "ndb_share": 0.20,
         "diversity_ratio": 0.5}


# --------------------------------------------------------------------------- statistics


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (N, D)."""
    if len(a) < 2 or len(b) < 2:
        raise ParameterError("FAD needs at least two embeddings on each side", field="embeddings")
    mu_a, mu_b = a.mean(0), b.mean(0)
    # a tiny ridge keeps the square root defined when there are fewer samples than dimensions
    ridge = np.eye(a.shape[1]) * 1e-6
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    covmean = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def fad_curve(fake: np.ndarray, real: np.ndarray, sizes: list[int], *, seed: int = 0,
              repeats: int = 3) -> dict[str, Any]:
    """FAD at several sample counts of ``fake`` (mean of ``repeats`` draws) against all of ``real``, and
    FAD-infinity: the intercept of a least-squares line of FAD against 1/N."""
    rng = np.random.default_rng(seed)
    sizes = sorted({n for n in sizes if 2 < n <= len(fake)})
    values = []
    for n in sizes:
        draws = [frechet_distance(fake[rng.choice(len(fake), n, replace=False)], real) for _ in range(repeats)]
        values.append(float(np.mean(draws)))
    result: dict[str, Any] = {"sizes": sizes, "fad": values}
    if len(sizes) >= 2:
        _slope, intercept = np.polyfit(1.0 / np.array(sizes, dtype=float), np.array(values), 1)
        result["fad_infinity"] = float(intercept)
    return result


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Cluster centres (k, D) by Lloyd's algorithm with k-means++ seeding (deterministic per seed)."""
    from sklearn.cluster import KMeans

    k = min(k, len(x))
    return KMeans(n_clusters=k, n_init=3, max_iter=iterations, random_state=seed).fit(x).cluster_centers_


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return d.argmin(1)


def ndb(centres: np.ndarray, reference: np.ndarray, candidate: np.ndarray, *, alpha: float = NDB_ALPHA) -> dict:
    """Number of statistically different bins (Richardson & Weiss 2018): per bin a two-proportion z-test of the
    share of ``candidate`` vs ``reference`` embeddings falling in it."""
    k = len(centres)
    p_ref = np.bincount(assign(reference, centres), minlength=k) / len(reference)
    p_can = np.bincount(assign(candidate, centres), minlength=k) / len(candidate)
    pooled = (p_ref * len(reference) + p_can * len(candidate)) / (len(reference) + len(candidate))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(reference) + 1 / len(candidate)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_can - p_ref) / se, 0.0)
    p_values = 2 * scipy.stats.norm.sf(np.abs(z))
    different = int((p_values < alpha).sum())
    return {"bins": k, "different": different, "share": different / k}


def mean_pairwise_distance(x: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(x), 1)].mean())


def pyin_pitch(y: np.ndarray, sr: int, *, held: float = 1.5) -> float:
    """Median pyin f0 (Hz) over the voiced frames of the held part of a note; NaN when none is voiced."""
    import librosa

    segment = y[:int(held * sr)].astype(np.float32)
    f0, voiced, _ = librosa.pyin(segment, fmin=PYIN_FMIN, fmax=PYIN_FMAX, sr=sr, frame_length=2048,
                                 hop_length=512, resolution=0.25)
    return float(np.nanmedian(f0[voiced])) if voiced.any() else float("nan")


def cents_off(f: float, pitch: int) -> float:
    if not np.isfinite(f) or f <= 0:
        return float("inf")
    return 1200.0 * math.log2(f / (440.0 * 2 ** ((pitch - 69) / 12)))


# --------------------------------------------------------------------------- morphs and pictures

MORPH_PAIRS = (("violin", "flute", 67), ("cello", "trumpet", 60), ("piano", "choir", 60))
MORPH_STEPS = 9


def _log_mel(y: np.ndarray, sr: int) -> np.ndarray:
    from tunesmith.audio.features import log_mel

    return log_mel(y.astype(np.float32), sr=sr, n_fft=1024, hop_length=128, n_mels=64, top_db=80.0)


def morph_sweep(synth: NoteSynth, source: str, target: str, pitch: int, *, steps: int = MORPH_STEPS,
                seed: int = 0) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Notes from ``source`` to ``target`` in equal morph steps (same seed), and how smoothly they change:
    the log-mel distance (mean |dB| difference) of each step, and the largest step over the mean one."""
    notes = [synth.note(source, pitch, 100, seed=seed, morph_to=target, morph=m)
             for m in np.linspace(0.0, 1.0, steps)]
    mels = [_log_mel(y, synth.sr) for y in notes]
    deltas = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(mels)]
    from_start = [float(np.abs(m - mels[0]).mean()) for m in mels]
    return notes, {"source": source, "target": target, "pitch": pitch, "steps": steps,
                   "step_distances_db": deltas, "largest_over_mean_step": max(deltas) / max(np.mean(deltas), 1e-9),
                   "end_to_end_db": from_start[-1],
                   "monotonic_share": float(np.mean(np.diff(from_start) > 0))}


def plot_notes(rows: list[tuple[str, list[np.ndarray], list[str]]], png: Path, *, sr: int, title: str) -> Path:
    """A grid of log-mel spectrograms: one row per (name, notes, column labels)."""
    plt = pyplot()

    cols = max(len(notes) for _, notes, _ in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.8 * cols, 1.9 * len(rows)), dpi=80, squeeze=False)
    for r, (name, notes, labels) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(notes):
                ax.imshow(_log_mel(notes[c], sr), origin="lower", aspect="auto", cmap="magma")
                ax.set_title(labels[c], fontsize=7)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, png)


# --------------------------------------------------------------------------- the evaluation


def _load_analyzer(name: str) -> tuple[Any, str | None]:
    try:
        from tunesmith.analyze.analyzer import Analyzer

        return Analyzer.load(name), None
    except (ImportError, TunesmithError, FileNotFoundError, OSError) as exc:
        return None, f"analyzer unavailable: {exc}"


def _embed(analyzer: Any, audio: np.ndarray, sr: int, batch: int = 64) -> np.ndarray:
    return np.concatenate([np.asarray(analyzer.embed(audio[i:i + batch], sr)) for i in range(0, len(audio), batch)])


def _predict(analyzer: Any, audio: np.ndarray, sr: int, batch: int = 64) -> dict[str, np.ndarray]:
    fams, pitches = [], []
    for i in range(0, len(audio), batch):
        p = analyzer.predict(audio[i:i + batch], sr)
        fams.append(np.asarray(p.family))
        pitches.append(np.asarray(p.pitch))
    return {"family": np.concatenate(fams), "pitch": np.concatenate(pitches)}


def evaluate_gan(checkpoint: str | Path | None = None, data: str | Path | None = None, *, items: int = 400,
                 pyin_items: int = 150, seed: int = 0, analyzer: str = "analyzer",
                 pictures: Path | None = None) -> dict[str, Any]:
    """Every figure of the protocol above as a JSON-ready dict; with ``pictures``, also gan-test-grid.png
    (generated above real test notes) and gan-morph.png (morph sweeps) in that directory."""
    started = time.perf_counter()
    synth = NoteSynth.load(checkpoint)
    data = Path(data or synth.card.get("data", {}).get("path", ""))
    if not (data / "dataset.json").is_file():
        raise ParameterError(f"the notes dataset {data} is not here; build it or pass --data", field="data")
    dataset = Dataset(data)
    if dataset.kind != "notes":
        raise DatasetError(f"{data} is a {dataset.kind!r} dataset, not notes")
    known = set(synth.instrument_names)
    test = [r for r in dataset.split("test") if r.labels["instrument"] in known]
    train = [r for r in dataset.split("train") if r.labels["instrument"] in known]
    if len(test) < 4 or len(train) < 4:
        raise DatasetError(f"{data} has too few test/train notes of this model's instruments")
    pick = np.unique(np.linspace(0, len(test) - 1, num=min(items, len(test))).round().astype(int))
    test = [test[i] for i in pick]
    n = round(synth.card.get("length", 2.0) * synth.sr)

    real = _real_audio(dataset, test, n)
    generated = np.zeros_like(real)
    for row, r in enumerate(progress(test, desc="generating", unit="note")):
        y = synth.note(r.labels["instrument"], r.labels["pitch"], r.labels["velocity"], seed=seed + row)
        generated[row, :min(n, len(y))] = y[:n]
    report: dict[str, Any] = {"checkpoint": str(checkpoint or synth.name), "data": str(data), "items": len(test),
                              "instruments": len({r.labels["instrument"] for r in test}), "seed": seed,
                              "goals": GOALS}
    # ---- pitch by pyin on pitched notes
    pitched = [i for i, r in enumerate(test) if not r.labels.get("drum_type")]
    chosen = [pitched[i] for i in np.unique(np.linspace(0, len(pitched) - 1, num=min(pyin_items, len(pitched)))
                                            .round().astype(int))] if pitched else []
    ok_gen = ok_real = 0
    for i in progress(chosen, desc="pyin", unit="note"):
        pitch = test[i].labels["pitch"]
        ok_gen += abs(cents_off(pyin_pitch(generated[i], synth.sr), pitch)) <= CENTS_TOLERANCE
        ok_real += abs(cents_off(pyin_pitch(real[i], synth.sr), pitch)) <= CENTS_TOLERANCE
    if chosen:
        report["pitch_pyin"] = {"notes": len(chosen), "generated": ok_gen / len(chosen), "real": ok_real / len(chosen),
                                "tolerance_cents": CENTS_TOLERANCE}
    # ---- the analyzer's judgement
    model, why = _load_analyzer(analyzer)
    if model is None:
        report["analyzer"] = why
    else:
        report.update(_analyzer_figures(model, synth, dataset, test, train, real, generated, pitched, n, seed))
    sweeps = [morph_sweep(synth, a, b, p, seed=seed) for a, b, p in MORPH_PAIRS
              if {a, b} <= set(synth.instrument_names)]
    report["morph"] = [stats for _, stats in sweeps]
    if pictures is not None:
        show = np.unique(np.linspace(0, len(test) - 1, num=min(10, len(test))).round().astype(int))
        labels = [f"{test[i].labels['instrument']} {test[i].labels['pitch']}" for i in show]
        report["pictures"] = [str(plot_notes([("generated", [generated[i] for i in show], labels),
                                              ("real", [real[i] for i in show], labels)],
                                             pictures / "gan-test-grid.png", sr=synth.sr,
                                             title="test conditions: generated (top) vs real (bottom)"))]
        if sweeps:
            rows = [(f"{st['source']}>{st['target']}", notes, [f"{m:.2f}" for m in np.linspace(0, 1, st["steps"])])
                    for notes, st in sweeps]
            report["pictures"].append(str(plot_notes(rows, pictures / "gan-morph.png", sr=synth.sr,
                                                     title="timbre morphs (morph 0 -> 1, same seed)")))
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _analyzer_figures(model: Any, synth: NoteSynth, dataset: Dataset, test: list, train: list, real: np.ndarray,
                      generated: np.ndarray, pitched: list[int], n: int, seed: int) -> dict[str, Any]:
    sr = synth.sr
    out: dict[str, Any] = {}
    pred_real, pred_gen = _predict(model, real, sr), _predict(model, generated, sr)
    families = np.array([r.labels["family"] for r in test])
    acc_real = float((pred_real["family"] == families).mean())
    acc_gen = float((pred_gen["family"] == families).mean())
    by_family = {f: {"generated": float((pred_gen["family"][families == f] == f).mean()),
                     "real": float((pred_real["family"][families == f] == f).mean()),
                     "notes": int((families == f).sum())} for f in sorted(set(families))}
    out["family_accuracy"] = {"generated": acc_gen, "real": acc_real,
                              "ratio": acc_gen / acc_real if acc_real else float("nan"), "by_family": by_family}
    if pitched:
        target = np.array([test[i].labels["pitch"] for i in pitched])
        out["pitch_analyzer"] = {"notes": len(pitched),
                                 "generated": float((pred_gen["pitch"][pitched] == target).mean()),
                                 "real": float((pred_real["pitch"][pitched] == target).mean())}
    emb_real, emb_gen = _embed(model, real, sr), _embed(model, generated, sr)
    rng = np.random.default_rng(seed)
    subset = matched_train(test, train)
    emb_train = _embed(model, _real_audio(dataset, subset, n), sr)
    count = min(len(emb_gen), len(emb_train))
    fad_gen = frechet_distance(emb_gen[:count], emb_real)
    fad_train = frechet_distance(emb_train[:count], emb_real)
    sizes = [count // 8, count // 4, count // 2, count]
    out["fad"] = {"generated_vs_test": fad_gen, "train_vs_test": fad_train, "ratio": fad_gen / fad_train,
                  "count": count, "generated_curve": fad_curve(emb_gen, emb_real, sizes, seed=seed),
                  "train_curve": fad_curve(emb_train, emb_real, sizes, seed=seed)}
    big = [train[i] for i in rng.choice(len(train), size=min(len(train), 1500), replace=False)]
    emb_big = _embed(model, _real_audio(dataset, big, n), sr)
    centres = kmeans(emb_big, NDB_BINS, seed=seed)
    out["ndb"] = {"generated_vs_test": ndb(centres, emb_real, emb_gen),
                  "train_vs_test": ndb(centres, emb_real, emb_train)}
    by_inst: dict[str, list[int]] = {}
    for i, r in enumerate(test):
        by_inst.setdefault(r.labels["instrument"], []).append(i)
    groups = [idx for idx in by_inst.values() if len(idx) >= 3]
    div_real = float(np.nanmean([mean_pairwise_distance(emb_real[idx]) for idx in groups]))
    div_gen = float(np.nanmean([mean_pairwise_distance(emb_gen[idx]) for idx in groups]))
    out["diversity"] = {"generated": div_gen, "real": div_real, "ratio": div_gen / div_real,
                        "within": "instrument", "groups": len(groups)}
    return out


def matched_train(test: list, train: list) -> list:
    """For each test note, the training note of the same instrument and velocity at the nearest pitch: the
    FAD baseline then has the test set's mix of instruments, registers and dynamics, as the generated set has."""
    by_key: dict[tuple[str, int], list] = {}
    for r in train:
        by_key.setdefault((r.labels["instrument"], r.labels["velocity"]), []).append(r)
    out = []
    for r in test:
        pool = by_key.get((r.labels["instrument"], r.labels["velocity"])) or [
            t for t in train if t.labels["instrument"] == r.labels["instrument"]] or train
        out.append(min(pool, key=lambda t: (abs(t.labels["pitch"] - r.labels["pitch"]), t.labels["pitch"])))
    return out


def _real_audio(dataset: Dataset, records: list, n: int) -> np.ndarray:
    out = np.zeros((len(records), n), dtype=np.float32)
    for row, r in enumerate(records):
        y = np.asarray(dataset.array("audio", r), dtype=np.float32)[:n]
        out[row, :len(y)] = y
    return out


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human-readable summary of a gan evaluation."""
    lines = [f"{report['checkpoint']}: {report['items']} test conditions over {report['instruments']} instruments"]
    if "pitch_pyin" in report:
        p = report["pitch_pyin"]
        lines.append(f"pitch (pyin, +/-50 cents, {p['notes']} notes): generated {p['generated']:.3f}, "
                     f"real {p['real']:.3f}")
    if "analyzer" in report:
        lines.append(report["analyzer"])
    if "family_accuracy" in report:
        f = report["family_accuracy"]
        lines.append(f"family accuracy (analyzer): generated {f['generated']:.3f}, real {f['real']:.3f}, "
                     f"ratio {f['ratio']:.3f} (goal >= 0.90)")
    if "pitch_analyzer" in report:
        p = report["pitch_analyzer"]
        lines.append(f"pitch (analyzer head): generated {p['generated']:.3f}, real {p['real']:.3f}")
    if "fad" in report:
        f = report["fad"]
        lines.append(f"FAD generated {f['generated_vs_test']:.3f} vs train subset {f['train_vs_test']:.3f}: "
                     f"ratio {f['ratio']:.2f} (goal <= 2.0); FAD-inf generated "
                     f"{f['generated_curve'].get('fad_infinity', float('nan')):.3f}, train "
                     f"{f['train_curve'].get('fad_infinity', float('nan')):.3f}")
    if "ndb" in report:
        g, t = report["ndb"]["generated_vs_test"], report["ndb"]["train_vs_test"]
        lines.append(f"NDB: generated {g['different']}/{g['bins']} bins differ (goal <= 20%), "
                     f"train subset {t['different']}/{t['bins']}")
    if "diversity" in report:
        d = report["diversity"]
        lines.append(f"diversity within an instrument: generated {d['generated']:.3f}, real {d['real']:.3f}, "
                     f"ratio {d['ratio']:.2f} (goal >= 0.5)")
    for m in report.get("morph", []):
        lines.append(f"morph {m['source']} -> {m['target']} at {m['pitch']}: largest step "
                     f"{m['largest_over_mean_step']:.2f}x the mean, distance from the start rises in "
                     f"{100 * m['monotonic_share']:.0f}% of steps")
    lines.append(f"time: {report['seconds']} s")
    return lines
