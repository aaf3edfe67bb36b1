"""Read models: SQL tables rebuilt from the events, each kept current with its position."""
