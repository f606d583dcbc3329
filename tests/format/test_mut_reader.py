"""The reader: each size a header claims checked against its limit below, at and above (limits
shrunk by monkeypatch so no test allocates them), the sources' read loops, and every query
(issue 23: mutation score)."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import apr.format.reader as reader
from apr.errors import AprFileNotFoundError, AprIOError, ResourceLimitError, TensorDataError, TruncatedError
from apr.format.dtypes import DType
from apr.format.header import Flags
from apr.format.quant import PackedTensor, quantize_q8
from apr.format.reader import load, load_file, open_bytes, open_file
from apr.format.writer import save


def pad64(data: bytes) -> bytes:
    return data + bytes(-len(data) % 64)


def entry(name: bytes, code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    return (struct.pack("<H", len(name)) + name + bytes((code, len(shape)))
            + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, size))


def raw_file(entries: list[bytes], data: bytes, meta: bytes = b"{}", *, count: int | None = None,
             data_pad: bool = True) -> bytes:
    meta_p, index_p = pad64(meta), pad64(b"".join(entries))
    index_off = 64 + len(meta_p)
    data_off = index_off + len(index_p)
    head = struct.pack("<4sBBHIQIQQ", b"APR\x00", 2, 0, 0x400, len(entries) if count is None else count,
                       64, len(meta), index_off, data_off)
    body = head + struct.pack("<I", zlib.crc32(head + bytes(20))) + bytes(20) + meta_p + index_p + data
    return body + struct.pack("<I", zlib.crc32(body))


W = {"b": np.array([1.0, 2.0, 3.0], np.float32), "a": np.arange(4, dtype=np.int16).astype(np.int32)}


# --- sources -----------------------------------------------------------------------------------


def test_file_source_reads_in_pieces_and_refuses_past_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(100)))
    source = reader._FileSource(str(path))
    assert source.size == 100 and source.path == str(path)
    real = os.pread
    asked: list[int] = []

    def short_pread(fd, n, offset):
        asked.append(n)
        return real(fd, min(n, 7), offset)

    monkeypatch.setattr(reader.os, "pread", short_pread)
    assert source.read(3, 20) == bytes(range(3, 23))
    assert asked == [20, 13, 6]
    assert source.read(5, 0) == b"" and source.read(5, 1) == bytes([5])
    with pytest.raises(TruncatedError) as info:
        source.read(90, 20)
    assert (info.value.path, info.value.offset) == (str(path), 100) and "10 bytes" in info.value.message
    source.close()


def test_file_source_asks_at_most_one_gib_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    source = reader._FileSource(str(path))
    asked: list[int] = []
    monkeypatch.setattr(reader.os, "pread", lambda fd, n, offset: asked.append(n) or b"")
    with pytest.raises(TruncatedError):
        source.read(0, 3 << 30)
    assert asked == [1 << 30]
    source.close()


def test_file_source_close_is_idempotent_and_survives_live_views(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(64)))
    source = reader._FileSource(str(path))
    buf = source.buffer()
    assert source.buffer() is buf
    view = np.frombuffer(buf, dtype=np.uint8, count=4, offset=10)
    source.close()
    assert source.fd == -1 and source._map is None
    source.close()
    assert view.tolist() == [10, 11, 12, 13]


def test_file_source_open_failure_is_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*_args):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(reader.os, "open", denied)
    with pytest.raises(AprIOError) as info:
        reader._FileSource(str(tmp_path / "f"))
    assert info.value.path == str(tmp_path / "f") and "Permission denied" in info.value.message


def test_bytes_source_bounds() -> None:
    source = reader._BytesSource(bytearray(b"0123456789"))
    assert source.size == 10 and source.path is None
    assert source.read(4, 6) == b"456789" and type(source.read(0, 1)) is bytes
    with pytest.raises(TruncatedError) as info:
        source.read(5, 6)
    assert info.value.offset == 5 and "6 bytes" in info.value.message
    assert reader._BytesSource(memoryview(np.arange(3, dtype=np.int16))).size == 6


# --- limits a header claims ----------------------------------------------------------------------


def test_metadata_size_limit_below_at_and_above(monkeypatch: pytest.MonkeyPatch) -> None:
    data = save({}, {"name": "x"})
    size = struct.unpack_from("<I", data, 20)[0]
    monkeypatch.setattr(reader, "MAX_METADATA_SIZE", size)
    assert open_bytes(data).metadata["name"] == "x"
    monkeypatch.setattr(reader, "MAX_METADATA_SIZE", size - 1)
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(data)
    assert (info.value.offset, info.value.field) == (20, "metadata_size")
    assert f"claims {size} bytes" in info.value.message and f"{size - 1}-byte limit" in info.value.message


def test_tensor_count_against_the_index_span() -> None:
    one = entry(b"", 0, (), 0, 0)  # 20 bytes: the smallest entry
    data = raw_file([one] * 2, b"", count=2)  # duplicates, but 2 entries fit the 64-byte span
    with pytest.raises(Exception) as info:
        open_bytes(data)
    assert not isinstance(info.value, ResourceLimitError)
    data = bytearray(raw_file([one], b"", count=4))  # 4 × 20 > 64
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(bytes(data))
    assert (info.value.offset, info.value.field) == (8, "tensor_count")
    assert "claims 4 tensors" in info.value.message and "at most 3" in info.value.message


def test_index_size_limit_below_at_and_above(monkeypatch: pytest.MonkeyPatch) -> None:
    data = save({"w": np.zeros(1, np.float32)})
    index_off, data_off = struct.unpack_from("<QQ", data, 24)
    span = data_off - index_off  # 64: less than one entry's maximum, so `needed` is the span
    monkeypatch.setattr(reader, "MAX_INDEX_SIZE", span)
    assert open_bytes(data).keys() == ["w"]
    monkeypatch.setattr(reader, "MAX_INDEX_SIZE", span - 1)
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(data)
    assert info.value.offset == 24 and f"need {span} bytes" in info.value.message


def test_index_read_is_bounded_by_the_largest_possible_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reader._MAX_ENTRY_SIZE == 2 + 65535 + 2 + 64 + 16
    data = save({"w": np.zeros(1, np.float32)})
    asked: list[tuple[int, int]] = []
    real = reader._BytesSource.read

    def spy(self, offset, size):
        asked.append((offset, size))
        return real(self, offset, size)

    monkeypatch.setattr(reader._BytesSource, "read", spy)
    monkeypatch.setattr(reader, "_MAX_ENTRY_SIZE", 40)  # one entry of at most 40 bytes: read 40, not 64
    index_off = struct.unpack_from("<Q", data, 24)[0]
    open_bytes(data)
    assert (index_off, 40) in asked


def test_a_payload_padding_cut_short_is_truncated() -> None:
    payload = np.array([1, 2, 3], np.float32).tobytes()
    whole = raw_file([entry(b"w", 0, (3,), 0, 12)], pad64(payload))
    assert open_bytes(whole).get_tensor("w").tolist() == [1, 2, 3]
    cut = raw_file([entry(b"w", 0, (3,), 0, 12)], pad64(payload)[:-1])
    with pytest.raises(TruncatedError) as info:
        open_bytes(cut)
    assert info.value.field == "w"
    data_off = struct.unpack_from("<Q", cut, 32)[0]
    assert f"bytes {data_off}..{data_off + 64}" in info.value.message and f"ends at {len(cut) - 4}" in info.value.message


def test_a_format_error_from_a_file_names_the_file_and_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(raw_file([entry(b"w", 0, (3,), 0, 12)], bytes(63)))
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(TruncatedError) as info:
        open_file(path)
    assert info.value.path == str(path)
    assert set(os.listdir("/proc/self/fd")) == before
    with pytest.raises(TruncatedError) as info:
        open_bytes(path.read_bytes())
    assert info.value.path is None


def test_any_other_error_while_loading_closes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(save(W))

    def boom(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reader, "decode_metadata", boom)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(KeyboardInterrupt):
        open_file(path)
    assert set(os.listdir("/proc/self/fd")) == before


# --- queries ------------------------------------------------------------------------------------


def test_queries(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(save(W, {"name": "n"}, flags=0x0200))
    with open_file(path) as r:
        assert r.path == str(path) and r.file_size == path.stat().st_size
        assert r.flags == 0x0600 and r.is_checksum_valid is True
        assert r.has_flag(Flags.HAS_VOCAB) and not r.has_flag(Flags.QUANTIZED)
        assert r.keys() == ["a", "b"] and list(r) == ["a", "b"] and len(r) == 2
        assert "a" in r and "c" not in r and 3 not in r
        assert r.metadata["name"] == "n"
        data_off = r.header.data_offset
        assert r.absolute_range(r.entry("a")) == (data_off, data_off + 16)
        assert r.absolute_range(r.entry("b")) == (data_off + 64, data_off + 76)
        assert r.get_raw("b").tobytes() == W["b"].tobytes()
        assert r.get_tensor("a").tolist() == [0, 1, 2, 3] and r.get_tensor("a").dtype == np.int32
    assert r._source.fd == -1  # the context manager closed it


def test_an_unverified_open_reports_the_bad_checksum() -> None:
    data = bytearray(save(W))
    data[40] ^= 1
    assert open_bytes(bytes(data), verify_checksum=False).is_checksum_valid is False


def test_entry_suggests_the_nearest_name() -> None:
    r = open_bytes(save({"model.weight": np.zeros(1, np.float32)}))
    with pytest.raises(KeyError) as info:
        r.entry("model.weigth")
    assert info.value.args[0] == "no tensor named 'model.weigth'; did you mean 'model.weight'?"
    with pytest.raises(KeyError) as info:
        r.entry("zzz")
    assert info.value.args[0] == "no tensor named 'zzz'"


def test_tensors_are_read_only_views_of_the_right_bytes() -> None:
    r = open_bytes(save({"m": np.arange(6, dtype=np.float64).reshape(2, 3)}))
    t = r.get_tensor("m")
    assert t.shape == (2, 3) and t.dtype == np.float64 and t.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert not t.flags.writeable


def test_zero_size_tensors() -> None:
    r = open_bytes(save({"e": np.zeros((0, 4), np.float16)}))
    raw = r.get_raw("e")
    assert raw.dtype == np.uint8 and raw.shape == (0,)
    t = r.get_tensor("e")
    assert t.shape == (0, 4) and t.dtype == np.float16


def test_a_size_that_does_not_match_dtype_and_shape() -> None:
    r = open_bytes(raw_file([entry(b"w", 0, (3,), 0, 8)], pad64(bytes(8))))
    with pytest.raises(TensorDataError) as info:
        r.get_tensor("w")
    assert info.value.field == "w" and info.value.message == "tensor 'w': F32 [3] needs 12 bytes, the index says 8"


@pytest.mark.parametrize("dims, ok", [((2**60 - 1, 0), True), ((2**60, 0), False), ((2**30, 2**30, 0), False),
                                      ((2**59, 3, 0), False)])
def test_zero_size_shapes_numpy_cannot_hold(dims, ok: bool) -> None:
    r = open_bytes(raw_file([entry(b"w", 0, dims, 0, 0)], b""))
    if ok:
        assert r.get_tensor("w").shape == dims
    else:
        with pytest.raises(TensorDataError) as info:
            r.get_tensor("w")
        assert info.value.field == "w" and "too large to represent" in info.value.message


def test_packed_tensors_come_back_packed_and_dequantize_to_float32() -> None:
    q = quantize_q8(np.array([0.5, -1.0, 0.25], np.float32))
    r = open_bytes(save({"q": q, "h": np.array([1.5, 2.5], np.float16), "f": np.array([3.0], np.float32)}))
    got = r.get_tensor("q")
    assert isinstance(got, PackedTensor) and got.dtype is DType.APR_Q8 and got.shape == (3,)
    assert np.array_equal(got.data, np.asarray(q.data))
    assert np.array_equal(r.get_float32("q"), q.dequantize())
    half = r.get_float32("h")
    assert half.dtype == np.float32 and half.tolist() == [1.5, 2.5]
    full = r.get_float32("f")
    assert full.dtype == np.float32 and np.shares_memory(full, r.get_tensor("f"))


# --- open_file, load_file, load ---------------------------------------------------------------------


def test_open_file_refuses_missing_paths_folders_and_unstatable_paths(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        open_file(tmp_path / "missing.apr")
    assert info.value.message == "file not found" and info.value.path == str(tmp_path / "missing.apr")
    with pytest.raises(AprFileNotFoundError) as info:
        open_file(tmp_path)
    assert info.value.message == "not a file (a folder or device)" and info.value.path == str(tmp_path)
    with pytest.raises(AprIOError) as info:
        open_file(tmp_path / ("x" * 300))
    assert "cannot stat file" in info.value.message and info.value.path == str(tmp_path / ("x" * 300))


def test_open_file_verifies_the_checksum_unless_told_not_to(tmp_path: Path) -> None:
    data = bytearray(save(W))
    data[40] ^= 1
    path = tmp_path / "m.apr"
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="checksum"):
        open_file(path)
    with open_file(path, verify_checksum=False) as r:
        assert r.is_checksum_valid is False


def test_load_file_and_load_return_every_tensor(tmp_path: Path) -> None:
    data = save(W)
    path = tmp_path / "m.apr"
    path.write_bytes(data)
    for got in (load_file(path), load(data)):
        assert list(got) == ["a", "b"]
        assert got["a"].tolist() == [0, 1, 2, 3] and got["b"].tolist() == [1.0, 2.0, 3.0]


def test_every_reader_refusal_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = []
    for make in (
        lambda: open_file(tmp_path / "missing"),
        lambda: open_file(tmp_path),
        lambda: open_bytes(raw_file([entry(b"w", 0, (3,), 0, 12)], bytes(63))),
        lambda: open_bytes(raw_file([entry(b"", 0, (), 0, 0)], b"", count=4)),
        lambda: open_bytes(raw_file([entry(b"w", 0, (3,), 0, 8)], pad64(bytes(8)))).get_tensor("w"),
        lambda: open_bytes(raw_file([entry(b"w", 0, (2**60, 0), 0, 0)], b"")).get_tensor("w"),
    ):
        with pytest.raises(Exception) as info:
            make()
        errors.append(info.value)
    monkeypatch.setattr(reader, "MAX_METADATA_SIZE", 1)
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(save({}))
    errors.append(info.value)
    monkeypatch.setattr(reader, "MAX_INDEX_SIZE", 1)
    monkeypatch.setattr(reader, "MAX_METADATA_SIZE", 10**6)
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(save({"w": np.zeros(1, np.float32)}))
    errors.append(info.value)
    assert all(err.hint for err in errors), [err for err in errors if not err.hint]


def test_the_file_is_opened_close_on_exec(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "m.apr"
    path.write_bytes(save(W))
    with open_file(path) as r:
        assert fcntl.fcntl(r._source.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_one_byte_tensors_are_read() -> None:
    r = open_bytes(save({"one": np.array([9], np.uint8), "zero": np.zeros(0, np.uint8)}))
    assert r.get_raw("one").tolist() == [9] and r.get_tensor("one").tolist() == [9]
    assert r.get_raw("zero").tolist() == []


def test_a_count_that_exactly_fills_the_index_span_is_parsed() -> None:
    entries = [entry(bytes([c]), 0, (), 0, 0) for c in range(ord("a"), ord("a") + 13)]  # 13 × 21 = 273 -> 320
    data = raw_file(entries, b"", count=16)  # 16 × 20 == 320: not refused for size, parsed (and then unsorted)
    with pytest.raises(Exception) as info:
        open_bytes(data)
    assert not isinstance(info.value, ResourceLimitError) and "not sorted" in str(info.value)
    with pytest.raises(ResourceLimitError):
        open_bytes(raw_file(entries, b"", count=17))


def test_tensor_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(raw_file([entry(b"big", 0, (2**60, 0), 0, 0), entry(b"w", 0, (3,), 0, 8)], pad64(bytes(8))))
    with open_file(path) as r:
        for name in ("w", "big"):
            with pytest.raises(TensorDataError) as info:
                r.get_tensor(name)
            assert info.value.path == str(path) and info.value.field == name


def test_the_tensor_count_is_refused_before_the_index_size(monkeypatch: pytest.MonkeyPatch) -> None:
    data = raw_file([entry(b"", 0, (), 0, 0)], b"", count=4)  # 4 × 20 > 64, and 64 > the index limit
    monkeypatch.setattr(reader, "MAX_INDEX_SIZE", 32)
    with pytest.raises(ResourceLimitError) as info:
        open_bytes(data)
    assert (info.value.offset, info.value.field) == (8, "tensor_count")
    assert info.value.message == "header claims 4 tensors but the tensor index has room for at most 3"


def test_index_errors_give_absolute_file_offsets() -> None:
    data = raw_file([entry(b"abc", 2, (1,), 0, 4)], pad64(bytes(4)))
    index_off = struct.unpack_from("<Q", data, 24)[0]
    with pytest.raises(Exception) as info:
        open_bytes(data)
    assert info.value.offset == index_off + 5  # the dtype byte
