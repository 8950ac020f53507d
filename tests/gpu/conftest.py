"""Fixtures for the GPU tier (tests/gpu): the tiny model the harness tests also use."""

from __future__ import annotations

from fixtures.tiny_model import tiny_model_dir  # noqa: F401  (session fixture, re-exported for these tests)
