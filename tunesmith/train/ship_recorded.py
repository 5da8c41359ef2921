"""Shipping the two neural instruments learned from real recordings (issue 16) as weights/drums and weights/piano:
:func:`tunesmith.train.ship.ship` plus what their cards need beyond it (the drum kit's card family and licences per
kit, the Salamander credit, the commands that reproduce them).

    python -m tunesmith.train.ship_recorded drums runs/drums-gan drums-evaluation.json datasets/samples [latest 1.1.0]
    python -m tunesmith.train.ship_recorded piano runs/piano-gan piano-evaluation.json datasets/samples [best 1.1.0]
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tunesmith.data.dataset import Dataset
from tunesmith.train.ship import ship, weights_licence

CREDIT = "Salamander Grand Piano, Alexander Holm, CC-BY 3.0"
SHIP_COMMAND = "python -m tunesmith.train.ship_recorded {name} RUN EVALUATION.json datasets/samples"


def run_commands(card: dict[str, Any]) -> list[str]:
    """The training commands of a card's runs as a user types them (without the virtualenv's path), written back
    to the card's runs so that it names no path of the machine that trained it."""
    for r in card["training"]["runs"]:
        r["command"] = re.sub(r"^\S*/tunesmith ", "tunesmith ", r["command"])
    return [r["command"] for r in card["training"]["runs"]]


def ship_drums(run: Path, evaluation_file: Path, data: Path, weights: Path = Path("weights"), *,
               checkpoint: str = "best", version: str = "1.0.0") -> Path:
    """weights/drums.json (card family "drums", licences per kit) and its weights from a drums GAN run's
    ``checkpoint`` (best or latest)."""
    evaluation = json.loads(evaluation_file.read_text())
    card_path = ship(run, "drums", weights_dir=weights, version=version, checkpoint=checkpoint,
                     description="neural drum kit learned from recorded kits (Hydrogen, Sonic Pi, LMMS): one hit "
                                 "by drum sound, kit and velocity, kits morph; performs drum tracks humanized",
                     evaluation=evaluation,
                     evaluation_command="tunesmith evaluate drums --checkpoint RUN --data datasets/samples; "
                                        "python -c 'from tunesmith.evaluate.drums_gan import "
                                        "evaluate_drum_distribution; "
                                        "print(evaluate_drum_distribution(\"RUN\", \"datasets/samples\"))'; "
                                        "tunesmith bench gan --checkpoint RUN",
                     data_command="tunesmith data build samples --out datasets/samples")
    card = json.loads(card_path.read_text())
    ds = Dataset(data)
    kits = {i["kit"] for i in card["instruments"]}
    per_kit = Counter((r.labels["kit"], r.licence) for r in ds.split("train")
                      if r.labels.get("kind") == "drum_hit" and r.labels.get("kit") in kits and r.labels.get("gm_note"))
    card["family"] = "drums"
    card["licence"]["training_data"] = {licence: sum(n for (_, lic), n in per_kit.items() if lic == licence)
                                        for licence in sorted({lic for _, lic in per_kit})}
    card["licence"]["per_kit"] = {kit: {"licence": lic, "hits": n} for (kit, lic), n in sorted(per_kit.items())}
    card["data"]["licences"] = dict(card["licence"]["training_data"])  # the kits' hits, not the whole dataset's
    card["licence"]["note"] = ("weights trained on drum kits under GPL-2/GPL-2+, CC-BY-SA 3.0, CC-BY 3.0 and CC0 "
                               "(per_kit names each kit's author and licence): credit the CC-BY and CC-BY-SA kits' "
                               "authors; whether the GPL and share-alike terms reach the weights and their sounds "
                               "is not settled here")
    card["reproduce"] = [
        "tunesmith data build samples --out datasets/samples",
        *run_commands(card),
        SHIP_COMMAND.format(name="drums") + f" {checkpoint} {version}",
    ]
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card_path


def ship_piano(run: Path, evaluation_file: Path, data: Path, weights: Path = Path("weights"), *,
               checkpoint: str = "best", version: str = "1.0.0") -> Path:
    """weights/piano.json (with the Salamander credit) and its weights from a piano GAN run's ``checkpoint``."""
    del data  # the card names its dataset already
    evaluation = json.loads(evaluation_file.read_text())
    card_path = ship(run, "piano", weights_dir=weights, version=version, checkpoint=checkpoint,
                     description="neural grand piano learned from the Salamander Grand Piano recordings (every key "
                                 "A0-C8, any velocity and length)",
                     evaluation=evaluation,
                     evaluation_command="python -c 'from tunesmith.evaluate.piano_gan import evaluate_piano; "
                                        "print(evaluate_piano(\"RUN\", \"datasets/samples\"))'; "
                                        "tunesmith bench gan --checkpoint RUN",
                     data_command="tunesmith data build samples --out datasets/samples")
    card = json.loads(card_path.read_text())
    card["credit"] = CREDIT
    card["licence"]["credit"] = CREDIT
    card["licence"]["training_data"] = {k: v for k, v in card["licence"]["training_data"].items() if "Salamander" in k}
    card["licence"]["weights"] = weights_licence(card["licence"]["training_data"])  # the kits' GPL is not in it
    card["data"]["licences"] = dict(card["licence"]["training_data"])
    card["licence"]["note"] = f"trained only on the Salamander notes: credit \"{CREDIT}\" when using the model or its "\
        "sounds"
    card["reproduce"] = [
        "tunesmith data build samples --out datasets/samples",
        *run_commands(card),
        SHIP_COMMAND.format(name="piano") + f" {checkpoint} {version}",
    ]
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card_path


if __name__ == "__main__":
    name, run_dir, evaluation_path, data_dir = sys.argv[1:5]
    options = dict(zip(("checkpoint", "version"), sys.argv[5:7], strict=False))  # optionally: best|latest VERSION
    ship_one = ship_drums if name == "drums" else ship_piano
    print(ship_one(Path(run_dir), Path(evaluation_path), Path(data_dir), **options))
