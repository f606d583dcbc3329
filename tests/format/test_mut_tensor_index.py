"""Tensor index entries byte for byte (§1.5) and every parse check at its boundary, with its offset.

Expected bytes are `struct.pack` of the documented layout (issue 23: mutation score).
"""

from __future__ import annotations

import struct

import pytest

from apr.errors import ResourceLimitError, TensorIndexError
from apr.format.dtypes import DType
from apr.format.tensor_index import MIN_ENTRY_SIZE, TensorEntry, encode_index, parse_index

BASE = 1000  # an absolute file offset for the index, to see it added to every error offset


def packed(name: bytes, code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    return (struct.pack("<H", len(name)) + name + struct.pack("<BB", code, len(shape))
            + struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<QQ", offset, size))


def test_min_entry_size_is_an_empty_named_scalar() -> None:
    assert MIN_ENTRY_SIZE == 20 == len(packed(b"", 0, (), 0, 0))


def test_to_bytes_is_the_documented_layout() -> None:
    entry = TensorEntry("layer.0.w", DType.F16, (3, 0x0102030405060708, 5), 0x1112131415161718, 0x2122232425262728)
    assert entry.to_bytes() == packed(b"layer.0.w", 1, (3, 0x0102030405060708, 5), 0x1112131415161718,
                                      0x2122232425262728)
    assert TensorEntry("", DType.APR_Q8, (), 64, 5).to_bytes() == packed(b"", 129, (), 64, 5)


def test_encode_index_concatenates_entries_without_padding() -> None:
    a = TensorEntry("a", DType.F32, (2,), 0, 8)
    b = TensorEntry("b", DType.I8, (1, 1), 64, 1)
    assert encode_index([a, b]) == packed(b"a", 0, (2,), 0, 8) + packed(b"b", 6, (1, 1), 64, 1)
    assert encode_index([]) == b""


def test_parse_reads_every_field() -> None:
    data = packed(b"a", 30, (7, 9), 128, 126) + packed("é".encode(), 128, (40,), 256, 36)
    assert parse_index(data, 2) == [
        TensorEntry("a", DType.BF16, (7, 9), 128, 126),
        TensorEntry("é", DType.APR_Q4, (40,), 256, 36),
    ]
    assert type(parse_index(data, 2)[0].shape) is tuple


def test_parse_reads_only_tensor_count_entries_and_ignores_padding() -> None:
    data = packed(b"a", 0, (1,), 0, 4) + packed(b"b", 0, (1,), 64, 4) + bytes(64)
    assert [e.name for e in parse_index(data, 1)] == ["a"]
    assert [e.name for e in parse_index(data, 2)] == ["a", "b"]
    assert parse_index(b"", 0) == [] and parse_index(bytes(64), 0) == []


def test_parse_accepts_a_memoryview() -> None:
    data = packed(b"w", 0, (1,), 0, 4)
    assert parse_index(memoryview(data), 1) == parse_index(data, 1)


# --- the count check, before anything is parsed --------------------------------------------------


def test_count_needs_20_bytes_per_entry_at_least() -> None:
    parse_index(packed(b"", 0, (), 0, 0), 1)  # exactly 20 bytes for one
    err = fails(bytes(40), 2)  # exactly 2 × 20: parsed (and the second empty name is a duplicate)
    assert "duplicate" in err.message
    with pytest.raises(ResourceLimitError) as info:
        parse_index(bytes(39), 2, base_offset=BASE)
    assert (info.value.offset, info.value.field) == (8, "tensor_count")
    assert info.value.message == "header claims 2 tensors but the tensor index has room for at most 1"
    with pytest.raises(ResourceLimitError) as info:
        parse_index(bytes(119), 6)
    assert info.value.message.endswith("room for at most 5")


# --- each entry check: its message, entry number and absolute offset -----------------------------


def fails(data: bytes, count: int) -> TensorIndexError:
    with pytest.raises(TensorIndexError) as info:
        parse_index(data, count, base_offset=BASE)
    assert type(info.value) is TensorIndexError
    return info.value


def test_index_ending_before_a_name_length() -> None:
    first = packed(b"n" * 19, 0, (), 0, 0)  # 39 bytes
    err = fails(first + b"\x00", 2)  # 40 bytes: one byte of the second name length
    assert err.offset == BASE + 39
    assert err.message == "tensor index entry 1: index ends before the entry's name length"
    # two bytes of name length are enough to get to the name check
    err = fails(first + struct.pack("<H", 0), 2)
    assert err.offset == BASE + 39 and "inside the name (0 bytes claimed)" in err.message


def test_a_name_running_past_the_index() -> None:
    err = fails(struct.pack("<H", 30) + b"a" * 18, 1)
    assert err.offset == BASE and err.message == "tensor index entry 0: index ends inside the name (30 bytes claimed)"
    # a name plus its dtype and ndim bytes exactly at the end passes that check (then the shape check fails)
    err = fails(struct.pack("<H", 16) + b"a" * 16 + b"\x00\x00", 1)
    assert err.offset == BASE and "inside the shape or offsets of tensor 'aaaaaaaaaaaaaaaa'" in err.message
    err = fails(struct.pack("<H", 17) + b"a" * 17 + b"\x00", 1)
    assert err.offset == BASE and "inside the name (17 bytes claimed)" in err.message


def test_shape_and_offsets_must_fit_exactly() -> None:
    whole = packed(b"w", 0, (2, 3), 0, 24)
    assert parse_index(whole, 1) == [TensorEntry("w", DType.F32, (2, 3), 0, 24)]
    err = fails(whole[:-1], 1)
    assert err.offset == BASE and "inside the shape or offsets of tensor 'w'" in err.message


def test_a_name_that_is_not_utf8() -> None:
    data = packed(b"ok", 0, (1,), 0, 4) + packed(b"x\xff", 0, (1,), 64, 4)
    err = fails(data, 2)
    second = len(packed(b"ok", 0, (1,), 0, 4))
    assert err.offset == BASE + second + 2  # at the name's first byte
    assert err.message.startswith("tensor index entry 1: tensor name is not valid UTF-8: b'x\\xff'")


@pytest.mark.parametrize("code", [2, 8 + 3, 13, 31, 127, 130, 255])
def test_an_unknown_dtype_code(code: int) -> None:
    err = fails(packed(b"abc", code, (1,), 0, 4), 1)
    assert err.offset == BASE + 5  # the dtype byte
    assert err.message == f"tensor index entry 0: tensor 'abc' has unknown dtype code {code}"


def test_ndim_up_to_8_and_not_9() -> None:
    assert parse_index(packed(b"a", 7, (1,) * 8, 0, 1), 1)[0].shape == (1,) * 8
    err = fails(packed(b"a", 7, (1,) * 9, 0, 1), 1)
    assert err.offset == BASE + 4  # the ndim byte
    assert err.message == "tensor index entry 0: tensor 'a' has ndim 9, more than the maximum 8"


def test_duplicate_and_unsorted_names_are_told_apart() -> None:
    a, b = packed(b"a", 0, (1,), 0, 4), packed(b"b", 0, (1,), 64, 4)
    err = fails(a + a, 2)
    assert err.offset == BASE + len(a) and err.message == "tensor index entry 1: duplicate tensor name: 'a' follows 'a'"
    err = fails(b + a, 2)
    assert err.offset == BASE + len(b) and err.message == "tensor index entry 1: tensor index not sorted: 'a' follows 'b'"
    err = fails(a + b + a, 3)
    assert err.offset == BASE + 2 * len(a) and err.message.startswith("tensor index entry 2: tensor index not sorted")


def test_sorting_is_by_utf8_bytes() -> None:
    names = ["", "B", "a", "ab", "z", "é"]  # byte order: é (c3 a9) after z (7a); B (42) before a (61)
    data = b"".join(packed(n.encode(), 0, (1,), 0, 4) for n in names)
    assert [e.name for e in parse_index(data, len(names))] == names
    swapped = b"".join(packed(n.encode(), 0, (1,), 0, 4) for n in ["é", "z"])
    assert "not sorted: 'z' follows 'é'" in fails(swapped, 2).message


def test_the_empty_name_sorts_first_and_is_a_real_previous_name() -> None:
    empty = packed(b"", 0, (1,), 0, 4)
    assert "duplicate tensor name: '' follows ''" in fails(empty + empty, 2).message


def test_offsets_default_to_the_start_of_the_data() -> None:
    with pytest.raises(TensorIndexError) as info:
        parse_index(packed(b"a", 2, (1,), 0, 4), 1)
    assert info.value.offset == 3


def test_every_index_refusal_says_how_to_fix_it() -> None:
    with pytest.raises(ResourceLimitError) as info:
        parse_index(b"", 1)
    assert info.value.hint
    assert fails(packed(b"a", 2, (1,), 0, 4), 1).hint


def test_a_long_non_utf8_name_is_quoted_to_64_bytes() -> None:
    name = b"\xff" + b"n" * 99
    err = fails(packed(name, 0, (1,), 0, 4), 1)
    assert err.message == f"tensor index entry 0: tensor name is not valid UTF-8: {name[:64]!r}"
