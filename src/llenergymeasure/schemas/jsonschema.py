"""Generate the JSON Schema files for experiment and study YAML (for YAML editors) and results.

    python -m llenergymeasure.schemas.jsonschema           # write docs/schema/*.json (make docs also does it)
    python -m llenergymeasure.schemas.jsonschema --check   # exit 1 if they drifted from the models

The study file schema is derived from the experiment schema: every experiment
field may appear at the top level (shared), under ``experiments:`` entries, and
its dotted path may be a key of ``sweep:`` whose value is a non-empty list.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from llenergymeasure.schemas._generated import project_root, write_or_check
from llenergymeasure.schemas.config.experiment import ExperimentConfig
from llenergymeasure.schemas.results import ExperimentResult
from llenergymeasure.schemas.study import ExecutionConfig
from llenergymeasure.schemas.study_result import StudyResult

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def experiment_schema() -> dict[str, Any]:
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "llenergymeasure experiment"
    return schema


def study_schema() -> dict[str, Any]:
    exp = ExperimentConfig.model_json_schema()
    defs = dict(exp.pop("$defs", {}))
    partial = copy.deepcopy(exp)
    partial.pop("required", None)
    partial["title"] = "Experiment fields (all optional here)"
    defs["PartialExperiment"] = partial
    execution = ExecutionConfig.model_json_schema()
    defs.update(execution.pop("$defs", {}))
    defs["ExecutionConfig"] = execution
    properties = dict(partial["properties"])
    properties.update(
        {
            "name": {"type": "string", "description": "Study name, used in the study directory's name."},
            "description": {"type": "string", "description": "Free text kept with the results."},
            "sweep": {
                "type": "object",
                "description": "Cartesian grid: field or dotted path (backend-scoped like pytorch.batch_size) → list.",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1},
            },
            "experiments": {
                "type": "array",
                "minItems": 1,
                "description": "Explicit experiments, merged over the shared top-level fields.",
                "items": {"$ref": "#/$defs/PartialExperiment"},
            },
            "execution": {"$ref": "#/$defs/ExecutionConfig"},
        }
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "llenergymeasure study",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "anyOf": [{"required": ["sweep"]}, {"required": ["experiments"]}],
        "$defs": defs,
    }


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files(root: Path) -> dict[Path, str]:
    out = root / "docs" / "schema"
    result = ExperimentResult.model_json_schema()
    result["$schema"] = SCHEMA_DIALECT
    study_result = StudyResult.model_json_schema()
    study_result["$schema"] = SCHEMA_DIALECT
    return {
        out / "experiment.schema.json": _dump(experiment_schema()),
        out / "study.schema.json": _dump(study_schema()),
        out / "result.schema.json": _dump(result),
        out / "study_result.schema.json": _dump(study_result),
    }


def main(argv: list[str]) -> int:
    return write_or_check(generated_files(project_root()), argv, "make docs")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
