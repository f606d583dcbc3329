"""Falsifiers of contracts/apr-format-v2.yaml: each test tries to break one invariant.

Named after its falsifier id so ``grep`` finds the evidence. Expectations come from
docs/aprender-format.md §1, recomputed here, never from the writer under test.
"""

from __future__ import annotations

import errno
import os
import random
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apr.format.writer as writer
from apr.errors import (
    AprError,
    AprIOError,
    ChecksumError,
    FormatError,
    HeaderError,
    MetadataError,
    TensorIndexError,
    TensorInputError,
    TruncatedError,
    WrongFormatError,
)
from apr.format import (
    DType,
    Flags,
    PackedTensor,
    dequantize,
    load_file,
    open_bytes,
    open_file,
    quantize_q4,
    quantize_q8,
    save,
    save_file,
)
from apr.format.metadata import TYPED_FIELDS
from tests.format.apr_samples import (
    build_file,
    entry_bytes,
    expected_metadata,
    fix_header_crc,
    header_crc,
    header_fields,
    metadata_dicts,
    same_tensor,
    sample_file,
    set_u32,
    set_u64,
    tensor_sets,
)

TMP_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_everything(reader: Any) -> None:
    for name in reader.keys():
        reader.get_tensor(name)
        reader.get_float32(name)


# --- FALSIFY-APR-FORMAT-001: round trip ------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-001")
@given(tensors=tensor_sets, metadata=metadata_dicts())
def test_falsify_apr_format_001_round_trip(tensors: dict[str, Any], metadata: dict[str, Any]) -> None:
    reader = open_bytes(save(tensors, metadata))
    assert reader.keys() == sorted(tensors, key=lambda n: n.encode())
    for name, value in tensors.items():
        assert same_tensor(reader.get_tensor(name), value), name
    assert reader.metadata == expected_metadata(metadata)


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-001")
@settings(max_examples=15)
@given(tensors=tensor_sets, metadata=metadata_dicts())
def test_falsify_apr_format_001_round_trip_through_a_file(
    tmp_path_factory: pytest.TempPathFactory, tensors: dict[str, Any], metadata: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "m.apr"
    save_file(tensors, path, metadata)
    loaded = load_file(path)
    assert set(loaded) == set(tensors)
    assert all(same_tensor(loaded[name], value) for name, value in tensors.items())
    with open_file(path) as reader:
        assert reader.metadata == expected_metadata(metadata)


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-001")
def test_falsify_apr_format_001_big_endian_and_strided_inputs() -> None:
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    tensors = {"be": base.astype(">f4"), "strided": base[:, ::2], "fortran": np.asfortranarray(base)}
    back = open_bytes(save(tensors)).get_tensor
    assert np.array_equal(back("be"), base) and back("be").dtype == np.dtype("<f4")
    assert np.array_equal(back("strided"), base[:, ::2])
    assert np.array_equal(back("fortran"), base)


# --- FALSIFY-APR-FORMAT-002: determinism -----------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-002")
@given(tensors=tensor_sets, metadata=metadata_dicts(), seed=st.integers(0, 2**16))
def test_falsify_apr_format_002_determinism(tensors: dict[str, Any], metadata: dict[str, Any], seed: int) -> None:
    first = save(tensors, metadata)
    assert save(tensors, metadata) == first
    shuffle = random.Random(seed)
    t_items, m_items = list(tensors.items()), list(metadata.items())
    shuffle.shuffle(t_items)
    shuffle.shuffle(m_items)
    assert save(dict(t_items), dict(m_items)) == first


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-002")
def test_falsify_apr_format_002_custom_keys_sorted_whatever_the_input_order() -> None:
    forward = {"b": 1, "a": 2, "c": 3}
    backward = {"c": 3, "a": 2, "b": 1}
    assert save({}, forward) == save({}, backward)
    keys = list(open_bytes(save({}, backward)).metadata)
    assert keys[-3:] == ["a", "b", "c"]


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-002")
def test_falsify_apr_format_002_file_equals_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    save_file({"w": np.ones(3, np.float32)}, path, {"x": 1})
    first = path.read_bytes()
    save_file({"w": np.ones(3, np.float32)}, path, {"x": 1})
    assert path.read_bytes() == first == save({"w": np.ones(3, np.float32)}, {"x": 1})


# --- FALSIFY-APR-FORMAT-003: layout and alignment ---------------------------------------------------


def _check_layout(data: bytes) -> None:
    """§1.4, recomputed from the raw bytes."""
    h = header_fields(data)
    assert h["flags"] & 0x0400
    assert h["metadata_offset"] == 64
    meta_end = 64 + h["metadata_size"]
    assert data[meta_end : h["tensor_index_offset"]] == bytes(h["tensor_index_offset"] - meta_end)
    assert h["tensor_index_offset"] == 64 + ((h["metadata_size"] + 63) & ~63)
    pos, previous, expected_offset = h["tensor_index_offset"], None, 0
    total_data = 0
    for _ in range(h["tensor_count"]):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len]
        ndim = data[pos + 3 + name_len]
        pos += 4 + name_len + 8 * ndim
        offset, size = struct.unpack_from("<QQ", data, pos)
        pos += 16
        assert previous is None or name > previous  # sorted by bytes, unique
        previous = name
        assert offset == expected_offset and (h["data_offset"] + offset) % 64 == 0
        pad_start = h["data_offset"] + offset + size
        padded = (size + 63) & ~63
        assert data[pad_start : h["data_offset"] + offset + padded] == bytes(padded - size)
        expected_offset += padded
        total_data += padded
    assert data[pos : h["data_offset"]] == bytes(h["data_offset"] - pos)
    assert h["data_offset"] == h["tensor_index_offset"] + ((pos - h["tensor_index_offset"] + 63) & ~63)
    assert len(data) == h["data_offset"] + total_data + 4
    assert h["data_offset"] % 64 == 0 and h["tensor_index_offset"] % 64 == 0


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-003")
@given(tensors=tensor_sets, metadata=metadata_dicts())
def test_falsify_apr_format_003_layout_and_alignment(tensors: dict[str, Any], metadata: dict[str, Any]) -> None:
    _check_layout(save(tensors, metadata))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-003")
