"""`apr.format.atomic` failure by failure: each OSError or crash is injected in-process at one chosen
point (the temporary's creation, its chmod, the write, the fsync, the rename, the verification), and
the on-disk outcome is asserted exactly: the previous file byte-identical, no temporary left, the
error's class, exit code, message and the path it names. Success paths are checked against
independent facts: which inodes were fsynced, the temporary's folder and name, the permissions a
new file gets under a given umask, and which strays of which writer are removed (issue 23)."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

import apr.format.atomic as atomic
from apr.errors import AprFileNotFoundError, AprIOError
from apr.format.atomic import (
    atomic_path,
    atomic_write,
    is_dead_writer,
    remove_stale_temporaries,
    temporary_prefix,
)

OLD = b"the previous, good file"
NEW = b"the new content, longer than the old one"
NOTE = "the existing file (if any) is unchanged"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "out.bin"
    path.write_bytes(OLD)
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _temporary(target: Path) -> str:
    """The one temporary of ``target`` in its folder (inside an `atomic_write` block)."""
    (name,) = [n for n in os.listdir(target.parent) if n.startswith(f".{target.name}.tmp-")]
    return str(target.parent / name)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Record (inode, is a folder) of every descriptor fsynced, then fsync it for real."""
    seen: list[tuple[int, bool]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        seen.append((info.st_ino, stat.S_ISDIR(info.st_mode)))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


# --- temporary names and places --------------------------------------------------------------------


def test_temporary_prefix_is_dot_basename_tmp() -> None:
    assert temporary_prefix("/some/folder/model.apr") == ".model.apr.tmp-"
    assert temporary_prefix(Path("rel/x")) == ".x.tmp-"


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_the_temporary_lies_beside_the_target_and_carries_this_pid(target: Path, writer) -> None:
    seen: list[str] = []

    def verify(tmp: str) -> None:
        seen.append(tmp)

    with writer(target, verify=verify) as handle:
        name = handle if isinstance(handle, str) else _temporary(target)
        assert os.path.dirname(name) == str(target.parent)
        assert re.fullmatch(rf"\.out\.bin\.tmp-{os.getpid()}-\S+", os.path.basename(name))
        if isinstance(handle, str):
            Path(handle).write_bytes(NEW)
        else:
            handle.write(NEW)
        assert target.read_bytes() == OLD  # nothing visible before the block completes
    assert seen == [name]
    assert target.read_bytes() == NEW and _listing(target.parent) == ["out.bin"]


def test_a_relative_target_is_written_in_the_current_folder(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with atomic_write("rel.bin") as handle:
        handle.write(NEW)
    with atomic_path("rel2.bin") as tmp:
        Path(tmp).write_bytes(OLD)
    assert (tmp_path / "rel.bin").read_bytes() == NEW
    assert (tmp_path / "rel2.bin").read_bytes() == OLD
    assert _listing(tmp_path) == ["rel.bin", "rel2.bin"]


def test_verify_sees_the_complete_flushed_temporary(target: Path) -> None:
    seen: list[bytes] = []
    with atomic_write(target, verify=lambda tmp: seen.append(Path(tmp).read_bytes())) as handle:
        handle.write(NEW)
    assert seen == [NEW]
    with atomic_write(target, durable=False, verify=lambda tmp: seen.append(Path(tmp).read_bytes())) as handle:
        handle.write(OLD)
    assert seen == [NEW, OLD] and target.read_bytes() == OLD


# --- permissions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_a_new_file_gets_0666_less_the_umask_and_the_umask_is_kept(tmp_path: Path, writer, umask: int,
                                                                   mode: int) -> None:
    path = tmp_path / "new.bin"
    old = os.umask(umask)
    try:
        with writer(path) as handle:
            if isinstance(handle, str):
                Path(handle).write_bytes(NEW)
            else:
                handle.write(NEW)
        after = os.umask(old)
    finally:
        os.umask(old)
    assert after == umask
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o600, 0o751, 0o4755, 0o1644, 0o2700])
def test_an_existing_file_keeps_its_permission_bits(target: Path, mode: int) -> None:
    os.chmod(target, mode)
    with atomic_write(target) as handle:
        handle.write(NEW)
    assert stat.S_IMODE(target.stat().st_mode) == mode and target.read_bytes() == NEW


