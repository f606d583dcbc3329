"""The tensor index: variable-length entries, sorted by name (docs/aprender-format.md §1.5).

Entry layout (little-endian)::

    name_len u16 | name (UTF-8) | dtype u8 | ndim u8 | dims ndim×u64 | offset u64 | size u64

``offset`` is relative to the data section; ``size`` is the unpadded payload length. Entries are
packed back to back; only the whole index is padded to 64 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from apr.errors import ResourceLimitError, TensorIndexError
from apr.format.dtypes import DType, dtype_from_code
from apr.format.header import MAX_NDIM

_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_TAIL = struct.Struct("<QQ")
MIN_ENTRY_SIZE = 2 + 1 + 1 + 16  # empty name, scalar


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of the index. ``offset`` is relative to the data section."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    offset: int
    size: int

    def to_bytes(self) -> bytes:
        name = self.name.encode("utf-8")
        return b"".join(
            (
                _U16.pack(len(name)),
                name,
                bytes((int(self.dtype), len(self.shape))),
                b"".join(_U64.pack(d) for d in self.shape),
                _TAIL.pack(self.offset, self.size),
            )
        )


def encode_index(entries: list[TensorEntry]) -> bytes:
    """The concatenated entries (unpadded)."""
    return b"".join(entry.to_bytes() for entry in entries)


def parse_index(data: bytes | memoryview, tensor_count: int, *, base_offset: int = 0) -> list[TensorEntry]:
    """Decode ``tensor_count`` entries from ``data`` (the bytes between index and data offsets).

    Checks, each with the byte offset it failed at: the count fits in the bytes available (before
    anything is allocated for it), every entry is complete, names are UTF-8, dtypes exist, ndim
    ≤ 8, and names are strictly increasing (sorted and unique).

    Args:
        data: the index section.
        tensor_count: the header's tensor_count.
        base_offset: absolute file offset of ``data``, used in error messages.
    """
    view = memoryview(data)
    if tensor_count * MIN_ENTRY_SIZE > len(view):
        raise ResourceLimitError(
            f"header claims {tensor_count} tensors but the tensor index has room for at most "
            f"{len(view) // MIN_ENTRY_SIZE}",
            offset=8,
            field="tensor_count",
            hint="the header or index is corrupt; restore the file from its source",
        )
    entries: list[TensorEntry] = []
    pos = 0
    previous: bytes | None = None
    for i in range(tensor_count):
        start = pos

        def fail(msg: str, *, at: int = start, i: int = i) -> TensorIndexError:
            return TensorIndexError(
                f"tensor index entry {i}: {msg}",
                offset=base_offset + at,
                hint="the tensor index is corrupt; restore the file from its source",
            )

        if pos + 2 > len(view):
            raise fail("index ends before the entry's name length")
        (name_len,) = _U16.unpack_from(view, pos)
        pos += 2
        if pos + name_len + 2 > len(view):
            raise fail(f"index ends inside the name ({name_len} bytes claimed)")
        raw_name = bytes(view[pos : pos + name_len])
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"tensor name is not valid UTF-8: {raw_name[:64]!r}", at=pos) from None
        pos += name_len
        code, ndim = view[pos], view[pos + 1]
        dtype = dtype_from_code(code)
        if dtype is None:
            raise fail(f"tensor {name!r} has unknown dtype code {code}", at=pos)
        if ndim > MAX_NDIM:
            raise fail(f"tensor {name!r} has ndim {ndim}, more than the maximum {MAX_NDIM}", at=pos + 1)
        pos += 2
        if pos + 8 * ndim + 16 > len(view):
            raise fail(f"index ends inside the shape or offsets of tensor {name!r}")
        shape = struct.unpack_from(f"<{ndim}Q", view, pos)
        pos += 8 * ndim
        offset, size = _TAIL.unpack_from(view, pos)
        pos += 16
        if previous is not None and raw_name <= previous:
            what = "duplicate tensor name" if raw_name == previous else "tensor index not sorted"
            raise fail(f"{what}: {name!r} follows {previous.decode('utf-8')!r}")
        previous = raw_name
        entries.append(TensorEntry(name=name, dtype=dtype, shape=tuple(shape), offset=offset, size=size))
    return entries
