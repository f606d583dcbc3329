"""CRC-32 (IEEE, zlib's), including the combination of two CRCs without re-reading bytes.

APR v2 uses zlib's CRC-32 for both the header checksum and the footer (docs/aprender-format.md
§1.2). `crc32_combine` lets `apr stamp --in-place` update the footer CRC after rewriting only the
header and metadata: CRC-32 is linear over GF(2), so crc(A‖B) follows from crc(A), crc(B) and
len(B). Python's zlib does not expose zlib's own ``crc32_combine``, hence this port of its
matrix method (zlib ``crc32.c``, public domain algorithm by Mark Adler).
"""

from __future__ import annotations

import zlib

_POLY = 0xEDB88320


def crc32(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32 of ``data``, continuing from ``value`` (identical to `zlib.crc32`)."""
    return zlib.crc32(data, value) & 0xFFFFFFFF


def _gf2_matrix_times(mat: list[int], vec: int) -> int:
    total = 0
    i = 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
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
    odd = [_POLY] + [1 << n for n in range(31)]  # operator for one zero bit
    even = _gf2_matrix_square(odd)  # two zero bits
    odd = _gf2_matrix_square(even)  # four zero bits
    crc1 = crc_a & 0xFFFFFFFF
    length = len_b
    while True:
        even = _gf2_matrix_square(odd)
        if length & 1:
            crc1 = _gf2_matrix_times(even, crc1)
        length >>= 1
        if not length:
            break
        odd = _gf2_matrix_square(even)
        if length & 1:
            crc1 = _gf2_matrix_times(odd, crc1)
        length >>= 1
        if not length:
            break
    return (crc1 ^ crc_b) & 0xFFFFFFFF
