"""Which files are contracts, and how their paths are shown (no YAML here: the plugin's cache
check lists and hashes files without importing a parser)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from falsifiers.errors import ContractNotFoundError

CONTRACT_SUFFIXES = (".yaml", ".yml")


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Contract files under ``paths`` (files as given, folders searched recursively), sorted.

    Hidden files and folders are skipped, and linked folders are not entered (as ``Path.rglob``).
    Raises `ContractNotFoundError` for a path that does not exist: that is a caller's mistake, not a
    finding about a contract.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            top = os.fspath(path)
            found.extend(Path(top, *parts) for parts in sorted(_walk(top, ())))
        elif path.is_file():
            found.append(path)
        else:
            raise ContractNotFoundError(
                f"no such file or folder: {os.fspath(raw)!r}", path=os.fspath(raw),
                hint="pass a contract file or a folder of them (default: the `contracts` folder "
                "named under [tool.apr-contracts] in pyproject.toml)",
            )
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.normpath(path), path)
    return list(unique.values())


def _walk(folder: str, parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Relative parts of every contract file below ``folder``: one ``scandir`` per folder, no
    ``Path`` per entry (the plugin lists the contracts on every run)."""
    found: list[tuple[str, ...]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                found.extend(_walk(entry.path, (*parts, entry.name)))
            elif entry.name.endswith(CONTRACT_SUFFIXES) and entry.is_file():
                found.append((*parts, entry.name))
    return found


def display_path(path: Path, relative_to: str | os.PathLike[str] | None) -> str:
    """``path`` as findings show it: relative to the project root when one is given."""
    if relative_to is None:
        return os.fspath(path)
    return display_paths([path], relative_to)[0]


def display_paths(paths: list[Path], relative_to: str | os.PathLike[str]) -> list[str]:
    """`display_path` for many files under one root: each folder is resolved and made relative
    once, and a file's name is appended unless the file is a link (the plugin does this on every
    run, for every contract)."""
    root = Path(relative_to).resolve()
    folders: dict[str, str | None] = {}  # folder as given -> its display prefix (None: another drive)
    shown = []
    for path in paths:
        folder = os.path.dirname(path)
        if folder not in folders:
            try:
                folders[folder] = Path(os.path.relpath(Path(folder).resolve(), root)).as_posix()
            except ValueError:  # another drive on Windows
                folders[folder] = None
        prefix = folders[folder]
        if os.path.islink(path):  # a linked contract shows where it really lives
            try:
                shown.append(Path(os.path.relpath(path.resolve(), root)).as_posix())
            except ValueError:
                shown.append(os.fspath(path))
        elif prefix is None:
            shown.append(os.fspath(path))
        else:
            shown.append(path.name if prefix == "." else f"{prefix}/{path.name}")
    return shown


__all__ = ["CONTRACT_SUFFIXES", "discover", "display_path", "display_paths"]
