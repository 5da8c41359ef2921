"""`tunesmith analyze FILE [--json] [--midi OUT.mid]`: what the analyzer hears in a recording."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tunesmith.cli import remote
from tunesmith.errors import ParameterError

DEFAULT_MAX_SECONDS = 1200.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="tags, instrument, key, tempo, loudness and melody of an audio file",
                       description="Analyze a WAV/FLAC/MP3/OGG file with the analyzer model and DSP.",
                       epilog="examples:\n  tunesmith analyze take.wav\n  tunesmith analyze hum.mp3 --midi hum.mid\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="audio file (wav, flac, mp3, ogg)")
    p.add_argument("--json", action="store_true", help="print the whole analysis as JSON")
    p.add_argument("--midi", type=Path, help="write the transcribed melody to this MIDI file")
    p.add_argument("--no-melody", action="store_true", help="skip the melody transcription (faster)")
    p.add_argument("--checkpoint", default="analyzer", help="model id or training run directory")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help=f"refuse longer files (default {DEFAULT_MAX_SECONDS:g} s)")
    remote.add_server_options(p)
    p.set_defaults(func=run_analyze)


def analyze_file(path: Path, *, checkpoint: str = "analyzer", melody: bool = True,
                 max_seconds: float = DEFAULT_MAX_SECONDS, analyzer: Any = None) -> dict[str, Any]:
    """Decode ``path`` (at most ``max_seconds`` long) and analyze it; the report names the file.

    ``analyzer`` is an already loaded `Analyzer` (the service keeps one per process); else ``checkpoint``
    is loaded."""
    from tunesmith.analyze.analyzer import Analyzer
    from tunesmith.analyze.dsp import ANALYSIS_SR  # decode straight to the DSP's rate (the CNN resamples)
    from tunesmith.audio.io import info, load

    if max_seconds <= 0:
        raise ParameterError(f"--max-seconds must be positive, got {max_seconds}", field="max_seconds")
    facts = info(path)
    if facts.duration > max_seconds:
        raise ParameterError(f"{path.name} lasts {facts.duration:.0f} s, over the limit of {max_seconds:g} s "
                             "(raise it with --max-seconds)", field="file")
    y, sr = load(path, sr=ANALYSIS_SR, mono=True)
    report = (analyzer or Analyzer.load(checkpoint)).analyze(y, sr, melody=melody, max_seconds=max_seconds)
    return {"file": str(path), "format": facts.format, "channels": facts.channels, "file_sr": facts.sr, **report}


def run_analyze(args: argparse.Namespace) -> int:
    if args.midi is not None and args.no_melody:
        raise ParameterError("--midi needs the melody: drop --no-melody", field="midi")
    if args.midi is not None and args.midi.suffix.lower() not in (".mid", ".midi"):
        raise ParameterError(f"--midi must name a .mid file, got {args.midi.name!r}", field="midi")
    if remote.server_of(args):
        report = remote.run_analyze(args)
    else:
        report = analyze_file(args.file, checkpoint=args.checkpoint, melody=not args.no_melody,
                              max_seconds=args.max_seconds)
    if args.midi is not None:
        from tunesmith.analyze.dsp import TranscribedNote, notes_to_score
        from tunesmith.symbolic.io import write_midi

        notes = [TranscribedNote(**n) for n in report["melody"]]
        tempo = report["tempo"]["bpm"] if report["tempo"] else 120.0
        write_midi(notes_to_score(notes, tempo=tempo), args.midi)
        report["midi"] = str(args.midi)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    return 0


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human-readable account of an analysis."""
    lufs = report["loudness_lufs"]
    lines = [f"{report['file']}: {report['duration']:.2f} s, {report['format']}, {report['channels']} channel(s), "
             f"{report['file_sr']} Hz, " + (f"{lufs:.1f} LUFS" if lufs is not None else "silent")]
    if report.get("silent"):
        lines.append("nothing to hear: no key, tempo or melody")
        return lines
    if "family" in report:
        fam = report["tags"]["family"]
        inst = report["tags"]["instrument"]
        lines.append("family: " + ", ".join(f"{k} {v:.2f}" for k, v in list(fam.items())[:3]))
        lines.append("instrument: " + ", ".join(f"{k} {v:.2f}" for k, v in list(inst.items())[:3]))
    if "tags" in report.get("tags", {}):
        lines.append("tags: " + ", ".join(f"{k} {v:.2f}" for k, v in report["tags"]["tags"].items()))
    key, tempo = report["key"], report["tempo"]
    lines.append(f"key: {key['name']} (confidence {key['confidence']:.2f})")
    lines.append(f"tempo: {tempo['bpm']:.1f} bpm ({len(tempo.get('beats', []))} beats)" if tempo else
                 "tempo: too short to tell")
    if "melody" in report:
        melody = report["melody"]
        names = " ".join(_note_name(n["pitch"]) for n in melody[:16])
        lines.append(f"melody: {len(melody)} notes" + (f": {names}{' ...' if len(melody) > 16 else ''}"
                                                        if melody else ""))
    if "midi" in report:
        lines.append(f"wrote {report['midi']}")
    return lines


def _note_name(pitch: int) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[int(pitch) % 12]}{int(pitch) // 12 - 1}"
