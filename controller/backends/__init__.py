"""Backends: where the engine's effects run (serving targets, for now the local one)."""
