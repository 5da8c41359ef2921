"""`tunesmith evaluate {lm,gan,analyzer,watermark,song,...}`: measure a model and print its figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.errors import DatasetError, ParameterError

TARGETS = ("lm", "gan", "analyzer", "watermark", "drums", "prompts", "grooves", "song")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model (figures as text or JSON)",
                       description="Evaluate a model against held-out data and baselines.")
    p.add_argument("target", choices=TARGETS,
                   help="what to evaluate: lm (chorale, folk), gan (notes), analyzer, watermark, drums (the neural "
                        "kit), prompts (the prompt parser), grooves (the grooves corpus), song")
    p.add_argument("--checkpoint", default=None,
                   help="model name (e.g. chorale, folk) or a training run directory (default: chorale)")
    p.add_argument("--data", type=Path, help="the dataset the model was trained on (default: from its card)")
    p.add_argument("--pieces", type=int, default=100, help="lm: pieces to generate (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="lm: sampling temperature (default 1)")
    p.add_argument("--top-p", type=float, default=0.95, help="lm: nucleus sampling mass (default 0.95)")
    p.add_argument("--chorales", type=Path, default=Path("datasets/chorales"),
                   help="analyzer: chorales dataset rendered for the key and tempo figures")
    p.add_argument("--folk", type=Path, default=Path("datasets/folk"),
                   help="analyzer: folk dataset rendered for the transcription figures")
    p.add_argument("--mixtures", type=Path, help="analyzer: a mixtures dataset; evaluates the mixture tagger "
                   "(--checkpoint, default analyzer-mixtures) on its held-out split instead")
    p.add_argument("--out", type=Path, default=Path("out/evaluate"), help="where pictures go (default out/evaluate)")
    p.add_argument("--items", type=int, default=400, help="gan: test conditions to generate (default 400)")
    p.add_argument("--analyzer", default="analyzer", help="gan: the analyzer that judges (name or run directory)")
    p.add_argument("--clips", type=int, default=200,
                   help="watermark: marked clips, and as many unmarked (default 200; about 10 minutes)")
    p.add_argument("--fit-parallels", action="store_true",
                   help="lm: fit the parallel-fifths penalty to the training split (prints it for the card)")
    p.add_argument("--human", type=Path, default=Path("datasets/human-drums"),
                   help="grooves: the human-drums dataset to compare MMA's drum tracks with")
    p.add_argument("--songs", type=int, default=None,
                   help="song: songs generated per style (default 10: tunesmith.evaluate.song.SONGS_PER_STYLE)")
    p.add_argument("--no-copy-guard", action="store_true",
                   help="song: write the songs with the model alone, without the sampler's copy guard")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.set_defaults(func=run_evaluate)


def model_dataset(checkpoint: str, data: Path | None) -> Path:
    """``data``, or else the dataset named on the checkpoint's card; ParameterError when it is not here."""
    if data is None:
        from tunesmith.checkpoints import dataset_of, load_card, resolve_checkpoint

        directory, name = resolve_checkpoint(checkpoint)
        try:
            return dataset_of(load_card(directory, name))
        except DatasetError as exc:
            raise ParameterError(f"{exc.message}, or pass --data", field="data") from exc
    if not data.is_dir():
        raise ParameterError(f"the model's dataset {data} is not here; build it or pass --data", field="data")
    return data


