"""`apr.stamp.rewrite` (issue 23): the streaming rewrite behind ``apr stamp -o`` and an in-place stamp
that no longer fits: which bytes land where, which copy method is used and when it falls back,
the CRC read beside the copy, and what a damaged input gives.

The expected output is built independently of the code under test: the plan's prefix, then the
input's data section sliced from its bytes, then the plan's footer (little-endian).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import threading
import time
import zlib
from pathlib import Path
from unittest import mock

import pytest

from apr.errors import AprIOError, DamagedInputError
from apr.stamp import ProvenancePatch, rewrite
from apr.stamp import file as stamp_module
from apr.stamp.rewrite import CopyCheck, SourceCrc, check_source_crc, copy_range, rewrite_to
from apr.stamp.source import read_source
from stamp_builders import write_checkpoint
from tests.stamp.deadline import within as _within

PATCH = ProvenancePatch(license="MIT", name="tiny")


def _expected(source, plan) -> bytes:
    raw = Path(source.path).read_bytes()
    data = raw[plan.old_data_offset : plan.old_data_offset + plan.data_length]
    assert len(data) == plan.data_length == len(raw) - 4 - source.header.data_offset
    return plan.prefix + data + plan.footer.to_bytes(4, "little")


def _input(tmp_path: Path, patch: ProvenancePatch = PATCH):
    src = write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "LlamaForCausalLM"}, flags=0x0001)
    source = read_source(src)
    return source, stamp_module._plan(source, patch)


def _copy(tmp_path: Path, data: bytes, src_off: int, dst_off: int, count: int) -> tuple[str, bytes]:
    (tmp_path / "src").write_bytes(data)
    (tmp_path / "dst").write_bytes(b"")
    src, dst = os.open(tmp_path / "src", os.O_RDONLY), os.open(tmp_path / "dst", os.O_RDWR)
    try:
        method = _within(20, copy_range, src, dst, src_off, dst_off, count)
    finally:
        os.close(src)
        os.close(dst)
    return method, (tmp_path / "dst").read_bytes()


# --- writeback advice ---------------------------------------------------------------------------------


def test_start_writeback_advises_each_non_empty_range_and_survives_a_refusal(tmp_path, caplog) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDWR)
    asked: list[tuple] = []
    try:
        with mock.patch.object(os, "posix_fadvise", lambda *args: asked.append(args)):
            rewrite._start_writeback(fd, 10, 0)  # Linux reads length 0 as "to the end of the file": never asked
            rewrite._start_writeback(fd, 10, -1)
            rewrite._start_writeback(fd, 10, 1)
            rewrite._start_writeback(fd, 3, 50)
        assert asked == [(fd, 10, 1, os.POSIX_FADV_DONTNEED), (fd, 3, 50, os.POSIX_FADV_DONTNEED)]
        with mock.patch.object(os, "posix_fadvise", side_effect=OSError(errno.ESPIPE, "Illegal seek")), \
                caplog.at_level(logging.DEBUG, logger="apr.stamp.rewrite"):
            rewrite._start_writeback(fd, 0, 5)
        assert [r.getMessage() for r in caplog.records] == [
            "posix_fadvise refused (Illegal seek); writeback left to the fsync"]
    finally:
        os.close(fd)


# --- copy_range ------------------------------------------------------------------------------------


def test_copy_range_uses_copy_file_range_in_bounded_calls(tmp_path, monkeypatch) -> None:
    data = os.urandom(10_000)
    calls: list[tuple] = []
    real = os.copy_file_range

    def spy(src, dst, count, offset_src, offset_dst):
        calls.append((count, offset_src, offset_dst))
        return real(src, dst, count, offset_src, offset_dst)

    monkeypatch.setattr(rewrite, "_KERNEL_CALL_MAX", 4096)
    monkeypatch.setattr(os, "copy_file_range", spy)
    method, out = _copy(tmp_path, data, 100, 7, 9000)
    assert method == "copy_file_range" and out[7:] == data[100:9100] and len(out) == 9007
    assert calls == [(4096, 100, 7), (4096, 4196, 4103), (808, 8292, 8199)]


def test_sendfile_copies_from_the_destination_offset(tmp_path, monkeypatch) -> None:
    data = os.urandom(5000)

    def unsupported(*_args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    monkeypatch.setattr(rewrite, "_KERNEL_CALL_MAX", 1000)
    method, out = _copy(tmp_path, data, 300, 20, 4500)
    assert method == "sendfile" and out[20:] == data[300:4800] and len(out) == 4520


def test_a_kernel_call_that_stops_short_hands_the_rest_to_the_next_method(tmp_path, monkeypatch) -> None:
    data = os.urandom(6000)
    real = os.copy_file_range

    def stops_after_one_call(src, dst, count, offset_src, offset_dst):
        return 0 if offset_src > 100 else real(src, dst, min(count, 1000), offset_src, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", stops_after_one_call)
    method, out = _copy(tmp_path, data, 100, 0, 5000)
    assert method == "sendfile" and out == data[100:5100]


def test_a_kernel_call_that_copies_one_byte_at_a_time_is_not_mistaken_for_the_end(tmp_path, monkeypatch) -> None:
    data = os.urandom(50)
    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", lambda s, d, count, so, do: real(s, d, 1, so, do))
    method, out = _copy(tmp_path, data, 3, 2, 40)
    assert method == "copy_file_range" and out[2:] == data[3:43]


def test_read_write_fallback_copies_in_chunks_and_survives_short_writes(tmp_path, monkeypatch) -> None:
    data = os.urandom(3000)

    def unsupported(*_args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    real_pwrite = os.pwrite
    advised: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "copy_file_range", unsupported)
    monkeypatch.setattr(os, "sendfile", unsupported)
    monkeypatch.setattr(os, "pwrite", lambda fd, view, offset: real_pwrite(fd, bytes(view[:100]), offset))
    monkeypatch.setattr(rewrite, "CHUNK_SIZE", 512)
    monkeypatch.setattr(rewrite, "_start_writeback", lambda fd, offset, length: advised.append((offset, length)))
    method, out = _copy(tmp_path, data, 10, 5, 2000)
    assert method == "read/write" and out[5:] == data[10:2010] and len(out) == 2005
    assert advised == [(5, 512), (517, 512), (1029, 512), (1541, 464)]


def test_read_write_fallback_refuses_an_input_that_ends_early(tmp_path, monkeypatch) -> None:
    def unsupported(*_args):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    monkeypatch.setattr(os, "sendfile", unsupported)
    with pytest.raises(OSError) as failed:
        _copy(tmp_path, b"x" * 100, 50, 0, 100)
    assert failed.value.errno == errno.EIO and failed.value.strerror == "input ended during the copy"


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF,
                                  errno.ENOTSUP])
def test_each_unsupported_errno_falls_back(tmp_path, monkeypatch, caplog, code) -> None:
    data = os.urandom(2000)

    def unsupported(*_args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    with caplog.at_level(logging.DEBUG, logger="apr.stamp.rewrite"):
        method, out = _copy(tmp_path, data, 0, 0, 2000)
    assert method == "sendfile" and out == data
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()] == [
        f"copy_file_range unavailable here ({os.strerror(code)}); falling back"]
    monkeypatch.setattr(os, "sendfile", unsupported)
    assert _copy(tmp_path, data, 0, 0, 2000) == ("read/write", data)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_real_io_error_is_raised_not_fallen_back_from(tmp_path, monkeypatch, code) -> None:
    def failing(*_args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", failing)
    with pytest.raises(OSError) as failed:
        _copy(tmp_path, b"x" * 100, 0, 0, 100)
    assert failed.value.errno == code


def test_a_missing_kernel_call_is_skipped(tmp_path, monkeypatch) -> None:
    data = os.urandom(1000)
    monkeypatch.delattr(os, "copy_file_range")
    assert _copy(tmp_path, data, 0, 0, 1000) == ("sendfile", data)
    monkeypatch.delattr(os, "sendfile")
    assert _copy(tmp_path, data, 0, 0, 1000) == ("read/write", data)


# --- the CRC beside the copy -----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_source_crc_is_the_crc_of_prefix_then_data(tmp_path, monkeypatch, chunk) -> None:
    source, plan = _input(tmp_path)
    raw = Path(source.path).read_bytes()
    monkeypatch.setattr(rewrite, "CHUNK_SIZE", chunk)
    fd = os.open(source.path, os.O_RDONLY)
    try:
        crc = SourceCrc(fd, source, plan).start()
        assert crc._thread.name == "apr-stamp-crc" and crc._thread.daemon
        assert _within(20, crc.result) == zlib.crc32(raw[:-4]) == source.footer
    finally:
        os.close(fd)


def test_source_crc_of_an_empty_data_section_is_the_prefix_crc(tmp_path) -> None:
    source, plan = _input(tmp_path)
    fd = os.open(source.path, os.O_RDONLY)
    try:
        assert _within(20, SourceCrc(fd, source, dataclasses.replace(plan, data_length=0)).start().result) == zlib.crc32(
            source.prefix)
    finally:
        os.close(fd)


def test_source_crc_reports_a_file_that_ends_early(tmp_path) -> None:
    source, plan = _input(tmp_path)
    raw = Path(source.path).read_bytes()
    Path(source.path).write_bytes(raw[:-20])  # 16 data bytes and the footer gone
    fd = os.open(source.path, os.O_RDONLY)
    try:
        crc = SourceCrc(fd, source, plan).start()
        with pytest.raises(AprIOError) as failed:
            _within(20, crc.result)
    finally:
        os.close(fd)
    assert failed.value.message == f"file ended while its data was checked (at byte {len(raw) - 20})"
    assert failed.value.hint == "another program is writing this file; retry when it is done"
    assert failed.value.path == source.path


def test_source_crc_cancel_stops_the_thread_and_waits_for_it(tmp_path, monkeypatch) -> None:
    source, plan = _input(tmp_path)
    fd = os.open(source.path, os.O_RDONLY)
    try:
        crc = SourceCrc(fd, source, plan)
        crc._stop.set()  # cancelled before it read anything
        crc.start()
        assert _within(20, crc.result) == zlib.crc32(source.prefix)
        crc.cancel()
        assert not crc._thread.is_alive()
        reading = threading.Event()
        real_read_into = rewrite._read_into

        def slow_read_into(fd_, buffer, offset):  # one byte per 50 ms: still reading when cancelled
            reading.set()
            time.sleep(0.05)
            return real_read_into(fd_, buffer, offset)

        monkeypatch.setattr(rewrite, "CHUNK_SIZE", 1)
        monkeypatch.setattr(rewrite, "_read_into", slow_read_into)
        running = SourceCrc(fd, source, plan).start()
        assert reading.wait(10)
        running.cancel()
        assert running._stop.is_set() and not running._thread.is_alive()  # it waited for the thread to end
    finally:
        os.close(fd)


def test_read_into_fills_the_buffer_with_or_without_preadv(tmp_path, monkeypatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer = memoryview(bytearray(4))
        assert rewrite._read_into(fd, buffer, 3) == 4 and bytes(buffer) == b"3456"
        monkeypatch.delattr(os, "preadv")
        buffer = memoryview(bytearray(b"zzzzzz"))
        assert rewrite._read_into(fd, buffer, 7) == 3 and bytes(buffer) == b"789zzz"
    finally:
        os.close(fd)


def test_check_source_crc_passes_an_intact_input_and_describes_a_damaged_one(tmp_path) -> None:
    source, _plan = _input(tmp_path)
    check = CopyCheck()
    assert (check.allow_damaged, check.damage) == (False, None)
    check_source_crc(source.footer, source, check)
    assert check.damage is None
    with pytest.raises(DamagedInputError) as refused:
        check_source_crc(source.footer ^ 1, source, check)
    assert "apr stamp wrote nothing" in refused.value.message and check.damage is None
    salvage = CopyCheck(allow_damaged=True)
    check_source_crc(source.footer ^ 1, source, salvage)
    damage = salvage.damage
    assert damage is not None
    assert (damage.path, damage.footer_stored, damage.footer_computed, damage.tensors) == (
        source.path, source.footer, source.footer ^ 1, len(source.entries))
    assert (damage.header_stored, damage.header_computed) == (None, None)


# --- rewrite_to --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patch", [PATCH, ProvenancePatch(description="d" * 6000)])
def test_rewrite_to_writes_prefix_data_and_footer_where_the_plan_says(tmp_path, patch) -> None:
    source, plan = _input(tmp_path, patch)
    out = tmp_path / "out.apr"
    closed: list[int] = []
    real_close = os.close

    def close_spy(fd):
        closed.append(fd)
        real_close(fd)

    with mock.patch.object(os, "close", close_spy):
        method = _within(20, rewrite_to, str(out), source, plan, check=CopyCheck())
    assert method == "copy_file_range"
    assert out.read_bytes() == _expected(source, plan)
    assert sorted(os.listdir(tmp_path)) == ["in.apr", "out.apr"]
    assert closed  # the input's descriptor among them
    with pytest.raises(OSError):
        os.fstat(closed[-1])


def test_rewrite_to_reports_the_fallback_method(tmp_path, monkeypatch) -> None:
    source, plan = _input(tmp_path)

    def unsupported(*_args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    assert _within(20, rewrite_to, str(tmp_path / "a.apr"), source, plan) == "sendfile"
    monkeypatch.setattr(os, "sendfile", unsupported)
    assert _within(20, rewrite_to, str(tmp_path / "b.apr"), source, plan) == "read/write"
    assert (tmp_path / "a.apr").read_bytes() == (tmp_path / "b.apr").read_bytes() == _expected(source, plan)


def _damage(source) -> None:
    raw = bytearray(Path(source.path).read_bytes())
    raw[-5] ^= 0x01  # the last data byte: the stored footer no longer matches
    Path(source.path).write_bytes(bytes(raw))


def test_rewrite_to_with_a_check_refuses_a_damaged_input_and_writes_nothing(tmp_path) -> None:
    source, plan = _input(tmp_path)
    _damage(source)
    with pytest.raises(DamagedInputError):
        _within(20, rewrite_to, str(tmp_path / "out.apr"), source, plan, check=CopyCheck())
    assert os.listdir(tmp_path) == ["in.apr"]
    salvage = CopyCheck(allow_damaged=True)
    _within(20, rewrite_to, str(tmp_path / "out.apr"), source, plan, check=salvage)
    assert salvage.damage is not None and salvage.damage.footer_computed == zlib.crc32(
        Path(source.path).read_bytes()[:-4])
    assert (tmp_path / "out.apr").read_bytes() == _expected(source, plan)


def test_rewrite_to_without_a_check_reads_no_data_for_a_crc(tmp_path) -> None:
    source, plan = _input(tmp_path)
    _damage(source)
    with mock.patch.object(rewrite, "SourceCrc", side_effect=AssertionError("no CRC thread without a check")):
        _within(20, rewrite_to, str(tmp_path / "out.apr"), source, plan)
    assert (tmp_path / "out.apr").read_bytes() == _expected(source, plan)


def test_rewrite_to_verifies_the_temporary_against_the_input_descriptor(tmp_path) -> None:
    source, plan = _input(tmp_path)
    seen: list[tuple] = []
    real_verify = rewrite.verify_stamped

    def spy(path, plan_, source_, fd):
        seen.append((os.path.dirname(path), plan_, source_, os.readlink(f"/proc/self/fd/{fd}")))
        return real_verify(path, plan_, source_, fd)

    with mock.patch.object(rewrite, "verify_stamped", spy):
        _within(20, rewrite_to, str(tmp_path / "out.apr"), source, plan)
    assert seen == [(str(tmp_path), plan, source, source.path)]


def test_rewrite_to_where_the_platform_lacks_o_cloexec(tmp_path, monkeypatch) -> None:
    source, plan = _input(tmp_path)
    real_open = os.open
    opened: list[int] = []

    def spy(p, flags, *args, **kwargs):
        if os.fspath(p) == source.path:
            opened.append(flags)
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    _within(20, rewrite_to, str(tmp_path / "first.apr"), source, plan)
    assert opened[0] == os.O_RDONLY | os.O_CLOEXEC  # the input is not inherited by children
    opened.clear()
    monkeypatch.delattr(os, "O_CLOEXEC")
    _within(20, rewrite_to, str(tmp_path / "out.apr"), source, plan)
    assert opened[0] == os.O_RDONLY and (tmp_path / "out.apr").read_bytes() == _expected(source, plan)


def test_read_into_reads_straight_into_the_buffer_where_preadv_exists(tmp_path, monkeypatch) -> None:
    """preadv fills the reused buffer in place: no fresh bytes object per piece (the point of SourceCrc's buffer)."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        monkeypatch.setattr(os, "pread", lambda *_args: pytest.fail("pread used although preadv exists"))
        buffer = memoryview(bytearray(3))
        assert rewrite._read_into(fd, buffer, 5) == 3 and bytes(buffer) == b"567"
    finally:
        os.close(fd)


@pytest.mark.parametrize("call", ["copy_file_range", "sendfile"])
def test_kernel_copies_start_writeback_of_exactly_the_range_each_call_wrote(tmp_path, monkeypatch, call) -> None:
    data = os.urandom(5000)
    advised: list[tuple[int, int]] = []

    def unsupported(*_args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    if call == "sendfile":
        monkeypatch.setattr(os, "copy_file_range", unsupported)
    monkeypatch.setattr(rewrite, "_KERNEL_CALL_MAX", 2000)
    monkeypatch.setattr(rewrite, "_start_writeback", lambda fd, offset, length: advised.append((offset, length)))
    method, out = _copy(tmp_path, data, 100, 30, 4500)
    assert method == call and out[30:] == data[100:4600]
    assert advised == [(30, 2000), (2030, 2000), (4030, 500)]
