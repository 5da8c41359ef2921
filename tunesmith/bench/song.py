"""`tunesmith bench song`: a 2-minute, 5-track song at 120 BPM, generated and rendered (the mix and each stem).

Reports, median over seeds: wall-clock and CPU seconds of generation and of FluidSynth rendering (the mix, then
every track alone as a stem), the steps sampled per second, steps per bar, and the representation measurement
that chose compound words: the same songs as a flat REMI+ stream would take ``remi_tokens`` tokens, which at
this model's measured time per step would take ``remi_generate_seconds`` to sample. With the model's training
data on this machine, steps and REMI tokens per bar of its held-out songs too. Goal: generate + render + stems
under 5 s.
"""

from __future__ import annotations

import json as json_module
import statistics
import time
from typing import Any

from tunesmith.checkpoints import dataset_of
from tunesmith.compose.song import SongWriter
from tunesmith.errors import DatasetError
from tunesmith.symbolic.render import get_renderer
from tunesmith.symbolic.score import Score
from tunesmith.symbolic.song_tokens import remi_length

SECONDS, TEMPO, STYLE = 120.0, 120.0, "pop"
SR = 44100
GOAL_SECONDS = 5.0


def run(*, checkpoint: str = "song", repeats: int = 3, json: bool = False, **_: object) -> dict[str, Any]:
    """Time ``repeats`` songs; print a table or JSON; return the figures."""
    writer = SongWriter.load(checkpoint)
    renderer = get_renderer(SR)
    writer.generate(style=STYLE, tempo=TEMPO, bars=8, seed=0)  # warm-up
    rows = [_one(writer, renderer, seed) for seed in range(1, repeats + 1)]
    figures: dict[str, Any] = {"checkpoint": checkpoint, "parameters": writer.card.get("parameters"),
                               "style": STYLE, "tempo": TEMPO, "seconds_of_music": SECONDS, "repeats": repeats}
    for key in rows[0]:
        figures[key] = statistics.median(r[key] for r in rows)
    figures["total_seconds"] = figures["generate_seconds"] + figures["render_seconds"] + figures["stems_seconds"]
    figures["goal_total_seconds"] = GOAL_SECONDS
    figures |= corpus_figures(writer.card)
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        print(f"a {SECONDS:g} s song, 5 tracks, {TEMPO:g} BPM ({figures['parameters']} parameters, median of "
              f"{repeats}):")
        print(f"  generate {figures['generate_seconds']:.3f} s ({figures['generate_cpu_seconds']:.3f} s CPU; "
              f"{figures['sampled_steps']:.0f} steps sampled, {figures['copied_steps']:.0f} replayed, "
              f"{figures['steps_per_second']:.0f} steps/s, {figures['steps_per_bar']:.1f} steps a bar)")
        print(f"  render   {figures['render_seconds']:.3f} s mix + {figures['stems_seconds']:.3f} s stems")
        print(f"  total    {figures['total_seconds']:.3f} s (goal under {GOAL_SECONDS:g} s)")
        print(f"  as REMI+ {figures['remi_tokens_per_bar']:.1f} tokens a bar: sampling would take "
              f"{figures['remi_generate_seconds']:.2f} s")
        if "corpus_steps_per_bar" in figures:
            print(f"  held-out songs: {figures['corpus_steps_per_bar']:.1f} steps a bar, "
                  f"{figures['corpus_remi_tokens_per_bar']:.1f} REMI+ tokens a bar")
    return figures


def _one(writer: SongWriter, renderer: Any, seed: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    song = writer.generate(style=STYLE, tempo=TEMPO, seconds=SECONDS, seed=seed)
    generate, generate_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    renderer.render(song.score)
    render = time.perf_counter() - started
    started = time.perf_counter()
    for part in song.score.parts:
        renderer.render(Score(parts=[part], tempo=song.score.tempo, key=song.score.key,
                              time_signature=song.score.time_signature))
    stems = time.perf_counter() - started
    bars = song.params["bars"]
    per_step = generate / max(song.sampled, 1)
    remi = remi_length(song.tokens)
    return {"generate_seconds": generate, "generate_cpu_seconds": generate_cpu, "render_seconds": render,
            "stems_seconds": stems, "sampled_steps": song.sampled, "copied_steps": song.copied,
            "steps_per_second": song.sampled / generate, "steps_per_bar": song.steps / bars,
            "remi_tokens_per_bar": remi / bars, "remi_generate_seconds": per_step * remi * song.sampled / song.steps,
            "bars": bars}


def corpus_figures(card: dict[str, Any]) -> dict[str, float]:
    """Steps and REMI+ tokens per bar of the held-out songs of the card's training data, if it is here."""
    try:
        data = dataset_of(card)
    except DatasetError:
        return {}
    from tunesmith.data.corpora.grooves import iter_songs
    from tunesmith.train.song_data import EnergyTable, encode_record

    steps = remi = bars = 0
    for song in iter_songs(data, "valid"):
        example = encode_record(song, EnergyTable({}))
        steps += len(example.steps)
        remi += remi_length(example.steps)
        bars += int(song.labels["bars"])
    if not bars:
        return {}
    return {"corpus_steps_per_bar": steps / bars, "corpus_remi_tokens_per_bar": remi / bars}
