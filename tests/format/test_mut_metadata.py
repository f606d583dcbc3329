"""Metadata key by key: every typed field's kind, order and default; every read-side refusal.

The expected key order and defaults are §1.8 of docs/aprender-format.md, written out here, not read
from `TYPED_FIELDS` (issue 23: mutation score).
"""

from __future__ import annotations

import json
import types

import pytest

from apr.errors import MetadataError, TensorInputError
from apr.format.metadata import MAX_METADATA_SIZE, canonical_metadata, decode_metadata, encode_metadata

# §1.8, in declaration order: (key, kind). The always-written ones and their defaults follow.
SPEC = [
    ("model_type", "str"), ("name", "str"), ("description", "str"), ("author", "str"),
    ("license", "str"), ("data_source", "str"), ("data_license", "str"), ("version", "str"),
    ("source", "str"), ("original_format", "str"), ("created_at", "str"), ("total_size", "int"),
    ("param_count", "int"), ("quantization", "object"), ("sharding", "object"),
    ("chat_template", "str"), ("chat_format", "str"), ("special_tokens", "object"),
    ("architecture", "str"), ("hf_architecture", "str"), ("hf_model_type", "str"),
    ("hidden_size", "int"), ("num_layers", "int"), ("num_heads", "int"), ("num_kv_heads", "int"),
    ("vocab_size", "int"), ("intermediate_size", "int"), ("max_position_embeddings", "int"),
    ("rope_theta", "float"), ("rope_type", "int"), ("rms_norm_eps", "float"), ("head_dim", "int"),
    ("num_experts", "int"), ("num_experts_per_tok", "int"), ("moe_intermediate_size", "int"),
]
ALWAYS = {"model_type": "", "license": None, "data_source": None, "data_license": None,
          "total_size": 0, "param_count": 0}
GOOD = {"str": "x", "int": 7, "float": 0.5, "object": {"k": 1}}
WRONG = {"str": 7, "int": "7", "float": "0.5", "object": [1]}
EMPTY = b'{"model_type":"","license":null,"data_source":null,"data_license":null,"total_size":0,"param_count":0}'


def test_empty_metadata_is_exactly_the_always_written_fields_in_order() -> None:
    for empty in (None, {}):
        result = canonical_metadata(empty)
        assert list(result.items()) == list(ALWAYS.items())
        assert encode_metadata(empty) == EMPTY


def test_every_typed_field_is_written_in_declaration_order_then_custom_keys_sorted() -> None:
    full = {key: GOOD[kind] for key, kind in reversed(SPEC)}
    full.update({"zeta": 1, "Alpha": 2, "alpha": 3})
    result = canonical_metadata(full)
    assert list(result) == [key for key, _ in SPEC] + ["Alpha", "alpha", "zeta"]
    assert all(result[key] == GOOD[kind] for key, kind in SPEC)
    assert json.loads(encode_metadata(full)) == result
    assert list(json.loads(encode_metadata(full))) == list(result)


@pytest.mark.parametrize("key, kind", SPEC)
def test_each_typed_field_alone(key: str, kind: str) -> None:
    result = canonical_metadata({key: GOOD[kind]})
    expected = {**ALWAYS, key: GOOD[kind]}
    assert result == expected
    order = [k for k, _ in SPEC if k in expected]
    assert list(result) == order
    # unset (None) is the default when always written, absent otherwise
    unset = canonical_metadata({key: None})
    assert unset == ALWAYS and (key in unset) is (key in ALWAYS)


@pytest.mark.parametrize("key, kind", SPEC)
def test_each_typed_field_refuses_the_wrong_kind(key: str, kind: str) -> None:
    with pytest.raises(TensorInputError) as info:
        canonical_metadata({key: WRONG[kind]})
    assert info.value.field == key
    article = "an object" if kind == "object" else f"a {kind}"
    assert f"{key!r} must be {article}, got {type(WRONG[kind]).__name__}" in info.value.message
    assert key in info.value.hint and f"<{kind}>" in info.value.hint


