"""Named crash points of `apr stamp`, injected from the test side: production code has no hooks.

`installed(on_point)` wraps the functions the stamp code calls between its durable steps, so that
``on_point(name)`` runs at each named moment; the wrappers change nothing else (the wrapped
function still runs, with the same arguments and result). Used two ways:

* in-process (tests/stamp/test_journal_binding.py): ``on_point`` raises a BaseException at one
  point, so nothing after it runs;
* in a child process, ``python -m tests.stamp.crash_points ARGV...`` runs ``apr ARGV...`` with the
  points installed and, from the environment, ``APR_TEST_CRASHPOINT=<name>`` SIGKILLs itself at
  that point (what ``kill -9`` or a power cut does: no cleanup, no flush),
  ``APR_TEST_CRASHPOINT_SLEEP=<s>`` sleeps at every point (widening the windows random kills aim
  at), and ``APR_TEST_CRASH_TRACE=<file>`` appends each point's name and time to that file *before* acting
  on it (an O_APPEND write survives the SIGKILL), so the parent knows the last point the child
  reached when it was killed (tests/stamp/test_crash_safety.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

# Every crash point, in the order a run passes them.
IN_PLACE_POINTS: tuple[str, ...] = (
    "in-place-after-journal-tmp",  # journal written to its temporary name, not yet renamed
    "in-place-after-journal",  # journal durable; target untouched
    "in-place-mid-prefix",  # half of the new prefix written over the old one
    "in-place-after-prefix",  # whole new prefix written, old footer still there
    "in-place-after-footer",  # new prefix and footer written, not yet fsynced
    "in-place-after-fsync",  # target durable, journal still present
    "in-place-after-journal-removed",  # done
)
REWRITE_POINTS: tuple[str, ...] = (
    "rewrite-after-prefix",  # temporary holds the new prefix only
    "rewrite-mid-copy",  # half of the data section copied
    "rewrite-before-verify",  # temporary complete and fsynced, not yet verified
    "rewrite-before-rename",  # temporary complete, fsynced and verified, not yet renamed
    "rewrite-after-rename",  # done
)
# The last point of each kind of run: a kill after it finds the new file in place.
FINAL_POINTS = frozenset({IN_PLACE_POINTS[-1], REWRITE_POINTS[-1]})
_IN_PLACE_WRITES = ("in-place-mid-prefix", "in-place-after-prefix", "in-place-after-footer")  # after write 1, 2, 3


class _OsWithReplaceHook:
    """The `os` module as `apr.stamp.journal` sees it, with `replace` reporting the journal's rename."""

    def __init__(self, on_point: Callable[[str], None]) -> None:
        self._on_point = on_point

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        self._on_point("in-place-after-journal-tmp")  # journal.py renames only its journal
        os.replace(src, dst, *args, **kwargs)


@contextlib.contextmanager
def installed(on_point: Callable[[str], None]) -> Iterator[None]:
    """Call ``on_point(name)`` at every named moment of a stamp while the block runs."""
    from apr.stamp import file, in_place, journal, rewrite

    real_write_journal, real_write_at = in_place.write_journal, in_place.write_at
    real_verify, real_finish = in_place.verify_stamped, in_place._finish
    real_copy_range, real_atomic_write, real_rewrite_to = rewrite.copy_range, rewrite.atomic_write, file.rewrite_to
    writes = {"count": 0}

    def write_journal(*args: Any, **kwargs: Any) -> str:
        done = real_write_journal(*args, **kwargs)
        writes["count"] = 0
        on_point("in-place-after-journal")
        return done

    def write_at(*args: Any, **kwargs: Any) -> None:
        real_write_at(*args, **kwargs)
        writes["count"] += 1
        if writes["count"] <= len(_IN_PLACE_WRITES):
            on_point(_IN_PLACE_WRITES[writes["count"] - 1])

    def verify_in_place(*args: Any, **kwargs: Any) -> Any:
        on_point("in-place-after-fsync")  # patch_in_place verifies right after its fsync
        return real_verify(*args, **kwargs)

    def finish(*args: Any, **kwargs: Any) -> None:
        real_finish(*args, **kwargs)
        on_point("in-place-after-journal-removed")

    def copy_range(src: int, dst: int, src_off: int, dst_off: int, count: int) -> str:
        on_point("rewrite-after-prefix")  # rewrite_to copies right after writing the prefix
        half = count // 2
        real_copy_range(src, dst, src_off, dst_off, half)
        on_point("rewrite-mid-copy")
        return real_copy_range(src, dst, src_off + half, dst_off + half, count - half)

    def atomic_write(path: Any, *, verify: Any = None, **kwargs: Any) -> Any:
        def checked(tmp: str) -> None:
            on_point("rewrite-before-verify")
            if verify is not None:
                verify(tmp)
            on_point("rewrite-before-rename")

        return real_atomic_write(path, verify=checked, **kwargs)

    def rewrite_to(*args: Any, **kwargs: Any) -> str:
        method = real_rewrite_to(*args, **kwargs)
        on_point("rewrite-after-rename")
        return method

    with contextlib.ExitStack() as stack:
        for owner, name, value in (
            (journal, "os", _OsWithReplaceHook(on_point)), (in_place, "write_journal", write_journal),
            (in_place, "write_at", write_at), (in_place, "verify_stamped", verify_in_place),
            (in_place, "_finish", finish), (rewrite, "copy_range", copy_range),
            (rewrite, "atomic_write", atomic_write), (file, "rewrite_to", rewrite_to),
        ):
            stack.enter_context(mock.patch.object(owner, name, value))
        yield


def child_point_action(environ: dict[str, str]) -> Callable[[str], None]:
    """What a child does at each point, from ``APR_TEST_CRASHPOINT``/``_SLEEP`` and ``APR_TEST_CRASH_TRACE``."""
    target = environ.get("APR_TEST_CRASHPOINT") or None
    pause = float(environ.get("APR_TEST_CRASHPOINT_SLEEP") or 0.0)
    trace = environ.get("APR_TEST_CRASH_TRACE")
    fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if trace else None

    def act(name: str) -> None:
        if fd is not None:
            os.write(fd, f"{name}\t{time.monotonic()}\n".encode())  # CLOCK_MONOTONIC: comparable across processes
        if pause:
            time.sleep(pause)
        if name == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return act


def read_trace(path: str | os.PathLike[str]) -> list[tuple[str, float]]:
    """(point, ``time.monotonic()``) for each point a child reached, in order; empty when none."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    except FileNotFoundError:
        return []
    return [(name, float(when)) for name, when in rows]


def main(argv: list[str]) -> int:
    from apr.cli.main import main as apr_main

    with installed(child_point_action(dict(os.environ))):
        return apr_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
