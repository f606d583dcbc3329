"""`apr.format.crc` against zlib.crc32 as the independent oracle: the continued CRC, the bulk CRC's
choice at exactly `BULK_BYTES`, and `crc32_combine` for every length up to a few hundred bytes, at
powers of two and beside them, for CRCs given signed or unsigned, and for an empty second part
(zlib's ``crc32_combine`` returns ``crc1`` then, whatever ``crc2`` is) (issue 23)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apr.format import crc as crc_module
from apr.format.crc import BULK_BYTES, bulk_crc32, crc32, crc32_combine


def _signed(value: int) -> int:
    """The same 32 bits read as a signed int (how a C ``int`` or ``struct '<i'`` hands a CRC over)."""
    return value - (1 << 32) if value >= 1 << 31 else value


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_crc32_continues_like_zlib(a: bytes, b: bytes) -> None:
    assert crc32(a) == zlib.crc32(a)
    assert crc32(b, crc32(a)) == zlib.crc32(a + b)
    assert crc32(bytearray(b), zlib.crc32(a)) == crc32(memoryview(a + b)) == zlib.crc32(a + b)


def test_crc32_check_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32/ISO-HDLC check value
    assert crc32(b"") == 0 and crc32(b"", 0x1234) == 0x1234


def test_bulk_crc32_switches_to_the_fast_crc_at_exactly_bulk_bytes() -> None:
    assert bulk_crc32(0) is zlib.crc32
    assert bulk_crc32(BULK_BYTES - 1) is zlib.crc32
    fast = crc_module._fast_crc32()
    assert bulk_crc32(BULK_BYTES) is fast and bulk_crc32(BULK_BYTES + 1) is fast and bulk_crc32() is fast
    assert fast(b"123456789") == 0xCBF43926 and fast(b"world", zlib.crc32(b"hello ")) == zlib.crc32(b"hello world")


@pytest.mark.parametrize("length", [*range(0, 70), 127, 128, 129, 255, 256, 257, 511, 512, 1000, 1023, 1024, 1025])
def test_crc32_combine_equals_zlib_over_the_concatenation(length: int) -> None:
    a = bytes((i * 7 + 3) & 0xFF for i in range(13))
    b = bytes((i * 31 + length) & 0xFF for i in range(length))
    expected = zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), length) == expected
    assert crc32_combine(_signed(zlib.crc32(a)), _signed(zlib.crc32(b)), length) == expected


@pytest.mark.parametrize("length", [1 << 16, (1 << 20) + 3, (1 << 24) - 1])
def test_crc32_combine_of_long_zero_runs(length: int) -> None:
    a = b"prefix"
    assert crc32_combine(zlib.crc32(a), zlib.crc32(bytes(length)), length) == zlib.crc32(a + bytes(length))


@settings(max_examples=200)
@given(st.binary(max_size=64), st.binary(max_size=600))
@example(b"", b"")
@example(b"", b"\x00")
@example(b"\xff" * 4, b"\x00" * 8)
def test_crc32_combine_property(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.parametrize("crc_b", [0, 1, 0xDEADBEEF])
@pytest.mark.parametrize("len_b", [0, -1, -100])
def test_crc32_combine_with_nothing_after_is_the_first_crc(crc_b: int, len_b: int) -> None:
    crc_a = zlib.crc32(b"first part")
    assert crc32_combine(crc_a, crc_b, len_b) == crc_a
    assert crc32_combine(_signed(crc_a), crc_b, len_b) == crc_a
    assert crc32_combine(-1, crc_b, len_b) == 0xFFFFFFFF


def test_crc32_combine_results_are_32_bit() -> None:
    a, b = b"\x80" * 5, b"\x7f" * 9
    assert crc32_combine(_signed(zlib.crc32(a)), _signed(zlib.crc32(b)), len(b)) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), -1, 1) == crc32_combine(zlib.crc32(a), 0xFFFFFFFF, 1) < 1 << 32
