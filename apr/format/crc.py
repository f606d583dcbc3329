"""CRC-32 (IEEE, zlib's), including the combination of two CRCs without re-reading bytes.

APR v2 uses zlib's CRC-32 for both the header checksum and the footer (docs/aprender-format.md
§1.2). `crc32_combine` lets `apr stamp --in-place` update the footer CRC after rewriting only the
header and metadata: CRC-32 is linear over GF(2), so crc(A‖B) follows from crc(A), crc(B) and
len(B). Python's zlib does not expose zlib's own ``crc32_combine``, hence this port of its
matrix method (zlib ``crc32.c``, public domain algorithm by Mark Adler).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

_POLY = 0xEDB88320


def crc32(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32 of ``data``, continuing from ``value`` (identical to `zlib.crc32`)."""
    return zlib.crc32(data, value) & 0xFFFFFFFF


# Below this many bytes zlib's CRC takes under ~20 ms: not worth importing zlib-ng (~8 ms).
BULK_BYTES = 16 << 20


def bulk_crc32(length: int = BULK_BYTES) -> Callable[..., int]:
    """The fastest CRC-32 here for ``length`` bytes, with `zlib.crc32`'s signature and values.

    zlib-ng's SIMD CRC (the ``zlib-ng`` package, a dependency) runs about 4x the system zlib's
    1.2.x on this project's machines (3.1 vs 0.77 GiB/s measured, docs/benchmarks.md); it is
    imported only for at least `BULK_BYTES` (a small file's stamp keeps its import list), and
    without it `zlib.crc32` gives the same values.

    Example:
        >>> bulk_crc32()(b"123456789") == zlib.crc32(b"123456789") == 0xCBF43926
        True
        >>> bulk_crc32(4096) is zlib.crc32
        True
    """
    return _fast_crc32() if length >= BULK_BYTES else zlib.crc32


@functools.cache
def _fast_crc32() -> Callable[..., int]:
    try:
        from zlib_ng.zlib_ng import crc32 as fast
    except ImportError:  # an install without the wheel (an unusual platform): the same values, slower
        return zlib.crc32
    return fast


def _gf2_matrix_times(mat: list[int], vec: int) -> int:
    """``mat · vec`` over GF(2) for a 32-bit ``vec``: one fixed pass over its 32 bits (zlib's
    ``while (vec)`` stops early; a bounded loop gives the same product and cannot run forever)."""
    total = 0
    for i in range(32):
        if vec >> i & 1:
            total ^= mat[i]
    return total


def _gf2_matrix_square(mat: list[int]) -> list[int]:
    return [_gf2_matrix_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """CRC-32 of ``A‖B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)``; O(log len_b).

    Example:
        >>> a, b = b"hello ", b"world"
        >>> crc32_combine(crc32(a), crc32(b), len(b)) == crc32(a + b)
        True
    """
    if len_b <= 0:
        return crc_a & 0xFFFFFFFF
    operator = [_POLY] + [1 << n for n in range(31)]  # operator for one zero bit
    operator = _gf2_matrix_square(operator)  # two zero bits
    operator = _gf2_matrix_square(operator)  # four zero bits
    crc1 = crc_a & 0xFFFFFFFF
    # zlib alternates two matrices in a `while` on the length; one loop over its bits (bit k:
    # 2^k zero bytes) squares the same operators in the same order and always ends
    for k in range(len_b.bit_length()):
        operator = _gf2_matrix_square(operator)  # 2^k zero bytes
        if len_b >> k & 1:
            crc1 = _gf2_matrix_times(operator, crc1)
    return (crc1 ^ crc_b) & 0xFFFFFFFF
