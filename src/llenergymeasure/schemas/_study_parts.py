"""The parts of a study file around the grid: name, description, execution, shared fields.

Also the collector of problems: a study file's problems are gathered over every part and
raised together, as one `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llenergymeasure.errors import ConfigError, ConfigIssue
from llenergymeasure.schemas._issues import issues_from_validation, unknown_field_fix
from llenergymeasure.schemas.config.capabilities import BACKENDS
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.text import MAX_NAME_CHARS, text_problem
from llenergymeasure.schemas.study import ExecutionConfig

#: most problems listed for one file (the rest are counted)
MAX_ISSUES = 50

#: top-level keys of a study file that are not experiment fields
STUDY_KEYS = frozenset({"name", "description", "sweep", "experiments", "execution"})


@dataclass
class Problems:
    """Issues collected over the whole file, each with the headline of its kind (repeats dropped).

    At most `MAX_ISSUES` are kept: a grid of thousands of bad points says what is wrong in a screenful,
    and checking stops there (`full`) rather than validate every remaining point.
    """

    items: list[tuple[str, ConfigIssue]] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    dropped: int = 0

    def add(self, head: str, *issues: ConfigIssue) -> None:
        for issue in issues:
            if (issue.field, issue.message) in self.seen:
                continue
            self.seen.add((issue.field, issue.message))
            if len(self.items) < MAX_ISSUES:
                self.items.append((head, issue))
            else:
                self.dropped += 1

    @property
    def full(self) -> bool:
        return self.dropped > 0

    def raise_if_any(self, source: str | None) -> None:
        if not self.items:
            return
        heads = list(dict.fromkeys(h for h, _ in self.items))
        more = "+" if self.full else ""
        head = heads[0] if len(heads) == 1 and not self.full else f"{len(self.items)}{more} problems in the config"
        issues = [i for _, i in self.items]
        if self.full:
            issues.append(
                ConfigIssue(
                    "<more>",
                    f"checking stopped after {MAX_ISSUES} problems; there are more",
                    "fix the ones above and run again",
                )
            )
        raise ConfigError(head, source=source, issues=issues)


def kind(value: Any) -> str:
    return "nothing (null)" if value is None else f"{type(value).__name__} {short(value)}"


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def header(raw: Mapping[str, Any], default_name: str, problems: Problems) -> tuple[str, str | None]:
    """The study's name and description, each checked for shape."""
    name: Any = raw.get("name", default_name)
    problem = f"the name must be text, got {kind(name)}" if not isinstance(name, str) else None
    if isinstance(name, str):
        text = text_problem(name)
        if text or not name.strip() or len(name) > MAX_NAME_CHARS:
            problem = f"the name {text or ('is blank' if not name.strip() else f'is over {MAX_NAME_CHARS} characters')}"
    if problem is not None:
        problems.add("invalid study name", ConfigIssue("name", problem, "write e.g. name: batch-size-study"))
        name = default_name
    description: Any = raw.get("description")
    if description is not None and not isinstance(description, str):
        problems.add(
            "invalid description",
            ConfigIssue(
                "description",
                f"the description must be text, got {kind(description)}",
                "write it as one string (use '|' for several lines), or remove it",
            ),
        )
        description = None
    return name, description


def execution_section(raw: Mapping[str, Any], problems: Problems) -> ExecutionConfig:
    section = raw.get("execution")
    if section is None:
        return ExecutionConfig()
    if not isinstance(section, Mapping):
        problems.add(
            "invalid execution section",
            ConfigIssue(
                "execution",
                f"expected a mapping, got {kind(section)}",
                "write e.g. execution: {n_cycles: 3}, or remove the line for the defaults",
            ),
        )
        return ExecutionConfig()
    try:
        return ExecutionConfig.model_validate(dict(section))
    except ValidationError as e:
        problems.add("invalid execution section", *issues_from_validation(e, ExecutionConfig, "execution"))
        return ExecutionConfig()


def shared_fields(raw: Mapping[str, Any], study: bool, problems: Problems) -> dict[str, Any]:
    """The shared experiment fields; in a study, unknown top-level keys are reported once, not per point."""
    shared = {k: v for k, v in raw.items() if k not in STUDY_KEYS}
    known = [*ExperimentConfig.model_fields, *STUDY_KEYS]
    for key in [k for k in shared if k not in ExperimentConfig.model_fields]:
        fix = unknown_field_fix(str(key), known, top_level=True)
        problems.add("unknown field", ConfigIssue(str(key), f"unknown field {str(key)!r}", fix))
        del shared[key]
    for key in BACKENDS:  # a backend section is checked for shape even where no experiment uses it
        section = shared.get(key)
        if section is not None and not isinstance(section, Mapping):
            problems.add(
                "invalid backend section",
                ConfigIssue(key, f"expected a mapping, got {kind(section)}", f"write {key}: {{...}} or remove it"),
            )
            del shared[key]
    return shared
