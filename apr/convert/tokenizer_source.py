"""The tokenizer that travels with an imported model (docs/aprender-format.md §6.3).

From a Hugging Face folder, through `apr.tokenizer.read_tokenizer_dir` (tokenizer.json, or
vocab.json + merges.txt), with the chat template from ``tokenizer_config.json`` or
``chat_template.jinja`` and BOS/EOS from config.json when it names them. From GGUF, rebuilt from
``tokenizer.ggml.*``: the tokens are already in byte-level form, control tokens become special
added tokens, and the pre-tokenizer name picks the split rules llama.cpp uses for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apr.convert.gguf_fields import FIX as GGUF_FIX
from apr.convert.hf_side_files import (MAX_JSON_BYTES, check_side_files, check_token_id, mapping_or_refuse,
                                       read_json_file, wrong_type)
from apr.errors import ConvertError, TokenizerError
from apr.format.inputs import file_inside, read_regular
from apr.tokenizer import AddedToken, TokenizerRecord, read_tokenizer_dir, record_to_metadata

log = logging.getLogger(__name__)

_MAX_TEMPLATE_BYTES = 1024 * 1024
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "vocab.json", "merges.txt",
                    "added_tokens.json", "special_tokens_map.json")

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


def _template_from_config(config: Any, path: Path) -> str | None:
    """``chat_template`` of tokenizer_config.json: a string, or transformers' list of named
    templates (the one named ``default`` is taken); bos/eos tokens checked for type too."""
    name = "tokenizer_config.json"
    fix = f"correct it in {name} (or delete the key)"
    config = mapping_or_refuse(config, name, path, fix)
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key)
        content = value.get("content") if isinstance(value, dict) else value
        if content is not None and not isinstance(content, str):
            raise wrong_type(name, path, key, value, "a token string, {\"content\": string}, or null", fix)
    template = config.get("chat_template")
    if template is None or isinstance(template, str):
        return _bounded_template(template, path, "chat_template")
    if not isinstance(template, list):
        raise wrong_type(name, path, "chat_template", template, "a string or a list of {name, template}", fix)
    named: dict[str, str] = {}
    for position, entry in enumerate(template):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("template"), str)):
            raise wrong_type(name, path, f"chat_template[{position}]", entry,
                             "an object {\"name\": string, \"template\": string}", fix)
        named[entry["name"]] = entry["template"]
    if "default" not in named:
        log.warning("%s: none of the chat templates %s is named 'default'; none is embedded", path, sorted(named))
    return _bounded_template(named.get("default"), path, "chat_template")


def _bounded_template(template: str | None, path: Path, key: str) -> str | None:
    if template is not None and len(template) > _MAX_TEMPLATE_BYTES:
        raise ConvertError(f"the chat template is {len(template)} characters, over the {_MAX_TEMPLATE_BYTES} limit",
                           path=path, field=key, hint="a chat template is a few KB; check the file")
    return template


def chat_template_from_folder(root: Path) -> str | None:
    """The chat template text (tokenizer_config.json ``chat_template``, else chat_template.jinja).

    The template is kept as text; it is only ever rendered in a sandbox by `apr run --chat`. Both
    files must be regular files inside ``root``; wrong types, text that is not UTF-8 and a template
    over 1 MiB are refused.

    Raises:
        ConvertError: naming the file, the key and the value's type.
    """
    config = read_json_file(root, "tokenizer_config.json")
    if config is not None:
        template = _template_from_config(config, root / "tokenizer_config.json")
        if template is not None:
            return template
    jinja = file_inside(root, "chat_template.jinja", error=ConvertError)
    if jinja is None:
        return None
    data = read_regular(jinja, limit=_MAX_TEMPLATE_BYTES, error=ConvertError, follow_symlinks=False)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConvertError(f"chat_template.jinja is not UTF-8 (byte {err.start} is {data[err.start:err.start + 1]!r})",
                           path=root / "chat_template.jinja", field="chat_template.jinja", offset=err.start,
                           hint="save the template as UTF-8 text") from None


def _read_record(source: Path) -> TokenizerRecord:
    """A tokenizer folder, or a tokenizer.json given as a file (aprender's ``--tokenizer FILE``)."""
    if not source.is_dir():
        data = read_regular(source, limit=MAX_JSON_BYTES, error=ConvertError)  # a FIFO is refused, not opened
        with tempfile.TemporaryDirectory(prefix="apr-tokenizer-") as folder:
            Path(folder, "tokenizer.json").write_bytes(data)
            return read_tokenizer_dir(folder)
    check_side_files(source, _TOKENIZER_FILES)
    return read_tokenizer_dir(source)


def tokenizer_keys_from_folder(
    root: Path, config: Mapping[str, Any] | None, override: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], TokenizerRecord | None]:
    """Metadata keys embedding the folder's tokenizer (empty when there is none).

    Raises:
        TokenizerError: a tokenizer is there (or was asked for) but is unusable.
        ConvertError: a tokenizer side file is not a regular file inside the folder, or holds a
            wrongly typed value (config.json bos/eos ids, tokenizer_config.json, the chat template).
    """
    source = Path(override) if override is not None else root
    has_files = override is not None or any(file_inside(root, n, error=ConvertError) is not None
                                            for n in ("tokenizer.json", "vocab.json"))
    if not has_files:
        return {}, None
    config = config or {}
    for key in ("bos_token_id", "eos_token_id"):
        check_token_id("config.json", root / "config.json", key, config.get(key),
                       f"set {key} in config.json to a token id, or remove it")
    # the template's files first: checked as data before the tokenizer library reads the folder
    template = chat_template_from_folder(source if source.is_dir() else source.parent)
    if template is None and source != root:
        template = chat_template_from_folder(root)
    record = _read_record(source)
    changes: dict[str, Any] = {}
    for key in ("bos_token_id", "eos_token_id"):
        value = config.get(key)  # None, an int >= 0 or a list of them: check_token_id refused the rest
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None and value < record.vocab_size:
            changes[key] = value
    if changes:
        record = dataclasses.replace(record, **changes)
    keys = record_to_metadata(record)
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
        ConvertError: token types not one per token, a bos/eos id outside the vocabulary (types
            are checked before, by `apr.convert.gguf_fields.check_gguf_fields`).
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
    if types and len(types) != len(tokens):
        raise ConvertError(f"GGUF tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens",
                           field="tokenizer.ggml.token_type", hint=GGUF_FIX)
    added = []
    for index, kind in enumerate(types):
        if kind in (3, 4):  # control, user-defined
            added.append(AddedToken(id=index, content=tokens[index], special=kind == 3))
    merges = tuple(fields.get("tokenizer.ggml.merges") or ())

    def token_id(key: str) -> int | None:
        value = fields.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(tokens):
            raise ConvertError(f"GGUF {key} = {value!r} is not a token id of this vocabulary (0 … {len(tokens) - 1})",
                               field=key, hint=GGUF_FIX)
        return value

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
