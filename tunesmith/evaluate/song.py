"""`tunesmith evaluate song`: the song model against held-out songs, a style classifier, human drums, a beat
tracker, music21, an n-gram baseline and its training data (issue 14's goals; docs/evaluation.md).

Each generated song takes the key, tempo and length (8 to `MAX_BARS` bars) of a random held-out (test split)
song of the style it is asked for, in that song's meter when the model writes it (else the style's own). Goals:

1. **style**: an independent classifier (`tunesmith.evaluate.style_classifier`, trained on the train split)
   recognises the generated songs' requested style at least 0.9 times as often as the held-out songs' style,
   overall and per family;
2. **statistics** (`tunesmith.evaluate.song_stats`) of the generated songs within 15 % of the held-out songs'
   of their family: per track role, pitch-class entropy, scale consistency, groove consistency, drum-in-pattern
   rate, empty-beat rate, polyphony and note density; bass and chords (comp) chord-tone ratio on strong beats;
3. **human drums**: the drum statistics of the generated songs beside MMA's (the test split) and the
   human-written drums' (Hydrogen, LMMS);
4. **tempo and key**: the mix rendered with FluidSynth, librosa's beat tracker hears the requested tempo within
   4 % (octave errors reported apart) and music21 finds the requested key in the pitched tracks, each in at least
   90 % of the songs;
5. **NLL**: held-out NLL per event at least 25 % below the n-gram baseline's (`tunesmith.evaluate.song_ngram`:
   the same events and choices, total NLL per event);
6. **originality**: per track, the longest run shared with a training record's track of its role, in notes
   (chords and pad: onsets) and in bars (`tunesmith.provenance.song_originality`, the gate generated songs pass
   through); the goal is the composers' gate, at most 12 notes, in 99 % of the gated (pitched) tracks. Drum
   tracks are reported beside them, not gated, as in the service. The held-out songs the prompts copied are
   measured the same way against the same training tracks (``held_out_reference``): MMA's own renders of
   unseen chord charts share far longer runs with the training songs than the model does.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.corpora.grooves import SongRecord, band_tracks, iter_songs, role_notes
from tunesmith.data.dataset import Dataset
from tunesmith.evaluate.song_stats import DRUM_STATS, song_statistics
from tunesmith.evaluate.style_classifier import accuracy_by_family, song_features, train_style_classifier
from tunesmith.evaluate.symbolic_stats import bootstrap_interval
from tunesmith.progress import progress
from tunesmith.provenance.gate import ORIGINALITY_THRESHOLD
from tunesmith.symbolic.keys import key_name, music21_key, parse_key
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.song_tokens import ROLES, decode_song, encode_song, song_score

MIN_BARS, MAX_BARS = 8, 24
# songs generated per style: ten, so a family's accuracy moves by 0.1 a song and 0.9 of the held-out accuracy can
# be met without every song right (with three, a family passed only with all three)
SONGS_PER_STYLE = 10
STAT_GOAL, STYLE_RATIO, TEMPO_TOLERANCE, SHARE_GOAL, NLL_GOAL = 0.15, 0.9, 0.04, 0.9, 0.25
GRADED = {
    "drums": ("groove_consistency", "drum_in_pattern_rate", "empty_beat_rate", "polyphony", "note_density"),
    **{role: ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate", "polyphony",
              "note_density") for role in ("bass", "chords", "pad", "lead")},
}
CHORD_TONE_ROLES = ("bass", "chords")  # the comp is the chords track
RENDER_SR = 22050


# --------------------------------------------------------------------------------------------- statistics


def flat_statistics(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"bass.note_density": ...}: the graded statistics of a song (and velocity spread, reported only)."""
    out = {}
    for role, values in stats.items():
        names = GRADED.get(role, ()) + (("chord_tone_ratio",) if role in CHORD_TONE_ROLES else ()) + \
            ("velocity_spread",)
        out.update({f"{role}.{name}": values[name] for name in names if name in values})
    return out


