"""The optional `[report]` extra (pandas, matplotlib): imported only where needed, with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from llenergymeasure.errors import LLEMError

INSTALL_HINT = 'pip install "llenergymeasure[report]"'


class MissingExtraError(LLEMError):
    """A feature needs the `[report]` extra, which is not installed. Exit code 2."""

    exit_code = 2

    def __init__(self, module: str, feature: str) -> None:
        super().__init__(f"{feature} needs {module}, which is not installed (fix: {INSTALL_HINT})")
        self.module = module


def require(module: str, feature: str) -> ModuleType:
    """Import `module` or raise `MissingExtraError` naming `feature` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(module.split(".")[0], feature) from e
