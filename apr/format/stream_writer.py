"""Write an APR v2 file whose payloads are produced one at a time (bounded memory).

`save_file` needs every payload in memory before it writes. An importer converting a 10 GiB
model cannot do that, so here the caller declares each tensor first (name, dtype, shape, byte
count), the header and index are computed from those declarations, and then a callback produces
each payload in file (sorted) order; each is written, folded into the CRC and dropped before the
next is asked for. For the same tensors the bytes are exactly those of `save_file`.

Example:
    >>> import numpy as np
    >>> from apr.format import DType
    >>> specs = [TensorSpec("w", DType.F32, (2, 3), 24)]
    >>> write_file_streaming(specs, lambda spec: np.zeros(spec.shape, np.float32), "m.apr")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from apr.errors import TensorInputError
from apr.format.atomic import atomic_write
from apr.format.crc import crc32
from apr.format.dtypes import DType, expected_nbytes
from apr.format.header import MAX_NDIM, MAX_TENSOR_NAME_LEN, align64
from apr.format.quant import PackedTensor
from apr.format.tensor_index import TensorEntry
from apr.format.writer import build_prefix

_ZEROS = bytes(64)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A tensor declared before its bytes exist: what the index entry will say."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True, slots=True)
class _Declared:
    entry: TensorEntry  # what build_prefix reads
    spec: TensorSpec


def plan_specs(specs: Iterable[TensorSpec]) -> list[_Declared]:
    """Check the declarations and lay them out in file order; one error lists every problem."""
    problems: list[str] = []
    items: list[tuple[bytes, TensorSpec]] = []
    seen: set[str] = set()
    for spec in specs:
        try:
            raw = spec.name.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            problems.append(f"{spec.name!r}: tensor name is not a valid str")
            continue
        if spec.name in seen:
            problems.append(f"{spec.name!r}: declared twice")
            continue
        seen.add(spec.name)
        if len(raw) > MAX_TENSOR_NAME_LEN:
            problems.append(f"{spec.name[:40]!r}...: name is {len(raw)} bytes, the format allows {MAX_TENSOR_NAME_LEN}")
            continue
        if len(spec.shape) > MAX_NDIM:
            problems.append(f"{spec.name!r}: {len(spec.shape)} dimensions, the format allows at most {MAX_NDIM}")
            continue
        expected = expected_nbytes(spec.dtype, tuple(spec.shape))
        if expected != spec.nbytes:
            problems.append(
                f"{spec.name!r}: {spec.dtype.name} {list(spec.shape)} needs {expected} bytes, declared {spec.nbytes}"
            )
            continue
        items.append((raw, spec))
    if problems:
        raise TensorInputError(
            f"cannot write {len(problems)} tensor(s):\n    " + "\n    ".join(problems),
            hint="fix the listed tensors; nothing was written",
        )
    items.sort(key=lambda item: item[0])  # byte order = Rust String::cmp, as save_file
    declared: list[_Declared] = []
    offset = 0
    for _raw, spec in items:
        entry = TensorEntry(name=spec.name, dtype=spec.dtype, shape=tuple(spec.shape), offset=offset, size=spec.nbytes)
        declared.append(_Declared(entry, spec))
        offset += align64(spec.nbytes)
    return declared


def _as_bytes(spec: TensorSpec, value: Any) -> memoryview:
    """The produced payload as a flat byte view, checked against its declaration."""
    if isinstance(value, PackedTensor):
        if value.dtype is not spec.dtype or tuple(value.shape) != tuple(spec.shape):
            raise TensorInputError(
                f"{spec.name!r}: produced {value.dtype.name} {list(value.shape)}, declared "
                f"{spec.dtype.name} {list(spec.shape)}"
            )
        # the payload is the data's bytes, whatever array type holds them, as save_file writes it
        # (a cast to uint8 would change a multi-byte array's values and count)
        array = np.ascontiguousarray(value.data).reshape(-1).view(np.uint8)
    elif isinstance(value, np.ndarray):
        array = value
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        array = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return memoryview(value).cast("B")
    else:
        raise TensorInputError(f"{spec.name!r}: the producer returned {type(value).__name__}, not bytes or an array")
    return array.data  # a memoryview of the bytes


def write_file_streaming(
    specs: Iterable[TensorSpec],
    produce: Callable[[TensorSpec], Any],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    flags: int = 0,
    *,
    verify: Callable[[str], None] | None = None,
) -> int:
    """Write an APR v2 file, asking ``produce`` for each payload in file order.

    Args:
        specs: every tensor's name, dtype, shape and payload byte count.
        produce: ``produce(spec)`` returns that tensor's payload: a numpy array, a
            `PackedTensor` or bytes of exactly ``spec.nbytes`` bytes. Called once per tensor, in
            sorted name order; the result is dropped once written.
        path: the destination; replaced atomically, only once everything was written.
        metadata: as for `save_file`.
        flags: as for `save_file`.
        verify: optional ``callable(tmp_path)`` run before the rename.

    Returns:
        The file size in bytes.

    Raises:
        TensorInputError: a declaration is invalid, or a payload disagrees with its declaration
            (nothing is left at ``path``).
    """
    declared = plan_specs(specs)
    _header, prefix = build_prefix(declared, metadata, flags)  # type: ignore[arg-type]
    with atomic_write(path, verify=verify) as handle:
        crc = crc32(prefix)
        handle.write(prefix)
        total = len(prefix)
        for item in declared:
            payload = _as_bytes(item.spec, produce(item.spec))
            if payload.nbytes != item.spec.nbytes:
                raise TensorInputError(
                    f"{item.spec.name!r}: the producer returned {payload.nbytes} bytes, declared {item.spec.nbytes}",
                    field=item.spec.name,
                    hint="this is a bug in the converter; nothing was written",
                )
            if payload.nbytes:
                handle.write(payload)
                crc = crc32(payload, crc)
            pad = align64(item.spec.nbytes) - item.spec.nbytes
            if pad:
                handle.write(_ZEROS[:pad])
                crc = crc32(_ZEROS[:pad], crc)
            total += item.spec.nbytes + pad
            del payload
        handle.write(crc.to_bytes(4, "little"))
    return total + 4


__all__ = ["TensorSpec", "plan_specs", "write_file_streaming"]
