"""The side files of a Hugging Face model folder, read as data and checked before they are used.

Why: the side files come from whoever published the folder. A FIFO named like one blocked the
import forever, a symlink out of the folder was read, and wrongly typed JSON values (an index whose
``weight_map`` names integers, a ``generation_config.json`` whose ``eos_token_id`` is a string)
escaped as ``TypeError`` tracebacks. Here every side file is

* checked up front, all names at once (`check_side_files`): a regular file inside the folder, or
  absent; nothing is opened before that;
* read bounded in size, decoded as strict UTF-8 and parsed as JSON data only (`read_json_file`),
  deep nesting and integers too long to convert refused, text holding an unpaired surrogate refused;
* checked for the types of the keys `apr import` uses (`weight_map_files`, `check_generation_config`).

Every refusal is a `ConvertError` (exit 5) naming the file, the key, the value's JSON type and a fix.
``config.json`` itself is `apr.convert.hf_config`'s; the tokenizer files are read by
`apr.convert.tokenizer_source` and `apr.tokenizer`.
"""

from __future__ import annotations

import json
import os
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apr.errors import ConvertError
from apr.format.inputs import file_inside, read_regular

INDEX = "model.safetensors.index.json"
# Every file `apr import` may read from a model folder (the shards come from the index).
SIDE_FILES: tuple[str, ...] = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja", INDEX, "model.safetensors",
    "vocab.json", "merges.txt", "added_tokens.json",
)
MAX_JSON_BYTES = 64 * 1024 * 1024  # real tokenizer.json files are under 20 MB, indices under 1 MB

_TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
_INT_KEYS = ("max_length", "max_new_tokens", "min_length", "min_new_tokens", "top_k", "num_beams",
             "num_return_sequences", "no_repeat_ngram_size")
