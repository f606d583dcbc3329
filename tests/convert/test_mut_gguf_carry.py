"""Exact values for apr/convert/gguf_carry.py (issue 23): the GGUF metadata an import keeps and an
export writes back. Metadata keys, carried values, token types and special token ids are
interface: each test states the value derived from its input, so a mutant that changes one fails.
"""

from __future__ import annotations

from types import SimpleNamespace

import gguf
import pytest

from apr.convert import gguf_carry as gc

FLAGS = ("tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix")


def test_constants_are_the_gguf_key_names():
    assert frozenset({"general.architecture", "general.file_type", "general.quantization_version",
                      "general.alignment"}) == gc.EXPORT_OWNED
    assert gc.TOKENIZER_FLAGS == FLAGS
    assert gc.TOKEN_TYPES == "tokenizer.ggml.token_type"
    assert frozenset({2, 5, 6}) == gc.UNRECORDED_TYPES
    assert gc.IMPORT_NAME == "apr.import_name"
    assert gc.UNK_ID == "tokenizer.ggml.unknown_token_id"
    assert gc.PAD_ID == "tokenizer.ggml.padding_token_id"


@pytest.mark.parametrize(("value", "plain"), [
    ("s", True), (3, True), (1.5, True), (True, True),
    ([1, 2], True), (["a"], True), ([], False), ([1, "a"], False), ([1, None], False),
    ([[1]], False), (None, False), ({"a": 1}, False), ((1, 2), False), ([1, 2.0], False),
])
def test_plain_values(value, plain):
    assert gc._plain(value) is plain


def test_carried_from_gguf_keeps_general_rope_and_flags_only():
    fields = {
        "general.name": "m", "general.languages": ["en", "fr"], "general.bad": [1, "x"],
        "llama.rope.scaling.type": "linear", "llama.rope.freq_base": 10000.0,
        "qwen2.rope.scaling.type": "yarn", "llama.block_count": 2, "xgeneral.name": "no",
        "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
        "tokenizer.ggml.add_space_prefix": True, "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.token_type": [1, 2, 3, 5, 6, 6, 4, 2],
    }
    assert gc.carried_from_gguf(fields, "llama") == {
        "general.name": "m", "general.languages": ["en", "fr"],
        "llama.rope.scaling.type": "linear", "llama.rope.freq_base": 10000.0,
        "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
        "tokenizer.ggml.add_space_prefix": True,
        "tokenizer.ggml.token_type": {"2": [1, 7], "5": [3], "6": [4, 5]},
    }


def test_carried_from_gguf_without_unrecorded_types_has_no_token_type_key():
    assert gc.carried_from_gguf({"tokenizer.ggml.token_type": [1, 3, 4]}, "llama") == {}
    assert gc.carried_from_gguf({"tokenizer.ggml.token_type": "6"}, "llama") == {}
    assert gc.carried_from_gguf({}, "llama") == {}


def test_special_tokens_from_gguf_maps_in_range_ids():
    tokens = ["<unk>", "a", "<pad>"]
    assert gc.special_tokens_from_gguf({gc.UNK_ID: 0, gc.PAD_ID: 2}, tokens) == {
        "unk_token": "<unk>", "pad_token": "<pad>"}
    assert gc.special_tokens_from_gguf({gc.UNK_ID: 3, gc.PAD_ID: -1}, tokens) == {}
    assert gc.special_tokens_from_gguf({gc.UNK_ID: True, gc.PAD_ID: "2"}, tokens) == {}
    assert gc.special_tokens_from_gguf({gc.PAD_ID: 2}, tokens) == {"pad_token": "<pad>"}
    assert gc.special_tokens_from_gguf({}, tokens) == {}


def _tok(token_id, special):
    return SimpleNamespace(id=token_id, special=special)


def test_token_types_places_carried_and_added_types():
    carried = {gc.TOKEN_TYPES: {"2": [0], "5": [1, 9, -1, True, "3"], "6": [2, 4], "3": [3], "x": [3],
                                "7": [3], "2x": [3]}}
    assert gc.token_types(5, [], carried) == [2, 5, 6, 1, 6]
    # added tokens override: 3 for special, 4 for normal; ids past the vocabulary are ignored
    assert gc.token_types(5, [_tok(0, True), _tok(4, False), _tok(5, True)], carried) == [3, 5, 6, 1, 4]


def test_token_types_ignores_malformed_carried_values():
    assert gc.token_types(3, [], {}) == [1, 1, 1]
    assert gc.token_types(3, [], {gc.TOKEN_TYPES: [[0, 6]]}) == [1, 1, 1]
    assert gc.token_types(3, [], {gc.TOKEN_TYPES: {"6": 1}}) == [1, 1, 1]
    assert gc.token_types(3, [], {gc.TOKEN_TYPES: {"6": [2], "5": (0,)}}) == [1, 1, 6]
    # a malformed entry is skipped, not the end of the list: the valid ones after it still count
    assert gc.token_types(3, [], {gc.TOKEN_TYPES: {"3": [0], "x": [0], "5": (0,), "6": [2]}}) == [1, 1, 6]
    assert gc.token_types(0, [], {gc.TOKEN_TYPES: {"6": [0]}}) == []


