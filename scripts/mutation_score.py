"""The mutation score of the measurement core, from mutmut's results and the list of equivalent mutants.

    score = killed / (mutants − equivalent mutants)

per module and overall. *Killed* means a test failed (or hung, or crashed) with the
mutant in place. Everything else that was checked counts against the score: a
survivor, a mutant no test reaches ("no tests"), a suspicious or skipped one. A
mutant that was never checked makes the run incomplete: no score is printed.

An *equivalent* mutant is one whose behaviour is identical to the original (no
test could tell them apart); each is listed in ``tests/mutation_equivalent.txt``
as ``NAME FINGERPRINT: why it is equivalent``. The fingerprint is a hash of the
mutant's code as mutmut generated it: mutmut numbers mutants by position, so a
change to the source can give an old name to a different mutant, and the
fingerprint catches that (the entry is then reported stale, to be checked again).
A listed mutant that a test kills is not equivalent, and is an error too.

Usage (from the repository root, after ``mutmut run``; ``make mutation`` does both)::

    python scripts/mutation_score.py [--min-score 90] [--equivalent FILE] [--results FILE] [--show-survivors]

``--results FILE`` reads the output of ``mutmut results --all true`` from a file
instead of running mutmut. Exit status: 0 when the score reaches ``--min-score``,
1 below it, 2 when the results are incomplete or the equivalent list is wrong.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
MUTANTS_DIR = ROOT / "mutants"

#: mutmut statuses in which a test told the mutant apart from the original
KILLED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
#: statuses of a mutant that no test told apart (they count against the score)
NOT_KILLED = frozenset({"survived", "no tests", "suspicious", "skipped"})

_RESULT_LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+__mutmut_\d+): (?P<status>[a-z ]+?)\s*$")
_ENTRY_LINE = re.compile(r"^(?P<name>\S+__mutmut_\d+)\s+(?P<fingerprint>[0-9a-f]{12})\s*:\s*(?P<why>.*)$")


class ScoreError(Exception):
    """The results are incomplete or the equivalent list does not match them."""


@dataclass(frozen=True)
class Equivalent:
    name: str
    fingerprint: str
    why: str


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    equivalent: int = 0
    killed: int = 0
    not_killed: list[str] = field(default_factory=list)

    @property
    def counted(self) -> int:
        """Mutants that count: all of them less the equivalent ones."""
        return self.total - self.equivalent

    @property
    def score_pct(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def module_of(name: str) -> str:
    """``llenergymeasure.harness.metrics.x_percentile__mutmut_3`` → ``llenergymeasure.harness.metrics``."""
    return name.rpartition(".")[0]


def parse_results(text: str) -> dict[str, str]:
    """Mutant name → status, from the output of ``mutmut results --all true``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _RESULT_LINE.match(line)
        if m:
            out[m["name"]] = m["status"]
    return out


def parse_equivalent(text: str, source: str = "equivalent list") -> dict[str, Equivalent]:
    """Entries ``NAME FINGERPRINT: why``; blank lines and ``#`` comments are skipped."""
    entries: dict[str, Equivalent] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENTRY_LINE.match(line)
        if not m:
            raise ScoreError(f"{source}:{number}: expected 'NAME FINGERPRINT: why it is equivalent', got {line!r}")
        if not m["why"].strip():
            raise ScoreError(f"{source}:{number}: {m['name']} has no justification; say why its behaviour is identical")
        if m["name"] in entries:
            raise ScoreError(f"{source}:{number}: {m['name']} is listed twice")
        entries[m["name"]] = Equivalent(m["name"], m["fingerprint"], m["why"].strip())
    return entries


def fingerprint(source: str, name: str) -> str | None:
    """Hash of the mutant function `name`'s code inside the mutated module `source` (its own name left out)."""
    function = name.rpartition(".")[2]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            node.name = "_"
            return hashlib.sha256(ast.unparse(node).encode()).hexdigest()[:12]
    return None


class MutantSources:
    """Reads the mutated modules under ``mutants/`` (once each) to fingerprint mutants."""

    def __init__(self, mutants_dir: Path) -> None:
        self.mutants_dir = mutants_dir
        self._text: dict[str, str | None] = {}

    def _module_text(self, module: str) -> str | None:
        if module not in self._text:
            rel = Path(*module.split("."))
            candidates = [self.mutants_dir / "src" / rel.with_suffix(".py"), self.mutants_dir / rel.with_suffix(".py")]
            found = next((p for p in candidates if p.is_file()), None)
            self._text[module] = found.read_text(encoding="utf-8") if found else None
        return self._text[module]

    def fingerprint(self, name: str) -> str | None:
        text = self._module_text(module_of(name))
        return None if text is None else fingerprint(text, name)


