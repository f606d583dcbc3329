"""apr/convert/hf_side_files.py (issue 23): each side-file check with the exact key, type words,
field and fix it names, token-id ranges below/at/above the vocabulary, and the size limits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.convert import hf_side_files as sf
from apr.errors import ConvertError

GEN = "generation_config.json"
GEN_FIX = f"correct it, or delete {GEN} (it is optional)"
INDEX_FIX = "re-download model.safetensors.index.json (it maps each tensor name to a shard file name)"


def test_side_file_names():
    assert sf.INDEX == "model.safetensors.index.json"
    assert set(sf.SIDE_FILES) == {
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "chat_template.jinja", "model.safetensors.index.json", "model.safetensors", "vocab.json", "merges.txt",
        "added_tokens.json"}
    assert sf.MAX_JSON_BYTES == 64 * 1024 * 1024


@pytest.mark.parametrize(("value", "words"), [
    (None, "null"), (True, "a boolean"), (False, "a boolean"), (0, "an integer"), (1.5, "a number"),
    ("", "a string"), ([], "an array"), ({}, "an object"), ((1,), "tuple"), (b"x", "bytes"),
])
def test_json_type(value, words):
    assert sf.json_type(value) == words


@pytest.mark.parametrize(("value", "text"), [
    ("x" * 100, "'" + "x" * 17 + "..." + "x" * 18 + "'"),  # reprlib maxstring 40
    (list(range(10)), "[0, 1, 2, 3, ...]"),  # maxlist 4
    ([[[[1]]]], "[[[[...]]]]"),  # maxlevel 3
    ({i: i for i in range(6)}, "{0: 0, 1: 1, 2: 2, 3: 3, ...}"),  # maxdict 4
    (10**100, "1" + "0" * 17 + "..." + "0" * 19),  # maxlong 40
    ("short", "'short'"),
    (["a" * 30, "b" * 30], "['" + "a" * 30 + "', '" + "b" * 23 + "…"),  # cut to 60
])
def test_shown_bounds_the_text(value, text):
    assert sf.shown(value) == text


@given(st.recursive(st.one_of(st.text(), st.integers(), st.none()), lambda c: st.lists(c) | st.dictionaries(st.text(), c),
                    max_leaves=30), st.integers(2, 80))
@example("y" * 30, 10)
@example("y" * 8, 10)
def test_shown_never_exceeds_its_limit(value, limit):
    text = sf.shown(value, limit)
    assert len(text) <= limit
    full = sf.shown(value, 10**6)
    assert text == full if len(full) <= limit else text == full[: limit - 1] + "…"


# ---- lone surrogates ------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "where"), [
    ("ok", None), ("ünï", None), ({"a": ["x", {"b": "é"}]}, None), (3, None),
    ("\ud800", "(the document)"),
    (["a", "\udfff"], "[1]"),
    ({"a": {"b": ["x", "y", "\udc00z"]}}, "a.b[2]"),
    ({"k\ud800": 1}, "k\ud800"),
    ({"a": {"k\ud800": 1}}, "a.k\ud800"),
    ({"a": [{"b": "\ud800"}]}, "a[0].b"),
])
def test_lone_surrogate_finds_the_place(document, where):
    assert sf.lone_surrogate(document) == where


def test_lone_surrogate_does_not_recurse():
    deep: list = ["\ud800"]
    for _ in range(5000):
        deep = [deep]
    assert sf.lone_surrogate(deep) == "[0]" * 5000 + "[0]"


# ---- parsing --------------------------------------------------------------------------------------

def _parse_error(data, name="tokenizer.json"):
    with pytest.raises(ConvertError) as info:
        sf.parse_json_bytes(data, path="m/" + name, name=name)
    err = info.value
    assert err.path == "m/" + name
    return err


def test_parse_json_bytes_reads_data_and_maps_constants_to_null():
    assert sf.parse_json_bytes(b'{"a": [NaN, Infinity, -Infinity, 1]}', path="p", name="x.json") == \
        {"a": [None, None, None, 1]}


def test_parse_json_bytes_refuses_non_utf8():
    err = _parse_error(b'{"a": "\xfe"}')
    assert (err.field, err.offset) == ("tokenizer.json", 7)
    assert err.hint == "re-download tokenizer.json, or re-save it with transformers' save_pretrained"
    assert "tokenizer.json is not UTF-8 (byte 7 is b'\\xfe')" in str(err)


def test_parse_json_bytes_refuses_bad_json():
    err = _parse_error(b'{"a":\n 1,,}')
    assert err.field == "tokenizer.json"
    assert err.hint == "re-download tokenizer.json, or re-save it with transformers' save_pretrained"
    assert "tokenizer.json is not valid JSON: Expecting property name enclosed in double quotes (line 2, column 4)" \
        in str(err)


def test_parse_json_bytes_refuses_deep_nesting():
    err = _parse_error(b"[" * 200_000 + b"]" * 200_000)
    assert err.field == "tokenizer.json"
    assert "tokenizer.json nests too deeply to parse" in str(err)
    assert err.hint.startswith("re-download tokenizer.json")


def test_parse_json_bytes_refuses_huge_integers():
    err = _parse_error(b"[" + b"7" * 10_000 + b"]")
    assert err.field == "tokenizer.json"
    assert "tokenizer.json holds a value Python refuses to parse" in str(err)
    assert err.hint.startswith("re-download tokenizer.json")


def test_parse_json_bytes_refuses_surrogates_naming_where():
    err = _parse_error(b'{"model": {"vocab": {"\\ud800": 3}}}')
    assert err.field == "model.vocab.\ud800"
    assert err.hint == "remove the unpaired surrogate escape from tokenizer.json"
    assert "tokenizer.json holds text that is not valid Unicode" in str(err)


def test_read_json_file(tmp_path):
    assert sf.read_json_file(tmp_path, "config.json") is None
    (tmp_path / "config.json").write_text('{"a": 1}')
    assert sf.read_json_file(tmp_path, "config.json") == {"a": 1}
    assert sf.read_json_file(os.fspath(tmp_path), "config.json") == {"a": 1}


def test_read_json_file_refuses_a_null_document(tmp_path):
    (tmp_path / "added_tokens.json").write_text("null")
    with pytest.raises(ConvertError) as info:
        sf.read_json_file(tmp_path, "added_tokens.json")
    err = info.value
    assert (err.field, err.path) == ("added_tokens.json", os.fspath(tmp_path / "added_tokens.json"))
    assert err.hint == "re-download added_tokens.json, or delete it"
    assert "added_tokens.json is null, expected an object" in str(err)


def test_read_json_file_errors_name_the_file_path(tmp_path):
    (tmp_path / "x.json").write_bytes(b"{,}")
    with pytest.raises(ConvertError) as info:
        sf.read_json_file(tmp_path, "x.json")
    assert info.value.path == os.fspath(tmp_path / "x.json")
    assert "x.json is not valid JSON" in str(info.value)


def test_read_json_file_limit_below_at_above(tmp_path):
    (tmp_path / "a.json").write_text("[" + " " * 8 + "]")  # 10 bytes
    assert sf.read_json_file(tmp_path, "a.json", limit=10) == []
    with pytest.raises(ConvertError, match="over the 9-byte limit"):
        sf.read_json_file(tmp_path, "a.json", limit=9)


def test_read_json_file_refuses_a_symlink_out_of_the_folder(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").symlink_to(outside)
    with pytest.raises(ConvertError):
        sf.read_json_file(folder, "config.json")


@pytest.mark.parametrize("name", ["config.json", "merges.txt", "model.safetensors.index.json", "added_tokens.json"])
def test_check_side_files_refuses_a_fifo_by_default(tmp_path, name):
    os.mkfifo(tmp_path / name)
    with pytest.raises(ConvertError) as info:
        sf.check_side_files(tmp_path)
    assert name in str(info.value)


def test_check_side_files_checks_only_the_names_given(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    sf.check_side_files(tmp_path, ("tokenizer.json",))
    (tmp_path / "tokenizer.json").write_text("{}")
    sf.check_side_files(tmp_path, ("tokenizer.json", "vocab.json"))


# ---- wrong_type -----------------------------------------------------------------------------------

def test_wrong_type_of_a_key_and_of_the_whole_document():
    err = sf.wrong_type("a.json", Path("m/a.json"), "k", [1, 2], "an object", "fix it")
    assert (err.field, err.path, err.hint) == ("k", "m/a.json", "fix it")
    assert err.message == "a.json 'k' is an array ([1, 2]), expected an object"
    err = sf.wrong_type("a.json", Path("m/a.json"), None, None, "an object", "fix it")
    assert err.field == "a.json"
    assert err.message == "a.json is null, expected an object"


# ---- weight_map -----------------------------------------------------------------------------------

def test_weight_map_files_sorted_and_unique():
    document = {"metadata": {}, "weight_map": {"a": "m-2.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors"}}
    assert sf.weight_map_files(document, Path("i.json")) == ["m-1.safetensors", "m-2.safetensors"]


@pytest.mark.parametrize(("document", "field", "message"), [
    ([], "model.safetensors.index.json",
     "model.safetensors.index.json is an array ([]), expected an object with a weight_map"),
    ({}, "weight_map", "model.safetensors.index.json 'weight_map' is null, expected an object {tensor name: shard file name}"),
    ({"weight_map": ["a"]}, "weight_map", "model.safetensors.index.json 'weight_map' is an array (['a']), expected "
                                          "an object {tensor name: shard file name}"),
    ({"weight_map": {}}, "weight_map", "model.safetensors.index.json has an empty weight_map"),
    ({"weight_map": {"a": "s", "t.w": 3}}, "weight_map.t.w",
     "model.safetensors.index.json 'weight_map.t.w' is an integer (3), expected a shard file name (a string)"),
    ({"weight_map": {"t.w": ""}}, "weight_map.t.w",
     "model.safetensors.index.json 'weight_map.t.w' is a string (''), expected a shard file name (a string)"),
])
def test_weight_map_files_refusals(document, field, message):
    with pytest.raises(ConvertError) as info:
        sf.weight_map_files(document, Path("m/i.json"))
    err = info.value
    assert (err.field, err.path, err.hint, err.message) == (field, "m/i.json", INDEX_FIX, message)


# ---- generation_config ----------------------------------------------------------------------------

def _gen_error(document, vocab_size=None):
    with pytest.raises(ConvertError) as info:
        sf.check_generation_config(document, Path("m/g.json"), vocab_size=vocab_size)
    err = info.value
    assert (err.path, err.hint) == ("m/g.json", GEN_FIX)
    return err


def test_generation_config_must_be_an_object():
    err = _gen_error([1])
    assert err.field == GEN
    assert err.message == "generation_config.json is an array ([1]), expected an object"


@pytest.mark.parametrize("key", ["bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"])
@pytest.mark.parametrize("value", ["1", True, 1.0, [1, "2"], [None], [1, None], {"id": 1}, [[1]]])
def test_token_ids_of_the_wrong_type(key, value):
    err = _gen_error({key: value})
    assert err.field == key
    assert err.message == (f"generation_config.json {key!r} is {sf.json_type(value)} ({sf.shown(value)}), "
                           "expected a token id (an integer), a list of them, or null")


@pytest.mark.parametrize("key", ["bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"])
def test_token_ids_of_the_right_type_are_kept(key):
    for value in (None, 0, 5, [0, 5], []):
        document = {key: value, "other": "kept"}
        assert sf.check_generation_config(document, Path("g"), vocab_size=6) is document


@pytest.mark.parametrize("key", ["bos_token_id", "eos_token_id"])
def test_bos_eos_ranges_below_at_above_the_vocabulary(key):
    for good in (0, 15, [0, 15]):
        sf.check_generation_config({key: good}, Path("g"), vocab_size=16)
    for bad, token in ((16, 16), ([3, 16], 16), (-1, -1), ([-2], -2)):
        err = _gen_error({key: bad}, vocab_size=16)
        assert err.field == key
        assert err.message == f"generation_config.json {key!r} = {token} is not a token id of this model (0 … 15)"
    sf.check_generation_config({key: 10**6}, Path("g"), vocab_size=None)
    err = _gen_error({key: -1}, vocab_size=None)
    assert err.message == f"generation_config.json {key!r} = -1 is not a token id of this model (≥ 0)"


@pytest.mark.parametrize("key", ["pad_token_id", "decoder_start_token_id"])
def test_other_ids_are_not_range_checked(key):
    sf.check_generation_config({key: 99}, Path("g"), vocab_size=16)
    sf.check_generation_config({key: -1}, Path("g"), vocab_size=16)


INT_KEYS = ("max_length", "max_new_tokens", "min_length", "min_new_tokens", "top_k", "num_beams",
            "num_return_sequences", "no_repeat_ngram_size")
FLOAT_KEYS = ("temperature", "top_p", "typical_p", "min_p", "repetition_penalty", "length_penalty")


@pytest.mark.parametrize("key", INT_KEYS)
def test_count_keys(key):
    for good in (0, 1, 50, None):
        sf.check_generation_config({key: good}, Path("g"), vocab_size=None)
    for bad in (-1, 1.0, True, "5", [5]):
        err = _gen_error({key: bad})
        assert err.field == key
        assert err.message == (f"generation_config.json {key!r} is {sf.json_type(bad)} ({sf.shown(bad)}), "
                               "expected an integer ≥ 0 or null")


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_number_keys(key):
    for good in (0, 0.7, -1.5, 2, None):
        sf.check_generation_config({key: good}, Path("g"), vocab_size=None)
    for bad in (True, "0.7", [0.7]):
        err = _gen_error({key: bad})
        assert err.field == key
        assert err.message == (f"generation_config.json {key!r} is {sf.json_type(bad)} ({sf.shown(bad)}), "
                               "expected a number or null")


def test_do_sample():
    for good in (True, False, None):
        sf.check_generation_config({"do_sample": good}, Path("g"), vocab_size=None)
    for bad in (1, 0, "true"):
        err = _gen_error({"do_sample": bad})
        assert err.field == "do_sample"
        assert err.message == (f"generation_config.json 'do_sample' is {sf.json_type(bad)} ({sf.shown(bad)}), "
                               "expected true or false or null")


def test_read_generation_config(tmp_path):
    assert sf.read_generation_config(tmp_path, vocab_size=4) is None
    (tmp_path / GEN).write_text(json.dumps({"eos_token_id": [1, 3], "temperature": 0.6}))
    assert sf.read_generation_config(tmp_path, vocab_size=4) == {"eos_token_id": [1, 3], "temperature": 0.6}
    with pytest.raises(ConvertError) as info:
        sf.read_generation_config(tmp_path, vocab_size=3)
    assert info.value.path == os.fspath(tmp_path / GEN)
    assert info.value.field == "eos_token_id"


def test_read_generation_config_limit_is_1_mib(tmp_path):
    body = '{"a": "' + "x" * (1024 * 1024 - 9) + '"}'
    (tmp_path / GEN).write_text(body)
    assert len(body) == 1024 * 1024
    assert sf.read_generation_config(tmp_path, vocab_size=None)["a"][:3] == "xxx"
    (tmp_path / GEN).write_text(body[:-2] + 'x"}')
    with pytest.raises(ConvertError, match="over the 1048576-byte limit"):
        sf.read_generation_config(tmp_path, vocab_size=None)


# ---- config.json token ids, objects ---------------------------------------------------------------

@pytest.mark.parametrize("value", [None, 0, 7, [0, 7], []])
def test_check_token_id_accepts(value):
    sf.check_token_id("config.json", Path("c"), "eos_token_id", value, "fix")


@pytest.mark.parametrize("value", [-1, True, "1", 1.0, [None], [1, -1], [True], {"a": 1}])
def test_check_token_id_refuses(value):
    with pytest.raises(ConvertError) as info:
        sf.check_token_id("config.json", Path("m/c.json"), "eos_token_id", value, "fix it")
    err = info.value
    assert (err.field, err.path, err.hint) == ("eos_token_id", "m/c.json", "fix it")
    assert err.message == (f"config.json 'eos_token_id' is {sf.json_type(value)} ({sf.shown(value)}), "
                           "expected a token id (an integer ≥ 0), a list of them, or null")


def test_mapping_or_refuse():
    document = {"a": 1}
    assert sf.mapping_or_refuse(document, "t.json", Path("t"), "fix") is document
    with pytest.raises(ConvertError) as info:
        sf.mapping_or_refuse("x", "t.json", Path("m/t.json"), "fix it")
    err = info.value
    assert (err.field, err.path, err.hint, err.message) == ("t.json", "m/t.json", "fix it",
                                                            "t.json is a string ('x'), expected an object")


def test_read_json_file_default_limit_is_64_mib(tmp_path):
    limit = 64 * 1024 * 1024
    with open(tmp_path / "tokenizer.json", "wb") as f:  # sparse: nothing is written but the size
        f.truncate(limit)
    with pytest.raises(ConvertError) as info:  # at the limit: read, and refused as JSON
        sf.read_json_file(tmp_path, "tokenizer.json")
    assert "tokenizer.json is not valid JSON" in str(info.value)
    with open(tmp_path / "tokenizer.json", "wb") as f:
        f.truncate(limit + 1)
    with pytest.raises(ConvertError, match="over the 67108864-byte limit"):
        sf.read_json_file(tmp_path, "tokenizer.json")


def test_read_json_file_opens_the_checked_path_without_following_a_symlink(tmp_path, monkeypatch):
    # a symlink swapped in after file_inside allowed the name (a race) must not be followed
    (tmp_path / "elsewhere.json").write_text('{"secret": 1}')
    (tmp_path / "config.json").symlink_to(tmp_path / "elsewhere.json")
    monkeypatch.setattr(sf, "file_inside", lambda folder, name, error: Path(folder) / name)
    with pytest.raises(ConvertError):
        sf.read_json_file(tmp_path, "config.json")