def test_falsify_apr_format_003_unsorted_or_duplicate_index_is_refused() -> None:
    for names in ([b"b", b"a"], [b"a", b"a"]):
        entries = [entry_bytes(n, 7, (1,), 64 * i, 1) for i, n in enumerate(names)]
        with pytest.raises(TensorIndexError, match=r"not sorted|duplicate"):
            open_bytes(build_file(entries, [b"\x01", b"\x02"]))


# --- FALSIFY-APR-FORMAT-004: header CRC --------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-004")
def test_falsify_apr_format_004_header_crc() -> None:
    data = sample_file()
    assert struct.unpack_from("<I", data, 40)[0] == header_crc(data)
    for bit in range(64 * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        expected = WrongFormatError if bit < 32 else ChecksumError
        with pytest.raises(expected):
            open_bytes(bytes(flipped))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-004")
def test_falsify_apr_format_004_unverified_open_reports_the_mismatch() -> None:
    data = bytearray(sample_file())
    data[44] ^= 0xFF  # a reserved byte: still covered by the checksum
    reader = open_bytes(bytes(data), verify_checksum=False)
    assert reader.is_checksum_valid is False


# --- FALSIFY-APR-FORMAT-005: footer CRC --------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-005")
@given(tensors=tensor_sets, metadata=metadata_dicts())
def test_falsify_apr_format_005_footer_crc(tensors: dict[str, Any], metadata: dict[str, Any]) -> None:
    data = save(tensors, metadata)
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-005")
def test_falsify_apr_format_005_validate_detects_a_data_byte_flip(tmp_path: Path) -> None:
    from apr.format.validate import Status, validate_file

    data = sample_file()
    path = tmp_path / "m.apr"
    path.write_bytes(data)
    footer = {c.id: c for c in validate_file(path).checks}[15]
    assert footer.status is Status.PASS
    data_offset = header_fields(data)["data_offset"]
    rng = random.Random(5)
    for position in [data_offset, len(data) - 5, *rng.sample(range(data_offset, len(data) - 4), 8)]:
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        report = validate_file(path)
        assert {c.id: c for c in report.checks}[15].status is Status.FAIL, position
        assert not report.passed


# --- FALSIFY-APR-FORMAT-006: reader totality ---------------------------------------------------------

_BASE = sample_file()
_U64_LIES = [0, 1, 63, 64, 2**31, 2**32 - 1, 2**63, 2**64 - 1]


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    data = bytearray(_BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "u64", "u32", "byte"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            src = draw(st.integers(0, len(_BASE) - 1))
            data[at : at + draw(st.integers(1, 64))] = _BASE[src : src + draw(st.integers(0, 64))]
        elif kind == "u64":
            data[at : at + 8] = struct.pack("<Q", draw(st.sampled_from(_U64_LIES) | st.integers(0, 2**64 - 1)))
        elif kind == "u32":
            data[at : at + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 2**16, 2**32 - 1])))
        else:
            data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):  # get past the header CRC, to reach the deeper checks
        fix_header_crc(data)
    return bytes(data)


