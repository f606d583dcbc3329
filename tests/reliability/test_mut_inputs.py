"""`apr.format.inputs` refusal by refusal: names that are not file names or leave the folder, links
that resolve outside it (also to a sibling sharing its prefix), dangling links and loops, FIFOs,
devices, folders, a symlink swapped in where none may be, a file over its size limit (also one
whose size the OS reports as 0). Each refusal's class (the caller's), exit code, path, field and fix
are asserted; a FIFO is refused without blocking (a blocking open is cut by an alarm and fails the
test instead of hanging it) and no descriptor is leaked (issue 23)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, ConvertError, TokenizerError
from apr.format.inputs import OUTSIDE_HINT, describe_mode, file_inside, open_regular, read_regular


@contextlib.contextmanager
def _deadline(seconds: float = 3.0) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block blocks longer than ``seconds``."""
    def alarm(signum, frame):
        raise TimeoutError("blocked: the open waited for a writer")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_bytes(b"{}")
    return root


# --- describe_mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, words", [
    (stat.S_IFREG, "a regular file"), (stat.S_IFDIR, "a directory"), (stat.S_IFIFO, "a FIFO (named pipe)"),
    (stat.S_IFCHR, "a character device"), (stat.S_IFBLK, "a block device"), (stat.S_IFSOCK, "a socket"),
    (stat.S_IFLNK, "a symlink"), (0, "not a regular file")])
def test_describe_mode(kind: int, words: str) -> None:
    assert describe_mode(kind | 0o644) == words


# --- file_inside -----------------------------------------------------------------------------------


def test_a_regular_file_inside_resolves_to_its_real_path(folder: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "w.bin").write_bytes(b"x")
    (folder / "alias.json").symlink_to(folder / "config.json")
    assert file_inside(folder, "config.json", error=ConvertError) == folder / "config.json"
    assert file_inside(folder, "sub/w.bin", error=ConvertError) == folder / "sub" / "w.bin"
    assert file_inside(str(folder), "alias.json", error=ConvertError) == folder / "config.json"


@pytest.mark.parametrize("name", ["", "a\x00b", 3, None])
def test_what_is_not_a_file_name(folder: Path, name) -> None:
    with pytest.raises(ConvertError) as info:
        file_inside(folder, name, error=ConvertError, label="the tokenizer folder")
    err = info.value
    assert err.message == f"{name!r} is not a file name" and err.path == str(folder)
    assert err.field == str(name) and err.hint == "name files inside the tokenizer folder"


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "sub/../../x", ".."])
def test_a_name_that_leaves_the_folder(folder: Path, name: str) -> None:
    with pytest.raises(TokenizerError) as info:
        file_inside(folder, name, error=TokenizerError, label="the tokenizer folder")
    err = info.value
    assert err.message == f"{name!r} names a path outside the tokenizer folder (absolute, or through '..')"
    assert err.path == str(folder) and err.field == name
    assert err.hint == "name files relative to the tokenizer folder, without '..'"


def test_a_name_with_dots_that_is_not_dot_dot_is_fine(folder: Path) -> None:
    (folder / "..x").write_bytes(b"x")
    assert file_inside(folder, "..x", error=ConvertError) == folder / "..x"


def test_an_absent_file(folder: Path) -> None:
    assert file_inside(folder, "missing.json", error=ConvertError) is None
    (folder / "plain").write_bytes(b"x")
    assert file_inside(folder, "plain/under", error=ConvertError) is None  # NotADirectoryError
    with pytest.raises(AprFileNotFoundError) as info:
        file_inside(folder, "missing.json", error=ConvertError, required=True)
    err = info.value
    assert err.exit_code == 3 and err.path == str(folder / "missing.json") and err.field == "missing.json"
    assert err.message == "missing.json is not in the model folder"
    assert err.hint == "add missing.json to the model folder (download the missing file)"
    with pytest.raises(AprFileNotFoundError):
        file_inside(folder, "plain/under", error=ConvertError, required=True)


def test_a_dangling_link_inside_is_absent(folder: Path) -> None:
    (folder / "dangling.json").symlink_to(folder / "nothing.json")
    assert file_inside(folder, "dangling.json", error=ConvertError) is None
    with pytest.raises(AprFileNotFoundError) as info:
        file_inside(folder, "dangling.json", error=ConvertError, required=True, label="the tokenizer folder")
    assert info.value.message == "dangling.json is not in the tokenizer folder"
    assert info.value.path == str(folder / "dangling.json")


