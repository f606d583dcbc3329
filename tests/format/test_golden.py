"""Golden files: every expected byte is derived by hand from docs/aprender-format.md §1, not from our
writer. Offsets are worked out in the comments; CRCs are zlib.crc32 of the explicitly built bytes
and, as a second guard, pinned literals."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from apr.format import Flags, load, open_bytes, save

# --- one tensor: {"w": float32 [1, 2, 3]}, no metadata, no flags ---------------------------------

# §1.8: with nothing set, only the always-written fields appear, in declaration order.
ONE_JSON = (
    b'{"model_type":"","license":null,"data_source":null,"data_license":null,'
    b'"total_size":0,"param_count":0}'
)
# len(ONE_JSON) = 102 -> metadata [64, 64+128); tensor_index_offset = 192.
# Entry "w": name_len 2 + name 1 + dtype 1 + ndim 1 + dims 8 + offset/size 16 = 29 -> padded 64.
# data_offset = 192 + 64 = 256; payload 12 bytes + 52 zeros; footer at 320; file size 324.
ONE_ENTRY = b"\x01\x00" + b"w" + b"\x00" + b"\x01" + struct.pack("<Q", 3) + struct.pack("<QQ", 0, 12)
ONE_HEADER_NO_CRC = (
    b"APR\x00"  # magic
    + b"\x02\x00"  # version 2.0
    + struct.pack("<H", 0x0400)  # LAYOUT_ROW_MAJOR, always set
    + struct.pack("<I", 1)  # tensor_count
    + struct.pack("<Q", 64)  # metadata_offset
    + struct.pack("<I", 102)  # metadata_size: unpadded JSON length
    + struct.pack("<Q", 192)  # tensor_index_offset
    + struct.pack("<Q", 256)  # data_offset
)
ONE_HEADER_CRC = 0xCB77A84C
ONE_FOOTER_CRC = 0xDE13D317


def _one_expected() -> bytes:
    crc = zlib.crc32(ONE_HEADER_NO_CRC + bytes(20))  # bytes 0..40 then 44..64 (reserved zeros)
    header = ONE_HEADER_NO_CRC + struct.pack("<I", crc) + bytes(20)
    body = (
        header
        + ONE_JSON + bytes(128 - 102)
        + ONE_ENTRY + bytes(64 - 29)
        + struct.pack("<3f", 1.0, 2.0, 3.0) + bytes(52)
    )
    assert len(body) == 320
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-003")
def test_one_tensor_file_matches_the_spec_byte_for_byte() -> None:
    expected = _one_expected()
    assert len(expected) == 324
    assert expected[40:44] == struct.pack("<I", ONE_HEADER_CRC)
    assert expected[-4:] == struct.pack("<I", ONE_FOOTER_CRC)
    actual = save({"w": np.array([1.0, 2.0, 3.0], dtype=np.float32)})
    assert actual[:64].hex() == expected[:64].hex()  # header first: the most readable diff
    assert actual == expected


def test_one_tensor_golden_bytes_read_back() -> None:
    reader = open_bytes(_one_expected())
    assert reader.header.tensor_count == 1
    assert (reader.header.metadata_size, reader.header.tensor_index_offset, reader.header.data_offset) == (102, 192, 256)
    assert reader.flags == Flags.LAYOUT_ROW_MAJOR
    assert reader.metadata == {
        "model_type": "", "license": None, "data_source": None, "data_license": None,
        "total_size": 0, "param_count": 0,
    }
    assert reader.get_tensor("w").tolist() == [1.0, 2.0, 3.0]


# --- three tensors, metadata with custom keys, HAS_VOCAB -------------------------------------------

# Inserted out of order; §1.4 sorts by UTF-8 bytes: "Z" (0x5a) < "b" (0x62) < "é" (0xc3 0xa9).
THREE_TENSORS = {
    "b": np.array([[1, -2], [3, -4]], dtype=np.int8),
    "é": np.array(1.5, dtype=np.float16),  # a scalar: ndim 0
    "Z": np.arange(20, dtype=np.float32).reshape(5, 4),
}
THREE_METADATA = {"zeta": 1, "ü": "ß", "architecture": "llama", "alpha": [True, None], "license": "MIT"}
# Typed fields in declaration order (architecture after param_count), then custom keys sorted.
THREE_JSON = (
    '{"model_type":"","license":"MIT","data_source":null,"data_license":null,"total_size":0,'
    '"param_count":0,"architecture":"llama","alpha":[true,null],"zeta":1,"ü":"ß"}'
).encode()
# len = 165 (ü and ß are 2 bytes each) -> padded 192 -> tensor_index_offset = 64 + 192 = 256.
# Entries: Z 2+1+1+1+16+16 = 37, b 37, é 2+2+1+1+0+16 = 22; 96 bytes -> padded 128.
# data_offset = 256 + 128 = 384. Payloads: Z 80 bytes at 0 (padded 128), b 4 bytes at 128
# (padded 64), é 2 bytes at 192 (padded 64); data 256 bytes; footer at 640; file size 644.
THREE_ENTRIES = (
    b"\x01\x00Z" + bytes((0, 2)) + struct.pack("<QQ", 5, 4) + struct.pack("<QQ", 0, 80)
    + b"\x01\x00b" + bytes((6, 2)) + struct.pack("<QQ", 2, 2) + struct.pack("<QQ", 128, 4)
    + b"\x02\x00\xc3\xa9" + bytes((1, 0)) + struct.pack("<QQ", 192, 2)
)
THREE_HEADER_NO_CRC = (
    b"APR\x00\x02\x00"
    + struct.pack("<H", 0x0600)  # HAS_VOCAB | LAYOUT_ROW_MAJOR
    + struct.pack("<I", 3)
    + struct.pack("<Q", 64)
    + struct.pack("<I", 165)
    + struct.pack("<Q", 256)
    + struct.pack("<Q", 384)
)
THREE_HEADER_CRC = 0x2129928C
THREE_FOOTER_CRC = 0x6818F361


def _three_expected() -> bytes:
    crc = zlib.crc32(THREE_HEADER_NO_CRC + bytes(20))
    header = THREE_HEADER_NO_CRC + struct.pack("<I", crc) + bytes(20)
    data = (
        struct.pack("<20f", *range(20)) + bytes(48)
        + bytes([1, 0xFE, 3, 0xFC]) + bytes(60)
        + bytes.fromhex("003e") + bytes(62)  # float16 1.5 = 0x3e00, little-endian
    )
    body = header + THREE_JSON + bytes(192 - 165) + THREE_ENTRIES + bytes(128 - 96) + data
    assert len(body) == 640
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-003")
def test_three_tensor_file_matches_the_spec_byte_for_byte() -> None:
    expected = _three_expected()
    assert len(THREE_JSON) == 165 and len(THREE_ENTRIES) == 96
    assert len(expected) == 644
    assert expected[40:44] == struct.pack("<I", THREE_HEADER_CRC)
    assert expected[-4:] == struct.pack("<I", THREE_FOOTER_CRC)
    actual = save(THREE_TENSORS, THREE_METADATA, flags=Flags.HAS_VOCAB)
    assert actual[:64].hex() == expected[:64].hex()
    assert actual[64 : 64 + 165] == THREE_JSON
    assert actual[256 : 256 + 96] == THREE_ENTRIES
    assert actual == expected


def test_three_tensor_golden_bytes_read_back() -> None:
    tensors = load(_three_expected())
    assert list(tensors) == ["Z", "b", "é"]
    for name, value in THREE_TENSORS.items():
        assert tensors[name].dtype == value.dtype and tensors[name].shape == value.shape
        assert np.array_equal(tensors[name], value)
    reader = open_bytes(_three_expected())
    assert [(e.name, e.offset, e.size) for e in reader.entries] == [("Z", 0, 80), ("b", 128, 4), ("é", 192, 2)]
    assert reader.metadata["ü"] == "ß" and reader.metadata["alpha"] == [True, None]
