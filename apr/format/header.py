"""The 64-byte APR v2 header, its flags and its checksum (docs/aprender-format.md §1.1–1.3).

Layout (little-endian)::

    0  magic "APR\\0"      4  major u8   5 minor u8   6 flags u16   8 tensor_count u32
    12 metadata_offset u64    20 metadata_size u32 (unpadded JSON length)
    24 tensor_index_offset u64    32 data_offset u64    40 checksum u32    44 reserved[20]

The checksum is zlib's CRC-32 over bytes 0..40 and 44..64, i.e. the header without its own
checksum field.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, replace

from apr.errors import ChecksumError, HeaderError, TruncatedError
from apr.format.crc import crc32

MAGIC = b"APR\x00"
VERSION = (2, 0)
HEADER_SIZE = 64
ALIGNMENT = 64
FOOTER_SIZE = 4
MAX_TENSOR_NAME_LEN = 256
MAX_NDIM = 8

_STRUCT = struct.Struct("<4sBBHIQIQQI20s")
assert _STRUCT.size == HEADER_SIZE


class Flags(enum.IntFlag):
    """Header flag bits (``AprV2Flags``)."""

    LZ4_COMPRESSED = 0x0001
    ZSTD_COMPRESSED = 0x0002
    ENCRYPTED = 0x0004
    SIGNED = 0x0008
    SHARDED = 0x0010
    QUANTIZED = 0x0020
    HAS_FILTERBANK = 0x0040
    HAS_MODEL_CARD = 0x0080
    STREAMING = 0x0100
    HAS_VOCAB = 0x0200
    LAYOUT_ROW_MAJOR = 0x0400
    LAYOUT_COLUMN_MAJOR = 0x0800


# Labels `apr inspect` prints, in aprender's order.
FLAG_LABELS: tuple[tuple[Flags, str], ...] = (
    (Flags.LZ4_COMPRESSED, "LZ4"),
    (Flags.ZSTD_COMPRESSED, "ZSTD"),
    (Flags.ENCRYPTED, "ENCRYPTED"),
    (Flags.SIGNED, "SIGNED"),
    (Flags.SHARDED, "SHARDED"),
    (Flags.QUANTIZED, "QUANTIZED"),
    (Flags.HAS_VOCAB, "HAS_VOCAB"),
    (Flags.HAS_FILTERBANK, "HAS_FILTERBANK"),
    (Flags.HAS_MODEL_CARD, "HAS_MODEL_CARD"),
    (Flags.STREAMING, "STREAMING"),
)

_LAYOUT_002 = (
    "LAYOUT-002 violation: APR file has LAYOUT_COLUMN_MAJOR flag set. This indicates a dirty "
    "import from GGUF without proper transpose."
)


def align64(value: int) -> int:
    """Round up to the next multiple of 64 (``(x + 63) & ~63``)."""
    return (value + ALIGNMENT - 1) & ~(ALIGNMENT - 1)


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded header. ``checksum`` is the stored value; `computed_checksum` the true one."""

    flags: int
    tensor_count: int
    metadata_offset: int
    metadata_size: int
    tensor_index_offset: int
    data_offset: int
    checksum: int = 0
    version: tuple[int, int] = VERSION
    reserved: bytes = bytes(20)

    def _bytes_with_checksum(self, checksum: int) -> bytes:
        return _STRUCT.pack(
            MAGIC,
            self.version[0],
            self.version[1],
            self.flags,
            self.tensor_count,
            self.metadata_offset,
            self.metadata_size,
            self.tensor_index_offset,
            self.data_offset,
            checksum,
            self.reserved,
        )

    @property
    def computed_checksum(self) -> int:
        return header_checksum(self._bytes_with_checksum(0))

    @property
    def is_checksum_valid(self) -> bool:
        return checksum_matches(self)

    def with_checksum(self) -> Header:
        """This header with its checksum computed from the other fields."""
        return replace(self, checksum=self.computed_checksum)

    def to_bytes(self) -> bytes:
        """The 64 header bytes, with a freshly computed checksum."""
        return self._bytes_with_checksum(self.computed_checksum)

    def has(self, flag: Flags) -> bool:
        return (self.flags & flag) == flag


