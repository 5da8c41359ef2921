"""Responsible generation: signed provenance manifests in every file, an audio watermark, and the originality
gate against the training data (see docs/provenance.md)."""
