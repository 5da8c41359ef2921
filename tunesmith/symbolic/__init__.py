"""Symbolic music: one score representation, readers/writers, transforms, tokens and rendering.

Rendering (`tunesmith.symbolic.render`) is not imported here so that importing the package never
loads FluidSynth; music21 is only imported by the readers that need it.
"""

from tunesmith.symbolic.io import read_music21_corpus, read_score, score_from_music21, write_midi
from tunesmith.symbolic.keys import key_name, parse_key, scale_pitch_classes
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.tokens import VOCAB, Vocabulary, decode, encode, tokens_to_text
from tunesmith.symbolic.transform import is_monophonic, quantize, split_voices, transpose

__all__ = [
    "VOCAB",
    "Note",
    "Part",
    "Score",
    "Vocabulary",
    "decode",
    "encode",
    "is_monophonic",
    "key_name",
    "parse_key",
    "quantize",
    "read_music21_corpus",
    "read_score",
    "scale_pitch_classes",
    "score_from_music21",
    "split_voices",
    "tokens_to_text",
    "transpose",
    "write_midi",
]
