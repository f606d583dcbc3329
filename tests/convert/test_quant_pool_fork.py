"""The shared quantization pool in a forked child (apr/convert/quant_pool.py).

A child forked after the parent used the pool inherits the executor but not its threads; before
the fix, the child's first `run_chunks` waited for ever (found by mutation testing: every mutant
child that reached the pool hung). The child must get the same results from a pool of its own.
"""

from __future__ import annotations

import os
import time

import pytest

from apr.convert import quant_pool

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")


def _squares(start: int, stop: int) -> list[int]:
    return [i * i for i in range(start, stop)]


def test_a_forked_child_runs_chunks_on_a_pool_of_its_own() -> None:
    expected = [_squares(s, min(s + 3, 10)) for s in range(0, 10, 3)]
    assert quant_pool.run_chunks(_squares, 10, chunk=3, threads=2) == expected  # the parent's pool exists
    parent_pool = quant_pool._POOL
    assert parent_pool is not None
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only on the right answer from a fresh pool
        code = 1
        try:
            ok = quant_pool.run_chunks(_squares, 10, chunk=3, threads=2) == expected
            code = 0 if ok and quant_pool._POOL is not parent_pool else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's run_chunks did not return within 20 s (the inherited pool has no threads)")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
    assert quant_pool._POOL is parent_pool  # the parent keeps its own pool
