"""Deliberate faults for FALSIFY-RELIABILITY-010..012 (import bounds): each must turn tests red.

Declared in contracts/reliability-v1.yaml and applied by ``apr contracts verify --mutants``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HUGE = 2**62
ZERO = 0


def check_nothing(*args: Any, **kwargs: Any) -> None:
    """check_dimensions that accepts every dimension."""
    return None


def file_inside_unchecked(folder: Any, name: str, *, error: Any, required: bool = False,
                          label: str = "the model folder") -> Path | None:
    """file_inside without the inside-the-folder and regular-file checks (follows any symlink)."""
    candidate = Path(folder) / name
    if not os.path.lexists(candidate):
        return None
    return Path(os.path.realpath(candidate))


def fits_without_item_types(value: Any, kind: Any) -> bool:
    """gguf_fields._fits that accepts any array for an array kind, whatever its items."""
    from apr.convert.gguf_fields import Kind

    if kind in (Kind.STRINGS, Kind.INTEGERS):
        return isinstance(value, list)
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def weight_map_files_unchecked(document: Any, path: Any) -> list[Any]:
    """weight_map_files that trusts the index's types."""
    return sorted(set(document["weight_map"].values()))


def generation_config_unchecked(document: Any, path: Any, *, vocab_size: Any) -> Any:
    """check_generation_config that embeds whatever the file holds."""
    return document
