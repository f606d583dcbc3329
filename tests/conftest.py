"""The shared builders (``stamp_builders``) import by bare name; put their folder on sys.path here,
so a run that collects a single file (``pytest tests/test_apr_quality_v1.py``, or a mutant's child
run under ``--mutants``) finds them as the full suite does through tests/stamp/conftest.py."""

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(scope="session")
def tok_meta(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Embedded tokenizer metadata for the readiness and publish checkpoints (built once a session)."""
    from tests.readiness.builders import tokenizer_metadata  # numpy and apr: only for tests that ask

    return tokenizer_metadata(tmp_path_factory.mktemp("tok"))


# Pids for lock-owner tests (apr.format.atomic, folder_commit): processes this test started, so
# no test ever signals or judges a process outside the suite (the suite may run as root).
@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process of our own that is alive for the whole test."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()
