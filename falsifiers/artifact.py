"""The file an artifact-level run is about: its digest, taken once and re-checked, and faulty copies.

``pytest --artifact FILE`` (and ``apr contracts verify --artifact FILE``) makes a run *about one
file*: the harness digests it when the session starts, hands the record to every test through the
``apr_artifact`` fixture, digests it again when the session ends, and writes the digest into the
receipt. If the two digests differ, the verdict is UNKNOWN ("artifact changed during
verification"): a verdict for one digest is never reported for another. `digest_artifact` reads
the file (read-only, in chunks); the rest is pure.

An *artifact mutant* (``artifact: NAME``) gives the tests of an artifact-level falsifier a faulty
copy of that file instead of the file itself (`mutate_artifact`); the original is never touched.
Byte-level mutators need nothing; the others read and rewrite the copy with ``apr.format``,
imported when one runs: the harness works in projects without ``apr``, which is the project this
package was written for, not a dependency of it.

========================  ================================================  =======================
mutator                   fault                                             args (defaults)
========================  ================================================  =======================
zero_tensor               every value of one tensor set to 0                tensor (the largest)
nan_tensor                one value of one tensor set to NaN                tensor (the largest)
set_metadata              a metadata key set to a value                     key, value
swap_architecture         the architecture string replaced                  value ("llama")
clear_metadata            a metadata key removed (e.g. a provenance field)  key ("license")
drop_tokenizer            the embedded tokenizer removed, HAS_VOCAB cleared
clear_has_vocab           only the HAS_VOCAB header flag cleared
scale_rope_theta          rope_theta multiplied                             factor (0.01)
flip_data_byte            one byte of the data section inverted             from_end (64)
flip_header_byte          one byte of the 64-byte header inverted           offset (8)
truncate                  the file cut short                                keep (0.5 of its bytes)
========================  ================================================  =======================
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsifiers.binding import FIXTURE
from falsifiers.errors import ArtifactNotFoundError
from falsifiers.records import Mutant

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


# --- artifact mutants: faulty copies --------------------------------------------------------------
# (numpy and apr.format are imported inside the mutators that need them: see the module docstring)

Mutator = Callable[[bytes, Path, dict[str, Any]], None]


def _rewrite(source: bytes, target: Path, change: Callable[[dict[str, Any], dict[str, Any], int], int]) -> None:
    """Load the copy's tensors, metadata and flags, let ``change`` edit them, save the result."""
    import numpy as np

    from apr.format import save_file
    from apr.format.reader import load, open_file

    target.write_bytes(source)
    with open_file(target, verify_checksum=False) as reader:
        metadata = dict(reader.metadata)
        flags = int(reader.flags)
    tensors = {name: np.array(value) if isinstance(value, np.ndarray) else value for name, value in load(source).items()}
    flags = change(tensors, metadata, flags)
    save_file(tensors, target, metadata, flags=flags, durable=False)


def _largest(tensors: dict[str, Any], args: dict[str, Any]) -> str:
    import numpy as np

    if "tensor" in args:
        return str(args["tensor"])
    floats = [n for n, t in tensors.items() if isinstance(t, np.ndarray) and np.issubdtype(t.dtype, np.floating)]
    return max(floats, key=lambda n: tensors[n].size)


def _zero_tensor(source: bytes, target: Path, args: dict[str, Any]) -> None:
    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        name = _largest(tensors, args)
        tensors[name] = tensors[name] * 0
        return flags

    _rewrite(source, target, change)


def _nan_tensor(source: bytes, target: Path, args: dict[str, Any]) -> None:
    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        name = _largest(tensors, args)
        tensors[name].flat[0] = float("nan")
        return flags

    _rewrite(source, target, change)


def _set_metadata(source: bytes, target: Path, args: dict[str, Any]) -> None:
    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        meta[str(args["key"])] = args["value"]
        return flags

    _rewrite(source, target, change)


def _swap_architecture(source: bytes, target: Path, args: dict[str, Any]) -> None:
    _set_metadata(source, target, {"key": "architecture", "value": args.get("value", "llama")})


def _clear_metadata(source: bytes, target: Path, args: dict[str, Any]) -> None:
    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        meta.pop(str(args.get("key", "license")), None)
        return flags

    _rewrite(source, target, change)


def _drop_tokenizer(source: bytes, target: Path, args: dict[str, Any]) -> None:
    from apr.format import Flags

    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        for key in [k for k in meta if k.startswith("tokenizer.")]:
            del meta[key]
        return flags & ~int(Flags.HAS_VOCAB)

    _rewrite(source, target, change)


def _clear_has_vocab(source: bytes, target: Path, args: dict[str, Any]) -> None:
    from apr.format import Flags

    _rewrite(source, target, lambda tensors, meta, flags: flags & ~int(Flags.HAS_VOCAB))


def _scale_rope_theta(source: bytes, target: Path, args: dict[str, Any]) -> None:
    def change(tensors: dict[str, Any], meta: dict[str, Any], flags: int) -> int:
        meta["rope_theta"] = float(meta.get("rope_theta", 10000.0)) * float(args.get("factor", 0.01))
        return flags

    _rewrite(source, target, change)


def _flip(source: bytes, target: Path, offset: int) -> None:
    data = bytearray(source)
    data[offset] ^= 0xFF
    target.write_bytes(bytes(data))


def _flip_data_byte(source: bytes, target: Path, args: dict[str, Any]) -> None:
    _flip(source, target, len(source) - int(args.get("from_end", 64)))


def _flip_header_byte(source: bytes, target: Path, args: dict[str, Any]) -> None:
    _flip(source, target, int(args.get("offset", 8)))


def _truncate(source: bytes, target: Path, args: dict[str, Any]) -> None:
    target.write_bytes(source[: int(len(source) * float(args.get("keep", 0.5)))])


MUTATORS: dict[str, Mutator] = {
    "zero_tensor": _zero_tensor,
    "nan_tensor": _nan_tensor,
    "set_metadata": _set_metadata,
    "swap_architecture": _swap_architecture,
    "clear_metadata": _clear_metadata,
    "drop_tokenizer": _drop_tokenizer,
    "clear_has_vocab": _clear_has_vocab,
    "scale_rope_theta": _scale_rope_theta,
    "flip_data_byte": _flip_data_byte,
    "flip_header_byte": _flip_header_byte,
    "truncate": _truncate,
}


def mutate_artifact(record: ArtifactRecord, mutant: Mutant, folder: str | os.PathLike[str]) -> ArtifactRecord:
    """Write ``mutant``'s faulty copy of the artifact into ``folder`` and return the copy's record.

    Raises:
        KeyError: the mutant names no built-in mutator (``--apply-mutant`` checks this first).
    """
    assert mutant.artifact is not None
    mutator = MUTATORS[mutant.artifact]
    source = Path(record.path).read_bytes()
    target = Path(folder) / Path(record.path).name
    mutator(source, target, dict(mutant.args))
    return digest_artifact(target, record.model_card)


__all__ = ["CHANGED", "FIXTURE", "MUTATORS", "NO_ARTIFACT", "ArtifactRecord", "artifact_change", "digest_artifact",
           "mutate_artifact"]
