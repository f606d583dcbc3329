"""The writer: a whole multi-tensor file rebuilt by hand from §1.4, each input refusal, each flag
rule and the footer-CRC threshold below, at and above (issue 23: mutation score)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import apr.format.writer as writer
from apr.errors import TensorInputError
from apr.format.dtypes import DType
from apr.format.quant import PackedTensor, quantize_q8
from apr.format.writer import build_prefix, plan_tensors, save, save_file, write_stream


def pad64(data: bytes) -> bytes:
    return data + bytes(-len(data) % 64)


def entry(name: bytes, code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    return (struct.pack("<H", len(name)) + name + bytes((code, len(shape)))
            + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, size))


def expected_file(meta: bytes, entries: list[bytes], payloads: list[bytes], flags: int) -> bytes:
    """§1.4 by hand: header, padded metadata, padded index, padded payloads, footer CRC."""
    index = b"".join(entries)
    index_off = 64 + len(pad64(meta))
    data_off = index_off + len(pad64(index))
    head = struct.pack("<4sBBHIQIQQ", b"APR\x00", 2, 0, flags, len(entries), 64, len(meta), index_off, data_off)
    header = head + struct.pack("<I", zlib.crc32(head + bytes(20))) + bytes(20)
    body = header + pad64(meta) + pad64(index) + b"".join(pad64(p) for p in payloads)
    return body + struct.pack("<I", zlib.crc32(body))


ALWAYS = b'"license":null,"data_source":null,"data_license":null,"total_size":0,"param_count":0'


def test_a_multi_tensor_file_byte_for_byte() -> None:
    b = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    a = np.array([[7, 8]], dtype=np.uint8)
    empty = np.zeros((0, 3), dtype=np.int64)
    big = np.arange(16, dtype=np.float32)  # 64 bytes: no padding after it
    tensors = {"b": b, "a": a, "c_empty": empty, "Big": big}  # any input order
    actual = save(tensors, {"name": "m", "zz": 1}, flags=0x0020)
    meta = b'{"model_type":"","name":"m",' + ALWAYS + b',"zz":1}'
    # byte order: "Big" < "a" < "b" < "c_empty"; offsets advance by align64(size)
    entries = [
        entry(b"Big", 0, (16,), 0, 64),
        entry(b"a", 7, (1, 2), 64, 2),
        entry(b"b", 0, (3,), 128, 12),
        entry(b"c_empty", 5, (0, 3), 192, 0),
    ]
    payloads = [big.tobytes(), a.tobytes(), b.tobytes(), b""]
    assert actual == expected_file(meta, entries, payloads, 0x0420)


def test_no_tensors_and_no_metadata() -> None:
    meta = b'{"model_type":"",' + ALWAYS + b"}"
    assert save({}) == expected_file(meta, [], [], 0x0400)


def test_big_endian_and_strided_arrays_are_stored_little_endian_and_contiguous() -> None:
    base = np.arange(12, dtype=">i4").reshape(3, 4)
    strided = base[:, ::2]  # (3, 2), not contiguous, big-endian
    actual = save({"x": strided})
    want = np.ascontiguousarray(strided.astype("<i4")).tobytes()
    meta = b'{"model_type":"",' + ALWAYS + b"}"
    assert actual == expected_file(meta, [entry(b"x", 4, (3, 2), 0, 24)], [want], 0x0400)


def test_packed_tensors_are_written_with_their_logical_shape() -> None:
    packed = quantize_q8(np.array([1.0, -1.0, 0.5], dtype=np.float32))
    actual = save({"q": packed})
    meta = b'{"model_type":"",' + ALWAYS + b"}"
    raw = np.asarray(packed.data, dtype=np.uint8).tobytes()
    assert len(raw) == 4 + 3
    assert actual == expected_file(meta, [entry(b"q", 129, (3,), 0, 7)], [raw], 0x0400)


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, stored", [(0, 0x0400), (0x0400, 0x0400), (0xF7FF, 0xF7FF), (0x0001, 0x0401),
                                           (0x03FF, 0x07FF)])
def test_row_major_is_always_added(flags: int, stored: int) -> None:
    header, prefix = build_prefix([], None, flags)
    assert header.flags == stored and struct.unpack_from("<H", prefix, 6)[0] == stored


@pytest.mark.parametrize("flags", [-1, 0x10000, True, False, 1.0, "1", None])
def test_flags_must_be_a_16_bit_int(flags) -> None:
    with pytest.raises(TensorInputError) as info:
        build_prefix([], None, flags)
    assert info.value.field == "flags" and repr(flags) in info.value.message


@pytest.mark.parametrize("flags", [0x0800, 0x0C00, 0xFFFF])
def test_column_major_is_refused(flags: int) -> None:
    with pytest.raises(TensorInputError) as info:
        build_prefix([], None, flags)
    assert info.value.field == "flags"
    assert info.value.message == "flags include LAYOUT_COLUMN_MAJOR, which readers reject (LAYOUT-002)"


def test_build_prefix_returns_the_header_it_wrote() -> None:
    planned = plan_tensors({"w": np.zeros(3, np.float32)})
    header, prefix = build_prefix(planned, {"name": "n"}, 0)
    assert prefix[:64] == header.to_bytes() and header.is_checksum_valid
    assert len(prefix) == header.data_offset and header.tensor_count == 1
    assert (header.metadata_offset, header.tensor_index_offset) == (64, 64 + 128)
    meta_end = 64 + header.metadata_size
    assert prefix[meta_end:header.tensor_index_offset] == bytes(header.tensor_index_offset - meta_end)
    index_end = header.tensor_index_offset + 29
    assert prefix[index_end:] == bytes(header.data_offset - index_end)


# --- plan_tensors: every refusal, all listed in one error ----------------------------------------


def test_plan_offsets_advance_by_padded_size_in_byte_order() -> None:
    sizes = {"e": 65, "d": 64, "c": 0, "b": 1, "a": 63}
    planned = plan_tensors({k: np.zeros(n, np.uint8) for k, n in sizes.items()})
    assert [(p.entry.name, p.entry.offset, p.entry.size) for p in planned] == [
        ("a", 0, 63), ("b", 64, 1), ("c", 128, 0), ("d", 128, 64), ("e", 192, 65)]
    assert all(p.payload.dtype == np.uint8 and p.payload.ndim == 1 for p in planned)


def test_plan_refuses_a_non_mapping() -> None:
    with pytest.raises(TensorInputError) as info:
        plan_tensors([("w", np.zeros(1))])
    assert "got list" in info.value.message


def test_every_problem_is_listed_in_one_error() -> None:
    tensors = {
        "ok": np.zeros(1, np.float32),
        3: np.zeros(1),
        "bad\ud800": np.zeros(1),
        "n" * 257: np.zeros(1),
        "list": [1, 2],
        "complex": np.zeros(1, np.complex64),
        "deep": np.zeros((1,) * 9, np.float32),
    }
    with pytest.raises(TensorInputError) as info:
        plan_tensors(tensors)
    message = info.value.message
    assert message.startswith("cannot save 6 tensor(s):\n    ")
    lines = message.split("\n    ")[1:]
    assert len(lines) == 6
    assert lines[0] == "3: tensor names must be str"
    assert "not valid Unicode" in lines[1]
    assert lines[2] == f"{'n' * 40!r}...: name is 257 bytes, the format allows 256 (aprender would silently truncate it)"
    assert lines[3] == "'list': expected a numpy array or PackedTensor, got list"
    assert lines[4].startswith("'complex': dtype complex64 is not storable")
    assert lines[5] == "'deep': 9 dimensions, the format allows at most 8"


def test_name_and_ndim_limits_at_the_boundary() -> None:
    name = "é" * 128  # 256 UTF-8 bytes: allowed
    planned = plan_tensors({name: np.zeros((1,) * 8, np.float32)})
    assert planned[0].entry.name == name and planned[0].entry.shape == (1,) * 8
    with pytest.raises(TensorInputError, match="257 bytes"):
        plan_tensors({name + "a": np.zeros(1, np.float32)})


def test_shapes_are_plain_ints() -> None:
    planned = plan_tensors({"w": np.zeros((2, 3), np.float32)})
    assert planned[0].entry.shape == (2, 3) and all(type(d) is int for d in planned[0].entry.shape)


# --- write_stream and the footer-CRC threshold ------------------------------------------------------


def _stream(tensors) -> tuple[bytes, int]:
    planned = plan_tensors(tensors)
    _header, prefix = build_prefix(planned, None, 0)
    out = io.BytesIO()
    written = write_stream(out, planned, prefix)
    return out.getvalue(), written


def test_write_stream_returns_the_size_with_the_footer() -> None:
    data, written = _stream({"a": np.zeros(3, np.uint8)})
    assert written == len(data) and int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])


@pytest.mark.parametrize("delta, threaded", [(-1, False), (0, True), (1, True)])
def test_background_crc_from_the_threshold_on(monkeypatch: pytest.MonkeyPatch, delta: int, threaded: bool) -> None:
    planned = plan_tensors({"a": np.zeros(3, np.uint8)})
    _header, prefix = build_prefix(planned, None, 0)
    total = len(prefix) + 64
    monkeypatch.setattr(writer, "_THREADED_CRC_MIN_BYTES", total - delta)
    calls: list[int] = []
    real = writer._write_with_background_crc

    def spy(handle, chunks):
        calls.append(len(chunks))
        return real(handle, chunks)

    monkeypatch.setattr(writer, "_write_with_background_crc", spy)
    out = io.BytesIO()
    assert write_stream(out, planned, prefix) == total + 4
    assert bool(calls) is threaded  # threshold total + 1: sequential; total or less: threaded
    data = out.getvalue()
    assert int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])


def test_the_default_threshold_is_8_mib() -> None:
    assert writer._THREADED_CRC_MIN_BYTES == 8 * 1024 * 1024


def test_background_crc_is_zlibs_crc_of_all_chunks() -> None:
    chunks = [b"abc", memoryview(b"defg"), b"", bytes(range(256))]
    out = io.BytesIO()
    assert writer._write_with_background_crc(out, chunks) == zlib.crc32(b"abcdefg" + bytes(range(256)))
    assert out.getvalue() == b"abcdefg" + bytes(range(256))


def test_chunks_skip_empty_payloads_and_zero_padding() -> None:
    planned = plan_tensors({"a": np.zeros(0, np.uint8), "b": np.ones(64, np.uint8), "c": np.ones(1, np.uint8)})
    chunks = writer._chunks(planned, b"P")
    assert [bytes(c) for c in chunks] == [b"P", bytes([1]) * 64, b"\x01", bytes(63)]


# --- save_file ------------------------------------------------------------------------------------


def test_save_file_writes_the_bytes_save_returns(tmp_path: Path) -> None:
    tensors = {"w": np.arange(5, dtype=np.float16)}
    path = tmp_path / "m.apr"
    save_file(tensors, path, {"name": "x"}, 0x0200)
    assert path.read_bytes() == save(tensors, {"name": "x"}, 0x0200)
    assert struct.unpack_from("<H", path.read_bytes(), 6)[0] == 0x0600


@pytest.mark.parametrize("kwargs, durable", [({}, True), ({"durable": False}, False), ({"durable": True}, True)])
def test_save_file_passes_durable_to_the_atomic_write(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      kwargs, durable: bool) -> None:
    seen: list[tuple[str, bool]] = []
    real = writer.atomic_write

    def spy(path, *, durable):
        seen.append((str(path), durable))
        return real(path, durable=durable)

    monkeypatch.setattr(writer, "atomic_write", spy)
    save_file({"w": np.zeros(1, np.float32)}, tmp_path / "m.apr", **kwargs)
    assert seen == [(str(tmp_path / "m.apr"), durable)]


def test_save_file_refuses_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    with pytest.raises(TensorInputError):
        save_file({"w": [1]}, path)
    with pytest.raises(TensorInputError):
        save_file({"w": np.zeros(1)}, path, flags=0x0800)
    assert not path.exists()


@pytest.mark.parametrize("make", [
    lambda: plan_tensors(None),
    lambda: plan_tensors({"w": None}),
    lambda: build_prefix([], None, 0x0800),
])
def test_every_writer_refusal_says_how_to_fix_it(make) -> None:
    with pytest.raises(TensorInputError) as info:
        make()
    assert info.value.hint and info.value.message


@pytest.mark.parametrize("holder", [np.uint8, np.int8, np.int16, np.float32])
def test_packed_data_is_written_as_its_bytes_whatever_holds_them(holder) -> None:
    """A PackedTensor's data is its payload's bytes, even in an array of another type (or 2-D,
    or strided): the same 144 bytes of a Q4_K superblock are written."""
    raw = np.random.default_rng(3).integers(0, 256, 144, dtype=np.uint8)
    raw[[0, 1]] = 0  # a finite f16 scale
    held = raw.view(holder)
    for data in (held, held.reshape(2, -1), np.repeat(held, 2)[::2]):
        packed = PackedTensor(DType.Q4_K, (256,), data)
        out = save({"k": packed})
        start = struct.unpack_from("<Q", out, 32)[0]
        assert out[start:start + 144] == raw.tobytes()
        planned = plan_tensors({"k": packed})
        assert planned[0].entry.size == 144 and planned[0].payload.dtype == np.uint8