def run_evaluate(args: argparse.Namespace) -> int:
    if args.target == "grooves":  # MMA's drum tracks beside the human-written drums (Hydrogen, LMMS)
        from tunesmith.evaluate.song_stats import drum_report

        data = args.data or Path("datasets/grooves")
        for name, path in (("--data", data), ("--human", args.human)):
            if not (path / "dataset.json").is_file():
                raise ParameterError(f"{name}: {path} is not a built dataset (tunesmith data build "
                                     f"{'grooves' if name == '--data' else 'human-drums'} --out {path})", field=name)
        report = drum_report(data, args.human)
        print(json.dumps(report, indent=2) if args.json else "\n".join(
            f"{name:22s} MMA {v['mma']:.3f}  human {v['human']:.3f}  "
            f"(relative difference {v['relative_difference']:+.0%})"
            for name, v in report["overall"].items()))
        return 0
    if args.target == "song":
        return run_evaluate_song(args)
    if args.target == "prompts":  # the prompt engine on the labelled set (--data: another JSON-lines set)
        from tunesmith.prompting.evaluate import DEFAULT_SET, evaluate, summary_lines

        report = evaluate(args.data or DEFAULT_SET)
        print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else "\n".join(summary_lines(report)))
        return 0
    if args.target == "analyzer":
        return run_evaluate_analyzer(args)
    if args.target == "gan":
        return run_evaluate_gan(args)
    if args.target == "watermark":
        from tunesmith.evaluate.watermark import run_cli

        return run_cli(args)
    if args.target == "drums":
        return run_evaluate_drums(args)
    if args.target != "lm":
        raise ParameterError(f"evaluating '{args.target}' is not available yet (available: lm)", field="target")
    if args.pieces <= 0:
        raise ParameterError(f"--pieces must be positive, got {args.pieces}", field="pieces")
    from tunesmith.evaluate.lm import evaluate_lm

    checkpoint = args.checkpoint or "chorale"
    data = model_dataset(checkpoint, args.data)
    if args.fit_parallels:
        from tunesmith.evaluate.voice_leading import fit_parallel_penalty

        fit = fit_parallel_penalty(checkpoint, data, pieces=args.pieces, seed=args.seed)
        print(json.dumps(fit, indent=2) if args.json else
              f"parallel_penalty {fit['parallel_penalty']}: sampled rate {fit['rate_at_penalty']:.5f} vs the "
              f"training split's {fit['target_train_rate']:.5f} (put it on the card under sampling)")
        return 0
    report = evaluate_lm(checkpoint, data, pieces=args.pieces, seed=args.seed, temperature=args.temperature,
                         top_p=args.top_p)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    return 0


def summary_lines(report: dict) -> list[str]:
    """A short human-readable summary of an lm evaluation."""
    nll, stats, orig = report["nll"], report["statistics"], report["originality"]
    lines = [f"{report['checkpoint']} ({report['arch']}, {report['parameters']:,} parameters)",
             f"test NLL {nll['model_test_nll']:.4f} nats/token vs {nll['ngram']['order']}-gram "
             f"{nll['ngram']['test_nll']:.4f}: {100 * nll['improvement_over_ngram']:.1f}% lower (goal 25%)",
             f"key found by music21 in {100 * report['key_accuracy']['music21_agrees']:.0f}% of pieces (goal 90%)"]
    for name, s in stats["by_statistic"].items():
        low, high = s["held_out_interval95"]
        lines.append(f"  {name:24s} generated {s['generated']:.4f}  held-out {s['held_out']:.4f} "
                     f"(95% {low:.4f}-{high:.4f})  diff {100 * s['relative_difference']:.1f}%")
    runs = orig["longest_shared_run"]
    lines.append(f"originality: longest shared run median {runs['median']:.0f}, p99 {runs['p99']:.0f}, max "
                 f"{runs['max']} notes; {100 * orig['share_at_most_12']:.1f}% at most 12 (goal 99%)")
    lines.append(f"generation: {report['speed']['seconds_per_piece']:.2f} s per piece")
    return lines


def run_evaluate_song(args: argparse.Namespace) -> int:
    """`evaluate song`: style, statistics, drums, tempo, key, NLL and originality (tunesmith.evaluate.song)."""
    if args.songs is not None and args.songs <= 0:
        raise ParameterError(f"--songs must be positive, got {args.songs}", field="songs")
    from tunesmith.evaluate.song import SONGS_PER_STYLE, evaluate_song, summary_lines

    checkpoint = args.checkpoint or "song"
    data = model_dataset(checkpoint, args.data)
    report = evaluate_song(checkpoint, data, args.human, per_style=args.songs or SONGS_PER_STYLE, seed=args.seed,
                           out=args.out, temperature=args.temperature, top_p=args.top_p,
                           copy_guard=not args.no_copy_guard)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "song-evaluation.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else "\n".join(summary_lines(report)))
    return 0


