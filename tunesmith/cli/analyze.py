"""`tunesmith analyze FILE [--json] [--midi OUT.mid]`: what the analyzer hears in a recording."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tunesmith.analyze.report import DEFAULT_MAX_SECONDS, analyze_file
from tunesmith.cli import remote
from tunesmith.errors import ParameterError


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
    p.add_argument("--mixtures", help="mixture tagger: model id or training run directory (default: the shipped "
                   "analyzer-mixtures, when present)")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help=f"refuse longer files (default {DEFAULT_MAX_SECONDS:g} s)")
    remote.add_server_options(p)
    p.set_defaults(func=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    if args.midi is not None and args.no_melody:
        raise ParameterError("--midi needs the melody: drop --no-melody", field="midi")
    if args.midi is not None and args.midi.suffix.lower() not in (".mid", ".midi"):
        raise ParameterError(f"--midi must name a .mid file, got {args.midi.name!r}", field="midi")
    if remote.server_of(args):
        report = remote.run_analyze(args)
    else:
        report = analyze_file(args.file, checkpoint=args.checkpoint, melody=not args.no_melody,
                              max_seconds=args.max_seconds, mixtures=args.mixtures)
    if args.midi is not None:
        from tunesmith.analyze.transcribe import TranscribedNote, notes_to_score
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
    if "instruments" in report:
        lines.extend(_instrument_lines(report["instruments"]))
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


def _instrument_lines(heard: dict[str, Any]) -> list[str]:
    """The mixture tagger's families and segments, one line each."""
    fams = heard.get("families", [])
    lines = ["families heard: " + (", ".join(f"{f['family']} {f['confidence']:.2f} ({f['seconds']:.0f} s)"
                                             for f in fams) or "none")]
    for seg in heard.get("segments", []):
        names = ", ".join(f"{k} {v:.2f}" for k, v in seg["families"].items()) or "nothing recognised"
        lines.append(f"  {seg['start']:6.1f}-{seg['end']:6.1f} s: {names}")
    return lines


def _note_name(pitch: int) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[int(pitch) % 12]}{int(pitch) // 12 - 1}"
