"""The timeline sampler in its own process, on simulated GPUs: real child processes, the system clocks.

The simulated devices are ramps, so a sample's power says when (on the driver's clock) it was read: a child
that kept its own time origin would read a different power at the same timestamp.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from llenergymeasure.harness.energy.device import MeasuredDevice, PynvmlProvider, measured_devices
from llenergymeasure.harness.energy.nvml import NvmlMeter
from llenergymeasure.harness.energy.sampler import PowerSampler
from llenergymeasure.harness.energy.sampler_process import ChildConfig, ChildDevices, SamplerProcess
from llenergymeasure.schemas.simulated_gpus import SimulatedGpuSpec
from llenergymeasure.simgpu import SimulatedNvml

RAMP_W_PER_S = 100.0


def ramp(start_w: float, faults: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"power": {"kind": "ramp", "start_w": start_w, "w_per_s": RAMP_W_PER_S}, "faults": faults or []}


def open_simulated(*devices: dict[str, object]) -> tuple[SimulatedNvml, PynvmlProvider, list[MeasuredDevice]]:
    driver = SimulatedNvml(SimulatedGpuSpec.model_validate({"devices": list(devices)}))
    provider = PynvmlProvider(driver)
    ids = list(range(len(devices)))
    return driver, provider, measured_devices(provider, ids, [10 + i for i in ids])


def child_of(provider: PynvmlProvider, count: int) -> ChildDevices:
    driver = provider.sampler_driver()
    assert driver is not None
    return ChildDevices(driver=driver, device_ids=list(range(count)), host_ids=[10 + i for i in range(count)])


def test_sampler_process_ticks_on_the_parents_clock_and_time_origin() -> None:
    driver, provider, devices = open_simulated(ramp(100.0), ramp(300.0))
    sampler = PowerSampler(devices, 0.05, child=child_of(provider, 2))
    try:
        started = time.monotonic()
        sampler.start()
        assert sampler.background == "process"
        assert sampler.process_id not in (None, os.getpid())
        time.sleep(0.6)
        sampler.stop()
        stopped = time.monotonic()
    finally:
        provider.close()
    samples = sampler.samples()
    for host_index, start_w in ((10, 100.0), (11, 300.0)):
        own = [s for s in samples if s.device_index == host_index]
        assert len(own) >= 8, "a 50 ms grid over 0.6 s"
        times = [s.t_s for s in own]
        assert times == sorted(times) and started < times[0] and times[-1] < stopped
        for s in own:
            assert s.power_w is not None and s.read_done_s is not None
            # read between t_s and read_done_s, on the parent driver's clock: the ramp pins the origin
            low = start_w + RAMP_W_PER_S * (s.t_s - driver._origin)
            high = start_w + RAMP_W_PER_S * (s.read_done_s - driver._origin)
            assert low - 0.001 <= s.power_w <= high + 0.001
    first_full = [s for s in samples if s.temperature_c is not None]
    assert first_full, "the slow readings come with the first tick"


def test_samples_of_both_processes_merge_into_one_time_ordered_timeline() -> None:
    _, provider, devices = open_simulated(ramp(100.0))
    sampler = PowerSampler(devices, 0.05, child=child_of(provider, 1))
    try:
        sampler.start()
        edges = []
        for _ in range(3):
            time.sleep(0.12)
            edges.append(sampler.sample_now())  # a window edge, read in this process
        so_far = len(sampler.samples())  # the child's samples so far are handed over on demand
        time.sleep(0.12)
        assert len(sampler.samples()) > so_far
        sampler.stop()
    finally:
        provider.close()
    times = [s.t_s for s in sampler.samples()]
    assert times == sorted(times)
    assert set(edges) <= set(times)
    assert len(times) - len(edges) >= 6


def test_simulated_faults_count_calls_across_the_harness_and_the_sampler_process() -> None:
    """The nth call is the harness's nth, whichever process makes it: 2 power reads here, the 4th in the child."""
    driver, provider, devices = open_simulated(ramp(100.0, [{"call": "power", "nth": 4, "error": "unknown"}]))
    sampler = PowerSampler(devices, 0.05, child=child_of(provider, 1))
    meter = NvmlMeter(devices, sampler)
    try:
        sampler.sample_now()
        meter.start_window()  # power read 2 (the opening edge's sample)
        sampler.start()  # reads 3, 4 (the fault), ... in the child
        time.sleep(0.4)
        window = meter.stop_window()
        sampler.stop()
        powers = [s.power_w for s in sampler.samples()]
    finally:
        provider.close()
    assert powers.count(None) == 1
    assert powers.index(None) == 3, "the child's second tick"
    assert sampler.read_failures(10) == {"power_instant": 1}
    assert devices[0].device.read_failures() == {}
    assert [w.message for w in window.warnings if w.code == "nvml_read_errors"] == [
        "GPU 10: 1 NVML read(s) failed and were retried (power_instant 1)"
    ]
    assert window.method == "counter"
    # the counts came back into this process when the driver closed: every power read of both processes
    assert driver._handles[0].calls["power"] == len(powers)


