"""`tunesmith generate MODEL ... -o OUT`: make a work with any model and write it to a file.

Locally the work runs through the same pipeline as a server's worker (:mod:`tunesmith.generation.pipeline`):
load, generate, originality check, render, watermark, encode, sign. The model's family (from the registry)
says which options it takes; with ``--server`` any model the server offers works, known here or not.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from tunesmith.cli import generate_audio, remote
from tunesmith.errors import ParameterError

SUFFIXES = {".mid": "mid", ".midi": "mid", ".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "ogg"}
AUDIO_INPUTS = (".wav", ".flac", ".mp3", ".ogg")  # an --input take whose melody the analyzer transcribes
ROLES = ("drums", "bass", "chords", "pad", "lead")  # the tracks of a song (tunesmith.families.song.ROLES)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="compose, continue or harmonize music, or play notes, and write it to a file",
        description="Generate with a model and write MIDI or audio (the format follows -o's extension).",
        epilog='examples:\n  tunesmith generate chorale --key "D minor" --bars 16 -o chorale.mid\n'
               "  tunesmith generate chorale --input melody.mid --harmonize -o harmonized.wav\n"
               "  tunesmith generate folk --key G --meter 6/8 --bars 16 --instrument violin -o jig.wav\n"
               "  tunesmith generate notes --instrument violin --pitch 64 -o note.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="which model: `tunesmith models` lists this install's (chorale, folk, notes, "
                                 "perform ...); with --server, any model the server offers")
    p.add_argument("-o", "--output", type=Path, help="output file: .mid, .wav, .flac, .mp3 or .ogg")
    p.add_argument("--key", help='key and mode, e.g. "D minor", "F# major", "Bb"')
    p.add_argument("--meter", default=None, help="time signature, e.g. 3/4 or 6/8 (default 4/4)")
    p.add_argument("--bars", type=int, help="number of bars to write (default 8; ignored with --harmonize)")
    p.add_argument("--tempo", type=float, help="quarter-note beats per minute")
    p.add_argument("--temperature", type=float, help="sampling temperature (0.05-3, default 1)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass (0.05-1, default 0.95)")
    p.add_argument("--seed", type=int, help="random seed: same seed and options give the same output")
    p.add_argument("--input", type=Path, help="MIDI/MusicXML/ABC file to continue, harmonize, perform or arrange "
                                              "(song: also an audio take of a melody)")
    p.add_argument("--harmonize", action="store_true", help="harmonize the melody of --input (chorale)")
    p.add_argument("--instrument", help="GM instrument, e.g. organ, choir, violin, flute")
    p.add_argument("--prompt", help='free text in English or Chinese, e.g. "a slow chorale in D minor, 8 bars"; '
                                    "options given win over it")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a model parameter without an option of its own (repeatable; a number or text)")
    p.add_argument("--checkpoint", type=Path, help="use a training run directory instead of the shipped weights")
    p.add_argument("--sr", type=int, default=44100, help="sample rate of audio output (default 44100)")
    p.add_argument("--piano-roll", type=Path, help="also draw the piece as a piano-roll PNG here")
    p.add_argument("--stems", type=Path, metavar="DIR", help="also write one WAV per track (stem) into DIR")
    p.add_argument("--midi", type=Path, help="also write the score as MIDI here (besides an audio -o)")
    p.add_argument("--json", action="store_true", help="print what was made as JSON")
    song = p.add_argument_group("song")
    song.add_argument("--style", help='a style family or a blend, e.g. "bossa nova", "bossa_nova+house" (with '
                      "--continue or --regenerate, default: the style the input sounds like)")
    song.add_argument("--length", type=float, help="seconds (with --continue: seconds to add)")
    song.add_argument("--loop", type=int, help="a seamless loop of this many bars")
    song.add_argument("--continue", dest="mode", action="store_const", const="continue",
                      help="continue the song of --input (by --length seconds or --bars)")
    song.add_argument("--regenerate", dest="track", metavar="TRACK",
                      help="write a new TRACK (drums, bass, chords, pad, lead) for the song of --input, keeping "
                           "the others")
    song.add_argument("--restyle", metavar="STYLE", help="re-arrange the song of --input in STYLE, keeping its chords "
                                                         "and melody")
    generate_audio.add_options(p)
    remote.add_server_options(p)
    p.set_defaults(func=run_generate)


def extra_params(pairs: list[str]) -> dict[str, Any]:
    """``--param NAME=VALUE`` pairs -> params (numbers as numbers)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param takes NAME=VALUE, got {pair!r}", field="param")
        value: Any = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        params[name.strip().replace("-", "_")] = value
    return params


