"""The one file-digest helper: SHA-256 of a file's bytes, read in chunks.

Here (numpy at most, never torch) so that `apr qa`, readiness, publish and training share it
without any of them importing the others' heavy dependencies.
"""

from __future__ import annotations

import hashlib
import os

_CHUNK = 8 * 1024 * 1024


def file_sha256(path: str | os.PathLike[str], chunk: int = _CHUNK) -> str:
    """Hex SHA-256 of the file at ``path``, read ``chunk`` bytes at a time (memory stays bounded).

    Raises:
        OSError: the file cannot be opened or read (FileNotFoundError for a missing one).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     file_sha256(f.name)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["file_sha256"]
