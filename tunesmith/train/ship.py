"""Publishing a trained checkpoint as a shipped model: weights/NAME.safetensors + weights/NAME.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tunesmith.checkpoints import load_card
from tunesmith.files import sha256_file

MAX_WEIGHTS_BYTES = 25 * 1024 * 1024


def licence_note(licences: dict[str, int]) -> str:
    """One sentence on what the training data's licences mean for users of the model."""
    if any("non-commercial" in lic for lic in licences):
        return ("trained partly on data licensed for non-commercial use only: commercial use of this model "
                "and its outputs is not cleared")
    if licences and all(lic.startswith("public domain") for lic in licences):
        return "trained only on public-domain data"
    if any("GPL" in lic for lic in licences):
        return ("trained on GPL-licensed data (e.g. MMA's style library, GPL-2+): the weights are offered under "
                "the same licence; see training_data for each source")
    return "see training_data for the licence of each source"


def weights_licence(licences: dict[str, int]) -> str:
    """The licence the shipped weights are offered under: the training data's copyleft, else Apache-2.0."""
    return "GPL-2.0-or-later" if any("GPL-2+" in lic for lic in licences) else "Apache-2.0"


def ship(run: Path, name: str, *, weights_dir: Path, checkpoint: str = "best", version: str = "1.0.0",
         description: str = "", evaluation: dict[str, Any] | None = None, evaluation_command: str = "",
         data_command: str = "") -> Path:
    """Copy a run's checkpoint into ``weights_dir`` under ``name`` with a model card; returns the card path."""
    card = load_card(run, checkpoint)
    source = run / f"{checkpoint}.safetensors"
    if source.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{source} is {source.stat().st_size / 2**20:.1f} MB; shipped weights stay under 25 MB")
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / f"{name}.safetensors"
    shutil.copyfile(source, target)
    licences = card.get("data", {}).get("licences", {})
    if data_command:
        card["data"] = {**card.get("data", {}), "build_command": data_command}
    shipped = {
        "id": name, "version": version, "description": description, **card,
        "weights_sha256": sha256_file(target),
        "licence": {"weights": weights_licence(licences), "training_data": licences, "note": licence_note(licences)},
        "evaluation": {"command": evaluation_command, "figures": evaluation or {}},
    }
    card_path = weights_dir / f"{name}.json"
    card_path.write_text(json.dumps(shipped, indent=2, ensure_ascii=False) + "\n")
    return card_path