def header_checksum(raw: bytes) -> int:
    """The §1.2 checksum of 64 header bytes: CRC-32 of bytes 0..40 followed by 44..64."""
    return crc32(raw[44:HEADER_SIZE], crc32(raw[:40]))


def checksum_matches(header: Header) -> bool:
    """Whether the header's stored checksum is the one its other fields give."""
    return header.checksum == header.computed_checksum


def parse_header(data: bytes | bytearray | memoryview, *, verify_checksum: bool = True) -> Header:
    """Decode the first 64 bytes of an APR v2 file and check them as aprender's reader does.

    Args:
        data: at least the first 64 bytes of the file.
        verify_checksum: raise `ChecksumError` on a mismatch (``apr inspect`` passes False so it
            can report the file as INVALID instead of refusing it).

    Raises:
        TruncatedError, HeaderError, ChecksumError. Magic is checked by `apr.format.sniff` first.
    """
    header = decode_header(data)
    if verify_checksum and not header.is_checksum_valid:
        raise ChecksumError(
            f"header checksum mismatch: stored 0x{header.checksum:08x}, computed 0x{header.computed_checksum:08x}",
            offset=40,
            field="checksum",
            hint="the header was modified or damaged; restore the file from its source",
        )
    if header.flags & Flags.LAYOUT_COLUMN_MAJOR:
        raise HeaderError(
            _LAYOUT_002,
            offset=6,
            field="flags",
            hint="re-import the model with `apr import` so tensors are stored row-major",
        )
    return header


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    """The header's fields, checking only its length and magic (`apr validate` reports the rest).

    Raises:
        TruncatedError (under 64 bytes), HeaderError (wrong magic).
    """
    if len(data) < HEADER_SIZE:
        raise TruncatedError(
            f"file too small to contain an APR v2 header: {len(data)} bytes, need {HEADER_SIZE}",
            hint="the file is truncated or empty; re-export or re-download it",
        )
    (magic, major, minor, flags, count, meta_off, meta_size, index_off, data_off, checksum, reserved) = (
        _STRUCT.unpack_from(bytes(data[:HEADER_SIZE]))
    )
    if magic != MAGIC:
        raise HeaderError(
            f"invalid magic: {magic.hex()} (expected {MAGIC.hex()}, 'APR\\0')",
            offset=0,
            hint="this is not an APR v2 file; `apr inspect` names the format it found",
        )
    return Header(
        flags=flags,
        tensor_count=count,
        metadata_offset=meta_off,
        metadata_size=meta_size,
        tensor_index_offset=index_off,
        data_offset=data_off,
        checksum=checksum,
        version=(major, minor),
        reserved=reserved,
    )


def check_header_layout(header: Header, file_size: int) -> None:
    """Check the header's offsets against each other and the file size, before reading anything.

    Raises:
        TruncatedError when a section lies past the end; HeaderError when sections are out of order.
    """
    end_of_data = file_size - FOOTER_SIZE
    meta_end = header.metadata_offset + header.metadata_size
    if header.metadata_offset < HEADER_SIZE:
        raise HeaderError(
            f"metadata_offset {header.metadata_offset} overlaps the 64-byte header",
            offset=12,
            field="metadata_offset",
            hint="the header is corrupt; restore the file from its source",
        )
    for name, value, field_offset in (
        ("metadata", meta_end, 12),
        ("the tensor index", header.tensor_index_offset, 24),
        ("tensor data", header.data_offset, 32),
    ):
        if value > file_size:
            raise TruncatedError(
                f"file too small for {name} (header claims {value} bytes, file is {file_size})",
                offset=field_offset,
                hint="the file is truncated; re-copy or re-export it",
            )
    if not (meta_end <= header.tensor_index_offset <= header.data_offset <= end_of_data):
        raise HeaderError(
            "sections out of order: expected metadata end "
            f"({meta_end}) <= tensor_index_offset ({header.tensor_index_offset}) <= data_offset "
            f"({header.data_offset}) <= file size - footer ({end_of_data})",
            offset=12,
            hint="the header is corrupt or the file is truncated; restore it from its source",
        )
