"""Unit tests of the pure planning core: CRC shift and the layout rule."""

from hypothesis import given
from hypothesis import strategies as st

from apr.format.crc import crc32_combine
from apr.stamp.plan import GROWTH_ALIGNMENT, crc_shift, layout_data_offset


@given(crc=st.integers(0, 2**32 - 1), length=st.integers(0, 2**45))
def test_crc_shift_equals_zlib_combine(crc, length):
    assert crc_shift(crc, length) == crc32_combine(crc, 0, length)


@given(meta=st.integers(0, 10**6), index=st.integers(0, 10**5), old=st.integers(2, 10**5).map(lambda k: k * 64))
def test_layout_keeps_or_grows_with_headroom(meta, index, old):
    needed = 64 + -(-meta // 64) * 64 + -(-index // 64) * 64
    got = layout_data_offset(meta, index, old)
    if needed <= old:
        assert got == old
    else:
        assert got % GROWTH_ALIGNMENT == 0 and got >= needed + 4096
        assert layout_data_offset(meta, index, got) == got  # idempotent