@pytest.mark.parametrize("key", [k for k, kind in SPEC if kind == "int"])
def test_int_fields_accept_zero_and_refuse_negatives_and_bools(key: str) -> None:
    assert canonical_metadata({key: 0})[key] == 0
    assert canonical_metadata({key: 2**63})[key] == 2**63
    with pytest.raises(TensorInputError) as info:
        canonical_metadata({key: -1})
    assert info.value.field == key and "non-negative" in info.value.message and "-1" in info.value.message
    for flag in (True, False):
        with pytest.raises(TensorInputError) as info:
            canonical_metadata({key: flag})
        assert info.value.field == key
    with pytest.raises(TensorInputError):
        canonical_metadata({key: 1.0})


@pytest.mark.parametrize("key", ["rope_theta", "rms_norm_eps"])
def test_float_fields_accept_ints_as_floats_and_refuse_bools_and_non_finite(key: str) -> None:
    value = canonical_metadata({key: 3})[key]
    assert value == 3.0 and type(value) is float
    assert canonical_metadata({key: -0.25})[key] == -0.25
    for bad in (True, float("nan"), float("inf"), float("-inf")):
        with pytest.raises(TensorInputError) as info:
            canonical_metadata({key: bad})
        assert info.value.field == key
    with pytest.raises(TensorInputError) as info:
        canonical_metadata({key: float("inf")})
    assert "finite" in info.value.message and "inf" in info.value.message


def test_object_fields_accept_any_mapping_and_store_a_plain_dict() -> None:
    value = canonical_metadata({"quantization": types.MappingProxyType({"bits": 4})})["quantization"]
    assert type(value) is dict and value == {"bits": 4}


def test_custom_values_are_kept_as_given() -> None:
    assert canonical_metadata({"x": None, "y": [1, "a"]}) == {**ALWAYS, "x": None, "y": [1, "a"]}


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(TensorInputError) as info:
        canonical_metadata({"name": "ok", 3: "x"})
    assert "3" in info.value.message and "str()" in info.value.hint


@pytest.mark.parametrize("value", [float("nan"), float("inf"), b"bytes", {1, 2}, object()])
def test_custom_values_json_cannot_hold_are_refused(value) -> None:
    with pytest.raises(TensorInputError) as info:
        encode_metadata({"x": value})
    assert "not JSON-serialisable" in info.value.message


def test_non_ascii_text_is_written_as_raw_utf8() -> None:
    raw = encode_metadata({"name": "é€😀"})
    assert '"name":"é€😀"'.encode() in raw and b"\\u" not in raw


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_lone_surrogates_are_refused_in_values_and_keys(text: str) -> None:
    for meta in ({"name": text}, {text: 1}):
        with pytest.raises(TensorInputError) as info:
            encode_metadata(meta)
        assert repr(text.strip("ab")) in info.value.message and "surrogate" in info.value.hint


def test_metadata_size_limit_at_and_above() -> None:
    overhead = len(encode_metadata({"x": ""}))
    at = {"x": "a" * (MAX_METADATA_SIZE - overhead)}
    assert len(encode_metadata(at)) == MAX_METADATA_SIZE == 16 * 1024 * 1024
    with pytest.raises(TensorInputError) as info:
        encode_metadata({"x": "a" * (MAX_METADATA_SIZE - overhead + 1)})
    assert str(MAX_METADATA_SIZE + 1) in info.value.message and str(MAX_METADATA_SIZE) in info.value.message


# --- decode ------------------------------------------------------------------------------------


def test_decode_round_trips_what_encode_writes() -> None:
    full = {key: GOOD[kind] for key, kind in SPEC} | {"custom": [1, {"a": None}]}
    assert decode_metadata(encode_metadata(full)) == canonical_metadata(full)
    assert decode_metadata(memoryview(EMPTY)) == ALWAYS


def test_decode_accepts_older_writers_nulls_and_missing_fields() -> None:
    older = {key: None for key, _ in SPEC}
    assert decode_metadata(json.dumps(older).encode()) == older
    assert decode_metadata(b"{}") == {}


def test_duplicate_keys_last_wins() -> None:
    assert decode_metadata(b'{"name":"a","name":"b"}') == {"name": "b"}


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(b'{"name":"ab\xff"}')
    assert "UTF-8" in info.value.message and "byte 11" in info.value.message


@pytest.mark.parametrize("text", [b'{"x":NaN}', b'{"x":Infinity}', b'{"x":-Infinity}', b'{"x":1e999}',
                                  b'{"x":-1e999}', b"{", b"", b'{"x":1,}'])
