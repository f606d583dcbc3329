"""Shared test material for the APR v2 format: Hypothesis strategies, sample files, byte surgery.

Imported as ``tests.format.apr_samples`` (the repository root is on ``sys.path`` through its
``conftest.py``), by the unit tests here and by ``tests/test_apr_format_v2.py``.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from apr.format import DType, PackedTensor, quantize_q4, quantize_q8, save
from apr.format.metadata import TYPED_FIELDS, TYPED_KEYS

PLAIN_DTYPES: dict[DType, np.dtype] = {
    DType.F32: np.dtype("<f4"),
    DType.F16: np.dtype("<f2"),
    DType.F64: np.dtype("<f8"),
    DType.I32: np.dtype("<i4"),
    DType.I64: np.dtype("<i8"),
    DType.I8: np.dtype("i1"),
    DType.U8: np.dtype("u1"),
    DType.BF16: np.dtype(ml_dtypes.bfloat16),
}

# --- byte surgery --------------------------------------------------------------------------------


def header_crc(header: bytes | bytearray) -> int:
    """The header checksum as §1.2 defines it: CRC-32 of bytes 0..40 followed by 44..64."""
    return zlib.crc32(bytes(header[0:40]) + bytes(header[44:64]))


def fix_header_crc(data: bytearray) -> bytearray:
    """Rewrite the header checksum so a mutation past it is not stopped by it (in place)."""
    if len(data) >= 64:
        data[40:44] = struct.pack("<I", header_crc(data))
    return data


def fix_footer_crc(data: bytearray) -> bytearray:
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return data


def set_u32(data: bytearray, offset: int, value: int) -> bytearray:
    data[offset : offset + 4] = struct.pack("<I", value)
    return data


def set_u64(data: bytearray, offset: int, value: int) -> bytearray:
    data[offset : offset + 8] = struct.pack("<Q", value)
    return data


def header_fields(data: bytes) -> dict[str, int]:
    """The header's fields, decoded independently of `apr.format.header`."""
    _magic, major, minor, flags, count, meta_off, meta_size, index_off, data_off, crc = struct.unpack_from(
        "<4sBBHIQIQQI", data, 0
    )
    return {
        "flags": flags,
        "tensor_count": count,
        "metadata_offset": meta_off,
        "metadata_size": meta_size,
        "tensor_index_offset": index_off,
        "data_offset": data_off,
        "checksum": crc,
        "major": major,
        "minor": minor,
    }


def entry_bytes(name: bytes, code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    """One tensor index entry as §1.5 lays it out."""
    return (
        struct.pack("<H", len(name))
        + name
        + bytes((code, len(shape)))
        + b"".join(struct.pack("<Q", d) for d in shape)
        + struct.pack("<QQ", offset, size)
    )


def build_file(
    entries: list[bytes], payloads: list[bytes], metadata: bytes = b"{}", flags: int = 0x0400, count: int | None = None
) -> bytes:
    """A file assembled by hand from raw entries and payloads (for index/metadata defects)."""
    pad = lambda b: b + bytes(-len(b) % 64)  # noqa: E731
    meta = pad(metadata)
    index = pad(b"".join(entries))
    data = b"".join(pad(p) for p in payloads)
    index_off = 64 + len(meta)
    data_off = index_off + len(index)
    header = bytearray(
        struct.pack(
            "<4sBBHIQIQQI20s",
            b"APR\x00", 2, 0, flags, len(entries) if count is None else count,
            64, len(metadata), index_off, data_off, 0, bytes(20),
        )
    )
    fix_header_crc(header)
    body = bytes(header) + meta + index + data
    return body + struct.pack("<I", zlib.crc32(body))


# --- comparisons ---------------------------------------------------------------------------------


def same_tensor(a: Any, b: Any) -> bool:
    """Identical dtype, shape and bytes (NaN payloads included)."""
    if isinstance(a, PackedTensor) or isinstance(b, PackedTensor):
        return (
            isinstance(a, PackedTensor)
            and isinstance(b, PackedTensor)
            and a.dtype is b.dtype
            and tuple(a.shape) == tuple(b.shape)
            and a.data.tobytes() == b.data.tobytes()
        )
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def expected_metadata(given: dict[str, Any] | None) -> dict[str, Any]:
    """What §1.8 says a reader gets back: always-written fields defaulted, the rest as given."""
    given = dict(given or {})
    out: dict[str, Any] = {}
    for key, _kind, always, default in TYPED_FIELDS:
        if given.get(key) is not None:
            out[key] = given[key]
        elif always:
            out[key] = default
    out.update({k: v for k, v in given.items() if k not in TYPED_KEYS})
    return out


# --- samples -------------------------------------------------------------------------------------


def sample_tensors() -> dict[str, Any]:
    """One tensor of every dtype, plus a scalar, a zero-size tensor and a non-ASCII name."""
    rng = np.random.default_rng(7)
    k_rows = 2
    q4k = rng.integers(0, 256, size=(k_rows, 144), dtype=np.uint8)
    q4k[:, 0:2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)  # finite f16 d
    q4k[:, 2:4] = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)  # finite f16 dmin
    q6k = rng.integers(0, 256, size=(k_rows, 210), dtype=np.uint8)
    q6k[:, 208:210] = np.frombuffer(np.float16(0.03).tobytes(), np.uint8)
    values = rng.standard_normal(100).astype(np.float32)
    return {
        "model.embed_tokens.weight": rng.standard_normal((4, 6)).astype(np.float32),
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "i32": rng.integers(-(2**31), 2**31, size=(2, 2), dtype=np.int32),
        "i64": rng.integers(-(2**62), 2**62, size=(3,), dtype=np.int64),
        "i8": rng.integers(-128, 128, size=(5,), dtype=np.int8),
        "u8": rng.integers(0, 256, size=(2, 3, 4), dtype=np.uint8),
        "bf16": rng.standard_normal((2, 8)).astype(ml_dtypes.bfloat16),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "q8": quantize_q8(values),
        "q4": quantize_q4(values.reshape(10, 10)),
        "q4k": PackedTensor(DType.Q4_K, (k_rows, 256), q4k.reshape(-1)),
        "q6k": PackedTensor(DType.Q6_K, (k_rows, 256), q6k.reshape(-1)),
        "blk.0.ffn_gate.wéight": np.arange(6, dtype=np.int8),
    }


