"""`apr stamp -o` copies in ranges and starts each range's writeback as it is copied, so the disk
writes beside the copy instead of all at the closing fsync (issue 17: ``stamp -o`` against
``cp`` + ``sync``). Writeback is advice: the bytes copied are the same whatever the range size or
the copy method, every copied byte's writeback is asked for exactly once, and a refused advice
changes nothing but the speed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.stamp import rewrite
from tests.stamp.deadline import within as _within

CALLS = ("copy_file_range", "sendfile", "read/write")


def _copy(tmp_path: Path, data: bytes, src_off: int, dst_off: int, count: int) -> tuple[str, bytes]:
    src_path, dst_path = tmp_path / "src", tmp_path / "dst"
    src_path.write_bytes(data)
    dst_path.write_bytes(b"")
    src, dst = os.open(src_path, os.O_RDONLY), os.open(dst_path, os.O_RDWR)
    try:  # with a deadline: a copy loop that never ends fails the test instead of hanging the suite
        method = _within(20, rewrite.copy_range, src, dst, src_off, dst_off, count)
    finally:
        os.close(src)
        os.close(dst)
    return method, dst_path.read_bytes()


def _force(monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    """Make ``copy_range`` take ``call``: the kernel calls before it report 'unsupported here'."""
    def unsupported(*_args: object) -> int:
        raise OSError(errno.ENOSYS, "not here")
    for earlier in CALLS[:CALLS.index(call)]:
        monkeypatch.setattr(os, earlier, unsupported)


@settings(max_examples=25, deadline=None)
@given(call=st.sampled_from(CALLS), size=st.integers(0, 5000), src_off=st.integers(0, 300),
       dst_off=st.integers(0, 300), kernel_max=st.integers(1, 2048), chunk=st.integers(1, 2048))
def test_every_copied_byte_is_written_back_once_and_the_copy_is_exact(tmp_path_factory, call, size, src_off, dst_off,
                                                                        kernel_max, chunk):
    tmp_path = tmp_path_factory.mktemp("copy")
    data = os.urandom(src_off + size)
    asked: list[tuple[int, int]] = []
    real_fadvise = os.posix_fadvise

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        asked.append((offset, length))
        real_fadvise(fd, offset, length, advice)

    with pytest.MonkeyPatch.context() as patch:
        _force(patch, call)
        patch.setattr(rewrite, "_KERNEL_CALL_MAX", kernel_max)
        patch.setattr(rewrite, "CHUNK_SIZE", chunk)
        patch.setattr(os, "posix_fadvise", fadvise)
        method, out = _copy(tmp_path, data, src_off, dst_off, size)
    assert method == call or size == 0  # nothing to copy: the first method "succeeds" without a call
    assert out[dst_off:] == data[src_off:] and len(out) == (dst_off + size if size else 0)
    # the ranges asked for tile the destination's copied bytes, in order, none twice, none empty
    assert all(length > 0 for _, length in asked)
    covered = [offset for offset, length in asked for offset in range(offset, offset + length)]
    assert covered == list(range(dst_off, dst_off + size))


def test_a_refused_or_missing_advice_changes_nothing_but_the_speed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = os.urandom(10_000)

    def refuse(*_args: object) -> None:
        raise OSError(errno.ESPIPE, "Illegal seek")

    monkeypatch.setattr(rewrite, "_KERNEL_CALL_MAX", 3000)
    monkeypatch.setattr(os, "posix_fadvise", refuse)
    assert _copy(tmp_path, data, 0, 0, len(data))[1] == data
    monkeypatch.delattr(os, "posix_fadvise")
    assert _copy(tmp_path, data, 100, 7, 9000)[1][7:] == data[100:9100]
