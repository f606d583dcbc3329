"""Re-read a stamped file and check it is exactly what was planned, before it replaces anything.

Checked: the reader accepts it (magic, header CRC, layout, metadata JSON, sorted index, bounds);
the size; the prefix bytes equal the plan's; the metadata reads back equal to the planned
metadata; the tensor index has the same names, dtypes, shapes, offsets and sizes as the input's;
the flags; the footer equals the planned CRC; and the first and last bytes of the data section
equal the input's (a cheap check that the copy landed at the right offset). Tensor data is not
re-hashed: the footer CRC is derived from the input's footer (see `apr.stamp.plan`).
"""

from __future__ import annotations

import os

from apr.errors import AprError, AprIOError, StampVerificationError
from apr.format.header import FOOTER_SIZE
from apr.format.reader import open_file
from apr.stamp.plan import StampPlan
from apr.stamp.source import Source, pread_exact

_SAMPLE = 4096


def verify_stamped(path: str, plan: StampPlan, source: Source, source_fd: int | None = None) -> None:
    """Raise `StampVerificationError` naming the first difference between ``path`` and ``plan``."""

    def fail(what: str) -> StampVerificationError:
        return StampVerificationError(
            f"stamped output failed verification: {what}", path=path,
            hint="nothing was replaced; check the disk (`dmesg`) and retry, or report a bug",
        )

    try:
        with open_file(path) as reader:
            header, metadata, entries, size = reader.header, reader.metadata, reader.entries, reader.file_size
    except AprIOError:
        raise  # the OS failed to read it back: an I/O error (exit 7), not a wrong result
    except AprError as err:
        raise fail(f"it does not read back: {err.message}") from err
    if size != plan.output_size:
        raise fail(f"size is {size}, expected {plan.output_size}")
    if header.flags != plan.flags:
        raise fail(f"flags are 0x{header.flags:04x}, expected 0x{plan.flags:04x}")
    if metadata != plan.metadata:
        raise fail("metadata does not read back as planned")
    old = [(e.name, e.dtype, e.shape, e.offset, e.size) for e in source.entries]
    new = [(e.name, e.dtype, e.shape, e.offset, e.size) for e in entries]
    if old != new:
        raise fail("the tensor index differs from the input's")
    fd = os.open(path, os.O_RDONLY)
    src = source_fd if source_fd is not None else os.open(source.path, os.O_RDONLY)
    try:
        if pread_exact(fd, len(plan.prefix), 0, path) != plan.prefix:
            raise fail("the header, metadata or index bytes differ from the plan")
        footer = int.from_bytes(pread_exact(fd, FOOTER_SIZE, size - FOOTER_SIZE, path), "little")
        if footer != plan.footer:
            raise fail(f"footer CRC is 0x{footer:08x}, expected 0x{plan.footer:08x}")
        # Rewrites only: in place, the data section was not written and is the same bytes.
        n = min(_SAMPLE, plan.data_length) if not os.path.samefile(path, source.path) else 0
        for old_at, new_at in (
            (plan.old_data_offset, plan.header.data_offset),
            (plan.old_data_offset + plan.data_length - n, plan.header.data_offset + plan.data_length - n),
        ):
            if n and pread_exact(src, n, old_at, source.path) != pread_exact(fd, n, new_at, path):
                raise fail(f"tensor data at output byte {new_at} differs from the input's")
    finally:
        os.close(fd)
        if source_fd is None:
            os.close(src)


__all__ = ["verify_stamped"]
