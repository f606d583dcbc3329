"""FALSIFY-READY-008: the throughput gate's value and verdict do not depend on the machine's load.

The gate decides on tokens per CPU-second of the generating thread (apr.qa.throughput). Load is
simulated exactly, not hoped for: a fake machine whose generation costs a fixed CPU time per call,
and whose wall clock also advances by the time other processes take (the thread waits for a
core). The gate must give the same value and the same verdict whatever that other time is, equal
to the value computed from the machine's own cost (an exact fraction), with the threshold itself
passing. The real measurements, idle and with every core busy, are in bench/qa_load_bench.py.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.qa import QaOptions, run_qa
from apr.qa.gates import GATES
from apr.qa.throughput import UNIT, Clocks, ThroughputSample, measure_throughput, throughput_result
from tests.readiness.builders import build_checkpoint

TICK = 1024  # CPU costs and other processes' time are multiples of 1/TICK s: sums and quotients stay exact


class FakeMachine:
    """One process on a shared machine: each generation costs ``cost_ticks / TICK`` CPU-seconds of
    this thread and yields ``tokens``; meanwhile other processes take ``stolen_ticks[i] / TICK``
    seconds of the wall clock (call ``i``, cycling), during which this thread waits for a core."""

    def __init__(self, tokens: int, cost_ticks: int, stolen_ticks: list[int]) -> None:
        self.tokens, self.cost, self.stolen = tokens, cost_ticks / TICK, [t / TICK for t in stolen_ticks]
        self.cpu = self.wall = 0.0
        self.calls = 0

    def generate(self) -> int:
        other = self.stolen[self.calls % len(self.stolen)] if self.stolen else 0.0
        self.calls += 1
        self.cpu += self.cost
        self.wall += self.cost + other
        return self.tokens

    @property
    def clocks(self) -> Clocks:
        return Clocks(cpu=lambda: self.cpu, wall=lambda: self.wall)


def _gate(tokens: int, cost_ticks: int, stolen_ticks: list[int], threshold: float) -> Any:
    machine = FakeMachine(tokens, cost_ticks, stolen_ticks)
    return throughput_result(measure_throughput(machine.generate, clocks=machine.clocks), threshold)


@pytest.mark.falsifies("FALSIFY-READY-008")
@given(tokens=st.integers(1, 64), cost_ticks=st.integers(1, 4096),
       stolen_ticks=st.lists(st.integers(0, 100_000), min_size=1, max_size=8),
       threshold=st.floats(0, 20_000, allow_nan=False))
@example(tokens=16, cost_ticks=20, stolen_ticks=[3000], threshold=10.0)  # idle 819 tok/s; loaded wall clock 5.4
def test_falsify_ready_008_same_value_and_verdict_idle_and_under_load(
        tokens: int, cost_ticks: int, stolen_ticks: list[int], threshold: float) -> None:
    idle = _gate(tokens, cost_ticks, [0], threshold)
    loaded = _gate(tokens, cost_ticks, stolen_ticks, threshold)
    expected = float(Fraction(tokens * TICK, cost_ticks))  # tokens per CPU-second, from the machine's own cost
    assert idle.value == expected
    assert (loaded.value, loaded.passed) == (idle.value, idle.passed)
    assert loaded.passed is (expected >= threshold)
    assert loaded.unit == UNIT and loaded.threshold == threshold


@pytest.mark.falsifies("FALSIFY-READY-008")
@given(tokens=st.integers(1, 4096), cost_ticks=st.integers(1, 1 << 20))
def test_falsify_ready_008_the_threshold_itself_passes(tokens: int, cost_ticks: int) -> None:
    sample = ThroughputSample(tokens=tokens, cpu_seconds=cost_ticks / TICK, wall_seconds=1e6)
    rate = float(Fraction(tokens * TICK, cost_ticks))  # the oracle: the exact rate, rounded once
    assert throughput_result(sample, rate).passed  # at the threshold: GO
    assert throughput_result(sample, math.nextafter(rate, 0.0)).passed  # just below it: GO
    assert not throughput_result(sample, math.nextafter(rate, math.inf)).passed  # just above it: NO-GO


@pytest.mark.falsifies("FALSIFY-READY-008")
def test_falsify_ready_008_nothing_measured_fails_with_a_finite_report() -> None:
    mute = FakeMachine(0, 64, [0])
    silent = throughput_result(measure_throughput(mute.generate, clocks=mute.clocks), 0.0)
    assert not silent.passed and silent.value == 0.0  # no token generated: never GO, even at threshold 0
    frozen = throughput_result(ThroughputSample(tokens=16, cpu_seconds=0.0, wall_seconds=0.5), 10.0)
    assert not frozen.passed and frozen.value is None and "did not advance" in frozen.message
    json.dumps([silent.to_dict(), frozen.to_dict()], allow_nan=False)  # never NaN or Infinity in --json


@pytest.mark.falsifies("FALSIFY-READY-008")
def test_falsify_ready_008_generation_runs_on_one_intra_op_thread() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as on a 2-core machine: threads that spin-wait for each other under load
    seen: list[int] = []

    def generate() -> int:
        seen.append(torch.get_num_threads())
        return 4

    try:
        measure_throughput(generate, clocks=FakeMachine(4, 64, [0]).clocks)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)


class TickingClocks:
    """Clocks for a real model: CPU time advances 1/64 s per reading, the wall clock as much plus
    ``load`` seconds (other processes' time). The value is then exact, whatever the machine does."""

    def __init__(self, load: float) -> None:
        self.load, self.cpu_now, self.wall_now = load, 0.0, 0.0

    def cpu(self) -> float:
        self.cpu_now += 1 / 64
        return self.cpu_now

    def wall(self) -> float:
        self.wall_now += 1 / 64 + self.load
        return self.wall_now

    @property
    def clocks(self) -> Clocks:
        return Clocks(cpu=self.cpu, wall=self.wall)


def _only(*names: str) -> frozenset[str]:
    return frozenset(name for name, _ in GATES) - set(names)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tok_meta: dict[str, Any]) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("load") / "model.apr", tokenizer=tok_meta)


