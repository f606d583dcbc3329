"""The undo journal of `apr stamp --in-place`, and its recovery.

Protocol (each step durable before the next; the target is only ever written in step 3):

1. the journal — magic, the target's inode and size, the old prefix, the old footer, and a CRC-32
   of all that — is written to ``.<name>.stamp-journal.tmp-*``, fsynced, renamed to
   ``.<name>.stamp-journal``, and the folder is fsynced. A journal under its final name is
   therefore always complete;
2. (the stamp checks the target still has the journal's inode and size);
3. the new prefix and footer are written over the target with ``pwrite``, and the target fsynced;
4. the target is re-read and verified; on failure the journal is applied (rolled back);
5. the journal is unlinked and the folder fsynced. The stamp has now happened.

A kill before step 1's rename leaves the target untouched (and a stray temporary, removed on the
next stamp). A kill after it, at any point up to step 5, leaves a journal: `recover` writes the
old prefix and footer back (the target's other bytes are never written by an in-place stamp), so
the file is the old one again. Recovery is itself idempotent, so a kill during recovery is
recovered by the next recovery. A journal whose inode or size no longer matches the file (the
file was replaced meanwhile) is stale and only removed.

Who recovers: `apr stamp` on the file (automatically, before anything else) and
``apr stamp FILE --recover``; the read-only commands (`apr inspect`, `apr validate`) refuse the
file with `StampJournalError`, whose hint is that command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import tempfile
from dataclasses import dataclass

from apr.errors import AprIOError, StampJournalError
from apr.format.crc import crc32
from apr.stamp._crashpoints import crashpoint

logger = logging.getLogger(__name__)

MAGIC = b"APRSTAMPJOURNAL1"
_FIXED = struct.Struct("<16sQQQI")  # magic, inode, file size, prefix length, old footer
JOURNAL_SUFFIX = ".stamp-journal"


@dataclass(frozen=True, slots=True)
class Journal:
    """What the journal records: enough to put the old prefix and footer back."""

    inode: int
    file_size: int
    prefix: bytes
    footer: int

    def to_bytes(self) -> bytes:
        body = _FIXED.pack(MAGIC, self.inode, self.file_size, len(self.prefix), self.footer) + self.prefix
        return body + crc32(body).to_bytes(4, "little")

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> "Journal":
        def corrupt(why: str) -> StampJournalError:
            return StampJournalError(
                f"the in-place stamp journal is unreadable ({why}); the file may be half-written", path=path,
                hint="restore the file from a copy or its source, then delete the journal",
            )

        if len(data) < _FIXED.size + 4:
            raise corrupt("too short")
        magic, inode, size, length, footer = _FIXED.unpack_from(data)
        if magic != MAGIC or len(data) != _FIXED.size + length + 4:
            raise corrupt("bad magic or length")
        if crc32(data[:-4]) != int.from_bytes(data[-4:], "little"):
            raise corrupt("checksum mismatch")
        return cls(inode=inode, file_size=size, prefix=data[_FIXED.size : _FIXED.size + length], footer=footer)


def journal_path(target: str | os.PathLike[str]) -> str:
    """``<folder>/.<name>.stamp-journal`` for ``target``."""
    target = os.path.abspath(os.fspath(target))
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}{JOURNAL_SUFFIX}")


def has_pending_journal(target: str | os.PathLike[str]) -> bool:
    """True when an interrupted in-place stamp of ``target`` left its journal."""
    return os.path.exists(journal_path(target))


def require_no_pending_journal(target: str | os.PathLike[str]) -> None:
    """For read-only commands: refuse a file whose in-place stamp was interrupted.

    Raises:
        StampJournalError: with the exact command that restores the file.
    """
    if has_pending_journal(target):
        import shlex

        raise StampJournalError(
            "an in-place `apr stamp` of this file was interrupted; it may be half-written",
            path=os.fspath(target),
            hint=f"apr stamp {shlex.quote(os.fspath(target))} --recover   (restores the file as it was before that stamp)",
        )


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_journal(target: str, journal: Journal) -> str:
    """Step 1: make the journal durable under its final name; return that name."""
    final = journal_path(target)
    folder = os.path.dirname(final)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(final) + ".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(journal.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        crashpoint("in-place-after-journal-tmp")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
    return final


def remove_journal(target: str) -> None:
    """Step 5: the stamp (or a recovery) is complete."""
    final = journal_path(target)
    os.unlink(final)
    fsync_dir(os.path.dirname(final))


def _remove_stray_temporaries(target: str) -> None:
    final = journal_path(target)
    folder, prefix = os.path.dirname(final), os.path.basename(final) + ".tmp-"
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


def recover(target: str | os.PathLike[str]) -> str:
    """Undo an interrupted in-place stamp of ``target``, if there was one.

    Returns:
        ``"none"`` (no journal), ``"rolled-back"`` (the old prefix and footer were written back)
        or ``"stale"`` (the journal did not belong to the current file and was removed).

    Raises:
        StampJournalError: the journal is corrupt (the file is left as it is).
        AprIOError: the OS refused the repair.
    """
    target = os.path.abspath(os.fspath(target))
    _remove_stray_temporaries(target)
    final = journal_path(target)
    try:
        with open(final, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return "none"
    journal = Journal.from_bytes(data, target)
    try:
        fd = os.open(target, os.O_RDWR)
    except FileNotFoundError:
        logger.warning("%s: removing a stamp journal whose file no longer exists", target)
        remove_journal(target)
        return "stale"
    except OSError as err:
        raise AprIOError(f"cannot open the file to recover it: {err.strerror}", path=target) from err
    try:
        info = os.fstat(fd)
        if info.st_ino != journal.inode or info.st_size != journal.file_size:
            logger.warning("%s: removing a stale stamp journal (the file was replaced since)", target)
            remove_journal(target)
            return "stale"
        os.pwrite(fd, journal.prefix, 0)
        os.pwrite(fd, journal.footer.to_bytes(4, "little"), journal.file_size - 4)
        os.fsync(fd)
    except OSError as err:
        raise AprIOError(f"recovery write failed: {err.strerror}; the journal is kept", path=target,
                         hint=f"free space or fix permissions, then: apr stamp {target} --recover") from err
    finally:
        os.close(fd)
    remove_journal(target)
    logger.warning("%s: an interrupted in-place stamp was rolled back; the file is as before it", target)
    return "rolled-back"


__all__ = [
    "Journal",
    "has_pending_journal",
    "journal_path",
    "recover",
    "require_no_pending_journal",
    "write_journal",
]
