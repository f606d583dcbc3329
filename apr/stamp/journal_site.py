"""Where a file's stamp journal lives, and whether anything is there: stdlib only.

Split from `apr.stamp.journal` so that every command that reads a checkpoint can look for an
interrupted in-place stamp without importing the journal's reader and writer (hashing, temporary
files, logging): `any_journal_entry` is a few ``lstat`` calls, and only when it finds an entry
does the command load `apr.stamp.journal` to judge it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

JOURNAL_PREFIX = ".apr-stamp-journal."
LEGACY_SUFFIX = ".stamp-journal"


@dataclass(frozen=True, slots=True)
class JournalSite:
    """A file as the journal knows it: the path given, its resolved path and its identity."""

    target: str
    real: str
    device: int
    inode: int
    size: int
    owner: int

    @property
    def folder(self) -> str:
        return os.path.dirname(self.real)

    @property
    def path(self) -> str:
        """The journal's name: beside the real file, keyed by its inode."""
        return os.path.join(self.folder, f"{JOURNAL_PREFIX}{self.inode}")

    @property
    def legacy_paths(self) -> tuple[str, ...]:
        """Where version 1 put its journal: beside the path given (a link's own folder) and the real file."""
        given = os.path.abspath(self.target)
        paths = [os.path.join(os.path.dirname(p), f".{os.path.basename(p)}{LEGACY_SUFFIX}") for p in (given, self.real)]
        return tuple(dict.fromkeys(paths))

    def same_file(self, info: os.stat_result) -> bool:
        return (info.st_dev, info.st_ino) == (self.device, self.inode)


def locate(target: str | os.PathLike[str]) -> JournalSite:
    """Resolve ``target`` (symlinks followed) to the file whose journal to look for.

    Raises:
        OSError: the file cannot be stat'ed (missing: `FileNotFoundError`).
    """
    given = os.fspath(target)
    real = os.path.realpath(given)
    info = os.stat(real)
    return JournalSite(target=given, real=real, device=info.st_dev, inode=info.st_ino, size=info.st_size,
                       owner=info.st_uid)


def any_journal_entry(target: str | os.PathLike[str]) -> bool:
    """Whether anything lies under one of ``target``'s journal names (trusted or not, any kind).

    ``False`` only when the file and every name were looked at and nothing is there; a file that
    cannot be stat'ed, or a name that cannot be looked at, says ``True`` so that the caller takes
    the full path (`apr.stamp.journal.require_no_pending_journal`), which reports it.
    """
    try:
        site = locate(target)
    except OSError:
        return True
    for path in (site.path, *site.legacy_paths):
        try:
            os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError:
            return True
        return True
    return False


__all__ = ["JOURNAL_PREFIX", "LEGACY_SUFFIX", "JournalSite", "any_journal_entry", "locate"]
