"""Write APR v2 files: deterministic bytes, streamed tensor by tensor, replaced atomically.

Layout (docs/aprender-format.md §1.4): header, metadata JSON padded to 64, the tensor index
padded to 64, each payload padded to 64 in name order, then a CRC-32 footer over everything
before it. Everything is checked before the first byte is written (safetensors'
``_evaluate_tensors_for_save``), and every problem is listed in one error.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from apr.errors import TensorInputError
from apr.format.atomic import atomic_write
from apr.format.crc import crc32
from apr.format.dtypes import DType, dtype_from_numpy
from apr.format.header import (
    HEADER_SIZE,
    MAX_NDIM,
    MAX_TENSOR_NAME_LEN,
    Flags,
    Header,
    align64,
)
from apr.format.metadata import encode_metadata
from apr.format.quant import PackedTensor
from apr.format.tensor_index import TensorEntry, encode_index

_ZEROS = bytes(64)


@dataclass(frozen=True, slots=True)
class _Planned:
    entry: TensorEntry
    payload: np.ndarray  # 1-D uint8, contiguous, little-endian bytes


def _payload(name: str, value: Any, problems: list[str]) -> tuple[DType, tuple[int, ...], np.ndarray] | None:
    if isinstance(value, PackedTensor):
        # the payload is the data's bytes, whatever array type holds them (a cast would change them)
        return value.dtype, tuple(value.shape), np.ascontiguousarray(value.data).reshape(-1).view(np.uint8)
    if not isinstance(value, np.ndarray):
        problems.append(f"{name!r}: expected a numpy array or PackedTensor, got {type(value).__name__}")
        return None
    dtype = dtype_from_numpy(value.dtype)
    if dtype is None:
        problems.append(
            f"{name!r}: dtype {value.dtype} is not storable (use float32/16/64, bfloat16, int8/32/64 or uint8)"
        )
        return None
    if value.ndim > MAX_NDIM:
        problems.append(f"{name!r}: {value.ndim} dimensions, the format allows at most {MAX_NDIM}")
        return None
    array = value
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    return dtype, tuple(int(d) for d in value.shape), array.reshape(-1).view(np.uint8)


def plan_tensors(tensors: Mapping[str, Any]) -> list[_Planned]:
    """Check every tensor and lay them out; raises one `TensorInputError` listing all problems."""
    if not isinstance(tensors, Mapping):
        raise TensorInputError(
            f"tensors must be a mapping of name -> array, got {type(tensors).__name__}",
            hint="pass a dict such as {'weight': np.zeros((2, 3), np.float32)}",
        )
    problems: list[str] = []
    items: list[tuple[bytes, str, DType, tuple[int, ...], np.ndarray]] = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            problems.append(f"{name!r}: tensor names must be str")
            continue
        try:
            raw_name = name.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"{name!r}: tensor name is not valid Unicode (unpaired surrogate)")
            continue
        if len(raw_name) > MAX_TENSOR_NAME_LEN:
            problems.append(
                f"{name[:40]!r}...: name is {len(raw_name)} bytes, the format allows {MAX_TENSOR_NAME_LEN} "
                "(aprender would silently truncate it)"
            )
            continue
        result = _payload(name, value, problems)
        if result is not None:
            items.append((raw_name, name, *result))
    if problems:
        raise TensorInputError(
            f"cannot save {len(problems)} tensor(s):\n    " + "\n    ".join(problems),
            hint="fix the listed tensors; nothing was written",
        )
    items.sort(key=lambda item: item[0])  # byte order = Rust String::cmp
    planned: list[_Planned] = []
    offset = 0
    for _raw, name, dtype, shape, payload in items:
        entry = TensorEntry(name=name, dtype=dtype, shape=shape, offset=offset, size=int(payload.size))
        planned.append(_Planned(entry, payload))
        offset += align64(entry.size)
    return planned


def build_prefix(planned: list[_Planned], metadata: Mapping[str, Any] | None, flags: int) -> tuple[Header, bytes]:
    """The header and everything up to the data section (header, padded metadata, padded index)."""
    if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags <= 0xFFFF:
        raise TensorInputError(f"flags must be a 16-bit integer, got {flags!r}", field="flags")
    if flags & Flags.LAYOUT_COLUMN_MAJOR:
        raise TensorInputError(
            "flags include LAYOUT_COLUMN_MAJOR, which readers reject (LAYOUT-002)",
            field="flags",
            hint="store tensors row-major and leave that flag unset",
        )
    meta = encode_metadata(metadata)
    index = encode_index([p.entry for p in planned])
    meta_off = HEADER_SIZE
    index_off = meta_off + align64(len(meta))
    data_off = index_off + align64(len(index))
    header = Header(
        flags=int(flags) | Flags.LAYOUT_ROW_MAJOR,
        tensor_count=len(planned),
        metadata_offset=meta_off,
        metadata_size=len(meta),
        tensor_index_offset=index_off,
        data_offset=data_off,
    ).with_checksum()
    prefix = b"".join(
        (
            header.to_bytes(),
            meta,
            bytes(index_off - meta_off - len(meta)),
            index,
            bytes(data_off - index_off - len(index)),
        )
    )
    return header, prefix


# Above this many payload bytes the footer CRC runs in a second thread while the main thread
# writes: zlib.crc32 and file writes both release the GIL, so on two cores the CRC (~6 GB/s,
# about a third of a page-cache write) becomes free. Below it, a thread costs more than it saves.
_THREADED_CRC_MIN_BYTES = 8 * 1024 * 1024


def _chunks(planned: list[_Planned], prefix: bytes) -> list[bytes | memoryview]:
    """Everything before the footer, in file order: prefix, then each payload and its padding."""
    chunks: list[bytes | memoryview] = [prefix]
    for item in planned:
        if item.payload.size:
            chunks.append(item.payload.data)
        pad = align64(item.entry.size) - item.entry.size
        if pad:
            chunks.append(_ZEROS[:pad])
    return chunks


def write_stream(handle: BinaryIO, planned: list[_Planned], prefix: bytes) -> int:
    """Write prefix, payloads and footer to ``handle``; return the total size written."""
    chunks = _chunks(planned, prefix)
    total = sum(len(c) if isinstance(c, bytes) else c.nbytes for c in chunks)
    if total < _THREADED_CRC_MIN_BYTES:
        crc = 0
        for chunk in chunks:
            handle.write(chunk)
            crc = crc32(chunk, crc)
    else:
        crc = _write_with_background_crc(handle, chunks)
    handle.write(crc.to_bytes(4, "little"))
    return total + 4


def _write_with_background_crc(handle: BinaryIO, chunks: list[bytes | memoryview]) -> int:
    import threading

    result: list[int] = []
    stop = threading.Event()

    def checksum() -> None:
        crc = 0
        for chunk in chunks:
            if stop.is_set():
                return
            crc = crc32(chunk, crc)
        result.append(crc)

    worker = threading.Thread(target=checksum, name="apr-footer-crc", daemon=True)
    worker.start()
    try:
        for chunk in chunks:
            handle.write(chunk)
    except BaseException:
        stop.set()
        raise
    finally:
        worker.join()
    return result[0]


def save_file(
    tensors: Mapping[str, np.ndarray | PackedTensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    flags: int = 0,
    *,
    durable: bool = True,
) -> None:
    """Write ``tensors`` and ``metadata`` to ``path`` as an APR v2 file.

    The same arguments always give the same bytes. The file appears only complete: it is
    written to a temporary file in the same folder, fsynced and renamed over ``path``.

    Args:
        tensors: name -> numpy array (float32/16/64, bfloat16 from ml_dtypes, int8/32/64,
            uint8) or `PackedTensor` (Q4_K, Q6_K, APR_Q4, APR_Q8). Order does not matter.
        path: the destination; an existing file is replaced atomically.
        metadata: the metadata object; typed fields of aprender's ``AprV2Metadata`` are checked
            and written first, other keys are written at the top level in sorted order.
        flags: header flags; LAYOUT_ROW_MAJOR is always added.
        durable: fsync before the rename (default), so the file survives a power loss too.
            ``durable=False`` keeps atomicity against a killed process and skips the fsync cost
            (measured in docs/benchmarks.md), for scratch files that can be rebuilt.

    Raises:
        TensorInputError: something cannot be stored (all problems listed; nothing written).
        AprFileNotFoundError: the destination folder does not exist.
        AprIOError: the write failed (disk full...); an existing file is unchanged.

    Example:
        >>> save_file({"w": np.ones((2, 3), np.float32)}, "m.apr", {"architecture": "llama"})  # doctest: +SKIP
    """
    planned = plan_tensors(tensors)
    _header, prefix = build_prefix(planned, metadata, flags)
    with atomic_write(path, durable=durable) as handle:
        write_stream(handle, planned, prefix)


def save(
    tensors: Mapping[str, np.ndarray | PackedTensor], metadata: Mapping[str, Any] | None = None, flags: int = 0
) -> bytes:
    """The bytes `save_file` would write."""
    planned = plan_tensors(tensors)
    _header, prefix = build_prefix(planned, metadata, flags)
    buffer = io.BytesIO()
    write_stream(buffer, planned, prefix)
    return buffer.getvalue()
