"""Recognise a checkpoint's format from its first bytes, and say what to do with a foreign one."""

from __future__ import annotations

import enum
import os
import struct

from apr.errors import TruncatedError, WrongFormatError
from apr.format.header import HEADER_SIZE, MAGIC


class FileFormat(str, enum.Enum):
    APR2 = "apr2"
    APR1 = "apr1"  # aprender's classic "APRN" and the legacy "APR1"/"APR2" magics
    GGUF = "gguf"
    SAFETENSORS = "safetensors"
    UNKNOWN = "unknown"


_LEGACY_APR = (b"APRN", b"APR1", b"APR2")


def sniff_bytes(head: bytes, file_size: int | None = None) -> FileFormat:
    """The format of a file whose first bytes are ``head`` (16 bytes are enough)."""
    if head[:4] == MAGIC:
        return FileFormat.APR2
    if head[:4] in _LEGACY_APR:
        return FileFormat.APR1
    if head[:4] == b"GGUF":
        return FileFormat.GGUF
    if len(head) >= 9:
        (n,) = struct.unpack_from("<Q", head, 0)
        if head[8:9] == b"{" and 2 <= n and (file_size is None or n + 8 <= file_size):
            return FileFormat.SAFETENSORS
    return FileFormat.UNKNOWN


def sniff_format(path: str | os.PathLike[str]) -> FileFormat:
    """The format of the file at ``path`` (reads 16 bytes).

    Raises:
        AprFileNotFoundError: missing path or not a regular file.
    """
    from apr.errors import AprFileNotFoundError, AprIOError

    target = os.fspath(path)
    if not os.path.isfile(target):
        what = "file not found" if not os.path.exists(target) else "not a file (a folder or device)"
        raise AprFileNotFoundError(what, path=target, hint="check the path")
    try:
        with open(target, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError as err:
        raise AprIOError(f"cannot read file: {err.strerror}", path=target) from err
    return sniff_bytes(head, size)


def require_apr2(head: bytes, file_size: int, path: str | None = None) -> None:
    """Raise a `WrongFormatError` (with the conversion to run) unless ``head`` starts an APR v2 file."""
    fmt = sniff_bytes(head, file_size)
    if fmt is FileFormat.APR2:
        if file_size < HEADER_SIZE:
            raise TruncatedError(
                f"file too small to contain a valid APR header: {file_size} bytes, need {HEADER_SIZE}",
                path=path,
                hint="the file is truncated; re-copy or re-export it",
            )
        return
    if fmt is FileFormat.APR1:
        raise WrongFormatError(
            f"legacy APR format detected ({head[:4].decode('ascii')}); only APR v2 (APR\\0) is supported",
            detected=fmt.value,
            path=path,
            offset=0,
            hint="re-import the model from its source with `apr import SRC -o OUT.apr` to create a v2 file",
        )
    if fmt is FileFormat.GGUF:
        raise WrongFormatError(
            "GGUF format detected, not APR v2",
            detected=fmt.value,
            path=path,
            offset=0,
            hint=f"convert it first: apr import {path or 'MODEL.gguf'} -o MODEL.apr",
        )
    if fmt is FileFormat.SAFETENSORS:
        raise WrongFormatError(
            "safetensors format detected, not APR v2",
            detected=fmt.value,
            path=path,
            offset=0,
            hint="import the Hugging Face folder that holds it: apr import MODEL_DIR -o MODEL.apr",
        )
    if file_size < 4:
        raise TruncatedError(
            f"file too small to contain a valid APR header: {file_size} bytes, need {HEADER_SIZE}",
            path=path,
            hint="the file is empty or truncated; re-copy or re-export it",
        )
    raise WrongFormatError(
        f"invalid magic bytes: expected 41505200 ('APR\\0'), got {head[:4].hex()}",
        detected=fmt.value,
        path=path,
        offset=0,
        hint="this is not a model file `apr` can read; check the path",
    )
