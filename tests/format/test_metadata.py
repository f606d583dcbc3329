"""The metadata JSON: §1.8 serialisation rules on write, defensive parsing on read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apr.errors import MetadataError, TensorInputError
from apr.format import open_bytes, save
from apr.format.metadata import TYPED_FIELDS, decode_metadata, encode_metadata
from tests.format.apr_samples import build_file

ALWAYS = b'"model_type":"","license":null,"data_source":null,"data_license":null,"total_size":0,"param_count":0'


def test_empty_metadata_writes_only_the_always_present_fields() -> None:
    assert encode_metadata(None) == b"{" + ALWAYS + b"}"
    assert encode_metadata({}) == encode_metadata(None)


def test_provenance_fields_are_written_as_null_never_omitted() -> None:
    document = json.loads(encode_metadata({"architecture": "qwen2"}))
    for key in ("license", "data_source", "data_license"):
        assert key in document and document[key] is None


def test_optional_typed_fields_are_omitted_when_unset() -> None:
    document = json.loads(encode_metadata({"name": None, "hidden_size": None}))
    optional = [key for key, _k, always, _d in TYPED_FIELDS if not always]
    assert not set(optional) & set(document)


def test_typed_fields_follow_declaration_order_and_custom_keys_come_last_sorted() -> None:
    meta = {"zz": 1, "vocab_size": 32, "aa": 2, "name": "m", "architecture": "llama", "Mm": 3, "é": 4}
    keys = list(json.loads(encode_metadata(meta)))
    declared = [key for key, *_ in TYPED_FIELDS]
    typed = [k for k in keys if k in declared]
    assert typed == sorted(typed, key=declared.index)
    assert keys[len(typed):] == ["Mm", "aa", "zz", "é"]  # custom keys: sorted, at the top level
    assert "custom" not in keys


def test_json_is_compact_utf8_without_escapes() -> None:
    raw = encode_metadata({"name": "модель ü", "x": [1, 2]})
    assert b" " not in raw.replace("модель ü".encode(), b"") and not raw.endswith(b"\n")
    assert "модель ü".encode() in raw and b"\\u" not in raw


def test_key_order_of_the_input_does_not_change_the_bytes() -> None:
    a = {"b": 1, "a": 2, "architecture": "llama", "license": "MIT"}
    b = dict(reversed(list(a.items())))
    assert encode_metadata(a) == encode_metadata(b)


def test_typed_float_accepts_int_and_writes_float() -> None:
    assert json.loads(encode_metadata({"rope_theta": 10000}))["rope_theta"] == 10000.0
    assert b'"rope_theta":10000.0' in encode_metadata({"rope_theta": 10000})


@pytest.mark.parametrize(
    "meta",
    [
        {"x": float("nan")},
        {"x": [float("inf")]},
        {"rope_theta": float("nan")},
        {"quantization": {"scale": float("-inf")}},
        {"x": b"bytes"},
        {"x": {1, 2}},
        {1: "non-string key"},
        {"hidden_size": -1},
        {"hidden_size": True},
        {"hidden_size": 1.5},
        {"architecture": 3},
        {"special_tokens": ["not", "an", "object"]},
        {"x": "\ud800"},
    ],
)
def test_unstorable_metadata_is_refused_before_writing(meta: dict) -> None:
    with pytest.raises(TensorInputError):
        save({"w": np.zeros(1, np.float32)}, meta)


# --- reading -------------------------------------------------------------------------------------


def test_older_all_null_generation_is_accepted() -> None:
    document = {key: (default if always else None) for key, _kind, always, default in TYPED_FIELDS}
    decoded = decode_metadata(json.dumps(document).encode())
    assert decoded["hidden_size"] is None and decoded["model_type"] == ""


def test_duplicate_keys_last_wins() -> None:
    assert decode_metadata(b'{"architecture":"llama","architecture":"qwen2"}')["architecture"] == "qwen2"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b"[1, 2]",
        b'"text"',
        b"null",
        b"",
        b"{",
        b'{"x": 1,}',
        b"\xff\xfe{}",
        b'{"x": "\xc3"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"hidden_size": "six"}',
        b'{"hidden_size": -6}',
        b'{"hidden_size": true}',
        b'{"license": 3}',
        b'{"quantization": []}',
        b'{"x": 1' + b"0" * 5000 + b"}",  # an integer past Python's digit limit
    ],
)
def test_malformed_metadata_is_a_metadata_error(raw: bytes) -> None:
    with pytest.raises(MetadataError):
        decode_metadata(raw)


def test_nan_in_a_file_is_refused_on_open() -> None:
    data = build_file([], [], metadata=b'{"model_type":"","rope_theta":NaN}')
    with pytest.raises(MetadataError) as info:
        open_bytes(data)
    assert info.value.hint


def test_metadata_round_trips_through_a_file() -> None:
    meta = {"architecture": "llama", "hidden_size": 2**63, "custom.nested": {"list": [1, None, "x", 2.5]}}
    reader = open_bytes(save({}, meta))
    assert reader.metadata["hidden_size"] == 2**63
    assert reader.metadata["custom.nested"] == {"list": [1, None, "x", 2.5]}


def test_a_number_that_overflows_to_infinity_is_rejected() -> None:
    from apr.errors import MetadataError
    from apr.format.metadata import decode_metadata

    with pytest.raises(MetadataError, match="infinity"):
        decode_metadata(b'{"rope_theta":1e999}')
