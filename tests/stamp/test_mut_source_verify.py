"""`apr.stamp.source` and `apr.stamp.verify` (issue 23): what a stamp reads from its input, and the
read-back check that stands between a wrong output and the rename over a good file.

Each verification failure is produced by changing exactly one thing the plan or the output says
(size, flags, metadata, index, prefix bytes, footer, a sampled data byte) and must be named; a
correct output must pass. Expected values come from the file's own bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from apr.errors import AprIOError, HeaderError, StampVerificationError, WrongFormatError
from apr.format.header import parse_header
from apr.stamp import ProvenancePatch, rewrite, source, verify
from apr.stamp import file as stamp_module
from apr.stamp.source import pread_exact, read_source
from apr.stamp.verify import verify_stamped
from stamp_builders import write_checkpoint

PATCH = ProvenancePatch(license="MIT", name="tiny")


def _checkpoint(tmp_path: Path, *, big: bool = False) -> Path:
    tensors = {"w": np.arange(3000, dtype=np.float32)} if big else None  # 12 000 data bytes: > 2 samples
    return Path(write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "LlamaForCausalLM"}, flags=0x0001,
                                 tensors=tensors, names=("w",) if big else ("a", "b")))


# --- source ------------------------------------------------------------------------------------------


def test_read_source_reads_the_prefix_footer_size_and_identity(tmp_path) -> None:
    path = _checkpoint(tmp_path)
    raw = path.read_bytes()
    length = parse_header(raw[:64]).data_offset
    got = read_source(str(path))
    assert got.path == str(path) and got.prefix == raw[:length]
    assert got.footer == int.from_bytes(raw[-4:], "little") and got.size == len(raw)
    assert got.inode == path.stat().st_ino and got.header.data_offset == length
    assert got.header.flags == parse_header(raw[:64]).flags
    assert got.metadata["architecture"] == "LlamaForCausalLM" and [e.name for e in got.entries] == ["a", "b"]
    assert got.data_length == len(raw) - 4 - length


def test_read_source_uses_the_descriptor_given_and_leaves_it_open(tmp_path) -> None:
    path = _checkpoint(tmp_path)
    real_open = os.open
    opened: list[str] = []

    def spy(p, *args, **kwargs):
        opened.append(os.fspath(p))
        return real_open(p, *args, **kwargs)

    with mock.patch.object(os, "open", spy):
        read_source(str(path))
    alone = opened.count(str(path))
    opened.clear()
    fd = os.open(path, os.O_RDONLY)
    try:
        with mock.patch.object(os, "open", spy):
            got = read_source(str(path), fd)
        assert opened.count(str(path)) == alone - 1  # the reader's own open only
        assert got.prefix == path.read_bytes()[: got.header.data_offset]
        os.fstat(fd)  # still open
    finally:
        os.close(fd)


def test_read_source_closes_the_descriptor_it_opens(tmp_path) -> None:
    path = _checkpoint(tmp_path)
    real_open, real_close = os.open, os.close
    events: list[tuple[str, int, int]] = []

    def open_spy(p, flags, *args, **kwargs):
        fd = real_open(p, flags, *args, **kwargs)
        if os.fspath(p) == str(path):
            events.append(("open", fd, flags))
        return fd

    def close_spy(fd):
        events.append(("close", fd, 0))
        real_close(fd)

    with mock.patch.object(os, "open", open_spy), mock.patch.object(os, "close", close_spy):
        read_source(str(path))
    last_open = max(i for i, event in enumerate(events) if event[0] == "open")
    _kind, fd, flags = events[last_open]
    assert flags & os.O_ACCMODE == os.O_RDONLY and flags & os.O_CLOEXEC
    assert ("close", fd, 0) in events[last_open + 1 :]  # closed after it was opened (fd numbers are reused)


def test_read_source_refuses_a_prefix_over_the_limit(tmp_path, monkeypatch) -> None:
    assert source.MAX_PREFIX_SIZE == 512 * 1024 * 1024
    path = _checkpoint(tmp_path)
    length = parse_header(path.read_bytes()[:64]).data_offset
    monkeypatch.setattr(source, "MAX_PREFIX_SIZE", length)
    assert read_source(str(path)).header.data_offset == length  # at the limit: read
    monkeypatch.setattr(source, "MAX_PREFIX_SIZE", length - 1)
    with pytest.raises(HeaderError) as refused:
        read_source(str(path))
    assert refused.value.message == f"data_offset {length} is over the {length - 1}-byte prefix limit"
    assert refused.value.offset == 32 and refused.value.path == str(path)
    assert refused.value.hint == "the header is corrupt; restore the file from its source"


def test_read_source_failures(tmp_path) -> None:
    path = _checkpoint(tmp_path)
    real_open = os.open
    calls = {"n": 0}

    def refusing(p, *args, **kwargs):  # the reader's open succeeds; read_source's own is refused
        if os.fspath(p) == str(path):
            calls["n"] += 1
            if calls["n"] == 2:
                raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(p, *args, **kwargs)

    with mock.patch("apr.stamp.source.os.open", refusing), pytest.raises(AprIOError) as failed:
        read_source(str(path))
    assert failed.value.message == "cannot open file: Permission denied" and failed.value.path == str(path)
    assert calls["n"] == 2 and isinstance(failed.value.__cause__, PermissionError)
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, path.stat().st_size + 1)  # grows after the reader has looked at it
        with mock.patch.object(source, "open_file", _stale_reader(path, path.stat().st_size - 1)), \
                pytest.raises(AprIOError) as failed:
            read_source(str(path), fd)
    finally:
        os.close(fd)
    assert failed.value.message == "file changed size while being read" and failed.value.path == str(path)
    assert failed.value.hint == "another program is writing this file; retry when it is done"


def _stale_reader(path: Path, size: int):
    from apr.format.reader import open_file

    class Stale:
        def __init__(self, _path):
            self._inner = open_file(str(path))

        def __enter__(self):
            reader = self._inner.__enter__()
            return type("R", (), {"header": reader.header, "metadata": reader.metadata, "entries": reader.entries,
                                  "file_size": size})()

        def __exit__(self, *exc):
            return self._inner.__exit__(*exc)

    return Stale


def test_pread_exact_collects_short_reads_and_refuses_an_early_end(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    real_pread = os.pread
    asked: list[tuple[int, int]] = []

    def trickle(fd_, n, offset):
        asked.append((n, offset))
        return real_pread(fd_, min(n, 3), offset)

    try:
        with mock.patch.object(os, "pread", trickle):
            assert pread_exact(fd, 7, 2, "f") == b"2345678"
        assert asked == [(7, 2), (4, 5), (1, 8)]
        assert pread_exact(fd, 0, 0, "f") == b""
        with pytest.raises(AprIOError) as failed:
            pread_exact(fd, 5, 8, "the file")
    finally:
        os.close(fd)
    assert failed.value.message == "file shrank while being read (at byte 10)" and failed.value.path == "the file"
    assert failed.value.hint == "another program is writing this file; retry when it is done"


# --- verify ------------------------------------------------------------------------------------------


def _stamped(tmp_path: Path, *, big: bool = False, patch: ProvenancePatch = PATCH):
    """(source, plan, the output path) of a correct ``-o`` stamp."""
    path = _checkpoint(tmp_path, big=big)
    src = read_source(str(path))
    plan = stamp_module._plan(src, patch)
    out = tmp_path / "out.apr"
    rewrite.rewrite_to(str(out), src, plan)
    return src, plan, out


def _failure(out: Path, plan, src, source_fd: int | None = None) -> str:
    with pytest.raises(StampVerificationError) as failed:
        verify_stamped(str(out), plan, src, source_fd)
    error = failed.value
    assert error.path == str(out)
    assert error.hint == "nothing was replaced; check the disk (`dmesg`) and retry, or report a bug"
    prefix = "stamped output failed verification: "
    assert error.message.startswith(prefix)
    return error.message[len(prefix):]


def test_a_correct_output_passes(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path)
    verify_stamped(str(out), plan, src)
    (tmp_path / "grown").mkdir()
    grown_src, grown_plan, grown = _stamped(tmp_path / "grown", patch=ProvenancePatch(description="d" * 6000))
    assert grown_plan.header.data_offset != grown_plan.old_data_offset  # the data moved: offsets differ
    verify_stamped(str(grown), grown_plan, grown_src)


def test_each_planned_property_is_checked(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path)
    size = out.stat().st_size
    assert _failure(out, dataclasses.replace(plan, data_length=plan.data_length + 1), src) == (
        f"size is {size}, expected {size + 1}")
    assert _failure(out, dataclasses.replace(plan, flags=plan.flags ^ 0x2), src) == (
        f"flags are 0x{plan.flags:04x}, expected 0x{plan.flags ^ 0x2:04x}")
    assert _failure(out, dataclasses.replace(plan, metadata={**plan.metadata, "name": "other"}), src) == (
        "metadata does not read back as planned")
    wrong_prefix = plan.prefix[:-1] + bytes([plan.prefix[-1] ^ 1])  # in the padding: reads back the same
    assert _failure(out, dataclasses.replace(plan, prefix=wrong_prefix), src) == (
        "the header, metadata or index bytes differ from the plan")
    assert _failure(out, dataclasses.replace(plan, footer=plan.footer ^ 0x10), src) == (
        f"footer CRC is 0x{plan.footer:08x}, expected 0x{plan.footer ^ 0x10:08x}")


@pytest.mark.parametrize("field", ["name", "dtype", "shape", "offset", "size"])
def test_the_tensor_index_is_compared_field_by_field(tmp_path, field) -> None:
    src, plan, out = _stamped(tmp_path)
    first = src.entries[0]
    changed = {"name": "zz", "dtype": "F16" if first.dtype != "F16" else "F32", "shape": (*first.shape, 1),
               "offset": first.offset + 64, "size": first.size + 4}[field]
    entries = [dataclasses.replace(first, **{field: changed}), *src.entries[1:]]
    assert _failure(out, plan, dataclasses.replace(src, entries=entries)) == "the tensor index differs from the input's"


def test_the_first_and_last_data_bytes_are_sampled(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path, big=True)
    good = out.read_bytes()
    start, length = plan.header.data_offset, plan.data_length
    assert length > 2 * 4096
    for index, at in ((start, start), (start + 4095, start), (start + length - 1, start + length - 4096),
                      (start + length - 4096, start + length - 4096)):
        damaged = bytearray(good)
        damaged[index] ^= 0x01
        out.write_bytes(bytes(damaged))
        assert _failure(out, plan, src) == f"tensor data at output byte {at} differs from the input's", index
    damaged = bytearray(good)
    damaged[start + 4096] ^= 0x01  # between the samples: not re-read (the footer algebra covers it)
    out.write_bytes(bytes(damaged))
    verify_stamped(str(out), plan, src)


def test_in_place_the_data_section_is_not_reread(tmp_path) -> None:
    path = _checkpoint(tmp_path, big=True)
    src = read_source(str(path))
    plan = stamp_module._plan(src, PATCH)
    out_fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(out_fd, plan.prefix, 0)
        os.pwrite(out_fd, plan.footer.to_bytes(4, "little"), src.size - 4)
    finally:
        os.close(out_fd)
    reads: list[int] = []
    real_pread_exact = verify.pread_exact

    def spy(fd, n, offset, where):
        reads.append(offset)
        return real_pread_exact(fd, n, offset, where)

    with mock.patch.object(verify, "pread_exact", spy):
        verify_stamped(str(path), plan, src)
    assert reads == [0, src.size - 4]  # the prefix and the footer only


def test_the_source_descriptor_given_is_used_and_left_open(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path, big=True)
    fd = os.open(src.path, os.O_RDONLY)
    real_open = os.open
    opened: list[str] = []

    def spy(p, *args, **kwargs):
        opened.append(os.fspath(p))
        return real_open(p, *args, **kwargs)

    try:
        with mock.patch.object(os, "open", spy):
            verify_stamped(str(out), plan, src, fd)
        assert src.path not in opened
        os.fstat(fd)
    finally:
        os.close(fd)
    damaged = bytearray(out.read_bytes())
    damaged[plan.header.data_offset] ^= 1
    out.write_bytes(bytes(damaged))
    fd = os.open(src.path, os.O_RDONLY)
    try:
        assert _failure(out, plan, src, fd).startswith("tensor data at output byte")
    finally:
        os.close(fd)


def test_verify_closes_what_it_opens(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path)
    real_open, real_close = os.open, os.close
    opened, closed = [], []

    def open_spy(p, *args, **kwargs):
        fd = real_open(p, *args, **kwargs)
        opened.append(fd)
        return fd

    def close_spy(fd):
        closed.append(fd)
        real_close(fd)

    with mock.patch.object(verify.os, "open", open_spy), mock.patch.object(verify.os, "close", close_spy):
        verify_stamped(str(out), plan, src)
    assert len(opened) >= 2 and set(opened) <= set(closed)


def test_an_output_that_does_not_read_back_or_cannot_be_read(tmp_path) -> None:
    src, plan, out = _stamped(tmp_path)
    raw = bytearray(out.read_bytes())
    raw[0:4] = b"GGUF"
    out.write_bytes(bytes(raw))
    why = _failure(out, plan, src)
    assert why.startswith("it does not read back: ") and len(why) > len("it does not read back: ")
    with mock.patch.object(verify, "open_file", side_effect=WrongFormatError("nope", detected="gguf")):
        assert _failure(out, plan, src) == "it does not read back: nope"
    io = AprIOError("cannot read", path=str(out))
    with mock.patch.object(verify, "open_file", side_effect=io), pytest.raises(AprIOError) as failed:
        verify_stamped(str(out), plan, src)
    assert failed.value is io  # an I/O failure stays one (exit 7), not a wrong result


def test_read_source_where_the_platform_lacks_o_cloexec(tmp_path, monkeypatch) -> None:
    path = _checkpoint(tmp_path)
    real_open = os.open
    opened: list[int] = []

    def spy(p, flags, *args, **kwargs):
        if os.fspath(p) == str(path):
            opened.append(flags)
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.delattr(os, "O_CLOEXEC")
    monkeypatch.setattr(os, "open", spy)
    assert read_source(str(path)).size == path.stat().st_size
    assert opened[-1] == os.O_RDONLY


@pytest.mark.parametrize("where", ["prefix", "footer", "input-data", "output-data"])
def test_a_file_that_shrinks_during_verification_is_an_io_error_naming_it(tmp_path, where) -> None:
    """The reader has accepted both files; then a read comes back empty (another program truncated one)."""
    src, plan, out = _stamped(tmp_path, big=True)
    real_open_file, real_pread = verify.open_file, os.pread
    armed = [False]

    @contextlib.contextmanager
    def open_file(path):
        with real_open_file(path) as reader:
            yield reader
        armed[0] = True  # only verify's own reads shrink

    def pread(fd, n, offset):
        name = os.readlink(f"/proc/self/fd/{fd}")
        shrunk = {"prefix": name == str(out) and offset == 0,
                  "footer": name == str(out) and offset == out.stat().st_size - 4,
                  "input-data": name == src.path and offset == plan.old_data_offset,
                  "output-data": name == str(out) and offset == plan.header.data_offset}[where]
        return b"" if armed[0] and shrunk else real_pread(fd, n, offset)

    with mock.patch.object(verify, "open_file", open_file), mock.patch.object(os, "pread", pread), \
            pytest.raises(AprIOError) as failed:
        verify_stamped(str(out), plan, src)
    expected = src.path if where == "input-data" else str(out)
    assert failed.value.path == expected and failed.value.message.startswith("file shrank while being read")


@pytest.mark.parametrize("where", ["prefix", "footer"])
def test_read_source_of_a_file_that_shrinks_names_it(tmp_path, where) -> None:
    path = _checkpoint(tmp_path)
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    real_pread = os.pread

    def pread(fd_, n, offset):
        hit = fd_ == fd and (offset == 0 if where == "prefix" else offset == size - 4)
        return b"" if hit else real_pread(fd_, n, offset)

    try:
        with mock.patch.object(os, "pread", pread), pytest.raises(AprIOError) as failed:
            read_source(str(path), fd)
    finally:
        os.close(fd)
    assert failed.value.path == str(path) and failed.value.message.startswith("file shrank while being read")
