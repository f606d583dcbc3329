"""apr/convert/gguf_fields.py (issue 23): the key names against gguf-py's own constants (the names
llama.cpp writes), each key's type rule with near misses, and real GGUF files written with
`gguf.GGUFWriter` and read back through `gguf.GGUFReader`."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.convert import gguf_fields as gf
from apr.convert.gguf_import import read_gguf_fields
from apr.errors import ConvertError

K = gguf.Keys
FIX = "re-convert the model with llama.cpp's convert_hf_to_gguf.py, or import its Hugging Face folder"
# The oracle: gguf-py's key constants, and the type llama.cpp writes each with.
EXPECTED = {
    K.General.ARCHITECTURE: "a string",
    K.General.NAME: "a string",
    K.LLM.BLOCK_COUNT: "an integer",
    K.LLM.EMBEDDING_LENGTH: "an integer",
    K.Attention.HEAD_COUNT: "an integer",
    K.Attention.HEAD_COUNT_KV: "an integer",
    K.LLM.FEED_FORWARD_LENGTH: "an integer",
    K.LLM.CONTEXT_LENGTH: "an integer",
    K.Attention.KEY_LENGTH: "an integer",
    K.LLM.VOCAB_SIZE: "an integer",
    K.Rope.FREQ_BASE: "a number",
    K.Attention.LAYERNORM_RMS_EPS: "a number",
    K.Tokenizer.MODEL: "a string",
    K.Tokenizer.PRE: "a string",
    K.Tokenizer.LIST: "an array of strings",
    K.Tokenizer.MERGES: "an array of strings",
    K.Tokenizer.TOKEN_TYPE: "an array of integers",
    K.Tokenizer.BOS_ID: "an integer",
    K.Tokenizer.EOS_ID: "an integer",
    K.Tokenizer.UNK_ID: "an integer",
    K.Tokenizer.PAD_ID: "an integer",
    K.Tokenizer.CHAT_TEMPLATE: "a string",
}
GOOD = {"a string": "x", "an integer": 3, "a number": 1.5, "an array of strings": ["a", "b"],
        "an array of integers": [1, 2]}
# values of every other kind, each wrong for the kind named
WRONG = {
    "a string": [3, 1.5, True, ["x"]],
    "an integer": ["3", 3.0, True, [3], 1.5],
    "a number": ["1.5", True, [1.5], "nan"],
    "an array of strings": ["ab", [1], ["a", 2], [["a"]], [True]],
    "an array of integers": [3, [1.0], [1, "2"], [True], ["1"], [[1]]],
}


def test_schema_keys_and_kinds_are_llama_cpps():
    assert {key: kind.value for key, kind in gf.SCHEMA} == EXPECTED
    assert len(gf.SCHEMA) == len(EXPECTED)
    assert gf.FIX == FIX


def test_kind_words():
    assert {k.name: k.value for k in gf.Kind} == {
        "STRING": "a string", "INTEGER": "an integer", "NUMBER": "a number", "STRINGS": "an array of strings",
        "INTEGERS": "an array of integers"}


@pytest.mark.parametrize(("pattern", "kind"), [(p, k) for p, k in EXPECTED.items() if p != "general.architecture"])
def test_every_key_accepts_its_kind_and_refuses_near_misses(pattern, kind):
    key = pattern.format(arch="qwen2")
    assert gf.check_gguf_fields({"general.architecture": "qwen2", key: GOOD[kind]}, "f.gguf") == "qwen2"
    if kind == "a number":
        assert gf.check_gguf_fields({"general.architecture": "qwen2", key: 10000}) == "qwen2"  # an int is a number
    if kind.startswith("an array"):
        assert gf.check_gguf_fields({"general.architecture": "qwen2", key: []}) == "qwen2"  # empty is fine
    for value in WRONG[kind]:
        with pytest.raises(ConvertError) as info:
            gf.check_gguf_fields({"general.architecture": "qwen2", key: value}, "f.gguf")
        err = info.value
        assert (err.field, err.path, err.hint) == (key, "f.gguf", FIX), value
        assert str(err).startswith(f"f.gguf: GGUF {key} is {gf.describe_value(value)}, expected {kind}"), value


def test_arch_keys_of_another_architecture_are_not_checked():
    fields = {"general.architecture": "llama", "qwen2.context_length": "4096"}
    assert gf.check_gguf_fields(fields) == "llama"


def test_the_first_wrong_key_in_schema_order_is_reported():
    fields = {"general.architecture": "llama", "tokenizer.ggml.bos_token_id": "1", "llama.block_count": "2"}
    with pytest.raises(ConvertError) as info:
        gf.check_gguf_fields(fields)
    assert info.value.field == "llama.block_count"


def test_absent_and_null_keys_are_fine():
    assert gf.check_gguf_fields({"general.architecture": "gpt2", "gpt2.block_count": None}) == "gpt2"


@pytest.mark.parametrize(("value", "found"), [
    (None, "absent"), (3, "an integer (3)"), (["llama"], "an array of strings"), (b"ll", "a bytes (b'll')"),
])
def test_architecture_must_be_a_string(value, found):
    fields = {} if value is None else {"general.architecture": value}
    for check in (gf.architecture_of, gf.check_gguf_fields):
        with pytest.raises(ConvertError) as info:
            check(fields, "m.gguf")
        err = info.value
        assert (err.field, err.path, err.hint) == ("general.architecture", "m.gguf", FIX)
        assert f"GGUF general.architecture is {found}, expected a string (llama, qwen2, qwen3)" in str(err)


def test_architecture_of_returns_the_string():
    assert gf.architecture_of({"general.architecture": "qwen3"}) == "qwen3"


@pytest.mark.parametrize(("value", "words"), [
    ([], "an empty array"),
    ([1.5, 2.5], "an array of floats"),
    ([1, "a", 2], "an array of integers and strings"),
    ([True, 1], "an array of booleans and integers"),
    ([[1], None], "an array of NoneTypes and arrays"),
    ("x", "a string ('x')"),
    (5, "an integer (5)"),
    (True, "a boolean (True)"),
    (1.5, "a float (1.5)"),
    ({}, "a dict ({})"),
    ([{}], "an array of dicts"),
    ("a" * 38, "a string ('" + "a" * 38 + "')"),  # repr is 40 characters: shown whole
    ("a" * 39, "a string ('" + "a" * 38 + "…)"),  # 41: cut to 39 + …
])
def test_describe_value(value, words):
    assert gf.describe_value(value) == words


@given(st.text(max_size=80))
@example("a" * 38)
@example("a" * 39)
def test_describe_value_bounds_what_it_shows(text):
    shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:39] + "…"
    assert gf.describe_value(text) == f"a string ({shown})"


# ---- real GGUF files ------------------------------------------------------------------------------

def _write(path, add):
    writer = gguf.GGUFWriter(str(path), "llama")
    add(writer)
    writer.add_tensor("token_embd.weight", np.zeros((4, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return read_gguf_fields(gguf.GGUFReader(str(path)), path)


def test_a_file_as_llama_cpp_writes_it_passes(tmp_path):
    def add(w):
        w.add_name("tiny")
        w.add_block_count(2)
        w.add_context_length(128)
        w.add_embedding_length(2)
        w.add_feed_forward_length(8)
        w.add_head_count(1)
        w.add_head_count_kv(1)
        w.add_rope_freq_base(10000.0)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe")
        w.add_token_list(["a", "b", "ab", "c"])
        w.add_token_merges(["a b"])
        w.add_token_types([1, 1, 1, 3])
        w.add_bos_token_id(0)
        w.add_eos_token_id(3)
        w.add_chat_template("{{ x }}")
    fields = _write(tmp_path / "ok.gguf", add)
    assert gf.check_gguf_fields(fields, tmp_path / "ok.gguf") == "llama"


@pytest.mark.parametrize(("key", "add", "found"), [
    ("llama.context_length", lambda w: w.add_string("llama.context_length", "4096"), "a string ('4096')"),
    ("llama.block_count", lambda w: w.add_float32("llama.block_count", 2.0), "a float (2.0)"),
    ("tokenizer.ggml.tokens", lambda w: w.add_array("tokenizer.ggml.tokens", [1, 2]), "an array of integers"),
    ("tokenizer.ggml.token_type", lambda w: w.add_array("tokenizer.ggml.token_type", [1.0]), "an array of floats"),
    ("tokenizer.ggml.bos_token_id", lambda w: w.add_string("tokenizer.ggml.bos_token_id", "1"), "a string ('1')"),
    ("llama.rope.freq_base", lambda w: w.add_bool("llama.rope.freq_base", True), "a boolean (True)"),
])
def test_wrongly_typed_keys_in_a_real_file_are_refused(tmp_path, key, add, found):
    path = tmp_path / "bad.gguf"
    fields = _write(path, add)
    with pytest.raises(ConvertError) as info:
        gf.check_gguf_fields(fields, path)
    assert info.value.field == key
    assert f"GGUF {key} is {found}, expected" in str(info.value)


class Xylo:
    def __repr__(self) -> str:
        return "Xylo()"


def test_describe_value_article_follows_the_type_name():
    assert gf.describe_value(Xylo()) == "a Xylo (Xylo())"
    assert gf.describe_value([Xylo()]) == "an array of Xylos"