def score(
    statuses: Mapping[str, str],
    equivalent: Mapping[str, Equivalent],
    fingerprint_of: Mapping[str, str | None] | None = None,
) -> dict[str, ModuleScore]:
    """Per-module scores. Raises `ScoreError` for unchecked mutants or a wrong equivalent list.

    `fingerprint_of` maps listed mutant names to their current fingerprint (None: not checked).
    """
    if not statuses:
        raise ScoreError("no mutants in the results: run mutmut first (make mutation)")
    unknown = sorted(s for s in set(statuses.values()) if s not in KILLED | NOT_KILLED)
    if unknown:
        names = [n for n, s in statuses.items() if s in unknown]
        raise ScoreError(f"{len(names)} mutants were not checked ({', '.join(unknown)}), e.g. {names[0]}: rerun mutmut")
    problems: list[str] = []
    for name, entry in equivalent.items():
        if name not in statuses:
            problems.append(f"{name}: listed as equivalent but no such mutant exists now (remove it)")
        elif statuses[name] in KILLED:
            problems.append(f"{name}: listed as equivalent but a test kills it, so it is not equivalent (remove it)")
        elif fingerprint_of is not None and fingerprint_of.get(name) not in (None, entry.fingerprint):
            problems.append(
                f"{name}: the mutant changed since it was judged equivalent (fingerprint {entry.fingerprint}, "
                f"now {fingerprint_of[name]}); check it again with `mutmut show {name}`"
            )
    if problems:
        raise ScoreError("the equivalent-mutant list does not match the results:\n  " + "\n  ".join(problems))

    modules: dict[str, ModuleScore] = {}
    for name, status in sorted(statuses.items()):
        mod = modules.setdefault(module_of(name), ModuleScore(module_of(name)))
        mod.total += 1
        if name in equivalent:
            mod.equivalent += 1
        elif status in KILLED:
            mod.killed += 1
        else:
            mod.not_killed.append(f"{name}: {status}")
    return modules


def overall(modules: Iterable[ModuleScore]) -> ModuleScore:
    total = ModuleScore("overall")
    for m in modules:
        total.total += m.total
        total.equivalent += m.equivalent
        total.killed += m.killed
        total.not_killed.extend(m.not_killed)
    return total


def render(modules: Mapping[str, ModuleScore]) -> str:
    rows = [*sorted(modules.values(), key=lambda m: m.module), overall(modules.values())]
    width = max(len(m.module) for m in rows)
    lines = [f"{'module':<{width}}  mutants  equivalent  killed  not killed  score"]
    for m in rows:
        if m.module == "overall":
            lines.append("-" * len(lines[0]))
        lines.append(
            f"{m.module:<{width}}  {m.total:7d}  {m.equivalent:10d}  {m.killed:6d}  {len(m.not_killed):10d}"
            f"  {m.score_pct:5.1f} %"
        )
    return "\n".join(lines)


def mutmut_results() -> str:
    """The output of ``mutmut results --all true`` (the mutmut next to this interpreter, else on PATH)."""
    local = Path(sys.executable).with_name("mutmut")
    exe = str(local) if local.exists() else shutil.which("mutmut")
    if exe is None:
        raise ScoreError("mutmut is not installed (make install)")
    done = subprocess.run([exe, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ScoreError(f"mutmut results failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-score", type=float, default=90.0, help="lowest passing score, percent (default 90)")
    parser.add_argument("--equivalent", type=Path, default=DEFAULT_EQUIVALENT, help="the equivalent-mutant list")
    parser.add_argument("--results", type=Path, help="saved output of `mutmut results --all true`")
    parser.add_argument("--mutants", type=Path, default=MUTANTS_DIR, help="mutmut's mutants/ folder (fingerprints)")
    parser.add_argument("--show-survivors", action="store_true", help="list every mutant not killed")
    args = parser.parse_args(argv)
    try:
        text = args.results.read_text(encoding="utf-8") if args.results else mutmut_results()
        statuses = parse_results(text)
        equivalent = parse_equivalent(args.equivalent.read_text(encoding="utf-8"), str(args.equivalent))
        sources = MutantSources(args.mutants)
        modules = score(statuses, equivalent, {name: sources.fingerprint(name) for name in equivalent})
    except (OSError, ScoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render(modules))
    total = overall(modules.values())
    if args.show_survivors and total.not_killed:
        print("\nnot killed (add a test, or list it with its fingerprint in the equivalent list if it is equivalent):")
        for line in total.not_killed:
            name = line.split(":")[0]
            print(f"  {line}  [fingerprint {sources.fingerprint(name)}]")
    print(
        f"\nmutation score {total.score_pct:.1f} % = {total.killed} killed / "
        f"({total.total} mutants − {total.equivalent} equivalent); required {args.min_score:.0f} %"
    )
    return 0 if total.score_pct >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