def compare_sparse(generated: Sequence[dict[str, float]], held_out: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Per statistic (those both sides have), the means, relative difference, 95 % interval of the held-out
    mean and whether it is within `STAT_GOAL` (velocity spread is reported, not graded)."""
    out = {}
    names = sorted({k for s in held_out for k in s} & {k for s in generated for k in s})
    for name in names:
        gen = [s[name] for s in generated if name in s]
        ref = [s[name] for s in held_out if name in s]
        g, r = float(np.mean(gen)), float(np.mean(ref))
        diff = abs(g - r) / abs(r) if r else float(g != 0)
        entry = {"generated": g, "held_out": r, "relative_difference": diff, "songs": [len(gen), len(ref)],
                 "held_out_interval95": bootstrap_interval(ref) if len(ref) > 1 else [r, r]}
        if not name.endswith("velocity_spread"):
            entry["within_goal"] = diff <= STAT_GOAL
        out[name] = entry
    return out


def record_stats(song: SongRecord) -> dict[str, float]:
    """The statistics of a held-out song as the model's tokens write it (`band_score`)."""
    chords = [(float(b), s) for b, s in song.labels.get("chords", [])]
    score = band_score(song)
    return flat_statistics(song_statistics(score, [p.name for p in score.parts], chords=chords or None,
                                           bars=math.ceil(song.labels["bars"])))


def band_score(song: SongRecord) -> Score:
    """A grooves record as the song model reads and writes it: one track a band role (MMA plays a role with several
    tracks, e.g. Chord, Chord-Guitar and Chord-Sus are all chords; merged, a note doubled by two of them once), on
    the token grid (starts on 1/12 beat, binned durations and velocities): encoded and decoded again."""
    meter = tuple(int(x) for x in song.labels["meter"].split("/"))
    tonic, _ = parse_key(song.labels["key"])
    steps = encode_song(band_tracks(song), meter=meter, bars=math.ceil(song.labels["bars"]), tonic=tonic,
                        chords=[(float(b), c) for b, c in song.labels.get("chords", [])])
    decoded = decode_song(steps, meter=meter)
    score = song_score(decoded, programs={}, tempo=song.score.tempo, key=song.score.key, meter=meter)
    score.parts = [p for p in score.parts if p.notes]
    return score


# ------------------------------------------------------------------------------------------- tempo and key


def heard_tempo(audio: np.ndarray, sr: int) -> float:
    """The tempo (BPM) librosa's beat tracker hears in a (channels, n) or (n,) signal."""
    import librosa

    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    tempo, _ = librosa.beat.beat_track(y=mono, sr=sr)
    return float(np.atleast_1d(tempo)[0])


def tempo_verdict(heard: float, asked: float) -> dict[str, Any]:
    """Within the tolerance, or an octave error (twice or half the tempo), or a triple-metre error (3/2, 2/3)."""
    ratio = heard / asked
    octave = any(abs(ratio / f - 1) <= TEMPO_TOLERANCE for f in (2.0, 0.5))
    triple = any(abs(ratio / f - 1) <= TEMPO_TOLERANCE for f in (1.5, 2 / 3))
    return {"asked": asked, "heard": round(heard, 2), "within": abs(ratio - 1) <= TEMPO_TOLERANCE,
            "octave_error": octave, "triple_error": triple}


def pitched_key(score: Score) -> str | None:
    """The key music21 finds in the pitched tracks (drums left out); None when they play no note (a drums-only
    song has no key to find)."""
    pitched = Score(parts=[p for p in score.parts if not p.is_drum], tempo=score.tempo, key=score.key,
                    time_signature=score.time_signature)
    if not any(n.duration > 0 for p in pitched.parts for n in p.notes):
        return None
    return key_name(*music21_key(pitched))


def same_key(found: str | None, asked: str) -> bool:
    return found is not None and parse_key(found) == parse_key(asked)


# ------------------------------------------------------------------------------------------------ prompts


def song_prompts(held_out: dict[str, list[SongRecord]], styles: Sequence[str], meters: Sequence[str],
                 per_style: int, seed: int) -> list[dict[str, Any]]:
    """``per_style`` generation requests per style, each with the key, tempo, length and tracks of a random
    held-out song of that style (its meter when the model writes it): the request that song answers. (The tracks
    matter: asked for all five, the model plays the grooves that carry a pad, whose drums are a third sparser.)"""
    rng = np.random.default_rng(seed)
    prompts = []
    for style in styles:
        records = held_out.get(style)
        if not records:
            continue
        for _ in range(per_style):
            record = records[int(rng.integers(len(records)))]
            labels = record.labels
            prompt = {"style": style, "key": key_name(*parse_key(labels["key"])), "tempo": float(labels["tempo"]),
                      "bars": int(min(max(math.ceil(labels["bars"]), MIN_BARS), MAX_BARS)),
                      "seed": seed * 100_003 + len(prompts), "like": record.record.id,
                      "tracks": [role for role in ROLES if any(notes for r, notes in band_tracks(record) if r == role)]
                      or list(ROLES)}
            if labels["meter"] in meters:
                prompt["meter"] = labels["meter"]
            prompts.append(prompt)
    return prompts


# -------------------------------------------------------------------------------------------------- NLL


def nll_report(writer: Any, data: Path, *, max_events: int, cache_dir: Path | None) -> dict[str, Any]:
    """Test NLL per event of the model and of the best n-gram (order chosen on valid), on the same songs."""
    from tunesmith.evaluate.song_ngram import ngram_baseline
    from tunesmith.train.song import evaluate_nll
    from tunesmith.train.song_data import SongCorpus, read_corpus

    examples, _ = read_corpus(data)
    styles = [s["id"] for s in writer.card["styles"]]
    meters = list(writer.card["meters"])
    files = [f["id"] for f in writer.card.get("style_files") or []]  # a model with style files reads its songs'
    corpora = {split: SongCorpus([e for e in examples if e.split == split], styles=styles, meters=meters,
                                 style_files=files) for split in ("train", "valid", "test")}
    test_songs = corpora["test"].spread(max_events)
    window = int(((writer.card.get("training") or {}).get("config") or {}).get("window") or 512)
    batches = corpora["test"].evaluation_batches(window, max_events=max_events)
    model_nll = evaluate_nll(writer.model, batches)
    digest = Dataset(data).manifest_sha256[:16]
    name = f"song-ngram-{digest}-{max_events}-{'-'.join(m.replace('/', '') for m in meters)}.json"
    cache = cache_dir / name if cache_dir else None
    if cache is not None and cache.is_file():
        baseline = json.loads(cache.read_text())
    else:
        baseline = ngram_baseline([e.steps for e in corpora["train"].examples],
                                  [e.steps for e in corpora["valid"].spread(max_events)],
                                  [e.steps for e in test_songs])
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(baseline, indent=2))
    improvement = 1 - model_nll / baseline["test_nll"]
    return {"model_test_nll": model_nll, "ngram": baseline, "test_songs": len(test_songs),
            "test_events": sum(int((s[:, 1:, 0] > 0).sum()) for s, _, _ in batches), "unit": "nats per event",
            "improvement_over_ngram": improvement, "goal": NLL_GOAL, "passed": improvement >= NLL_GOAL}


