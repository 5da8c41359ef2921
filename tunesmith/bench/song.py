"""`tunesmith bench song`: a 2-minute, 5-track song at 120 BPM, generated, rendered, mixed and stemmed as a job is.

Reports, median over seeds: wall-clock and CPU seconds of generation (while it writes, the tracks are rendered bar
by bar on the other core: `tunesmith.symbolic.stream`) and of what rendering is left after it (each track's last
bars, every stem placed, the mix brought to -14 LUFS by the limiter: the pipeline's `render_stems`), the steps
sampled per second, steps per bar, and the representation measurement
that chose compound words: the same songs as a flat REMI+ stream would take ``remi_tokens`` tokens, which at
this model's measured time per step would take ``remi_generate_seconds`` to sample. With the model's training
data on this machine, steps and REMI tokens per bar of its held-out songs too. Goal: generate + render + stems
under 5 s. With the training data here, the songs are written as the service writes them, with the sampler's copy
guard over the training tracks (`tunesmith.provenance.song_copy_guard`; ``copy_guard`` in the figures).

Side by side, unless ``musicgen`` is False: a MusicGen-small-sized model (`tunesmith.bench.musicgen`) generating
5 s of audio; seconds of music per CPU second of both and their ratio.
"""

from __future__ import annotations

import json as json_module
import statistics
import time
from typing import Any

from tunesmith.checkpoints import dataset_of
from tunesmith.compose.song import SongWriter
from tunesmith.errors import DatasetError
from tunesmith.families import get
from tunesmith.families.base import Work
from tunesmith.generation.pipeline import open_stem_stream, render_stems
from tunesmith.symbolic.render import get_renderer, preferred_soundfont
from tunesmith.symbolic.song_tokens import remi_length
from tunesmith.symbolic.stream import StemStream

SECONDS, TEMPO, STYLE = 120.0, 120.0, "pop"
SR = 44100
GOAL_SECONDS = 5.0
MUSICGEN_SECONDS = 5.0


