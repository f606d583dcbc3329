"""Two checkpoints compared: metadata key by key, header flags, the tensor set, and for each tensor
in both its largest absolute difference, relative L2 error and cosine. Either side may be an APR
file, a safetensors file or Hugging Face folder, or a GGUF file, read through the importers
(`apr.convert.diff_sources`) with Hugging Face names, so ``apr diff model.apr model-q8_0.gguf``
gives each tensor's quantization error.

Streaming: each tensor is read in pieces of a million elements with positioned reads (not the memory
map, whose touched pages would count against the process), and the statistics are accumulated in
float64 piece by piece, so memory stays at a few pieces whatever the file or tensor size (a
quantized tensor is dequantized whole). Pure reading: nothing is written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Metadata that describes the file's own bytes rather than the model (none today: a stamped copy
# differs from its source in exactly the stamped keys, and the diff shows every one).
LAYOUT_KEYS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TensorDiff:
    """One tensor present on both sides."""

    name: str
    shape: tuple[list[int], list[int]]
    dtype: tuple[str, str]
    max_abs: float | None  # None: shapes differ, nothing to compare
    rel_l2: float | None
    cosine: float | None

    def equal(self, atol: float) -> bool:
        return self.shape[0] == self.shape[1] and self.max_abs is not None and self.max_abs <= atol

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": list(self.dtype), "max_abs": self.max_abs,
                "rel_l2": self.rel_l2, "cosine": self.cosine}


@dataclass
class CheckpointDiff:
    """Everything that differs between ``a`` and ``b`` (an empty diff: the same model)."""

    a: str
    b: str
    atol: float
    metadata: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (a's value, b's value)
    flags: tuple[list[str], list[str]] | None = None
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    tensors: list[TensorDiff] = field(default_factory=list)
    formats: tuple[str, str] = ("apr", "apr")

    @property
    def changed_tensors(self) -> list[TensorDiff]:
        return [t for t in self.tensors if not t.equal(self.atol) or t.dtype[0] != t.dtype[1]]

    @property
    def equal(self) -> bool:
        return not (self.metadata or self.flags or self.only_a or self.only_b or self.changed_tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": "diff", "a": self.a, "b": self.b, "formats": list(self.formats), "atol": self.atol,
            "equal": self.equal,
            "metadata_compared": "all keys" if self.formats == ("apr", "apr") else "config keys both sides have",
            "metadata": {k: {"a": va, "b": vb} for k, (va, vb) in sorted(self.metadata.items())},
            "flags": {"a": self.flags[0], "b": self.flags[1]} if self.flags else None,
            "only_in_a": self.only_a, "only_in_b": self.only_b,
            "tensors_compared": len(self.tensors),
            "tensors_changed": [t.to_dict() for t in self.changed_tensors],
        }


def tensor_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(max |a - b|, ||a - b|| / ||a||, cosine(a, b)) in float64; an all-zero side has cosine 1 only
    when both are zero, and a relative error of 0 or inf by whether they differ.

    Example:
        >>> tensor_stats(np.array([3.0, 4.0]), np.array([3.0, 4.0]))
        (0.0, 0.0, 1.0)
    """
    return chunked_stats([np.asarray(a).ravel()], [np.asarray(b).ravel()])


def chunked_stats(pieces_a: Iterable[np.ndarray], pieces_b: Iterable[np.ndarray]) -> tuple[float, float, float]:
    """`tensor_stats` over two tensors given as aligned pieces (equal element counts, in order)."""
    max_abs, xx, yy, dd, xy = 0.0, 0.0, 0.0, 0.0, 0.0
    for piece_a, piece_b in zip(pieces_a, pieces_b, strict=True):
        x, y = piece_a.astype(np.float64), piece_b.astype(np.float64)
        delta = x - y
        if delta.size:
            max_abs = max(max_abs, float(np.max(np.abs(delta))))
        xx, yy, dd, xy = xx + float(x @ x), yy + float(y @ y), dd + float(delta @ delta), xy + float(x @ y)
    norm_x, norm_y, norm_d = math.sqrt(xx), math.sqrt(yy), math.sqrt(dd)
    rel = norm_d / norm_x if norm_x else (0.0 if norm_d == 0 else math.inf)
    if norm_x and norm_y:
        cosine = xy / (norm_x * norm_y)
    else:
        cosine = 1.0 if norm_x == norm_y == 0 else 0.0
    return max_abs, rel, cosine


