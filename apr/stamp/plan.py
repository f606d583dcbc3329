"""The pure middle of `apr stamp`: the new prefix's layout and the new footer CRC, from the old ones.

An APR v2 file is ``prefix ‖ data ‖ footer``: the prefix is the header, the padded metadata and
the padded tensor index (everything before ``data_offset``); data is every tensor payload with its
padding; the footer is CRC-32 of ``prefix ‖ data``. A stamp changes only the prefix. Tensor
offsets are relative to ``data_offset``, so the index entries stay byte-identical even when the
data section moves.

Layout rule (one rule for ``-o`` and ``--in-place``, so both give the same bytes):

* the new metadata and index, each padded to 64, fit before the old ``data_offset`` → keep that
  ``data_offset`` (zeros fill the gap): the data section does not move, an in-place stamp rewrites
  only the prefix and the footer;
* otherwise ``data_offset`` grows to the next multiple of 4096 at least 4 KiB past what is needed,
  so the next small stamp fits in place again.

Applying the same patch twice gives the same metadata, hence a prefix that fits the first
result's ``data_offset``: byte-identical output (idempotence).

Footer algebra: CRC-32 is affine over GF(2) and zlib's combine identity is
``crc(A‖B) = shift(crc(A), len B) ⊕ crc(B)`` where ``shift(c, n) = crc32_combine(c, 0, n)`` is
linear in ``c``. Hence, with ``n = len(data)``::

    crc(data)   = old_footer ⊕ shift(crc(old_prefix), n)
    new_footer  = shift(crc(new_prefix), n) ⊕ crc(data)

so the footer is updated without reading a byte of tensor data. A file whose old footer was wrong
gets a new footer wrong by exactly the same difference: a stamp never launders corruption.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apr.format.crc import crc32
from apr.format.header import FOOTER_SIZE, HEADER_SIZE, VERSION, Header, align64
from apr.format.metadata import canonical_metadata, encode_metadata
from apr.format.tensor_index import TensorEntry, encode_index
from apr.stamp.patch import ProvenancePatch, apply_patch

GROWTH_ALIGNMENT = 4096
GROWTH_HEADROOM = 4096


@dataclass(frozen=True, slots=True)
class StampPlan:
    """Everything a stamp writes, computed before anything is written.

    Attributes:
        header: the new header (checksum included).
        prefix: the new bytes ``[0, data_offset)``.
        metadata: the new metadata as it will read back (canonical order).
        flags: the new header flags.
        old_data_offset: where the data section starts in the input.
        data_length: bytes of the data section (payloads and padding), unchanged by a stamp.
        footer: the new footer CRC.
    """

    header: Header
    prefix: bytes
    metadata: dict[str, Any]
    flags: int
    old_data_offset: int
    data_length: int
    footer: int

    @property
    def fits_in_place(self) -> bool:
        """True when the data section keeps its offset (only prefix and footer change)."""
        return fits_in_place(self.header.data_offset, self.old_data_offset)

    @property
    def output_size(self) -> int:
        return output_size(self.header.data_offset, self.data_length)


# The decisions behind `StampPlan`'s properties, as plain functions (mutation testing reaches them).
def fits_in_place(data_offset: int, old_data_offset: int) -> bool:
    """True when the new ``data_offset`` is the old one: the data section does not move."""
    return data_offset == old_data_offset


def output_size(data_offset: int, data_length: int) -> int:
    """Bytes of the stamped file: the prefix, the data section and the 4-byte footer CRC."""
    return data_offset + data_length + FOOTER_SIZE


_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a(x)·b(x) mod P(x) in zlib's reflected bit order (zlib 1.2.12 ``multmodp``: bit 31 is x^0).

    One pass over the 32 bits of ``a``, without zlib's early exit: the loop is bounded whatever
    ``a`` is (zlib's ``while`` never ends for ``a == 0``), and the product is the same.
    """
    product = 0
    for bit in range(31, -1, -1):
        if a >> bit & 1:
            product ^= b
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


def _x2n_table() -> tuple[int, ...]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return tuple(table)


_X2N = _x2n_table()  # x^(2^k) mod P