def given_params(args: argparse.Namespace) -> dict[str, Any]:
    """The model parameters given on the command line: the options named like a parameter of a registered family
    (options left out are not sent; ``--input`` is the file, read apart) and ``--param`` pairs."""
    from tunesmith import families

    names = {n for f in families.families() if f.params is not None for n in f.params.model_fields} - {"input"}
    params = {name: value for name in names
              if (value := getattr(args, name, None)) is not None and value is not False}
    return params | extra_params(args.param)


def song_modes(args: argparse.Namespace) -> None:
    """--continue, --regenerate TRACK and --restyle STYLE as the song's params mode, track and style."""
    flags = [f for f, given in (("--continue", args.mode == "continue"), ("--regenerate", args.track),
                                ("--restyle", args.restyle)) if given]
    if len(flags) > 1:
        raise ParameterError(f"{' and '.join(flags)} cannot be used together", field="mode")
    if flags and args.input is None:
        raise ParameterError(f"{flags[0]} needs --input SONG (a MIDI, MusicXML or ABC file)", field="input")
    if args.track is not None and args.track not in ROLES:
        raise ParameterError(f"--regenerate: a song has no track {args.track!r}; its tracks are {', '.join(ROLES)}",
                             field="regenerate")
    if args.restyle:
        if args.style is not None and args.style != args.restyle:
            raise ParameterError("--restyle STYLE names the style: drop --style", field="restyle")
        args.style, args.mode = args.restyle, "restyle"


def run_generate(args: argparse.Namespace) -> int:
    if args.output is None and args.export_sfz is None:
        raise ParameterError("-o OUT is required (.mid, .wav, .flac, .mp3 or .ogg)", field="output")
    if args.harmonize and args.input is None:
        raise ParameterError("--harmonize needs --input MELODY", field="harmonize")
    song_modes(args)
    if remote.server_of(args):
        if args.export_sfz is not None:
            raise ParameterError("--export-sfz writes files here: drop --server", field="export_sfz")
        return remote.run_generate(args)
    from tunesmith.generation.catalog import local_entry

    entry = local_entry(args.model, args.checkpoint)
    if args.export_sfz is not None:
        return generate_audio.export_sfz(args, entry)
    return run_local(args, entry)


