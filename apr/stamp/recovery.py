"""Undo an interrupted `apr stamp --in-place` — only on the file, and the bytes, the journal belongs to.

An in-place stamp writes exactly two regions of its target: the prefix ``[0, data_offset)`` and the
4-byte footer. Its journal (`apr.stamp.journal`) holds both states of those regions. Before writing
anything, recovery reads the regions as they are now and compares them with the journal:

* equal to the **old** state: the stamp was killed before its first write; nothing is written;
* equal to the **new** state, or **torn** — every byte equal to the old or the new byte at its
  place, which is what a stamp killed mid-write (or a power cut between unsynced pages) leaves:
  the old prefix and footer are written back and fsynced;
* anything else (**foreign**): the file was replaced or changed since — say ``cp epoch-002.apr
  m.apr`` over it, same inode, same size. Writing the old prefix would put one checkpoint's
  metadata on another's tensors, so recovery refuses, writes nothing and keeps the journal.

Then the journal is unlinked and the folder fsynced. Recovery is idempotent: killed at any point,
the next recovery finds the old, the torn or the new state again and finishes the job.

A journal whose recorded inode or size differs from the file's is refused the same way. The
recorded device is only compared for the log: device numbers can change across a reboot, and the
digests already decide whether the journal belongs to these bytes.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex

from apr.errors import AprIOError, StampJournalError
from apr.stamp import journal as _journal
from apr.stamp.journal import Journal, JournalSite, os_failure, state_digest
from apr.stamp.source import pread_exact

logger = logging.getLogger(__name__)

OLD, NEW, TORN, FOREIGN = "old", "new", "torn", "foreign"


def classify(record: Journal, prefix: bytes, footer: int) -> str:
    """Which state the file's written regions are in, relative to ``record``: old, new, torn or foreign.

    Example:
        >>> j = Journal(device=0, inode=1, file_size=12, old_prefix=b"ab", old_footer=1, new_prefix=b"xy", new_footer=2)
        >>> classify(j, b"ab", 1), classify(j, b"xy", 2), classify(j, b"xb", 1), classify(j, b"zz", 1)
        ('old', 'new', 'torn', 'foreign')
    """
    digest = state_digest(prefix, footer)
    if digest == record.old_digest:
        return OLD
    if digest == record.new_digest:
        return NEW
    if len(prefix) != len(record.old_prefix):
        return FOREIGN
    import numpy as np

    current = np.frombuffer(prefix + footer.to_bytes(4, "little"), np.uint8)
    old = np.frombuffer(record.old_prefix + record.old_footer.to_bytes(4, "little"), np.uint8)
    new = np.frombuffer(record.new_prefix + record.new_footer.to_bytes(4, "little"), np.uint8)
    return TORN if bool(np.all((current == old) | (current == new))) else FOREIGN


def _mismatch(site: JournalSite, journal_file: str, why: str) -> StampJournalError:
    file, quoted = shlex.quote(site.target), shlex.quote(journal_file)
    return StampJournalError(
        f"the stamp journal {journal_file} does not belong to this file as it is now ({why}): it was replaced "
        "or changed since the interrupted stamp (for example copied over); the journal was not applied, "
        "nothing was written, and the journal is kept",
        path=site.target, code="stamp-journal-mismatch",
        hint=f"if this file is the one you want (you copied it in on purpose), delete the old journal and check "
             f"the file: rm {quoted} && apr validate {file}; otherwise restore {file} from the copy it was "
             "stamped from",
    )


def write_at(fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset``; a short write (a filling disk) is an OSError like the next call's."""
    if os.pwrite(fd, data, offset) != len(data):
        raise OSError(errno.ENOSPC, "short write (no space left on device?)")


