"""`apr stamp --in-place`: rewrite only the prefix and the footer, under an undo journal.

When the patched metadata fits before the data section (`StampPlan.fits_in_place`) the stamp
writes ``data_offset + 4`` bytes whatever the file size: the new prefix at 0 and the new footer,
derived by CRC algebra, at the end. The journal protocol of `apr.stamp.journal` makes a kill at
any moment leave the old file or the new one. An exclusive ``flock`` on the target keeps two
stamps from interleaving. When the metadata does not fit, the stamp falls back to the streaming
rewrite of `apr.stamp.rewrite`, renamed over the input (also all-or-nothing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from apr.errors import AprIOError, StampBusyError, StampVerificationError
from apr.stamp._crashpoints import crashpoint
from apr.stamp.journal import Journal, recover, remove_journal, write_journal
from apr.stamp.plan import StampPlan
from apr.stamp.source import Source
from apr.stamp.verify import verify_stamped


@contextlib.contextmanager
def locked(path: str):
    """Open ``path`` read-write under an exclusive, non-blocking ``flock``; yield the descriptor."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise AprIOError(f"cannot open the file for writing: {err.strerror}", path=path,
                         hint="check the file's permissions, or stamp a copy with -o") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StampBusyError("another `apr stamp` is writing this file", path=path,
                                 hint="wait for it to finish, then run this stamp again") from None
        yield fd
    finally:
        os.close(fd)


def patch_in_place(fd: int, source: Source, plan: StampPlan) -> None:
    """Write ``plan`` over the file open as ``fd`` (whose checked contents are ``source``).

    Raises:
        AprIOError: a write failed; the journal has rolled the file back.
        StampVerificationError: the result did not read back as planned; rolled back.
    """
    path = source.path
    info = os.fstat(fd)
    if info.st_ino != source.inode or info.st_size != source.size:
        raise AprIOError("the file changed between reading and writing it", path=path,
                         hint="another program is writing this file; retry when it is done")
    write_journal(path, Journal(inode=source.inode, file_size=source.size, prefix=source.prefix, footer=source.footer))
    crashpoint("in-place-after-journal")
    try:
        half = len(plan.prefix) // 2
        os.pwrite(fd, plan.prefix[:half], 0)
        crashpoint("in-place-mid-prefix")
        os.pwrite(fd, plan.prefix[half:], half)
        crashpoint("in-place-after-prefix")
        os.pwrite(fd, plan.footer.to_bytes(4, "little"), source.size - 4)
        crashpoint("in-place-after-footer")
        os.fsync(fd)
        crashpoint("in-place-after-fsync")
        verify_stamped(path, plan, source, fd)
    except (OSError, StampVerificationError) as err:
        recover(path)
        if isinstance(err, OSError):
            raise AprIOError(f"in-place write failed: {err.strerror}; the file was restored", path=path) from err
        raise
    remove_journal(path)
    crashpoint("in-place-after-journal-removed")


__all__ = ["locked", "patch_in_place"]