def run_local(args: argparse.Namespace, entry: Any) -> int:
    """Generate here through the pipeline and write ``-o``; prints a line (or a JSON report)."""
    from tunesmith.config import load_settings
    from tunesmith.families import Resolving
    from tunesmith.families.params import MAX_SEED, check_params
    from tunesmith.generation.catalog import load_catalog
    from tunesmith.generation.originality import OriginalityGate
    from tunesmith.generation.pipeline import AUDIO_INDEX_WAIT, deliver, make_work
    from tunesmith.generation.prompts import prompt_values, read_prompt, reading_lines
    from tunesmith.generation.signing import Stamper, new_work_id, work_payload
    from tunesmith.progress import FractionBar

    family = entry.family
    fmt = SUFFIXES.get(args.output.suffix.lower())
    if fmt is None or (fmt == "mid" and family.audio_only):
        made_of = "audio (.wav, .flac, .mp3 or .ogg)" if family.audio_only else ".mid, .wav, .flac, .mp3 or .ogg"
        raise ParameterError(f"cannot write {args.output.name!r}: {args.model} makes {made_of}", field="output")
    if not 8000 <= args.sr <= 96000:
        raise ParameterError(f"--sr must be 8000..96000 Hz, got {args.sr}", field="sr")
    for name in family.cli_required:
        if getattr(args, name, None) is None:
            raise ParameterError(f"generate {args.model} needs --{name.replace('_', '-')}", field=name)
    given = given_params(args)
    takes = family.params.model_fields if family.params is not None else {}
    for name in given:
        if name not in takes:
            raise ParameterError(f"model {args.model!r} does not take --{name.replace('_', '-')}; it takes "
                                 f"{', '.join('--' + n.replace('_', '-') for n in takes if n != 'input')}",
                                 field=name)
    explicit = check_params(family.params, given, prefix="--", model_id=entry.id).model_dump(exclude_none=True)
    explicit = {k: v for k, v in explicit.items() if k in given}
    source, facts = read_input(args.input)
    settings = load_settings()
    catalog = load_catalog(settings.resolved_weights_dir(), settings.models)
    reading = read_prompt(args.prompt, local_catalog(catalog, entry), model=entry.id) if args.prompt else None
    notes = list(reading.notes) if reading else []
    seed = args.seed if args.seed is not None else (
        family.default_seed if family.default_seed is not None else secrets.randbelow(MAX_SEED + 1))
    params = family.resolve(Resolving(model_id=entry.id, card=entry.card, explicit=explicit,
                                      from_prompt=prompt_values(reading), notes=notes, seed=seed, upload=facts,
                                      max_bars=settings.max_bars, max_input_notes=settings.max_input_notes))
    if family.check_input is not None and source is not None:
        family.check_input(params, source)
    gate = OriginalityGate(settings.data_dir / "originality", threshold=settings.originality_threshold,
                           tries=settings.originality_tries, audio_threshold=settings.audio_originality_threshold)
    work_id = new_work_id()
    logging.getLogger("tunesmith.worker").setLevel(logging.ERROR)  # the summary line reports originality itself
    with FractionBar(f"{entry.id}") as bar:
        made = make_work(entry, params, source=source, gate=gate, sr=args.sr, audio=fmt != "mid" or bool(args.stems),
                         stems=True if args.stems else None,
                         analyzer_card=catalog.analyzer.card_path if catalog.analyzer is not None else None,
                         index_wait=AUDIO_INDEX_WAIT, progress=lambda fraction: bar.update(fraction, "running"))
        bar.update(0.9, "writing")
        provenance = deliver(made, entry, output_files(args, fmt, made), payload=work_payload(work_id),
                             stamper=Stamper(settings.data_dir))
    if args.piano_roll and made.work.score is not None:
        from tunesmith.symbolic.pianoroll import plot_piano_roll

        plot_piano_roll(made.work.score, args.piano_roll)
    seconds = round(made.audio.shape[1] / made.sr, 3) if made.audio is not None else None
    result = {**made.work.result, "seconds_of_audio": seconds}
    interpretation = reading.as_dict() | {"notes": notes} if reading else None
    report = {"output": str(args.output), "model": entry.id, **result, "params": made.work.signed,
              "interpretation": interpretation, "originality": made.originality,
              "provenance": (provenance or {}) | {"work_id": work_id}}
    lines = reading_lines(interpretation) if interpretation else notes
    print(json.dumps(report, indent=2, default=str) if args.json else
          summary(args.output, family, result, made.originality) + "".join(f"\n  {n}" for n in lines))
    return 0


