"""Neural networks as plain ``nn.Module``s with keyword arguments (no config objects inside)."""