def run_evaluate_analyzer(args: argparse.Namespace) -> int:
    """`evaluate analyzer`: the CNN on held-out notes, then key, tempo and transcription on rendered pieces."""
    if args.mixtures is not None:
        from tunesmith.evaluate.mixtures import evaluate_mixtures, summary_lines

        report = evaluate_mixtures(args.checkpoint or "analyzer-mixtures", args.mixtures)
        print(json.dumps(report, indent=2) if args.json else "\n".join(summary_lines(report)))
        return 0
    from tunesmith.evaluate.analyzer import evaluate_cnn

    checkpoint = args.checkpoint or "analyzer"
    data = model_dataset(checkpoint, args.data)
    report = {"cnn": evaluate_cnn(checkpoint, data, picture=args.out / "analyzer-family-confusion.png")}
    from tunesmith.evaluate.analyzer_dsp import evaluate_dsp

    for name in ("chorales", "folk"):
        if not getattr(args, name).is_dir():
            raise ParameterError(f"--{name} {getattr(args, name)} is not a dataset directory; build it with "
                                 f"'tunesmith data build {name} --out DIR'", field=name)
    from tunesmith.analyze.analyzer import Analyzer

    report["dsp"] = evaluate_dsp(args.chorales, args.folk, pieces=args.pieces, seed=args.seed,
                                 picture=args.out / "analyzer-transcription.png", analyzer=Analyzer.load(checkpoint))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        cnn = report["cnn"]
        print(f"analyzer CNN on {cnn['clips']} held-out notes: family {cnn['family_acc']:.3f} (goal 0.95), "
              f"instrument {cnn['instrument_acc']:.3f}, pitch {cnn['pitch_acc']:.3f} (goal 0.90), "
              f"drum type {cnn['drum_acc']:.3f}")
        print(json.dumps(report["dsp"], indent=2))
    return 0


def run_evaluate_gan(args: argparse.Namespace) -> int:
    """`evaluate gan`: pitch, family, FAD, NDB and diversity of the neural instrument (tunesmith.evaluate.gan)."""
    if args.items < 8:
        raise ParameterError(f"--items must be at least 8, got {args.items}", field="items")
    from tunesmith.evaluate.gan import evaluate_gan, summary_lines

    report = evaluate_gan(args.checkpoint, args.data, items=args.items, seed=args.seed,
                          analyzer=args.analyzer, pictures=args.out)
    print(json.dumps(report, indent=2) if args.json else "\n".join(summary_lines(report)))
    return 0


def run_evaluate_drums(args: argparse.Namespace) -> int:
    """The independent drum-class classifier: trained on the samples dataset's train kits, scored on held-out kits;
    with --checkpoint (a drums GAN), the generated hits judged by it beside the real held-out ones."""
    data = args.data or Path("datasets/samples")
    if args.checkpoint:
        from tunesmith.evaluate.drums_gan import evaluate_drum_gan

        report = evaluate_drum_gan(args.checkpoint, data, seed=args.seed)
        print(json.dumps(report, indent=2) if args.json else
              f"generated hits recognised {report['generated_accuracy']:.3f} ({report['generated_hits']} hits), "
              f"real held-out hits {report['real_heldout_accuracy']:.3f}: ratio {report['ratio']:.2f} "
              f"(goal {report['goal_ratio']})")
        return 0
    from tunesmith.evaluate.drum_classifier import evaluate_drum_classifier

    report = evaluate_drum_classifier(data, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for split in ("train", "valid", "test"):
        if split in report:
            part = report[split]
            classes = ", ".join(f"{c} {a:.2f}" for c, a in part["per_class"].items())
            print(f"{split}: accuracy {part['accuracy']:.3f} on {part['hits']} hits ({', '.join(part['kits'])}); "
                  f"{classes}")
    return 0
