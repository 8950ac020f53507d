"""Flatten a result into one row of scalars with dotted column names (``config.pytorch.batch_size``).

Shared by `ExperimentResult.to_parquet`, `LoadedStudy.to_dataframe` and ``results.csv`` so the
three always have the same columns. Lists (per-device energies, pip freeze, GPUs) are not scalars
and stay in the JSON; ``None`` stays ``None`` (an empty cell), never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the identifiers every row starts with, in this order
ID_COLUMNS = ("study_id", "experiment_id", "cycle", "measurement_config_hash")

Scalar = str | int | float | bool | None


def flatten(data: Mapping[str, Any], prefix: str = "", out: dict[str, Scalar] | None = None) -> dict[str, Scalar]:
    """Scalar leaves of nested mappings, keyed by their dotted path; lists are left out."""
    row: dict[str, Scalar] = {} if out is None else out
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flatten(value, f"{name}.", row)
        elif value is None or isinstance(value, (str, int, float, bool)):
            row[name] = value
    return row


def result_row(dumped: Mapping[str, Any]) -> dict[str, Scalar]:
    """One row for a result dumped with ``model_dump(mode="json")``: identifiers first, then the rest."""
    flat = flatten(dumped)
    row: dict[str, Scalar] = {k: flat.pop(k, None) for k in ID_COLUMNS}
    row.update(flat)
    return row
