"""The atomic write: a failed write never replaces a good file and never leaves a temporary."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import apr.format.writer as writer
from apr.errors import AprFileNotFoundError, AprIOError, TensorInputError
from apr.format import load_file, save, save_file
from apr.format.atomic import atomic_write, remove_stale_temporaries, temporary_prefix

GOOD = {"w": np.arange(1000, dtype=np.float32)}


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "model.apr"
    save_file(GOOD, path)
    return path


def _only(path: Path) -> list[str]:
    return sorted(os.listdir(path.parent))


def test_save_file_writes_exactly_save(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    save_file(GOOD, path, {"architecture": "llama"})
    assert path.read_bytes() == save(GOOD, {"architecture": "llama"})
    assert _only(path) == ["m.apr"]


def test_new_file_gets_umask_permissions_and_existing_keeps_its_own(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    old = os.umask(0o022)
    try:
        save_file(GOOD, path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    save_file(GOOD, path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_failure_midway_through_the_stream_keeps_the_old_file(existing: Path, monkeypatch) -> None:
    before = existing.read_bytes()
    real = writer.write_stream

    def broken(handle, planned, prefix):  # writes part of the file, then fails
        handle.write(prefix)
        raise RuntimeError("simulated crash after the prefix")

    monkeypatch.setattr(writer, "write_stream", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        save_file({"other": np.zeros(10, np.float32)}, existing)
    assert existing.read_bytes() == before
    assert _only(existing) == ["model.apr"]
    monkeypatch.setattr(writer, "write_stream", real)


def test_enospc_is_an_io_error_and_keeps_the_old_file(existing: Path, monkeypatch) -> None:
    before = existing.read_bytes()
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(AprIOError, match="no space left") as info:
        save_file({"other": np.zeros(10, np.float32)}, existing)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert info.value.path == str(existing) and info.value.hint
    assert isinstance(info.value.__cause__, OSError)
    assert existing.read_bytes() == before
    assert _only(existing) == ["model.apr"]


def test_write_error_from_the_stream_is_an_io_error(existing: Path) -> None:
    before = existing.read_bytes()
    with pytest.raises(AprIOError, match="permission"):
        with atomic_write(existing) as handle:
            handle.write(b"partial")
            raise PermissionError(errno.EACCES, "permission denied")
    assert existing.read_bytes() == before
    assert _only(existing) == ["model.apr"]


def test_bad_tensor_is_refused_before_any_file_is_created(existing: Path) -> None:
    before = existing.read_bytes()
    with pytest.raises(TensorInputError):
        save_file({"ok": np.zeros(3), "bad": np.zeros(3, dtype=bool)}, existing)
    assert existing.read_bytes() == before
    assert _only(existing) == ["model.apr"]


def test_failed_verification_keeps_the_old_file(existing: Path) -> None:
    before = existing.read_bytes()

    def reject(tmp: str) -> None:
        assert os.path.basename(tmp).startswith(temporary_prefix(existing))
        raise ValueError("verification failed")

    with pytest.raises(ValueError, match="verification"):
        with atomic_write(existing, verify=reject) as handle:
            handle.write(b"new content")
    assert existing.read_bytes() == before
    assert _only(existing) == ["model.apr"]


def test_missing_output_folder(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "m.apr"
    with pytest.raises(AprFileNotFoundError) as info:
        save_file(GOOD, target)
    assert "mkdir -p" in (info.value.hint or "")
    assert not (tmp_path / "no").exists()


def test_replace_is_complete(existing: Path) -> None:
    save_file({"v": np.ones(3, np.int8)}, existing)
    assert list(load_file(existing)) == ["v"]


def test_stale_temporaries_from_a_killed_writer_are_removed(existing: Path) -> None:
    stray = existing.parent / (temporary_prefix(existing) + "abc123")
    stray.write_bytes(b"half")
    unrelated = existing.parent / "notes.txt"
    unrelated.write_text("keep")
    assert remove_stale_temporaries(existing) == [stray.name]
    assert _only(existing) == ["model.apr", "notes.txt"]