def test_a_link_that_resolves_outside(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"x")
    (folder / "leak.json").symlink_to(secret)
    with pytest.raises(ConvertError) as info:
        file_inside(folder, "leak.json", error=ConvertError)
    err = info.value
    assert err.message == f"leak.json resolves outside the model folder (to {str(secret)!r}); refusing to read it"
    assert err.path == str(folder / "leak.json") and err.field == "leak.json" and err.hint == OUTSIDE_HINT


def test_a_link_to_a_sibling_sharing_the_folders_prefix_is_outside(folder: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "model-other"
    sibling.mkdir()
    (sibling / "w.bin").write_bytes(b"x")
    (folder / "w.bin").symlink_to(sibling / "w.bin")
    with pytest.raises(ConvertError, match="resolves outside"):
        file_inside(folder, "w.bin", error=ConvertError)


def test_the_folder_itself_is_not_a_file_inside_it(folder: Path) -> None:
    (folder / "self").symlink_to(folder, target_is_directory=True)
    for name in (".", "self"):
        with pytest.raises(ConvertError, match="resolves outside"):
            file_inside(folder, name, error=ConvertError)


def test_a_folder_reached_through_a_link_in_its_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.json").write_bytes(b"x")
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    assert file_inside(alias, "a.json", error=ConvertError) == real / "a.json"


def test_a_link_loop_cannot_be_looked_at(folder: Path) -> None:
    (folder / "loop").symlink_to(folder / "loop")
    with pytest.raises(ConvertError) as info:
        file_inside(folder, "loop", error=ConvertError)
    assert info.value.message == f"cannot look at loop: {os.strerror(errno.ELOOP)}"
    assert info.value.path == str(folder / "loop") and info.value.field == "loop"


def test_an_lstat_the_os_refuses(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "lstat", refuse)
    with pytest.raises(ConvertError) as info:
        file_inside(folder, "config.json", error=ConvertError)
    assert info.value.message == "cannot look at config.json: Permission denied"
    assert info.value.path == str(folder / "config.json") and info.value.field == "config.json"


@pytest.mark.parametrize("kind, words", [("folder", "a directory"), ("fifo", "a FIFO (named pipe)")])
def test_what_is_not_a_regular_file_is_refused(folder: Path, kind: str, words: str) -> None:
    name = f"x.{kind}"
    if kind == "folder":
        (folder / name).mkdir()
    else:
        os.mkfifo(folder / name)
    with pytest.raises(ConvertError) as info:
        file_inside(folder, name, error=ConvertError)
    err = info.value
    assert err.message == f"{name} is {words}, not a regular file; only regular files are read as inputs"
    assert err.path == str(folder / name) and err.field == name and err.hint == f"replace {name} with the real file"


def test_a_link_to_a_device_resolves_outside_first(folder: Path) -> None:
    (folder / "null").symlink_to("/dev/null")
    with pytest.raises(ConvertError, match="resolves outside"):
        file_inside(folder, "null", error=ConvertError)


def test_a_device_as_the_folder_is_refused_as_a_device() -> None:
    with pytest.raises(ConvertError) as info:
        file_inside(Path("/dev"), "null", error=ConvertError)
    assert info.value.message == "null is a character device, not a regular file; only regular files are read as inputs"


# --- open_regular ----------------------------------------------------------------------------------


def test_open_regular_returns_a_blocking_binary_file_at_zero(folder: Path) -> None:
    with open_regular(folder / "config.json", error=ConvertError) as handle:
        assert handle.read() == b"{}" and handle.mode == "rb"
        assert os.get_blocking(handle.fileno()) is True
        assert os.get_inheritable(handle.fileno()) is False


def test_open_regular_of_a_missing_file(folder: Path) -> None:
    path = folder / "gone.json"
    with pytest.raises(AprFileNotFoundError) as info:
        open_regular(path, error=ConvertError)
    err = info.value
    assert err.message == "gone.json does not exist" and err.path == str(path) and err.field == "gone.json"
    assert err.hint == "check the path" and err.exit_code == 3


def test_a_fifo_is_refused_without_blocking_and_without_a_leak(folder: Path) -> None:
    fifo = folder / "pipe.json"
    os.mkfifo(fifo)
    before = _fds()
    with _deadline(), pytest.raises(TokenizerError) as info:
        open_regular(fifo, error=TokenizerError)
    err = info.value
    assert err.message == "pipe.json is a FIFO (named pipe), not a regular file; only regular files are read as inputs"
    assert err.path == str(fifo) and err.field == "pipe.json"
    assert _fds() == before
    with _deadline(), pytest.raises(TokenizerError, match="FIFO"):
        read_regular(fifo, limit=10, error=TokenizerError)


def test_a_symlink_where_none_may_be(folder: Path) -> None:
    link = folder / "link.json"
    link.symlink_to(folder / "config.json")
    with open_regular(link, error=ConvertError) as handle:
        assert handle.read() == b"{}"
    with pytest.raises(ConvertError) as info:
        open_regular(link, error=ConvertError, follow_symlinks=False)
    err = info.value
    assert err.message == "link.json became a symlink while it was being read; refusing to follow it"
    assert err.hint == "run the command again on a folder nobody is changing" and err.field == "link.json"
    assert err.path == str(link)


def test_an_open_the_os_refuses(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path, flags, *args):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "open", refuse)
    for follow in (True, False):
        with pytest.raises(ConvertError) as info:
            open_regular(folder / "config.json", error=ConvertError, follow_symlinks=follow)
        assert info.value.message == "cannot open config.json: Permission denied"
        assert info.value.field == "config.json" and info.value.path == str(folder / "config.json")