def test_shared_call_counts_are_removed_when_the_driver_closes() -> None:
    driver, provider, _ = open_simulated(ramp(100.0, [{"call": "energy", "nth": 99, "error": "unknown"}]))
    path = driver.share_counts()
    assert path.exists() and driver.share_counts() == path
    provider.close()
    assert not path.exists()


def test_sampler_falls_back_to_a_thread_when_its_process_cannot_open_the_devices(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, provider, devices = open_simulated(ramp(100.0))
    child = child_of(provider, 1)
    child["driver"] = {**child["driver"], "counts_path": "/nonexistent/llem-counts"}
    sampler = PowerSampler(devices, 0.05, child=child)
    try:
        with caplog.at_level(logging.WARNING):
            sampler.start()
        time.sleep(0.2)
        sampler.stop()
    finally:
        provider.close()
    assert sampler.background == "thread"
    assert sampler.process_id is None
    assert len(sampler.samples()) >= 3
    (message,) = [r.getMessage() for r in caplog.records if r.name.endswith("energy.sampler")]
    assert message.startswith("the sampler process could not open the devices: ")
    assert message.endswith("; the power sampler runs in a thread instead")


def test_a_killed_sampler_process_ends_the_timeline_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    _, provider, devices = open_simulated(ramp(100.0))
    sampler = PowerSampler(devices, 0.05, child=child_of(provider, 1))
    try:
        sampler.start()
        time.sleep(0.2)
        before = len(sampler.samples())
        pid = sampler.process_id
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        with caplog.at_level(logging.WARNING):
            after = sampler.samples()
        sampler.sample_now()  # this process's reads still work
        sampler.stop()
    finally:
        provider.close()
    assert len(after) == before, "nothing arrives from a dead process"
    assert len(sampler.samples()) == before + 1
    assert "the timeline ends here" in caplog.text


def test_sampler_process_exits_when_its_parent_stops_talking() -> None:
    _, provider, _ = open_simulated(ramp(100.0))
    config = ChildConfig(**child_of(provider, 1), interval_s=0.05, aux_every=20)
    child = SamplerProcess.start(config)
    try:
        assert child._proc.stdin is not None
        child._proc.stdin.close()  # what the parent's death looks like from the child
        assert child._proc.wait(timeout=5) == 0
    finally:
        child.kill()
        provider.close()


def test_sampler_process_ignores_ctrl_c() -> None:
    """Ctrl-C reaches the whole process group; the harness, not the child, decides when sampling ends."""
    _, provider, _ = open_simulated(ramp(100.0))
    child = SamplerProcess.start(ChildConfig(**child_of(provider, 1), interval_s=0.05, aux_every=20))
    try:
        os.kill(child.pid, signal.SIGINT)
        time.sleep(0.2)
        assert len(child.flush().samples) >= 2
        assert child.stop().error is None
        assert child._proc.returncode == 0
    finally:
        child.kill()
        provider.close()


def test_a_sampler_process_takes_no_injected_clock() -> None:
    _, provider, devices = open_simulated(ramp(100.0))
    try:
        with pytest.raises(ValueError, match="system clocks"):
            PowerSampler(devices, 0.05, clock=lambda: 0.0, child=child_of(provider, 1))
    finally:
        provider.close()


def test_provider_tells_how_another_process_opens_its_driver() -> None:
    import pynvml

    assert PynvmlProvider(pynvml).sampler_driver() == {"kind": "nvml"}
    assert PynvmlProvider(object()).sampler_driver() is None  # a test double cannot be reopened elsewhere
    driver, provider, _ = open_simulated(ramp(100.0))
    try:
        config = provider.sampler_driver()
        assert config is not None
        assert config["kind"] == "simulated" and config["origin_s"] == driver._origin
        assert SimulatedGpuSpec.model_validate(config["spec"]) == driver.spec
    finally:
        provider.close()


def test_no_writable_temp_directory_keeps_the_sampler_in_a_thread(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tempfile

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(30, "Read-only file system")

    _, provider, _ = open_simulated(ramp(100.0, [{"call": "energy", "nth": 9, "error": "unknown"}]))
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    try:
        with caplog.at_level(logging.WARNING):
            assert provider.sampler_driver() is None
    finally:
        provider.close()
    assert "Read-only file system" in caplog.text and "sampling in a thread" in caplog.text


def test_a_driver_on_an_injected_clock_cannot_be_shared_with_another_process() -> None:
    driver = SimulatedNvml(SimulatedGpuSpec.model_validate({"devices": [ramp(100.0)]}), clock=lambda: 5.0)
    with pytest.raises(ValueError, match="injected clock"):
        driver.child_config()


def test_a_hung_sampler_process_is_given_up_on_and_killed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from llenergymeasure.harness.energy import sampler_process

    monkeypatch.setattr(sampler_process, "ANSWER_TIMEOUT_S", 0.3)
    _, provider, devices = open_simulated(ramp(100.0))
    sampler = PowerSampler(devices, 0.05, child=child_of(provider, 1))
    try:
        sampler.start()
        pid = sampler.process_id
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive, silent
        with caplog.at_level(logging.WARNING):
            assert sampler.samples() == []
        sampler.stop()
    finally:
        provider.close()
    assert "no answer in 0.3 s" in caplog.text
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
