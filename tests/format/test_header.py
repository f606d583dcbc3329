"""The 64-byte header, its checksum and its flags (docs/aprender-format.md §1.2, §1.3, §1.7)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from apr.errors import ChecksumError, HeaderError, TensorInputError, TruncatedError
from apr.format import Flags, Header, open_bytes, save
from apr.format.header import align64, check_header_layout, parse_header
from tests.format.apr_samples import fix_header_crc, header_crc, header_fields, set_u32, set_u64

W = {"w": np.arange(4, dtype=np.float32)}


def test_header_round_trips_through_bytes() -> None:
    header = Header(flags=0x0400, tensor_count=3, metadata_offset=64, metadata_size=10,
                    tensor_index_offset=128, data_offset=192).with_checksum()
    raw = header.to_bytes()
    assert len(raw) == 64 and raw[:4] == b"APR\x00" and raw[4:6] == b"\x02\x00" and raw[44:] == bytes(20)
    assert struct.unpack_from("<I", raw, 40)[0] == zlib.crc32(raw[:40] + raw[44:])
    assert parse_header(raw) == header


def test_checksum_covers_everything_but_itself() -> None:
    raw = bytearray(save(W)[:64])
    assert header_crc(raw) == struct.unpack_from("<I", raw, 40)[0]
    for position in [*range(4, 40), *range(44, 64)]:  # the magic is checked first (HeaderError)
        flipped = bytearray(raw)
        flipped[position] ^= 0x10
        with pytest.raises(ChecksumError) as info:
            parse_header(flipped)
        assert info.value.offset == 40 and info.value.field == "checksum"


def test_checksum_field_itself_is_checked() -> None:
    raw = bytearray(save(W)[:64])
    raw[41] ^= 1
    with pytest.raises(ChecksumError):
        parse_header(raw)
    assert parse_header(raw, verify_checksum=False).is_checksum_valid is False


@pytest.mark.parametrize("size", [0, 1, 63])
def test_short_buffer_is_truncated(size: int) -> None:
    with pytest.raises(TruncatedError):
        parse_header(save(W)[:size])


def test_bad_magic_is_a_header_error() -> None:
    raw = bytearray(save(W)[:64])
    raw[3] = 1
    with pytest.raises(HeaderError, match="magic"):
        parse_header(raw)


def test_version_is_not_validated_like_aprender() -> None:
    data = bytearray(save(W))
    data[4], data[5] = 9, 7
    reader = open_bytes(bytes(fix_header_crc(data)))
    assert reader.header.version == (9, 7)


def test_align64() -> None:
    assert [align64(x) for x in (0, 1, 63, 64, 65, 128, 2**40 + 1)] == [0, 64, 64, 64, 128, 128, 2**40 + 64]


# --- flags ---------------------------------------------------------------------------------------


def test_flag_values_match_the_spec() -> None:
    assert {f.name: int(f) for f in Flags} == {
        "LZ4_COMPRESSED": 0x1, "ZSTD_COMPRESSED": 0x2, "ENCRYPTED": 0x4, "SIGNED": 0x8, "SHARDED": 0x10,
        "QUANTIZED": 0x20, "HAS_FILTERBANK": 0x40, "HAS_MODEL_CARD": 0x80, "STREAMING": 0x100,
        "HAS_VOCAB": 0x200, "LAYOUT_ROW_MAJOR": 0x400, "LAYOUT_COLUMN_MAJOR": 0x800,
    }


@pytest.mark.parametrize("flags", [0, Flags.HAS_VOCAB, Flags.QUANTIZED | Flags.SHARDED, Flags.LAYOUT_ROW_MAJOR, 0x73FF & ~0x800])
def test_row_major_is_always_set_on_write(flags: int) -> None:
    written = header_fields(save(W, flags=flags))["flags"]
    assert written == flags | 0x0400
    assert open_bytes(save(W, flags=flags)).flags == flags | 0x0400


@pytest.mark.parametrize("flags", [Flags.LAYOUT_COLUMN_MAJOR, Flags.LAYOUT_COLUMN_MAJOR | Flags.LAYOUT_ROW_MAJOR, 0xFFFF])
def test_column_major_is_refused_on_write(flags: int) -> None:
    with pytest.raises(TensorInputError) as info:
        save(W, flags=flags)
    assert info.value.field == "flags" and "LAYOUT-002" in info.value.message


@pytest.mark.parametrize("flags", [-1, 0x10000, 1.5, True, "0x400"])
def test_flags_must_be_a_16_bit_integer(flags: object) -> None:
    with pytest.raises(TensorInputError):
        save(W, flags=flags)  # type: ignore[arg-type]


def test_column_major_is_refused_on_read() -> None:
    data = bytearray(save(W))
    struct.pack_into("<H", data, 6, 0x0C00)
    with pytest.raises(HeaderError, match="LAYOUT-002") as info:
        open_bytes(bytes(fix_header_crc(data)))
    assert info.value.field == "flags" and info.value.offset == 6
    assert "apr import" in (info.value.hint or "")


def test_file_without_layout_bits_reads_as_row_major() -> None:
    data = bytearray(save(W))
    struct.pack_into("<H", data, 6, 0)
    reader = open_bytes(bytes(fix_header_crc(data)))
    assert reader.flags == 0 and reader.get_tensor("w").tolist() == [0, 1, 2, 3]


# --- layout checks -------------------------------------------------------------------------------


def _header(**fields: int) -> Header:
    base = dict(flags=0x400, tensor_count=0, metadata_offset=64, metadata_size=2,
                tensor_index_offset=128, data_offset=128)
    base.update(fields)
    return Header(**base)  # type: ignore[arg-type]


def test_layout_accepts_a_consistent_header() -> None:
    check_header_layout(_header(), 132)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"metadata_offset": 0}, HeaderError),
        ({"metadata_offset": 2**63}, TruncatedError),
        ({"metadata_size": 2**32 - 1}, TruncatedError),
        ({"tensor_index_offset": 2**64 - 1}, TruncatedError),
        ({"data_offset": 2**63}, TruncatedError),
        ({"tensor_index_offset": 64}, HeaderError),  # index inside metadata
        ({"data_offset": 100}, HeaderError),  # data before index
        ({"data_offset": 130}, HeaderError),  # data overlapping the footer
    ],
)
def test_layout_rejects_impossible_offsets(fields: dict[str, int], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_header_layout(_header(**fields), 132)


@pytest.mark.parametrize(("offset", "value"), [(12, 2**63), (24, 2**63), (32, 2**63), (24, 2**64 - 1), (32, 0)])
def test_reader_rejects_lying_u64_offsets(offset: int, value: int) -> None:
    data = fix_header_crc(set_u64(bytearray(save(W)), offset, value))
    with pytest.raises((TruncatedError, HeaderError)):
        open_bytes(bytes(data))


def test_reader_rejects_lying_metadata_size() -> None:
    data = fix_header_crc(set_u32(bytearray(save(W)), 20, 2**32 - 1))
    with pytest.raises(TruncatedError) as info:
        open_bytes(bytes(data))
    assert "metadata" in info.value.message
