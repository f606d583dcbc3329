"""GGUF metadata that APR has no field for, carried through an import so an export writes it back.

Why: a GGUF round trip (``apr import m.gguf`` then ``apr export``) lost what the source said about
itself and its tokenizer: ``general.name``/``organization``/``basename``/``languages``, the rope
scaling keys, token types other than normal/control/user-defined (unknown, unused, byte), the
UNK and PAD ids and ``tokenizer.ggml.add_bos_token`` (issue 15, part 5). llama.cpp reads several
of these (types, add_bos, rope scaling), so the exported file behaved differently from its source.

On import the values go into the APR ``source_metadata`` object (aprender's custom key for what a
source file said; ``inspect`` shows it), UNK and PAD into ``special_tokens`` (an aprender field).
On export, `write_carried` writes back the keys the exporter does not itself decide: values the
checkpoint holds in typed fields (``license``, dimensions, rope base) win, and the keys that
describe the file being written (architecture, file type, quantization version, alignment) are
never copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# keys that describe the GGUF file itself: the exporter writes its own
EXPORT_OWNED: frozenset[str] = frozenset({
    "general.architecture", "general.file_type", "general.quantization_version", "general.alignment",
})
# tokenizer flags llama.cpp reads; absent in APR's tokenizer record
TOKENIZER_FLAGS: tuple[str, ...] = ("tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                                    "tokenizer.ggml.add_space_prefix")
TOKEN_TYPES = "tokenizer.ggml.token_type"
# token types APR records nowhere else (3 control and 4 user-defined are APR added tokens)
UNRECORDED_TYPES: frozenset[int] = frozenset({2, 5, 6})  # unknown, unused, byte
# the APR name an import gave (the file stem): an export writes the source's general.name only while
# the checkpoint still has that name, so a name set later with `apr stamp --name` wins
IMPORT_NAME = "apr.import_name"
UNK_ID, PAD_ID = "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"

_Scalar = (str, int, float, bool)


def _plain(value: Any) -> bool:
    """A value JSON and GGUF both hold: a scalar, or a non-empty list of scalars of one type."""
    if isinstance(value, _Scalar):
        return True
    return (isinstance(value, list) and bool(value) and all(isinstance(v, _Scalar) for v in value)
            and len({type(v) for v in value}) == 1)


def carried_from_gguf(fields: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """The ``source_metadata`` object an import stores: every plain ``general.*`` value, the
    ``{arch}.rope.*`` keys, the tokenizer flags, and the ids of tokens of an unrecorded type as
    ``{"2": [ids], "6": [ids]}``.

    Example:
        >>> carried_from_gguf({"general.name": "m", "llama.rope.scaling.type": "linear",
        ...                    "llama.block_count": 2, "tokenizer.ggml.token_type": [1, 3, 6, 6]}, "llama")
        {'general.name': 'm', 'llama.rope.scaling.type': 'linear', 'tokenizer.ggml.token_type': {'6': [2, 3]}}
    """
    carried = {k: v for k, v in fields.items()
               if (k.startswith("general.") or k.startswith(f"{arch}.rope.") or k in TOKENIZER_FLAGS) and _plain(v)}
    types = fields.get(TOKEN_TYPES)
    sparse: dict[str, list[int]] = {}
    if isinstance(types, list):
        for index, kind in enumerate(types):
            if kind in UNRECORDED_TYPES:
                sparse.setdefault(str(kind), []).append(index)
    if sparse:
        carried[TOKEN_TYPES] = sparse
    return carried


def special_tokens_from_gguf(fields: Mapping[str, Any], tokens: Sequence[str]) -> dict[str, str]:
    """``special_tokens`` entries for the UNK and PAD ids the file names (ids outside the
    vocabulary are left out: the tokenizer does not have them).

    >>> special_tokens_from_gguf({UNK_ID: 0, PAD_ID: 9}, ["<unk>", "a"])
    {'unk_token': '<unk>'}
    """
    out: dict[str, str] = {}
    for key, name in ((UNK_ID, "unk_token"), (PAD_ID, "pad_token")):
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(tokens):
            out[name] = tokens[value]
    return out


def token_types(vocabulary_size: int, added: Sequence[Any], carried: Mapping[str, Any]) -> list[int]:
    """``tokenizer.ggml.token_type`` for an export: 1 (normal) everywhere, 3/4 for the APR added
    tokens (special or not), and the carried unknown/unused/byte types where they still fit.

    >>> token_types(4, [], {TOKEN_TYPES: {"6": [1, 2], "2": [9]}})
    [1, 6, 6, 1]
    """
    types = [1] * vocabulary_size
    sparse = carried.get(TOKEN_TYPES)
    if isinstance(sparse, Mapping):
        for kind, ids in sparse.items():
            if not (isinstance(kind, str) and kind.isdigit() and int(kind) in UNRECORDED_TYPES and isinstance(ids, list)):
                continue
            for index in ids:
                if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < vocabulary_size:
                    types[index] = int(kind)
    for token in added:
        if token.id < vocabulary_size:
            types[token.id] = 3 if token.special else 4
    return types


def special_token_id(vocabulary: Sequence[str], special_tokens: Any, name: str) -> int | None:
    """The id of ``special_tokens[name]`` (e.g. ``unk_token``) in the vocabulary, or None when the
    checkpoint names none or the tokenizer does not have it (no id is ever invented).

    >>> special_token_id(["a", "<pad>"], {"pad_token": "<pad>", "unk_token": "<unk>"}, "pad_token")
    1
    """
    if not isinstance(special_tokens, Mapping):
        return None
    token = special_tokens.get(name)
    if not isinstance(token, str):
        return None
    try:
        return list(vocabulary).index(token)
    except ValueError:
        return None


def write_carried(writer: Any, carried: Any, arch: str) -> list[str]:
    """Write the carried keys the writer does not hold yet (typed fields were written first and
    win); returns the keys written. Keys of another architecture's ``rope.*`` are skipped."""
    from gguf import GGUFValueType

    if not isinstance(carried, Mapping):
        return []
    present = set().union(*(kv.keys() for kv in writer.kv_data))
    written = []
    for key, value in carried.items():
        if key in present or key in EXPORT_OWNED or key == TOKEN_TYPES or not _plain(value):
            continue
        if not (key.startswith("general.") or key.startswith(f"{arch}.rope.") or key in TOKENIZER_FLAGS):
            continue
        first = value[0] if isinstance(value, list) else value
        kind = _value_type(first, GGUFValueType)
        if isinstance(value, list):
            writer.add_key_value(key, value, GGUFValueType.ARRAY, sub_type=kind)
        else:
            writer.add_key_value(key, value, kind)
        written.append(key)
    return written


