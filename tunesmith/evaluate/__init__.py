"""Evaluation: metrics for each model family, run by `tunesmith evaluate`."""
