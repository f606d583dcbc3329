"""Deliberate faults for FALSIFY-READY-008: a throughput gate whose verdict follows the machine's load.

Each undoes one part of what makes the gate load-independent (apr.qa.throughput): deciding on CPU
time, on one intra-op thread, with the threshold itself passing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from apr.qa.throughput import ThroughputSample


def _wall_clock_rate(self: ThroughputSample) -> float:
    return self.tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0


# The rate the gate decides on is the wall-clock one again (the behaviour before issue 14).
wall_clock_rate = property(_wall_clock_rate)


@contextlib.contextmanager
def threads_left_alone() -> Iterator[None]:
    """The measurement runs on torch's default thread count (spin-waits charged, siblings' work unseen)."""
    yield


def strictly_above(sample: ThroughputSample, threshold: float) -> bool:
    """A rate exactly at the threshold fails (`--assert-tps 10` would need more than 10)."""
    return sample.is_measured and sample.rate > threshold
