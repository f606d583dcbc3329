"""Deliberate faults for apr-run-tokenizer-v1."""

from __future__ import annotations

from apr.train.model import rope_cos_sin as _real_rope


def rope_from_zero(positions, head_dim, theta, dtype):
    """Every call's RoPE starts at position 0 (forgets the cache offset)."""
    return _real_rope(positions - positions[0], head_dim, theta, dtype)
