"""`llem report` and `load_study(...).to_dataframe()` over a generated 1,000-run study.

Writes a study directory the way `llem run` lays one out (200 configurations × 5 cycles, each run
with a result.json and a 100-sample timeseries.parquet; numbers made up but consistent, see
tests/fixtures/synthetic_study.py), then prints medians of:
  - `load_study(dir).to_dataframe()` (in-process)          target: <= 2 s
  - `llem report dir` (a fresh process, imports included)  target: <= 10 s
and the size of report.html (target < 5 MB), each with its ratio to the target. Wall times on a
shared machine are noisy: read medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic study writer shared with the tests

from fixtures.synthetic_study import write_study  # noqa: E402

LOAD_TARGET_S = 2.0
REPORT_TARGET_S = 10.0
SIZE_TARGET_B = 5_000_000


def _llem() -> list[str]:
    exe = Path(sys.executable).with_name("llem")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "llenergymeasure.orchestrator.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each measurement")
    args = parser.parse_args()
    from llenergymeasure.results import load_study

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        study_dir = write_study(Path(tmp), batch_sizes=list(range(1, 101)), precisions=["fp16", "bf16"], n_cycles=5)
        runs = len(load_study(study_dir).runs)
        print(f"generated a {runs}-run study in {time.perf_counter() - start:.1f} s")
        loads, reports = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            frame = load_study(study_dir).to_dataframe()
            loads.append(time.perf_counter() - t0)
            assert len(frame) == runs
            t0 = time.perf_counter()
            subprocess.run([*_llem(), "report", str(study_dir)], check=True, stdout=subprocess.DEVNULL)
            reports.append(time.perf_counter() - t0)
        size = (study_dir / "report.html").stat().st_size
        figures = sum(p.stat().st_size for p in (study_dir / "figures").iterdir())

    load_s, report_s = statistics.median(loads), statistics.median(reports)
    print(f"{'measurement':<44} {'median s':>9} {'min s':>7} {'max s':>7}  n")
    print(f"{'load_study(...).to_dataframe()':<44} {load_s:9.3f} {min(loads):7.3f} {max(loads):7.3f}  {len(loads)}")
    print(
        f"{'llem report (fresh process)':<44} {report_s:9.3f} {min(reports):7.3f} {max(reports):7.3f}  {len(reports)}"
    )
    print()
    print(f"to_dataframe, {runs} runs: {load_s:.2f} s = {load_s / LOAD_TARGET_S:.2f} × target {LOAD_TARGET_S} s")
    print(f"llem report, {runs} runs: {report_s:.2f} s = {report_s / REPORT_TARGET_S:.2f} × target {REPORT_TARGET_S} s")
    print(
        f"report.html: {size / 1e6:.2f} MB = {size / SIZE_TARGET_B:.2f} × target {SIZE_TARGET_B / 1e6:.0f} MB "
        f"(figures/ PNG + SVG: {figures / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