# --- durability: what is fsynced ---------------------------------------------------------------------


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_durable_fsyncs_the_file_then_its_folder(target: Path, writer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_fsyncs(monkeypatch)
    with writer(target) as handle:
        if isinstance(handle, str):
            Path(handle).write_bytes(NEW)
        else:
            handle.write(NEW)
    folder = os.stat(target.parent).st_ino
    assert seen == [(target.stat().st_ino, False), (folder, True)]
    assert target.read_bytes() == NEW


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_not_durable_fsyncs_nothing(target: Path, writer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_fsyncs(monkeypatch)
    with writer(target, durable=False) as handle:
        if isinstance(handle, str):
            Path(handle).write_bytes(NEW)
        else:
            handle.write(NEW)
    assert seen == [] and target.read_bytes() == NEW


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_no_descriptor_is_leaked_on_success_or_failure(target: Path, writer) -> None:
    before = _open_fds()
    with writer(target) as handle:
        if not isinstance(handle, str):
            handle.write(NEW)
    with pytest.raises(ValueError), writer(target) as handle:
        raise ValueError("stop")
    assert _open_fds() == before


def test_a_folder_that_cannot_be_fsynced_still_gets_the_file(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync
    refused: list[int] = []

    def no_folder_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd)

    monkeypatch.setattr(os, "fsync", no_folder_fsync)
    before = _open_fds()
    with atomic_write(target) as handle:
        handle.write(NEW)
    assert len(refused) == 1 and _open_fds() == before
    assert target.read_bytes() == NEW and _listing(target.parent) == ["out.bin"]


def test_a_folder_that_cannot_be_opened_still_gets_the_file(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.open
    folders: list[str] = []

    def no_folder_open(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            folders.append(os.fspath(path))
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_folder_open)
    with atomic_write(target) as handle:
        handle.write(NEW)
    assert folders == [str(target.parent)]
    assert target.read_bytes() == NEW and _listing(target.parent) == ["out.bin"]


# --- failures: the previous file stays, no temporary, the error names the output ------------------


def test_missing_folder_is_not_found_naming_the_target(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "out.bin"
    with pytest.raises(AprFileNotFoundError) as info, atomic_write(path):
        pytest.fail("the block must not run")
    err = info.value
    assert err.exit_code == 3 and err.path == str(path)
    assert err.message == f"output folder does not exist: {tmp_path / 'absent'}"
    assert err.hint == f"create it first: mkdir -p {tmp_path / 'absent'}"
    assert _listing(tmp_path) == []


def test_a_temporary_that_cannot_be_created_is_an_io_error(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(AprIOError) as info, atomic_write(target):
        pytest.fail("the block must not run")
    err = info.value
    assert err.exit_code == 7 and err.path == str(target) and err.errno == errno.EROFS
    assert err.message.startswith(f"cannot create a file in {target.parent}: ")
    assert err.message.endswith(f"; {NOTE}")
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.EROFS
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_a_failed_chmod_removes_the_temporary_and_closes_it(target: Path, writer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int, mode: int) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    before = _open_fds()
    with pytest.raises(OSError) as info, writer(target):
        pytest.fail("the block must not run")
    assert info.value.errno == errno.EPERM
    assert _open_fds() == before
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


def test_a_failed_chmod_keeps_the_error_when_the_unlink_fails_too(target: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: (_ for _ in ()).throw(OSError(errno.EPERM, "no")))
    real_unlink = os.unlink
    asked: list[str] = []

    def unlink(path, *args, **kwargs):
        asked.append(os.fspath(path))
        raise OSError(errno.EBUSY, "busy")

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(OSError) as info, atomic_write(target):
        pytest.fail("the block must not run")
    assert info.value.errno == errno.EPERM
    assert len(asked) == 1 and os.path.basename(asked[0]).startswith(".out.bin.tmp-")
    real_unlink(asked[0])
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
@pytest.mark.parametrize("point", ["fsync", "replace"])
def test_an_os_error_of_the_write_keeps_the_old_file_and_names_the_output(target: Path, writer, point: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, point, broken)
    with pytest.raises(AprIOError) as info, writer(target) as handle:
        if isinstance(handle, str):
            Path(handle).write_bytes(NEW)
        else:
            handle.write(NEW)
    err = info.value
    assert err.exit_code == 7 and err.path == str(target) and err.errno == errno.ENOSPC
    assert err.message.startswith("cannot write: ") and err.message.endswith(f"; {NOTE}")
    assert isinstance(err.__cause__, OSError) and not isinstance(err.__cause__, AprIOError)
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


def test_a_write_error_naming_the_temporary_reports_the_output(target: Path) -> None:
    with pytest.raises(AprIOError) as info, atomic_write(target) as handle:
        handle.write(b"half")
        raise OSError(errno.EIO, "Input/output error", _temporary(target))
    assert info.value.path == str(target) and info.value.message.startswith("cannot write: ")
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


@pytest.mark.parametrize("spelling", [str, os.fsencode, Path])
def test_an_os_error_naming_the_target_in_any_spelling_is_a_write_error(target: Path, spelling) -> None:
    with pytest.raises(AprIOError) as info, atomic_path(target):
        raise OSError(errno.EIO, "Input/output error", spelling(str(target)))
    assert info.value.path == str(target) and info.value.message.startswith("cannot write: ")
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


def test_a_relative_name_of_the_target_is_a_write_error(tmp_path: Path, target: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AprIOError) as info, atomic_write("out.bin"):
        raise OSError(errno.EIO, "Input/output error", "out.bin")
    assert info.value.path == str(target)
    assert target.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


def test_an_os_error_about_another_file_passes_through_unchanged(target: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    original = FileNotFoundError(errno.ENOENT, "No such file or directory", str(source))
    with pytest.raises(FileNotFoundError) as info, atomic_write(target) as handle:
        handle.write(b"half")
        raise original
    assert info.value is original and not isinstance(info.value, AprIOError)
    assert target.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_a_project_error_raised_in_the_block_is_not_rewrapped(target: Path, writer) -> None:
    original = AprIOError("cannot read the source: broken", path="/elsewhere/src.bin")
    with pytest.raises(AprIOError) as info, writer(target):
        raise original
    assert info.value is original
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
@pytest.mark.parametrize("error", [ValueError("bad"), KeyboardInterrupt(), SystemExit(3)])
def test_any_other_exception_passes_through_and_leaves_nothing(target: Path, writer, error) -> None:
    with pytest.raises(type(error)) as info, writer(target) as handle:
        if isinstance(handle, str):
            Path(handle).write_bytes(b"half")
        else:
            handle.write(b"half")
        raise error
    assert info.value is error
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_a_failed_verification_keeps_the_old_file(target: Path, writer) -> None:
    def reject(tmp: str) -> None:
        raise ValueError("verification failed")

    with pytest.raises(ValueError, match="verification failed"), writer(target, verify=reject) as handle:
        if isinstance(handle, str):
            Path(handle).write_bytes(NEW)
        else:
            handle.write(NEW)
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


def test_a_temporary_whose_unlink_fails_does_not_hide_the_error(target: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_unlink = os.unlink
    asked: list[str] = []

    def unlink(path, *args, **kwargs):
        asked.append(os.fspath(path))
        raise OSError(errno.EBUSY, "busy")

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(AprIOError) as info, atomic_write(target):
        raise OSError(errno.EIO, "Input/output error", _temporary(target))
    assert info.value.path == str(target) and len(asked) == 1
    real_unlink(asked[0])
    assert target.read_bytes() == OLD and _listing(target.parent) == ["out.bin"]


# --- strays of killed writers ------------------------------------------------------------------------


def test_is_dead_writer_reads_the_pid_after_the_prefix(dead_pid: int, live_pid: int) -> None:
    prefix = ".m.apr.tmp-"
    assert is_dead_writer(f"{prefix}{dead_pid}-abc", prefix) is True
    assert is_dead_writer(f"{prefix}{dead_pid}", prefix) is True  # the pid alone, to the end
    assert is_dead_writer(f"{prefix}{live_pid}-abc", prefix) is False
    assert is_dead_writer(f"{prefix}{os.getpid()}-abc", prefix) is False
    assert is_dead_writer(f"{prefix}{dead_pid}x", prefix) is False  # not this naming
    assert is_dead_writer(f"{prefix}abc{dead_pid}-", prefix) is False
    assert is_dead_writer(f"{prefix}", prefix) is False
    assert is_dead_writer(f"{prefix}{'9' * 30}-x", prefix) is False  # too large for a pid: OverflowError


def test_is_dead_writer_leaves_a_pid_it_may_not_signal(dead_pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        asked.append((pid, sig))
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    assert is_dead_writer(f".x.tmp-{dead_pid}-a", ".x.tmp-") is False
    assert asked == [(dead_pid, 0)]

    def other(pid: int, sig: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "kill", other)
    assert is_dead_writer(f".x.tmp-{dead_pid}-a", ".x.tmp-") is False


def test_is_dead_writer_signals_nothing_but_zero(dead_pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        asked.append((pid, sig))
        raise ProcessLookupError(errno.ESRCH, "No such process")

    monkeypatch.setattr(os, "kill", kill)
    assert is_dead_writer(f".x.tmp-{dead_pid}-a", ".x.tmp-") is True
    assert asked == [(dead_pid, 0)]


def test_a_write_removes_only_dead_writers_strays_of_its_own_target(target: Path, dead_pid: int,
                                                                    live_pid: int) -> None:
    folder = target.parent
    dead = folder / f".out.bin.tmp-{dead_pid}-abc"
    dead_folder = folder / f".out.bin.tmp-{dead_pid}-dir"
    live = folder / f".out.bin.tmp-{live_pid}-abc"
    odd = folder / ".out.bin.tmp-notapid"
    other = folder / f".other.bin.tmp-{dead_pid}-abc"
    for stray in (dead, live, odd, other):
        stray.write_bytes(b"half")
    dead_folder.mkdir()
    (dead_folder / "inner").write_bytes(b"x")
    with atomic_write(target) as handle:
        handle.write(NEW)
    assert _listing(folder) == sorted(["out.bin", live.name, odd.name, other.name])
    assert target.read_bytes() == NEW
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(OLD)
    assert _listing(folder) == sorted(["out.bin", live.name, odd.name, other.name])


def test_remove_stale_temporaries_all_or_dead_only(target: Path, dead_pid: int, live_pid: int) -> None:
    folder = target.parent
    names = [f".out.bin.tmp-{dead_pid}-a", f".out.bin.tmp-{live_pid}-b", ".out.bin.tmp-odd"]
    for name in names:
        (folder / name).write_bytes(b"half")
    (folder / ".out.bin.tmpx").write_bytes(b"not ours")
    (folder / "out.bin.tmp-1").write_bytes(b"not ours")
    assert remove_stale_temporaries(target, dead_only=True) == [names[0]]
    assert sorted(remove_stale_temporaries(str(target))) == sorted(names[1:])
    assert _listing(folder) == sorted([".out.bin.tmpx", "out.bin", "out.bin.tmp-1"])
    assert remove_stale_temporaries(target) == []


def test_remove_stale_temporaries_unlinks_a_link_to_a_folder_but_not_the_folder(target: Path,
                                                                               tmp_path: Path) -> None:
    elsewhere = tmp_path / "keep"
    elsewhere.mkdir()
    (elsewhere / "precious").write_bytes(b"keep me")
    link = tmp_path / ".out.bin.tmp-1-link"
    link.symlink_to(elsewhere, target_is_directory=True)
    tree = tmp_path / ".out.bin.tmp-2-tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_bytes(b"x")
    assert sorted(remove_stale_temporaries(target)) == [link.name, tree.name]
    assert (elsewhere / "precious").read_bytes() == b"keep me"
    assert _listing(tmp_path) == ["keep", "out.bin"]


def test_remove_stale_temporaries_skips_what_it_cannot_remove(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = target.parent
    for name in (".out.bin.tmp-1-a", ".out.bin.tmp-2-b"):
        (folder / name).write_bytes(b"half")
    real = os.unlink

    def unlink(path, *args, **kwargs):
        if os.fspath(path).endswith("-a"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        real(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    assert remove_stale_temporaries(target) == [".out.bin.tmp-2-b"]
    assert _listing(folder) == [".out.bin.tmp-1-a", "out.bin"]


@pytest.mark.parametrize("error", [FileNotFoundError, NotADirectoryError, PermissionError])
def test_remove_stale_temporaries_of_an_unlistable_folder_is_empty(tmp_path: Path, error,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert remove_stale_temporaries(tmp_path / "absent" / "out.bin") == []
    (tmp_path / "file").write_bytes(b"")
    assert remove_stale_temporaries(tmp_path / "file" / "out.bin") == []

    def refuse(path):
        raise error(errno.EACCES, "refused", path)

    monkeypatch.setattr(os, "listdir", refuse)
    assert remove_stale_temporaries(tmp_path / "out.bin") == []
