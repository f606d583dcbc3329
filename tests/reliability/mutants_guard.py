"""Mutants for FALSIFY-RELIABILITY-016/017 (contracts/reliability-v1.yaml): faults the
no-traceback and write-fault tests (tests/reliability/test_no_traceback.py) must turn red.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any, BinaryIO


def guard_reraises(error: BaseException, *, as_json: bool, verbosity: int = 0) -> int:
    """The top-level guard gives up: every exception escapes as a traceback."""
    raise error


def console_with_markup(stderr: bool):
    """Consoles interpret rich markup and emoji codes in data again (the issue-14 crash)."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def streams_left_strict() -> None:
    """stdout keeps its strict error handler: a lone surrogate in metadata raises when printed."""


def json_text_allowing_nothing(document: Any) -> str:
    """emit_json as it was: NaN raises ValueError, a lone surrogate goes out raw."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=str)


@contextlib.contextmanager
def atomic_write_keeping_temporary(path: str | os.PathLike[str], *, verify=None, durable: bool = True) -> Iterator[BinaryIO]:
    """atomic_write that leaves its temporary behind when the write fails (and still maps the error)."""
    from apr.errors import AprIOError
    from apr.format.atomic import temporary_prefix

    target = os.path.abspath(os.fspath(path))
    tmp = os.path.join(os.path.dirname(target), f"{temporary_prefix(target)}{os.getpid()}-kept")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except OSError as err:
        if isinstance(err, AprIOError):
            raise
        raise AprIOError.from_os_error(err, path=target, action="write") from err


def every_os_error_is_foreign(err: BaseException, tmp: str, target: str) -> bool:
    """atomic_write stops recognising its own failed writes: the raw OSError (no file named, for a
    failed fsync or write) reaches the user without saying which output it concerned."""
    return False
