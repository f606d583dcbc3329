"""Lying headers and bombs are refused before allocation, each within 256 MiB peak RSS.

Each bomb runs in a fresh child under a 2 GiB address-space limit; the child reports its own peak
RSS (VmHWM; ``os.wait4`` would count the forking worker's RSS too). ``bench/bomb_rss.py`` prints
the same table. Known failures are in another team's module (or a limit choice) and are reported;
they must fail here until fixed.
"""

from __future__ import annotations

import pytest

from tests.reliability.bombs import BOMBS, RSS_LIMIT_MIB, measure


def _param(name: str):
    bug = BOMBS[name].known_bug
    return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=bug)] if bug else [])


@pytest.mark.falsifies("FALSIFY-RELIABILITY-004")
@pytest.mark.parametrize("name", [_param(n) for n in BOMBS])
def test_falsify_reliability_004_bomb_refused_within_256_mib(tmp_path, name):
    result = measure(name, tmp_path / "bomb", timeout=8.0)
    assert result.outcome == "refused", f"{name}: {result.outcome} ({result.detail})"
    assert result.peak_rss_mib <= RSS_LIMIT_MIB, f"{name}: peak RSS {result.peak_rss_mib} MiB"
