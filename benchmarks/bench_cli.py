"""CLI start-up and dry-run cost, measured side by side in one run.

Prints medians of, interleaved round by round:
  - `python -c pass` (interpreter floor), `python -c "import typer"` (the CLI framework alone),
  - `llem --version`                         target: median <= 0.2 s
  - `llem run <10,000-point grid> --dry-run`  target: median <= 2 s
and the ratio of each to its target. Wall times on a shared machine are noisy:
read the medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERSION_TARGET_S = 0.2
DRY_RUN_TARGET_S = 2.0


def _llem() -> list[str]:
    exe = Path(sys.executable).with_name("llem")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "llenergymeasure.orchestrator.cli"]


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds for the start-up commands")
    parser.add_argument("--dry-run-rounds", type=int, default=5, help="rounds for the 10,000-point dry run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.yaml"
        values = ", ".join(str(i) for i in range(1, 101))
        grid.write_text(f"name: grid10k\nmodel: gpt2\nsweep:\n  n: [{values}]\n  max_output_tokens: [{values}]\n")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import typer": [sys.executable, "-c", "import typer"],
            "llem --version": [*_llem(), "--version"],
        }
        samples: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                samples[name].append(_time(cmd))
        dry = [_time([*_llem(), "run", str(grid), "--dry-run"]) for _ in range(args.dry_run_rounds)]

    print(f"{'command':<44} {'median s':>9} {'min s':>7} {'max s':>7}  n")
    for name, xs in samples.items():
        print(f"{name:<44} {statistics.median(xs):9.3f} {min(xs):7.3f} {max(xs):7.3f}  {len(xs)}")
    print(
        f"{'llem run <10,000-point grid> --dry-run':<44} {statistics.median(dry):9.3f} {min(dry):7.3f} {max(dry):7.3f}  {len(dry)}"
    )
    v = statistics.median(samples["llem --version"])
    d = statistics.median(dry)
    floor = statistics.median(samples["python -c pass"])
    print()
    print(
        f"llem --version: {v:.3f} s = {v / VERSION_TARGET_S:.2f} × target {VERSION_TARGET_S} s "
        f"({v - floor:.3f} s above the interpreter floor)"
    )
    print(f"dry run, 10,000 points: {d:.3f} s = {d / DRY_RUN_TARGET_S:.2f} × target {DRY_RUN_TARGET_S} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
