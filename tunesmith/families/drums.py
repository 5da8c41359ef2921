"""The neural drum kit (cards with ``family == "drums"``, the shipped `drums`): one hit by drum sound, kit and
velocity (kits morph), or, given an input file, its drum track performed with humanized velocity and timing
(:class:`tunesmith.compose.drumkit.DrumKit`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tunesmith.errors import ParameterError
from tunesmith.families.base import Family, InputFacts, Resolving, Work
from tunesmith.families.instrument import perform_seconds
from tunesmith.families.params import UploadId
from tunesmith.symbolic.instruments import find_instrument, instrument_table
from tunesmith.symbolic.score import Score

HIT_SECONDS = 2.0  # a hit rings out at most the training window
# tunesmith.compose.drumkit.DRUM_SOUNDS (kept here so that resolving a request loads no model code)
DrumSound = Literal["kick", "snare", "rimshot", "side_stick", "clap", "hat_closed", "hat_pedal", "hat_open",
                    "tom_low", "tom", "tom_mid", "tom_high", "crash", "cymbal", "ride", "ride_bell", "splash",
                    "tambourine", "cowbell", "bongo", "conga", "shaker", "whistle", "claves", "woodblock",
                    "triangle", "percussion"]
ORIGINALITY = ("a drum hit or a drum track made of hits of the kits' own sounds: hits of a kit are meant to "
               "sound like that recorded kit")


class DrumParams(BaseModel):
    """One hit of the neural drum kit, or (with ``input``) the drum track of a score."""

    model_config = ConfigDict(extra="forbid")

    drum: DrumSound | None = Field(None, description="the drum sound of a hit (ignored with input)",
                                   json_schema_extra={"default": "snare"})
    kit: str | None = Field(None, max_length=60, description="a learned kit of the model")
    velocity: int | None = Field(None, ge=1, le=127, description="MIDI velocity of a hit",
                                 json_schema_extra={"default": 100})
    morph_to: str | None = Field(None, max_length=60, description="a second kit to morph the sound towards")
    morph: float | None = Field(None, ge=0.0, le=1.0, description="how far towards morph_to",
                                json_schema_extra={"default": 0.0})
    input: UploadId | None = Field(None, description="id of an uploaded MIDI file whose drum track (channel 10) "
                                   "the kit performs")
    humanize: float | None = Field(None, ge=0.0, le=1.0, description="random velocity and timing variation of a "
                                   "performed drum track (0: as written)", json_schema_extra={"default": 0.5})


def kits(card: Mapping[str, Any]) -> list[str]:
    return [i["name"] for i in card.get("instruments", [])]


def _kit(card: Mapping[str, Any], name: str, field: str) -> str:
    table = instrument_table(card.get("instruments", []))
    return find_instrument(table, name, field=field).name


def resolve(request: Resolving) -> dict[str, Any]:
    """The params a drums job runs with (checked against the card's kits, not loading the model)."""
    explicit, card = request.explicit, request.card
    kit = _kit(card, explicit.get("kit") or kits(card)[0], "params.kit")
    morph_to = explicit.get("morph_to")
    morph = float(explicit.get("morph") or 0.0)
    if morph and morph_to is None:
        raise ParameterError("morph needs morph_to: the kit to morph towards", field="params.morph")
    if morph_to is not None:
        morph_to = _kit(card, morph_to, "params.morph_to")
    humanize = explicit.get("humanize")
    return {"drum": explicit.get("drum") or "snare", "kit": kit, "velocity": int(explicit.get("velocity") or 100),
            "morph_to": morph_to, "morph": morph, "input": request.upload.id if request.upload else None,
            "humanize": float(humanize if humanize is not None else 0.5), "seed": request.seed}


def seconds(params: dict[str, Any], upload: InputFacts | None, card: Mapping[str, Any]) -> float:
    return perform_seconds(params, upload, card) if upload is not None else HIT_SECONDS


def run(kit: Any, params: dict[str, Any], source: Score | None) -> Work:
    """A hit, or the input's drum track performed (mono, at the kit's rate)."""
    seed = int(params.get("seed") or 0)
    signed = {k: v for k, v in params.items() if k != "model"}
    if source is None:
        y = kit.hit(params["drum"], kit=params["kit"], velocity=params["velocity"], seed=seed,
                    morph_to=params.get("morph_to"), morph=params.get("morph") or 0.0)
        result = {k: params.get(k) for k in ("drum", "kit", "velocity", "morph_to", "morph", "seed")}
        return Work(score=None, audio=np.asarray(y, dtype=np.float32)[None, :], sr=kit.sr, result=result,
                    signed=signed, title=f"{params.get('model') or 'drums'}: {params['drum']} ({params['kit']})")
    performance = kit.perform(source, kit=params["kit"], seed=seed, humanize=params["humanize"])
    result = {"kit": params["kit"], "seed": seed, "humanize": params["humanize"], "n_hits": len(performance.hits),
              "velocities_written": [v for _, _, v in performance.written[:64]],
              "velocities_played": [v for _, _, v in performance.hits[:64]], "notes": performance.interpretation}
    return Work(score=None, audio=np.asarray(performance.audio, dtype=np.float32)[None, :], sr=performance.sr,
                result=result, signed=signed, title=f"{params.get('model') or 'drums'}: drum track ({params['kit']})")


def load(card_path: Any) -> Any:
    from tunesmith.compose.drumkit import DrumKit

    return DrumKit.load(card_path)


def summary_line(r: Mapping[str, Any]) -> str:
    if r.get("n_hits") is not None:
        return f"{r.get('n_hits')} drum hits on {r.get('kit')} (humanize {r.get('humanize')}), " \
               f"{r.get('seconds_of_audio')} s"
    return f"{r.get('drum')} on {r.get('kit')} velocity {r.get('velocity')}, {r.get('seconds_of_audio')} s"


DRUMS = Family(
    name="drums", card_family="drums", kind="instrument",
    summary="the neural drum kit learned from recorded kits: one hit (drum sound, kit, velocity; kits morph) or "
            "the drum track of an uploaded MIDI file, humanized",
    load=load, params=DrumParams, run=run, resolve=resolve, seconds=seconds,
    outputs=frozenset({"audio", "images"}), originality=None, originality_note=ORIGINALITY,
    card_choices=lambda card: {"kit": sorted(kits(card)), "morph_to": sorted(kits(card))},
    card_defaults=lambda card: {"kit": kits(card)[0] if kits(card) else None},
    default_seed=0, summary_line=summary_line,
)
