"""The manifest a folder output carries, so a rerun knows which files its command wrote.

``.apr-output.json`` in the folder names the command and every file it wrote, by relative path,
with its size and sha256; the document is deterministic (sorted, no times), so two equal outputs
are equal bytes, manifest included. A manifest is data from the disk: parsed as JSON only, size
bounded, and an entry that is not a plain relative path inside the folder is dropped, so a planted
manifest cannot make a command touch ``../elsewhere``. A listed file counts as the command's only
while it is still exactly what was recorded (`is_ours`). The policy itself is `apr.format.outputs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from apr.format.atomic import atomic_write

MANIFEST_NAME = ".apr-output.json"
MANIFEST_FORMAT = "apr-output/1"
IN_FOLDER_TMP, IN_FOLDER_COMMIT = ".apr-output.tmp-", ".apr-output.commit-"  # staging inside a mount point
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_HASH_CHUNK = 8 * 1024 * 1024

PathLike = str | os.PathLike[str]


def is_within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies below it (paths compared part by part)."""
    return inner == outer or outer in inner.parents


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file a command wrote: its size and sha256 when it was written."""

    size: int
    sha256: str


def file_record(path: PathLike, *, sync: bool = False) -> FileRecord:
    """Size and sha256 of a regular file (read in chunks); ``sync`` also fsyncs it."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        while True:
            chunk = os.read(fd, _HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return FileRecord(size, digest.hexdigest())


def safe_name(name: object) -> str | None:
    """A manifest entry as a relative path that cannot leave the folder, or None: a string without
    backslashes or NULs, already in normal form (so no empty or ``.`` part, no trailing slash), not
    absolute, no ``..`` part, and not the folder itself (``.``, or the empty name).

    >>> [safe_name(n) for n in ("a/b.bin", ".", "", "a/../b", "/a", "a//b", "a/")]
    ['a/b.bin', None, None, None, None, None, None]
    """
    if not isinstance(name, str) or "\\" in name or "\x00" in name:
        return None
    pure = PurePosixPath(name)
    if pure.as_posix() != name or not pure.parts or pure.is_absolute() or ".." in pure.parts:
        return None
    return name


def read_manifest(folder: PathLike) -> tuple[str | None, dict[str, FileRecord]]:
    """``(command, files)`` from ``folder/.apr-output.json``; ``(None, {})`` when absent or unusable.

    A manifest is data from the disk: it is parsed as JSON only, size-bounded, and an entry that is
    not a plain relative path inside the folder is dropped (so a planted manifest cannot make a
    command delete ``../elsewhere``).
    """
    path = Path(folder) / MANIFEST_NAME
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MANIFEST_BYTES:
            return None, {}
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None, {}
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        return None, {}
    command, entries = document.get("command"), document.get("files")
    if not isinstance(command, str) or not isinstance(entries, dict):
        return None, {}
    files: dict[str, FileRecord] = {}
    for name, record in entries.items():
        clean = safe_name(name)
        if clean is None or not isinstance(record, dict):
            continue
        size, digest = record.get("size"), record.get("sha256")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0 and isinstance(digest, str):
            files[clean] = FileRecord(size, digest)
    return command, files


def manifest_bytes(command: str, files: dict[str, FileRecord]) -> bytes:
    """The manifest document: deterministic (sorted, no times), so equal outputs are equal bytes."""
    document = {"format": MANIFEST_FORMAT, "command": command,
                "files": {name: {"size": r.size, "sha256": r.sha256} for name, r in sorted(files.items())}}
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def is_ours(folder: Path, name: str, record: FileRecord) -> bool:
    """Whether ``folder/name`` is still exactly the file a previous run recorded (inside the folder,
    a regular file, not a link, same size and sha256)."""
    path = folder / name
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != record.size:
        return False
    if not is_within(Path(os.path.realpath(path)), Path(os.path.realpath(folder))):
        return False
    try:
        return file_record(path).sha256 == record.sha256
    except OSError:
        return False


def is_internal(name: str) -> bool:
    """Names the policy itself keeps in a folder: the manifest and in-folder staging (mount points)."""
    return name == MANIFEST_NAME or name.startswith(".apr-output.")


def walk(folder: Path) -> tuple[list[str], list[str]]:
    """``(files, folders)`` under ``folder`` as relative posix paths; symlinks are listed, never followed."""
    files: list[str] = []
    folders: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        rel = Path(root).relative_to(folder)
        for name in dirs:
            full = Path(root) / name
            (files if full.is_symlink() else folders).append((rel / name).as_posix())
        files.extend((rel / name).as_posix() for name in names)
    return sorted(files), sorted(folders)


def record_tree(folder: PathLike, command: str) -> dict[str, FileRecord]:
    """Write ``folder``'s manifest listing every file now in it (the demo records as it goes)."""
    root = Path(folder)
    files, _folders = walk(root)
    records = {n: file_record(root / n) for n in files if not is_internal(n) and not (root / n).is_symlink()}
    with atomic_write(root / MANIFEST_NAME) as handle:
        handle.write(manifest_bytes(command, records))
    return records


__all__ = ["MANIFEST_NAME", "FileRecord", "file_record", "is_internal", "is_ours", "is_within", "manifest_bytes",
           "read_manifest", "record_tree", "safe_name", "walk"]
