"""Base model and small helpers shared by every schema model."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

#: pydantic error type of a cross-field incompatibility (a sweep skips such points)
INCOMPATIBLE = "incompatible_combination"


class StrictModel(BaseModel):
    """Every config and result model: unknown fields are errors, defaults validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=False)


def incompatible(message: str, fix: str) -> PydanticCustomError:
    """An error for a combination of valid values that cannot work together."""
    return PydanticCustomError(INCOMPATIBLE, "{message} (fix: {fix})", {"message": message, "fix": fix})


def canonical_json(data: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for hashing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_16(data: Any) -> str:
    """First 16 hex digits of the SHA-256 of `data`'s canonical JSON."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]
