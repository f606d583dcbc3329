"""The tokenizer that travels with an imported model (reference/aprender.md §6.3).

From a Hugging Face folder, through `apr.tokenizer.read_tokenizer_dir` (tokenizer.json, or
vocab.json + merges.txt), with the chat template from ``tokenizer_config.json`` or
``chat_template.jinja`` and BOS/EOS from config.json when it names them. From GGUF, rebuilt from
``tokenizer.ggml.*``: the tokens are already in byte-level form, control tokens become special
added tokens, and the pre-tokenizer name picks the split rules llama.cpp uses for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apr.errors import TokenizerError
from apr.tokenizer import AddedToken, TokenizerRecord, read_tokenizer_dir, record_to_metadata

log = logging.getLogger(__name__)

_MAX_TEMPLATE_BYTES = 1024 * 1024

# llama.cpp pre-tokenizer names (src/llama-vocab.cpp) -> the split regex its BPE uses.
_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_NO_REGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def _split(regex: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def pre_tokenizer_for(pre: str | None) -> dict[str, Any]:
    """tokenizers' pre_tokenizer section for a llama.cpp ``tokenizer.ggml.pre`` name."""
    if pre == "smollm":
        return {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]}
    if pre in ("llama-bpe", "llama3", "smaug-bpe"):
        return {"type": "Sequence", "pretokenizers": [_split(_LLAMA3_REGEX), _BYTE_LEVEL_NO_REGEX]}
    if pre in ("qwen2", "qwen3"):
        return {"type": "Sequence", "pretokenizers": [_split(_QWEN2_REGEX), _BYTE_LEVEL_NO_REGEX]}
    return dict(_BYTE_LEVEL)  # "gpt-2", "default", absent


def _pipeline(pre: str | None) -> dict[str, Any]:
    return {
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer_for(pre),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False},
    }


def _inside(root: Path, name: str) -> Path | None:
    candidate = root / name
    if not candidate.exists():
        return None
    real = candidate.resolve()
    if root.resolve() not in real.parents:
        raise TokenizerError(f"{name} resolves outside the model folder; refusing to read it", path=candidate)
    return real if real.is_file() else None


def _small_json(path: Path) -> Any:
    if path.stat().st_size > 64 * 1024 * 1024:
        raise TokenizerError(f"{path.name} is too large", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"{path.name} is not valid JSON: {err}", path=path) from err


def chat_template_from_folder(root: Path) -> str | None:
    """The chat template text (tokenizer_config.json ``chat_template``, else chat_template.jinja).

    The template is kept as text; it is only ever rendered in a sandbox by `apr run --chat`.
    """
    config_path = _inside(root, "tokenizer_config.json")
    if config_path is not None:
        config = _small_json(config_path)
        if isinstance(config, dict) and isinstance(config.get("chat_template"), str):
            return config["chat_template"]
    jinja = _inside(root, "chat_template.jinja")
    if jinja is not None and jinja.stat().st_size <= _MAX_TEMPLATE_BYTES:
        return jinja.read_text(encoding="utf-8")
    return None


def _read_record(source: Path) -> TokenizerRecord:
    """A tokenizer folder, or a tokenizer.json given as a file (aprender's ``--tokenizer FILE``)."""
    if source.is_file():
        with tempfile.TemporaryDirectory(prefix="apr-tokenizer-") as folder:
            shutil.copyfile(source, os.path.join(folder, "tokenizer.json"))
            return read_tokenizer_dir(folder)
    return read_tokenizer_dir(source)


def tokenizer_keys_from_folder(
    root: Path, config: Mapping[str, Any] | None, override: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], TokenizerRecord | None]:
    """Metadata keys embedding the folder's tokenizer (empty when there is none).

    Raises:
        TokenizerError: a tokenizer is there (or was asked for) but is unusable.
    """
    source = Path(override) if override is not None else root
    has_files = override is not None or any((root / n).exists() for n in ("tokenizer.json", "vocab.json"))
    if not has_files:
        return {}, None
    record = _read_record(source)
    config = config or {}
    changes: dict[str, Any] = {}
    for key in ("bos_token_id", "eos_token_id"):
        value = config.get(key)
        if isinstance(value, list) and value and isinstance(value[0], int):
            value = value[0]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < record.vocab_size:
            changes[key] = value
    if changes:
        record = dataclasses.replace(record, **changes)
    keys = record_to_metadata(record)
    template = chat_template_from_folder(source if source.is_dir() else source.parent)
    if template is None and source != root:
        template = chat_template_from_folder(root)
    if template is not None:
        keys["chat_template"] = template
    keys["special_tokens"] = _special_tokens(record)
    return keys, record


def _special_tokens(record: TokenizerRecord) -> dict[str, Any]:
    def token(index: int | None) -> str | None:
        return record.vocabulary[index] if index is not None and 0 <= index < record.vocab_size else None

    specials = {t.content for t in record.added_tokens}
    return {
        "bos_token": token(record.bos_token_id),
        "eos_token": token(record.eos_token_id),
        "unk_token": None,
        "pad_token": None,
        "im_start_token": "<|im_start|>" if "<|im_start|>" in specials else None,
        "im_end_token": "<|im_end|>" if "<|im_end|>" in specials else None,
    }


def record_from_gguf(fields: Mapping[str, Any]) -> TokenizerRecord | None:
    """A `TokenizerRecord` from GGUF ``tokenizer.ggml.*`` values (None when the file has none).

    Args:
        fields: GGUF key -> decoded value (strings, ints, lists).

    Raises:
        TokenizerError: the tokenizer is not byte-level BPE (``tokenizer.ggml.model`` != gpt2).
    """
    tokens = fields.get("tokenizer.ggml.tokens")
    if not tokens:
        return None
    model = fields.get("tokenizer.ggml.model", "gpt2")
    if model != "gpt2":
        raise TokenizerError(
            f"GGUF tokenizer model {model!r} is not byte-level BPE (gpt2); it cannot be embedded",
            field="tokenizer.ggml.model",
            hint="import with --tokenizer DIR pointing at the model's Hugging Face tokenizer folder",
        )
    types = list(fields.get("tokenizer.ggml.token_type") or [])
    added = []
    for index, kind in enumerate(types):
        if kind in (3, 4):  # control, user-defined
            added.append(AddedToken(id=index, content=tokens[index], special=kind == 3))
    merges = tuple(fields.get("tokenizer.ggml.merges") or ())

    def token_id(key: str) -> int | None:
        value = fields.get(key)
        return value if isinstance(value, int) and 0 <= value < len(tokens) else None

    return TokenizerRecord(
        vocabulary=tuple(tokens), merges=merges, model_type="BPE", added_tokens=tuple(added),
        bos_token_id=token_id("tokenizer.ggml.bos_token_id"), eos_token_id=token_id("tokenizer.ggml.eos_token_id"),
        pipeline=_pipeline(fields.get("tokenizer.ggml.pre")),
    )


def tokenizer_keys_from_record(record: TokenizerRecord, chat_template: str | None, pre: str | None) -> dict[str, Any]:
    keys = record_to_metadata(record)
    if chat_template:
        keys["chat_template"] = chat_template
    if pre:
        keys["tokenizer.pre_type"] = pre
    keys["special_tokens"] = _special_tokens(record)
    return keys


__all__ = [
    "chat_template_from_folder",
    "pre_tokenizer_for",
    "record_from_gguf",
    "tokenizer_keys_from_folder",
    "tokenizer_keys_from_record",
]
