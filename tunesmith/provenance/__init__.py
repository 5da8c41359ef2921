"""Responsible generation: originality against the training data (signing and watermarking to come)."""
