"""The learning-rate schedule as a pure function (FALSIFY-TRAIN-SCHED-001)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apr.errors import UsageError
from apr.train.schedule import LrSchedule, default_lr_min

schedules = st.builds(
    lambda lr, warm, extra: LrSchedule(lr_max=lr, lr_min=default_lr_min(lr), warmup_steps=warm, total_steps=warm + extra),
    st.floats(1e-6, 1.0), st.integers(0, 50), st.integers(0, 200),
)


@pytest.mark.falsifies("FALSIFY-TRAIN-SCHED-001")
@given(schedules)
def test_falsify_train_sched_001_warmup_rises_then_cosine_falls(s: LrSchedule) -> None:
    lrs = [s.at(step) for step in range(s.total_steps + 3)]
    warm = lrs[:s.warmup_steps]
    assert all(a < b for a, b in pairwise(warm))  # strictly rising warmup
    assert all(0 < lr <= s.lr_max * (1 + 1e-12) for lr in lrs)
    decay = lrs[s.warmup_steps:s.total_steps]
    assert all(a >= b for a, b in pairwise(decay))  # never rises after warmup
    if decay:
        assert math.isclose(decay[0], s.lr_max)
    assert all(lr == s.lr_min for lr in lrs[s.total_steps:])  # floor after the end


@pytest.mark.falsifies("FALSIFY-TRAIN-SCHED-001")
def test_falsify_train_sched_001_known_points() -> None:
    s = LrSchedule(lr_max=1e-3, lr_min=1e-5, warmup_steps=10, total_steps=110)
    assert s.at(0) == pytest.approx(1e-4) and s.at(9) == pytest.approx(1e-3)
    assert s.at(60) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # cosine midpoint
    assert s.at(110) == 1e-5
    assert default_lr_min(3e-4) == pytest.approx(3e-6) and default_lr_min(1e-6) == 1e-7


def test_bad_schedule_flags() -> None:
    with pytest.raises(UsageError, match="--lr"):
        LrSchedule(lr_max=0.0, lr_min=0.0, warmup_steps=0, total_steps=1)
    with pytest.raises(UsageError, match="--warmup-steps"):
        LrSchedule(lr_max=1.0, lr_min=0.0, warmup_steps=-1, total_steps=1)
