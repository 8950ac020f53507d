"""The `llem` console script.

``llem --version`` is answered here, before the CLI framework is imported: it is
what scripts and support requests call most, and it should cost an interpreter
start, not a CLI start. Everything else goes to the typer app in `cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from llenergymeasure._version import __version__

        print(f"llem {__version__}")
        sys.exit(0)
    from llenergymeasure.orchestrator.cli import entrypoint

    entrypoint()