@pytest.mark.falsifies("FALSIFY-READY-008")
def test_falsify_ready_008_apr_qa_on_a_real_model_gives_the_same_report_under_load(checkpoint: Path) -> None:
    reports = {}
    for load in (0.0, 2.5):
        report = run_qa(checkpoint, QaOptions(skip=_only("throughput"), clocks=TickingClocks(load).clocks))
        reports[load] = next(g for g in report.to_dict()["gates"] if g["name"] == "throughput")
        assert report.verdict == "GO" and reports[load]["unit"] == UNIT
    idle, loaded = reports[0.0], reports[2.5]
    assert (loaded["value"], loaded["passed"], loaded["threshold"]) == (idle["value"], idle["passed"], 10.0)
    assert idle["value"] > 0 and float(idle["value"] * 64).is_integer()  # whole tokens per 1/64 CPU-second


@pytest.mark.falsifies("FALSIFY-READY-008")
def test_falsify_ready_008_regression_compares_cpu_rates_only(checkpoint: Path) -> None:
    def regression(previous: dict[str, Any]) -> dict[str, Any]:
        report = run_qa(checkpoint, QaOptions(skip=_only("throughput", "performance_regression"),
                                               clocks=TickingClocks(0.0).clocks, previous_report=previous))
        return {g["name"]: g for g in report.to_dict()["gates"]}

    rate = regression({})["throughput"]["value"]
    same = regression({"gates": [{"name": "throughput", "value": rate, "unit": UNIT}]})["performance_regression"]
    assert same["passed"] and not same["skipped"] and same["threshold"] == rate * 0.75
    faster = regression({"gates": [{"name": "throughput", "value": 2 * rate, "unit": UNIT}]})
    assert not faster["performance_regression"]["passed"]  # half the previous CPU rate: a regression
    wall = regression({"gates": [{"name": "throughput", "value": 1e9}]})["performance_regression"]
    assert wall["skipped"] and "wall-clock" in wall["message"]  # an old wall-clock rate is never compared