def test_special_token_id():
    vocab = ["a", "<pad>", "<unk>"]
    names = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": 3}
    assert gc.special_token_id(vocab, names, "pad_token") == 1
    assert gc.special_token_id(vocab, names, "unk_token") == 2
    assert gc.special_token_id(vocab, names, "bos_token") is None
    assert gc.special_token_id(vocab, names, "eos_token") is None
    assert gc.special_token_id(vocab, names, "missing") is None
    assert gc.special_token_id(vocab, None, "pad_token") is None
    assert gc.special_token_id(vocab, ["pad_token"], "pad_token") is None
    assert gc.special_token_id(iter(vocab), names, "unk_token") == 2


T = gguf.GGUFValueType


@pytest.mark.parametrize(("value", "kind"), [
    (True, T.BOOL), (False, T.BOOL), ("s", T.STRING), (0.5, T.FLOAT32),
    (0, T.UINT32), (2 ** 32 - 1, T.UINT32), (2 ** 32, T.UINT64),
    (-1, T.INT32), (-(2 ** 31), T.INT32), (-(2 ** 31) - 1, T.INT64),
])
def test_value_type(value, kind):
    assert gc._value_type(value, T) == kind


def _writer(*present):
    writer = gguf.GGUFWriter(None, "llama")
    for kv in writer.kv_data:  # the writer names its architecture itself; start from nothing
        kv.pop("general.architecture", None)
    for key in present:
        writer.add_string(key, "typed")
    return writer


def _kv(writer):
    out = {}
    for kv in writer.kv_data:
        out.update(kv)
    return out


def test_write_carried_writes_the_plain_keys_it_owns():
    writer = _writer("general.license")
    carried = {
        "general.name": "src", "general.license": "mit", "general.architecture": "qwen2",
        "general.file_type": 7, "general.quantization_version": 2, "general.alignment": 64,
        "general.languages": ["en", "fr"], "general.sizes": [1, -2], "general.bad": [],
        "llama.rope.scaling.factor": 2.0, "qwen2.rope.scaling.type": "yarn", "llama.block_count": 3,
        "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
        "tokenizer.ggml.model": "gpt2", gc.TOKEN_TYPES: {"6": [1]}, "apr.import_name": "x",
        "general.big": 2 ** 40, "general.neg": -5,
    }
    written = gc.write_carried(writer, carried, "llama")
    assert written == ["general.name", "general.languages", "general.sizes", "llama.rope.scaling.factor",
                       "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "general.big",
                       "general.neg"]
    kv = _kv(writer)
    assert kv["general.license"].value == "typed"
    assert (kv["general.name"].value, kv["general.name"].type) == ("src", T.STRING)
    assert kv["general.languages"].value == ["en", "fr"]
    assert kv["general.languages"].type == T.ARRAY
    assert kv["general.languages"].sub_type == T.STRING
    assert kv["general.sizes"].sub_type == T.UINT32
    assert (kv["llama.rope.scaling.factor"].value, kv["llama.rope.scaling.factor"].type) == (2.0, T.FLOAT32)
    assert kv["tokenizer.ggml.add_bos_token"].type == T.BOOL
    assert kv["tokenizer.ggml.add_eos_token"].value is False
    assert kv["general.big"].type == T.UINT64
    assert kv["general.neg"].type == T.INT32
    for absent in ("general.architecture", "general.file_type", "general.quantization_version",
                   "general.alignment", "qwen2.rope.scaling.type", "llama.block_count",
                   "tokenizer.ggml.model", gc.TOKEN_TYPES, "apr.import_name", "general.bad"):
        assert absent not in kv
    # nothing but the typed key and the written ones
    assert set(kv) == {"general.license", *written}


def test_write_carried_of_a_non_mapping_writes_nothing():
    writer = _writer()
    assert gc.write_carried(writer, None, "llama") == []
    assert gc.write_carried(writer, [("general.name", "x")], "llama") == []
    assert _kv(writer) == {}


def test_export_name():
    assert gc.export_name({"name": "smol"}, {"general.name": "Src", "apr.import_name": "smol"}) == "Src"
    assert gc.export_name({"name": "new"}, {"general.name": "Src", "apr.import_name": "smol"}) == "new"
    assert gc.export_name({"name": "smol"}, {"general.name": "", "apr.import_name": "smol"}) == "smol"
    assert gc.export_name({"name": "smol"}, {"general.name": 5, "apr.import_name": "smol"}) == "smol"
    assert gc.export_name({"name": "smol"}, {"general.name": "Src"}) == "smol"
    assert gc.export_name({}, {"general.name": "Src"}) == "Src"  # None == None: both unnamed
    assert gc.export_name({"name": ""}, {}) == "model"
    assert gc.export_name({}, {}) == "model"
