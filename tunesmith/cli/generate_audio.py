"""Options of `tunesmith generate` for the neural instrument (`notes`, `perform`), and its SFZ export:

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

from tunesmith.errors import ParameterError


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


def export_sfz(args: argparse.Namespace, entry: Any) -> int:
    """`generate MODEL --export-sfz DIR`: the model's instrument as an SFZ sampler instrument."""
    from tunesmith.generation.pipeline import load_model

    if args.instrument is None:
        raise ParameterError("--export-sfz needs --instrument NAME", field="instrument")
    model = load_model(entry)
    if not hasattr(model, "export_sfz"):
        raise ParameterError(f"model {entry.id!r} cannot be exported as an SFZ instrument", field="export_sfz")
    sfz = model.export_sfz(args.export_sfz, args.instrument, step=args.sfz_step,
                           seed=0 if args.seed is None else args.seed)
    samples = sorted((sfz.parent / "samples").glob("*.wav"))
    print(json.dumps({"sfz": str(sfz), "samples": len(samples)}, indent=2) if args.json else
          f"wrote {sfz} with {len(samples)} samples")
    return 0
