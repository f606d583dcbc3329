"""Replay the committed fuzz corpus deterministically (contracts/reliability-v1.yaml).

Every file under ``tests/reliability/corpus/<target>/`` is fed to its target, and also 16
deterministic mutations of it (a fixed seed per file), so a parser change that breaks on bad
bytes shows up here without running a campaign. The only exceptions allowed are the project's own
(`AprError`; none at all for the contract loader). Crashers a campaign found in another team's
module stay in the corpus and are marked as known below until that module is fixed.
"""

from __future__ import annotations

import os
import random
import traceback
import zlib

import pytest

from tests.reliability.cli_targets import KNOWN_INTERNAL_ERRORS
from tests.reliability.targets import TARGETS, cleanup, corpus_files, mutate, outcome

# corpus file name -> the bug it reproduces (reported; the test must fail until it is fixed)
KNOWN_CRASHES: dict[str, str] = {}  # every crash the campaigns found is fixed; add new finds here

# (exception type, file it escapes from) of those bugs: a seeded mutation that hits one is skipped.
# The command-level targets' known crashes in other teams' modules (the guard stops them) count too.
KNOWN_SIGNATURES: set[tuple[str, str]] = set(KNOWN_INTERNAL_ERRORS)

CASES = [(name, path) for name in TARGETS for path in corpus_files(name)]


def _case_id(case) -> str:
    return f"{case[0]}/{case[1].name}"


def _param(case):
    reason = KNOWN_CRASHES.get(case[1].name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*case, id=_case_id(case), marks=marks)


def _escaped_from(err: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/apr/" in f.filename]
    return os.path.basename(frames[-1].filename) if frames else "?"


@pytest.fixture(autouse=True, scope="module")
def _scratch():
    yield
    cleanup()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-001")
@pytest.mark.parametrize(("target", "path"), [_param(c) for c in CASES])
def test_falsify_reliability_001_corpus_replay(target, path):
    data = path.read_bytes()
    err = outcome(TARGETS[target], data)
    assert err is None, f"{target} on {path.name}: {type(err).__name__}: {err}"
    if path.name.startswith("seed-"):
        rng = random.Random(zlib.crc32(path.name.encode()))
        for _ in range(16):
            mutant = mutate(data, rng, [data])
            err = outcome(TARGETS[target], mutant)
            if err is not None and (type(err).__name__, _escaped_from(err)) in KNOWN_SIGNATURES:
                continue
            assert err is None, f"{target} on a mutation of {path.name}: {type(err).__name__}: {err} ({mutant[:80]!r})"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-001")
def test_falsify_reliability_001_every_target_has_a_corpus():
    for name in TARGETS:
        seeds = [p for p in corpus_files(name) if p.name.startswith("seed-")]
        assert len(seeds) >= 3, f"corpus/{name} has {len(seeds)} seeds; run bench/fuzz_campaign.py --write-seeds"
        assert all(p.stat().st_size <= 64 * 1024 for p in corpus_files(name)), "corpus files must stay small"
