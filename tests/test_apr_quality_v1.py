"""Contract apr-quality-v1: the 100-point score of §3.1 and `--explain` (contracts/apr-quality-v1.yaml)."""

from __future__ import annotations

import json
import os
import shlex
import tempfile

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.format.header import Flags
from apr.identity.quality import MAXIMA, THRESHOLD, score_quality
from stamp_builders import flag_values, run_cli, write_checkpoint, write_vocab_merges

_VALUE = st.none() | st.just("") | st.just("unknown") | st.sampled_from(["qwen2", "Apache-2.0", "x"])
_INT = st.none() | st.integers(0, 4096)


@st.composite
def scored_inputs(draw):
    meta = {}
    for key in ("architecture", "license", "data_source", "data_license", "hf_architecture", "hf_model_type"):
        value = draw(_VALUE)
        if value is not None or draw(st.booleans()):
            meta[key] = value
    for key in ("hidden_size", "num_layers", "num_heads"):
        value = draw(_INT)
        if value is not None:
            meta[key] = value
    return meta, draw(flag_values), draw(st.booleans())


def reference_score(meta, flags, checksum_valid) -> dict[str, int]:
    """§3.1 re-implemented independently of apr/identity/quality.py."""
    present = lambda k: meta.get(k) not in (None, "")  # noqa: E731
    return {
        "physics": 20 if checksum_valid else 0,
        "structural": 5 * (present("architecture") and meta["architecture"] != "unknown")
        + 5 * (meta.get("hidden_size") is not None) + 5 * (meta.get("num_layers") is not None)
        + 5 * (meta.get("num_heads") is not None),
        "provenance": 9 * present("license") + 8 * present("data_source") + 8 * present("data_license"),
        "hf_identity": 12 * present("hf_architecture") + 8 * present("hf_model_type"),
        "tokenizer": 15 if flags & 0x0200 else 0,
    }


@pytest.mark.falsifies("FALSIFY-QUALITY-001")
@given(inputs=scored_inputs())
def test_falsify_quality_001_score_is_sum_of_breakdown(inputs):
    meta, flags, valid = inputs
    score = score_quality(checksum_valid=valid, metadata=meta, flags=flags)
    assert score.score == sum(score.breakdown.values()) == score.to_dict()["score"]


@pytest.mark.falsifies("FALSIFY-QUALITY-001")
def test_falsify_quality_001_cli_json(tmp_path):
    src = write_checkpoint(tmp_path / "m.apr", metadata={"architecture": "qwen2", "license": "MIT"})
    code, out, _err = run_cli(["inspect", src, "--quality", "--json"])
    quality = json.loads(out)["quality"]
    assert code == 0 and quality["score"] == sum(quality["breakdown"].values()) and quality["threshold"] == 90


_FULL_MARKS = ({"architecture": "qwen2", "hidden_size": 1, "num_layers": 1, "num_heads": 1, "license": "MIT",
                "data_source": "d", "data_license": "MIT", "hf_architecture": "Q", "hf_model_type": "q"},
               int(Flags.HAS_VOCAB), True)