# ------------------------------------------------------------------------------------------- the evaluation


def evaluate_song(checkpoint: str | Path, data: str | Path, human: str | Path | None, *,
                  per_style: int = SONGS_PER_STYLE, seed: int = 0, out: Path = Path("out/evaluate"),
                  max_events: int = 60_000, styles: Sequence[str] | None = None, nll: bool = True,
                  temperature: float = 1.0, top_p: float = 0.95, writer: Any = None, reference: bool = True,
                  copy_guard: bool = True) -> dict[str, Any]:
    """Every figure of the song evaluation as one JSON-ready dict (module docstring). ``copy_guard``: the songs
    are written as the service writes them, the sampler steering clear of the training tracks
    (`tunesmith.provenance.song_copy_guard`); False: the model alone."""
    from tunesmith.compose.song import SongWriter
    from tunesmith.generation.originality import song_tracks
    from tunesmith.provenance.song_copy_guard import CopyGuard
    from tunesmith.provenance.song_originality import CHORD_ROLES, GATED_ROLES, TrackIndex
    from tunesmith.symbolic.render import get_renderer

    data = Path(data)
    writer = writer or SongWriter.load(checkpoint)
    cache_dir = out / "cache"
    classifier, features = train_style_classifier(data, cache_dir, seed=seed)
    split = np.array(features["split"])
    family = np.array(features["family"])
    test = split == "test"
    held_predicted = classifier.predict(features["x"][test])
    held_by_family = accuracy_by_family(list(family[test]), held_predicted)

    held_out: dict[str, list[SongRecord]] = defaultdict(list)
    held_stats: dict[str, list[dict[str, float]]] = defaultdict(list)
    for song in iter_songs(data, "test"):
        held_out[song.labels["family"]].append(song)
        held_stats[song.labels["family"]].append(record_stats(song))
    card_styles = [s["id"] for s in writer.card["styles"]]
    wanted = [s for s in (styles or card_styles) if s in card_styles and s in held_out]
    from tunesmith.families.song import offered_meters

    prompts = song_prompts(held_out, wanted, offered_meters(writer.card), per_style, seed)

    renderer = get_renderer(RENDER_SR)
    index = TrackIndex.build(song_tracks(data, "train"))
    generated, tracks, seconds, redraws, struck = [], [], 0.0, 0, 0
    before, writer.copy_guard = writer.copy_guard, functools.partial(CopyGuard, index) if copy_guard else None
    try:
        for prompt in progress(prompts, desc="songs", unit="song"):
            started = time.perf_counter()
            song = writer.generate(**{k: v for k, v in prompt.items() if k != "like"}, temperature=temperature,
                                   top_p=top_p)
            seconds += time.perf_counter() - started
            redraws += song.copy_redraws
            struck += song.copy_notes
            score, bars = song.score, song.params["bars"]
            roles = [p.name for p in score.parts]
            bar_beats = score.bar_beats
            chords = [((c["bar"] - 1) * bar_beats + c["beat"] - 1, c["chord"]) for c in song.chords]
            audio = renderer.render(score, tail=0.5)
            tempo = tempo_verdict(heard_tempo(audio, RENDER_SR), prompt["tempo"])
            found_key = pitched_key(score)
            generated.append({
                "prompt": prompt, "predicted_style": classifier.predict(song_features(score, roles, bars=bars))[0],
                "stats": flat_statistics(song_statistics(score, roles, chords=chords or None, bars=bars)),
                "tempo": tempo, "key_found": found_key, "key_agrees": same_key(found_key, prompt["key"]),
                "meter": song.params["meter"], "bars": bars})
            tracks.extend((p.name, p.notes, bar_beats, bars) for p in score.parts if p.notes)
    finally:
        writer.copy_guard = before

    report: dict[str, Any] = {"checkpoint": str(checkpoint), "data": str(data), "seed": seed,
                              "parameters": writer.card.get("parameters"),
                              "songs": len(generated), "songs_per_style": per_style, "styles": len(wanted),
                              "generation_seconds_per_song": seconds / max(1, len(generated)),
                              "copy_guard": copy_guard, "copy_redraws": redraws, "copy_notes": struck}
    report["style"] = style_report(generated, held_by_family, held_predicted, list(family[test]), classifier,
                                   picture=out / "song-style-confusion.png")
    report["statistics"] = statistics_report(generated, held_stats)
    if reference:
        report["statistics"]["valid_reference"] = valid_reference(data, held_stats, wanted, per_style, seed)
    report["drums"] = drums_report(generated, held_stats, data, human)
    report["tempo"] = tempo_report(generated)
    report["key"] = key_report(generated)
    references = held_out_songs(prompts, held_out) if reference else []  # the real songs the prompts copied
    if reference:
        report["tempo"]["held_out_reference"], report["key"]["held_out_reference"] = reference_report(
            references, renderer)
    report["originality"] = {**originality_summary(index.check_many(tracks)), "gated_roles": list(GATED_ROLES),
                             "onsets_for": list(CHORD_ROLES)}
    report["originality"]["passed"] = report["originality"]["gated_tracks"].get("passed", False)
    if reference:  # the held-out songs against the same training tracks
        real = [(role, notes, song.score.bar_beats, math.ceil(song.labels["bars"]))
                for song in references for role, notes in role_notes(song).items() if notes]
        report["originality"]["held_out_reference"] = {"songs": len(references),
                                                       **originality_summary(index.check_many(real))}
    if nll:
        report["nll"] = nll_report(writer, data, max_events=max_events, cache_dir=cache_dir)
    report["goals"] = goals(report)
    return report


