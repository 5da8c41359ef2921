"""Corpora we build here: rendered notes, music21's chorales and folk songs."""
