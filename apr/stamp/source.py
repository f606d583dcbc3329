"""Read what a stamp needs from its input: the checked header, metadata, index, prefix and footer.

The input is opened with the full reader (magic, header CRC, LAYOUT-002, section bounds, metadata
JSON, sorted index, every payload inside the data section), then the raw prefix ``[0,
data_offset)`` and the 4-byte footer are read with positioned reads. Tensor data is never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from apr.errors import AprIOError, HeaderError
from apr.format.header import FOOTER_SIZE, Header
from apr.format.reader import open_file
from apr.format.tensor_index import TensorEntry

# A prefix larger than this (metadata + index) is refused before it is read into memory.
MAX_PREFIX_SIZE = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Source:
    """A checked input file, as far as a stamp is concerned."""

    path: str
    header: Header
    metadata: dict[str, Any]
    entries: list[TensorEntry]
    prefix: bytes
    footer: int
    size: int
    inode: int

    @property
    def data_length(self) -> int:
        return self.size - FOOTER_SIZE - self.header.data_offset


def pread_exact(fd: int, size: int, offset: int, path: str) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 30), offset)
        if not chunk:
            raise AprIOError(f"file shrank while being read (at byte {offset})", path=path,
                             hint="another program is writing this file; retry when it is done")
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_source(path: str, fd: int | None = None) -> Source:
    """Open and check ``path``; read its prefix and footer (through ``fd`` when given).

    Raises:
        AprFileNotFoundError, WrongFormatError, FormatError: as `apr.format.open_file`.
    """
    with open_file(path) as reader:
        header, metadata, entries, size = reader.header, reader.metadata, list(reader.entries), reader.file_size
    if header.data_offset > MAX_PREFIX_SIZE:
        raise HeaderError(
            f"data_offset {header.data_offset} is over the {MAX_PREFIX_SIZE}-byte prefix limit",
            path=path, offset=32, hint="the header is corrupt; restore the file from its source",
        )
    own = fd is None
    if fd is None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as err:
            raise AprIOError(f"cannot open file: {err.strerror}", path=path) from err
    try:
        info = os.fstat(fd)
        if info.st_size != size:
            raise AprIOError("file changed size while being read", path=path,
                             hint="another program is writing this file; retry when it is done")
        prefix = pread_exact(fd, header.data_offset, 0, path)
        footer = int.from_bytes(pread_exact(fd, FOOTER_SIZE, size - FOOTER_SIZE, path), "little")
    finally:
        if own:
            os.close(fd)
    return Source(path=path, header=header, metadata=metadata, entries=entries, prefix=prefix,
                  footer=footer, size=size, inode=info.st_ino)


__all__ = ["Source", "pread_exact", "read_source"]