# What compares across formats: the model's configuration as each importer derives it (a GGUF or
# safetensors side has no provenance, tokenizer keys or stamp fields to compare).
CONFIG_KEYS: tuple[str, ...] = (
    "architecture", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "vocab_size",
    "max_position_embeddings", "head_dim", "rope_theta", "rms_norm_eps", "license",
)
_FLOAT32_KEYS = frozenset({"rope_theta", "rms_norm_eps"})  # GGUF stores them as float32


def same_config_value(key: str, a: Any, b: Any) -> bool:
    """Equal, with GGUF's float32 keys compared at float32 (1e-5 reads back as 9.99999974e-06).

    >>> same_config_value("rms_norm_eps", 1e-5, 9.999999747378752e-06), same_config_value("num_heads", 9, 8)
    (True, False)
    """
    if key in _FLOAT32_KEYS and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.float32(a) == np.float32(b))
    return a == b


def diff_checkpoints(a: str | os.PathLike[str], b: str | os.PathLike[str], *, atol: float = 0.0,
                     progress: Callable[[int, int], None] | None = None) -> CheckpointDiff:
    """Compare two checkpoints (see the module docstring); each may be an APR file, a safetensors
    file or Hugging Face folder, or a GGUF file (`apr.convert.diff_sources`). Two APR files compare
    every metadata key; otherwise the `CONFIG_KEYS` both sides have. A tied head that one side
    leaves out (GGUF, safetensors exports) is read from its embedding, as an import does.

    Raises:
        AprFileNotFoundError: a side does not exist (exit 3).
        FormatError, ConvertError: a side is not a valid file of its format (exit 4 / 5).
    """
    from apr.convert.diff_sources import open_side

    result = CheckpointDiff(a=os.fspath(a), b=os.fspath(b), atol=atol)
    with open_side(a) as ra, open_side(b) as rb:
        result.formats = (ra.format, rb.format)
        if ra.format == rb.format == "apr":
            for key in sorted(set(ra.metadata) | set(rb.metadata)):
                va, vb = ra.metadata.get(key), rb.metadata.get(key)
                if va != vb and key not in LAYOUT_KEYS:
                    result.metadata[key] = (va, vb)
        else:
            for key in CONFIG_KEYS:
                va, vb = ra.metadata.get(key), rb.metadata.get(key)
                if va is not None and vb is not None and not same_config_value(key, va, vb) and key not in LAYOUT_KEYS:
                    result.metadata[key] = (va, vb)
        if ra.flags is not None and rb.flags is not None and ra.flags != rb.flags:
            result.flags = (ra.flags, rb.flags)
        for this, other in ((ra, rb), (rb, ra)):
            if "lm_head.weight" in other.shapes and "lm_head.weight" not in this.shapes \
                    and "model.embed_tokens.weight" in this.shapes:
                this.alias("lm_head.weight", "model.embed_tokens.weight")
        names_a, names_b = ra.names(), rb.names()
        set_a, set_b = set(names_a), set(names_b)
        result.only_a = [n for n in names_a if n not in set_b]
        result.only_b = [n for n in names_b if n not in set_a]
        common = [n for n in names_a if n in set_b]
        for index, name in enumerate(common):
            shapes = (list(ra.shapes[name]), list(rb.shapes[name]))
            dtypes = (ra.dtypes[name], rb.dtypes[name])
            if shapes[0] != shapes[1]:
                result.tensors.append(TensorDiff(name, shapes, dtypes, None, None, None))
            else:
                stats = chunked_stats(_realigned(ra.iter_float32(name)), _realigned(rb.iter_float32(name)))
                result.tensors.append(TensorDiff(name, shapes, dtypes, *stats))
            if progress is not None:
                progress(index + 1, len(common))
    return result


def _realigned(pieces: Iterable[np.ndarray], size: int = 1 << 20) -> Iterator[np.ndarray]:
    """The same values in pieces of exactly ``size`` (the last shorter), so two sides read in
    differently sized pieces (a whole dequantized GGUF tensor, APR's positioned reads) line up."""
    buffer: list[np.ndarray] = []
    held = 0
    for piece in pieces:
        piece = np.asarray(piece).ravel()
        while piece.size:
            take = min(size - held, piece.size)
            buffer.append(piece[:take])
            held += take
            piece = piece[take:]
            if held == size:
                yield buffer[0] if len(buffer) == 1 else np.concatenate(buffer)
                buffer, held = [], 0
    if held:
        yield buffer[0] if len(buffer) == 1 else np.concatenate(buffer)


__all__ = ["CONFIG_KEYS", "LAYOUT_KEYS", "same_config_value", "CheckpointDiff", "TensorDiff", "chunked_stats", "diff_checkpoints", "tensor_stats"]