def test_non_json_and_non_finite_numbers_are_refused(text: bytes) -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(text)
    assert "not valid JSON" in info.value.message


def test_the_non_finite_reason_is_named() -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(b'{"x":NaN}')
    assert "NaN is not valid JSON" in info.value.message
    with pytest.raises(MetadataError) as info:
        decode_metadata(b'{"x":1e999}')
    assert "1e999 overflows to infinity" in info.value.message


def test_finite_floats_are_parsed_as_floats() -> None:
    value = decode_metadata(b'{"rope_theta":1e308,"x":-2.5}')
    assert value == {"rope_theta": 1e308, "x": -2.5} and type(value["rope_theta"]) is float


def test_deep_nesting_is_a_metadata_error() -> None:
    with pytest.raises(MetadataError):
        decode_metadata(b"[" * 200_000 + b"]" * 200_000)


@pytest.mark.parametrize("text, kind", [(b"[]", "list"), (b"3", "int"), (b'"s"', "str"), (b"null", "NoneType")])
def test_a_non_object_document_is_refused(text: bytes, kind: str) -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(text)
    assert f"got {kind}" in info.value.message


@pytest.mark.parametrize("key, kind", SPEC)
def test_decode_checks_each_typed_field(key: str, kind: str) -> None:
    assert decode_metadata(json.dumps({key: GOOD[kind]}).encode()) == {key: GOOD[kind]}
    with pytest.raises(MetadataError) as info:
        decode_metadata(json.dumps({key: WRONG[kind]}).encode())
    assert info.value.field == key
    assert f"{key!r} should be {kind}, found {type(WRONG[kind]).__name__}" in info.value.message


@pytest.mark.parametrize("key", [k for k, kind in SPEC if kind == "int"])
def test_decode_int_fields_zero_ok_negative_and_bool_refused(key: str) -> None:
    assert decode_metadata(json.dumps({key: 0}).encode()) == {key: 0}
    for bad in (-1, True, 1.5):
        with pytest.raises(MetadataError) as info:
            decode_metadata(json.dumps({key: bad}).encode())
        assert info.value.field == key


@pytest.mark.parametrize("key", ["rope_theta", "rms_norm_eps"])
def test_decode_float_fields_take_ints_but_not_bools(key: str) -> None:
    assert decode_metadata(json.dumps({key: 2}).encode()) == {key: 2}
    with pytest.raises(MetadataError) as info:
        decode_metadata(json.dumps({key: False}).encode())
    assert info.value.field == key


def test_a_long_bad_value_is_cut_in_the_message() -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(json.dumps({"name": list(range(1000))}).encode())
    assert len(info.value.message) == 300


@pytest.mark.parametrize("make", [
    lambda: canonical_metadata({"hidden_size": "x"}),
    lambda: canonical_metadata({1: 2}),
    lambda: encode_metadata({"x": {1, 2}}),
    lambda: encode_metadata({"x": "a" * MAX_METADATA_SIZE}),
    lambda: encode_metadata({"x": "\ud800"}),
    lambda: decode_metadata(b"\xff"),
    lambda: decode_metadata(b"{"),
    lambda: decode_metadata(b"[]"),
    lambda: decode_metadata(b'{"name":1}'),
])
def test_every_metadata_refusal_says_how_to_fix_it(make) -> None:
    with pytest.raises((MetadataError, TensorInputError)) as info:
        make()
    assert info.value.hint and info.value.message


def test_an_overflowing_number_is_quoted_to_40_characters() -> None:
    digits = "1" + "0" * 400 + ".5"  # about 1e400: a float that parses to infinity
    with pytest.raises(MetadataError) as info:
        decode_metadata(b'{"x":' + digits.encode() + b"}")
    assert f"number {digits[:40]} overflows to infinity" in info.value.message
    assert f"number {digits[:41]} " not in info.value.message


@pytest.mark.parametrize("text", [b"\xff", b"{", b'{"name":1}'])
def test_metadata_hints_name_the_command_that_fixes_it(text: bytes) -> None:
    with pytest.raises(MetadataError) as info:
        decode_metadata(text)
    assert "`apr stamp`" in info.value.hint
