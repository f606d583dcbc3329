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
from apr.format.atomic import is_dead_writer, remove_stale_temporaries, temporary_prefix


def check_output(path: str | os.PathLike[str], *, force: bool, is_dir: bool = False) -> Path:
    """Refuse an existing output unless ``force``; require the parent folder to exist."""
    target = Path(os.path.abspath(os.fspath(path)))
    if is_dir and target.parent.is_dir():
        recover_folder(target)  # a killed earlier export may have moved the previous output aside
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


def recover_folder(target: Path) -> None:
    """Undo what a killed `atomic_folder` left: restore a moved-aside original, drop temporaries.

    The swap is ``target → .target.old-PID``, ``tmp → target``, remove the old one. A kill between
    the two renames leaves no target and the only copy of the previous output in ``.old-PID``:
    it is moved back. A kill after the second rename leaves a stale ``.old-PID``: it is removed.
    Only entries whose writer process is gone are touched.
    """
    old_prefix = f".{target.name}.old-"
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(target.parent)):
            if name.startswith(old_prefix) and is_dead_writer(name, old_prefix):
                backup = target.parent / name
                if not target.exists():
                    os.replace(backup, target)
                else:
                    shutil.rmtree(backup, ignore_errors=True)
    remove_stale_temporaries(target, dead_only=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block completes."""
    target = Path(os.path.abspath(os.fspath(path)))
    recover_folder(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{temporary_prefix(target)}{os.getpid()}-", dir=target.parent))
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


__all__ = ["atomic_folder", "check_output", "recover_folder"]
