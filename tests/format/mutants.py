"""Deliberate faults for contracts/apr-format-v2.yaml: each must turn its falsifier's tests red.

A mutant's ``target`` is the name as its caller looks it up (``apr.format.reader.parse_header``,
not ``apr.format.header.parse_header``: the reader imported it by name); ``replacement`` is a
function here. `apply` patches one in for a block, so the mutation check can run without the
harness: ``python -m tests.format.mutants NAME`` runs the bound tests with NAME applied.
"""

from __future__ import annotations

import contextlib
import importlib
import struct
import sys
from collections.abc import Iterator
from typing import Any

from apr.format import header as _header
from apr.format import metadata as _metadata
from apr.format import writer as _writer
from apr.format.dtypes import dtype_from_code
from apr.format.header import align64
from apr.format.tensor_index import TensorEntry

_real_parse_header = _header.parse_header
_real_canonical = _metadata.canonical_metadata
_real_plan = _writer.plan_tensors
_real_write_stream = _writer.write_stream


def skip_header_checksum(data: Any, *, verify_checksum: bool = True) -> _header.Header:
    """parse_header that never checks the CRC."""
    return _real_parse_header(data, verify_checksum=False)


def unsorted_custom_keys(metadata: Any) -> dict[str, Any]:
    """canonical_metadata that keeps custom keys in insertion order (aprender's HashMap habit)."""
    result = _real_canonical(metadata)
    typed = {k: v for k, v in result.items() if k in _metadata.TYPED_KEYS}
    typed.update({k: v for k, v in dict(metadata or {}).items() if k not in _metadata.TYPED_KEYS})
    return typed


def drop_null_provenance(metadata: Any) -> dict[str, Any]:
    """canonical_metadata that omits license/data_source/data_license when unset."""
    return {k: v for k, v in _real_canonical(metadata).items() if v is not None}


def unsorted_index(data: Any, tensor_count: int, *, base_offset: int = 0) -> list[TensorEntry]:
    """parse_index without the sorted-and-unique check (otherwise the same decoding)."""
    view = bytes(data)
    entries, pos = [], 0
    for _ in range(tensor_count):
        (name_len,) = struct.unpack_from("<H", view, pos)
        pos += 2
        name = view[pos : pos + name_len].decode("utf-8")
        pos += name_len
        code, ndim = view[pos], view[pos + 1]
        pos += 2
        shape = struct.unpack_from(f"<{ndim}Q", view, pos)
        pos += 8 * ndim
        offset, size = struct.unpack_from("<QQ", view, pos)
        pos += 16
        entries.append(TensorEntry(name, dtype_from_code(code), tuple(shape), offset, size))  # type: ignore[arg-type]
    return entries


def insertion_order_plan(tensors: Any) -> list[Any]:
    """plan_tensors that keeps the caller's order instead of sorting by name."""
    planned = _real_plan(tensors)
    order = {name: i for i, name in enumerate(tensors)}
    planned.sort(key=lambda p: order[p.entry.name])
    out, offset = [], 0
    for item in planned:
        entry = TensorEntry(item.entry.name, item.entry.dtype, item.entry.shape, offset, item.entry.size)
        out.append(type(item)(entry, item.payload))
        offset += align64(entry.size)
    return out


def unaligned_plan(tensors: Any) -> list[Any]:
    """plan_tensors that packs payloads back to back (no 64-byte alignment)."""
    planned = _real_plan(tensors)
    out, offset = [], 0
    for item in planned:
        entry = TensorEntry(item.entry.name, item.entry.dtype, item.entry.shape, offset, item.entry.size)
        out.append(type(item)(entry, item.payload))
        offset += entry.size
    return out


def footer_without_padding(handle: Any, planned: list[Any], prefix: bytes) -> int:
    """write_stream whose footer CRC skips the padding bytes."""
    import zlib

    crc = zlib.crc32(prefix)
    handle.write(prefix)
    for item in planned:
        handle.write(item.payload.data)
        crc = zlib.crc32(item.payload.data, crc)
        handle.write(bytes(align64(item.entry.size) - item.entry.size))
    handle.write(crc.to_bytes(4, "little"))
    return 0


