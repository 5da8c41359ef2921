"""`python -m tunesmith.train.song_card CARD DATA`: fill in what a song model's card reads off its training data and
an older training run did not write: each style file's bands (`tunesmith.train.song.with_bands`, which
`SongWriter` weighs when it picks a file for the tracks asked). Only from the very build the card was trained on
(its manifest hash must match); the weights are not touched. The card records the command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError

COMMAND = "python -m tunesmith.train.song_card {card} {data}"


def refresh_bands(card_path: Path, data: Path) -> dict[str, Any]:
    """The card at ``card_path`` with its style files' bands read from ``data`` (written back; returned)."""
    from tunesmith.train.song import with_bands
    from tunesmith.train.song_data import read_corpus

    card = json.loads(card_path.read_text())
    expected = (card.get("data") or {}).get("manifest_sha256")
    found = Dataset(data).manifest_sha256
    if not expected or found != expected:
        raise DatasetError(f"{data} is not the build {card_path} was trained on (manifest {found[:12]}, the card "
                           f"says {str(expected)[:12]})")
    _, stats = read_corpus(data)
    card["style_files"] = with_bands(card.get("style_files") or [], stats)
    updates = [u for u in card.get("card_updates") or [] if u.get("what") != "style_files bands"]
    card["card_updates"] = [*updates, {"what": "style_files bands",
                                       "command": COMMAND.format(card=card_path, data=data)}]
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunesmith.train.song_card", description=__doc__)
    parser.add_argument("card", type=Path, help="the song card (JSON), e.g. weights/song.json")
    parser.add_argument("data", type=Path, help="the grooves build it was trained on")
    args = parser.parse_args(argv)
    try:
        card = refresh_bands(args.card, args.data)
    except (DatasetError, OSError, ValueError) as error:
        print(f"song_card: {error}", file=sys.stderr)
        return 2
    print(f"{args.card}: bands of {len(card['style_files'])} style files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
