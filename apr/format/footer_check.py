"""Checksums travel: check an APR file's CRCs while a command copies it (issue 14, item 5).

The footer is CRC-32 of every byte before it: prefix, payloads and padding (`apr validate` check
15). A converter reads every payload it exports anyway, so `FooterCheck` CRCs each payload as the
converter reads it (the same memory-mapped bytes, so the file is read once) and fills the gaps —
the prefix, the padding, a tensor the converter skips such as a tied ``lm_head.weight`` — with
positioned reads from its own descriptor. Payloads read in offset order (sorted names: how
`apr.format.save_file` lays a file out) make one sequential CRC, no combination needed; one read
out of order is covered by the gap fill (correct, only a second read of those bytes).

A mismatch is a `Damage`: without ``--allow-damaged`` the command raises `DamagedInputError`
before its output replaces anything; with it, the command carries the bytes over as read and
reports the `Damage` (text and ``--json``), because the formats it writes (safetensors, GGUF)
have no checksum of their own to keep the damage visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from apr.errors import AprIOError, DamagedInputError
from apr.format.crc import bulk_crc32
from apr.format.header import FOOTER_SIZE

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Damage:
    """What the CRCs of an input say is wrong with it.

    Attributes:
        path: the input.
        footer_stored, footer_computed: the footer CRC as stored and as computed over the bytes.
        header_stored, header_computed: the header CRC, when it did not match either (None if it did).
        tensors: how many tensors were carried over as read.
    """

    path: str
    footer_stored: int
    footer_computed: int
    header_stored: int | None = None
    header_computed: int | None = None
    tensors: int = 0

    @property
    def summary(self) -> str:
        parts = []
        if self.header_stored is not None:
            parts.append(f"header CRC stored 0x{self.header_stored:08x}, computed 0x{self.header_computed or 0:08x}")
        if self.footer_stored != self.footer_computed:
            parts.append(f"footer CRC stored 0x{self.footer_stored:08x}, computed 0x{self.footer_computed:08x}")
        return "; ".join(parts)

    @property
    def carried_over(self) -> str:
        """What a salvage wrote, in words: APR v2 has one CRC for all data, so no tensor is named."""
        return (f"all {self.tensors} tensors were carried over as read, damage included ({self.summary}); "
                "APR v2 keeps one CRC for the whole file, so which bytes differ cannot be told")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "footer_stored": f"0x{self.footer_stored:08x}",
            "footer_computed": f"0x{self.footer_computed:08x}",
            "header_stored": None if self.header_stored is None else f"0x{self.header_stored:08x}",
            "header_computed": None if self.header_computed is None else f"0x{self.header_computed:08x}",
            "tensors_carried_over": self.tensors,
            "carried_over": self.carried_over,
        }


def refuse_damage(damage: Damage | None, *, allow_damaged: bool, command: str) -> Damage | None:
    """Raise `DamagedInputError` for ``damage`` unless ``allow_damaged``; return it otherwise.

    Raises:
        DamagedInputError: exit 5, naming both CRCs and the salvage flag.
    """
    if damage is None or allow_damaged:
        return damage
    raise DamagedInputError(
        f"the input is damaged: {damage.summary}; {command} wrote nothing", path=damage.path,
        hint=f"see `apr validate {damage.path}`; restore the file from its source, or pass --allow-damaged "
        "to carry its bytes over as they are (the report then says so)",
    )


class FooterCheck:
    """The footer CRC of one APR file, computed from what a copy reads (see the module docstring).

    Use as a context manager; `feed` each payload as it is read, then `finish`.

    Example:
        >>> with FooterCheck("model.apr") as check, open_file("model.apr") as reader:  # doctest: +SKIP
        ...     for name in reader.keys():
        ...         check.feed_tensor(reader, name)
        ...     damage = check.finish(reader)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self.size = os.fstat(self._fd).st_size
        except OSError as err:
            raise AprIOError(f"cannot open file: {err.strerror}", path=self.path) from err
        self._end = max(self.size - FOOTER_SIZE, 0)
        self._pos = 0
        self._crc = 0
        self.tensors = 0
        # zlib-ng's SIMD CRC for a large file (several times zlib's: it was 0.7 s of CPU per GiB
        # of every export), zlib's for a small one; the same values (apr.format.crc.bulk_crc32)
        self._chunk_crc = bulk_crc32(self.size)

    def __enter__(self) -> FooterCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _fill(self, until: int) -> None:
        """CRC the bytes ``[pos, until)`` from the file itself."""
        while self._pos < until:
            chunk = os.pread(self._fd, min(_CHUNK, until - self._pos), self._pos)
            if not chunk:
                raise AprIOError(f"file shrank while being read (at byte {self._pos})", path=self.path,
                                 hint="another program is writing this file; retry when it is done")
            self._crc = self._chunk_crc(chunk, self._crc)
            self._pos += len(chunk)

    def feed(self, start: int, payload: Any) -> None:
        """Account for ``payload``, the bytes at ``[start, start + len)`` the caller has read."""
        view = memoryview(payload).cast("B")
        stop = start + len(view)
        if stop <= self._pos or start >= self._end:
            return  # already covered (read again, or out of order): the gap fill saw these bytes
        if start > self._pos:
            self._fill(start)
        view = view[self._pos - start:min(stop, self._end) - start]
        self._crc = self._chunk_crc(view, self._crc)
        self._pos += len(view)

    def feed_tensor(self, reader: Any, name: str) -> None:
        """`feed` tensor ``name``'s stored bytes from an open `apr.format.AprReader`."""
        entry = reader.entry(name)
        start, _stop = reader.absolute_range(entry)
        self.feed(start, reader.get_raw(name))
        self.tensors += 1

    def finish(self, reader: Any = None) -> Damage | None:
        """Read what was not fed, compare with the stored footer; a `Damage` or None.

        ``reader`` (the `AprReader` the caller copied from) adds its header CRC to the verdict
        when it was opened with ``verify_checksum=False``, and must be the same size as this file.
        """
        if reader is not None and reader.file_size != self.size:
            raise AprIOError("file changed size while being read", path=self.path,
                             hint="another program is writing this file; retry when it is done")
        self._fill(self._end)
        stored = int.from_bytes(os.pread(self._fd, FOOTER_SIZE, self._end).ljust(FOOTER_SIZE, b"\0"), "little")
        computed = self._crc & 0xFFFFFFFF
        header_bad = reader is not None and not reader.header.is_checksum_valid
        if stored == computed and not header_bad:
            return None
        total = len(reader.entries) if reader is not None else self.tensors
        return Damage(
            path=self.path, footer_stored=stored, footer_computed=computed,
            header_stored=reader.header.checksum if header_bad else None,
            header_computed=reader.header.computed_checksum if header_bad else None,
            tensors=total,
        )


__all__ = ["Damage", "FooterCheck", "refuse_damage"]
