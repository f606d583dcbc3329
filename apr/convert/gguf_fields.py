"""The GGUF metadata keys `apr import` reads, and the type each must have.

Why: ``gguf.GGUFReader`` decodes whatever type a key was written with, and the import used the
values as they came: ``general.architecture`` as an integer, ``*.context_length`` as a string or
an array, ``tokenizer.ggml.tokens`` as integers, token types as floats, a bos id as a string.
Some escaped as ``TypeError``/``ValueError`` tracebacks, others were embedded into the .apr and
crashed ``run`` later. `check_gguf_fields` checks every key in `SCHEMA` before any of them is used
and refuses a wrong one with a `ConvertError` naming the file, the key, the value's type and a fix.
Values (ranges, agreement with the tensors) are `apr.convert.dimensions`' and
`apr.convert.tokenizer_source.record_from_gguf`'s to check.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Any

from apr.errors import ConvertError

FIX = "re-convert the model with llama.cpp's convert_hf_to_gguf.py, or import its Hugging Face folder"


class Kind(enum.Enum):
    """The type a GGUF key must have (GGUF's integer types are all one kind here)."""

    STRING = "a string"
    INTEGER = "an integer"
    NUMBER = "a number"
    STRINGS = "an array of strings"
    INTEGERS = "an array of integers"


# (key, kind); "{arch}" is general.architecture.
SCHEMA: tuple[tuple[str, Kind], ...] = (
    ("general.architecture", Kind.STRING),
    ("general.name", Kind.STRING),
    ("{arch}.block_count", Kind.INTEGER),
    ("{arch}.embedding_length", Kind.INTEGER),
    ("{arch}.attention.head_count", Kind.INTEGER),
    ("{arch}.attention.head_count_kv", Kind.INTEGER),
    ("{arch}.feed_forward_length", Kind.INTEGER),
    ("{arch}.context_length", Kind.INTEGER),
    ("{arch}.attention.key_length", Kind.INTEGER),
    ("{arch}.vocab_size", Kind.INTEGER),
    ("{arch}.rope.freq_base", Kind.NUMBER),
    ("{arch}.attention.layer_norm_rms_epsilon", Kind.NUMBER),
    ("tokenizer.ggml.model", Kind.STRING),
    ("tokenizer.ggml.pre", Kind.STRING),
    ("tokenizer.ggml.tokens", Kind.STRINGS),
    ("tokenizer.ggml.merges", Kind.STRINGS),
    ("tokenizer.ggml.token_type", Kind.INTEGERS),
    ("tokenizer.ggml.bos_token_id", Kind.INTEGER),
    ("tokenizer.ggml.eos_token_id", Kind.INTEGER),
    ("tokenizer.ggml.unknown_token_id", Kind.INTEGER),
    ("tokenizer.ggml.padding_token_id", Kind.INTEGER),
    ("tokenizer.chat_template", Kind.STRING),
)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: Any, kind: Kind) -> bool:
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.INTEGER:
        return _is_integer(value)
    if kind is Kind.NUMBER:
        return _is_integer(value) or isinstance(value, float)
    if not isinstance(value, list):
        return False
    if kind is Kind.STRINGS:
        return all(isinstance(item, str) for item in value)
    return all(_is_integer(item) for item in value)


def describe_value(value: Any) -> str:
    """A decoded GGUF value's type in words: ``"an array of floats"``, ``"a string ('x')"``."""
    def one(item: Any) -> str:
        if isinstance(item, bool):
            return "boolean"
        if isinstance(item, int):
            return "integer"
        if isinstance(item, float):
            return "float"
        if isinstance(item, str):
            return "string"
        return "array" if isinstance(item, list) else type(item).__name__

    if isinstance(value, list):
        kinds = sorted({one(item) for item in value})
        return f"an array of {' and '.join(k + 's' for k in kinds)}" if kinds else "an empty array"
    text = repr(value)
    shown = text if len(text) <= 40 else text[:39] + "…"
    kind = one(value)
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({shown})"


def architecture_of(fields: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> str:
    """``general.architecture``, checked to be a string (every ``{arch}.*`` key depends on it).

    Raises:
        ConvertError: absent or not a string.
    """
    arch = fields.get("general.architecture")
    if not isinstance(arch, str):
        found = "absent" if arch is None else describe_value(arch)
        raise ConvertError(f"GGUF general.architecture is {found}, expected a string (llama, qwen2, qwen3)",
                           path=path, field="general.architecture", hint=FIX)
    return arch


def check_gguf_fields(fields: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> str:
    """Check the type of every key `apr import` reads; return ``general.architecture``.

    Args:
        fields: GGUF key -> decoded value (`apr.convert.gguf_import.read_gguf_fields`).
        path: the file, for messages.

    Raises:
        ConvertError: the first key whose value has the wrong type (absent keys are fine).

    Example:
        >>> check_gguf_fields({"general.architecture": "llama", "llama.context_length": "4096"})
        Traceback (most recent call last):
        apr.errors.ConvertError: GGUF llama.context_length is a string ('4096'), expected an integer
          fix: re-convert the model with llama.cpp's convert_hf_to_gguf.py, or import its Hugging Face folder
    """
    arch = architecture_of(fields, path)
    for pattern, kind in SCHEMA:
        key = pattern.format(arch=arch)
        value = fields.get(key)
        if value is not None and not _fits(value, kind):
            raise ConvertError(f"GGUF {key} is {describe_value(value)}, expected {kind.value}",
                               path=path, field=key, hint=FIX)
    return arch


__all__ = ["FIX", "SCHEMA", "Kind", "architecture_of", "check_gguf_fields", "describe_value"]
