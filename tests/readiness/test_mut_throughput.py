"""`apr.qa.throughput` with scripted clocks: when a run stops (no tokens, the CPU-time floor reached
exactly, the call cap), which of several runs is kept, the one-thread rule and the gate's result
texts and values (issue 23: mutation score of apr/qa/throughput.py).

The constants are written here from the module's documented contract (3 runs, a 0.05 CPU-second
floor, 64 calls at most, the unit ``tokens/cpu-second``), not read from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from apr.qa import throughput as tp
from apr.qa.throughput import Clocks, ThroughputSample, measure_throughput, meets_threshold, throughput_result


def _clock(values: Iterable[float]) -> Callable[[], float]:
    it = iter(values)
    return lambda: next(it)


def _counting(tokens: Iterable[int]) -> tuple[Callable[[], int], list[int]]:
    it = iter(tokens)
    calls: list[int] = []

    def generate() -> int:
        produced = next(it)
        calls.append(produced)
        return produced

    return generate, calls


def test_the_documented_constants() -> None:
    assert (tp.UNIT, tp.RUNS, tp.MIN_RUN_CPU_SECONDS, tp.MAX_CALLS_PER_RUN) == ("tokens/cpu-second", 3, 0.05, 64)


def test_a_run_stops_when_its_cpu_time_reaches_the_floor_exactly() -> None:
    generate, calls = _counting([4] * 10)
    sample = tp._one_run(generate, Clocks(cpu=_clock([0.0, 0.025, 0.05]), wall=_clock([10.0, 12.0])))
    assert calls == [4, 4]  # 0.05 - 0.0 == 0.05 exactly: the floor reached stops the run
    assert sample.tokens == 8 and sample.cpu_seconds == 0.05 and sample.wall_seconds == 2.0


def test_a_run_just_below_the_floor_goes_on() -> None:
    generate, calls = _counting([1] * 10)
    clocks = Clocks(cpu=_clock([0.0, 0.0499, 0.0501]), wall=_clock([0.0, 1.0]))
    assert tp._one_run(generate, clocks).tokens == 2 and calls == [1, 1]


def test_a_run_stops_at_the_first_call_that_produces_nothing() -> None:
    generate, calls = _counting([3, 0, 5])
    clocks = Clocks(cpu=_clock([0.0, 0.001, 0.002]), wall=_clock([0.0, 0.5]))
    assert tp._one_run(generate, clocks) == ThroughputSample(3, 0.002, 0.5)
    generate, calls = _counting([-1, 5])
    assert tp._one_run(generate, Clocks(cpu=_clock([0.0, 0.0]), wall=_clock([0.0, 0.0]))).tokens == -1
    assert calls == [-1]


def test_a_run_stops_after_64_calls_on_a_clock_that_never_advances() -> None:
    generate, calls = _counting([2] * 100)
    sample = tp._one_run(generate, Clocks(cpu=lambda: 7.0, wall=lambda: 3.0))
    assert len(calls) == 64 and sample == ThroughputSample(128, 0.0, 0.0)


def test_the_best_run_by_cpu_rate_is_kept() -> None:
    # run 1: 10 tokens in 0.1 s (100/s); run 2: 10 in 0.05 s (200/s); run 3: 10 in 0.08 s (125/s)
    cpu = _clock([0.0, 0.1, 1.0, 1.05, 2.0, 2.08])
    wall = _clock([0.0, 1.0, 5.0, 9.0, 20.0, 21.0])
    generate, calls = _counting([10] * 3)
    best = measure_throughput(generate, clocks=Clocks(cpu=cpu, wall=wall))
    assert calls == [10, 10, 10]  # three runs by default
    assert best.tokens == 10 and best.cpu_seconds == pytest.approx(0.05) and best.wall_seconds == 4.0


def test_an_equal_later_run_does_not_replace_the_first() -> None:
    cpu = _clock([0.0, 0.125, 1.0, 1.125])  # exactly 0.125 s each: equal rates
    wall = _clock([0.0, 1.0, 5.0, 7.0])
    generate, _ = _counting([10, 10])
    assert measure_throughput(generate, runs=2, clocks=Clocks(cpu=cpu, wall=wall)).wall_seconds == 1.0


@pytest.mark.parametrize(("runs", "made"), [(0, 1), (-3, 1), (1, 1), (2, 2), (5, 5)])
def test_at_least_one_run(runs, made) -> None:
    generate, calls = _counting([1] * 10)
    measure_throughput(generate, runs=runs, clocks=Clocks(cpu=_clock([0.0, 1.0] * 10), wall=lambda: 0.0))
    assert len(calls) == made


def test_a_model_that_generates_nothing_is_run_once() -> None:
    generate, calls = _counting([0, 5, 5])
    sample = measure_throughput(generate, clocks=Clocks(cpu=_clock([0.0, 0.5, 1.0, 2.0]), wall=lambda: 1.0))
    assert calls == [0] and sample.tokens == 0


def test_generation_runs_on_one_torch_thread_and_the_count_is_restored() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen: list[int] = []

        def generate() -> int:
            seen.append(torch.get_num_threads())
            return 1

        measure_throughput(generate, runs=1, clocks=Clocks(cpu=_clock([0.0, 1.0]), wall=lambda: 0.0))
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_thread_count_is_restored_after_an_error() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError), tp.one_intra_op_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("generation failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("tokens", "cpu", "threshold", "passes"), [
    (10, 1.0, 10.0, True),     # at the threshold: passes
    (10, 1.0, 9.999, True),
    (10, 1.0, 10.001, False),
    (10, 0.0, 0.0, False),     # not measured never passes, even against 0
    (0, 1.0, 0.0, True),       # measured, rate 0 >= 0
])
def test_meets_threshold(tokens, cpu, threshold, passes) -> None:
    assert meets_threshold(ThroughputSample(tokens, cpu, 1.0), threshold) is passes


def test_result_of_a_measured_run() -> None:
    doc = throughput_result(ThroughputSample(tokens=25, cpu_seconds=2.0, wall_seconds=10.0), 10.0).to_dict()
    assert doc["name"] == "throughput" and doc["passed"] is True and doc["skipped"] is False
    assert doc["value"] == 12.5 and doc["threshold"] == 10.0 and doc["unit"] == "tokens/cpu-second"
    assert doc["message"] == ("12.5 tok/s of CPU time, 1 thread (threshold 10); wall clock 2.5 tok/s, which depends "
                              "on the machine's load")


def test_result_below_the_threshold_fails_with_the_same_values() -> None:
    doc = throughput_result(ThroughputSample(tokens=9, cpu_seconds=1.0, wall_seconds=0.0), 10.0).to_dict()
    assert doc["passed"] is False and doc["value"] == 9.0 and doc["threshold"] == 10.0
    assert doc["message"].endswith("wall clock 0.0 tok/s, which depends on the machine's load")


@pytest.mark.parametrize("tokens", [0, -2])
def test_result_of_a_run_without_tokens(tokens) -> None:
    doc = throughput_result(ThroughputSample(tokens=tokens, cpu_seconds=1.0, wall_seconds=1.0), 2.5).to_dict()
    assert doc["name"] == "throughput" and doc["passed"] is False and doc["skipped"] is False
    assert doc["value"] == 0.0 and doc["threshold"] == 2.5 and doc["unit"] == "tokens/cpu-second"
    assert doc["message"] == "generation produced no tokens: 0 tokens/cpu-second (threshold 2.5)"


def test_result_of_a_clock_that_did_not_advance() -> None:
    result = throughput_result(ThroughputSample(tokens=30, cpu_seconds=0.0, wall_seconds=1.0), 2.5)
    doc = result.to_dict()
    assert doc["name"] == "throughput" and doc["skipped"] is False and doc["passed"] is False and doc["threshold"] == 2.5 and doc["unit"] == "tokens/cpu-second"
    assert result.value is None
    assert doc["message"] == ("the CPU clock did not advance over 30 generated tokens: no rate to compare with 2.5 "
                              "tokens/cpu-second")
