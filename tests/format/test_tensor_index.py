"""The tensor index: entry encoding (§1.5), dtype codes (§1.6) and the reader's index checks."""

from __future__ import annotations

import numpy as np
import pytest

from apr.errors import ResourceLimitError, TensorDataError, TensorIndexError, TensorInputError, TruncatedError
from apr.format import DType, open_bytes, quantize_q4, quantize_q8, save
from apr.format.tensor_index import TensorEntry, encode_index, parse_index
from tests.format.apr_samples import build_file, entry_bytes, fix_header_crc, header_fields, set_u32


def test_dtype_codes_match_the_spec() -> None:
    assert {d.name: int(d) for d in DType} == {
        "F32": 0, "F16": 1, "F64": 3, "I32": 4, "I64": 5, "I8": 6, "U8": 7, "Q4_K": 12, "Q6_K": 14,
        "BF16": 30, "APR_Q4": 128, "APR_Q8": 129,
    }


def test_entry_encoding_is_the_spec_layout() -> None:
    entry = TensorEntry(name="wé", dtype=DType.BF16, shape=(2, 3), offset=64, size=12)
    assert entry.to_bytes() == entry_bytes("wé".encode(), 30, (2, 3), 64, 12)
    assert len(entry.to_bytes()) == 2 + 3 + 1 + 1 + 16 + 16


def test_entries_round_trip() -> None:
    entries = [
        TensorEntry("", DType.F32, (), 0, 4),
        TensorEntry("a", DType.Q4_K, (1, 256), 64, 144),
        TensorEntry("b" * 256, DType.U8, tuple(range(1, 9)), 256, 40320),
    ]
    assert parse_index(encode_index(entries), 3) == entries


def _index(*names: bytes, code: int = 0, ndim: int = 1) -> bytes:
    return b"".join(entry_bytes(n, code, (1,) * ndim, 0, 4) for n in names)


@pytest.mark.parametrize(
    ("index", "count", "message"),
    [
        (_index(b"b", b"a"), 2, "not sorted"),
        (_index(b"a", b"a"), 2, "duplicate"),
        (_index(b"\xff\xfe"), 1, "UTF-8"),
        (_index(b"\xc3"), 1, "UTF-8"),
        (_index(b"a", ndim=9), 1, "ndim 9"),
        (_index(b"a", code=2), 1, "unknown dtype code 2"),
        (_index(b"a", code=13), 1, "unknown dtype code 13"),
        (_index(b"a", code=255), 1, "unknown dtype code 255"),
        (_index(b"a")[:-1], 1, "ends inside"),
        (_index(b"a") + b"\xff\xff" + bytes(18), 2, "ends inside the name"),
        (b"\x01", 0, None),
    ],
)
def test_malformed_index_entries(index: bytes, count: int, message: str | None) -> None:
    if message is None:
        assert parse_index(index, count) == []
        return
    with pytest.raises(TensorIndexError, match=message) as info:
        parse_index(index, count, base_offset=1000)
    assert info.value.offset is not None and info.value.offset >= 1000


def test_tensor_count_beyond_the_index_is_refused_before_allocating() -> None:
    with pytest.raises(ResourceLimitError):
        parse_index(_index(b"a"), 2**32 - 1)


@pytest.mark.parametrize(("legacy", "dtype"), [(8, DType.APR_Q4), (9, DType.APR_Q8)])
def test_legacy_quant_codes_read_as_apr_quants(legacy: int, dtype: DType) -> None:
    values = np.linspace(-1, 1, 40, dtype=np.float32)
    packed = quantize_q4(values) if dtype is DType.APR_Q4 else quantize_q8(values)
    data = bytearray(save({"q": packed}))
    code_at = header_fields(bytes(data))["tensor_index_offset"] + 2 + 1  # name_len, name "q"
    assert data[code_at] == int(dtype)
    data[code_at] = legacy
    tensor = open_bytes(bytes(data)).get_tensor("q")
    assert tensor.dtype is dtype and tensor.data.tobytes() == packed.data.tobytes()


def test_names_are_sorted_by_utf8_bytes() -> None:
    names = ["b", "B", "é", "a.b", "a", "~", "ü", "", "𝔸"]
    reader = open_bytes(save({n: np.zeros(1, np.uint8) for n in names}))
    assert reader.keys() == sorted(names, key=lambda n: n.encode())


def test_long_and_invalid_names_are_refused_on_write_all_at_once() -> None:
    tensors = {"x" * 257: np.zeros(1), "\udc80": np.zeros(1), 3: np.zeros(1), "ok": np.zeros(1)}
    with pytest.raises(TensorInputError) as info:
        save(tensors)  # type: ignore[arg-type]
    assert info.value.message.startswith("cannot save 3 tensor(s)")


def test_tensor_past_the_data_section_is_truncated() -> None:
    data = build_file([entry_bytes(b"a", 0, (1,), 64, 4)], [b"\x00" * 4])
    with pytest.raises(TruncatedError, match="'a'"):
        open_bytes(data)


def test_size_that_disagrees_with_dtype_and_shape() -> None:
    data = build_file([entry_bytes(b"a", 0, (3,), 0, 8)], [b"\x00" * 8])
    reader = open_bytes(data)
    with pytest.raises(TensorDataError, match="needs 12 bytes"):
        reader.get_tensor("a")


def test_zero_size_tensor_claiming_absurd_dims_is_a_data_error() -> None:
    # Regression: np.zeros((0, 2**63)) raised a bare ValueError out of get_tensor.
    data = build_file([entry_bytes(b"a", 0, (0, 2**63), 0, 0), entry_bytes(b"b", 6, (2**40, 0, 2**40), 0, 0)], [])
    reader = open_bytes(data)
    for name in reader.keys():
        with pytest.raises(TensorDataError):
            reader.get_tensor(name)


def test_lying_tensor_count_in_a_file() -> None:
    data = fix_header_crc(set_u32(bytearray(save({"a": np.zeros(2)})), 8, 2**32 - 1))
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(bytes(data))
    assert info.value.field == "tensor_count"
