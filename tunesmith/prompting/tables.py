"""The vocabulary rendered as Markdown tables for docs/prompts.md.

``python -m tunesmith.prompting.tables --write docs/prompts.md`` replaces the part of the doc between the markers
``<!-- vocabulary:begin -->`` and ``<!-- vocabulary:end -->``; tests/test_prompting.py checks that the doc shows the
table as it is, so an edit of vocabulary.toml is followed by this command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunesmith.prompting.vocabulary import Entry, Vocabulary, load_vocabulary

BEGIN, END = "<!-- vocabulary:begin -->", "<!-- vocabulary:end -->"
_TITLES = {"style": "Style families", "form": "Forms (one-melody music)", "mood": "Moods", "scene": "Scenes",
           "ensemble": "Ensembles", "topic": "Not music (topics that set nothing)"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _params(entry: Entry) -> str:
    parts = []
    if entry.tempo:
        parts.append(f"tempo {entry.tempo[0]:g}-{entry.tempo[1]:g}" + (" (doubled)" if entry.doubled else ""))
    if entry.mode:
        parts.append(entry.mode)
    if entry.meter:
        parts.append(entry.meter)
    if entry.energy is not None:
        parts.append(f"energy {entry.energy:g}")
    if entry.density is not None:
        parts.append(f"density {entry.density:g}")
    if entry.styles:
        parts.append("styles " + "/".join(entry.styles))
    if entry.tracks:
        parts.append("tracks " + "+".join(entry.tracks))
    if entry.instruments:
        parts.append(", ".join(f"{t}: {n}" for t, n in entry.instruments.items()))
    if entry.instrument:
        parts.append(f"instrument {entry.instrument}")
    if entry.parent:
        parts.append(f"within {entry.parent}")
    if entry.family:
        parts.append(f"model {entry.family}")
    return "; ".join(parts)


def markdown(vocabulary: Vocabulary) -> str:
    """Every entry and word table of the vocabulary as Markdown."""
    lines = [f"Rendered from `{vocabulary.source}` (sha256 {vocabulary.sha256[:12]}).", ""]
    for kind, title in _TITLES.items():
        entries = [e for e in vocabulary.described() if e.kind == kind]
        lines += [f"#### {title} ({len(entries)})", "", "| id | words | what a musician chooses |", "|---|---|---|"]
        lines += [f"| `{e.id}` | {_cell(', '.join(e.words))} | {_cell(_params(e) or e.description)} |"
                  for e in entries]
        lines.append("")
    words: dict[str, list[str]] = {}
    for phrase, meanings in vocabulary.phrases.items():
        for meaning in meanings:
            if meaning.kind in ("tempo", "dynamics", "duration", "drum"):
                value = meaning.value
                shown = f"{value[0]:g}-{value[1]:g} BPM" if isinstance(value, tuple) else f"{value:g}"
                words.setdefault(meaning.kind, []).append(f"{phrase} = {shown}")
            elif meaning.kind in ("family", "instrument", "track", "generic"):
                words.setdefault(f"{meaning.kind}:{meaning.key}", []).append(phrase)
    lines += ["#### Word tables", "", "| table | entries |", "|---|---|"]
    for name in ("tempo", "dynamics", "duration", "drum"):
        lines.append(f"| {name} | {_cell('; '.join(words.get(name, [])))} |")
    for key in sorted(k for k in words if ":" in k):
        lines.append(f"| {key} | {_cell(', '.join(words[key]))} |")
    return "\n".join(lines) + "\n"


def write(doc: Path, vocabulary: Vocabulary) -> None:
    text = doc.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{markdown(vocabulary)}{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the prompt vocabulary as Markdown.")
    parser.add_argument("--write", type=Path, help="replace the rendered part of this doc (docs/prompts.md)")
    args = parser.parse_args()
    vocabulary = load_vocabulary()
    if args.write:
        write(args.write, vocabulary)
    else:
        print(markdown(vocabulary), end="")


if __name__ == "__main__":
    main()