def _only_apr_errors(data: bytes) -> None:
    try:
        reader = open_bytes(data)
        _read_everything(reader)
    except AprError:
        pass


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-006")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=1500)
@given(mutated_files())
def test_falsify_apr_format_006_reader_totality(data: bytes) -> None:
    _only_apr_errors(data)


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-006")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_falsify_apr_format_006_seeded_mutation_sweep() -> None:
    # A fixed-seed sweep wider than the Hypothesis budget (this is what found the zero-size
    # tensor with dims 2^63 that np.zeros refused with a bare ValueError).
    rng = random.Random(20261126)
    for _ in range(4000):
        data = bytearray(_BASE)
        at = rng.randrange(len(data))
        kind = rng.randrange(4)
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at : at + 8] = struct.pack("<Q", rng.choice(_U64_LIES + [rng.randrange(2**64)]))
        elif kind == 2:
            src = rng.randrange(len(_BASE))
            data[at : at + rng.randrange(1, 40)] = _BASE[src : src + rng.randrange(40)]
        else:
            data[at] = rng.randrange(256)
        _only_apr_errors(bytes(fix_header_crc(data) if rng.random() < 0.8 else data))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-006")
@given(st.binary(max_size=512), st.booleans())
def test_falsify_apr_format_006_reader_totality_on_random_bytes(tail: bytes, with_magic: bool) -> None:
    data = bytearray((b"APR\x00" if with_magic else b"") + tail)
    _only_apr_errors(bytes(fix_header_crc(data) if with_magic else data))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-006")
def test_falsify_apr_format_006_truncated_at_every_offset(tmp_path: Path) -> None:
    data = sample_file()
    path = tmp_path / "cut.apr"
    for size in range(len(data)):
        with pytest.raises(FormatError):
            open_bytes(data[:size])
    for size in range(0, len(data), 97):  # the file path too (pread and mmap)
        path.write_bytes(data[:size])
        with pytest.raises(FormatError):
            open_file(path)


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-006")
@pytest.mark.parametrize(
    ("entries", "payloads", "metadata", "error"),
    [
        ([entry_bytes(b"\xff", 0, (1,), 0, 4)], [bytes(4)], b"{}", TensorIndexError),
        ([entry_bytes(b"a", 0, (1,) * 9, 0, 4)], [bytes(4)], b"{}", TensorIndexError),
        ([entry_bytes(b"a", 2, (1,), 0, 4)], [bytes(4)], b"{}", TensorIndexError),
        ([entry_bytes(b"a", 0, (1,), 0, 4)], [bytes(4)], b'{"x":NaN}', MetadataError),
        ([entry_bytes(b"a", 0, (1,), 0, 4)], [bytes(4)], b"\xc3\x28", MetadataError),
        ([entry_bytes(b"b", 0, (1,), 0, 4), entry_bytes(b"a", 0, (1,), 64, 4)], [bytes(4)] * 2, b"{}", TensorIndexError),
        ([entry_bytes(b"a", 0, (1,), 0, 4)] * 2, [bytes(4)] * 2, b"{}", TensorIndexError),
        ([entry_bytes(b"a", 0, (1,), 2**63, 4)], [bytes(4)], b"{}", TruncatedError),
    ],
    ids=["non-utf8-name", "ndim-9", "dtype-2", "nan-metadata", "bad-utf8-metadata", "unsorted", "duplicate", "offset-2^63"],
)
def test_falsify_apr_format_006_named_defects(entries, payloads, metadata, error) -> None:
    with pytest.raises(error) as info:
        open_bytes(build_file(entries, payloads, metadata=metadata))
    assert info.value.hint and info.value.message


# --- FALSIFY-APR-FORMAT-007: bounded memory ----------------------------------------------------------

