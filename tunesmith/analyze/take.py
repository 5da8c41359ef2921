"""An audio take of a melody (sung, hummed or played) as a score: the DSP analysis's tempo, key and transcribed
notes (`tunesmith.analyze.recording.analyze_dsp`), put on the beat grid as one part (`notes_to_score`). The song
model arranges it like a melody file (`tunesmith generate song --input take.wav`)."""

from __future__ import annotations

from pathlib import Path

from tunesmith.errors import InputFileError
from tunesmith.symbolic.score import Score

MAX_TAKE_SECONDS = 600.0
DEFAULT_TEMPO = 100.0  # a take too short or too free for a tempo estimate


def melody_of_take(path: Path, *, max_seconds: float = MAX_TAKE_SECONDS) -> Score:
    """The melody of an audio file as a one-part score (with the heard tempo and key); an InputFileError naming
    the file when it holds no notes or is longer than ``max_seconds``."""
    from tunesmith.analyze.dsp import ANALYSIS_SR
    from tunesmith.analyze.recording import analyze_dsp
    from tunesmith.analyze.transcribe import notes_to_score
    from tunesmith.audio.io import info, load

    facts = info(path)
    if facts.duration > max_seconds:
        raise InputFileError(f"{path.name} lasts {facts.duration:.0f} s; a take to arrange lasts at most "
                             f"{max_seconds:g} s", field="input")
    y, sr = load(path, sr=ANALYSIS_SR, mono=True)
    heard = analyze_dsp(y, sr, melody=True)
    if not heard.notes:
        raise InputFileError(f"{path.name}: no melody heard (silence, or no steady pitch)", field="input")
    tempo = heard.tempo if heard.tempo is not None else DEFAULT_TEMPO
    score = notes_to_score(heard.notes, tempo, key=heard.key.name if heard.key is not None else None)
    score.title = path.name
    return score
