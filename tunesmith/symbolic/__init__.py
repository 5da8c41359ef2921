"""Symbolic music: one score representation, readers/writers, transforms, tokens and rendering."""

from tunesmith.symbolic.score import Note, Part, Score

__all__ = ["Note", "Part", "Score"]