_LIES = {
    "tensor_count=2^32-1": lambda d: set_u32(d, 8, 2**32 - 1),
    "metadata_size=2^32-1": lambda d: set_u32(d, 20, 2**32 - 1),
    "metadata_offset=2^63": lambda d: set_u64(d, 12, 2**63),
    "tensor_index_offset=2^63": lambda d: set_u64(d, 24, 2**63),
    "data_offset=2^63": lambda d: set_u64(d, 32, 2**63),
    "data_offset=2^64-1": lambda d: set_u64(d, 32, 2**64 - 1),
}


def _big_lying_file(tmp_path: Path, lie: str) -> Path:
    # A real 12 MiB file, so a reader that trusted the claim could allocate well past the limit.
    data = bytearray(save({"w": np.zeros(3 << 20, np.float32)}))
    path = tmp_path / "lie.apr"
    path.write_bytes(bytes(fix_header_crc(_LIES[lie](data))))
    return path


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-007")
@pytest.mark.parametrize("lie", list(_LIES))
def test_falsify_apr_format_007_bounded_memory(tmp_path: Path, lie: str) -> None:
    path = _big_lying_file(tmp_path, lie)
    tracemalloc.start()
    try:
        with pytest.raises(AprError):
            with open_file(path) as reader:
                _read_everything(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{lie}: peak allocation {peak} bytes"


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-007")
@pytest.mark.parametrize(
    "entries",
    [
        [entry_bytes(b"a", 0, (2**62, 2**62), 0, 4)],  # dims multiply past any size
        [entry_bytes(b"a", 0, (0, 2**63), 0, 0)],  # zero-size, absurd dims
        [b"\xff\xff" + b"a" * 30],  # name_len 65535 past the index
        [entry_bytes(b"a", 0, (1,), 0, 2**63)],  # size 2^63
    ],
)
def test_falsify_apr_format_007_lying_index_entries(entries: list[bytes]) -> None:
    data = build_file(entries, [bytes(4)], count=1)
    tracemalloc.start()
    try:
        with pytest.raises(AprError):
            _read_everything(open_bytes(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


# --- FALSIFY-APR-FORMAT-008: metadata serialisation rules -------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-008")
@given(metadata_dicts())
def test_falsify_apr_format_008_metadata_rules(metadata: dict[str, Any]) -> None:
    data = save({}, metadata)
    size = header_fields(data)["metadata_size"]
    raw = data[64 : 64 + size]
    assert b"\n" not in raw and not raw.startswith(b"{ ")
    import json

    document = json.loads(raw)
    keys = list(document)
    declared = [key for key, *_ in TYPED_FIELDS]
    for key in ("model_type", "license", "data_source", "data_license", "total_size", "param_count"):
        assert key in document
    for key, _kind, always, _default in TYPED_FIELDS:
        if not always and metadata.get(key) is None:
            assert key not in document
    typed = [k for k in keys if k in declared]
    custom = [k for k in keys if k not in declared]
    assert keys == typed + custom
    assert typed == sorted(typed, key=declared.index)
    assert custom == sorted(custom)
    assert "custom" not in metadata or "custom" in custom  # flattened, never nested


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-008")
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_falsify_apr_format_008_non_finite_metadata(value: float) -> None:
    with pytest.raises(TensorInputError):
        save({}, {"rope_theta": value})
    with pytest.raises(TensorInputError):
        save({}, {"custom": [value]})
    literal = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}[repr(value)]
    with pytest.raises(MetadataError):
        open_bytes(build_file([], [], metadata=b'{"x":' + literal + b"}"))


# --- FALSIFY-APR-FORMAT-009: atomic write -----------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-009")
@pytest.mark.parametrize("failure", ["midway", "enospc-on-write", "enospc-on-fsync"])
def test_falsify_apr_format_009_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    path = tmp_path / "model.apr"
    save_file({"w": np.arange(100, dtype=np.float32)}, path)
    before = path.read_bytes()
    real_stream = writer.write_stream

    def stream(handle, planned, prefix):
        if failure == "midway":
            handle.write(prefix)
            handle.write(b"\x00" * 1000)
            raise KeyboardInterrupt  # even an interrupt must not leave a half file
        if failure == "enospc-on-write":
            handle.write(prefix)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_stream(handle, planned, prefix)

    monkeypatch.setattr(writer, "write_stream", stream)
    if failure == "enospc-on-fsync":
        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", no_space)
    expected = KeyboardInterrupt if failure == "midway" else AprIOError
    with pytest.raises(expected):
        save_file({"other": np.ones((64, 64), np.float32)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.apr"]


# --- FALSIFY-APR-FORMAT-010: foreign formats ---------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-010")
def test_falsify_apr_format_010_foreign_formats(tmp_path: Path) -> None:
    import safetensors.numpy

    foreign = {
        "gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 0),
        "safetensors": safetensors.numpy.save({"w": np.zeros(2, np.float32)}),
        "apr1": b"APRN\x01\x00" + bytes(26),
    }
    for fmt, data in foreign.items():
        path = tmp_path / f"model.{fmt}"
        path.write_bytes(data)
        with pytest.raises(WrongFormatError) as info:
            open_file(path)
        assert info.value.detected == fmt and "apr import" in (info.value.hint or "")
    for short in (b"", b"AP", b"GGU", b"APR\x00", b"APR\x00" + bytes(59)):
        with pytest.raises(TruncatedError) as info:
            open_bytes(short)
        assert info.value.hint


# --- FALSIFY-APR-FORMAT-011: flags, LAYOUT-002 -------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-011")
@given(st.integers(0, 0xFFFF))
def test_falsify_apr_format_011_layout_flags(flags: int) -> None:
    tensors = {"w": np.ones(2, np.float32)}
    if flags & 0x0800:
        with pytest.raises(TensorInputError):
            save(tensors, flags=flags)
        data = bytearray(save(tensors))
        struct.pack_into("<H", data, 6, flags)
        with pytest.raises(HeaderError, match="LAYOUT-002"):
            open_bytes(bytes(fix_header_crc(data)))
    else:
        data = save(tensors, flags=flags)
        assert header_fields(data)["flags"] == flags | 0x0400
        assert open_bytes(data).flags == flags | Flags.LAYOUT_ROW_MAJOR


# --- FALSIFY-APR-FORMAT-012: quantized payloads ------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-012")
@given(st.lists(st.floats(-1e4, 1e4, width=32).filter(lambda v: v == 0 or abs(v) > 1e-2), max_size=80))
def test_falsify_apr_format_012_quantization_bounds(values: list[float]) -> None:
    x = np.array(values, np.float32)
    q8 = quantize_q8(x)
    scale = float(np.frombuffer(q8.data[:4].tobytes(), "<f4")[0])
    assert np.all(np.abs(q8.dequantize() - x) <= scale / 2 * (1 + 1e-5) + 1e-30)
    q4 = quantize_q4(x)
    scales = np.repeat(q4.data.reshape(-1, 18)[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1), 32)
    assert np.all(np.abs(q4.dequantize() - x) <= scales[: x.size] / 2 * (1 + 1e-3))


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-012")
@pytest.mark.parametrize(("legacy", "dtype"), [(8, DType.APR_Q4), (9, DType.APR_Q8)])
def test_falsify_apr_format_012_legacy_codes(legacy: int, dtype: DType) -> None:
    packed = (quantize_q4 if dtype is DType.APR_Q4 else quantize_q8)(np.linspace(-2, 2, 50, dtype=np.float32))
    data = build_file([entry_bytes(b"q", legacy, (50,), 0, packed.nbytes)], [packed.data.tobytes()])
    back = open_bytes(data).get_tensor("q")
    assert isinstance(back, PackedTensor) and back.dtype is dtype
    assert np.array_equal(back.dequantize(), packed.dequantize())


@pytest.mark.falsifies("FALSIFY-APR-FORMAT-012")
@pytest.mark.parametrize("kind", [DType.Q4_K, DType.Q6_K])
def test_falsify_apr_format_012_k_quants_match_gguf(kind: DType) -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    rng = np.random.default_rng(int(kind))
    per = 144 if kind is DType.Q4_K else 210
    raw = rng.integers(0, 256, size=(4, per), dtype=np.uint8)
    for at in ((0, 2) if kind is DType.Q4_K else (208,)):
        raw[:, at : at + 2] = rng.uniform(-1, 1, 4).astype(np.float16).view(np.uint8).reshape(4, 2)
    gtype = GGMLQuantizationType.Q4_K if kind is DType.Q4_K else GGMLQuantizationType.Q6_K
    expected = np.asarray(gguf_dequantize(raw, gtype), np.float32).reshape(2, 512)
    reader = open_bytes(save({"k": PackedTensor(kind, (2, 512), raw.reshape(-1))}))
    assert reader.get_raw("k").tobytes() == raw.tobytes()
    assert np.array_equal(reader.get_float32("k"), expected)
    assert np.array_equal(dequantize(kind, (2, 512), raw.reshape(-1)), expected)
