"""The generation pipeline below the service and the CLI: load, generate, render, check, mark, encode, sign."""
