"""Check a GGUF file's header and metadata counts against its size before `gguf.GGUFReader` runs.

`GGUFReader` parses every key/value eagerly and trusts the counts it reads: a 100-byte file whose
array claims 2^40 items makes it allocate until the machine runs out of memory. This walk reads
the same structure (GGUF v2/v3: magic, version, tensor count, KV count, then typed KV entries and
tensor infos) and refuses any count or length that cannot fit in the bytes that remain, without
allocating anything proportional to a claim.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from apr.errors import ConvertError
from apr.format.inputs import open_regular

# GGUF value types -> fixed byte size (strings and arrays are variable).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 8


class _Cursor:
    def __init__(self, data: mmap.mmap | bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> ConvertError:
        return ConvertError(
            f"GGUF {what} (at byte {self.pos}, file is {len(self.data)} bytes)", path=self.path,
            hint="the file is truncated or corrupt; re-download or re-export it",
        )

    def take(self, fmt: str) -> Any:  # an int, or bytes for an "s" format
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise self.fail("ends inside a header field")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def skip(self, count: int, what: str) -> None:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"{what} claims {count} bytes, more than the file holds")
        self.pos += count

    def string(self, what: str) -> None:
        self.skip(self.take("<Q"), what)

    def value(self, kind: int, what: str) -> None:
        if kind in _FIXED:
            self.skip(_FIXED[kind], what)
        elif kind == _STRING:
            self.string(what)
        elif kind == _ARRAY:
            item = self.take("<I")
            count = self.take("<Q")
            smallest = _FIXED.get(item, 8)  # a string item is at least its 8-byte length
            if count * smallest > len(self.data) - self.pos:
                raise self.fail(f"array {what} claims {count} items, more than the file can hold")
            if item in _FIXED:
                self.skip(count * _FIXED[item], what)
            elif item == _STRING:
                for _ in range(count):
                    self.string(what)
            else:
                raise self.fail(f"array {what} has item type {item}, which GGUF arrays do not use")
        else:
            raise self.fail(f"value {what} has unknown type {kind}")


def check_gguf_bounds(source: str | os.PathLike[str] | BinaryIO, *, path: str | os.PathLike[str] | None = None) -> None:
    """Raise `ConvertError` if any count or length in the GGUF header cannot fit in the file.

    Args:
        source: the file, or a binary file object already open on it (`apr.format.inputs.open_regular`),
            so the bytes checked are those the reader maps next, whatever happens to the path.
        path: the file's path for messages when ``source`` is a file object.
    """
    if isinstance(source, (str, os.PathLike)):
        with open_regular(source, error=ConvertError) as handle:
            _check_open(handle, Path(source))
    else:
        _check_open(source, Path(path if path is not None else getattr(source, "name", "<gguf>")))


def _check_open(handle: BinaryIO, target: Path) -> None:
    size = os.fstat(handle.fileno()).st_size
    if size < 24:
        raise ConvertError(f"GGUF file is {size} bytes, too small for a header", path=target)
    data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        cur = _Cursor(data, target)
        if cur.take("<4s") != b"GGUF":
            raise cur.fail("magic is not 'GGUF'")
        version = cur.take("<I")
        if version not in (2, 3):
            raise cur.fail(f"version {version} is not supported (2 or 3)")
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        if n_kv * 13 > size or n_tensors * 29 > size:  # smallest KV entry / tensor info
            raise cur.fail(f"claims {n_tensors} tensors and {n_kv} metadata entries, more than the file can hold")
        for index in range(n_kv):
            cur.string(f"key #{index}")
            cur.value(cur.take("<I"), f"metadata entry #{index}")
        for index in range(n_tensors):
            cur.string(f"tensor #{index} name")
            dims = cur.take("<I")
            if dims > _MAX_DIMS:
                raise cur.fail(f"tensor #{index} has {dims} dimensions")
            cur.skip(8 * dims + 4 + 8, f"tensor #{index} info")
    finally:
        data.close()
