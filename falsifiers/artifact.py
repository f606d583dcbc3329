"""The file an artifact-level run is about: its path, sha256 and size, taken once and re-checked.

``pytest --artifact FILE`` (and ``apr contracts verify --artifact FILE``) makes a run *about one
file*: the harness digests it when the session starts, hands the record to every test through the
``apr_artifact`` fixture, digests it again when the session ends, and writes the digest into the
receipt. If the two digests differ, the verdict is UNKNOWN ("artifact changed during
verification"): a verdict for one digest is never reported for another.

Pure except for `digest_artifact`, which reads the file (read-only, in chunks).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from falsifiers.claims import FIXTURE
from falsifiers.errors import ArtifactNotFoundError

NO_ARTIFACT = "no --artifact given"
CHANGED = "artifact changed during verification"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One file under verification (plain data: it crosses to xdist workers as a dict).

    Attributes:
        path: the file as given on the command line, made absolute.
        sha256: hex digest of the whole file at session start.
        size: bytes at session start.
        model_card: the ``--model-card`` path (absolute), or ``None``.
    """

    path: str
    sha256: str
    size: int
    model_card: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "model_card": self.model_card}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRecord:
        return cls(data["path"], data["sha256"], int(data["size"]), data.get("model_card"))


def digest_artifact(path: str | os.PathLike[str], model_card: str | os.PathLike[str] | None = None) -> ArtifactRecord:
    """Read ``path`` once and return its record.

    Raises:
        ArtifactNotFoundError: the file (or the model card) does not exist or is not a regular file.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"abc")
        >>> digest_artifact(f.name).sha256[:12]
        'ba7816bf8f01'
    """
    target = os.path.abspath(os.fspath(path))
    if not os.path.isfile(target):
        raise ArtifactNotFoundError(f"--artifact {os.fspath(path)}: {'not a file' if os.path.exists(target) else 'no such file'}",
                                    path=target, hint="give the path of the checkpoint to verify, e.g. --artifact model.apr")
    card = None
    if model_card is not None:
        card = os.path.abspath(os.fspath(model_card))
        if not os.path.isfile(card):
            raise ArtifactNotFoundError(f"--model-card {os.fspath(model_card)}: no such file", path=card,
                                        hint=f"write one with `apr card {os.fspath(path)} -o {os.fspath(model_card)}`")
    digest = hashlib.sha256()
    size = 0
    with open(target, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
            size += len(block)
    return ArtifactRecord(target, digest.hexdigest(), size, card)


def artifact_change(before: ArtifactRecord, after: ArtifactRecord | None) -> str | None:
    """Why the verdict cannot stand for ``before``'s digest, or ``None`` when the file is unchanged."""
    if after is None:
        return f"{CHANGED}: {before.path} is gone"
    if after.sha256 != before.sha256 or after.size != before.size:
        return f"{CHANGED}: sha256 {before.sha256[:16]}… at start, {after.sha256[:16]}… at end"
    return None


__all__ = ["CHANGED", "FIXTURE", "NO_ARTIFACT", "ArtifactRecord", "artifact_change", "digest_artifact"]
