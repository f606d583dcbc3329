"""Deliberate faults for FALSIFY-RELIABILITY-008 (one output policy) and -009 (checksums travel).

Each is declared in contracts/reliability-v1.yaml and must turn the falsifier's tests red
(`apr contracts verify --falsifier FALSIFY-RELIABILITY-008 --mutants`). The tests run every
command in-process, so the harness's patch reaches them directly.
"""

from __future__ import annotations

import os
from typing import Any


def refuse_only_the_same_path(output: Any, inputs: Any, *, flag: str = "-o", same_hint: Any = None) -> None:
    """refuse_overlap without the "contains" and "lies inside" checks: only the very same path (or
    inode) is refused, so ``-o .`` around the input, or an output inside an input folder, passes."""
    from apr.errors import OutputIsInputError

    out = os.path.realpath(os.fspath(output))
    for source in inputs:
        if source is not None and out == os.path.realpath(os.fspath(source)):
            raise OutputIsInputError(f"{flag} is the input", path=os.fspath(output), field=flag)


def no_identity(path: Any) -> None:
    """_identity that never finds a file: a hard link to the input is no longer the input."""
    return None


def collisions_ignored(self: Any, names: Any) -> None:
    """FolderTarget.refuse_collisions that lets --force replace a file the command did not write."""
    return None


def finish_without_comparing(self: Any, reader: Any = None) -> None:
    """FooterCheck.finish that never compares the CRC it computed: export carries damage silently."""
    return None


def source_crc_unchecked(computed: int, source: Any, check: Any) -> None:
    """check_source_crc that compares nothing: stamp -o carries a damaged input on with exit 0."""
    return None


def feed_skips_payloads(self: Any, start: int, payload: Any) -> None:
    """FooterCheck.feed that counts a payload's length but not its bytes: the computed CRC is wrong
    for every input, so even an intact file is refused (the check must agree with zlib over the file)."""
    length = len(memoryview(payload).cast("B"))
    if start + length <= self._pos:
        return
    if start > self._pos:
        self._fill(start)
    import zlib

    self._crc = zlib.crc32(bytes(start + length - self._pos), self._crc)
    self._pos = start + length
