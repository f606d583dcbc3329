"""`apr.stamp.plan` against independent oracles (issue 23): zlib's CRC-32 of the real bytes, the
layout rule's numbers computed by hand, and a plan's header, prefix and footer checked field by
field against the file it came from.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.format.crc import crc32_combine
from apr.format.header import parse_header
from apr.format.metadata import canonical_metadata, encode_metadata
from apr.format.tensor_index import encode_index
from apr.stamp.patch import ProvenancePatch, apply_patch
from apr.stamp.plan import (
    crc_shift,
    data_crc_from_footer,
    fits_in_place,
    footer_after_prefix_change,
    layout_data_offset,
    output_size,
    plan_stamp,
)
from apr.stamp.source import read_source
from stamp_builders import write_checkpoint


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


# --- the CRC algebra, against zlib on real bytes ---------------------------------------------------


@given(prefix=st.binary(max_size=80), data=st.binary(max_size=300))
@example(prefix=b"", data=b"")
@example(prefix=b"AB", data=b"")
@example(prefix=b"", data=b"\x00")
@example(prefix=b"\xff" * 4, data=b"\x00" * 257)
def test_shift_then_xor_is_the_crc_of_the_concatenation(prefix, data) -> None:
    assert crc_shift(_crc(prefix), len(data)) ^ _crc(data) == _crc(prefix + data)
    assert data_crc_from_footer(_crc(prefix + data), _crc(prefix), len(data)) == _crc(data)


@given(old=st.binary(max_size=80), new=st.binary(max_size=80), data=st.binary(max_size=300))
@example(old=b"", new=b"", data=b"")
@example(old=b"AB", new=b"XYZ", data=b"tensor bytes")
def test_footer_after_prefix_change_is_the_crc_of_the_new_file(old, new, data) -> None:
    assert footer_after_prefix_change(_crc(old + data), old, new, len(data)) == _crc(new + data)


@given(old=st.binary(max_size=40), new=st.binary(max_size=40), data=st.binary(min_size=1, max_size=100),
       damage=st.integers(1, 2**32 - 1))
def test_a_wrong_footer_stays_wrong_by_the_same_difference(old, new, data, damage) -> None:
    wrong = _crc(old + data) ^ damage
    assert footer_after_prefix_change(wrong, old, new, len(data)) == _crc(new + data) ^ damage


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 7, 8, 255, 256, 4096, 2**20 + 3,
                                    2**29 - 1, 2**29, 2**29 + 1, 2**32, 2**40 + 17, 2**61 + 5])
def test_crc_shift_against_zlib_and_the_matrix_method(length) -> None:
    # zlib on the real bytes where they fit in memory; zlib's matrix method (apr.format.crc) beyond
    prefix = b"xyz"
    expected = crc32_combine(_crc(prefix), 0, length)
    if length <= 2**20 + 3:
        assert expected == _crc(prefix + bytes(length)) ^ _crc(bytes(length))
    assert crc_shift(_crc(prefix), length) == expected
    assert crc_shift(0, length) == 0  # a zero register stays zero (linear in the CRC)


def test_crc_shift_takes_the_low_32_bits_of_the_crc() -> None:
    assert crc_shift(0x1_0000_0005, 10) == crc_shift(5, 10)


# --- layout: keep the offset when it fits, else grow with 4 KiB headroom to a 4 KiB multiple -----


@pytest.mark.parametrize(("meta", "index", "old", "expected"), [
    # needed = 64 + align64(meta) + align64(index)
    (0, 0, 64, 64),                 # needed 64 = old: kept
    (1, 1, 192, 192),               # needed 64 + 64 + 64 = 192 = old: kept
    (1, 1, 191, 8192),              # needed 192 > 191: 192 + 4096 = 4288 -> the next multiple, 8192
    (64, 64, 192, 192),             # exact multiples of 64 are not padded further
    (65, 64, 192, 4096 * 2),        # 64 + 128 + 64 = 256 > 192: ceil(4352 / 4096) = 2
    (4096 - 128, 64, 4000, 4096 * 2),  # needed 4096: ceil(8192 / 4096) = 2 -> 8192 exactly
    (4096 - 127, 64, 4000, 4096 * 3),  # needed 4160: ceil(8256 / 4096) = 3
    (10_000, 500, 4096, 4096 * 4),  # 64 + 10048 + 512 = 10624: ceil(14720 / 4096) = 4
    (10_000, 500, 10_624, 10_624),  # the same, fits exactly
    (10_000, 500, 10_623, 4096 * 4),
])
def test_layout_data_offset_table(meta, index, old, expected) -> None:
    assert layout_data_offset(meta, index, old) == expected


def test_fits_in_place_and_output_size() -> None:
    assert fits_in_place(4096, 4096) is True
    assert fits_in_place(8192, 4096) is False
    assert fits_in_place(4096, 8192) is False
    assert output_size(4096, 100) == 4200
    assert output_size(64, 0) == 68


# --- a plan of a real file, field by field ------------------------------------------------------


def _expect_plan(tmp_path: Path, patch: ProvenancePatch, *, flags: int = 0):
    src = write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "LlamaForCausalLM", "zeta": 1}, flags=flags)
    raw = Path(src).read_bytes()
    source = read_source(src)
    old_offset = parse_header(raw[:64]).data_offset
    data = raw[old_offset:-4]
    plan = plan_stamp(metadata=source.metadata, flags=source.header.flags, entries=source.entries,
                      old_prefix=source.prefix, old_footer=source.footer, file_size=len(raw), patch=patch)
    new_meta, new_flags = apply_patch(source.metadata, flags, patch)
    return plan, raw, old_offset, data, new_meta, new_flags, source


@pytest.mark.parametrize("grow", [False, True])
def test_plan_header_prefix_and_footer(tmp_path, grow) -> None:
    patch = ProvenancePatch(license="MIT", description="d" * (6000 if grow else 3))
    plan, raw, old_offset, data, new_meta, new_flags, source = _expect_plan(tmp_path, patch, flags=0x0001)
    meta_bytes = encode_metadata(new_meta)
    index_bytes = encode_index(source.entries)
    index_offset = 64 + -(-len(meta_bytes) // 64) * 64
    h = plan.header
    assert (h.flags, h.tensor_count, h.metadata_offset, h.metadata_size, h.tensor_index_offset) == (
        0x0001 | 0x0400, 2, 64, len(meta_bytes), index_offset)
    assert h.version == (2, 0)
    assert h.is_checksum_valid is True
    assert plan.flags == new_flags == 0x0401
    assert plan.metadata == canonical_metadata(new_meta)
    assert plan.old_data_offset == old_offset
    assert plan.data_length == len(data) == len(raw) - old_offset - 4
    if grow:
        assert h.data_offset > old_offset and h.data_offset % 4096 == 0
        assert plan.fits_in_place is False
    else:
        assert h.data_offset == old_offset
        assert plan.fits_in_place is True
    assert plan.output_size == h.data_offset + len(data) + 4
    prefix = plan.prefix
    assert len(prefix) == h.data_offset
    assert prefix[:64] == h.to_bytes()
    assert parse_header(prefix[:64]) == h
    assert prefix[64:64 + len(meta_bytes)] == meta_bytes
    assert prefix[64 + len(meta_bytes):index_offset] == bytes(index_offset - 64 - len(meta_bytes))
    assert prefix[index_offset:index_offset + len(index_bytes)] == index_bytes
    assert prefix[index_offset + len(index_bytes):] == bytes(h.data_offset - index_offset - len(index_bytes))
    assert plan.footer == _crc(prefix + data)


def test_plan_of_an_unchanged_patch_reproduces_the_file(tmp_path) -> None:
    plan, raw, old_offset, _data, *_ = _expect_plan(tmp_path, ProvenancePatch(architecture="LlamaForCausalLM"),
                                                   flags=0x0400)
    assert plan.prefix == raw[:old_offset]
    assert plan.footer == int.from_bytes(raw[-4:], "little")
    assert plan.output_size == len(raw)


@given(prefix=st.binary(max_size=80), length=st.integers(0, 2**40), footer=st.integers(0, 2**32 - 1))
@example(prefix=b"", length=0, footer=0)
@example(prefix=b"AB", length=3, footer=2**32 - 1)
def test_an_unchanged_prefix_keeps_any_footer(prefix, length, footer) -> None:
    # why `stamp_file` calls a plan with the same prefix "unchanged" without comparing footers
    assert footer_after_prefix_change(footer, prefix, prefix, length) == footer


def test_the_power_table_is_x_to_the_2_to_the_k() -> None:
    # reflected order: bit 31 is x^0, so x^1, x^2, x^4 are bits 30, 29, 27; from x^8 on, x^(2^k) is the
    # factor that appends 2^(k-3) zero bytes: crc32_combine(x^0, 0, 2^(k-3)) by zlib's matrix method
    from apr.stamp.plan import _x2n_table

    table = _x2n_table()
    assert len(table) == 32
    assert table[:3] == (1 << 30, 1 << 29, 1 << 27)
    for k in range(3, 32):
        assert table[k] == crc32_combine(1 << 31, 0, 2 ** (k - 3)), k
