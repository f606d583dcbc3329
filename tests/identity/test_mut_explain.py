"""`apr.identity.explain` (`apr inspect --explain`): the exact `apr stamp` command for each missing
quality point, the values it fills in from the file's own evidence, the notes for points no stamp
can earn, the free-text license notes and the attainable score (issue 23: mutation score of
apr/identity/explain.py). Expected texts are written out here in full.
"""

from __future__ import annotations

import pytest

from apr.identity.explain import Advice, attainable_score, explain_quality, license_notes
from apr.identity.quality import Missing, QualityScore

QWEN2 = ["model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj.weight"]
GPT2 = ["transformer.h.0.attn.c_attn.weight", "transformer.wte.weight"]
UNKNOWN = ["blk.0.attn_q.weight"]


def _score(*missing: Missing, breakdown: dict[str, int] | None = None) -> QualityScore:
    return QualityScore(breakdown=breakdown or {"physics": 30}, missing=missing)


def _commands(field: str, names: list[str], path: str = "m.apr") -> list[str | None]:
    advice = explain_quality(_score(Missing("part", 5, "what", field)), path=path, tensor_names=names)
    return [a.command for a in advice]


@pytest.mark.parametrize(("field", "names", "command"), [
    ("architecture", QWEN2, "apr stamp m.apr --architecture qwen2 --in-place"),
    ("architecture", GPT2, "apr stamp m.apr --architecture gpt2 --in-place"),
    ("architecture", UNKNOWN, "apr stamp m.apr --architecture <architecture> --in-place"),
    ("hf_architecture", QWEN2, "apr stamp m.apr --hf-architecture Qwen2ForCausalLM --in-place"),
    ("hf_architecture", GPT2, "apr stamp m.apr --hf-architecture GPT2LMHeadModel --in-place"),
    ("hf_architecture", UNKNOWN, "apr stamp m.apr --hf-architecture <HFClassForCausalLM> --in-place"),
    ("hf_model_type", QWEN2, "apr stamp m.apr --hf-model-type qwen2 --in-place"),
    ("hf_model_type", ["gpt_neox.layers.0.attention.query_key_value.weight"],
     "apr stamp m.apr --hf-model-type gpt_neox --in-place"),
    ("hf_model_type", UNKNOWN, "apr stamp m.apr --hf-model-type <model_type> --in-place"),
    ("license", QWEN2, "apr stamp m.apr --license <SPDX-ID> --in-place"),
    ("data_license", QWEN2, "apr stamp m.apr --data-license <SPDX-ID> --in-place"),
    ("data_source", QWEN2, "apr stamp m.apr --data-source <DATASET-ID|teacher-only> --in-place"),
    ("tokenizer", QWEN2, "apr stamp m.apr --tokenizer <TOKENIZER_DIR> --in-place"),
])
def test_each_stampable_field_gets_its_exact_command(field, names, command) -> None:
    assert _commands(field, names) == [command]


def test_a_path_with_spaces_or_quotes_is_shell_quoted_and_a_real_value_too() -> None:
    assert _commands("architecture", QWEN2, path="my models/it's.apr") == [
        "apr stamp 'my models/it'\"'\"'s.apr' --architecture qwen2 --in-place"]
    assert _commands("license", QWEN2, path="a b.apr") == ["apr stamp 'a b.apr' --license <SPDX-ID> --in-place"]


def test_a_field_the_table_does_not_know_is_a_key_error_not_a_wrong_command() -> None:
    with pytest.raises(KeyError):
        _commands("vocab_size", QWEN2)


def test_unstampable_points_get_a_note_and_no_command() -> None:
    score = _score(Missing("physics", 30, "header damaged", None), Missing("dimensions", 10, "no dims", None),
                   Missing("license", 10, "no license", "license"))
    advice = explain_quality(score, path="m.apr", tensor_names=QWEN2)
    assert advice == [
        Advice("physics", 30, "header damaged", None, "restore the file from its source: the header was damaged"),
        Advice("dimensions", 10, "no dims", None,
               "re-import the model from its Hugging Face folder (config.json carries the dimensions)"),
        Advice("license", 10, "no license", "apr stamp m.apr --license <SPDX-ID> --in-place", ""),
    ]


