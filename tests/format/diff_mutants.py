"""Faults for contract apr-diff-v1 (`apr contracts verify --mutants`)."""

from __future__ import annotations

from typing import Any

import numpy as np


class _Everything(frozenset):
    def __contains__(self, item: object) -> bool:
        return True


EVERY_KEY = _Everything()


def stats_with_mean(pieces_a: Any, pieces_b: Any) -> tuple[float, float, float]:
    x = np.concatenate([np.asarray(p, np.float64).ravel() for p in pieces_a])
    y = np.concatenate([np.asarray(p, np.float64).ravel() for p in pieces_b])
    d = x - y
    norm = float(np.linalg.norm(x))
    return (float(np.mean(np.abs(d))) if d.size else 0.0, float(np.linalg.norm(d)) / norm if norm else 0.0,
            float(np.dot(x, y) / (norm * float(np.linalg.norm(y)))) if norm and np.linalg.norm(y) else 1.0)


def equal_by_values(self: Any, atol: float) -> bool:
    return self.max_abs is None or self.max_abs <= atol
