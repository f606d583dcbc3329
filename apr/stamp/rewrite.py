"""`apr stamp -o OUT`: a streaming rewrite with bounded memory, replaced atomically.

The new prefix is written, then the data section is copied by the kernel (``copy_file_range``,
which may share blocks on filesystems that reflink; else ``sendfile``; else 8 MiB chunks), then
the footer computed by CRC algebra (`apr.stamp.plan`). Python never holds more than the prefix and
one chunk, whatever the file size. The temporary output is fsynced and verified
(`apr.stamp.verify`) before `apr.format.atomic.atomic_write` renames it over the destination, so a
kill or a full disk at any moment leaves the destination as it was (absent, or the old file).

The same function performs an in-place stamp whose metadata no longer fits before the data
section: the destination is then the input itself, replaced by rename.
"""

from __future__ import annotations

import errno
import logging
import os

from apr.format.atomic import atomic_write
from apr.stamp._crashpoints import crashpoint
from apr.stamp.plan import StampPlan
from apr.stamp.source import Source
from apr.stamp.verify import verify_stamped

logger = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024
_KERNEL_CALL_MAX = 1 << 30
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOTSUP}


def _copy_kernel(call: str, src: int, dst: int, src_off: int, dst_off: int, count: int) -> int:
    """Copy with ``copy_file_range`` or ``sendfile``; return bytes copied before it gave up (0 = unsupported)."""
    done = 0
    if call == "sendfile":
        os.lseek(dst, dst_off, os.SEEK_SET)
    while done < count:
        size = min(count - done, _KERNEL_CALL_MAX)
        if call == "copy_file_range":
            n = os.copy_file_range(src, dst, size, src_off + done, dst_off + done)
        else:
            n = os.sendfile(dst, src, src_off + done, size)
        if n == 0:
            break
        done += n
        crashpoint("rewrite-mid-copy")
    return done


def copy_range(src: int, dst: int, src_off: int, dst_off: int, count: int) -> str:
    """Copy ``count`` bytes from ``src@src_off`` to ``dst@dst_off``; return the method used.

    Raises:
        OSError: a real I/O error (ENOSPC, EIO) — not the "unsupported here" errors, which fall back.
    """
    done = 0
    for call in ("copy_file_range", "sendfile"):
        if not hasattr(os, call):
            continue
        try:
            done += _copy_kernel(call, src, dst, src_off + done, dst_off + done, count - done)
        except OSError as err:
            if err.errno not in _NO_KERNEL_COPY:
                raise
            logger.debug("%s unavailable here (%s); falling back", call, err.strerror)
            continue
        if done == count:
            return call
    while done < count:
        chunk = os.pread(src, min(CHUNK_SIZE, count - done), src_off + done)
        if not chunk:
            raise OSError(errno.EIO, "input ended during the copy")
        view = memoryview(chunk)
        while view:
            written = os.pwrite(dst, view, dst_off + done)
            view = view[written:]
            done += written
        crashpoint("rewrite-mid-copy")
    return "read/write"


def rewrite_to(destination: str, source: Source, plan: StampPlan) -> str:
    """Write the stamped file to ``destination`` (atomically); return the copy method used.

    Raises:
        AprFileNotFoundError: the destination folder does not exist.
        AprIOError: the OS refused a write (disk full...); the destination is unchanged.
        StampVerificationError: the written file is not what was planned; nothing replaced.
    """
    src = os.open(source.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    method = "none"
    try:
        def verify(tmp: str) -> None:
            crashpoint("rewrite-before-verify")
            verify_stamped(tmp, plan, source, src)
            crashpoint("rewrite-before-rename")

        with atomic_write(destination, verify=verify) as handle:
            handle.write(plan.prefix)
            handle.flush()
            crashpoint("rewrite-after-prefix")
            dst = handle.fileno()
            method = copy_range(src, dst, plan.old_data_offset, plan.header.data_offset, plan.data_length)
            handle.seek(plan.header.data_offset + plan.data_length)
            handle.write(plan.footer.to_bytes(4, "little"))
    finally:
        os.close(src)
    crashpoint("rewrite-after-rename")
    return method


__all__ = ["CHUNK_SIZE", "copy_range", "rewrite_to"]
