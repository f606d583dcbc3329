"""Run block-wise (de)quantization over a whole tensor in chunks, on a pool of threads.

Quantization blocks are independent, so a tensor's rows of blocks split into chunks whose results
go to disjoint slices of one output: the bytes do not depend on the chunk size or the thread
count. Chunks keep each step's temporaries small enough to stay in the CPU's cache (the K-quant
search makes ~20 passes over its data per candidate scale; on a whole 16 MB tensor every pass
went to memory and ran at a third of the speed) and bound the memory a tensor's temporaries take.
numpy releases the GIL inside its loops, so threads overlap the arithmetic of different chunks.

Example:
    >>> import numpy as np
    >>> out = np.empty(10)
    >>> def fill(start, stop):
    ...     out[start:stop] = np.arange(start, stop)
    ...     return stop - start
    >>> run_chunks(fill, 10, chunk=3, threads=2), float(out[9])
    ([3, 3, 3, 1], 9.0)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# About 1 MB of float32 input per chunk: measured fastest for the Q4_K search (256 Ki values).
CHUNK_VALUES = 1 << 18

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def worker_count() -> int:
    """Threads to use: the CPUs this process may run on (``APR_THREADS`` overrides, at least 1)."""
    wanted = os.environ.get("APR_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _pool(size: int) -> ThreadPoolExecutor:
    """One shared executor per process (threads start on first use and are reused by every tensor)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE != size:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="apr-quant")
            _POOL_SIZE = size
        return _POOL


def _forget_pool_in_child() -> None:
    """A forked child inherits the executor object but none of its threads, and the executor sees
    its idle count from the parent, so it starts no new thread: work submitted there would wait
    for ever (a DataLoader worker, a multiprocessing child, mutmut's per-mutant child). The child
    starts its own pool on first use instead."""
    global _LOCK, _POOL, _POOL_SIZE
    _LOCK, _POOL, _POOL_SIZE = threading.Lock(), None, 0


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere children are spawned, never forked
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def run_chunks(work: Callable[[int, int], T], total: int, *, chunk: int, threads: int | None = None) -> list[T]:
    """``work(start, stop)`` for consecutive ranges of ``chunk`` items covering ``range(total)``.

    Args:
        work: processes items ``[start, stop)``; writes its result into its own slice of an
            output, or returns it. Must not call `run_chunks` itself (the pool is shared).
        total: number of items (blocks or rows).
        chunk: items per call, at least 1.
        threads: worker threads; None: `worker_count`. One thread, or one chunk, runs inline.

    Returns:
        Each call's return value, in range order.

    Raises:
        Whatever a ``work`` call raised (the first in range order); the other chunks still finish,
        so no thread writes into an output after this returns.
    """
    chunk = max(1, int(chunk))
    ranges = [(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    size = worker_count() if threads is None else max(1, int(threads))
    if size == 1 or len(ranges) <= 1:
        return [work(start, stop) for start, stop in ranges]
    pool = _pool(size)
    futures: list[Future[T]] = [pool.submit(work, start, stop) for start, stop in ranges]
    errors = [f.exception() for f in futures]  # waits for all: nothing runs on after we return
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


__all__ = ["CHUNK_VALUES", "run_chunks", "worker_count"]