@pytest.mark.falsifies("FALSIFY-QUALITY-002")
@given(inputs=scored_inputs())
@example(inputs=_FULL_MARKS)  # every part at its maximum: the case an over-generous rule shows up in
def test_falsify_quality_002_parts_within_maxima(inputs):
    meta, flags, valid = inputs
    score = score_quality(checksum_valid=valid, metadata=meta, flags=flags)
    assert MAXIMA == {"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 20, "tokenizer": 15}
    assert sum(MAXIMA.values()) == 100
    for part, value in score.breakdown.items():
        assert 0 <= value <= MAXIMA[part]


@pytest.mark.falsifies("FALSIFY-QUALITY-003")
@given(inputs=scored_inputs())
def test_falsify_quality_003_ship_ready_iff_at_least_90(inputs):
    meta, flags, valid = inputs
    score = score_quality(checksum_valid=valid, metadata=meta, flags=flags)
    assert THRESHOLD == 90 and score.ship_ready == (score.score >= 90)


@pytest.mark.falsifies("FALSIFY-QUALITY-003")
def test_falsify_quality_003_boundary():
    full = {"architecture": "qwen2", "hidden_size": 1, "num_layers": 1, "num_heads": 1, "license": "MIT",
            "data_source": "d", "data_license": "MIT", "hf_architecture": "Q", "hf_model_type": "q"}
    at_90 = score_quality(checksum_valid=True, metadata={**full, "num_layers": None, "num_heads": None}, flags=0x0200)
    at_88 = score_quality(checksum_valid=True, metadata={**full, "hf_architecture": ""}, flags=0x0200)
    at_91 = score_quality(checksum_valid=True, metadata={**full, "license": ""}, flags=0x0200)
    assert (at_90.score, at_90.ship_ready) == (90, True)
    assert (at_88.score, at_88.ship_ready) == (88, False)  # 89 is not reachable: no rule is worth 11
    assert (at_91.score, at_91.ship_ready) == (91, True)


@pytest.mark.falsifies("FALSIFY-QUALITY-004")
@given(inputs=scored_inputs())
def test_falsify_quality_004_rules_are_section_3_1(inputs):
    meta, flags, valid = inputs
    assert score_quality(checksum_valid=valid, metadata=meta, flags=flags).breakdown == reference_score(meta, flags, valid)


@pytest.mark.falsifies("FALSIFY-QUALITY-004")
def test_falsify_quality_004_aprender_reference_cases():
    ship = {"architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM", "hf_model_type": "qwen2",
            "hidden_size": 896, "num_layers": 24, "num_heads": 14, "license": "Apache-2.0",
            "data_source": "teacher-only", "data_license": "Apache-2.0"}
    assert score_quality(checksum_valid=True, metadata=ship, flags=Flags.HAS_VOCAB).ship_ready
    pre_p0k = {"architecture": "qwen2", "hidden_size": 896, "num_layers": 24, "num_heads": 14}
    assert score_quality(checksum_valid=True, metadata=pre_p0k, flags=Flags.HAS_VOCAB).score == 55
    assert score_quality(checksum_valid=True, metadata={}, flags=0).score <= 55
    assert score_quality(checksum_valid=False, metadata=ship, flags=Flags.HAS_VOCAB).breakdown["physics"] == 0


_FILL = {"<SPDX-ID>": "Apache-2.0", "<DATASET-ID|teacher-only>": "teacher-only", "<HFClassForCausalLM>": "AcmeForCausalLM",
         "<model_type>": "acme", "<architecture>": "acme"}


@pytest.mark.falsifies("FALSIFY-QUALITY-005")
@given(meta=st.fixed_dictionaries({}, optional={
    "architecture": st.sampled_from(["qwen2", "", "unknown", "LlamaForCausalLM"]),
    "license": st.sampled_from(["", "MIT"]), "data_source": st.sampled_from(["", "d"]),
    "hf_architecture": st.sampled_from(["", "Qwen2ForCausalLM"]), "hidden_size": st.integers(1, 9)}),
    family_names=st.sampled_from([("model.layers.0.self_attn.q_proj.bias",), ("blk.0.attn_q.weight",)]),
    has_vocab=st.booleans())
def test_falsify_quality_005_stamping_explain_reaches_attainable(meta, family_names, has_vocab):
    with tempfile.TemporaryDirectory() as folder:
        src = write_checkpoint(os.path.join(folder, "m.apr"), names=family_names, metadata=meta,
                               flags=Flags.HAS_VOCAB if has_vocab else 0)
        _code, out, _err = run_cli(["inspect", src, "--quality", "--explain", "--json"])
        before = json.loads(out)["quality"]
        tokenizer = write_vocab_merges(os.path.join(folder, "tok"))
        for item in before["explain"]:
            if item["command"] is None:
                continue
            command = item["command"].replace("<TOKENIZER_DIR>", shlex.quote(tokenizer))
            for placeholder, value in _FILL.items():
                command = command.replace(placeholder, value)
            argv = shlex.split(command)
            code, _out, err = run_cli(argv[1:])
            assert code == 0, (command, err)
        _code, out, _err = run_cli(["inspect", src, "--quality", "--explain", "--json"])
        after = json.loads(out)["quality"]
        assert after["score"] == before["attainable_score"]
        assert all(item["command"] is None for item in after["explain"])
        unstampable = sum(item["points"] for item in before["explain"] if item["command"] is None)
        assert before["attainable_score"] == 100 - unstampable
