"""Facades over the trained models: one per model family, used by the CLI and the service."""
