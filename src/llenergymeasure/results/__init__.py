"""Reading finished studies: `load_study`, `load_result`, DataFrames, CSV and the HTML report.

    from llenergymeasure.results import load_study, load_result

    study = load_study("results/demo_20250101T120000Z")
    df = study.to_dataframe()          # one row per completed run (needs the [report] extra)

Names are resolved lazily: ``llenergymeasure.results.stats`` (standard library only) is used by the
study loop without loading the readers, and pandas/matplotlib are imported only when a DataFrame or
a figure is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llenergymeasure.results.loading import LoadedStudy, load_result, load_study

_LAZY = {
    "LoadedStudy": "llenergymeasure.results.loading",
    "load_result": "llenergymeasure.results.loading",
    "load_study": "llenergymeasure.results.loading",
}

__all__ = ["LoadedStudy", "load_result", "load_study"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llenergymeasure.results' has no attribute {name!r}")
