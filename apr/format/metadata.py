"""The metadata section: one compact JSON object (docs/aprender-format.md §1.8).

Typed fields are written first, in ``AprV2Metadata``'s declaration order and with its
serialisation rules (`license`, `data_source` and `data_license` always present, null when unset —
FALSIFY-SHIP-022; `model_type`, `total_size`, `param_count` always present with their defaults;
other optional fields omitted when unset). Custom keys follow, flattened at the top level — in
sorted order, so the same input always gives the same bytes (aprender's HashMap order does not).

Reading accepts both aprender generations (older writers emit every optional field as null) and
rejects what JSON cannot be trusted with: NaN/Infinity literals, non-object documents, nesting
deep enough to exhaust the parser (the C scanner's RecursionError is turned into MetadataError).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from apr.errors import MetadataError, TensorInputError

MAX_METADATA_SIZE = 16 * 1024 * 1024  # aprender's MAX_METADATA_SIZE; parsing it stays well under 256 MiB

# (key, kind, always_written, default). kind: str | int | float | object
TYPED_FIELDS: tuple[tuple[str, str, bool, Any], ...] = (
    ("model_type", "str", True, ""),
    ("name", "str", False, None),
    ("description", "str", False, None),
    ("author", "str", False, None),
    ("license", "str", True, None),
    ("data_source", "str", True, None),
    ("data_license", "str", True, None),
    ("version", "str", False, None),
    ("source", "str", False, None),
    ("original_format", "str", False, None),
    ("created_at", "str", False, None),
    ("total_size", "int", True, 0),
    ("param_count", "int", True, 0),
    ("quantization", "object", False, None),
    ("sharding", "object", False, None),
    ("chat_template", "str", False, None),
    ("chat_format", "str", False, None),
    ("special_tokens", "object", False, None),
    ("architecture", "str", False, None),
    ("hf_architecture", "str", False, None),
    ("hf_model_type", "str", False, None),
    ("hidden_size", "int", False, None),
    ("num_layers", "int", False, None),
    ("num_heads", "int", False, None),
    ("num_kv_heads", "int", False, None),
    ("vocab_size", "int", False, None),
    ("intermediate_size", "int", False, None),
    ("max_position_embeddings", "int", False, None),
    ("rope_theta", "float", False, None),
    ("rope_type", "int", False, None),
    ("rms_norm_eps", "float", False, None),
    ("head_dim", "int", False, None),
    ("num_experts", "int", False, None),
    ("num_experts_per_tok", "int", False, None),
    ("moe_intermediate_size", "int", False, None),
)
TYPED_KEYS: frozenset[str] = frozenset(key for key, *_ in TYPED_FIELDS)
_KIND = {key: kind for key, kind, *_ in TYPED_FIELDS}


def _check_value(key: str, kind: str, value: Any) -> Any:
    """Coerce a typed field the way serde would accept it, or raise TensorInputError."""
    if value is None:
        return None
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise TensorInputError(f"metadata field {key!r} must be a non-negative integer, got {value!r}", field=key)
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise TensorInputError(f"metadata field {key!r} must be finite, got {value!r}", field=key)
        return float(value)
    if kind == "object" and isinstance(value, Mapping):
        return dict(value)
    raise TensorInputError(
        f"metadata field {key!r} must be {'an object' if kind == 'object' else 'a ' + kind}, "
        f"got {type(value).__name__} {value!r}",
        field=key,
        hint=f"pass {key}=<{kind}> or leave it out",
    )


def canonical_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata dict exactly as it will be written: typed fields in order, then sorted custom keys."""
    metadata = dict(metadata or {})
    for key in metadata:
        if not isinstance(key, str):
            raise TensorInputError(f"metadata keys must be strings, got {key!r}", hint="convert keys with str()")
    result: dict[str, Any] = {}
    for key, kind, always, default in TYPED_FIELDS:
        value = _check_value(key, kind, metadata.get(key))
        if value is None:
            if always:
                result[key] = default
            continue
        result[key] = value
    for key in sorted(k for k in metadata if k not in TYPED_KEYS):
        result[key] = metadata[key]
    return result


def encode_metadata(metadata: Mapping[str, Any] | None) -> bytes:
    """Compact UTF-8 JSON (serde_json's ``to_vec`` style: no spaces, no trailing newline).

    Raises:
        TensorInputError: a value JSON cannot hold (NaN, Infinity, bytes, a set...).
    """
    document = canonical_metadata(metadata)
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise TensorInputError(
            f"metadata is not JSON-serialisable: {err}",
            hint="metadata values must be str, int, finite float, bool, None, lists or dicts",
        ) from err
    data = _encode_utf8(text)
    if len(data) > MAX_METADATA_SIZE:
        raise TensorInputError(
            f"metadata is {len(data)} bytes, over the {MAX_METADATA_SIZE}-byte limit",
            hint="store large data as tensors, not metadata",
        )
    return data


def _encode_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates in a key or value
        raise TensorInputError(
            f"metadata contains text that is not valid Unicode: {err.object[err.start:err.end]!r}",
            hint="remove unpaired surrogate characters from metadata strings",
        ) from err


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf: as unwritable as a NaN literal
        raise ValueError(f"number {text[:40]} overflows to infinity")
    return value


def decode_metadata(data: bytes | memoryview) -> dict[str, Any]:
    """Parse the metadata JSON object; duplicate keys: last wins (as aprender, ALB-107).

    Raises:
        MetadataError: not UTF-8, not JSON, not an object, NaN/Infinity, too deep, or a typed
            field of the wrong JSON type.
    """
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MetadataError(
            f"metadata is not valid UTF-8 (byte {err.start})",
            hint="the metadata section is corrupt; restore the file or re-stamp it with `apr stamp`",
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as err:
        raise MetadataError(
            f"metadata is not valid JSON: {err}",
            hint="the metadata section is corrupt; restore the file or rewrite its metadata with `apr stamp`",
        ) from None
    if not isinstance(value, dict):
        raise MetadataError(
            f"metadata must be a JSON object, got {type(value).__name__}",
            hint="the metadata section is corrupt; restore the file from its source",
        )
    for key, kind in _KIND.items():
        item = value.get(key)
        if item is None:
            continue
        ok = (
            (kind == "str" and isinstance(item, str))
            or (kind == "int" and isinstance(item, int) and not isinstance(item, bool) and item >= 0)
            or (kind == "float" and isinstance(item, (int, float)) and not isinstance(item, bool))
            or (kind == "object" and isinstance(item, dict))
        )
        if not ok:
            raise MetadataError(
                f"metadata field {key!r} should be {kind}, found {type(item).__name__} {item!r}"[:300],
                field=key,
                hint="re-stamp the field with `apr stamp` or remove it",
            )
    return value


__all__ = [
    "MAX_METADATA_SIZE",
    "TYPED_FIELDS",
    "TYPED_KEYS",
    "canonical_metadata",
    "decode_metadata",
    "encode_metadata",
]