def output_files(args: argparse.Namespace, fmt: str, made: Any) -> dict[str, Path]:
    """Every file a local run writes: -o, --midi and one WAV per stem in --stems."""
    from tunesmith.generation.pipeline import STEM

    files = {fmt: args.output}
    if args.midi is not None:
        if made.work.score is None:
            raise ParameterError(f"--midi: model {args.model!r} makes audio only", field="midi")
        files["mid"] = args.midi
    if args.stems is not None:
        if not made.stems:
            raise ParameterError("--stems: this work has no separate tracks", field="stems")
        args.stems.mkdir(parents=True, exist_ok=True)
        files |= {f"{STEM}{name}": args.stems / f"{name}.wav" for name in made.stems}
    return files


def local_catalog(catalog: Any, entry: Any) -> Any:
    """The catalog the prompt is read against: the local one, with ``entry`` (a run directory's model) in it."""
    from tunesmith.generation.catalog import Catalog

    return Catalog(models={**catalog.models, entry.id: entry}, analyzer=catalog.analyzer)


def read_input(path: Path | None) -> tuple[Any, Any]:
    """(score, what a job knows of it) of ``--input``, or (None, None); an audio take (.wav, .flac, .mp3, .ogg) is
    its melody as the analyzer transcribes it."""
    if path is None:
        return None, None
    from tunesmith.families import InputFacts

    if path.suffix.lower() in AUDIO_INPUTS:
        from tunesmith.analyze.take import melody_of_take

        score = melody_of_take(path)
    else:
        from tunesmith.symbolic.io import read_score

        score = read_score(path)
    score.title = path.name
    numerator, denominator = score.time_signature
    return score, InputFacts(id=path.name, filename=path.name, meter=f"{numerator}/{denominator}",
                             tempo=float(score.tempo), bars=score.n_bars, notes=score.n_notes)


def summary(output: Path, family: Any, result: dict[str, Any], originality: dict[str, Any] | None) -> str:
    """What a local run prints: the file, the family's one line on the work, the model's notes, originality."""
    line = f"wrote {output}: " + (family.summary_line(result) if family.summary_line else family.summary)
    if originality and originality.get("status") != "not_applicable":
        line += f"; {originality_line(originality)}"
    notes = result.get("notes") if isinstance(result.get("notes"), list) else []
    return line + "".join(f"\n  {n}" for n in notes)


def originality_line(report: dict[str, Any]) -> str:
    """One line on an originality report (a sound's nearest training note, or a score's longest shared run)."""
    if report.get("status") != "checked":
        return f"originality unchecked ({report.get('reason')})"
    if "nearest_item" in report:
        verdict = "FLAGGED as a near-copy of" if report["flagged"] else "nearest training note"
        return f"{verdict} {report['nearest_item']} (cosine distance {report['distance']:.3f})"
    verdict = "FLAGGED: " if report["flagged"] else ""
    if report.get("tracks") is not None:
        return f"{verdict}longest runs shared with a training song, per track: {track_runs(report)}"
    return (f"{verdict}longest run shared with a training piece: {report['longest_shared_run']} notes "
            f"({report['closest_piece']}; limit {report['threshold']})")


def track_runs(report: dict[str, Any]) -> str:
    """A song's per-track runs, e.g. "drums 31 notes/4 bars (not gated), bass 6 notes/1 bar, chords 5 onsets/2
    bars, lead 14 notes/3 bars FLAGGED (casio-swing-003); limit 12 notes", a track kept from the input "lead: not
    judged (why)"."""
    items = []
    for t in report["tracks"]:
        if not t["judged"]:
            items.append(f"{t['name']}: not judged ({t['reason']})")
            continue
        notes, bars, unit = t["longest_shared_run"], t["longest_shared_bars"], t.get("unit", "notes")[:-1]
        item = f"{t['name']} {notes} {unit}{'s' * (notes != 1)}/{bars} bar{'s' * (bars != 1)}"
        if t["flagged"]:
            item += f" FLAGGED ({t['closest_piece']})"
        items.append(item + ("" if t["gated"] else " (not gated)"))
    return ", ".join(items) + f"; limit {report['threshold']} notes"
