"""Bad input, class by class: `llem run FILE --dry-run` exits 2 with one message, never hangs or crashes.

Each case is run in-process through the CLI entry point and checked for: exit code 2; one `error:`;
the file (or `<command line>`), the field and a `fix:` line in the message; the words that say what
is wrong; no traceback; nothing written; and a wall-clock time under 2 s (a hang guard: the signal
timeout stops a case that would block, and the measured time is asserted too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# imported here, so that import time is not charged to the first case's 2 s
from llenergymeasure.errors import printable
from llenergymeasure.orchestrator.cli import main
from llenergymeasure.orchestrator.cli.preview import print_preview  # noqa: F401

MAX_CASE_S = 2.0
CMDLINE = "<command line>"


@dataclass
class Case:
    """`text` is written to `study.yaml` (unless `setup` makes the config path); `where` is what the
    message must name as the source (`None` = the config file's path)."""

    id: str
    text: str | bytes | None
    field: str
    words: tuple[str, ...]
    args: tuple[str, ...] = ()
    setup: Callable[[Path], Path | None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    where: str | None = None


def _bomb(levels: int = 9) -> str:
    # the "billion laughs": 9 levels of 10 aliases each expand to 10**9 strings from ~600 bytes
    lines = ["model: gpt2", 'a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _alias_chain(n: int) -> str:
    lines = ["model: gpt2", "c0: &c0 [1]"]
    lines += [f"c{i}: &c{i} [*c{i - 1}]" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def _nested_block(levels: int) -> str:
    return "model: gpt2\n" + "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "x: 1\n"


def _fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def _symlink(tmp: Path, name: str, target: str) -> Path:
    path = tmp / name
    path.symlink_to(target)
    return path


def _write(tmp: Path, name: str, content: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def _sparse(tmp: Path, name: str, size: int) -> Path:
    path = tmp / name
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


def _user_config(content: str) -> Callable[[Path], Path | None]:
    def setup(tmp: Path) -> Path | None:
        _write(tmp, "user.yaml", content)
        return None

    return setup


def _model_dir(with_config: bool = True) -> Callable[[Path], Path | None]:
    def setup(tmp: Path) -> Path | None:
        (tmp / "m").mkdir()
        if with_config:
            (tmp / "m" / "config.json").write_text("{}")
        return None

    return setup


GRID_10x10 = "model: gpt2\nsweep:\n" + "".join(
    f"  passthrough_kwargs.k{i}: [{', '.join(map(str, range(10)))}]\n" for i in range(10)
)

CASES: list[Case] = [
    # ---- parser limits ---------------------------------------------------------------------------------------
    Case("deep-flow-list", "model: gpt2\nx: " + "[" * 5000 + "]" * 5000 + "\n", "<yaml>", ("nested deeper than",)),
    Case("deep-flow-map", "model: gpt2\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "<yaml>", ("nested deeper",)),
    Case("deep-block-map", _nested_block(200), "<yaml>", ("nested deeper than",)),
    Case(
        "deep-list-of-lists", "model: gpt2\nx:\n" + "".join("  " * i + "-\n" for i in range(100)), "<yaml>", ("deeper",)
    ),
    Case("recursive-alias-map", "model: gpt2\ndecoder: &a\n  x: *a\n", "<yaml>", ("recursive",)),
    Case("recursive-alias-list", "model: gpt2\nx: &a [1, *a]\n", "<yaml>", ("recursive",)),
    Case("recursive-alias-nested", "model: gpt2\nx: &a {y: [{z: *a}]}\n", "<yaml>", ("recursive",)),
    Case("alias-bomb", _bomb(), "<yaml>", ("aliases expand to", "limit of")),
    Case("alias-bomb-small", _bomb(6), "<yaml>", ("aliases expand to",)),
    Case(
        "alias-bomb-mapping",
        "model: gpt2\nb0: &b0 {x: 1, y: 2}\n"
        + "".join(f"b{i}: &b{i} {{p: *b{i - 1}, q: *b{i - 1}, r: *b{i - 1}}}\n" for i in range(1, 14)),
        "<yaml>",
        ("aliases expand to",),
    ),
    Case("alias-chain-deep", _alias_chain(60), "<yaml>", ("aliases nest deeper",)),
    Case("two-documents", "model: gpt2\n---\nmodel: opt\n", "<yaml>", ("more than one YAML document",)),
    Case("control-char-in-yaml", "model: gpt2\nname: a\x1bb\n", "<yaml>", ("not allowed",)),
    Case("undefined-alias", "model: *nothing\n", "<yaml>", ("undefined alias",)),
    # ---- paths -------------------------------------------------------------------------------------------------
    Case("model-nul", 'model: "gp\\0t2"\n', "model", ("NUL byte",)),
    # libyaml refuses a surrogate escape while parsing; a surrogate from the command line reaches validation
    Case("model-surrogate", 'model: "\\ud800x"\n', "<yaml>", ("invalid Unicode", "surrogate")),
    Case("model-control-char", 'model: "org/na\\x1bme"\n', "model", ("control character",)),
    Case("model-component-too-long", "model: ./" + "a" * 300 + "\n", "model", ("longer than 255",)),
    Case("model-path-too-long", "model: /" + "/".join(["b" * 200] * 25) + "\n", "model", ("longer than 4096",)),
    Case("model-unknown-user", "model: ~nosuchuser-llem/m\n", "model", ("cannot expand", "~nosuchuser-llem")),
    Case("dataset-nul", 'model: gpt2\ndataset: "a\\0.jsonl"\n', "dataset", ("NUL byte",)),
    Case("dataset-too-long", "model: gpt2\ndataset: " + "d" * 300 + ".jsonl\n", "dataset", ("longer than 255",)),
    Case("dataset-unknown-user", "model: gpt2\ndataset: ~nosuchuser-llem/p.jsonl\n", "dataset", ("cannot expand",)),
    Case("sweep-model-nul", 'sweep:\n  model: [gpt2, "x\\0y"]\n', "sweep.model", ("NUL byte",)),
    Case(
        "sweep-model-unknown-user", "sweep:\n  model: [gpt2, ~nosuchuser-llem/m]\n", "sweep.model", ("cannot expand",)
    ),
    Case(
        "sweep-dataset-long", "model: gpt2\nsweep:\n  dataset: [" + "e" * 300 + ".jsonl]\n", "sweep.dataset", ("255",)
    ),
    Case("experiments-model-surrogate", 'experiments:\n  - model: "\\udcff"\n', "<yaml>", ("invalid Unicode",)),
    Case(
        "experiments-dataset-unknown-user",
        "model: gpt2\nexperiments:\n  - {n: 2}\n  - dataset: ~nosuchuser-llem/x.jsonl\n",
        "experiments[1].dataset",
        ("cannot expand",),
    ),
    Case("lora-adapter-nul", 'model: gpt2\nlora:\n  adapter: "a\\0b"\n', "lora.adapter", ("NUL byte",)),
    Case("flag-model-nul", None, "model", ("NUL byte",), args=("--model", "a\x00b"), where=CMDLINE),
    Case("flag-model-surrogate", None, "model", ("surrogate",), args=("--model", "\udcff"), where=CMDLINE),
    Case(
        "flag-model-unknown-user",
        None,
        "--model",
        ("cannot expand",),
        args=("--model", "~nosuchuser-llem/m"),
        where=CMDLINE,
    ),
    Case("flag-model-too-long", None, "model", ("longer than",), args=("--model", "./" + "z" * 5000), where=CMDLINE),
    Case("flag-model-over-file", "model: gpt2\n", "model", ("NUL byte",), args=("--model", "q\x00")),
    Case("flag-dataset-long", "model: gpt2\n", "dataset", ("255",), args=("--dataset", "f" * 300 + ".jsonl")),
    # ---- special files -----------------------------------------------------------------------------------------
    Case("config-fifo", None, "<file>", ("FIFO",), setup=lambda t: _fifo(t, "pipe.yaml")),
    Case("config-dev-zero", None, "<file>", ("character device",), setup=lambda t: Path("/dev/zero")),
    Case(
        "config-symlink-dev-zero",
        None,
        "<file>",
        ("character device",),
        setup=lambda t: _symlink(t, "z.yaml", "/dev/zero"),
    ),
    Case(
        "config-huge", None, "<file>", ("limit of", "bytes"), setup=lambda t: _sparse(t, "big.yaml", 50 * 1024 * 1024)
    ),
    Case("config-proc-mem", None, "<file>", ("cannot read",), setup=lambda t: Path("/proc/self/mem")),
    Case("config-nul-in-path", None, "<file>", ("NUL",), setup=lambda t: Path(str(t / "a\x00b.yaml"))),
    Case("config-name-too-long", None, "<file>", ("too long",), setup=lambda t: t / ("n" * 300 + ".yaml")),
    Case("config-missing", None, "<file>", ("file not found",), setup=lambda t: t / "absent.yaml"),
    Case("config-binary", b"\x7fELF\x02\x01\x01\x00\x00\x00", "<file>", ("binary",)),
    Case(
        "dataset-fifo",
        "model: gpt2\ndataset: ./pipe.jsonl\n",
        "dataset",
        ("not a regular file",),
        setup=lambda t: (_fifo(t, "pipe.jsonl"), None)[1],
    ),
    Case(
        "dataset-dev-zero",
        "model: gpt2\ndataset: ./zero.jsonl\n",
        "dataset",
        ("not a regular file",),
        setup=lambda t: (_symlink(t, "zero.jsonl", "/dev/zero"), None)[1],
    ),
    # ---- grid size ---------------------------------------------------------------------------------------------
    Case("grid-10x10", GRID_10x10, "sweep", ("10,000,000,000 grid points", "max_grid_points")),
    Case(
        "grid-over-default-cap",
        # 3 × 101 × 40 = 12,120 points, over the default 10,000
        "model: gpt2\nsweep:\n  precision: [fp16, bf16, fp32]\n  n: ["
        + ", ".join(map(str, range(1, 102)))
        + "]\n  max_output_tokens: ["
        + ", ".join(map(str, range(1, 41)))
        + "]\n",
        "sweep",
        ("12,120 grid points", "limit of 10,000"),
    ),
    Case(
        "grid-over-set-cap",
        "model: gpt2\nexecution: {max_grid_points: 5}\nsweep:\n  n: [1, 2, 3]\n  precision: [fp16, bf16]\n",
        "sweep",
        ("6 grid points", "limit of 5"),
    ),
    Case(
        "grid-scoped-counted",
        "model: gpt2\nexecution: {max_grid_points: 3}\nsweep:\n  backend: [pytorch, vllm]\n"
        "  pytorch.batch_size: [1, 2, 4]\n  vllm.engine.max_num_seqs: [8]\n",
        "sweep",
        ("4 grid points", "limit of 3"),
    ),
    Case(
        "grid-plus-explicit-over-cap",
        "model: gpt2\nexecution: {max_grid_points: 4}\nsweep:\n  n: [1, 2, 3]\nexperiments: [{n: 7}, {n: 8}]\n",
        "sweep",
        ("3 grid points + 2 explicit experiments", "limit of 4"),
    ),
    Case(
        "explicit-over-cap",
        "model: gpt2\nexecution: {max_grid_points: 2}\nexperiments: [{n: 1}, {n: 2}, {n: 3}]\n",
        "experiments",
        ("3 explicit experiments", "limit of 2"),
    ),
    Case(
        "passthrough-inf", "model: gpt2\npassthrough_kwargs: {a: {b: .inf}}\n", "passthrough_kwargs.a.b:", ("finite",)
    ),
    Case(
        "thousands-of-bad-points",
        "model: gpt2\nsweep:\n  n: [" + ", ".join(str(-i) for i in range(1, 5001)) + "]\n",
        "sweep.n",
        ("50+ problems", "checking stopped after 50 problems"),
    ),
    # ---- type errors that used to escape -------------------------------------------------------------------------
    Case("description-mapping", "model: gpt2\ndescription: {a: 1}\n", "description", ("must be text",)),
    Case("description-list", "model: gpt2\nexperiments: [{}]\ndescription: [a, b]\n", "description", ("must be text",)),
    Case(
        "sweep-section-and-subkey",
        "model: gpt2\nsweep:\n  decoder: [{top_p: 0.5}]\n  decoder.top_p: [0.9]\n",
        "sweep.decoder.top_p",
        ("overlaps",),
    ),
    Case(
        "shared-section-list-and-sweep",
        "model: gpt2\ndecoder: [1]\nsweep:\n  decoder.top_p: [0.5]\n",
        "decoder",
        ("mapping",),
    ),
    Case("decoder-preset-list", "model: gpt2\ndecoder:\n  preset: [standard]\n", "decoder.preset", ("allowed values",)),
    Case("sweep-value-mapping", "model: gpt2\nsweep:\n  precision: {fp16: 1}\n", "sweep.precision", ("must be lists",)),
    Case("experiment-entry-scalar", "model: gpt2\nexperiments: [fp16]\n", "experiments[0]", ("expected a mapping",)),
    Case(
        "experiment-entry-nested-sweep",
        "model: gpt2\nexperiments:\n  - sweep: {n: [1]}\n",
        "experiments[0].sweep",
        ("top level",),
    ),
    Case(
        "dataset-mapping-typo",
        "model: gpt2\ndataset: {synthetic: true, input_tokenz: 4}\n",
        "input_tokenz",
        ("unknown field",),
    ),
    # ---- refusals: duplicates, non-finite, bounds, strictness ------------------------------------------------------
    Case("duplicate-top-key", "model: gpt2\nn: 3\nn: 4\n", "n", ("duplicate key", "line 2")),
    Case(
        "duplicate-nested-key",
        "model: gpt2\ndecoder:\n  top_p: 0.5\n  top_p: 0.6\n",
        "decoder.top_p",
        ("duplicate key",),
    ),
    Case("duplicate-in-entry", "model: gpt2\nexperiments:\n  - {n: 1, n: 2}\n", "experiments[0].n", ("duplicate key",)),
    Case("duplicate-sweep-key", "model: gpt2\nsweep:\n  n: [1]\n  n: [2]\n", "sweep.n", ("duplicate key",)),
    Case(
        "inf-gap", "model: gpt2\nexecution:\n  config_gap_seconds: .inf\n", "execution.config_gap_seconds", ("finite",)
    ),
    Case("nan-temperature", "model: gpt2\ndecoder:\n  temperature: .nan\n", "decoder.temperature", ("finite",)),
    Case(
        "inf-baseline", "model: gpt2\nbaseline:\n  duration_seconds: .inf\n", "baseline.duration_seconds", ("finite",)
    ),
    Case(
        "inf-thermal-floor",
        "model: gpt2\nwarmup:\n  thermal_floor_seconds: .Inf\n",
        "warmup.thermal_floor_seconds",
        ("finite",),
    ),
    Case(
        "nan-penalty",
        "model: gpt2\nbackend: vllm\nvllm:\n  sampling:\n    presence_penalty: .NaN\n",
        "vllm.sampling.presence_penalty",
        ("finite",),
    ),
    Case(
        "negative-inf-tolerance",
        "model: gpt2\nenergy:\n  cross_check_tolerance_pct: -.inf\n",
        "energy.cross_check_tolerance_pct",
        ("finite",),
    ),
    Case("inf-in-sweep", "model: gpt2\nsweep:\n  decoder.top_p: [0.5, .inf]\n", "sweep.decoder.top_p", ("finite",)),
    Case("huge-n", "model: gpt2\nn: 1000000000000\n", "n", ("less than or equal",)),
    Case(
        "huge-cycles", "model: gpt2\nexecution: {n_cycles: 1000000000}\n", "execution.n_cycles", ("less than or equal",)
    ),
    Case(
        "huge-gap",
        "model: gpt2\nexecution: {cycle_gap_seconds: 1.0e+12}\n",
        "execution.cycle_gap_seconds",
        ("less than or equal",),
    ),
    Case("huge-warmup", "model: gpt2\nwarmup: {n_warmup: 99999999}\n", "warmup.n_warmup", ("less than or equal",)),
    Case(
        "huge-output-tokens",
        "model: gpt2\nmax_output_tokens: 99999999999\n",
        "max_output_tokens",
        ("less than or equal",),
    ),
    Case("seed-too-large", "model: gpt2\nrandom_seed: 18446744073709551616\n", "random_seed", ("less than or equal",)),
    Case("seed-negative", "model: gpt2\nrandom_seed: -1\n", "random_seed", ("greater than or equal",)),
    Case("bool-as-count", "model: gpt2\nn: yes\n", "n", ("valid integer", "boolean is not a number")),
    Case("bool-in-gpus", "model: gpt2\ngpus: [true]\n", "gpus[0]", ("valid integer",)),
    Case("bool-as-tokens", "model: gpt2\nmax_output_tokens: true\n", "max_output_tokens", ("valid integer",)),
    Case("bool-as-cycles", "model: gpt2\nexecution: {n_cycles: on}\n", "execution.n_cycles", ("valid integer",)),
    Case("string-as-count", "model: gpt2\nn: '5'\n", "n", ("valid integer",)),
    Case("float-as-count", "model: gpt2\nn: 1.5\n", "n", ("valid integer",)),
    Case("int-as-bool", "model: gpt2\ndecoder: {do_sample: 1}\n", "decoder.do_sample", ("valid boolean",)),
    Case(
        "float-tp-size",
        "model: gpt2\nbackend: tensorrt\ntensorrt:\n  tp_size: 1.5\n",
        "tensorrt.tp_size",
        ("valid integer",),
    ),
    Case("execution-false", "model: gpt2\nexecution: false\n", "execution", ("expected a mapping",)),
    Case("execution-list", "model: gpt2\nexperiments: [{}]\nexecution: [1, 2]\n", "execution", ("expected a mapping",)),
    Case(
        "section-list-with-flag",
        "model: gpt2\npytorch: [1, 2]\n",
        "pytorch",
        ("expected a mapping",),
        args=("--batch-size", "4"),
    ),
    Case(
        "unused-backend-section-list",
        "model: gpt2\nvllm: [null]\nsweep:\n  n: [1, 2]\n",
        "vllm",
        ("expected a mapping",),
    ),
    Case("section-scalar", "model: gpt2\ndecoder: 5\n", "decoder", ("valid dictionary",)),
    Case("sweep-empty", "model: gpt2\nsweep: {}\n", "sweep", ("empty or not a mapping",)),
    Case(
        "sweep-empty-with-flag", "model: gpt2\nsweep: {}\n", "sweep", ("empty or not a mapping",), args=("-p", "fp16")
    ),
    Case("sweep-null", "model: gpt2\nsweep:\n", "sweep", ("empty or not a mapping",)),
    Case("experiments-empty", "model: gpt2\nexperiments: []\n", "experiments", ("non-empty list",)),
    Case("experiments-null", "model: gpt2\nexperiments:\n", "experiments", ("non-empty list",)),
    Case("name-null", "model: gpt2\nname:\n", "name", ("must be text",)),
    Case("name-list", "model: gpt2\nname: [a, b]\n", "name", ("must be text",)),
    Case("name-empty", "model: gpt2\nname: ''\n", "name", ("blank",)),
    Case("name-number", "model: gpt2\nexperiments: [{}]\nname: 12\n", "name", ("must be text",)),
    Case("name-too-long", "model: gpt2\nname: " + "x" * 500 + "\n", "name", ("over 100 characters",)),
    Case("model-empty", "model: ''\n", "model", ("at least 1 character",)),
    Case("model-list", "model: [gpt2, opt]\n", "model", ("sweep",)),
    # ---- user config and environment -----------------------------------------------------------------------------
    Case(
        "user-images-typo",
        "model: gpt2\n",
        "runners.images",
        ("unknown backend 'pytroch'", "did you mean 'pytorch'"),
        setup=_user_config("runners:\n  images:\n    pytroch: my/img:1\n"),
        env={"LLEM_CONFIG": "user.yaml"},
        where="user.yaml",
    ),
    Case(
        "user-shm-size",
        "model: gpt2\n",
        "runners.docker.shm_size",
        ("not a size",),
        setup=_user_config("runners:\n  docker:\n    shm_size: lots\n"),
        env={"LLEM_CONFIG": "user.yaml"},
        where="user.yaml",
    ),
    Case(
        "user-duplicate-key",
        "model: gpt2\n",
        "runners.pytorch",
        ("duplicate key",),
        setup=_user_config("runners:\n  pytorch: local\n  pytorch: docker\n"),
        env={"LLEM_CONFIG": "user.yaml"},
        where="user.yaml",
    ),
    Case(
        "user-inf-pue",
        "model: gpt2\n",
        "measurement.datacenter_pue",
        ("finite",),
        setup=_user_config("measurement:\n  datacenter_pue: .inf\n"),
        env={"LLEM_CONFIG": "user.yaml"},
        where="user.yaml",
    ),
    Case(
        "user-section-typo",
        "model: gpt2\n",
        "runners.pytroch",
        ("did you mean 'pytorch'",),
        setup=_user_config("runners:\n  pytroch: local\n"),
        env={"LLEM_CONFIG": "user.yaml"},
        where="user.yaml",
    ),
    Case(
        "llem-config-missing",
        "model: gpt2\n",
        "LLEM_CONFIG",
        ("does not exist",),
        env={"LLEM_CONFIG": "nope.yaml"},
        where="nope.yaml",
    ),
    Case(
        "llem-config-dir",
        "model: gpt2\n",
        "<file>",
        ("is a directory",),
        setup=lambda t: ((t / "cfgdir").mkdir(), None)[1],
        env={"LLEM_CONFIG": "cfgdir"},
        where="cfgdir",
    ),
    Case(
        "llem-config-fifo",
        "model: gpt2\n",
        "<file>",
        ("FIFO",),
        setup=lambda t: (_fifo(t, "user-pipe.yaml"), None)[1],
        env={"LLEM_CONFIG": "user-pipe.yaml"},
        where="user-pipe.yaml",
    ),
    Case(
        "env-pue-nan",
        "model: gpt2\n",
        "measurement.datacenter_pue",
        ("LLEM_DATACENTER_PUE",),
        env={"LLEM_DATACENTER_PUE": "nan"},
        where="",
    ),
    # ---- local inputs at dry-run ----------------------------------------------------------------------------------
    Case("local-model-missing", "model: ./no-such-model\n", "model", ("does not exist",)),
    Case("local-model-no-config", "model: ./m\n", "model", ("no config.json",), setup=_model_dir(with_config=False)),
    Case(
        "local-model-is-file",
        "model: ./m.bin\n",
        "model",
        ("not a directory",),
        setup=lambda t: (_write(t, "m.bin", "x"), None)[1],
    ),
    Case(
        "local-model-in-entry",
        "model: gpt2\nexperiments:\n  - {}\n  - model: ./gone\n",
        "experiments[1].model",
        ("does not exist",),
    ),
    Case("local-model-in-sweep", "sweep:\n  model: [gpt2, ./gone]\n", "sweep.model", ("does not exist",)),
    Case("flag-local-model-missing", None, "model", ("does not exist",), args=("--model", "./gone"), where=CMDLINE),
    Case(
        "local-model-config-fifo",
        "model: ./m\n",
        "model",
        ("no config.json",),
        setup=lambda t: ((t / "m").mkdir(), _fifo(t / "m", "config.json"), None)[2],
    ),
    Case(
        "local-model-config-dev-zero",
        "model: ./m\n",
        "model",
        ("no config.json",),
        setup=lambda t: ((t / "m").mkdir(), _symlink(t / "m", "config.json", "/dev/zero"), None)[2],
    ),
    Case(
        "local-dataset-huge",
        "model: gpt2\ndataset: ./big.jsonl\n",
        "dataset",
        ("larger than",),
        setup=lambda t: (_sparse(t, "big.jsonl", 2 * 1024**3), None)[1],
    ),
    Case("local-dataset-missing", "model: gpt2\ndataset: ./none.jsonl\n", "dataset", ("does not exist",)),
    Case(
        "local-dataset-bad-json",
        "model: gpt2\ndataset: ./p.jsonl\n",
        "dataset",
        ("p.jsonl:2", "not valid JSON"),
        setup=lambda t: (_write(t, "p.jsonl", '{"prompt": "a"}\n{oops\n'), None)[1],
    ),
    Case(
        "local-dataset-no-prompt",
        "model: gpt2\ndataset: ./p.jsonl\n",
        "dataset",
        ("p.jsonl:3", '"prompt"'),
        setup=lambda t: (_write(t, "p.jsonl", '{"_source": "x"}\n{"prompt": "a"}\n{"text": "b"}\n'), None)[1],
    ),
    Case(
        "local-dataset-empty",
        "model: gpt2\ndataset: ./p.jsonl\n",
        "dataset",
        ("no prompts",),
        setup=lambda t: (_write(t, "p.jsonl", "\n\n"), None)[1],
    ),
    Case(
        "local-dataset-in-entry",
        "model: gpt2\nexperiments:\n  - {}\n  - dataset: ./p.jsonl\n",
        "experiments[1].dataset",
        ('"prompt"',),
        setup=lambda t: (_write(t, "p.jsonl", "[1, 2]\n"), None)[1],
    ),
    # ---- messages: renames, misplaced fields, shapes, odd keys -----------------------------------------------------
    Case("rename-engine", "model: gpt2\nengine: vllm\n", "engine", ("did you mean 'backend'",)),
    Case("rename-dtype", "model: gpt2\ndtype: fp16\n", "dtype", ("did you mean 'precision'",)),
    Case(
        "rename-transformers",
        "model: gpt2\ntransformers:\n  batch_size: 2\n",
        "transformers",
        ("did you mean 'pytorch'",),
    ),
    Case("rename-num-input-prompts", "model: gpt2\nnum_input_prompts: 5\n", "num_input_prompts", ("did you mean 'n'",)),
    Case(
        "rename-max-new-tokens",
        "model: gpt2\nmax_new_tokens: 5\n",
        "max_new_tokens",
        ("did you mean 'max_output_tokens'",),
    ),
    Case(
        "rename-experiment-gap",
        "model: gpt2\nexecution:\n  experiment_gap_seconds: 5\n",
        "execution.experiment_gap_seconds",
        ("did you mean 'config_gap_seconds'",),
    ),
    Case(
        "rename-experiment-gap-top",
        "model: gpt2\nexperiment_gap_seconds: 5\n",
        "experiment_gap_seconds",
        ("execution.config_gap_seconds",),
    ),
    Case(
        "rename-tensor-parallel",
        "model: gpt2\nbackend: tensorrt\ntensorrt:\n  tensor_parallel_size: 2\n",
        "tensorrt.tensor_parallel_size",
        ("did you mean 'tp_size'",),
    ),
    Case("rename-grid", "model: gpt2\ngrid:\n  precision: [fp16]\n", "grid", ("did you mean 'sweep'",)),
    Case(
        "rename-grid-in-study",
        "model: gpt2\nexperiments: [{}]\ngrid:\n  precision: [fp16]\n",
        "grid",
        ("did you mean 'sweep'",),
    ),
    Case("runners-in-study", "model: gpt2\nrunners:\n  pytorch: local\n", "runners", ("user config", "LLEM_RUNNER_")),
    Case(
        "runners-in-sweep-study",
        "model: gpt2\nsweep: {n: [1]}\nrunners: {pytorch: local}\n",
        "runners",
        ("LLEM_RUNNER_",),
    ),
    Case("misplaced-n-cycles", "model: gpt2\nn_cycles: 3\n", "n_cycles", ("under execution",)),
    Case("misplaced-temperature", "model: gpt2\ntemperature: 0.5\n", "temperature", ("under decoder",)),
    Case("dotted-top-level-key", "model: gpt2\ndecoder.top_p: 0.5\n", "decoder.top_p", ("write it nested",)),
    Case("typo-sweep-key", "model: gpt2\nsweeps:\n  n: [1]\n", "sweeps", ("did you mean 'sweep'",)),
    Case(
        "typo-experiment-key", "model: gpt2\nexperiment:\n  - {n: 1}\n", "experiment", ("did you mean 'experiments'",)
    ),
    Case("backend-list", "model: gpt2\nbackend: [pytorch, vllm]\n", "backend", ("sweep: {backend:",)),
    Case("precision-list", "model: gpt2\nprecision: [fp16, bf16]\n", "precision", ("sweep: {precision:",)),
    Case("n-list", "model: gpt2\nn: [10, 20]\n", "n", ("sweep: {n:",)),
    Case("non-string-key", "model: gpt2\n1: 2\n", "1", ("not a string", "quote it")),
    Case("null-key", "model: gpt2\n~: 2\n", "~", ("not a string",)),
    Case("list-key", "model: gpt2\n? [a, b]\n: 1\n", "<sequence>", ("list or mapping",)),
    Case("empty-key", 'model: gpt2\n"": 1\n', "<empty>", ("empty field name",)),
    Case("nested-non-string-key", "model: gpt2\ndecoder:\n  3: 1\n", "decoder.3", ("not a string",)),
    Case("bool-key", "model: gpt2\ndecoder:\n  yes: 1\n", "decoder.yes", ("not a string", "bool")),
    Case("unknown-field-escaped", 'model: gpt2\n"bad\\x1b[31mkey": 1\n', "bad\\x1b[31mkey", ("unknown field",)),
    Case("user-name-escaped", 'model: gpt2\nname: "a\\x1b[2Jb"\n', "name", ("control character U+001B",)),
    Case("int-too-long-to-read", "model: gpt2\nn: " + "9" * 5000 + "\n", "<yaml>", ("4300 digits", "shorten")),
    Case("value-case", "model: gpt2\nprecision: FP16\n", "precision", ("did you mean 'fp16'",)),
    Case("value-near-miss", "model: gpt2\nbackend: torch\n", "backend", ("did you mean 'pytorch'",)),
    Case(
        "value-in-section", "model: gpt2\ndecoder: {preset: Standard}\n", "decoder.preset", ("did you mean 'standard'",)
    ),
    Case(
        "env-image-bad",
        "model: gpt2\n",
        "runners.images",
        ("not a valid tag", "set by LLEM_IMAGE_PYTORCH"),
        env={"LLEM_IMAGE_PYTORCH": "bad image"},
        where="",
    ),
    Case(
        "env-runner-bad",
        "model: gpt2\n",
        "runners.vllm",
        ("LLEM_RUNNER_VLLM",),
        env={"LLEM_RUNNER_VLLM": "podman"},
        where="",
    ),
    Case(
        "cycles-flag-huge",
        "model: gpt2\n",
        "--cycles",
        ("less than or equal",),
        args=("--cycles", "999999999"),
        where=CMDLINE,
    ),
]

# names that must never be suggested for a key that means something else
NOT_SUGGESTED = [
    ("dataset_order", "model: gpt2\ndataset_order: shuffled\n", "'dataset'"),
    ("base", "model: gpt2\nbase: 5\n", "'baseline'"),
    ("base-in-study", "model: gpt2\nexperiments: [{}]\nbase: 5\n", "'baseline'"),
    ("engine-in-vllm", "model: gpt2\nbackend: vllm\nvllm:\n  engine_args: {}\n", "'engine'"),
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def run_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str, float]]:
    """Run `llem run ... --dry-run` in `tmp_path`, with no user config or LLEM_* variable from outside."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("LLEM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))

    def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
        start = time.monotonic()
        code = main(["run", *args, "--dry-run"])
        elapsed = time.monotonic() - start
        captured = capsys.readouterr()
        return code, captured.out, captured.err, elapsed

    return run


@pytest.mark.timeout(10, method="signal")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_message(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    config: Path | None = tmp_path / "study.yaml"
    made = case.setup(tmp_path) if case.setup else None
    if made is not None:
        config = made
    elif isinstance(case.text, bytes):
        assert config is not None
        config.write_bytes(case.text)
    elif case.text is not None:
        assert config is not None
        config.write_text(case.text, encoding="utf-8", errors="surrogatepass")
    else:
        config = None
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    before = _tree(tmp_path)

    args = ([str(config)] if config is not None else []) + list(case.args)
    code, out, err, elapsed = run_isolated(args, capsys)

    assert code == 2, err + out
    assert err.count("error:") == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    where = case.where if case.where is not None else printable(str(config))
    assert where in err, err
    assert case.field in err, err
    assert "fix:" in err, err
    for word in case.words:
        assert word in err, err
    assert "\x1b" not in err  # control characters from the input are escaped
    err.encode("utf-8")  # and the message is printable text (no lone surrogates)
    assert _tree(tmp_path) == before  # nothing written
    assert out == ""
    assert elapsed < MAX_CASE_S, f"{case.id} took {elapsed:.2f} s"


@pytest.mark.timeout(10, method="signal")
@pytest.mark.parametrize(("case", "text", "never"), NOT_SUGGESTED, ids=[c[0] for c in NOT_SUGGESTED])
def test_no_suggestion_of_a_field_that_means_something_else(
    case: str,
    text: str,
    never: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    code, _, err, _ = run_isolated([str(path)], capsys)
    assert code == 2 and "unknown field" in err and "fix:" in err, err
    assert f"did you mean {never}" not in err, err


def test_every_problem_of_a_file_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_isolated: Callable[..., tuple[int, str, str, float]]
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        "model: gpt2\n"  # 1
        "precison: fp16\n"  # 2: unknown field
        "n: 3\n"  # 3
        "n: 4\n"  # 4: duplicate key
        "execution:\n"  # 5
        "  n_cycles: 0\n"  # 6: out of range
        "sweep:\n"  # 7
        "  pytorch.batchsize: [1, 2]\n"  # 8: unknown sweep key
        "experiments:\n"  # 9
        "  - {max_output_tokens: -1}\n"  # 10: out of range, in an entry
        "  - ./not-a-mapping\n"  # 11
    )
    code, _, err, _ = run_isolated([str(path)], capsys)
    assert code == 2
    assert "problems in the config" in err
    for expected in (
        f"{path}:2: precison",
        f"{path}:4: n: duplicate key",
        f"{path}:6: execution.n_cycles",
        f"{path}:8: sweep.pytorch.batchsize",
        f"{path}:10: experiments[0].max_output_tokens",
        f"{path}:11: experiments[1]",
    ):
        assert expected in err, err
    assert err.count("fix:") >= 6


# ---- accepted input: the checks do not refuse what is valid -------------------------------------------------------

GOOD = [
    (
        "merge-key-anchor",
        "defaults: &d {n: 5}\nmodel: gpt2\n"[0:0]
        + "model: gpt2\nexperiments:\n  - &e {n: 5}\n  - {<<: *e, precision: fp16}\n",
    ),
    ("execution-null", "model: gpt2\nexecution:\n"),
    ("description-multiline", "model: gpt2\ndescription: |\n  two\n  lines\n"),
    ("seed-max", "model: gpt2\nrandom_seed: 18446744073709551615\n"),
    (
        "grid-at-set-cap",
        "model: gpt2\nexecution: {max_grid_points: 6}\nsweep:\n  n: [1, 2, 3]\n  precision: [fp16, bf16]\n",
    ),
    ("unicode-name", "model: gpt2\nname: étude-日本\n"),
    ("float-for-float-field", "model: gpt2\ndecoder: {temperature: 1}\nexecution: {config_gap_seconds: 0}\n"),
    ("bom-and-crlf", "\ufeffmodel: gpt2\r\nn: 5\r\n"),
    ("nesting-in-passthrough", "model: gpt2\npassthrough_kwargs: {a: {b: {c: [1, 2, {d: 3}]}}}\n"),
]


@pytest.mark.timeout(10, method="signal")
@pytest.mark.parametrize(("case", "text"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_input_is_still_accepted(
    case: str,
    text: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err, elapsed = run_isolated([str(path)], capsys)
    assert code == 0, err
    assert "dry run: nothing was executed" in out
    assert elapsed < MAX_CASE_S


def test_local_model_and_dataset_accepted_and_odd_config_json_gives_unknown_vram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_isolated: Callable[..., tuple[int, str, str, float]]
) -> None:
    (tmp_path / "m").mkdir()
    # wrong types everywhere the estimate reads: the preview degrades to "unknown", never crashes
    (tmp_path / "m" / "config.json").write_text(
        '{"hidden_size": "64", "num_hidden_layers": [2], "vocab_size": true, "num_attention_heads": 0}'
    )
    (tmp_path / "p.jsonl").write_text('{"_source": "test"}\n{"prompt": "hello"}\n\n{"prompt": "world"}\n')
    path = tmp_path / "study.yaml"
    path.write_text("model: ./m\ndataset: ./p.jsonl\n")
    code, out, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err
    assert "unknown" in out


@pytest.mark.parametrize(
    "config_json",
    [
        '{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100, "num_attention_heads": 0}',
        '{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100, "num_attention_heads": "4"}',
        "[1, 2, 3]",
        "{not json",
        '{"hidden_size": 1e400, "num_hidden_layers": 2, "vocab_size": 100}',
    ],
)
def test_vram_preview_degrades_instead_of_crashing(
    config_json: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(config_json)
    path = tmp_path / "study.yaml"
    path.write_text("model: ./m\n")
    code, _, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err
    assert "Traceback" not in err


def test_preview_columns_show_backend_section_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_isolated: Callable[..., tuple[int, str, str, float]]
) -> None:
    # rows 2 and 3 differ only in pytorch.batch_size; the vllm row has no pytorch section at all
    path = tmp_path / "study.yaml"
    path.write_text(
        "model: gpt2\nexperiments:\n  - {backend: vllm}\n"
        "  - {backend: pytorch, pytorch: {batch_size: 1}}\n  - {backend: pytorch, pytorch: {batch_size: 8}}\n"
    )
    code, out, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert "pytorch.batch_size" in header.split()
    assert "pytorch " not in header + " " and "vllm " not in header.replace("vllm.", "")
    rows = [line.split() for line in out.splitlines() if line.split()[1:2] == ["gpt2"]]
    column = header.split().index("pytorch.batch_size")
    assert [r[column] for r in rows] == ["-", "1", "8"]


def test_duplicate_explicit_experiment_is_reported_as_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_isolated: Callable[..., tuple[int, str, str, float]]
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("model: gpt2\nexperiments:\n  - {precision: fp16}\n  - {precision: fp16}\n")
    code, out, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err
    assert "experiments[1]" in out and "duplicate of experiment #1" in out
    assert "invalid" not in out


def test_control_characters_in_a_name_are_escaped_in_the_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_isolated: Callable[..., tuple[int, str, str, float]]
) -> None:
    (tmp_path / "m\u202eevil").mkdir()
    ((tmp_path / "m\u202eevil") / "config.json").write_text("{}")
    path = tmp_path / "study.yaml"
    path.write_text("model: ./m\u202eevil\n", encoding="utf-8")
    code, out, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err
    assert "\u202e" not in out and "\\u202e" in out


# ---- a few cases through a real process: real argv bytes, a real blocking FIFO, real stderr encoding ---------------

_LLEM = [sys.executable, "-c", "from llenergymeasure.orchestrator.entry import main; main()"]


def _run_llem(args: list[str | bytes], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLEM_")}
    env["XDG_CONFIG_HOME"] = str(cwd / "xdg")
    # the in-process cases carry the 2 s guard; here interpreter start-up is included, so the guard is wider
    return subprocess.run([*_LLEM, "run", *args, "--dry-run"], cwd=cwd, env=env, capture_output=True, timeout=30)


@pytest.mark.parametrize(
    ("case", "args", "words"),
    [
        ("argv-undecodable-byte", [b"--model", b"./m\xff"], [b"surrogate", b"fix:"]),
        ("fifo-config", ["pipe.yaml"], [b"FIFO", b"fix:"]),
        ("alias-bomb", ["bomb.yaml"], [b"aliases expand to", b"fix:"]),
    ],
)
def test_bad_input_in_a_real_process(case: str, args: list[str | bytes], words: list[bytes], tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "bomb.yaml").write_text(_bomb())
    before = _tree(tmp_path)
    proc = _run_llem(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert b"Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    proc.stderr.decode("utf-8")  # the message is valid text: the undecodable byte is printed as an escape
    assert _tree(tmp_path) == before


def test_an_empty_user_config_means_defaults(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    (tmp_path / "user.yaml").write_text("# nothing set yet\n")
    monkeypatch.setenv("LLEM_CONFIG", "user.yaml")
    path = tmp_path / "study.yaml"
    path.write_text("model: gpt2\n")
    code, _, err, _ = run_isolated([str(path)], capsys)
    assert code == 0, err


@pytest.mark.timeout(10, method="signal")
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--backend", "torch"], ["--backend", "did you mean --backend pytorch?"]),
        (["--precision", "FP16"], ["--precision", "did you mean --precision fp16?"]),
        (["--order", "random"], ["--order", "use one of sequential, interleaved, shuffled"]),
        (["--backend", "\x1b[2J"], ["--backend", "\\x1b[2J"]),
        (["-n", "0"], ["-n"]),
        (["-n", "many"], ["-n", "valid integer"]),
        (["--batch-size", "-3"], ["--batch-size"]),
        (["--cycles", "1.5"], ["--cycles"]),
        (["--quiet", "--verbose"], ["--quiet"]),
        (["--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_bad_flags_exit_2_with_a_usage_message(
    args: list[str],
    words: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_isolated: Callable[..., tuple[int, str, str, float]],
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("model: gpt2\n")
    before = _tree(tmp_path)
    code, out, err, elapsed = run_isolated([str(path), *args], capsys)
    assert code == 2, err
    assert "Traceback" not in err and "\x1b" not in err, err
    assert "Error:" in err and "--help" in err, err  # typer's usage message, which points to --help
    for word in words:
        assert word in err, err
    assert out == "" and _tree(tmp_path) == before
    assert elapsed < MAX_CASE_S
