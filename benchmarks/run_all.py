"""Run every benchmark script in this folder, one after the other, and report which failed.

Each script prints its own medians and ratios measured side by side; run them on a quiet machine
(these are wall-clock measurements) and read ratios, not single timings. Extra arguments are not
forwarded: run a script directly for its options (``--help``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(
            f"=== {script.name}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(scripts)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
