"""Audio I/O, signal processing and spectral features (float32, (n,) or (channels, n))."""

from tunesmith.audio.dsp import (
    Segments,
    ensure_channels,
    loudness,
    normalize_loudness,
    peak_db,
    resample,
    segment,
    to_mono,
    trim_silence,
    validate_audio,
)
from tunesmith.audio.features import cqt, log_mel, mel_filters
from tunesmith.audio.io import (
    AUDIO_EXTENSIONS,
    SUPPORTED_FORMATS,
    AudioInfo,
    info,
    load,
    save,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "AudioInfo",
    "Segments",
    "cqt",
    "ensure_channels",
    "info",
    "load",
    "log_mel",
    "loudness",
    "mel_filters",
    "normalize_loudness",
    "peak_db",
    "resample",
    "save",
    "segment",
    "to_mono",
    "trim_silence",
    "validate_audio",
]