def run(*, checkpoint: str = "song", repeats: int = 3, json: bool = False, musicgen: bool = True,
        **_: object) -> dict[str, Any]:
    """Time ``repeats`` songs (and the MusicGen-sized model); print a table or JSON; return the figures."""
    writer = SongWriter.load(checkpoint)
    writer.copy_guard = _copy_guard(writer.card)  # its index built (or read from the cache) before the clock runs
    family = get("song")
    get_renderer(SR, soundfont=preferred_soundfont(family.soundfont))  # loaded once per process, as in a worker
    stream = open_stem_stream(family, SR)  # its synthesizers made once per process too
    warm = writer.generate(style=STYLE, tempo=TEMPO, bars=8, seed=0, stream=stream)
    render_stems(_work(warm.score, stream), SR, family.mix_setting, soundfont=family.soundfont)
    rows = [_one(writer, family, seed) for seed in range(1, repeats + 1)]
    figures: dict[str, Any] = {"checkpoint": checkpoint, "parameters": writer.card.get("parameters"),
                               "style": STYLE, "tempo": TEMPO, "seconds_of_music": SECONDS, "repeats": repeats,
                               "copy_guard": writer.copy_guard is not None}
    for key in rows[0]:
        figures[key] = statistics.median(r[key] for r in rows)
    figures["total_seconds"] = figures["generate_seconds"] + figures["render_seconds"]
    figures["goal_total_seconds"] = GOAL_SECONDS
    figures["soundfont"] = preferred_soundfont(family.soundfont).name
    figures["music_per_cpu_second"] = SECONDS / figures["total_cpu_seconds"]
    figures |= corpus_figures(writer.card)
    if musicgen:
        from tunesmith.bench.musicgen import build, time_generation

        figures |= time_generation(build(), MUSICGEN_SECONDS)
        figures["speed_ratio_vs_musicgen"] = figures["music_per_cpu_second"] / figures["musicgen_music_per_cpu_second"]
    if json:
        print(json_module.dumps(figures, indent=2))
    else:
        guard = "with the copy guard" if figures["copy_guard"] else "no copy guard (the training data is not here)"
        print(f"a {SECONDS:g} s song, 5 tracks, {TEMPO:g} BPM ({figures['parameters']} parameters, median of "
              f"{repeats}; {guard}):")
        print(f"  generate {figures['generate_seconds']:.3f} s ({figures['generate_cpu_seconds']:.3f} s CPU with the "
              f"stems rendered meanwhile; {figures['sampled_steps']:.0f} steps sampled, "
              f"{figures['copied_steps']:.0f} replayed, {figures['steps_per_second']:.0f} steps/s, "
              f"{figures['steps_per_bar']:.1f} steps a bar)")
        print(f"  render   {figures['render_seconds']:.3f} s after it: 5 stems with {figures['soundfont']} "
              f"({figures['stems_streamed']:.0f} rendered while the song was written), mixed")
        print(f"  total    {figures['total_seconds']:.3f} s (goal under {GOAL_SECONDS:g} s); "
              f"{figures['music_per_cpu_second']:.1f} s of music per CPU second")
        print(f"  as REMI+ {figures['remi_tokens_per_bar']:.1f} tokens a bar: sampling would take "
              f"{figures['remi_generate_seconds']:.2f} s")
        if "corpus_steps_per_bar" in figures:
            print(f"  held-out songs: {figures['corpus_steps_per_bar']:.1f} steps a bar, "
                  f"{figures['corpus_remi_tokens_per_bar']:.1f} REMI+ tokens a bar")
        if "musicgen_cpu_seconds" in figures:
            print(f"  MusicGen-small-sized (random weights): {figures['musicgen_seconds_of_music']:.2f} s of audio in "
                  f"{figures['musicgen_wall_seconds']:.1f} s ({figures['musicgen_x_real_time']:.3f}x real time, "
                  f"{figures['musicgen_music_per_cpu_second']:.3f} s of music per CPU second)")
            print(f"  song model / MusicGen-small, music per CPU second: {figures['speed_ratio_vs_musicgen']:.0f}x")
    return figures


def _one(writer: SongWriter, family: Any, seed: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    stream = open_stem_stream(family, SR)
    song = writer.generate(style=STYLE, tempo=TEMPO, seconds=SECONDS, seed=seed, stream=stream)
    generate, generate_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    work = _work(song.score, stream)
    render_stems(work, SR, family.mix_setting, soundfont=family.soundfont)
    render, render_cpu = time.perf_counter() - started, time.process_time() - cpu
    bars = song.params["bars"]
    per_step = generate / max(song.sampled, 1)
    remi = remi_length(song.tokens)
    return {"generate_seconds": generate, "generate_cpu_seconds": generate_cpu, "render_seconds": render,
            "total_cpu_seconds": generate_cpu + render_cpu, "sampled_steps": song.sampled, "copied_steps": song.copied,
            "steps_per_second": song.sampled / generate, "steps_per_bar": song.steps / bars,
            "remi_tokens_per_bar": remi / bars, "remi_generate_seconds": per_step * remi * song.sampled / song.steps,
            "bars": bars, "stems_streamed": work.result.get("stems_streamed", 0), "copy_redraws": song.copy_redraws}


def _copy_guard(card: dict[str, Any]) -> Any:
    """The copy guard the service's originality gate gives a song job (its index cached under the data
    directory), or None when the card's training data is not on this machine."""
    from tunesmith.config import load_settings
    from tunesmith.generation.originality import OriginalityGate

    settings = load_settings()
    gate = OriginalityGate(settings.data_dir / "originality", threshold=settings.originality_threshold,
                           tries=settings.originality_tries)
    return gate.copy_guard(str(card.get("id") or "song"), card)


def _work(score: Any, stream: StemStream | None = None) -> Work:
    return Work(score=score, audio=None, sr=0, result={}, signed={}, title="bench", stream=stream)


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
