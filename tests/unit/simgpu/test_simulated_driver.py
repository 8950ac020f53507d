"""The simulated NVML driver and its spec: traces, counter, faults, field values, and bad specs."""

from __future__ import annotations

import json
from pathlib import Path

import pynvml
import pytest

from llenergymeasure.errors import ConfigError
from llenergymeasure.harness.energy.device import PynvmlProvider
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml, load_spec, simulated_nvml
from llenergymeasure.simgpu.traces import energy_j, power_w


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def spec(*devices: dict[str, object]) -> SimulatedGpuSpec:
    return SimulatedGpuSpec.model_validate({"devices": list(devices)})


SQUARE = {"kind": "square", "low_w": 100, "high_w": 300, "hz": 10, "phase_s": 0.0}


def test_square_wave_is_high_for_the_first_half_of_each_period_and_integrates_exactly() -> None:
    trace = spec({"power": SQUARE}).devices[0].power
    assert [power_w(trace, t) for t in (0.0, 0.049, 0.05, 0.099, 0.1)] == [300, 300, 100, 100, 300]
    # by hand: one period = 300 W × 0.05 s + 100 W × 0.05 s = 20 J; 1.07 s = 10 periods + 0.05 s high + 0.02 s low
    assert energy_j(trace, 1.0) == pytest.approx(200.0)
    assert energy_j(trace, 1.07) == pytest.approx(200.0 + 15.0 + 2.0)
    shifted = spec({"power": {**SQUARE, "phase_s": 0.05}}).devices[0].power
    # rising edge at 0.05 s: [0, 0.05) is the low half of the previous period → 5 J, then 15 J high
    assert power_w(shifted, 0.0) == 100
    assert energy_j(shifted, 0.1) == pytest.approx(5.0 + 15.0)


def test_ramp_integrates_exactly_and_a_falling_ramp_stops_at_zero() -> None:
    up = spec({"power": {"kind": "ramp", "start_w": 100, "w_per_s": 20}}).devices[0].power
    assert energy_j(up, 5.0) == pytest.approx(100 * 5 + 20 * 25 / 2)  # 750 J
    down = spec({"power": {"kind": "ramp", "start_w": 100, "w_per_s": -10}}).devices[0].power
    assert power_w(down, 20.0) == 0.0
    assert energy_j(down, 20.0) == pytest.approx(100 * 10 / 2)  # the triangle to 10 s, then nothing


def test_counter_is_the_integral_at_the_last_update_in_whole_millijoules() -> None:
    clock = Clock()
    nvml = SimulatedNvml(spec({"power": {"kind": "constant", "watts": 250}}), clock=clock)
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    clock.t = 1.019  # last update at 1.00 s (period 0.02 s) → 250 J
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(handle) == 250_000
    clock.t = 1.021  # update at 1.02 s → 255 J
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(handle) == 255_000


def test_faults_raise_pynvml_errors_on_the_nth_call_of_their_kind_only() -> None:
    nvml = SimulatedNvml(
        spec(
            {
                "power": {"kind": "constant", "watts": 1},
                "faults": [
                    {"call": "energy", "nth": 2, "error": "unknown"},
                    {"call": "power", "nth": 1, "error": "gpu_is_lost"},
                ],
            }
        )
    )
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    with pytest.raises(pynvml.NVMLError_Unknown):
        nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    nvml.nvmlDeviceGetTotalEnergyConsumption(h)  # the third works again
    values = nvml.nvmlDeviceGetFieldValues(
        h, [pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION]
    )
    # like real NVML: the call succeeds, each field carries its own return code
    assert [v.nvmlReturn for v in values] == [pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_SUCCESS]


def test_any_fault_counts_every_call_on_the_device() -> None:
    nvml = SimulatedNvml(
        spec(
            {"power": {"kind": "constant", "watts": 1}, "faults": [{"call": "any", "nth": 2, "error": "not_supported"}]}
        )
    )
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    nvml.nvmlDeviceGetName(h)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)


def test_the_real_adapter_reads_simulated_devices() -> None:
    clock = Clock()
    nvml = SimulatedNvml(
        spec(
            {"name": "Sim H100", "memory_mib": 81559, "power": {"kind": "constant", "watts": 250}},
            {"power": SQUARE, "energy_counter": False},
        ),
        clock=clock,
    )
    provider = PynvmlProvider(nvml)
    assert provider.simulated and provider.device_count() == 2
    a, b = provider.device(0), provider.device(1)
    clock.t = 2.0
    assert (a.name, a.energy_mj(), a.power_instant_mw(), a.memory_total_mb()) == ("Sim H100", 500_000, 250_000, 81559)
    assert a.temperature_c() == 55.0  # 30 °C + 0.1 °C/W × 250 W
    assert a.compute_pids() == [] and a.mig_mode() is False and a.persistence_mode() is True
    assert b.energy_mj() is None  # no counter: NOT_SUPPORTED, mapped to None like a pre-Volta GPU
    assert b.power_and_energy() == (300_000, None)
    assert provider.driver_version() == "simulated"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gpus.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ('{"devices": [', "<json>", "fix the JSON syntax"),
        ('{"devices": [{"power": {"kind": "sine", "watts": 1}}]}', "devices[0].power", "power.kind is one of"),
        ('{"devices": [{"power": {"kind": "constant", "watts": -5}}]}', "devices[0].power.watts", "≥ 0"),
        ('{"devices": [{"power": {"kind": "constant", "watts": 5}, "colour": 1}]}', "devices[0].colour", "remove"),
        (
            '{"devices": [{"power": {"kind": "constant", "watts": 5}, "faults": [{"call": "energy", "nth": 0, '
            '"error": "unknown"}]}]}',
            "devices[0].faults[0].nth",
            "≥ 1",
        ),
    ],
)
def test_bad_spec_is_a_config_error_naming_file_field_and_fix(tmp_path: Path, text: str, field: str, fix: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert err.value.exit_code == 2
    rendered = err.value.render()
    assert str(path) in rendered and f": {field}:" in rendered and fix in rendered


def test_missing_spec_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        simulated_nvml({"LLEM_SIMULATE_GPUS": str(tmp_path / "nope.json")})
    assert "LLEM_SIMULATE_GPUS" in err.value.render() and "nope.json" in err.value.render()


def test_the_spec_of_the_documentation_loads(tmp_path: Path) -> None:
    doc = {
        "devices": [
            {
                "name": "Sim H100",
                "memory_mib": 81559,
                "power": {"kind": "constant", "watts": 250},
                "energy_counter": {"update_period_s": 0.02},
                "faults": [{"call": "energy", "nth": 2, "error": "unknown"}],
            }
        ]
    }
    loaded = load_spec(write(tmp_path, json.dumps(doc)))
    assert loaded.devices[0].faults[0].nth == 2
    assert simulated_nvml({}) is None


def test_the_documented_spec_and_the_example_file_load() -> None:
    root = Path(__file__).resolve().parents[3]
    guide = (root / "docs" / "user-guide.md").read_text()
    section = guide[guide.index("### The spec") :]
    block = section[section.index("```json") + len("```json") : section.index("```", section.index("```json") + 7)]
    assert SimulatedGpuSpec.model_validate_json(block).devices[0].faults[0].error == "unknown"
    example = load_spec(root / "examples" / "simulated-gpus.json")
    assert [d.energy_counter is False for d in example.devices] == [False, False, True]
