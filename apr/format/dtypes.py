"""APR v2 tensor dtypes (docs/aprender-format.md §1.6) and their byte sizes.

Plain dtypes map to numpy (BF16 through `ml_dtypes.bfloat16`, the dtype JAX and TensorFlow use
for numpy interop). ``ml_dtypes`` is imported only when a BF16 tensor's numpy dtype is asked for:
its import costs about a second (0.7.0), which every command paid before (issue 17). numpy itself
is imported on the first numpy question too: the codes, names and byte sizes below are plain
Python, so reading a header (``apr inspect``, ``apr stamp``) does not pay numpy's ~60 ms. Packed
dtypes (Q4_K, Q6_K, APR_Q4, APR_Q8) have no numpy element type: their payload is raw bytes whose
length follows from the element count.
"""

from __future__ import annotations

import enum
import functools
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class DType(enum.IntEnum):
    """On-disk dtype codes (GGML-aligned ids, GH-438)."""

    F32 = 0
    F16 = 1
    F64 = 3
    I32 = 4
    I64 = 5
    I8 = 6
    U8 = 7
    Q4_K = 12
    Q6_K = 14
    BF16 = 30
    APR_Q4 = 128
    APR_Q8 = 129

    @property
    def is_packed(self) -> bool:
        return self in _PACKED

    @property
    def label(self) -> str:
        """aprender's display name (``"Q4_K"``, ``"APR_Q8"``...)."""
        return self.name

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype of an unpacked tensor; raises for packed ones."""
        if self is DType.BF16:
            return _bfloat16()
        try:
            return _to_numpy()[self]
        except KeyError:
            raise TypeError(f"{self.name} is a packed dtype with no numpy element type") from None


_PACKED = frozenset({DType.Q4_K, DType.Q6_K, DType.APR_Q4, DType.APR_Q8})

# Legacy codes still accepted on read (written as their new codes).
_LEGACY_CODES = {8: DType.APR_Q4, 9: DType.APR_Q8}

# numpy dtype strings of the plain codes; BF16 is _bfloat16(), on demand
_NUMPY_CODES: dict[DType, str] = {
    DType.F32: "<f4",
    DType.F16: "<f2",
    DType.F64: "<f8",
    DType.I32: "<i4",
    DType.I64: "<i8",
    DType.I8: "i1",
    DType.U8: "u1",
}
_ITEMSIZE: dict[DType, int] = {DType.F32: 4, DType.F16: 2, DType.F64: 8, DType.I32: 4, DType.I64: 8, DType.I8: 1,
                               DType.U8: 1, DType.BF16: 2}


@functools.cache
def _to_numpy() -> dict[DType, np.dtype]:
    import numpy as np

    return {code: np.dtype(text) for code, text in _NUMPY_CODES.items()}


@functools.cache
def _from_numpy() -> dict[np.dtype, DType]:
    return {dt: code for code, dt in _to_numpy().items()}


def _bfloat16() -> np.dtype:
    """numpy's dtype for BF16 (``ml_dtypes.bfloat16``), importing ml_dtypes on first use."""
    import ml_dtypes
    import numpy as np

    return np.dtype(ml_dtypes.bfloat16)

Q4_K_BLOCK = (256, 144)  # elements, bytes per superblock
Q6_K_BLOCK = (256, 210)
APR_Q4_BLOCK = (32, 18)


def dtype_from_code(code: int) -> DType | None:
    """The dtype for an on-disk code, or None if the code does not exist."""
    if code in _LEGACY_CODES:
        return _LEGACY_CODES[code]
    try:
        return DType(code)
    except ValueError:
        return None


def dtype_from_numpy(dtype: np.dtype) -> DType | None:
    """The APR dtype storing numpy ``dtype`` (byte order normalised), or None if unsupported."""
    import numpy as np

    dt = np.dtype(dtype)
    if dt.byteorder == ">":
        dt = dt.newbyteorder("<")
    # an array of bfloat16 exists only if its maker imported ml_dtypes: compare without importing it
    if "ml_dtypes" in sys.modules and dt == _bfloat16():
        return DType.BF16
    return _from_numpy().get(dt)


def element_count(shape: tuple[int, ...]) -> int:
    """Product of the dims (1 for a scalar); Python ints, so never overflows."""
    count = 1
    for dim in shape:
        count *= dim
    return count


def expected_nbytes(dtype: DType, shape: tuple[int, ...]) -> int | None:
    """The payload size a tensor of this dtype and shape must have; None if no size can fit.

    K-quants need a whole number of 256-element superblocks per row (the last dim), as GGUF does.
    """
    n = element_count(shape)
    if dtype in _ITEMSIZE:
        return n * _ITEMSIZE[dtype]
    if dtype is DType.APR_Q8:
        return 4 + n
    if dtype is DType.APR_Q4:
        elems, nbytes = APR_Q4_BLOCK
        return -(-n // elems) * nbytes
    elems, nbytes = Q4_K_BLOCK if dtype is DType.Q4_K else Q6_K_BLOCK
    row = shape[-1] if shape else 1
    if n % elems or row % elems:
        return None
    return n // elems * nbytes
