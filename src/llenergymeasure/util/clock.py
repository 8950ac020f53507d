"""The wall clock, in one place (timezone-aware UTC; inject a callable of this shape in tests)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)