def no_layout_check(header: Any, file_size: int) -> None:
    """check_header_layout that trusts the header's offsets and sizes."""


def unguarded_json_metadata(data: Any) -> dict[str, Any]:
    """decode_metadata as a bare json.loads: a corrupt section escapes as a builtin ValueError."""
    import json

    return json.loads(bytes(data))


def column_major_accepted(data: Any, *, verify_checksum: bool = True) -> _header.Header:
    """parse_header that ignores LAYOUT_COLUMN_MAJOR (and so the CRC of the header it rewrites)."""
    raw = bytearray(bytes(data[:64]))
    flags = struct.unpack_from("<H", raw, 6)[0]
    if flags & 0x0800:
        struct.pack_into("<H", raw, 6, flags & ~0x0800)
        return _real_parse_header(bytes(raw), verify_checksum=False)
    return _real_parse_header(data, verify_checksum=verify_checksum)


def nothing_foreign(head: bytes, file_size: int | None = None) -> Any:
    """sniff_bytes that recognises no format but APR v2."""
    from apr.format.sniff import FileFormat

    return FileFormat.APR2 if head[:4] == b"APR\x00" else FileFormat.UNKNOWN


def round_toward_zero(x: Any) -> Any:
    """_round_half_away that truncates: quantization error up to a whole step."""
    import numpy as np

    return np.trunc(x)


@contextlib.contextmanager
def write_in_place(path: Any, *, verify: Any = None, durable: bool = True) -> Iterator[Any]:
    """atomic_write that opens the target itself: a failure leaves a truncated, half-written file."""
    with open(path, "wb") as handle:
        yield handle
        if verify is not None:
            verify(path)


MUTANTS: dict[str, tuple[str, Any]] = {
    "skip-header-checksum": ("apr.format.reader.parse_header", skip_header_checksum),
    "unsorted-custom-keys": ("apr.format.metadata.canonical_metadata", unsorted_custom_keys),
    "drop-null-provenance": ("apr.format.metadata.canonical_metadata", drop_null_provenance),
    "unsorted-index-accepted": ("apr.format.reader.parse_index", unsorted_index),
    "writer-keeps-insertion-order": ("apr.format.writer.plan_tensors", insertion_order_plan),
    "unaligned-payloads": ("apr.format.writer.plan_tensors", unaligned_plan),
    "footer-crc-skips-padding": ("apr.format.writer.write_stream", footer_without_padding),
    "trust-header-offsets": ("apr.format.reader.check_header_layout", no_layout_check),
    "column-major-accepted": ("apr.format.reader.parse_header", column_major_accepted),
    "nothing-foreign": ("apr.format.sniff.sniff_bytes", nothing_foreign),
    "round-toward-zero": ("apr.format.quant._round_half_away", round_toward_zero),
    "write-in-place": ("apr.format.writer.atomic_write", write_in_place),
}


@contextlib.contextmanager
def apply(name: str) -> Iterator[None]:
    """Patch mutant ``name`` in for the duration of the block."""
    target, replacement = MUTANTS[name]
    module_name, attr = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, attr)
    setattr(module, attr, replacement)
    try:
        yield
    finally:
        setattr(module, attr, original)


if __name__ == "__main__":  # python -m tests.format.mutants NAME [pytest args...]
    import pytest

    class _Mutate:
        def __init__(self, name: str) -> None:
            self.name = name

        def pytest_sessionstart(self, session: Any) -> None:
            self._cm = apply(self.name)
            self._cm.__enter__()

        def pytest_sessionfinish(self, session: Any) -> None:
            self._cm.__exit__(None, None, None)

    sys.exit(pytest.main(sys.argv[2:], plugins=[_Mutate(sys.argv[1])]))
