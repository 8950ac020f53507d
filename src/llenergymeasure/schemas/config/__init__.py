"""Experiment configuration models (import them from their modules; this package only groups them)."""
