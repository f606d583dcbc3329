"""Deliberate faults in the in-place stamp journal (contracts/apr-stamp-v1.yaml, FALSIFY-STAMP-013..016).

Each reintroduces one defect of issue 14 that tests/stamp/test_journal_binding.py must catch.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from apr.errors import AprIOError
from apr.stamp import journal as _journal


def locate_by_given_path(target: Any) -> _journal.JournalSite:
    """journal.locate without resolving symlinks: the journal sits beside the path given (a link's folder)."""
    given = os.fspath(target)
    info = os.stat(given)
    return _journal.JournalSite(target=given, real=os.path.abspath(given), device=info.st_dev, inode=info.st_ino,
                                size=info.st_size, owner=info.st_uid)


def classify_ignores_digest(record: Any, prefix: bytes, footer: int) -> str:
    """recovery.classify that takes any file for the stamped one: the old prefix is written over whatever is there."""
    return "new"


def trust_every_journal(entry: os.stat_result, owner: int, euid: int) -> str | None:
    """journal.distrust_reason that trusts anything: a planted journal (any owner, mode or kind) is applied."""
    return None


def rollback_skipped(path: str, cause: BaseException) -> NoReturn:
    """in_place.rollback that reports the file restored without restoring it (a failed write leaves it torn)."""
    raise AprIOError("in-place write failed; the file was restored as it was", path=path) from cause


def raw_os_error(err: OSError, what: str, path: str, hint: str | None = None, *, state: str | None = None) -> OSError:
    """journal.os_failure that lets the OSError through as it came: no what/where/state/fix."""
    return err