def crc_shift(crc: int, length: int) -> int:
    """The CRC contribution of a prefix with CRC ``crc`` followed by ``length`` more bytes:
    ``crc32_combine(crc, 0, length)``, in O(log length) 32-bit multiplications (zlib's
    ``x2nmodp``), ~50× faster than the matrix method in pure Python."""
    p = 1 << 31  # x^0
    for k in range(length.bit_length()):
        if length >> k & 1:  # length bytes = 8·length bits: bit k of length is x^(2^(k+3))
            p = _multmodp(_X2N[(k + 3) & 31], p)
    return _multmodp(p, crc & 0xFFFFFFFF)


def data_crc_from_footer(footer: int, prefix_crc: int, data_length: int) -> int:
    """``crc(data)`` recovered from ``footer = crc(prefix ‖ data)`` and ``crc(prefix)``."""
    return (footer ^ crc_shift(prefix_crc, data_length)) & 0xFFFFFFFF


def footer_after_prefix_change(old_footer: int, old_prefix: bytes, new_prefix: bytes, data_length: int) -> int:
    """The footer of ``new_prefix ‖ data`` given the footer of ``old_prefix ‖ data``.

    Example:
        >>> data = b"tensor bytes"
        >>> old = crc32(b"AB" + data)
        >>> footer_after_prefix_change(old, b"AB", b"XYZ", len(data)) == crc32(b"XYZ" + data)
        True
    """
    data_crc = data_crc_from_footer(old_footer, crc32(old_prefix), data_length)
    return (crc_shift(crc32(new_prefix), data_length) ^ data_crc) & 0xFFFFFFFF


def layout_data_offset(metadata_size: int, index_size: int, old_data_offset: int) -> int:
    """The new ``data_offset`` (see the module's layout rule)."""
    needed = HEADER_SIZE + align64(metadata_size) + align64(index_size)
    if needed <= old_data_offset:
        return old_data_offset
    return -(-(needed + GROWTH_HEADROOM) // GROWTH_ALIGNMENT) * GROWTH_ALIGNMENT


def plan_stamp(
    *,
    metadata: Mapping[str, Any],
    flags: int,
    entries: list[TensorEntry],
    old_prefix: bytes,
    old_footer: int,
    file_size: int,
    patch: ProvenancePatch,
) -> StampPlan:
    """Plan a stamp of a file whose prefix (``[0, data_offset)``) and footer are given.

    Raises:
        TensorInputError: the patched metadata cannot be encoded (e.g. over the size limit).
    """
    old_data_offset = len(old_prefix)
    data_length = file_size - 4 - old_data_offset
    new_metadata, new_flags = apply_patch(metadata, flags, patch)
    meta_bytes = encode_metadata(new_metadata)
    index_bytes = encode_index(entries)
    data_offset = layout_data_offset(len(meta_bytes), len(index_bytes), old_data_offset)
    index_offset = HEADER_SIZE + align64(len(meta_bytes))
    header = Header(
        flags=new_flags,
        tensor_count=len(entries),
        metadata_offset=HEADER_SIZE,
        metadata_size=len(meta_bytes),
        tensor_index_offset=index_offset,
        data_offset=data_offset,
        version=VERSION,
    ).with_checksum()
    prefix = bytearray(data_offset)
    prefix[:HEADER_SIZE] = header.to_bytes()
    prefix[HEADER_SIZE : HEADER_SIZE + len(meta_bytes)] = meta_bytes
    prefix[index_offset : index_offset + len(index_bytes)] = index_bytes
    prefix_bytes = bytes(prefix)
    return StampPlan(
        header=header,
        prefix=prefix_bytes,
        metadata=canonical_metadata(new_metadata),
        flags=new_flags,
        old_data_offset=old_data_offset,
        data_length=data_length,
        footer=footer_after_prefix_change(old_footer, old_prefix, prefix_bytes, data_length),
    )


__all__ = [
    "StampPlan",
    "crc_shift",
    "data_crc_from_footer",
    "fits_in_place",
    "footer_after_prefix_change",
    "layout_data_offset",
    "output_size",
    "plan_stamp",
]
