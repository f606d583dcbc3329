"""The header's exact bytes and every header check at its boundary (issue 23: mutation score).

Expected bytes come from `struct.pack` over the documented layout (docs/aprender-format.md §1.2)
and zlib's CRC-32, never from the code under test.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.errors import ChecksumError, HeaderError, TruncatedError
from apr.format.header import (
    Flags,
    Header,
    check_header_layout,
    checksum_matches,
    decode_header,
    header_checksum,
    parse_header,
)

FIELDS = dict(
    flags=0x0421,
    tensor_count=0x01020304,
    metadata_offset=0x1112131415161718,
    metadata_size=0x21222324,
    tensor_index_offset=0x3132333435363738,
    data_offset=0x4142434445464748,
)


def golden(*, major: int = 2, minor: int = 0, reserved: bytes = bytes(20), checksum: int | None = None,
           **fields: int) -> bytes:
    """The 64 header bytes by §1.2, with the §1.2 checksum unless one is given."""
    f = {**FIELDS, **fields}
    head = struct.pack("<4sBBHIQIQQ", b"APR\x00", major, minor, f["flags"], f["tensor_count"],
                       f["metadata_offset"], f["metadata_size"], f["tensor_index_offset"], f["data_offset"])
    assert len(head) == 40
    crc = zlib.crc32(head + reserved) if checksum is None else checksum
    return head + struct.pack("<I", crc) + reserved


def test_to_bytes_is_the_documented_layout() -> None:
    assert Header(**FIELDS).to_bytes() == golden()


def test_to_bytes_writes_version_and_reserved_where_documented() -> None:
    reserved = bytes(range(1, 21))
    header = Header(**FIELDS, version=(3, 7), reserved=reserved)
    assert header.to_bytes() == golden(major=3, minor=7, reserved=reserved)


def test_to_bytes_recomputes_a_stale_checksum() -> None:
    assert Header(**FIELDS, checksum=0xDEADBEEF).to_bytes() == golden()


def test_with_checksum_sets_the_crc_and_keeps_every_other_field() -> None:
    reserved = bytes(range(20, 40))
    header = Header(**FIELDS, checksum=5, version=(2, 1), reserved=reserved).with_checksum()
    expected = golden(minor=1, reserved=reserved)
    assert header.checksum == struct.unpack_from("<I", expected, 40)[0]
    assert header == Header(**FIELDS, checksum=header.checksum, version=(2, 1), reserved=reserved)
    assert header.computed_checksum == header.checksum and header.is_checksum_valid is True


def test_header_checksum_skips_exactly_bytes_40_to_44() -> None:
    raw = bytearray(golden(reserved=bytes(range(100, 120))))
    expected = zlib.crc32(bytes(raw[:40]) + bytes(raw[44:]))
    assert header_checksum(bytes(raw)) == expected
    for position in (40, 41, 42, 43):  # the checksum field itself is not covered
        raw2 = bytearray(raw)
        raw2[position] ^= 0xFF
        assert header_checksum(bytes(raw2)) == expected
    for position in (0, 39, 44, 63):  # its neighbours are
        raw2 = bytearray(raw)
        raw2[position] ^= 0xFF
        assert header_checksum(bytes(raw2)) == zlib.crc32(bytes(raw2[:40]) + bytes(raw2[44:]))
        assert header_checksum(bytes(raw2)) != expected


def test_checksum_matches_compares_stored_and_computed() -> None:
    good = Header(**FIELDS).with_checksum()
    assert checksum_matches(good) is True
    for wrong in (good.checksum ^ 1, good.checksum ^ 0x80000000, 0):
        assert checksum_matches(Header(**FIELDS, checksum=wrong)) is False
        assert Header(**FIELDS, checksum=wrong).is_checksum_valid is False


def test_parse_header_reads_every_field_from_its_offset() -> None:
    reserved = bytes(range(1, 21))
    raw = golden(major=2, minor=9, reserved=reserved)
    header = parse_header(raw)
    assert header == Header(**FIELDS, checksum=struct.unpack_from("<I", raw, 40)[0], version=(2, 9),
                            reserved=reserved)
    assert (header.flags, header.tensor_count, header.metadata_offset, header.metadata_size,
            header.tensor_index_offset, header.data_offset) == tuple(FIELDS.values())


def test_parse_header_reads_only_the_first_64_bytes() -> None:
    raw = golden()
    assert parse_header(raw + b"\xff" * 100) == parse_header(raw)
    assert parse_header(bytearray(raw)) == parse_header(memoryview(raw)) == parse_header(raw)


@pytest.mark.parametrize("size", [0, 1, 4, 63])
def test_parse_header_below_64_bytes_is_truncated(size: int) -> None:
    with pytest.raises(TruncatedError) as info:
        parse_header(golden()[:size])
    assert f"{size} bytes" in info.value.message and "need 64" in info.value.message


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_every_magic_byte_is_checked_before_the_checksum(position: int) -> None:
    raw = bytearray(golden())
    raw[position] ^= 0x01
    with pytest.raises(HeaderError) as info:
        parse_header(bytes(raw))
    assert info.value.offset == 0
    assert raw[:4].hex() in info.value.message and "41505200" in info.value.message
    with pytest.raises(HeaderError):  # not a checksum question: also without verification
        parse_header(bytes(raw), verify_checksum=False)


def test_checksum_is_verified_by_default_and_only_on_request_skipped() -> None:
    raw = golden(checksum=0x01020304)
    with pytest.raises(ChecksumError) as info:
        parse_header(raw)
    computed = zlib.crc32(raw[:40] + raw[44:])
    assert (info.value.offset, info.value.field) == (40, "checksum")
    assert "0x01020304" in info.value.message and f"0x{computed:08x}" in info.value.message
    with pytest.raises(ChecksumError):
        parse_header(raw, verify_checksum=True)
    header = parse_header(raw, verify_checksum=False)
    assert header.checksum == 0x01020304 and header.is_checksum_valid is False


@given(st.integers(0, 0xFFFF))
@example(0x0800)
@example(0xFFFF)
@example(0xF7FF)
@example(0x0400)
@example(0)
def test_only_the_column_major_bit_is_refused(flags: int) -> None:
    for verify in (True, False):
        raw = golden(flags=flags)
        if flags & 0x0800:
            with pytest.raises(HeaderError) as info:
                parse_header(raw, verify_checksum=verify)
            assert (info.value.offset, info.value.field) == (6, "flags")
            assert "LAYOUT-002" in info.value.message
        else:
            assert parse_header(raw, verify_checksum=verify).flags == flags


def test_a_bad_checksum_is_reported_before_the_layout_flag() -> None:
    """§1.7: checksum (step 3) before LAYOUT-002 (step 4)."""
    with pytest.raises(ChecksumError):
        parse_header(golden(flags=0x0800, checksum=0))


@given(st.integers(0, 0xFFFF), st.sampled_from(list(Flags)))
@example(0x0003, Flags.LZ4_COMPRESSED)
@example(0x0001, Flags.ZSTD_COMPRESSED)
def test_has_means_every_bit_of_the_flag(flags: int, flag: Flags) -> None:
    header = Header(**{**FIELDS, "flags": flags})
    assert header.has(flag) is bool(flags & int(flag))
    both = flag | Flags.LAYOUT_ROW_MAJOR if flag is not Flags.LAYOUT_ROW_MAJOR else flag | Flags.LZ4_COMPRESSED
    assert header.has(both) is ((flags & int(both)) == int(both))


def test_has_needs_all_bits_of_a_combined_flag() -> None:
    header = Header(**{**FIELDS, "flags": 0x0001})
    assert header.has(Flags.LZ4_COMPRESSED) is True
    assert header.has(Flags.LZ4_COMPRESSED | Flags.ZSTD_COMPRESSED) is False
    assert Header(**{**FIELDS, "flags": 0x0003}).has(Flags.LZ4_COMPRESSED | Flags.ZSTD_COMPRESSED) is True
    assert Header(**{**FIELDS, "flags": 0x0002}).has(Flags.LZ4_COMPRESSED) is False


# --- check_header_layout: each bound below, at and above ------------------------------------------


def layout(meta_off: int = 64, meta_size: int = 10, index_off: int = 128, data_off: int = 192) -> Header:
    return Header(flags=0x400, tensor_count=0, metadata_offset=meta_off, metadata_size=meta_size,
                  tensor_index_offset=index_off, data_offset=data_off)


def test_a_consistent_layout_passes() -> None:
    check_header_layout(layout(), 196)  # data ends exactly at file size - footer
    check_header_layout(layout(meta_size=64, index_off=128, data_off=128), 132)  # equalities allowed


@pytest.mark.parametrize("meta_off, ok", [(63, False), (64, True), (0, False), (65, True)])
def test_metadata_must_not_overlap_the_header(meta_off: int, ok: bool) -> None:
    header = layout(meta_off=meta_off, meta_size=1)
    if ok:
        check_header_layout(header, 196)
    else:
        with pytest.raises(HeaderError) as info:
            check_header_layout(header, 196)
        assert (info.value.offset, info.value.field) == (12, "metadata_offset")
        assert str(meta_off) in info.value.message


@pytest.mark.parametrize(
    "kwargs, offset, claimed, section",
    [
        (dict(meta_off=64, meta_size=300, index_off=128, data_off=192), 12, 364, "metadata"),
        (dict(meta_off=64, meta_size=10, index_off=301, data_off=192), 24, 301, "the tensor index"),
        (dict(meta_off=64, meta_size=10, index_off=128, data_off=301), 32, 301, "tensor data"),
    ],
)
def test_a_section_past_the_end_is_truncated_with_its_field_offset(kwargs, offset: int, claimed: int,
                                                                   section: str) -> None:
    with pytest.raises(TruncatedError) as info:
        check_header_layout(layout(**kwargs), 300)
    assert info.value.offset == offset
    assert info.value.message == f"file too small for {section} (header claims {claimed} bytes, file is 300)"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(meta_off=64, meta_size=236, index_off=300, data_off=300),  # metadata end == file size
        dict(meta_off=64, meta_size=10, index_off=300, data_off=300),  # index offset == file size
        dict(meta_off=64, meta_size=10, index_off=128, data_off=300),  # data offset == file size
    ],
)
def test_a_section_ending_exactly_at_the_file_size_is_not_truncated(kwargs) -> None:
    with pytest.raises(HeaderError) as info:  # it is out of order (no room for the footer)
        check_header_layout(layout(**kwargs), 300)
    assert not isinstance(info.value, TruncatedError)
    assert info.value.offset == 12 and "296" in info.value.message


@pytest.mark.parametrize(
    "kwargs, ok",
    [
        (dict(meta_size=64, index_off=128), True),  # metadata end == index offset
        (dict(meta_size=65, index_off=128), False),  # metadata end one past the index
        (dict(index_off=192, data_off=192), True),  # index offset == data offset
        (dict(index_off=193, data_off=192), False),  # index after data
        (dict(data_off=196), True),  # data offset == file size - footer (no tensors)
        (dict(data_off=197), False),  # into the footer
    ],
)
def test_section_order_bounds(kwargs, ok: bool) -> None:
    header = layout(**kwargs)
    if ok:
        check_header_layout(header, 200)
    else:
        with pytest.raises(HeaderError) as info:
            check_header_layout(header, 200)
        assert type(info.value) is HeaderError and info.value.offset == 12
        end = header.metadata_offset + header.metadata_size
        message = info.value.message
        assert message.startswith(f"sections out of order: expected metadata end ({end}) <= tensor_index_offset (")
        for number in (end, header.tensor_index_offset, header.data_offset, 196):
            assert f"({number})" in message


def test_decode_header_checks_only_length_and_magic() -> None:
    """`apr validate` decodes with this and reports checksum and layout as checks of their own."""
    raw = golden(flags=0x0C00, checksum=7, major=9)
    header = decode_header(raw)
    assert (header.flags, header.checksum, header.version) == (0x0C00, 7, (9, 0))
    assert header.is_checksum_valid is False
    with pytest.raises(TruncatedError):
        decode_header(raw[:63])
    with pytest.raises(HeaderError) as info:
        decode_header(b"APR\x01" + raw[4:])
    assert info.value.offset == 0


@pytest.mark.parametrize("make", [
    lambda: parse_header(golden()[:10]),
    lambda: parse_header(b"APR\x01" + golden()[4:]),
    lambda: parse_header(golden(checksum=1)),
    lambda: parse_header(golden(flags=0x0800)),
    lambda: check_header_layout(layout(meta_off=8), 300),
    lambda: check_header_layout(layout(data_off=400), 300),
    lambda: check_header_layout(layout(index_off=64), 300),
])
def test_every_header_refusal_says_how_to_fix_it(make) -> None:
    with pytest.raises((HeaderError, TruncatedError, ChecksumError)) as info:
        make()
    assert info.value.hint and info.value.hint.strip() == info.value.hint and info.value.message


def test_header_hints_name_the_command_that_fixes_it() -> None:
    with pytest.raises(HeaderError) as info:
        parse_header(golden(flags=0x0800))
    assert "`apr import`" in info.value.hint
    with pytest.raises(HeaderError) as info:
        parse_header(b"GGUF" + golden()[4:])
    assert "`apr inspect`" in info.value.hint
