"""Where converted models land: never half-written, never over an existing output without --force.

Files go through `apr.format.atomic.atomic_write`. A folder output (``apr export --format
safetensors``) is written into a temporary folder beside the target and renamed into place; an
existing target (with ``force``) is first moved aside and removed only after the rename worked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from apr.errors import AprFileNotFoundError, AprIOError, OutputExistsError


def check_output(path: str | os.PathLike[str], *, force: bool, is_dir: bool = False) -> Path:
    """Refuse an existing output unless ``force``; require the parent folder to exist."""
    target = Path(os.path.abspath(os.fspath(path)))
    if target.exists() and not force:
        raise OutputExistsError(
            f"output {'folder' if is_dir else 'file'} already exists", path=target,
            hint="pass --force to replace it, or choose another -o",
        )
    if target.exists() and is_dir != target.is_dir():
        raise OutputExistsError(
            f"output exists and is a {'file' if target.is_file() else 'folder'}", path=target,
            hint="choose another -o",
        )
    if not target.parent.is_dir():
        raise AprFileNotFoundError(f"output folder does not exist: {target.parent}", path=target,
                                   hint=f"create it first: mkdir -p {target.parent}")
    return target


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block completes."""
    target = Path(os.path.abspath(os.fspath(path)))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as err:
        raise AprIOError(f"cannot create a folder in {target.parent}: {err.strerror}", path=target) from err
    try:
        yield tmp
        backup = None
        if target.exists():
            backup = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, backup)
        try:
            os.replace(tmp, target)
        except OSError:
            if backup is not None:
                os.replace(backup, target)
            raise
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, AprIOError):
            raise AprIOError(f"write failed: {err.strerror or err}; nothing was replaced", path=target) from err
        raise


__all__ = ["atomic_folder", "check_output"]
