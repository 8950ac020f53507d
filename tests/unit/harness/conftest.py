"""Fixtures for the harness unit tests (fakes live in harness_fakes.py)."""

from __future__ import annotations

import pytest
from harness_fakes import FakeClock

from fixtures.tiny_model import tiny_model_dir  # noqa: F401  (session fixture, re-exported for these tests)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
