"""Faults for contract apr-gguf-roundtrip-v1 (`apr contracts verify --mutants`)."""

from __future__ import annotations

from typing import Any


def carry_nothing(fields: Any, arch: str) -> dict[str, Any]:
    return {}


def types_from_added_only(vocabulary_size: int, added: Any, carried: Any) -> list[int]:
    types = [1] * vocabulary_size
    for token in added:
        if token.id < vocabulary_size:
            types[token.id] = 3 if token.special else 4
    return types


def write_nothing(writer: Any, carried: Any, arch: str) -> list[str]:
    return []


def always_zero(vocabulary: Any, special_tokens: Any, name: str) -> int:
    return 0


def no_record(tally: Any) -> None:
    return None


def group_per_tensor(notes: Any) -> list[Any]:
    from apr.convert.fallbacks import FallbackGroup

    out = []
    for note in notes:
        name, _, reason = note.partition(": ")
        out.append(FallbackGroup(reason, (name,)))
    return out


def source_name_always(metadata: Any, carried: Any) -> str:
    source = carried.get("general.name")
    return source if isinstance(source, str) and source else str(metadata.get("name") or "model")
