"""Write a file so that a crash never leaves a half-written file where a good one was.

The bytes go to a temporary file in the target's own folder (so the rename stays on one
filesystem), are fsynced, then renamed over the target with `os.replace`, and the folder is
fsynced so the rename itself is durable. On any failure the temporary file is removed and the
target is untouched. Temporary names start with ``.<target>.tmp-`` so a later run can recognise
strays left by a SIGKILL (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from apr.errors import AprFileNotFoundError, AprIOError

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
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise AprFileNotFoundError(
            f"output folder does not exist: {folder}",
            path=target,
            hint=f"create it first: mkdir -p {folder}",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(target), dir=folder)
    except OSError as err:
        raise AprIOError(f"cannot create a file in {folder}: {err.strerror}", path=target) from err
    try:
        os.fchmod(fd, _final_mode(target))
        with os.fdopen(fd, "wb") as handle:
            yield handle  # type: ignore[misc]
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, AprIOError):
            reason = "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
            raise AprIOError(
                f"write failed: {reason}; the existing file (if any) is unchanged",
                path=target,
                hint="free some space or choose another output folder" if err.errno == errno.ENOSPC else None,
            ) from err
        raise
    if durable:
        _fsync_dir(folder)


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[str]:
    """Delete temporaries that a killed writer of ``path`` left behind; return what was removed."""
    target = os.path.abspath(os.fspath(path))
    folder, prefix = os.path.dirname(target), temporary_prefix(target)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
                    removed.append(name)
    return removed