def _restore(site: JournalSite, record: Journal, journal_file: str) -> None:
    """Compare the file's written regions with ``record``; write the old state back unless refused."""
    retry = f"fix the disk or the file's permissions, then: apr stamp {shlex.quote(site.target)} --recover"
    try:
        fd = os.open(site.real, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise os_failure(err, "cannot open the file to restore it", site.target, retry,
                         state="nothing was written, the journal is kept") from err
    try:
        try:
            if not site.same_file(os.fstat(fd)):
                raise AprIOError("the file was replaced while it was being recovered; nothing was written",
                                 path=site.target, hint=f"retry: apr stamp {shlex.quote(site.target)} --recover")
            length = len(record.old_prefix)
            prefix = pread_exact(fd, length, 0, site.target)
            footer = int.from_bytes(pread_exact(fd, 4, record.file_size - 4, site.target), "little")
        except OSError as err:
            if isinstance(err, AprIOError):
                raise
            raise os_failure(err, "cannot read the file to recover it", site.target, retry,
                             state="nothing was written, the journal is kept") from err
        state = classify(record, prefix, footer)
        if state == FOREIGN:
            raise _mismatch(site, journal_file, "its header and footer match neither the file before that stamp "
                                                "nor after it")
        if state == OLD:
            return  # killed before its first write: the file is already the old one
        try:
            write_at(fd, record.old_prefix, 0)
            write_at(fd, record.old_footer.to_bytes(4, "little"), record.file_size - 4)
            os.fsync(fd)
        except OSError as err:
            raise os_failure(err, "restoring the file failed", site.target, retry,
                             state="it may still be half-written; the journal is kept") from err
    finally:
        os.close(fd)


def recover(target: str | os.PathLike[str]) -> str:
    """Undo an interrupted in-place stamp of ``target`` (through any link to it), if there was one.

    Returns:
        ``"none"`` (no journal) or ``"rolled-back"`` (the file is as it was before that stamp).

    Raises:
        StampJournalError: the journal is untrusted (``stamp-journal-untrusted``), in the old format
            (``stamp-journal-legacy``), corrupt (``stamp-journal-corrupt``), or does not belong to
            the file's current bytes (``stamp-journal-mismatch``). Nothing is written; the journal is kept.
        AprIOError: the OS refused a read or write; the journal is kept, so a later recovery finishes.
    """
    given = os.fspath(target)
    try:
        site = _journal.locate(given)
    except FileNotFoundError:
        return "none"
    except OSError as err:
        raise os_failure(err, "cannot look at the file to recover it", given, state="nothing was written") from err
    _journal._remove_stray_temporaries(given)
    pending = None
    for entry in _journal.find_journals(site):
        if entry.distrust is None and entry.legacy:
            raise _journal.legacy_error(site, entry)
        if entry.distrust is None:
            pending = entry
        elif entry.legacy:
            _journal.report_untrusted(site, entry)  # not a name this version writes: ignore it
        else:
            raise _journal.untrusted_error(site, entry)
    if pending is None:
        return "none"
    record = _journal.read_journal(pending, site)
    if record.inode != site.inode:
        raise _mismatch(site, pending.path, f"it was written for inode {record.inode}; this file is inode {site.inode}")
    if record.file_size != site.size:
        raise _mismatch(site, pending.path, f"the stamped file had {record.file_size} bytes; this one has {site.size}")
    if record.device != site.device:
        logger.info("%s: the journal was written on device %d, the file is now on device %d (renumbered after a "
                    "reboot?); its digests decide", site.target, record.device, site.device)
    _restore(site, record, pending.path)
    try:
        os.unlink(pending.path)
    except OSError as err:
        raise os_failure(err, f"cannot remove the journal {pending.path}", site.target,
                         f"fix the folder's permissions, then run again: apr stamp {shlex.quote(site.target)} "
                         "--recover   (or delete the journal: the file is already restored)",
                         state="the file was restored") from err
    try:
        _journal.fsync_dir(site.folder)
    except OSError as err:
        raise os_failure(err, "cannot sync the folder after removing the journal", site.target,
                         "check the disk (dmesg)", state="the file was restored; after a power cut the journal may "
                         "come back, and recovering again is harmless") from err
    return "rolled-back"


__all__ = ["FOREIGN", "NEW", "OLD", "TORN", "classify", "recover", "write_at"]
