"""Tunesmith: self-hostable AI music creation on an ordinary CPU."""

__version__ = "0.1.0"
