"""The error hierarchy shared by host and container.

One root (`LLEMError`) and a few domain classes that carry *structured* fields, not
only a message, so the CLI can render them and a caller can act on them. Standard
library only: importable from `schemas`, `orchestrator` and `harness` alike.

A library never calls ``sys.exit``; the CLI maps these classes to exit codes
(`ConfigError` and `PreFlightError` of kind "usage" → 2, everything else → 1).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control characters, lone surrogates and line or bidi
    controls are written as escapes (``\\x1b``, ``\\udcff``), so user input cannot move the cursor,
    recolour the output or fail to encode."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or (ch == " ") or unicodedata.category(ch) in {"Zs", "Mn", "Mc", "Me", "So"}:
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    return "".join(out)


class LLEMError(Exception):
    """Root of every error llenergymeasure raises on purpose."""

    #: exit code the CLI uses for this class of error
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def render(self) -> str:
        """A human-readable, multi-line description (no traceback)."""
        return self.message


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where it is, what is wrong, how to fix it."""

    field: str
    message: str
    fix: str | None = None
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        where = source or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{printable(where)}: {printable(self.field)}: {printable(self.message)}"
        if self.fix:
            text += f"\n  fix: {printable(self.fix)}"
        return text


class ConfigError(LLEMError):
    """A configuration (YAML, CLI flags, user config) is invalid. Exit code 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        issues: list[ConfigIssue] | None = None,
    ) -> None:
        super().__init__(message)
        self.source = str(source) if source is not None else None
        self.issues: list[ConfigIssue] = list(issues or [])

    def render(self) -> str:
        head = printable(f"{self.source}: {self.message}" if self.source else self.message)
        if not self.issues:
            return head
        lines = [head] + ["  " + i.render(self.source).replace("\n", "\n  ") for i in self.issues]
        return "\n".join(lines)


class BackendError(LLEMError):
    """An inference backend failed to load, generate, or is not installed."""

    def __init__(self, message: str, *, backend: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.fix = fix

    def render(self) -> str:
        prefix = f"[{self.backend}] " if self.backend else ""
        return prefix + self.message + (f"\n  fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class PreFlightFailure:
    """One failed pre-flight check, with what to do about it."""

    check: str
    message: str
    fix: str | None = None


class PreFlightError(LLEMError):
    """One or more pre-flight checks failed. Every failure is reported at once."""

    def __init__(self, failures: list[PreFlightFailure], *, where: str = "host") -> None:
        self.failures = list(failures)
        self.where = where
        super().__init__(f"{len(self.failures)} pre-flight check(s) failed on the {where}")

    def render(self) -> str:
        lines = [self.message]
        for f in self.failures:
            lines.append(f"  ✗ {f.check}: {f.message}")
            if f.fix:
                lines.append(f"      fix: {f.fix}")
        return "\n".join(lines)


@dataclass
class ExperimentFailure:
    """Structured facts about a failed experiment run."""

    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: str | None = None  # "wall_clock" | "silence" | None
    phase: str | None = None
    error_type: str | None = None
    log_tail: list[str] = field(default_factory=list)
    measurement_config_hash: str | None = None


class ExperimentError(LLEMError):
    """One experiment (one container / subprocess run) failed."""

    def __init__(self, message: str, failure: ExperimentFailure | None = None) -> None:
        super().__init__(message)
        self.failure = failure or ExperimentFailure()

    def render(self) -> str:
        f = self.failure
        facts = []
        if f.phase:
            facts.append(f"phase={f.phase}")
        if f.exit_code is not None:
            facts.append(f"exit_code={f.exit_code}")
        if f.oom_killed:
            facts.append("oom_killed=true")
        if f.timed_out:
            facts.append(f"timeout={f.timed_out}")
        if f.measurement_config_hash:
            facts.append(f"config={f.measurement_config_hash}")
        text = self.message + (f" ({', '.join(facts)})" if facts else "")
        if f.log_tail:
            text += "\n  last log lines:\n" + "\n".join("    " + ln for ln in f.log_tail[-10:])
        return text


class StudyError(LLEMError):
    """A study as a whole cannot go on (circuit breaker, nothing valid to run, resume mismatch)."""

    def __init__(self, message: str, *, study_dir: str | Path | None = None) -> None:
        super().__init__(message)
        self.study_dir = str(study_dir) if study_dir is not None else None

    def render(self) -> str:
        return self.message + (f"\n  study directory: {self.study_dir}" if self.study_dir else "")


class NotAvailableError(LLEMError):
    """A feature exists in the API but cannot run in this installation."""
