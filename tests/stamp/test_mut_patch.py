"""`apr.stamp.patch` field by field (issue 23): what each patch field does to the metadata, the
flags a stamp always and conditionally sets, which keys a new tokenizer replaces, and `has_any`.

Expected values come from the input and from aprender's flag table (HAS_VOCAB 0x0200,
LAYOUT_ROW_MAJOR 0x0400), never from `apply_patch` itself.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.stamp.patch import STRING_FIELDS, ProvenancePatch, apply_patch
from apr.tokenizer import TokenizerRecord

HAS_VOCAB = 0x0200
ROW_MAJOR = 0x0400
BASE = {"architecture": "LlamaForCausalLM", "license": "MIT", "hidden_size": 8, "zeta": "z"}
RECORD = TokenizerRecord(vocabulary=("a", "b", "ab"), merges=("a b",))


def test_the_string_fields_in_print_order() -> None:
    assert STRING_FIELDS == ("license", "data_source", "data_license", "hf_architecture", "hf_model_type",
                             "architecture", "name", "description")


@pytest.mark.parametrize("name", STRING_FIELDS)
def test_a_value_sets_exactly_its_key(name: str) -> None:
    meta, flags = apply_patch(BASE, 0, ProvenancePatch(**{name: "v-" + name}))
    assert meta == {**BASE, name: "v-" + name}
    assert flags == ROW_MAJOR and type(flags) is int


@pytest.mark.parametrize("name", STRING_FIELDS)
def test_an_empty_string_removes_its_key_present_or_absent(name: str) -> None:
    present = {**BASE, name: "old"}
    meta, _ = apply_patch(present, 0, ProvenancePatch(**{name: ""}))
    assert meta == {k: v for k, v in present.items() if k != name}
    absent = {k: v for k, v in BASE.items() if k != name}
    meta, _ = apply_patch(absent, 0, ProvenancePatch(**{name: ""}))  # no KeyError
    assert meta == absent


def test_none_leaves_every_key_and_the_input_is_not_modified() -> None:
    source = dict(BASE)
    meta, flags = apply_patch(source, 0x0001, ProvenancePatch(name="n"))
    assert meta == {**BASE, "name": "n"} and flags == 0x0001 | ROW_MAJOR
    assert source == BASE


def test_all_fields_at_once_later_keys_untouched() -> None:
    values = {name: f"{i}" for i, name in enumerate(STRING_FIELDS)}
    meta, _ = apply_patch(BASE, 0, ProvenancePatch(**values))
    assert meta == {**BASE, **values}


def test_mixed_set_clear_and_keep() -> None:
    meta, _ = apply_patch(BASE, 0, ProvenancePatch(license="", name="x", architecture="qwen2"))
    assert meta == {"architecture": "qwen2", "hidden_size": 8, "zeta": "z", "name": "x"}


@given(flags=st.integers(0, 0xFFFF), with_tokenizer=st.booleans())
@example(flags=0, with_tokenizer=False)
@example(flags=0, with_tokenizer=True)
@example(flags=HAS_VOCAB, with_tokenizer=False)
@example(flags=0xFFFF, with_tokenizer=True)
def test_flags_keep_every_bit_gain_row_major_and_has_vocab_only_with_a_tokenizer(flags, with_tokenizer):
    patch = ProvenancePatch(tokenizer=RECORD) if with_tokenizer else ProvenancePatch(name="n")
    _, got = apply_patch({}, flags, patch)
    assert got == flags | ROW_MAJOR | (HAS_VOCAB if with_tokenizer else 0)
    assert type(got) is int


def test_a_tokenizer_replaces_every_tokenizer_key_and_only_those() -> None:
    old = {
        **BASE,
        "tokenizer.vocabulary": ["x", "y"],
        "tokenizer.bos_token_id": 1,        # the new record has no bos: must not survive
        "tokenizer.pipeline": {"old": True},
        "tokenizer": "not a tokenizer.* key",
        "my.tokenizer.x": 3,
        "Tokenizer.caps": 4,
    }
    meta, flags = apply_patch(old, 0, ProvenancePatch(tokenizer=RECORD))
    assert meta == {
        **BASE,
        "tokenizer": "not a tokenizer.* key",
        "my.tokenizer.x": 3,
        "Tokenizer.caps": 4,
        "tokenizer.vocabulary": ["a", "b", "ab"],
        "tokenizer.vocab_size": 3,
        "tokenizer.merges": ["a b"],
        "tokenizer.model_type": "BPE",
        "tokenizer.added_tokens": [],
    }
    assert flags == ROW_MAJOR | HAS_VOCAB


def test_without_a_tokenizer_tokenizer_keys_stay() -> None:
    old = {**BASE, "tokenizer.vocabulary": ["x"], "tokenizer.bos_token_id": 0}
    meta, _ = apply_patch(old, 0, ProvenancePatch(description="d"))
    assert meta == {**old, "description": "d"}


@pytest.mark.parametrize("name", [*STRING_FIELDS, "tokenizer"])
def test_has_any_is_true_for_each_field_alone(name: str) -> None:
    assert ProvenancePatch(**{name: RECORD if name == "tokenizer" else "x"}).has_any() is True
    if name != "tokenizer":
        assert ProvenancePatch(**{name: ""}).has_any() is True  # clearing is a change


def test_has_any_is_false_for_the_empty_patch() -> None:
    assert ProvenancePatch().has_any() is False
