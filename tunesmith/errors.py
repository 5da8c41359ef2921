"""One exception hierarchy for everything a user can get wrong.

Every message names the bad value or file. The CLI turns a `TunesmithError` into exit code 2 with a
one-line reason; the service turns it into a 4xx JSON error (``field`` says which input was wrong).
"""

from __future__ import annotations


class TunesmithError(Exception):
    """Base class of errors caused by the caller's input or environment, not by a bug."""

    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ParameterError(TunesmithError, ValueError):
    """A parameter is out of range, of the wrong type, or not one of the allowed names."""

    code = "invalid_parameter"


class InputFileError(TunesmithError):
    """A file the caller named does not exist, is empty, or cannot be read."""

    code = "invalid_file"


class AudioDecodeError(InputFileError):
    """An audio file is corrupt, truncated, or in a format we cannot decode."""

    code = "audio_decode_error"


class MidiDecodeError(InputFileError):
    """A MIDI/MusicXML/ABC/Humdrum file is corrupt, unsupported, or has no notes."""

    code = "midi_decode_error"


class DatasetError(TunesmithError):
    """A dataset source or built dataset is missing, malformed, or of the wrong kind."""

    code = "dataset_error"


class DependencyError(TunesmithError):
    """A system dependency (FluidSynth, a soundfont) is missing; the message says what to install."""

    code = "missing_dependency"
