"""`apr stamp --in-place`: rewrite only the prefix and the footer, under an undo journal.

When the patched metadata fits before the data section (`StampPlan.fits_in_place`) the stamp
writes ``data_offset + 4`` bytes whatever the file size: the new prefix at 0 and the new footer,
derived by CRC algebra, at the end. The journal protocol of `apr.stamp.journal` makes a kill at
any moment leave the old file or the new one, and `apr.stamp.recovery` applies a journal only to
the bytes it was written for. An exclusive ``flock`` on the target keeps two stamps from
interleaving. When the metadata does not fit, the stamp falls back to the streaming rewrite of
`apr.stamp.rewrite`, renamed over the real file (also all-or-nothing).

Every OSError becomes an `AprIOError` saying what failed, where, in which state the file is (the
old one, the new one, or restorable by ``apr stamp FILE --recover`` while its journal is kept), and
what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shlex
from collections.abc import Iterator
from typing import NoReturn

from apr.errors import AprError, AprIOError, StampBusyError, StampVerificationError
from apr.stamp import journal as _journal
from apr.stamp.journal import Journal, os_failure, write_journal
from apr.stamp.plan import StampPlan
from apr.stamp.recovery import recover, write_at
from apr.stamp.source import Source
from apr.stamp.verify import verify_stamped


@contextlib.contextmanager
def locked(path: str) -> Iterator[int]:
    """Open ``path`` read-write under an exclusive, non-blocking ``flock``; yield the descriptor."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise os_failure(err, "cannot open the file for writing", path,
                         "check the file's permissions, or stamp a copy with -o", state="nothing was written") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StampBusyError("another `apr stamp` is writing this file", path=path,
                                 hint="wait for it to finish, then run this stamp again") from None
        except OSError as err:
            raise os_failure(err, "cannot lock the file", path,
                             "the filesystem refuses locks (some network mounts): stamp a local copy with -o",
                             state="nothing was written") from err
        yield fd
    finally:
        os.close(fd)


def _reason(err: BaseException) -> str:
    if isinstance(err, AprError):
        return err.message
    if isinstance(err, OSError):
        return "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    return str(err)


def rollback(path: str, cause: OSError | StampVerificationError) -> NoReturn:
    """A write or the verification failed with the journal in place: put the old bytes back, then raise.

    Raises:
        StampVerificationError: ``cause`` itself, the file restored.
        AprIOError: the write failed and the file was restored; or restoring failed too, and the
            journal is kept so that every reader refuses the file until ``--recover`` succeeds.
    """
    quoted = shlex.quote(path)
    try:
        recover(path)
    except AprError as undo:
        raise AprIOError(
            f"in-place write failed ({_reason(cause)}), and restoring the old header failed too "
            f"({_reason(undo.__cause__ or undo)}); the journal is kept, so every command refuses the file until it "
            "is restored", path=path,
            hint=f"fix the disk or permissions, then: apr stamp {quoted} --recover",
        ) from cause
    if isinstance(cause, StampVerificationError):
        raise StampVerificationError(f"{cause.message}; the file was restored as it was", path=path,
                                     hint="check the disk (`dmesg`) and retry, or report a bug") from cause
    raise AprIOError(f"in-place write failed: {_reason(cause)}; the file was restored as it was", path=path,
                     hint=f"free space or fix the disk, then stamp again; or stamp a copy: "
                          f"apr stamp {quoted} ... -o OUT") from cause


def _finish(path: str, journal_file: str) -> None:
    """Step 5: remove the journal; the stamp has happened once that is durable."""
    quoted = shlex.quote(path)
    try:
        os.unlink(journal_file)
    except OSError as err:
        raise os_failure(err, f"cannot remove the undo journal {journal_file}", path,
                         f"fix the folder's permissions, then run: apr stamp {quoted} --recover   (restores the "
                         "file as it was) and stamp again",
                         state="the file is the stamped one, but the stamp counts as interrupted") from err
    try:
        _journal.fsync_dir(os.path.dirname(journal_file))
    except OSError as err:
        raise os_failure(err, "cannot sync the folder after removing the undo journal", path,
                         "check the disk (dmesg), then stamp again to be sure",
                         state="the file is the stamped one; after a power cut the journal may come back and "
                               "recovery would undo the stamp") from err


def patch_in_place(fd: int, source: Source, plan: StampPlan) -> None:
    """Write ``plan`` over the file open as ``fd`` (whose checked contents are ``source``).

    Raises:
        AprIOError: a write failed (the journal has rolled the file back, or is kept for ``--recover``).
        StampVerificationError: the result did not read back as planned; rolled back.
    """
    path = source.path
    try:
        info = os.fstat(fd)
    except OSError as err:
        raise os_failure(err, "cannot stat the file", path, state="nothing was written") from err
    if info.st_ino != source.inode or info.st_size != source.size:
        raise AprIOError("the file changed between reading and writing it", path=path,
                         hint="another program is writing this file; retry when it is done")
    record = Journal(device=info.st_dev, inode=info.st_ino, file_size=source.size, old_prefix=source.prefix,
                     old_footer=source.footer, new_prefix=plan.prefix, new_footer=plan.footer)
    journal_file = write_journal(path, record)
    try:
        half = len(plan.prefix) // 2
        write_at(fd, plan.prefix[:half], 0)
        write_at(fd, plan.prefix[half:], half)
        write_at(fd, plan.footer.to_bytes(4, "little"), source.size - 4)
        os.fsync(fd)
        verify_stamped(path, plan, source, fd)
    except (OSError, StampVerificationError) as err:
        rollback(path, err)
    _finish(path, journal_file)


__all__ = ["locked", "patch_in_place", "rollback"]
