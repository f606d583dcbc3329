"""Write a file so that a crash never leaves a half-written file where a good one was.

The bytes go to a temporary file in the target's own folder (so the rename stays on one
filesystem), are fsynced, then renamed over the target with `os.replace`, and the folder is
fsynced so the rename itself is durable. On any failure the temporary file is removed and the
target is untouched. Temporary names are ``.<target>.tmp-<pid>-<random>``, so a later run can
recognise strays left by a SIGKILL: every `atomic_write` first removes the temporaries of its own
target whose writer process is gone (`remove_stale_temporaries` with ``dead_only=True``), and a
caller holding a lock may remove them all.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from apr.errors import AprError, AprFileNotFoundError, AprIOError

_TMP_MARK = ".tmp-"


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _final_mode(target: str) -> int:
    """Keep an existing file's permissions; a new one gets the usual 0666 & ~umask (not mkstemp's 0600)."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def temporary_prefix(path: str | os.PathLike[str]) -> str:
    return f".{os.path.basename(os.fspath(path))}{_TMP_MARK}"


def _open_temporary(target: str) -> tuple[int, str]:
    """Create the temporary beside ``target`` (after removing a dead writer's strays); return (fd, path)."""
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise AprFileNotFoundError(
            f"output folder does not exist: {folder}",
            path=target,
            hint=f"create it first: mkdir -p {folder}",
        )
    remove_stale_temporaries(target, dead_only=True)  # strays of a writer that was killed
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{temporary_prefix(target)}{os.getpid()}-", dir=folder)
    except OSError as err:
        raise AprIOError.from_os_error(err, path=target, action=f"create a file in {folder}",
                                       note="the existing file (if any) is unchanged") from err
    try:
        os.fchmod(fd, _final_mode(target))
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


def _abandon(err: BaseException, tmp: str, target: str) -> None:
    """Remove the temporary; turn an OSError of the write itself into AprIOError (else re-raise as is)."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    if _is_write_error(err, tmp, target):
        raise AprIOError.from_os_error(err, path=target, action="write",  # type: ignore[arg-type]
                                       note="the existing file (if any) is unchanged") from err


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, verify=None, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file that replaces ``path`` only if the block completes.

    Args:
        path: the final destination.
        verify: optional ``callable(tmp_path)`` run after fsync and before the rename; raising
            keeps the old file and removes the new one.
        durable: fsync the file and its folder (default). Without it the replacement is still
            atomic for a killed process (the page cache outlives it) but not for a power loss.

    Raises:
        AprFileNotFoundError: the destination folder does not exist.
        AprIOError: the OS refused the write (disk full, permissions); nothing is replaced.
    """
    target = os.path.abspath(os.fspath(path))
    fd, tmp = _open_temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        _abandon(err, tmp, target)
        raise
    if durable:
        _fsync_dir(os.path.dirname(target))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, verify=None, durable: bool = True) -> Iterator[str]:
    """`atomic_write` for a writer that opens the file by name itself (``gguf.GGUFWriter``).

    Yields the temporary's path (created empty, in the target's folder); when the block completes
    the file is fsynced, ``verify(tmp_path)`` runs, and it is renamed over ``path``. On any failure
    the temporary is removed and the target is untouched. Same arguments and errors as `atomic_write`.
    """
    target = os.path.abspath(os.fspath(path))
    fd, tmp = _open_temporary(target)
    os.close(fd)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        _abandon(err, tmp, target)
        raise
    if durable:
        _fsync_dir(os.path.dirname(target))


def _is_write_error(err: BaseException, tmp: str, target: str) -> bool:
    """An OSError of the write itself (no file named, or the temporary or target named), not one
    the caller's block raised about another file (reading its source, say): that one keeps its own
    file name and is reported as it is."""
    if not isinstance(err, OSError) or isinstance(err, AprError):
        return False
    named = os.fsdecode(err.filename) if isinstance(err.filename, (str, bytes, os.PathLike)) else None
    return named is None or os.path.abspath(named) in (tmp, target)


def is_dead_writer(name: str, prefix: str) -> bool:
    """Whether the pid in ``.<target>.tmp-<pid>[-...]`` names a process that no longer exists."""
    match = re.match(r"(\d+)(?:-|$)", name[len(prefix):])
    if match is None:
        return False  # not ours to judge (another writer's naming): leave it
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def remove_stale_temporaries(path: str | os.PathLike[str], *, dead_only: bool = False) -> list[str]:
    """Delete temporaries that a killed writer of ``path`` left behind; return what was removed.

    Args:
        path: the final destination whose temporaries to look for.
        dead_only: remove only temporaries whose writer process (the pid in the name) is gone,
            which is safe without a lock; otherwise remove every one (the caller holds a lock).
    """
    target = os.path.abspath(os.fspath(path))
    folder, prefix = os.path.dirname(target), temporary_prefix(target)
    removed = []
    # best effort: a folder that cannot be listed (missing, not searchable) leaves the error to the
    # write that follows, which reports it with the output's name (AprIOError, exit 7)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for name in os.listdir(folder):
            if name.startswith(prefix) and (not dead_only or is_dead_writer(name, prefix)):
                full = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full)  # a folder output's temporary (apr export --format safetensors)
                    else:
                        os.unlink(full)
                    removed.append(name)
    return removed
