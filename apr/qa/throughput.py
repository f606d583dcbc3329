"""Throughput that does not depend on the machine's load: tokens per CPU-second of one thread.

A wall-clock rate measures the machine as much as the model. On a busy machine the generating
thread waits for a core, and torch's intra-op threads spin-wait for each other while the other
work holds the cores, so the same file read 20.9 tok/s in `apr qa` and 3.8 tok/s a minute later
in `apr readiness` (issue 14), and the verdict flipped. What the model costs is the CPU time the
generating thread spends, which other processes barely change: it runs with **one** intra-op
thread (`one_intra_op_thread`, restored after), so all the work is on the thread whose CPU clock
is read and no spin-waiting is charged to it. Measured on the demo model (2 cores; docs/publish.md):
idle 799 tok/CPU-s, with three busy loops 772, with three memory-bound loops 724; the wall-clock
rate of the same runs fell to a median of 465 and, with torch's default two threads, to 154.

The rate is the best of a few runs (contention can only make a run slower), each run long enough
for the CPU clock's resolution (`MIN_RUN_CPU_SECONDS`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from apr.qa.gate import GateResult

UNIT = "tokens/cpu-second"  # the gate's `unit` in `apr qa --json`: tokens per CPU-second of one thread
RUNS = 3
MIN_RUN_CPU_SECONDS = 0.05  # a run repeats the generation until its CPU time reaches this
MAX_CALLS_PER_RUN = 64


@dataclass(frozen=True, slots=True)
class Clocks:
    """Where time is read: ``cpu`` is this thread's CPU time, ``wall`` the elapsed time (for the record).

    Tests substitute fake clocks (one that adds other processes' time to ``wall``, say).
    """

    cpu: Callable[[], float] = time.thread_time
    wall: Callable[[], float] = time.perf_counter


@dataclass(frozen=True, slots=True)
class ThroughputSample:
    """One run: tokens generated, the generating thread's CPU seconds, and the elapsed seconds."""

    tokens: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def is_measured(self) -> bool:
        """Whether the CPU clock advanced (a clock coarser than the run cannot give a rate)."""
        return self.cpu_seconds > 0

    @property
    def rate(self) -> float:
        """Tokens per CPU-second: what the gate decides on (0.0 when nothing was measured)."""
        return self.tokens / self.cpu_seconds if self.is_measured else 0.0

    @property
    def wall_rate(self) -> float:
        """Tokens per elapsed second: reported, never decided on (it depends on the machine's load)."""
        return self.tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0


@contextlib.contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block with torch on one intra-op thread, then restore the previous count.

    With several threads, a thread that waits for a descheduled sibling spins and is charged CPU
    time for it, and its own clock misses the siblings' work: neither is the model's cost.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; without it nothing else is threaded
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _one_run(generate: Callable[[], int], clocks: Clocks) -> ThroughputSample:
    tokens, calls = 0, 0
    cpu_start, wall_start = clocks.cpu(), clocks.wall()
    while True:
        produced = generate()
        tokens += produced
        calls += 1
        cpu = clocks.cpu() - cpu_start
        if produced <= 0 or cpu >= MIN_RUN_CPU_SECONDS or calls >= MAX_CALLS_PER_RUN:
            return ThroughputSample(tokens, cpu, clocks.wall() - wall_start)


def measure_throughput(generate: Callable[[], int], *, runs: int = RUNS, clocks: Clocks | None = None) -> ThroughputSample:
    """The best of ``runs`` runs of ``generate`` (which returns the number of tokens it produced).

    Args:
        generate: one generation on an already loaded model; returns its token count.
        runs: how many runs to keep the best of (by tokens per CPU-second).
        clocks: where time is read (default: this thread's CPU time and `time.perf_counter`).

    Returns:
        The best run's sample; ``rate`` is the gate's value.

    Example:
        >>> measure_throughput(lambda: sum(range(200_000)) and 16).tokens >= 16
        True
    """
    clocks = clocks or Clocks()
    best: ThroughputSample | None = None
    with one_intra_op_thread():
        for _ in range(max(1, runs)):
            sample = _one_run(generate, clocks)
            if best is None or sample.rate > best.rate:
                best = sample
            if sample.tokens == 0:
                break  # the model generates nothing: more runs would not either
    assert best is not None
    return best


def meets_threshold(sample: ThroughputSample, threshold: float) -> bool:
    """The gate's rule: measured, and at least ``threshold`` tokens per CPU-second (the boundary passes)."""
    return sample.is_measured and sample.rate >= threshold


def throughput_result(sample: ThroughputSample, threshold: float) -> GateResult:
    """The throughput gate's result for a measurement: value and threshold in `UNIT`.

    Example:
        >>> throughput_result(ThroughputSample(tokens=20, cpu_seconds=2.0, wall_seconds=8.0), 10.0).passed
        True
    """
    if sample.tokens <= 0:
        return GateResult("throughput", False, False, f"generation produced no tokens: 0 {UNIT} (threshold "
                          f"{threshold:g})", value=0.0, threshold=threshold, unit=UNIT)
    if not sample.is_measured:
        return GateResult("throughput", False, False,
                          f"the CPU clock did not advance over {sample.tokens} generated tokens: no rate to compare "
                          f"with {threshold:g} {UNIT}", threshold=threshold, unit=UNIT)
    return GateResult(
        "throughput", meets_threshold(sample, threshold), False,
        f"{sample.rate:.1f} tok/s of CPU time, 1 thread (threshold {threshold:g}); "
        f"wall clock {sample.wall_rate:.1f} tok/s, which depends on the machine's load",
        value=sample.rate, threshold=threshold, unit=UNIT,
    )


__all__ = ["UNIT", "Clocks", "ThroughputSample", "measure_throughput", "meets_threshold", "one_intra_op_thread",
           "throughput_result"]
