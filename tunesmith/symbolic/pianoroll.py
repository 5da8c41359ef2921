"""A piano-roll picture of a score: one colour per part, bar lines, pitch names on the axis."""

from __future__ import annotations

from pathlib import Path

from tunesmith.plotting import pyplot, save_figure
from tunesmith.symbolic.score import Score

COLOURS = ("#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#8ac926", "#ff924c", "#4d4d4d")
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def plot_piano_roll(score: Score, path: str | Path, *, title: str | None = None, width: float = 12.0) -> Path:
    """Draw ``score`` as a piano roll PNG at ``path``; returns the path."""
    plt = pyplot()

    notes = score.all_notes()
    low = min((n.pitch for n in notes), default=60) - 2
    high = max((n.pitch for n in notes), default=72) + 2
    fig, ax = plt.subplots(figsize=(width, max(3.0, (high - low) * 0.12)), dpi=100)
    for index, part in enumerate(score.parts):
        colour = COLOURS[index % len(COLOURS)]
        for note in part.notes:
            ax.add_patch(plt.Rectangle((note.start, note.pitch - 0.4), note.duration, 0.8, color=colour, alpha=0.85,
                                       linewidth=0))
        ax.plot([], [], color=colour, linewidth=6, label=part.name or f"part {index + 1}")
    end = max(score.end_beats, score.bar_beats)
    bar = 0.0
    while bar <= end + 1e-9:
        ax.axvline(bar, color="#999999", linewidth=0.6, zorder=0)
        bar += score.bar_beats
    ticks = [p for p in range(low, high + 1) if p % 12 in (0, 7)]
    ax.set_yticks(ticks, [f"{NAMES[p % 12]}{p // 12 - 1}" for p in ticks])
    ax.set_xlim(0, end)
    ax.set_ylim(low, high)
    ax.set_xlabel("beats")
    ax.set_title(title or score.title or "piano roll")
    if score.parts:
        ax.legend(loc="upper right", fontsize=8, ncol=min(4, len(score.parts)))
    return save_figure(fig, path)