_FLOAT_KEYS = ("temperature", "top_p", "typical_p", "min_p", "repetition_penalty", "length_penalty")
_BOOL_KEYS = ("do_sample",)


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, in words (``"a string"``, ``"an array"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 4, 4
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = 40


def shown(value: Any, limit: int = 60) -> str:
    """A short ``repr`` of ``value``: a hostile value may be megabytes long or nested a thousand
    levels deep, so `reprlib` bounds both before the text is cut to ``limit`` characters."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_side_files(folder: str | os.PathLike[str], names: tuple[str, ...] = SIDE_FILES) -> None:
    """Refuse the folder if any side file is a symlink out of it, a FIFO, a device or a folder.

    Raises:
        ConvertError: naming the first such file and what it is.
    """
    for name in names:
        file_inside(folder, name, error=ConvertError)


def lone_surrogate(document: Any) -> str | None:
    """Where ``document`` (parsed JSON) holds text with an unpaired surrogate (``"a.b[2]"``), or None.

    JSON's ``\\ud800`` escapes parse into such strings; UTF-8 cannot encode them, so the .apr
    metadata could not be written. Walked with a stack, not recursion (the document may nest
    as deep as the parser allows).
    """
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not _is_utf8(value):
                return where or "(the document)"
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{where}.{key}" if where else str(key)
                if not _is_utf8(key):
                    return child
                stack.append((child, item))
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json_bytes(data: bytes, *, path: str | os.PathLike[str], name: str) -> Any:
    """Strict UTF-8 JSON (``NaN``/``Infinity`` read as null), every failure a `ConvertError`."""
    fix = f"re-download {name}, or re-save it with transformers' save_pretrained"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConvertError(f"{name} is not UTF-8 (byte {err.start} is {data[err.start:err.start + 1]!r})",
                           path=path, field=name, offset=err.start, hint=fix) from None
    try:
        document = json.loads(text, parse_constant=lambda _token: None)
    except json.JSONDecodeError as err:
        raise ConvertError(f"{name} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
                           path=path, field=name, hint=fix) from None
    except RecursionError:
        raise ConvertError(f"{name} nests too deeply to parse", path=path, field=name, hint=fix) from None
    except ValueError as err:  # an integer longer than sys.int_max_str_digits
        raise ConvertError(f"{name} holds a value Python refuses to parse: {err}", path=path, field=name,
                           hint=fix) from None
    where = lone_surrogate(document)
    if where is not None:
        raise ConvertError(f"{name} holds text that is not valid Unicode (an unpaired \\ud800-\\udfff escape) at {where}",
                           path=path, field=where, hint=f"remove the unpaired surrogate escape from {name}")
    return document


def read_json_file(folder: str | os.PathLike[str], name: str, *, limit: int = MAX_JSON_BYTES) -> Any | None:
    """Parse side file ``folder/name`` (None when it is absent), after `file_inside` allowed it.

    Raises:
        ConvertError: see `file_inside` and `parse_json_bytes`; a document that is JSON ``null``
            (no side file is, and None means "absent" here).
    """
    real = file_inside(folder, name, error=ConvertError)
    if real is None:
        return None
    data = read_regular(real, limit=limit, error=ConvertError, follow_symlinks=False)
    document = parse_json_bytes(data, path=Path(folder) / name, name=name)
    if document is None:
        raise wrong_type(name, Path(folder) / name, None, None, "an object", f"re-download {name}, or delete it")
    return document


def wrong_type(name: str, path: Path, key: str | None, value: Any, expected: str, fix: str) -> ConvertError:
    """The error for side file ``name`` whose ``key`` (None: the whole document) has the wrong type.

    Example:
        >>> str(wrong_type("generation_config.json", Path("m/generation_config.json"), "eos_token_id", "x",
        ...                "a token id", "fix it"))
        "m/generation_config.json: generation_config.json 'eos_token_id' is a string ('x'), expected a token id\\n  fix: fix it"
    """
    subject = name if key is None else f"{name} {key!r}"
    found = "null" if value is None else f"{json_type(value)} ({shown(value)})"
    return ConvertError(f"{subject} is {found}, expected {expected}", path=path, field=key or name, hint=fix)


def weight_map_files(document: Any, path: Path) -> list[str]:
    """The shard names ``model.safetensors.index.json`` maps tensors to, sorted, each checked a string.

    Raises:
        ConvertError: the document, ``weight_map``, a tensor name or a shard name has the wrong type.
    """
    fix = "re-download model.safetensors.index.json (it maps each tensor name to a shard file name)"
    if not isinstance(document, dict):
        raise wrong_type(INDEX, path, None, document, "an object with a weight_map", fix)
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict):
        raise wrong_type(INDEX, path, "weight_map", weight_map, "an object {tensor name: shard file name}", fix)
    if not weight_map:
        raise ConvertError(f"{INDEX} has an empty weight_map", path=path, field="weight_map", hint=fix)
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise wrong_type(INDEX, path, f"weight_map.{tensor}", shard, "a shard file name (a string)", fix)
    return sorted(set(weight_map.values()))


def check_generation_config(document: Any, path: Path, *, vocab_size: int | None) -> dict[str, Any]:
    """``generation_config.json`` with the keys apr uses or exports checked for type (and ids for range).

    Args:
        document: the parsed file.
        path: the file, for messages.
        vocab_size: rows of the embedding, when known: bos/eos ids must be below it.

    Returns:
        The document (unknown keys are kept as they are).

    Raises:
        ConvertError: not an object, or a checked key with the wrong type or an id out of range.
    """
    name = "generation_config.json"
    fix = f"correct it, or delete {name} (it is optional)"
    if not isinstance(document, dict):
        raise wrong_type(name, path, None, document, "an object", fix)
    for key in _TOKEN_ID_KEYS:
        value = document.get(key)
        ids = value if isinstance(value, list) else [value]
        if any((v is not None or isinstance(value, list)) and (isinstance(v, bool) or not isinstance(v, int))
               for v in ids):
            raise wrong_type(name, path, key, value, "a token id (an integer), a list of them, or null", fix)
        if key in ("bos_token_id", "eos_token_id"):
            for token in (v for v in ids if v is not None):
                if token < 0 or (vocab_size is not None and token >= vocab_size):
                    bound = f"0 … {vocab_size - 1}" if vocab_size is not None else "≥ 0"
                    raise ConvertError(f"{name} {key!r} = {token} is not a token id of this model ({bound})",
                                       path=path, field=key, hint=fix)
    for keys, accepts, expected in ((_INT_KEYS, _is_count, "an integer ≥ 0"), (_FLOAT_KEYS, _is_number, "a number"),
                                    (_BOOL_KEYS, _is_bool, "true or false")):
        for key in keys:
            value = document.get(key)
            if value is not None and not accepts(value):
                raise wrong_type(name, path, key, value, f"{expected} or null", fix)
    return document


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def read_generation_config(folder: Path, *, vocab_size: int | None) -> dict[str, Any] | None:
    """``folder/generation_config.json`` parsed and checked (None when absent)."""
    document = read_json_file(folder, "generation_config.json", limit=1024 * 1024)
    if document is None:
        return None
    return check_generation_config(document, folder / "generation_config.json", vocab_size=vocab_size)


def check_token_id(name: str, path: Path, key: str, value: Any, fix: str) -> None:
    """Refuse a config token id that is not null, an integer ≥ 0, or a list of them."""
    for item in value if isinstance(value, list) else [value]:
        if (item is not None or isinstance(value, list)) and not _is_count(item):
            raise wrong_type(name, path, key, value, "a token id (an integer ≥ 0), a list of them, or null", fix)


def mapping_or_refuse(document: Any, name: str, path: Path, fix: str) -> Mapping[str, Any]:
    """``document`` when it is a JSON object, else a ConvertError naming its type."""
    if not isinstance(document, dict):
        raise wrong_type(name, path, None, document, "an object", fix)
    return document


__all__ = [
    "INDEX",
    "SIDE_FILES",
    "check_generation_config",
    "check_side_files",
    "check_token_id",
    "json_type",
    "lone_surrogate",
    "mapping_or_refuse",
    "parse_json_bytes",
    "read_generation_config",
    "read_json_file",
    "shown",
    "weight_map_files",
    "wrong_type",
]
