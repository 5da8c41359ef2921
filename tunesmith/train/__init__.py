"""Training loops, one readable module per model family; checkpoints carry their config."""
