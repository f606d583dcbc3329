"""Writing a folder output without ever leaving half of it: staging, commit, recovery.

A new folder is built in a temporary folder beside it (``.NAME.tmp-PID-…``) and renamed into place.
An existing folder receives the new files by a *commit*: the temporary folder is renamed to
``.NAME.commit-PID-…`` (the commit point; it also holds the list of the previous run's files to
remove), then its files are moved in one by one, the manifest last. A run killed before the commit
point leaves the folder as it was; the next run that writes the folder removes the dead writer's
temporary and completes a dead writer's commit (`recover_folder`, roll forward), so a kill never
leaves two runs mixed for longer than that. When the folder is a mount point the staging happens
inside it (``.apr-output.tmp-…``), so the final renames stay on one filesystem.

What may be replaced is decided before (`apr.format.outputs.check_folder_output`) and checked again
at the commit (`FolderTarget.refuse_collisions`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from apr.errors import AprError, AprIOError
from apr.format import atomic as _atomic
from apr.format.atomic import is_dead_writer, temporary_prefix
from apr.format.output_manifest import (
    IN_FOLDER_COMMIT,
    IN_FOLDER_TMP,
    MANIFEST_NAME,
    FileRecord,
    file_record,
    is_internal,
    is_ours,
    manifest_bytes,
    read_manifest,
    record_tree,
    safe_name,
    walk,
)

if TYPE_CHECKING:
    from apr.format.outputs import FolderTarget

_COMMIT_PLAN = ".apr-commit.json"  # inside a commit folder: the previous files the commit removes
# Before issue 14 only `apr export --format safetensors` wrote folders, by a swap that moved the old
# folder aside as ``.NAME.old-PID``: a backup restored from there is that command's output.
LEGACY_SWAP_COMMAND = "apr export --format safetensors"


def _commit_prefix(target: Path) -> str:
    return f".{target.name}.commit-"


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _staging_place(target: Path) -> tuple[Path, str, str]:
    """``(folder, temporary prefix, commit prefix)`` for a run's files: beside the output folder,
    unless it is a mount point (then inside it, under names the manifest walk ignores), so that the
    final renames stay on one filesystem."""
    if target.is_dir() and not _same_device(target, target.parent):
        return target, IN_FOLDER_TMP, IN_FOLDER_COMMIT
    return target.parent, temporary_prefix(target), _commit_prefix(target)


@contextlib.contextmanager
def folder_output(target: FolderTarget) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block completes, its files become the output.

    The files written in the block must be regular files (subfolders only for a tree such as the
    demo's). On success the manifest is added; a new output folder is renamed into place, an
    existing one receives the files by a commit (see the module docstring). On any failure the
    temporary folder is removed and the output is untouched.

    Raises:
        OutputExistsError / OutputIsInputError: a file to write would replace a foreign file or an
            input (checked again at commit time; nothing is replaced).
        AprIOError: the OS refused a write; nothing was replaced.
    """
    place, prefix, commit_prefix = _staging_place(target.path)
    suffix = f"{os.getpid()}-{secrets.token_hex(4)}"
    staging = place / f"{prefix}{suffix}"
    try:
        staging.mkdir()
    except OSError as err:
        raise AprIOError.from_os_error(err, path=target.path, action=f"create a folder in {place}") from err
    try:
        yield staging
        _finish(staging, place / f"{commit_prefix}{suffix}", target)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, AprError):  # AprErrors say what they are
            raise AprIOError.from_os_error(err, path=target.path, action="write", note="nothing was replaced") from err
        raise


def _finish(staging: Path, committed: Path, target: FolderTarget) -> None:
    # Not atomic_write: that replaces one file; a folder output is many, so its commit point is the
    # rename of the whole staging folder, and `recover_folder` rolls a killed commit forward.
    files, folders = walk(staging)
    if folders:  # a nested file always lists its folder too
        raise ValueError(f"folder_output writes flat folders only; got {folders}")
    records = {name: file_record(staging / name, sync=True) for name in files if not is_internal(name)}
    if not os.path.lexists(target.path):
        (staging / MANIFEST_NAME).write_bytes(manifest_bytes(target.command, records))
        _fsync_dir(staging)
        os.rename(staging, target.path)
        _fsync_dir(target.path.parent)
        return
    target.refuse_collisions(records)
    obsolete = {n: r for n, r in target.previous.items() if n not in records}
    (staging / MANIFEST_NAME).write_bytes(manifest_bytes(target.command, records))
    plan = {n: {"size": r.size, "sha256": r.sha256} for n, r in obsolete.items()}
    (staging / _COMMIT_PLAN).write_text(json.dumps({"remove": plan}, indent=1), encoding="utf-8")
    _fsync_dir(staging)
    os.rename(staging, committed)  # the commit point: from here on the new files win
    _fsync_dir(committed.parent)
    apply_commit(committed, target.path)


