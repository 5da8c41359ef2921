"""`tunesmith generate MODEL ... -o OUT`: make a piece (or, later, a sound) and write it to a file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.cli import generate_audio, remote
from tunesmith.cli.stamping import LocalWork
from tunesmith.errors import ParameterError

SYMBOLIC_SUFFIXES = (".mid", ".midi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="compose, continue or harmonize music and write it to a file",
        description="Generate with a model and write MIDI or audio (the format follows -o's extension).",
        epilog='examples:\n  tunesmith generate chorale --key "D minor" --bars 16 -o chorale.mid\n'
               "  tunesmith generate chorale --input melody.mid --harmonize -o harmonized.wav\n"
               "  tunesmith generate folk --key G --meter 6/8 --bars 16 --instrument violin -o jig.wav",
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
    p.add_argument("--input", type=Path, help="MIDI/MusicXML/ABC file to continue (or to harmonize)")
    p.add_argument("--harmonize", action="store_true", help="harmonize the melody of --input (chorale)")
    p.add_argument("--instrument", help="GM instrument for rendering, e.g. organ, choir, violin, flute")
    p.add_argument("--checkpoint", type=Path, help="use a training run directory instead of the shipped weights")
    p.add_argument("--sr", type=int, default=44100, help="sample rate of audio output (default 44100)")
    p.add_argument("--piano-roll", type=Path, help="also draw the piece as a piano-roll PNG here")
    p.add_argument("--json", action="store_true", help="print what was made as JSON")
    generate_audio.add_options(p)
    remote.add_server_options(p, prompt=True)
    p.set_defaults(func=run_generate)


def parse_meter(text: str | None) -> tuple[int, int]:
    """'6/8' -> (6, 8); ParameterError naming the value otherwise."""
    if text is None:
        return (4, 4)
    try:
        numerator, denominator = (int(x) for x in text.split("/"))
    except ValueError:
        raise ParameterError(f"meter must look like 3/4 or 6/8, got {text!r}", field="meter") from None
    return numerator, denominator


def run_generate(args: argparse.Namespace) -> int:
    if args.output is None and not (args.model == "notes" and args.export_sfz is not None):
        raise ParameterError("-o OUT is required (.mid, .wav, .flac, .mp3 or .ogg)", field="output")
    if remote.server_of(args):
        if args.export_sfz is not None:
            raise ParameterError("--export-sfz writes files here: drop --server", field="export_sfz")
        return remote.run_generate(args)
    from tunesmith.generation.catalog import local_entry

    family = local_entry(args.model, args.checkpoint).family
    if family.name in ("instrument", "performer"):
        return generate_audio.run(args)
    suffix = args.output.suffix.lower()
    if suffix not in SYMBOLIC_SUFFIXES + AUDIO_SUFFIXES:
        raise ParameterError(f"cannot write {args.output.name!r}: use .mid, .wav, .flac, .mp3 or .ogg", field="output")
    if args.harmonize and args.input is None:
        raise ParameterError("--harmonize needs --input MELODY", field="harmonize")
    from tunesmith.compose.composer import Composer
    from tunesmith.symbolic.io import read_score, write_midi

    composer = Composer.load(args.checkpoint or args.model)
    melody = prime = None
    if args.input is not None:
        source = read_score(args.input)
        if args.harmonize:
            pitched = [p for p in source.parts if not p.is_drum and p.notes]
            melody = pitched[0] if pitched else None
            if melody is None:
                raise ParameterError(f"{args.input} has no melody to harmonize", field="input")
        else:
            prime = source
    meter = parse_meter(args.meter) if args.meter or melody is None else source.time_signature
    result = composer.generate(key=args.key, bars=args.bars, time_signature=meter, tempo=args.tempo,
                               temperature=1.0 if args.temperature is None else args.temperature,
                               top_p=0.95 if args.top_p is None else args.top_p, seed=args.seed, melody=melody,
                               prime=prime, instrument=args.instrument)
    work = LocalWork.new()  # every output carries the signed manifest; audio also the watermark
    if suffix in SYMBOLIC_SUFFIXES:
        write_midi(result.score, args.output)
    else:
        from tunesmith.audio import save
        from tunesmith.symbolic.render import get_renderer

        save(args.output, work.mark(get_renderer(args.sr).render(result.score), args.sr), args.sr)
    provenance = work.sign(args.output, model_id=str(composer.card.get("id") or args.model), card=composer.card,
                           params=result.params)
    if args.piano_roll:
        from tunesmith.symbolic.pianoroll import plot_piano_roll

        plot_piano_roll(result.score, args.piano_roll)
    report = {"output": str(args.output), "model": result.model, **result.params,
              "notes": result.score.n_notes, "seconds": round(result.seconds, 3),
              "interpretation": result.interpretation, "provenance": provenance}
    print(json.dumps(report, indent=2) if args.json else
          f"wrote {args.output}: {result.params['mode']} {result.params['key']}, {result.params['bars']} bars, "
          f"seed {result.params['seed']}" + "".join(f"\n  {n}" for n in result.interpretation))
    return 0
