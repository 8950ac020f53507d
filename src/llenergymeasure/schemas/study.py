"""`StudyConfig`: a resolved list of experiments and how to execute them."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveInt, field_validator

from llenergymeasure.schemas._base import ConfigModel, StrictModel, sha256_16
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.config.text import MAX_NAME_CHARS, text_problem

CycleOrder = Literal["sequential", "interleaved", "shuffled"]
Concurrency = Literal["node", "device_set"]

#: `n_cycles` the CLI uses when neither the YAML nor --cycles sets it
CLI_DEFAULT_N_CYCLES = 3
#: most grid points a sweep may expand to unless `execution.max_grid_points` raises it (count)
DEFAULT_MAX_GRID_POINTS = 10_000
#: upper bounds: far above any real study, low enough to catch a typo or a runaway value
MAX_CYCLES = 1000
MAX_GAP_SECONDS = 86_400.0  # one day
MAX_TIMEOUT_SECONDS = 7 * 86_400  # one week
#: upper bound of `ExecutionConfig.max_attempts`
MAX_ATTEMPTS_LIMIT = 10


class ExecutionConfig(ConfigModel):
    """How a study runs: cycles, order, gaps, timeouts. Never part of any hash."""

    n_cycles: PositiveInt = Field(
        1,
        le=MAX_CYCLES,
        description=f"Repetitions of every experiment (count). The CLI uses {CLI_DEFAULT_N_CYCLES} when unset.",
    )
    cycle_order: CycleOrder = Field(
        "sequential",
        description="sequential: A1 A2 B1 B2; interleaved: A1 B1 A2 B2; shuffled: each cycle in a random order "
        "seeded from the study design hash.",
    )
    config_gap_seconds: NonNegativeFloat = Field(
        60.0,
        le=MAX_GAP_SECONDS,
        description="Pause between two experiments, in seconds (GPU cools down; countdown on stderr).",
    )
    cycle_gap_seconds: NonNegativeFloat = Field(
        120.0,
        le=MAX_GAP_SECONDS,
        description="Pause between two cycles, in seconds (replaces the config gap at a cycle boundary).",
    )
    max_consecutive_failures: PositiveInt = Field(
        3, le=10_000, description="Stop the study after this many failed runs in a row (count)."
    )
    max_attempts: PositiveInt = Field(
        1,
        le=MAX_ATTEMPTS_LIMIT,
        strict=True,
        description="Tries of one run (count). A run that failed for a transient reason (the container could not "
        "be created or started, the Docker daemon failed, its Ray node was lost) is run again, up to this many tries in "
        "all; never after an OOM kill, a timeout, a config or a harness error.",
    )
    experiment_timeout_seconds: PositiveInt = Field(
        7200, le=MAX_TIMEOUT_SECONDS, description="Wall-clock limit of one run (container or subprocess), in seconds."
    )
    silence_timeout_seconds: PositiveInt = Field(
        600, le=MAX_TIMEOUT_SECONDS, description="A run that prints nothing for this many seconds is killed (seconds)."
    )
    concurrency: Concurrency = Field(
        "node",
        description="On a Ray cluster (llem run --ray): node = one run per node at a time, so nothing shares a "
        "host's CPU, PCIe or power budget while it is measured; device_set = runs on disjoint GPU sets of one node "
        "at the same time (each result lists what else ran on its node: node.concurrent_runs). The docker and "
        "local runners always run one at a time.",
    )
    max_grid_points: PositiveInt = Field(
        DEFAULT_MAX_GRID_POINTS,
        le=1_000_000,
        description="Refuse a sweep whose grid has more points than this (count), computed before the grid is "
        "expanded. Raise it for a deliberately large study.",
    )


class SkippedPoint(StrictModel):
    """A sweep point that failed validation and is left out of the study."""

    overrides: dict[str, object] = Field(description="The sweep values (dotted keys) that made this point.")
    reason: str = Field(description="Why it was skipped, from the validators.")


class StudyConfig(StrictModel):
    """A resolved study: the experiments to run and how to run them."""

    name: str = Field(
        "study",
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="Study name, used in the study directory's name.",
    )
    description: str | None = Field(None, description="Free text kept with the results.")
    experiments: list[ExperimentConfig] = Field(min_length=1, description="Resolved experiments, in study order.")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig, description="How the study runs.")
    skipped: list[SkippedPoint] = Field(
        default_factory=list, description="Sweep points that failed validation and were skipped."
    )

    @field_validator("name")
    @classmethod
    def _name_text(cls, v: str) -> str:
        problem = text_problem(v)
        if problem is not None or not v.strip():
            raise ValueError(f"the name {problem or 'is blank'}; fix: use letters, digits, '-' or '_'")
        return v

    @property
    def study_design_hash(self) -> str:
        """SHA-256[:16] over the experiments' measurement hashes, in order: what is measured, not how it runs."""
        return sha256_16([e.measurement_config_hash() for e in self.experiments])

    def run_order(self) -> list[tuple[int, int]]:
        """``(experiment index, cycle)`` pairs in execution order; cycles count from 1."""
        n, cycles = len(self.experiments), self.execution.n_cycles
        order = self.execution.cycle_order
        if order == "sequential":
            return [(i, c) for i in range(n) for c in range(1, cycles + 1)]
        pairs: list[tuple[int, int]] = []
        for c in range(1, cycles + 1):
            indices = list(range(n))
            if order == "shuffled":
                random.Random(f"{self.study_design_hash}:{c}").shuffle(indices)
            pairs.extend((i, c) for i in indices)
        return pairs

    def run_count(self) -> int:
        return len(self.experiments) * self.execution.n_cycles