SAMPLE_METADATA: dict[str, Any] = {
    "architecture": "llama",
    "hidden_size": 6,
    "rope_theta": 10000.0,
    "license": "Apache-2.0",
    "tokenizer.vocab_size": 4,
    "source_metadata": {"a": [1, 2.5, None, True, "ü"]},
}


def sample_file() -> bytes:
    return save(sample_tensors(), SAMPLE_METADATA)


# --- strategies ----------------------------------------------------------------------------------

_NAME_CHARS = st.characters(exclude_categories=("Cs",))  # no lone surrogates: not encodable
tensor_names = st.text(_NAME_CHARS, max_size=12).filter(lambda s: len(s.encode()) <= 256)


@st.composite
def shapes(draw: st.DrawFn, max_elements: int = 64) -> tuple[int, ...]:
    """Shapes of 0 to 8 dims, scalars and zero-size included, at most ``max_elements`` elements."""
    ndim = draw(st.integers(0, 8))
    dims: list[int] = []
    budget = max_elements
    for _ in range(ndim):
        dim = draw(st.integers(0, max(1, min(budget, 6))))
        dims.append(dim)
        budget = max(1, budget // max(dim, 1))
    return tuple(dims)


@st.composite
def plain_arrays(draw: st.DrawFn) -> np.ndarray:
    """A numpy array of any storable dtype with arbitrary bit patterns (NaN payloads included)."""
    dtype = draw(st.sampled_from(sorted(PLAIN_DTYPES, key=int)))
    np_dtype = PLAIN_DTYPES[dtype]
    shape = draw(shapes())
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    raw = draw(st.binary(min_size=count * np_dtype.itemsize, max_size=count * np_dtype.itemsize))
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()


@st.composite
def packed_tensors(draw: st.DrawFn) -> PackedTensor:
    kind = draw(st.sampled_from([DType.APR_Q8, DType.APR_Q4, DType.Q4_K, DType.Q6_K]))
    if kind in (DType.Q4_K, DType.Q6_K):
        rows = draw(st.integers(0, 2))
        blocks = draw(st.integers(1, 2))
        per = 144 if kind is DType.Q4_K else 210
        raw = draw(st.binary(min_size=rows * blocks * per, max_size=rows * blocks * per))
        return PackedTensor(kind, (rows, 256 * blocks), np.frombuffer(raw, np.uint8).copy())
    shape = draw(shapes())
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    array = (rng.standard_normal(count) * draw(st.sampled_from([1e-2, 1.0, 1e3]))).astype(np.float32).reshape(shape)
    return quantize_q8(array) if kind is DType.APR_Q8 else quantize_q4(array)


tensor_values = st.one_of(plain_arrays(), packed_tensors())
tensor_sets = st.dictionaries(tensor_names, tensor_values, max_size=6)

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_NAME_CHARS, max_size=10),
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(_NAME_CHARS, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)

_TYPED_VALUE = {
    "str": st.text(_NAME_CHARS, max_size=10),
    "int": st.integers(0, 2**64 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "object": st.dictionaries(st.text(_NAME_CHARS, max_size=6), _json_scalars, max_size=3),
}


@st.composite
def metadata_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Some typed fields (right JSON type, or None) and some custom top-level keys."""
    out: dict[str, Any] = {}
    for key, kind, _always, _default in draw(st.lists(st.sampled_from(TYPED_FIELDS), max_size=6, unique=True)):
        out[key] = draw(st.one_of(st.none(), _TYPED_VALUE[kind]))
    custom_keys = st.text(_NAME_CHARS, max_size=12).filter(lambda k: k not in TYPED_KEYS)
    out.update(draw(st.dictionaries(custom_keys, json_values, max_size=4)))
    return out
