"""The analysis of an audio file: decode it (within a length limit), then the analyzer's tags and the DSP's
tempo, key, loudness and melody. The CLI's `tunesmith analyze` and the service's POST /v1/analyses both call
:func:`analyze_file`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.errors import ParameterError

DEFAULT_MAX_SECONDS = 1200.0


def analyze_file(path: Path, *, checkpoint: str = "analyzer", melody: bool = True,
                 max_seconds: float = DEFAULT_MAX_SECONDS, analyzer: Any = None,
                 mixtures: str | Path | bool | None = None) -> dict[str, Any]:
    """Decode ``path`` (at most ``max_seconds`` long) and analyze it; the report names the file.

    ``analyzer`` is an already loaded `Analyzer` (the service keeps one per process); else ``checkpoint``
    is loaded, with the mixture tagger ``mixtures`` (None: the checkpoint's companion, when shipped; False: none).
    The report's ``instruments`` (with a mixture tagger) lists the families heard and the segments in which the
    same families sound, each with its confidence."""
    from tunesmith.analyze.analyzer import Analyzer
    from tunesmith.analyze.dsp import ANALYSIS_SR  # decode straight to the DSP's rate (the CNN resamples)
    from tunesmith.audio.io import info, load

    if max_seconds <= 0:
        raise ParameterError(f"max_seconds must be positive, got {max_seconds}", field="max_seconds")
    facts = info(path)
    if facts.duration > max_seconds:
        raise ParameterError(f"{path.name} lasts {facts.duration:.0f} s, over the limit of {max_seconds:g} s "
                             "(raise it with --max-seconds)", field="file")
    y, sr = load(path, sr=ANALYSIS_SR, mono=True)
    analyzer = analyzer or Analyzer.load(checkpoint, mixtures=mixtures)
    report = analyzer.analyze(y, sr, melody=melody, max_seconds=max_seconds)
    return {"file": str(path), "format": facts.format, "channels": facts.channels, "file_sr": facts.sr, **report}
