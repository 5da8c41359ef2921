"""`tunesmith generate notes|perform`: the neural instrument from the command line.

    tunesmith generate notes --instrument violin --pitch 64 --velocity 100 --duration 2 -o note.wav
    tunesmith generate notes --instrument violin --pitch 64 --morph-to flute --morph 0.5 -o halfway.wav
    tunesmith generate notes --instrument cello --export-sfz cello-sfz/
    tunesmith generate perform --input chorale.mid --instrument cello -o performed.wav
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.cli.stamping import LocalWork
from tunesmith.errors import ParameterError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
NEURAL_MODELS = ("notes", "perform")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of `generate notes` and `generate perform` (--instrument, --seed, --input are shared)."""
    group = parser.add_argument_group("notes and perform (the neural instrument)")
    group.add_argument("--pitch", type=int, help="notes: MIDI pitch (for drum kits: the GM drum key)")
    group.add_argument("--velocity", type=int, help="notes: MIDI velocity 1..127 (default 100)")
    group.add_argument("--duration", type=float, help="notes: seconds the key is held (default 1.5; release follows)")
    group.add_argument("--morph-to", help="notes: a second instrument to morph the timbre towards")
    group.add_argument("--morph", type=float, help="notes: how far towards --morph-to, 0..1 (default 0)")
    group.add_argument("--export-sfz", type=Path, metavar="DIR",
                       help="notes: write the instrument as an SFZ sampler instrument (WAVs + .sfz) into DIR")
    group.add_argument("--sfz-step", type=int, default=3, help="notes --export-sfz: semitones between samples")


def _audio_output(args: argparse.Namespace) -> Path:
    if args.output is None:
        raise ParameterError(f"generate {args.model} needs -o OUT.wav (or .flac, .mp3, .ogg)", field="output")
    if args.output.suffix.lower() not in AUDIO_SUFFIXES:
        raise ParameterError(f"cannot write {args.output.name!r}: {args.model} makes audio "
                             "(.wav, .flac, .mp3 or .ogg)", field="output")
    return args.output


def _save(path: Path, y: np.ndarray, sr: int, target_sr: int, work: LocalWork | None = None) -> None:
    from tunesmith.audio import resample, save

    if target_sr != sr:
        y = resample(y, orig_sr=sr, target_sr=target_sr)
    save(path, work.mark(y, target_sr) if work is not None else y, target_sr)


def _sign(work: LocalWork, path: Path, synth: Any, report: dict[str, Any]) -> dict[str, Any]:
    """Embed the signed manifest (the report's parameters) in the written file."""
    params = {k: v for k, v in report.items() if k not in ("output", "seconds_of_audio", "interpretation")}
    return work.sign(path, model_id=str(synth.card.get("id") or "notes"), card=synth.card, params=params)


def _originality(y: np.ndarray, synth: Any) -> dict[str, Any]:
    """The note's nearest training recording in the analyzer's embedding space (index cached in the data dir)."""
    from tunesmith.config import Settings
    from tunesmith.generation.originality import audio_originality

    return audio_originality(y, synth.sr, synth.card, cache_dir=Settings().data_dir / "originality")


def _originality_line(report: dict[str, Any]) -> str:
    if report["status"] != "checked":
        return f"originality unchecked ({report['reason']})"
    verdict = "FLAGGED as a near-copy of" if report["flagged"] else "nearest training note"
    return f"{verdict} {report['nearest_item']} (cosine distance {report['distance']:.3f})"


def run(args: argparse.Namespace) -> int:
    """Run `generate notes` or `generate perform` locally; returns the exit code."""
    if args.instrument is None:
        raise ParameterError(f"generate {args.model} needs --instrument NAME (e.g. violin, cello, flute)",
                             field="instrument")
    if args.sr is not None and not 8000 <= args.sr <= 96000:
        raise ParameterError(f"--sr must be 8000..96000 Hz, got {args.sr}", field="sr")
    if args.model == "perform":
        return _perform(args)
    if args.morph_to is None and args.morph:
        raise ParameterError("--morph needs --morph-to INSTRUMENT", field="morph")
    if args.export_sfz is not None:
        return _export_sfz(args)
    output = _audio_output(args)
    if args.pitch is None:
        raise ParameterError("generate notes needs --pitch MIDI (e.g. 60 for middle C)", field="pitch")
    from tunesmith.compose.notesynth import NoteSynth

    synth = NoteSynth.load(args.checkpoint)
    seed = 0 if args.seed is None else args.seed
    velocity = 100 if args.velocity is None else args.velocity
    morph = 0.0 if args.morph is None else args.morph
    y = synth.note(args.instrument, args.pitch, velocity=velocity, duration=args.duration, seed=seed,
                   morph_to=args.morph_to, morph=morph)
    work = LocalWork.new()  # the output carries the watermark and the signed manifest
    _save(output, y, synth.sr, args.sr, work)
    report = {"output": str(output), "model": "notes", "instrument": synth.instrument(args.instrument).name,
              "pitch": args.pitch, "velocity": velocity, "duration": args.duration, "seed": seed,
              "morph_to": args.morph_to, "morph": morph, "seconds_of_audio": round(len(y) / synth.sr, 3)}
    report["provenance"] = _sign(work, output, synth, report)
    report["originality"] = _originality(y, synth)
    print(json.dumps(report, indent=2) if args.json else
          f"wrote {output}: {report['instrument']} pitch {args.pitch} velocity {velocity}, "
          f"{report['seconds_of_audio']} s, seed {seed}; {_originality_line(report['originality'])}")
    return 0


def _export_sfz(args: argparse.Namespace) -> int:
    from tunesmith.compose.notesynth import NoteSynth

    synth = NoteSynth.load(args.checkpoint)
    sfz = synth.export_sfz(args.export_sfz, args.instrument, step=args.sfz_step,
                           seed=0 if args.seed is None else args.seed)
    samples = sorted((sfz.parent / "samples").glob("*.wav"))
    print(json.dumps({"sfz": str(sfz), "samples": len(samples)}, indent=2) if args.json else
          f"wrote {sfz} with {len(samples)} samples")
    return 0


def _perform(args: argparse.Namespace) -> int:
    if args.input is None:
        raise ParameterError("generate perform needs --input FILE.mid", field="input")
    output = _audio_output(args)
    from tunesmith.compose.notesynth import NoteSynth
    from tunesmith.symbolic.io import read_score

    score = read_score(args.input)
    synth = NoteSynth.load(args.checkpoint)
    seed = 0 if args.seed is None else args.seed
    performance = synth.perform(score, args.instrument, seed=seed)
    work = LocalWork.new()  # the output carries the watermark and the signed manifest
    _save(output, performance.audio, performance.sr, args.sr, work)
    report = {"output": str(output), "model": "notes", "instrument": synth.instrument(args.instrument).name,
              "notes": performance.notes, "seconds_of_audio": round(len(performance.audio) / performance.sr, 3),
              "seed": seed, "interpretation": performance.interpretation}
    report["provenance"] = _sign(work, output, synth, report)
    print(json.dumps(report, indent=2) if args.json else
          f"wrote {output}: {performance.notes} notes played by the neural {report['instrument']}, "
          f"{report['seconds_of_audio']} s" + "".join(f"\n  {n}" for n in performance.interpretation))
    return 0
