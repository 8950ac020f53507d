"""scripts/mutation_score.py: the score's arithmetic, the equivalent list's checks, and the exit status."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mutation_score.py"
_spec = importlib.util.spec_from_file_location("mutation_score", SCRIPT)
assert _spec is not None and _spec.loader is not None
ms = importlib.util.module_from_spec(_spec)
sys.modules["mutation_score"] = ms
_spec.loader.exec_module(ms)

A = "llenergymeasure.harness.metrics"
B = "llenergymeasure.harness.energy.integrate"

RESULTS = f"""
    {A}.x_percentile__mutmut_1: killed
    {A}.x_percentile__mutmut_2: killed
    {A}.x_percentile__mutmut_3: survived
    {A}.x_per_token__mutmut_1: timeout
    {B}.x__power_at__mutmut_1: killed
    {B}.x__power_at__mutmut_2: no tests
    {B}.x__power_at__mutmut_3: survived
    {B}.x_count_changes__mutmut_1: caught by type check
"""

MUTATED = """
def x_percentile__mutmut_orig(values, q):
    return values[0] * q

def x_percentile__mutmut_3(values, q):
    return values[0] / q
"""


def test_results_lines_are_parsed_and_other_lines_ignored() -> None:
    statuses = ms.parse_results("some header\n" + RESULTS + "\nmutmut: done\n")
    assert len(statuses) == 8
    assert statuses[f"{B}.x__power_at__mutmut_2"] == "no tests"
    assert ms.module_of(f"{A}.xǁMeterǁstop__mutmut_4") == A


def test_score_counts_only_kills_and_leaves_equivalent_mutants_out() -> None:
    statuses = ms.parse_results(RESULTS)
    equivalent = ms.parse_equivalent(f"# comment\n\n{B}.x__power_at__mutmut_3 0123456789ab: unreachable branch\n")
    modules = ms.score(statuses, equivalent)
    a, b = modules[A], modules[B]
    # metrics: 4 mutants, none equivalent, killed 2 + timeout 1 = 3 → 75 %
    assert (a.total, a.equivalent, a.killed, a.score_pct) == (4, 0, 3, 75.0)
    assert a.not_killed == [f"{A}.x_percentile__mutmut_3: survived"]
    # integrate: 4 mutants, 1 equivalent; killed 1 + type check 1 = 2 of 3; "no tests" counts against
    assert (b.total, b.equivalent, b.killed) == (4, 1, 2)
    assert b.score_pct == pytest.approx(200 / 3)
    total = ms.overall(modules.values())
    # 5 killed / (8 − 1) = 71.4 %
    assert (total.total, total.equivalent, total.killed) == (8, 1, 5)
    assert total.score_pct == pytest.approx(500 / 7)
    assert "71.4 %" in ms.render(modules)


def test_equivalent_entries_need_a_justification_and_a_fingerprint() -> None:
    with pytest.raises(ms.ScoreError, match="no justification"):
        ms.parse_equivalent(f"{B}.x__power_at__mutmut_3 0123456789ab:   \n")
    with pytest.raises(ms.ScoreError, match="expected 'NAME FINGERPRINT"):
        ms.parse_equivalent(f"{B}.x__power_at__mutmut_3: no fingerprint\n")
    with pytest.raises(ms.ScoreError, match="listed twice"):
        ms.parse_equivalent(f"{B}.x__power_at__mutmut_3 0123456789ab: a\n{B}.x__power_at__mutmut_3 0123456789ab: b\n")


def test_a_killed_missing_or_changed_equivalent_mutant_is_an_error() -> None:
    statuses = ms.parse_results(RESULTS)
    killed = ms.parse_equivalent(f"{A}.x_percentile__mutmut_1 0123456789ab: wrong\n")
    with pytest.raises(ms.ScoreError, match="a test kills it"):
        ms.score(statuses, killed)
    gone = ms.parse_equivalent(f"{A}.x_percentile__mutmut_99 0123456789ab: gone\n")
    with pytest.raises(ms.ScoreError, match="no such mutant"):
        ms.score(statuses, gone)
    changed = ms.parse_equivalent(f"{A}.x_percentile__mutmut_3 0123456789ab: was equivalent\n")
    with pytest.raises(ms.ScoreError, match="changed since"):
        ms.score(statuses, changed, {f"{A}.x_percentile__mutmut_3": "ba9876543210"})
    assert ms.score(statuses, changed, {f"{A}.x_percentile__mutmut_3": "0123456789ab"})[A].equivalent == 1


def test_unchecked_mutants_make_the_run_incomplete() -> None:
    with pytest.raises(ms.ScoreError, match="not checked"):
        ms.score({f"{A}.x_f__mutmut_1": "not checked", f"{A}.x_f__mutmut_2": "killed"}, {})
    with pytest.raises(ms.ScoreError, match="no mutants"):
        ms.score({}, {})


def test_fingerprint_is_the_mutant_code_without_its_name() -> None:
    fp = ms.fingerprint(MUTATED, f"{A}.x_percentile__mutmut_3")
    assert fp is not None and len(fp) == 12
    renamed = MUTATED.replace("x_percentile__mutmut_3", "x_percentile__mutmut_7")
    assert ms.fingerprint(renamed, f"{A}.x_percentile__mutmut_7") == fp
    other = MUTATED.replace("values[0] / q", "values[0] - q")
    assert ms.fingerprint(other, f"{A}.x_percentile__mutmut_3") != fp
    assert ms.fingerprint(MUTATED, f"{A}.x_percentile__mutmut_4") is None


def test_exit_status_follows_the_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.txt"
    results.write_text(RESULTS, encoding="utf-8")
    equivalent = tmp_path / "equivalent.txt"
    equivalent.write_text("", encoding="utf-8")
    args = ["--results", str(results), "--equivalent", str(equivalent), "--mutants", str(tmp_path)]
    # killed 2 + timeout 1 + killed 1 + type check 1 = 5 of 8 = 62.5 %
    assert ms.main([*args, "--min-score", "62.5"]) == 0
    assert "mutation score 62.5 % = 5 killed / (8 mutants − 0 equivalent)" in capsys.readouterr().out
    assert ms.main([*args, "--min-score", "90", "--show-survivors"]) == 1
    assert f"{B}.x__power_at__mutmut_2: no tests" in capsys.readouterr().out
    equivalent.write_text("not an entry\n", encoding="utf-8")
    assert ms.main(args) == 2
    assert "expected 'NAME FINGERPRINT" in capsys.readouterr().err
