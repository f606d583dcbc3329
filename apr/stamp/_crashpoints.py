"""Test hook: kill this process at a named moment of a stamp, to prove each crash window.

``APR_CRASHPOINT=<name>`` makes `crashpoint(name)` SIGKILL the process (no cleanup, no atexit,
no flush: what a power cut or ``kill -9`` does to a process). ``APR_CRASHPOINT_SLEEP=<seconds>``
sleeps at every crash point, widening each window so randomly timed kills land inside them. Both
are read once, at import; unset (always, outside the test suite) a crash point is one comparison.
"""

from __future__ import annotations

import os
import signal
import time

_POINT = os.environ.get("APR_CRASHPOINT") or None
_SLEEP = float(os.environ.get("APR_CRASHPOINT_SLEEP") or 0.0)

# Every crash point the stamp code declares, in the order a run passes them.
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
    "rewrite-mid-copy",  # part of the data section copied
    "rewrite-before-rename",  # temporary complete, fsynced and verified, not yet renamed
)


def crashpoint(name: str) -> None:
    """Die here if ``APR_CRASHPOINT`` names this point (a test hook; otherwise a no-op)."""
    if _SLEEP:
        time.sleep(_SLEEP)
    if _POINT is not None and _POINT == name:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["IN_PLACE_POINTS", "REWRITE_POINTS", "crashpoint"]
