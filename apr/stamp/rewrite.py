"""`apr stamp -o OUT`: a streaming rewrite with bounded memory, replaced atomically.

The new prefix is written, then the data section is copied by the kernel (``copy_file_range``,
which may share blocks on filesystems that reflink; else ``sendfile``; else 8 MiB chunks), in
ranges whose writeback starts as each is copied (so the disk works beside the copy), then
the footer computed by CRC algebra (`apr.stamp.plan`). Python never holds more than the prefix and
one chunk (two with ``-o``'s CRC thread), whatever the file size. The temporary output is fsynced and verified
(`apr.stamp.verify`) before `apr.format.atomic.atomic_write` renames it over the destination, so a
kill or a full disk at any moment leaves the destination as it was (absent, or the old file).

With ``-o`` the checksum travels (issue 14): while the kernel copies, a thread reads the input's
data section once and CRCs it with the prefix (`SourceCrc`); before the rename the result must
equal the input's stored footer (`check_source_crc`). A damaged input is refused
(`DamagedInputError`, nothing written) unless ``--allow-damaged``, which carries the bytes over with
the footer still disagreeing by the same difference (`apr.stamp.plan`: a stamp never launders
corruption) and reports it. The copy itself is checked as before (`apr.stamp.verify`).

The same function performs an in-place stamp whose metadata no longer fits before the data
section: the destination is then the input itself, replaced by rename (no CRC read: an in-place
stamp never reads tensor data, and the footer algebra keeps any damage visible).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import zlib
from dataclasses import dataclass

from apr.errors import AprIOError
from apr.format.atomic import atomic_write
from apr.format.crc import bulk_crc32
from apr.format.footer_check import Damage, refuse_damage
from apr.stamp.plan import StampPlan
from apr.stamp.source import Source
from apr.stamp.verify import verify_stamped

logger = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024
# The kernel copies this much per call; after each call the written range's writeback is started
# (`_start_writeback`), so the disk writes while the next range is copied and the closing fsync
# has little left to wait for. Measured on 1 GiB (2-CPU VM, page-cached input, best of 5):
# copy_file_range 0.40 s + fsync 0.52 s = 0.92 s in one call; 0.66 s + 0.03 s = 0.69 s in 64 MiB
# calls with writeback started after each (docs/benchmarks.md, issue 17).
_KERNEL_CALL_MAX = 64 * 1024 * 1024
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOTSUP}


def _start_writeback(dst: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``dst[offset:offset+length]`` to disk now, without waiting.

    ``POSIX_FADV_DONTNEED`` on Linux starts asynchronous writeback of the range's dirty pages (and
    drops the pages already clean): the stdlib's way to get ``sync_file_range(SYNC_FILE_RANGE_WRITE)``,
    which `os` does not expose. Only advice: durability still comes from the fsync before the
    rename, and where the call is missing or refused nothing changes but the speed.
    """
    if length <= 0 or not hasattr(os, "posix_fadvise"):
        return
    try:
        os.posix_fadvise(dst, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError as err:  # e.g. ESPIPE on a pipe; advice only
        logger.debug("posix_fadvise refused (%s); writeback left to the fsync", err.strerror)


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
        _start_writeback(dst, dst_off + done, n)
        done += n
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
        view, start = memoryview(chunk), done
        while view:
            written = os.pwrite(dst, view, dst_off + done)
            view = view[written:]
            done += written
        _start_writeback(dst, dst_off + start, done - start)
    return "read/write"


@dataclass(slots=True)
class CopyCheck:
    """Asks `rewrite_to` to check the input's CRC while it copies (``apr stamp -o``).

    Attributes:
        allow_damaged: carry a damaged input over instead of refusing it (``--allow-damaged``).
        damage: after the rewrite, what was carried over from a damaged input (None: it was intact).
    """

    allow_damaged: bool = False
    damage: Damage | None = None


class SourceCrc:
    """CRC-32 of the input's prefix and data section, computed by a thread beside the copy.

    ``preadv`` and the CRC release the GIL, so on two cores the kernel copy and the CRC run
    together: ``-o`` takes about the longer of the two rather than their sum. The prefix comes from
    memory (`Source.prefix`); the data is read in `CHUNK_SIZE` pieces into one reused buffer (a
    fresh 8 MiB ``bytes`` per ``pread`` cost a gigabyte of page faults per gigabyte read) and CRCed
    with zlib-ng (`bulk_crc32`): together they took the thread's CPU time on 1 GiB from ~1.6 s to
    ~0.7 s on this project's 2-core machine, which matters because the copy needs the other core.
    """

    def __init__(self, fd: int, source: Source, plan: StampPlan) -> None:
        self._args = (fd, plan.old_data_offset, plan.data_length, zlib.crc32(source.prefix), source.path)
        self._stop = threading.Event()
        self._value: int | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="apr-stamp-crc", daemon=True)

    def start(self) -> SourceCrc:
        self._thread.start()
        return self

    def _run(self) -> None:
        fd, start, length, crc, path = self._args
        end = start + length
        try:
            crc32 = bulk_crc32(length)
            buffer = memoryview(bytearray(min(CHUNK_SIZE, max(length, 1))))
            while start < end and not self._stop.is_set():
                piece = buffer[: min(len(buffer), end - start)]
                got = _read_into(fd, piece, start)
                if not got:
                    raise AprIOError(f"file ended while its data was checked (at byte {start})", path=path,
                                     hint="another program is writing this file; retry when it is done")
                crc = crc32(piece[:got], crc)
                start += got
            self._value = crc & 0xFFFFFFFF
        except BaseException as err:  # noqa: BLE001 - handed to the caller by result()
            self._error = err

    def result(self) -> int:
        """The CRC of ``prefix ‖ data`` (waits for the thread; re-raises what it raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def cancel(self) -> None:
        """Stop early and wait (the descriptor it reads is closed after this)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _read_into(fd: int, buffer: memoryview, offset: int) -> int:
    """Fill ``buffer`` from ``fd`` at ``offset`` (one ``preadv``; ``pread`` where there is none)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    chunk = os.pread(fd, len(buffer), offset)
    buffer[: len(chunk)] = chunk
    return len(chunk)


def check_source_crc(computed: int, source: Source, check: CopyCheck) -> None:
    """Compare the input's CRC, as read during the copy, with its stored footer.

    Raises:
        DamagedInputError: they differ and ``check.allow_damaged`` is false (nothing is renamed).
    """
    if computed == source.footer:
        return
    damage = Damage(path=source.path, footer_stored=source.footer, footer_computed=computed,
                    tensors=len(source.entries))
    check.damage = refuse_damage(damage, allow_damaged=check.allow_damaged, command="apr stamp")


def rewrite_to(destination: str, source: Source, plan: StampPlan, *, check: CopyCheck | None = None) -> str:
    """Write the stamped file to ``destination`` (atomically); return the copy method used.

    Args:
        check: CRC the input while copying and compare with its footer before the rename (``-o``);
            its ``damage`` then says what a salvage carried over.

    Raises:
        AprFileNotFoundError: the destination folder does not exist.
        AprIOError: the OS refused a write (disk full...); the destination is unchanged.
        StampVerificationError: the written file is not what was planned; nothing replaced.
        DamagedInputError: (``check``) the input's footer CRC is wrong; nothing written.
    """
    src = os.open(source.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    method = "none"
    crc = SourceCrc(src, source, plan).start() if check is not None else None
    try:
        def verify(tmp: str) -> None:
            verify_stamped(tmp, plan, source, src)
            if crc is not None and check is not None:
                check_source_crc(crc.result(), source, check)

        with atomic_write(destination, verify=verify) as handle:
            handle.write(plan.prefix)
            handle.flush()
            dst = handle.fileno()
            method = copy_range(src, dst, plan.old_data_offset, plan.header.data_offset, plan.data_length)
            handle.seek(plan.header.data_offset + plan.data_length)
            handle.write(plan.footer.to_bytes(4, "little"))
    finally:
        if crc is not None:
            crc.cancel()
        os.close(src)
    return method


__all__ = ["CHUNK_SIZE", "CopyCheck", "SourceCrc", "check_source_crc", "copy_range", "rewrite_to"]
