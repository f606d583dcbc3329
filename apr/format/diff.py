"""Two APR checkpoints compared: metadata key by key, header flags, the tensor set, and for each
tensor in both its largest absolute difference, relative L2 error and cosine.

Streaming: each tensor is read in pieces of a million elements with positioned reads (not the memory
map, whose touched pages would count against the process), and the statistics are accumulated in
float64 piece by piece, so memory stays at a few pieces whatever the file or tensor size (a
quantized tensor is dequantized whole). Pure reading: nothing is written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
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

    @property
    def changed_tensors(self) -> list[TensorDiff]:
        return [t for t in self.tensors if not t.equal(self.atol) or t.dtype[0] != t.dtype[1]]

    @property
    def equal(self) -> bool:
        return not (self.metadata or self.flags or self.only_a or self.only_b or self.changed_tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": "diff", "a": self.a, "b": self.b, "atol": self.atol, "equal": self.equal,
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


def diff_checkpoints(a: str | os.PathLike[str], b: str | os.PathLike[str], *, atol: float = 0.0,
                     progress: Callable[[int, int], None] | None = None) -> CheckpointDiff:
    """Compare two APR files (see the module docstring).

    Raises:
        AprFileNotFoundError: a side does not exist (exit 3).
        FormatError: a side is not a valid APR v2 file (exit 4).
    """
    from apr.format import open_file
    from apr.format.header import FLAG_LABELS

    result = CheckpointDiff(a=os.fspath(a), b=os.fspath(b), atol=atol)
    with open_file(a) as ra, open_file(b) as rb:
        for key in sorted(set(ra.metadata) | set(rb.metadata)):
            va, vb = ra.metadata.get(key), rb.metadata.get(key)
            if va != vb and key not in LAYOUT_KEYS:
                result.metadata[key] = (va, vb)
        labels_a = [label for flag, label in FLAG_LABELS if ra.header.flags & flag]
        labels_b = [label for flag, label in FLAG_LABELS if rb.header.flags & flag]
        if labels_a != labels_b:
            result.flags = (labels_a, labels_b)
        names_a, names_b = ra.keys(), rb.keys()
        result.only_a = [n for n in names_a if n not in set(names_b)]
        result.only_b = [n for n in names_b if n not in set(names_a)]
        common = [n for n in names_a if n in set(names_b)]
        for index, name in enumerate(common):
            ea, eb = ra.entry(name), rb.entry(name)
            shapes = (list(ea.shape), list(eb.shape))
            dtypes = (ea.dtype.name, eb.dtype.name)
            if shapes[0] != shapes[1]:
                result.tensors.append(TensorDiff(name, shapes, dtypes, None, None, None))
            else:
                stats = chunked_stats(ra.iter_float32(name), rb.iter_float32(name))
                result.tensors.append(TensorDiff(name, shapes, dtypes, *stats))
            if progress is not None:
                progress(index + 1, len(common))
    return result


__all__ = ["LAYOUT_KEYS", "CheckpointDiff", "TensorDiff", "chunked_stats", "diff_checkpoints", "tensor_stats"]