def test_an_eloop_while_following_links_is_a_plain_open_error(folder: Path) -> None:
    (folder / "loop").symlink_to(folder / "loop")
    with pytest.raises(ConvertError) as info:
        open_regular(folder / "loop", error=ConvertError)
    assert info.value.message == f"cannot open loop: {os.strerror(errno.ELOOP)}"


def test_open_regular_asks_for_the_flags_it_needs(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = os.open

    def spy(path, flags, *args):
        seen.append(flags)
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    open_regular(folder / "config.json", error=ConvertError).close()
    open_regular(folder / "config.json", error=ConvertError, follow_symlinks=False).close()
    follow, nofollow = seen
    for flags in seen:
        assert flags & os.O_NONBLOCK and flags & os.O_CLOEXEC and flags & os.O_NOCTTY
        assert flags & (os.O_WRONLY | os.O_RDWR) == 0
    assert not follow & os.O_NOFOLLOW and nofollow & os.O_NOFOLLOW
    assert nofollow == follow | os.O_NOFOLLOW


def test_a_label_for_a_path_without_a_basename(tmp_path: Path) -> None:
    with pytest.raises(ConvertError) as info:
        open_regular(str(tmp_path) + "/", error=ConvertError)
    assert info.value.field == str(tmp_path) + "/"
    assert info.value.message == f"{tmp_path}/ is a directory, not a regular file; only regular files are read as inputs"


# --- read_regular ----------------------------------------------------------------------------------


def test_read_regular_at_and_over_the_limit(folder: Path) -> None:
    path = folder / "ten.bin"
    path.write_bytes(b"0123456789")
    assert read_regular(path, limit=10, error=ConvertError) == b"0123456789"
    assert read_regular(path, limit=11, error=ConvertError) == b"0123456789"
    before = _fds()
    with pytest.raises(ConvertError) as info:
        read_regular(path, limit=9, error=ConvertError)
    err = info.value
    assert err.message == "ten.bin is 10 bytes, over the 9-byte limit for this file"
    assert err.hint == "check that ten.bin is the file you meant to use"
    assert err.path == str(path) and err.field == "ten.bin"
    assert _fds() == before


@pytest.mark.parametrize("size, limit", [(1, 0), (3, 2), (100, 10)])
def test_read_regular_names_the_real_size_over_the_limit(folder: Path, size: int, limit: int) -> None:
    path = folder / "f.bin"
    path.write_bytes(b"z" * size)
    with pytest.raises(ConvertError) as info:
        read_regular(path, limit=limit, error=ConvertError)
    assert info.value.message == f"f.bin is {size} bytes, over the {limit}-byte limit for this file"


def test_read_regular_of_an_empty_file(folder: Path) -> None:
    (folder / "empty").write_bytes(b"")
    assert read_regular(folder / "empty", limit=0, error=ConvertError) == b""


def test_a_file_whose_reported_size_is_zero_is_bounded_by_what_is_read() -> None:
    """/proc files report st_size 0: the limit still holds on the bytes actually read."""
    data = Path("/proc/self/status").read_bytes()
    assert os.stat("/proc/self/status").st_size == 0 and len(data) > 20
    with pytest.raises(ConvertError) as info:
        read_regular("/proc/self/status", limit=20, error=ConvertError)
    assert info.value.message == "status is 21 bytes, over the 20-byte limit for this file"


def test_read_regular_refuses_a_symlink_when_told_not_to_follow(folder: Path) -> None:
    (folder / "link").symlink_to(folder / "config.json")
    assert read_regular(folder / "link", limit=10, error=ConvertError) == b"{}"
    with pytest.raises(ConvertError, match="became a symlink"):
        read_regular(folder / "link", limit=10, error=ConvertError, follow_symlinks=False)
    with pytest.raises(AprFileNotFoundError):
        read_regular(folder / "gone", limit=10, error=ConvertError)