def _value_type(value: Any, types: Any) -> Any:
    """GGUF's type for a JSON value: JSON lost the width, so the one llama.cpp's keys use."""
    if isinstance(value, bool):
        return types.BOOL
    if isinstance(value, str):
        return types.STRING
    if isinstance(value, float):
        return types.FLOAT32
    if value < 0:
        return types.INT32 if value >= -(2 ** 31) else types.INT64
    return types.UINT32 if value < 2 ** 32 else types.UINT64


def export_name(metadata: Mapping[str, Any], carried: Mapping[str, Any]) -> str:
    """The ``general.name`` an export writes: the source GGUF's own name while the checkpoint keeps
    the name its import gave it, else the checkpoint's name (a stamped name wins).

        >>> export_name({"name": "smol"}, {"general.name": "SmolLM2 135M", "apr.import_name": "smol"})
        'SmolLM2 135M'
        >>> export_name({"name": "albor-370m"}, {"general.name": "SmolLM2 135M", "apr.import_name": "smol"})
        'albor-370m'
    """
    own = str(metadata.get("name") or "model")
    source = carried.get("general.name")
    if isinstance(source, str) and source and carried.get(IMPORT_NAME) == metadata.get("name"):
        return source
    return own


__all__ = ["EXPORT_OWNED", "IMPORT_NAME", "TOKENIZER_FLAGS", "carried_from_gguf", "export_name", "special_token_id",
           "special_tokens_from_gguf", "token_types", "write_carried"]