def held_out_songs(prompts: list[dict], held_out: dict[str, list[SongRecord]]) -> list[SongRecord]:
    """The held-out songs the prompts copied (each once, in prompt order)."""
    by_id = {s.record.id: s for songs in held_out.values() for s in songs}
    return [by_id[i] for i in dict.fromkeys(p["like"] for p in prompts)]


def originality_summary(runs: Sequence[dict]) -> dict[str, Any]:
    """The longest shared runs summarized per track role, over the gated (pitched) roles and over all."""
    from tunesmith.provenance.song_originality import GATED_ROLES

    return {"per_track": {role: summarize([r for r in runs if r["role"] == role])
                          for role in sorted({r["role"] for r in runs})},
            "gated_tracks": summarize([r for r in runs if r["role"] in GATED_ROLES]), "all_tracks": summarize(runs)}


def reference_report(songs: list[SongRecord], renderer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same tempo and key checks on the held-out songs the prompts copied (what the instruments themselves
    score on real songs: the goal's ceiling)."""
    tempo, key = [], []
    for song in progress(songs, desc="held-out reference", unit="song"):
        heard = heard_tempo(renderer.render(song.score, tail=0.5), RENDER_SR)
        tempo.append(tempo_verdict(heard, float(song.labels["tempo"])))
        key.append(same_key(pitched_key(song.score), song.labels["key"]))
    n = max(1, len(songs))
    return ({"songs": len(songs), "share_within": sum(v["within"] for v in tempo) / n,
             "octave_error_rate": sum(v["octave_error"] for v in tempo) / n},
            {"songs": len(songs), "share_found": sum(key) / n})


def summarize(runs: Sequence[dict], *, threshold: int = ORIGINALITY_THRESHOLD) -> dict:
    """Median, 99th percentile and maximum of the runs in notes and bars, and the share within the gate."""
    if not runs:
        return {"tracks": 0}
    notes = np.array([r["notes"] for r in runs])
    bars = np.array([r["bars"] for r in runs])
    return {"tracks": len(runs), "notes": {"median": float(np.median(notes)), "p99": float(np.percentile(notes, 99)),
                                           "max": int(notes.max())},
            "bars": {"median": float(np.median(bars)), "p99": float(np.percentile(bars, 99)), "max": int(bars.max())},
            "share_at_most_threshold": float(np.mean(notes <= threshold)), "threshold_notes": threshold,
            "goal": 0.99, "passed": bool(np.mean(notes <= threshold) >= 0.99)}


def style_report(generated: list[dict], held_by_family: dict, held_predicted: list[str], held_truth: list[str],
                 classifier: Any, *, picture: Path | None) -> dict[str, Any]:
    truth = [g["prompt"]["style"] for g in generated]
    predicted = [g["predicted_style"] for g in generated]
    gen_by_family = accuracy_by_family(truth, predicted)
    gen_acc = float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth else 0.0
    held_acc = float(np.mean([t == p for t, p in zip(held_truth, held_predicted, strict=True)]))
    families = {}
    for fam, entry in gen_by_family.items():
        held = held_by_family.get(fam, {"accuracy": 0.0, "songs": 0})
        ratio = entry["accuracy"] / held["accuracy"] if held["accuracy"] else 0.0
        families[fam] = {"generated": entry["accuracy"], "generated_songs": entry["songs"],
                         "held_out": held["accuracy"], "held_out_songs": held["songs"], "ratio": ratio,
                         "passed": ratio >= STYLE_RATIO,
                         "confused_with": sorted({p for t, p in zip(truth, predicted, strict=True)
                                                  if t == fam and p != fam})}
    if picture is not None and generated:
        confusion_picture(truth, predicted, held_truth, held_predicted, picture)
    ratio = gen_acc / held_acc if held_acc else 0.0
    return {"classifier": classifier.name, "classifier_valid_accuracy": classifier.selection,
            "generated_accuracy": gen_acc, "held_out_accuracy": held_acc, "ratio": ratio, "goal_ratio": STYLE_RATIO,
            "passed_overall": ratio >= STYLE_RATIO,
            "families_passed": sum(f["passed"] for f in families.values()), "families": len(families),
            "passed": ratio >= STYLE_RATIO and all(f["passed"] for f in families.values()),
            "by_family": families, "picture": str(picture) if picture is not None and generated else None}


def confusion_picture(truth: list[str], predicted: list[str], held_truth: list[str], held_predicted: list[str],
                      path: Path) -> Path:
    """Two confusion matrices (rows: the true / requested style, columns: the classifier's), held-out and
    generated, each row normalised."""
    from tunesmith.plotting import pyplot, save_figure

    labels = sorted(set(truth) | set(held_truth))
    index = {name: i for i, name in enumerate(labels)}
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(16, 8))
    for ax, (t, p, title) in zip(axes, ((held_truth, held_predicted, "held-out songs"),
                                        (truth, predicted, "generated songs")), strict=True):
        matrix = np.zeros((len(labels), len(labels)))
        for a, b in zip(t, p, strict=True):
            if a in index and b in index:
                matrix[index[a], index[b]] += 1
        matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_title(f"style classifier on {title}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true / requested")
    return save_figure(fig, path, dpi=110)


def statistics_report(generated: list[dict], held_stats: dict[str, list[dict]]) -> dict[str, Any]:
    by_family: dict[str, list[dict]] = defaultdict(list)
    for g in generated:
        by_family[g["prompt"]["style"]].append(g["stats"])
    families = {}
    for fam, items in sorted(by_family.items()):
        compared = compare_sparse(items, held_stats[fam])
        graded = [v for v in compared.values() if "within_goal" in v]
        families[fam] = {"within": sum(v["within_goal"] for v in graded), "graded": len(graded),
                         "passed": all(v["within_goal"] for v in graded), "by_statistic": compared}
    overall = compare_sparse([g["stats"] for g in generated],
                             [s for fam in by_family for s in held_stats[fam]]) if generated else {}
    graded = [v for v in overall.values() if "within_goal" in v]
    within = sum(f["within"] for f in families.values())
    total = sum(f["graded"] for f in families.values())
    return {"goal": STAT_GOAL, "overall": overall,
            "overall_within": sum(v["within_goal"] for v in graded), "overall_graded": len(graded),
            "passed_overall": all(v["within_goal"] for v in graded),
            "family_statistics_within": within, "family_statistics_graded": total,
            "share_within": within / total if total else 0.0,
            "families_passed": sum(f["passed"] for f in families.values()), "families": len(families),
            "passed": bool(families) and all(f["passed"] for f in families.values()), "by_family": families}


def valid_reference(data: Path, held_stats: dict[str, list[dict]], styles: Sequence[str], per_style: int,
                    seed: int) -> dict[str, Any] | None:
    """The statistics goal scored on real songs: ``per_style`` songs of each style's valid split (drawn as the
    prompts are, without repeats where the split has enough) measured as generated songs are, against the same
    held-out (test) songs. What real music of the style reaches when judged with as few songs as the model is."""
    valid: dict[str, list[SongRecord]] = defaultdict(list)
    for song in iter_songs(data, "valid"):
        valid[song.labels["family"]].append(song)
    rng = np.random.default_rng(seed)
    real = [{"prompt": {"style": style}, "stats": record_stats(valid[style][int(i)])}
            for style in styles if valid.get(style)
            for i in rng.choice(len(valid[style]), per_style, replace=len(valid[style]) < per_style)]
    if not real:
        return None
    report = statistics_report(real, held_stats)
    keep = ("overall_within", "overall_graded", "family_statistics_within", "family_statistics_graded", "share_within",
            "families_passed", "families")
    return {"songs": len(real), **{k: report[k] for k in keep},
            "off_overall": sorted(k for k, v in report["overall"].items() if v.get("within_goal") is False)}


def drums_report(generated: list[dict], held_stats: dict[str, list[dict]], data: Path,
                 human: Path | None) -> dict[str, Any]:
    """Each drum statistic of the model's songs, MMA's held-out songs and the human-written drums."""
    def drums(items: list[dict]) -> list[dict]:
        return [{k: s[f"drums.{k}"] for k in DRUM_STATS if f"drums.{k}" in s} for s in items
                if "drums.note_density" in s]

    model = drums([g["stats"] for g in generated])
    mma = drums([s for items in held_stats.values() for s in items])
    out: dict[str, Any] = {"model_songs": len(model), "mma_songs": len(mma)}
    humans: list[dict] = []
    if human is not None and (Path(human) / "dataset.json").is_file():
        from tunesmith.data.corpora.human_drums import iter_drum_patterns

        for pattern in iter_drum_patterns(human):
            stats = flat_statistics(song_statistics(pattern.score, pattern.roles,
                                                    bars=math.ceil(pattern.labels.get("bars") or 0) or None))
            humans.append(stats)
        humans = drums(humans)
        out["human_patterns"] = len(humans)
    else:
        out["human_patterns"] = 0
        out["note"] = f"no human-drums dataset at {human} (tunesmith data build human-drums --out DIR)"
    table = {}
    for name in DRUM_STATS:
        row = {}
        for label, items in (("model", model), ("mma", mma), ("human", humans)):
            values = [s[name] for s in items if name in s]
            row[label] = float(np.mean(values)) if values else None
        if row["human"]:
            row["model_vs_human"] = abs(row["model"] - row["human"]) / abs(row["human"]) if row["model"] is not None \
                else None
            row["mma_vs_human"] = abs(row["mma"] - row["human"]) / abs(row["human"]) if row["mma"] is not None \
                else None
        table[name] = row
    out["by_statistic"] = table
    return out


def tempo_report(generated: list[dict]) -> dict[str, Any]:
    verdicts = [g["tempo"] for g in generated]
    share = float(np.mean([v["within"] for v in verdicts])) if verdicts else 0.0
    by_meter: dict[str, list[bool]] = defaultdict(list)
    for g in generated:
        by_meter[g["meter"]].append(g["tempo"]["within"])
    return {"tolerance": TEMPO_TOLERANCE, "share_within": share, "goal": SHARE_GOAL, "passed": share >= SHARE_GOAL,
            "octave_error_rate": float(np.mean([v["octave_error"] for v in verdicts])) if verdicts else 0.0,
            "triple_error_rate": float(np.mean([v["triple_error"] for v in verdicts])) if verdicts else 0.0,
            "by_meter": {m: float(np.mean(v)) for m, v in sorted(by_meter.items())},
            "songs": [{"style": g["prompt"]["style"], **g["tempo"]} for g in generated]}


def key_report(generated: list[dict]) -> dict[str, Any]:
    share = float(np.mean([g["key_agrees"] for g in generated])) if generated else 0.0
    misses = [{"style": g["prompt"]["style"], "asked": g["prompt"]["key"], "found": g["key_found"]}
              for g in generated if not g["key_agrees"]]
    return {"share_found": share, "goal": SHARE_GOAL, "passed": share >= SHARE_GOAL, "misses": misses}


def goals(report: dict[str, Any]) -> dict[str, bool]:
    out = {"style_recognisable": report["style"]["passed"], "statistics_within_15pct": report["statistics"]["passed"],
           "tempo_within_4pct": report["tempo"]["passed"], "key_found_by_music21": report["key"]["passed"],
           "originality": report["originality"]["passed"]}
    if "nll" in report:
        out["nll_25pct_below_ngram"] = report["nll"]["passed"]
    return out


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The readable table of a song evaluation."""
    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    style, stats, tempo, key, orig = (report[k] for k in ("style", "statistics", "tempo", "key", "originality"))
    lines = [f"song evaluation of {report['checkpoint']}: {report['songs']} songs in {report['styles']} styles "
             f"({report['generation_seconds_per_song']:.2f} s per song)",
             f"[{mark(style['passed'])}] style: classifier ({style['classifier']}) recognises "
             f"{style['generated_accuracy']:.3f} of generated vs {style['held_out_accuracy']:.3f} of held-out songs: "
             f"ratio {style['ratio']:.2f} "
             f"(goal {style['goal_ratio']}); families passing {style['families_passed']}/{style['families']}",
             f"[{mark(stats['passed'])}] statistics within 15 % of held-out: overall "
             f"{stats['overall_within']}/{stats['overall_graded']}; per family {stats['family_statistics_within']}/"
             f"{stats['family_statistics_graded']} ({100 * stats['share_within']:.0f} %), families passing "
             f"{stats['families_passed']}/{stats['families']}"]
    if stats.get("valid_reference"):
        ref = stats["valid_reference"]
        lines.append(f"      real songs ({ref['songs']} of the valid split) scored the same way: overall "
                     f"{ref['overall_within']}/{ref['overall_graded']}; per family {ref['family_statistics_within']}/"
                     f"{ref['family_statistics_graded']} ({100 * ref['share_within']:.0f} %), families passing "
                     f"{ref['families_passed']}/{ref['families']}")
    for name, v in stats["overall"].items():
        flag = "" if "within_goal" not in v else ("ok " if v["within_goal"] else "off")
        lines.append(f"      {flag:3s} {name:32s} generated {v['generated']:8.3f}  held-out {v['held_out']:8.3f}  "
                     f"diff {100 * v['relative_difference']:5.1f} %")
    lines.append(f"  drums (model / MMA / human; {report['drums']['human_patterns']} human patterns):")
    for name, row in report["drums"]["by_statistic"].items():
        cells = "  ".join(f"{label} {row[label]:.3f}" if row[label] is not None else f"{label} -"
                          for label in ("model", "mma", "human"))
        lines.append(f"      {name:22s} {cells}")
    lines.append(f"[{mark(tempo['passed'])}] tempo heard within 4 % in {100 * tempo['share_within']:.0f} % of songs "
                 f"(goal 90 %); octave errors {100 * tempo['octave_error_rate']:.0f} %, 3:2 errors "
                 f"{100 * tempo['triple_error_rate']:.0f} %")
    if "held_out_reference" in tempo:
        ref = tempo["held_out_reference"]
        lines.append(f"      the same tracker on {ref['songs']} held-out MMA songs: {100 * ref['share_within']:.0f} % "
                     f"within 4 %, octave errors {100 * ref['octave_error_rate']:.0f} %")
    lines.append(f"[{mark(key['passed'])}] key found by music21 in {100 * key['share_found']:.0f} % of songs "
                 "(goal 90 %)" + (f"; on the held-out MMA songs {100 * key['held_out_reference']['share_found']:.0f} %"
                                  if "held_out_reference" in key else ""))
    if "nll" in report:
        nll = report["nll"]
        lines.append(f"[{mark(nll['passed'])}] test NLL {nll['model_test_nll']:.3f} nats/event vs "
                     f"{nll['ngram']['order']}-gram {nll['ngram']['test_nll']:.3f}: "
                     f"{100 * nll['improvement_over_ngram']:.1f} % lower (goal 25 %)")
    gated, every = orig.get("gated_tracks", orig["all_tracks"]), orig["all_tracks"]
    if gated.get("tracks"):
        guard = (f"written with the copy guard ({report['copy_redraws']} bars drawn again, "
                 f"{report.get('copy_notes', 0)} notes of them struck)"
                 if report.get("copy_guard") else "the model alone (no copy guard)")
        lines.append(f"[{mark(orig['passed'])}] originality: {100 * gated['share_at_most_threshold']:.1f} % of "
                     f"{gated['tracks']} pitched tracks share at most {gated['threshold_notes']} notes (chords and "
                     f"pad: onsets) with a training track (goal 99 %); with the drums, {every['tracks']} tracks: "
                     f"{100 * every['share_at_most_threshold']:.1f} %; {guard}")
        reference = (orig.get("held_out_reference") or {}).get("per_track", {})
        for role, s in orig["per_track"].items():
            real = f" (held-out MMA songs: {100 * reference[role]['share_at_most_threshold']:.0f} %)" \
                if role in reference else ""
            lines.append(f"      {role:7s} longest shared run: notes median {s['notes']['median']:.0f} max "
                         f"{s['notes']['max']}; bars median {s['bars']['median']:.0f} max {s['bars']['max']}; "
                         f"{100 * s['share_at_most_threshold']:.0f} % within the gate{real}")
    return lines