def apply_commit(committed: Path, target: Path) -> None:
    """Move a committed folder's files into ``target`` (manifest last) and remove it; idempotent, so
    the next run can finish what a killed one started (roll forward)."""
    try:
        plan = json.loads((committed / _COMMIT_PLAN).read_text(encoding="utf-8")).get("remove", {})
    except (OSError, ValueError, AttributeError):
        plan = {}
    for name, record in (plan.items() if isinstance(plan, dict) else ()):
        clean = safe_name(name)
        if clean is None or not isinstance(record, dict):
            continue
        wanted = FileRecord(int(record.get("size", -1)), str(record.get("sha256", "")))
        if is_ours(target, clean, wanted):
            os.unlink(target / clean)
    for name in sorted(os.listdir(committed)):
        if is_internal(name) or name == _COMMIT_PLAN:
            continue
        os.replace(committed / name, target / name)
    if (committed / MANIFEST_NAME).exists():
        os.replace(committed / MANIFEST_NAME, target / MANIFEST_NAME)
    _fsync_dir(target)
    shutil.rmtree(committed, ignore_errors=True)


def recover_folder(target: Path) -> None:
    """Finish or undo what killed writers of the folder output ``target`` left (dead pids only).

    * ``.NAME.commit-PID-…``: a committed run killed while moving its files in: completed.
    * ``.NAME.tmp-PID-…``: an uncommitted run: removed (`remove_stale_temporaries`).
    * ``.NAME.old-PID``: what the folder swap of earlier versions moved aside: restored when the
      folder is missing (with a manifest naming `LEGACY_SWAP_COMMAND`, the only command that
      swapped folders, so its files stay replaceable), else removed.
    """
    parent = target.parent
    places = [(parent, _commit_prefix(target)), (target, IN_FOLDER_COMMIT)]
    for folder, prefix in places:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for name in sorted(os.listdir(folder)):
                if name.startswith(prefix) and is_dead_writer(name, prefix):
                    committed = folder / name
                    if os.path.lexists(target):
                        apply_commit(committed, target)
                    else:  # the whole new output is there: it becomes the folder
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(committed / _COMMIT_PLAN)
                        os.rename(committed, target)
    old_prefix = f".{target.name}.old-"
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(parent)):
            if name.startswith(old_prefix) and is_dead_writer(name, old_prefix):
                backup = parent / name
                if not os.path.lexists(target):
                    os.replace(backup, target)
                    with contextlib.suppress(OSError, ValueError):
                        if read_manifest(target)[0] is None:
                            record_tree(target, LEGACY_SWAP_COMMAND)
                else:
                    shutil.rmtree(backup, ignore_errors=True)
    _atomic.remove_stale_temporaries(target, dead_only=True)  # looked up at call time, as atomic_write does
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(target):
            if name.startswith(IN_FOLDER_TMP) and is_dead_writer(name, IN_FOLDER_TMP):
                shutil.rmtree(target / name, ignore_errors=True)


def remove_previous(target: FolderTarget) -> list[str]:
    """Delete the files a previous run of the same command wrote (still exactly as written), then the
    folders this leaves empty; return what was removed. Foreign files stay (`apr demo`'s refresh)."""
    removed = []
    for name in sorted(target.previous):
        if is_ours(target.path, name, target.previous[name]):
            os.unlink(target.path / name)
            removed.append(name)
            parent = (target.path / name).parent
            while parent != target.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return removed


__all__ = ["LEGACY_SWAP_COMMAND", "apply_commit", "folder_output", "recover_folder", "remove_previous"]