def test_advice_as_json() -> None:
    assert Advice("license", 10, "no license", "apr stamp x", "n").to_dict() == {
        "part": "license", "points": 10, "what": "no license", "command": "apr stamp x", "note": "n"}
    assert Advice("physics", 30, "w", None).to_dict() == {
        "part": "physics", "points": 30, "what": "w", "command": None, "note": ""}


def test_nothing_missing_is_no_advice() -> None:
    assert explain_quality(_score(), path="m.apr", tensor_names=QWEN2) == []


def test_the_family_is_read_from_a_one_shot_iterable() -> None:
    score = _score(Missing("a", 1, "w", "architecture"), Missing("b", 1, "w", "hf_model_type"))
    advice = explain_quality(score, path="m.apr", tensor_names=iter(QWEN2))
    assert [a.command for a in advice] == ["apr stamp m.apr --architecture qwen2 --in-place",
                                           "apr stamp m.apr --hf-model-type qwen2 --in-place"]


@pytest.mark.parametrize(("breakdown", "missing", "attainable"), [
    ({"physics": 30, "architecture": 20}, (), 50),
    ({"physics": 30}, (Missing("license", 10, "w", "license"), Missing("data", 5, "w", "data_source")), 45),
    ({"physics": 30}, (Missing("dims", 10, "w", None), Missing("license", 7, "w", "license")), 37),
    ({}, (Missing("dims", 10, "w", None),), 0),
])
def test_attainable_score_adds_only_stampable_points(breakdown, missing, attainable) -> None:
    assert attainable_score(QualityScore(breakdown=breakdown, missing=missing)) == attainable


def test_free_text_licenses_get_one_note_each_in_order() -> None:
    notes = license_notes({"license": "my own terms", "data_license": "Apache-2.0 / permissive-aggregate"})
    assert notes == [
        "license 'my own terms' is free text, not an SPDX expression: the Hub and SPDX tools cannot read it "
        "(stamp --license with an SPDX expression or a LicenseRef- id if one applies)",
        "data_license 'Apache-2.0 / permissive-aggregate' is free text, not an SPDX expression: the Hub and SPDX "
        "tools cannot read it (stamp --data-license with an SPDX expression or a LicenseRef- id if one applies)",
    ]


@pytest.mark.parametrize("metadata", [
    {}, {"license": None}, {"license": ""}, {"license": "   "}, {"license": 3}, {"license": "MIT"},
    {"license": "Apache-2.0 OR MIT"}, {"data_license": "LicenseRef-mine"}, {"data_license": "CC-BY-4.0"},
])
def test_no_note_for_spdx_blank_absent_or_non_text(metadata) -> None:
    assert license_notes(metadata) == []


def test_only_the_free_text_one_of_the_two_is_noted() -> None:
    assert license_notes({"license": "MIT", "data_license": "whatever"}) == [
        "data_license 'whatever' is free text, not an SPDX expression: the Hub and SPDX tools cannot read it "
        "(stamp --data-license with an SPDX expression or a LicenseRef- id if one applies)"]


def test_every_value_explain_can_fill_in_is_shell_safe() -> None:
    # why the command quotes a filled-in value only defensively: family names, HF classes and
    # model types come from fixed tables whose entries need no quoting (placeholders stay as <...>)
    import shlex

    from apr.identity.family import FAMILIES, HF_CLASS_FOR_FAMILY, HF_MODEL_TYPE_FOR_FAMILY

    values = {*FAMILIES, *HF_CLASS_FOR_FAMILY.values(), *HF_MODEL_TYPE_FOR_FAMILY.values()}
    assert all(shlex.quote(value) == value for value in values)
