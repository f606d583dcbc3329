"""Open input files defensively: regular files only, and a folder's files only inside that folder.

Why: a FIFO named like a side file (``model.safetensors.index.json``) blocks ``open`` forever, a
device yields endless bytes, and a symlink lets whoever wrote a model folder make the tool read
any file on the machine. So every input goes through here:

* `file_inside` resolves ``folder/name`` (a name may not be absolute or contain ``..``), requires
  the real path to stay inside the real folder (a symlink that stays inside is fine) and requires
  a regular file, by ``stat`` *before* anything is opened;
* `open_regular` opens with ``O_NONBLOCK`` (a FIFO swapped in after the ``stat`` cannot block the
  open) and checks ``fstat`` on the open descriptor, which is what is then read;
* `read_regular` bounds the size before reading.

The error class is the caller's (``ConvertError`` for import, ``TokenizerError`` for tokenizer
folders), so each module keeps its own exit code; a missing required file is
`AprFileNotFoundError` (exit 3).

Example:
    >>> from apr.errors import ConvertError
    >>> file_inside(Path("/dev"), "null", error=ConvertError)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ConvertError: /dev/null: null is a character device, not a regular file
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

from apr.errors import AprError, AprFileNotFoundError

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_EXTRA = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)

OUTSIDE_HINT = ("copy the real file into the folder instead of linking to it "
                "(a Hugging Face cache snapshot: cp -rL SNAPSHOT_DIR MODEL_DIR)")


def describe_mode(mode: int) -> str:
    """What kind of file ``mode`` (an ``st_mode``) is, in words: ``"a FIFO (named pipe)"``."""
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return words
    return "not a regular file"


def _not_regular(error: type[AprError], path: str | os.PathLike[str], label: str, mode: int) -> AprError:
    return error(
        f"{label} is {describe_mode(mode)}, not a regular file; only regular files are read as inputs",
        path=path, field=label, hint=f"replace {label} with the real file",
    )


def _within(folder: str, real: str) -> bool:
    return real != folder and os.path.commonpath([folder, real]) == folder


def file_inside(
    folder: str | os.PathLike[str], name: str, *, error: type[AprError], required: bool = False,
    label: str = "the model folder",
) -> Path | None:
    """The real path of ``folder/name`` after checking it may be read.

    Args:
        folder: the model or tokenizer folder.
        name: a file name relative to ``folder`` (from the folder itself or from an index file).
        error: the class raised for a refused name (the caller's module error).
        required: raise `AprFileNotFoundError` instead of returning None when the file is absent.
        label: how messages call the folder (``"the tokenizer folder"``).

    Returns:
        The resolved path, or None when nothing by that name exists (and not ``required``).

    Raises:
        error: ``name`` is absolute or holds ``..``; it resolves outside ``folder``; or it is a
            FIFO, device, directory or socket.
        AprFileNotFoundError: ``required`` and the file is absent (or a dangling link inside).
    """
    root = Path(folder)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(f"{name!r} is not a file name", path=root, field=str(name), hint=f"name files inside {label}")
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise error(f"{name!r} names a path outside {label} (absolute, or through '..')", path=root, field=name,
                    hint=f"name files relative to {label}, without '..'")
    candidate = root / name
    try:
        os.lstat(candidate)
    except (FileNotFoundError, NotADirectoryError):
        _absent(candidate, name, required, label)
        return None
    except OSError as err:
        raise error(f"cannot look at {name}: {err.strerror}", path=candidate, field=name) from err
    real = os.path.realpath(candidate)
    if not _within(os.path.realpath(root), real):
        raise error(f"{name} resolves outside {label} (to {real!r}); refusing to read it",
                    path=candidate, field=name, hint=OUTSIDE_HINT)
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a dangling link that points inside
        _absent(candidate, name, required, label)
        return None
    except OSError as err:  # a symlink loop, a permission problem
        raise error(f"cannot look at {name}: {err.strerror}", path=candidate, field=name) from err
    if not stat.S_ISREG(mode):
        raise _not_regular(error, candidate, name, mode)
    return Path(real)


def _absent(candidate: Path, name: str, required: bool, label: str) -> None:
    if required:
        raise AprFileNotFoundError(f"{name} is not in {label}", path=candidate, field=name,
                                   hint=f"add {name} to {label} (download the missing file)")
    return None


def open_regular(
    path: str | os.PathLike[str], *, error: type[AprError], follow_symlinks: bool = True,
) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file, without ever blocking on a FIFO.

    Args:
        path: the file (for a folder's file, the real path `file_inside` returned).
        error: the class raised when it is not a regular file or cannot be opened.
        follow_symlinks: False for a path that is already resolved, so a symlink swapped in
            after the check is refused instead of followed.

    Returns:
        A binary file object positioned at 0 (blocking mode restored).

    Raises:
        AprFileNotFoundError: the path does not exist.
        error: not a regular file, a symlink where none may be, or the system refused the open.
    """
    label = os.path.basename(os.fspath(path)) or os.fspath(path)
    flags = os.O_RDONLY | _O_NONBLOCK | _O_EXTRA | (0 if follow_symlinks else _O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as err:
        raise AprFileNotFoundError(f"{label} does not exist", path=path, field=label,
                                   hint="check the path") from err
    except OSError as err:
        if err.errno == errno.ELOOP and not follow_symlinks:
            raise error(f"{label} became a symlink while it was being read; refusing to follow it",
                        path=path, field=label, hint="run the command again on a folder nobody is changing") from err
        raise error(f"cannot open {label}: {err.strerror}", path=path, field=label) from err
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(error, path, label, mode)
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | os.PathLike[str], *, limit: int, error: type[AprError], follow_symlinks: bool = True,
) -> bytes:
    """The bytes of regular file ``path``, refused before reading when over ``limit`` bytes.

    Raises:
        error: not a regular file, or larger than ``limit``.
        AprFileNotFoundError: the path does not exist.
    """
    label = os.path.basename(os.fspath(path)) or os.fspath(path)
    with open_regular(path, error=error, follow_symlinks=follow_symlinks) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
        if size > limit or len(data) > limit:
            raise error(f"{label} is {max(size, len(data))} bytes, over the {limit}-byte limit for this file",
                        path=path, field=label, hint=f"check that {label} is the file you meant to use")
    return data


__all__ = ["OUTSIDE_HINT", "describe_mode", "file_inside", "open_regular", "read_regular"]
