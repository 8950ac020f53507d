"""``python -m llenergymeasure.orchestrator.selftest require-gpu``: exit 1 with one line where NVML sees no GPU.

The gate of ``make test-gpu`` and ``make gpu-check`` (light: no CLI framework).
"""

from __future__ import annotations

import sys

from llenergymeasure.orchestrator.selftest import NoGpuVisible, require_visible_gpu


def main(argv: list[str]) -> int:
    if argv != ["require-gpu"]:
        print("usage: python -m llenergymeasure.orchestrator.selftest require-gpu", file=sys.stderr)
        return 2
    try:
        count = require_visible_gpu()
    except NoGpuVisible as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(f"{count} NVIDIA GPU(s) visible to NVML")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
