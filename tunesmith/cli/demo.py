"""`tunesmith demo`: build a small corpus and render one bundled chorale to audio (what `make run` shows)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_CHORALE = "bach/bwv66.6"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a small corpus and render a chorale to OUT/demo.wav",
                       description="Build a small chorale corpus and render one bundled chorale with FluidSynth.")
    p.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    p.add_argument("--sr", type=int, default=44100, help="sample rate of the rendered audio")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from music21 import corpus

    from tunesmith.audio import save
    from tunesmith.data.build import build
    from tunesmith.symbolic.instruments import gm_program
    from tunesmith.symbolic.io import score_from_music21, write_midi
    from tunesmith.symbolic.render import get_renderer

    out: Path = args.out
    summary = build("chorales", None, out / "datasets" / "chorales-demo", limit=8)
    print("\n".join(summary.lines()))
    score = score_from_music21(corpus.parse(DEMO_CHORALE))
    for part in score.parts:
        part.program = gm_program("church_organ")
    audio = get_renderer(args.sr).render(score)
    wav = save(out / "demo.wav", audio, args.sr)
    midi = write_midi(score, out / "demo.mid")
    print(f"rendered {DEMO_CHORALE} ({score.n_bars} bars, key {score.key}) to {wav} "
          f"({audio.shape[-1] / args.sr:.1f} s) and {midi}")
    return 0
