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

    Hidden folders are skipped. Raises `ContractNotFoundError` for a path that does not exist:
    that is a caller's mistake, not a finding about a contract.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.suffix in CONTRACT_SUFFIXES and candidate.is_file():
                    relative = candidate.relative_to(path).parts
                    if not any(part.startswith(".") for part in relative):
                        found.append(candidate)
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


def display_path(path: Path, relative_to: str | os.PathLike[str] | None) -> str:
    """``path`` as findings show it: relative to the project root when one is given."""
    if relative_to is None:
        return os.fspath(path)
    return display_paths([path], relative_to)[0]


def display_paths(paths: list[Path], relative_to: str | os.PathLike[str]) -> list[str]:
    """`display_path` for many files under one root, resolving the root once (the plugin does this
    on every run, for every contract)."""
    root = Path(relative_to).resolve()
    folders: dict[str, str] = {}  # each folder resolved once; file names are taken as they are
    shown = []
    for path in paths:
        folder = os.fspath(path.parent)
        if folder not in folders:
            folders[folder] = os.fspath(Path(folder).resolve())
        target = os.path.join(folders[folder], path.name)
        if os.path.islink(path):  # a linked contract shows where it really lives
            target = os.fspath(path.resolve())
        try:
            shown.append(Path(os.path.relpath(target, root)).as_posix())
        except ValueError:  # another drive on Windows
            shown.append(os.fspath(path))
    return shown


__all__ = ["CONTRACT_SUFFIXES", "discover", "display_path", "display_paths"]
