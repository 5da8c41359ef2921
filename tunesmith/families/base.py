"""What a model family is: one registry entry tells the service, the CLI, the studio and the trainer everything
they need of it, so that none of them names a family.

An entry (:class:`Family`) says which model cards it serves (``card_family``), how a card's model is loaded, its
parameter schema (a pydantic model with ranges and defaults, from which the API's schema, the studio's form,
the CLI's options and ``tunesmith models`` are derived), how a request's parameters are resolved against a card,
how long the audio of a job will be, what a job runs (:attr:`Family.run`: a loaded model, the params and an
optional input score -> a :class:`Work`), the outputs it makes and its training entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from tunesmith.symbolic.score import Note, Score
from tunesmith.symbolic.stream import StemStream

OUTPUTS = frozenset({"audio", "midi", "images"})  # and "stems": a WAV per part, mixed into the audio


@dataclass
class Work:
    """What a family's task made: a score (None for audio-only work) and, unless the pipeline is to render the
    score with FluidSynth, its audio (channels, samples) at ``sr``; what the model reports it made (``result``),
    the params the work is signed with (the seed of the work delivered) and a title for pictures."""

    score: Score | None
    audio: np.ndarray | None
    sr: int
    result: dict[str, Any]
    signed: dict[str, Any]
    title: str
    # plays one part itself (a one-part score, the rate) instead of FluidSynth, or None to leave that part to it
    perform_part: Callable[[Score, int], np.ndarray | None] | None = None
    # the parts being rendered while the work was written (`Family.streams`), for the pipeline to finish
    stream: StemStream | None = None
    # a loop of this many beats: its audio is exactly that long, the ring-out past its end added onto its start,
    # so that played over and over it has no gap (`tunesmith.generation.pipeline.render_stems`); None: not a loop
    loop_beats: float | None = None


@dataclass(frozen=True)
class InputFacts:
    """What a job knows of its input file before it runs: its id, name, meter, tempo, length in bars and notes."""

    id: str
    filename: str
    meter: str
    tempo: float
    bars: int
    notes: int | None = None  # None: not counted


@dataclass
class Resolving:
    """One request being resolved into a job's params: the model (its id and card), the params given explicitly
    (checked against the family's schema), those the prompt gave, notes for the interpretation, the seed, the
    input file (if any) and the server's limits."""

    model_id: str
    card: Mapping[str, Any]
    explicit: dict[str, Any]
    from_prompt: dict[str, Any]
    notes: list[str]
    seed: int
    upload: InputFacts | None = None
    max_bars: int = 64
    max_input_notes: int | None = None  # the most notes an input may have (None: no limit)

    def merged(self, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """The values of ``names`` from the prompt, with the explicit ones winning (each override noted)."""
        out = {name: self.from_prompt[name] for name in names if name in self.from_prompt}
        for name in names:
            value = self.explicit.get(name)
            if value is None:
                continue
            if name in out and out[name] != value:
                self.notes.append(f"{name}: {value} as given in params (the prompt said {out[name]})")
            out[name] = value
        return out


@dataclass(frozen=True)
class Trainer:
    """A family's training entry: ``tunesmith train NAME``. ``add_options(group)`` adds its own options to the
    command's parser; ``run(args)`` trains from the parsed options (data, out, minutes, resume, seed ... and its
    own) and returns the final card."""

    name: str
    help: str
    run: Callable[[Any], dict[str, Any]]
    add_options: Callable[[Any], None] = field(default=lambda group: None)


@dataclass(frozen=True)
class Family:
    """One model family of the registry (see the module docstring)."""

    name: str
    card_family: str
    kind: str  # what GET /v1/models calls its models: composer, instrument, performer, analyzer
    summary: str
    load: Callable[[Any], Any]
    params: type[BaseModel] | None = None  # None: not a generation model (the analyzer)
    run: Callable[[Any, dict[str, Any], Score | None], Work] | None = None
    streams: bool = False  # its run takes ``stream=``: a StemStream to render the parts on while it writes
    resolve: Callable[[Resolving], dict[str, Any]] | None = None
    seconds: Callable[[dict[str, Any], InputFacts | None, Mapping[str, Any]], float] | None = None
    outputs: frozenset[str] = OUTPUTS
    # what the work is checked as: "symbolic" (a score), "tracks" (a song's score, track by track, as
    # ``originality_tracks`` gives them) or "audio"; None: not applicable
    originality: str | None = None
    originality_note: str = ""  # why not, when ``originality`` is None
    # originality "tracks": each part of a work as (name, band role, the notes the model wrote, why the part is not
    # judged or None), e.g. a part kept from the user's input
    originality_tracks: Callable[[Work], list[tuple[str, str | None, list[Note], str | None]]] | None = None
    # originality "tracks": (the loaded model, a copy-guard maker over the training tracks' index, or None) -> None,
    # so that its sampler steers clear of runs the gate would flag (the song family's copy guard); None: the gate
    # only judges
    use_copy_guard: Callable[[Any, Any], None] | None = None
    fixed_id: str | None = None  # a model id of its own, made from the first card of its card family
    # with a fixed id, made of every card of its card family instead: (the joined card, a job's params) -> the id of
    # the card that runs the job (`tunesmith.generation.catalog.ModelEntry.members`)
    member_for: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None] | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None
    card_defaults: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda card: {})
    card_choices: Callable[[Mapping[str, Any]], dict[str, list[str]]] = field(default=lambda card: {})
    prompt_params: tuple[str, ...] = ()  # what a prompt may set for it (its interpretation is shown with the job)
    input_needed: bool = False  # a job plays or arranges an input file (params.input) and cannot run without one
    cli_required: tuple[str, ...] = ()  # options `tunesmith generate` asks for (the API fills them from the card)
    default_seed: int | None = None  # the seed a local run takes when none is given (None: a random one)
    summary_line: Callable[[Mapping[str, Any]], str] | None = None  # one line on what a work is
    mix_setting: Callable[[Any], Any] | None = None  # a part -> its MixSetting in the mix of stems (None: as rendered)
    soundfont: str | None = None  # the GM soundfont its scores render with when installed (symbolic.render's names)
    # the resolved params checked against the input score before a job is queued (a ParameterError naming the field)
    check_input: Callable[[dict[str, Any], Score], None] | None = None
    public_info: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda card: {})  # more of a card
    # for GET /v1/models besides its params (a song model's styles and tracks)
    trainer: Trainer | None = None

    def model_id(self, card_id: str) -> str:
        """The id under which a card of this family is served."""
        return self.fixed_id or card_id

    def description(self, card: Mapping[str, Any]) -> str:
        return str(card.get("description") or (self.describe(card) if self.describe else self.summary))

    @property
    def audio_only(self) -> bool:
        """Its works have no score: no MIDI and no piano roll."""
        return "midi" not in self.outputs
