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


class ConfigModel(StrictModel):
    """Every input model (experiment, its sections, study execution): strict types, finite numbers.

    Strict: a boolean is never an integer (``n: yes`` is not 1, ``gpus: [true]`` is not [1]) and a
    string is never a number; ``.inf``/``.nan`` are refused wherever a number is accepted.
    """

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


def incompatible(message: str, fix: str) -> PydanticCustomError:
    """An error for a combination of valid values that cannot work together."""
    return PydanticCustomError(INCOMPATIBLE, "{message} (fix: {fix})", {"message": message, "fix": fix})


def canonical_json(data: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for hashing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_16(data: Any) -> str:
    """First 16 hex digits of the SHA-256 of `data`'s canonical JSON."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]
