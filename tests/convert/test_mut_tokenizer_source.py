"""apr/convert/tokenizer_source.py (issue 23): the tokenizer metadata an import writes, key by key,
from a real byte-level BPE folder (trained by `tokenizers`) and from GGUF ``tokenizer.ggml.*``
values; the pre-tokenizers checked by what `tokenizers` does with them (llama.cpp's split rules)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from apr.convert import tokenizer_source as ts
from apr.convert.hf_side_files import json_type, shown
from apr.errors import ConvertError, TokenizerError
from apr.tokenizer import AddedToken, TokenizerRecord
from tests.convert.tiny_hf import CHATML, train_tokenizer

GGUF_FIX = "re-convert the model with llama.cpp's convert_hf_to_gguf.py, or import its Hugging Face folder"
# llama.cpp src/llama-vocab.cpp: the split regexes of LLAMA3 (llama-bpe, llama3, smaug-bpe) and QWEN2
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
          r"\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
         r"\s+(?!\S)|\s+")
BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
NO_REGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def pieces(pre_tokenizer, text):
    document = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
                "pre_tokenizer": pre_tokenizer, "post_processor": None, "decoder": None,
                "model": {"type": "BPE", "vocab": {}, "merges": []}}
    return [p for p, _ in Tokenizer.from_str(json.dumps(document)).pre_tokenizer.pre_tokenize_str(text)]


# ---- pre-tokenizers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("pre", "expected"), [
    ("smollm", {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTE_LEVEL]}),
    ("llama-bpe", {"type": "Sequence", "pretokenizers": [split(LLAMA3), NO_REGEX]}),
    ("llama3", {"type": "Sequence", "pretokenizers": [split(LLAMA3), NO_REGEX]}),
    ("smaug-bpe", {"type": "Sequence", "pretokenizers": [split(LLAMA3), NO_REGEX]}),
    ("qwen2", {"type": "Sequence", "pretokenizers": [split(QWEN2), NO_REGEX]}),
    ("qwen3", {"type": "Sequence", "pretokenizers": [split(QWEN2), NO_REGEX]}),
    ("gpt-2", BYTE_LEVEL), ("default", BYTE_LEVEL), (None, BYTE_LEVEL),
    ("llama", BYTE_LEVEL), ("qwen", BYTE_LEVEL), ("smollm2", BYTE_LEVEL), ("Qwen2", BYTE_LEVEL), ("", BYTE_LEVEL),
])
def test_pre_tokenizer_sections(pre, expected):
    assert ts.pre_tokenizer_for(pre) == expected


@pytest.mark.parametrize(("pre", "expected"), [
    ("smollm", ["Hi", "Ġ", "1", "2", "3", "4", "5", "Ġit", "'s", "Ċ", "Ċ", "ok"]),  # digits one by one
    ("llama-bpe", ["Hi", "Ġ", "123", "45", "Ġit", "'s", "ĊĊ", "ok"]),  # digits in threes
    ("qwen2", ["Hi", "Ġ", "1", "2", "3", "4", "5", "Ġit", "'s", "ĊĊ", "ok"]),
    (None, ["Hi", "Ġ12345", "Ġit", "'s", "Ċ", "Ċ", "ok"]),  # GPT-2's own regex
])
def test_pre_tokenizers_split_as_llama_cpp_does(pre, expected):
    assert pieces(ts.pre_tokenizer_for(pre), "Hi 12345 it's\n\nok") == expected


def test_the_default_pre_tokenizer_is_a_fresh_copy():
    first = ts.pre_tokenizer_for(None)
    first["add_prefix_space"] = True
    assert ts.pre_tokenizer_for("gpt-2") == BYTE_LEVEL


# ---- GGUF -----------------------------------------------------------------------------------------

TOKENS = ["<s>", "</s>", "a", "b", "ab", "<|im_start|>", "<|im_end|>", "<tool>"]


def gguf_fields(**extra):
    fields = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": list(TOKENS),
              "tokenizer.ggml.merges": ["a b"], "tokenizer.ggml.token_type": [3, 3, 1, 1, 1, 3, 3, 4],
              "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 6, "tokenizer.ggml.pre": "qwen2"}
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not None}


def test_record_from_gguf_field_by_field():
    record = ts.record_from_gguf(gguf_fields())
    assert record.vocabulary == tuple(TOKENS)
    assert record.merges == ("a b",)
    assert record.model_type == "BPE"
    assert record.added_tokens == (AddedToken(0, "<s>", True), AddedToken(1, "</s>", True),
                                   AddedToken(5, "<|im_start|>", True), AddedToken(6, "<|im_end|>", True),
                                   AddedToken(7, "<tool>", False))
    assert (record.bos_token_id, record.eos_token_id) == (0, 6)
    assert record.pipeline == {
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2), NO_REGEX]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False},
    }


@pytest.mark.parametrize("kind", [0, 1, 2, 5, 6, 7])
def test_only_control_and_user_defined_tokens_are_added(kind):
    record = ts.record_from_gguf(gguf_fields(**{"tokenizer.ggml.token_type": [kind] * len(TOKENS)}))
    assert record.added_tokens == ()


def test_absent_optional_keys():
    record = ts.record_from_gguf({"tokenizer.ggml.tokens": ["a", "b"]})  # model defaults to gpt2
    assert record.vocabulary == ("a", "b")
    assert record.merges == ()
    assert record.added_tokens == ()
    assert (record.bos_token_id, record.eos_token_id) == (None, None)
    assert record.pipeline["pre_tokenizer"] == BYTE_LEVEL


@pytest.mark.parametrize("tokens", [None, []])
def test_no_tokens_no_record(tokens):
    assert ts.record_from_gguf({"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.model": "llama"}) is None
    assert ts.record_from_gguf({}) is None


@pytest.mark.parametrize("model", ["llama", "bert", "GPT2", ""])
def test_a_tokenizer_that_is_not_byte_level_bpe_is_refused(model):
    with pytest.raises(TokenizerError) as info:
        ts.record_from_gguf(gguf_fields(**{"tokenizer.ggml.model": model}))
    err = info.value
    assert err.field == "tokenizer.ggml.model"
    assert err.hint == "import with --tokenizer DIR pointing at the model's Hugging Face tokenizer folder"
    assert f"GGUF tokenizer model {model!r} is not byte-level BPE (gpt2); it cannot be embedded" in str(err)


@pytest.mark.parametrize("count", [1, len(TOKENS) - 1, len(TOKENS) + 1])
def test_token_types_must_be_one_per_token(count):
    with pytest.raises(ConvertError) as info:
        ts.record_from_gguf(gguf_fields(**{"tokenizer.ggml.token_type": [1] * count}))
    err = info.value
    assert (err.field, err.hint) == ("tokenizer.ggml.token_type", GGUF_FIX)
    assert f"GGUF tokenizer.ggml.token_type has {count} entries for {len(TOKENS)} tokens" in str(err)


@pytest.mark.parametrize("key", ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"])
def test_bos_eos_ids_below_at_above_the_vocabulary(key):
    last = len(TOKENS) - 1
    record = ts.record_from_gguf(gguf_fields(**{key: last}))
    assert (record.bos_token_id if "bos" in key else record.eos_token_id) == last
    for bad in (len(TOKENS), -1, True, "1", 1.0):
        with pytest.raises(ConvertError) as info:
            ts.record_from_gguf(gguf_fields(**{key: bad}))
        err = info.value
        assert (err.field, err.hint) == (key, GGUF_FIX)
        assert f"GGUF {key} = {bad!r} is not a token id of this vocabulary (0 … {last})" in str(err)


def test_tokenizer_keys_from_record_key_by_key():
    record = ts.record_from_gguf(gguf_fields())
    keys = ts.tokenizer_keys_from_record(record, "{{ t }}", "qwen2")
    assert keys["chat_template"] == "{{ t }}"
    assert keys["tokenizer.pre_type"] == "qwen2"
    assert keys["tokenizer.vocabulary"] == TOKENS
    assert keys["tokenizer.vocab_size"] == len(TOKENS)
    assert keys["tokenizer.merges"] == ["a b"]
    assert keys["tokenizer.bos_token_id"] == 0 and keys["tokenizer.eos_token_id"] == 6
    assert keys["special_tokens"] == {"bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": None,
                                      "pad_token": None, "im_start_token": "<|im_start|>", "im_end_token": "<|im_end|>"}


@pytest.mark.parametrize(("template", "pre"), [(None, None), ("", "")])
def test_tokenizer_keys_from_record_leaves_empty_template_and_pre_out(template, pre):
    keys = ts.tokenizer_keys_from_record(ts.record_from_gguf(gguf_fields()), template, pre)
    assert "chat_template" not in keys and "tokenizer.pre_type" not in keys


def test_special_tokens_need_the_chatml_tokens_to_be_added_tokens():
    # the strings are in the vocabulary but are plain tokens (type 1): no im_start/im_end
    record = ts.record_from_gguf(gguf_fields(**{"tokenizer.ggml.token_type": [1] * len(TOKENS),
                                                "tokenizer.ggml.bos_token_id": None}))
    specials = ts.tokenizer_keys_from_record(record, None, None)["special_tokens"]
    assert specials == {"bos_token": None, "eos_token": "<|im_end|>", "unk_token": None, "pad_token": None,
                        "im_start_token": None, "im_end_token": None}


@pytest.mark.parametrize(("bos", "expected"), [(0, "x"), (2, "z"), (3, None), (-1, None), (None, None)])
def test_special_token_ids_outside_the_vocabulary_name_no_token(bos, expected):
    record = TokenizerRecord(vocabulary=("x", "y", "z"), merges=(), bos_token_id=bos, eos_token_id=bos)
    specials = ts.tokenizer_keys_from_record(record, None, None)["special_tokens"]
    assert specials["bos_token"] == expected and specials["eos_token"] == expected


# ---- Hugging Face folders -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


def folder_copy(trained, tmp_path, config=None, **files):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((trained / "tokenizer.json").read_bytes())
    tok_config = json.loads((trained / "tokenizer_config.json").read_text())
    if config is not None:
        tok_config = config
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


def test_a_folder_without_tokenizer_files_gives_nothing(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "x"}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    assert ts.tokenizer_keys_from_folder(tmp_path, {"eos_token_id": "bad"}) == ({}, None)


def test_folder_keys_key_by_key(trained, tmp_path):
    folder = folder_copy(trained, tmp_path)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    keys, record = ts.tokenizer_keys_from_folder(folder, {"bos_token_id": 1, "eos_token_id": [0, 2]})
    assert keys["chat_template"] == CHATML
    assert keys["tokenizer.vocab_size"] == len(vocab) == record.vocab_size
    assert all(keys["tokenizer.vocabulary"][index] == token for token, index in vocab.items())
    assert keys["tokenizer.bos_token_id"] == 1 and record.bos_token_id == 1
    assert keys["tokenizer.eos_token_id"] == 0  # the list's first id
    assert keys["special_tokens"] == {"bos_token": "<|im_start|>", "eos_token": "<|endoftext|>", "unk_token": None,
                                      "pad_token": None, "im_start_token": "<|im_start|>",
                                      "im_end_token": "<|im_end|>"}


@pytest.mark.parametrize("value", [320, 10**6, [], [320, 0], None])
def test_config_ids_outside_the_vocabulary_or_unusable_are_ignored(trained, tmp_path, value):
    folder = folder_copy(trained, tmp_path)
    keys, record = ts.tokenizer_keys_from_folder(folder, {"bos_token_id": value})
    assert "tokenizer.bos_token_id" not in keys and record.bos_token_id is None
    assert keys["tokenizer.eos_token_id"] == 2  # tokenizer_config's eos_token <|im_end|>, untouched


def test_config_id_at_the_last_row_is_used(trained, tmp_path):
    folder = folder_copy(trained, tmp_path)
    keys, _ = ts.tokenizer_keys_from_folder(folder, {"eos_token_id": 319})
    assert keys["tokenizer.eos_token_id"] == 319


@pytest.mark.parametrize("key", ["bos_token_id", "eos_token_id"])
@pytest.mark.parametrize("value", ["2", True, [True], ["1"], -1, [None], 2.0])
def test_config_ids_of_the_wrong_type_are_refused(trained, tmp_path, key, value):
    folder = folder_copy(trained, tmp_path)
    with pytest.raises(ConvertError) as info:
        ts.tokenizer_keys_from_folder(folder, {key: value})
    err = info.value
    assert (err.field, err.path) == (key, str(folder / "config.json"))
    assert err.hint == f"set {key} in config.json to a token id, or remove it"
    assert err.message.startswith(f"config.json {key!r} is ")


def test_chat_template_from_jinja_when_the_config_has_none(trained, tmp_path):
    folder = folder_copy(trained, tmp_path, config={"eos_token": "<|im_end|>"}, chat_template__jinja="{{ j }}")
    keys, _ = ts.tokenizer_keys_from_folder(folder, None)
    assert keys["chat_template"] == "{{ j }}"
    assert ts.chat_template_from_folder(folder) == "{{ j }}"


def test_the_config_template_beats_the_jinja_file(trained, tmp_path):
    folder = folder_copy(trained, tmp_path, chat_template__jinja="{{ j }}")
    assert ts.chat_template_from_folder(folder) == CHATML


def test_no_template_anywhere(trained, tmp_path):
    folder = folder_copy(trained, tmp_path, config={})
    keys, _ = ts.tokenizer_keys_from_folder(folder, None)
    assert "chat_template" not in keys
    assert ts.chat_template_from_folder(tmp_path / "m") is None


def test_override_folder_and_fallback_to_the_model_folders_template(trained, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "chat_template.jinja").write_text("{{ root }}")
    override = folder_copy(trained, tmp_path, config={})
    keys, record = ts.tokenizer_keys_from_folder(model, {"bos_token_id": 3}, override)
    assert keys["chat_template"] == "{{ root }}"
    assert record.vocab_size == 320 and keys["tokenizer.bos_token_id"] == 3
    (override / "chat_template.jinja").write_text("{{ override }}")
    assert ts.tokenizer_keys_from_folder(model, None, override)[0]["chat_template"] == "{{ override }}"


def test_override_as_a_tokenizer_json_file(trained, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ m }}"}))
    keys, record = ts.tokenizer_keys_from_folder(model, None, trained / "tokenizer.json")
    assert record.vocab_size == 320
    assert keys["chat_template"] == CHATML  # the file's own folder first


def test_vocab_json_alone_counts_as_a_tokenizer(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    keys, _ = ts.tokenizer_keys_from_folder(tmp_path, None)
    assert keys["tokenizer.vocabulary"] == ["a", "b", "ab"]
    assert keys["tokenizer.merges"] == ["a b"]


# ---- tokenizer_config.json ------------------------------------------------------------------------

TC_FIX = "correct it in tokenizer_config.json (or delete the key)"


def tc_error(tmp_path, config):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConvertError) as info:
        ts.chat_template_from_folder(tmp_path)
    err = info.value
    assert (err.path, err.hint) == (str(tmp_path / "tokenizer_config.json"), TC_FIX)
    return err


@pytest.mark.parametrize("key", ["bos_token", "eos_token", "unk_token", "pad_token"])
@pytest.mark.parametrize("value", [5, ["x"], {"content": 5}, {"content": ["x"]}, True])
def test_special_token_entries_of_the_wrong_type(tmp_path, key, value):
    err = tc_error(tmp_path, {key: value})
    assert err.field == key
    assert err.message == (f"tokenizer_config.json {key!r} is {json_type(value)} ({shown(value)}), "
                           'expected a token string, {"content": string}, or null')


@pytest.mark.parametrize("value", ["<s>", {"content": "<s>", "lstrip": False}, None, {"lstrip": False}])
def test_special_token_entries_of_the_right_type(tmp_path, value):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({k: value for k in ("bos_token", "pad_token")}))
    assert ts.chat_template_from_folder(tmp_path) is None


def test_the_document_must_be_an_object(tmp_path):
    err = tc_error(tmp_path, ["x"])
    assert err.field == "tokenizer_config.json"


@pytest.mark.parametrize("template", [5, {"name": "default"}, True])
def test_a_template_that_is_neither_text_nor_a_list(tmp_path, template):
    err = tc_error(tmp_path, {"chat_template": template})
    assert err.field == "chat_template"
    assert err.message == (f"tokenizer_config.json 'chat_template' is {json_type(template)} ({shown(template)}), "
                           "expected a string or a list of {name, template}")


@pytest.mark.parametrize("entry", [{"name": "default"}, {"template": "x"}, {"name": 1, "template": "x"},
                                   {"name": "default", "template": 2}, "default", None])
def test_malformed_named_templates(tmp_path, entry):
    err = tc_error(tmp_path, {"chat_template": [{"name": "tool_use", "template": "t"}, entry]})
    assert err.field == "chat_template[1]"
    found = "null" if entry is None else f"{json_type(entry)} ({shown(entry)})"
    assert err.message == (f"tokenizer_config.json 'chat_template[1]' is {found}, "
                           'expected an object {"name": string, "template": string}')


def test_the_default_named_template_is_taken(tmp_path, caplog):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "tool_use", "template": "{{ tools }}"}, {"name": "default", "template": "{{ d }}"}]}))
    with caplog.at_level(logging.DEBUG, logger="apr.convert.tokenizer_source"):
        assert ts.chat_template_from_folder(tmp_path) == "{{ d }}"
    assert caplog.records == []


def test_no_default_named_template_embeds_none_and_warns(tmp_path, caplog):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "tool_use", "template": "{{ tools }}"}, {"name": "rag", "template": "{{ r }}"}]}))
    (tmp_path / "chat_template.jinja").write_text("{{ j }}")
    with caplog.at_level(logging.WARNING, logger="apr.convert.tokenizer_source"):
        assert ts.chat_template_from_folder(tmp_path) == "{{ j }}"
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'tokenizer_config.json'}: none of the chat templates ['rag', 'tool_use'] is named 'default'; "
        "none is embedded"]


def test_template_size_limit_below_at_above(tmp_path):
    limit = 1024 * 1024
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "x" * limit}))
    assert len(ts.chat_template_from_folder(tmp_path)) == limit
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "x" * (limit + 1)}))
    with pytest.raises(ConvertError) as info:
        ts.chat_template_from_folder(tmp_path)
    err = info.value
    assert (err.field, err.path) == ("chat_template", str(tmp_path / "tokenizer_config.json"))
    assert err.hint == "a chat template is a few KB; check the file"
    assert err.message == f"the chat template is {limit + 1} characters, over the {limit} limit"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "default", "template": "x" * (limit + 1)}]}))
    with pytest.raises(ConvertError, match="over the 1048576 limit") as info:
        ts.chat_template_from_folder(tmp_path)
    assert (info.value.field, info.value.path) == ("chat_template", str(tmp_path / "tokenizer_config.json"))


def test_jinja_file_limit_and_encoding(tmp_path):
    limit = 1024 * 1024
    (tmp_path / "chat_template.jinja").write_bytes(b"y" * limit)
    assert len(ts.chat_template_from_folder(tmp_path)) == limit
    (tmp_path / "chat_template.jinja").write_bytes(b"y" * (limit + 1))
    with pytest.raises(ConvertError, match="over the 1048576-byte limit"):
        ts.chat_template_from_folder(tmp_path)
    (tmp_path / "chat_template.jinja").write_bytes(b"ok \xc3(")
    with pytest.raises(ConvertError) as info:
        ts.chat_template_from_folder(tmp_path)
    err = info.value
    assert (err.field, err.offset, err.path) == ("chat_template.jinja", 3, str(tmp_path / "chat_template.jinja"))
    assert err.hint == "save the template as UTF-8 text"
    assert "chat_template.jinja is not UTF-8 (byte 3 is b'\\xc3')" in str(err)


def test_a_jinja_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.jinja"
    outside.write_text("{{ secret }}")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "chat_template.jinja").symlink_to(outside)
    with pytest.raises(ConvertError):
        ts.chat_template_from_folder(folder)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "vocab.json",
                                  "merges.txt", "added_tokens.json", "special_tokens_map.json"])
def test_every_tokenizer_side_file_is_checked_in_an_override_folder(trained, tmp_path, name):
    model = tmp_path / "model"
    model.mkdir()
    override = tmp_path / "tok"
    override.mkdir()
    if name != "tokenizer.json":
        (override / "tokenizer.json").write_bytes((trained / "tokenizer.json").read_bytes())
    if name != "tokenizer_config.json":  # a template here: chat_template.jinja is not read for it
        (override / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ t }}"}))
    (override / name).mkdir()  # a folder where a file belongs
    with pytest.raises(ConvertError) as info:
        ts.tokenizer_keys_from_folder(model, None, override)
    assert name in str(info.value)


def test_an_override_file_that_is_a_fifo_is_refused_unopened(tmp_path):
    import os

    os.mkfifo(tmp_path / "tokenizer.json")
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(ConvertError):
        ts.tokenizer_keys_from_folder(model, None, tmp_path / "tokenizer.json")


def test_an_override_file_over_64_mib_is_refused(tmp_path):
    with open(tmp_path / "tokenizer.json", "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(ConvertError, match="over the 67108864-byte limit"):
        ts.tokenizer_keys_from_folder(model, None, tmp_path / "tokenizer.json")


def test_the_jinja_file_is_opened_without_following_a_symlink(tmp_path, monkeypatch):
    # a symlink swapped in after file_inside allowed the name (a race) must not be followed
    (tmp_path / "elsewhere.jinja").write_text("{{ secret }}")
    (tmp_path / "chat_template.jinja").symlink_to(tmp_path / "elsewhere.jinja")
    monkeypatch.setattr(ts, "file_inside", lambda folder, name, error: Path(folder) / name)
    with pytest.raises(ConvertError):
        ts.chat_template_from_folder(tmp_path)


@pytest.mark.parametrize("name", ["tokenizer.json", "vocab.json"])
def test_a_tokenizer_file_that_is_a_folder_is_refused(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(ConvertError) as info:
        ts.tokenizer_keys_from_folder(tmp_path, None)
    assert name in str(info.value)


def test_an_override_folder_is_checked_for_tokenizer_files_only(trained, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    override = folder_copy(trained, tmp_path)
    for name in ("config.json", "model.safetensors", "generation_config.json", "model.safetensors.index.json"):
        (override / name).mkdir()  # not a tokenizer file: not this import's business
    keys, record = ts.tokenizer_keys_from_folder(model, None, override)
    assert record.vocab_size == 320 and keys["chat_template"] == CHATML
