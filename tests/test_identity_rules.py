"""Rule-by-rule tests of apr/identity (issue 23): the family rules of aprender §5.1 with near misses
and every precedence pinned, the §5.3 gate's error record and salvage command, and the §3.1 point
table of the quality score at each boundary.

Expected values come from aprender's documented tables (docs/aprender-format.md §3.1, §5.1-§5.3),
written out below as literals, never from the code under test.
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.errors import ArchitectureMismatchError
from apr.identity.family import (
    FAMILIES,
    family_from_tensor_names,
    salvage_command,
    validate_init_arch_matches_tensor_evidence,
)
from apr.identity.quality import (
    MAXIMA,
    THRESHOLD,
    Missing,
    QualityScore,
    is_ship_ready,
    score_quality,
    total_score,
)

# ------------------------------------------------------------------------------------------------
# §5.1 family from tensor names
#
# Each atom is one tensor name with the markers of §5.1 it carries (hand-labelled from the rule
# text). `expected_family` applies §5.1 in order to the union of markers; the rules are "any name
# contains/starts with", so markers combine across names.
# ------------------------------------------------------------------------------------------------

MAMBA, RWKV, NEOX, OPT, BERT, LAYERS, QNORM, QBIAS, GPT2 = (
    "mamba", "rwkv", "gpt-neox", "opt", "bert", "model.layers", "q_norm", "q_bias", "gpt2")

ATOMS: dict[str, frozenset[str]] = {
    # 1a: contains mixer.in_proj / mixer.out_proj (anywhere in the name)
    "backbone.layers.0.mixer.in_proj.weight": frozenset({MAMBA}),
    "backbone.layers.0.mixer.out_proj.weight": frozenset({MAMBA}),
    # 1b: starts with rwkv.blocks. / contains blocks.0.att.
    "rwkv.blocks.3.ffn.key.weight": frozenset({RWKV}),
    "encoder.blocks.0.att.key.weight": frozenset({RWKV}),
    # 1c-1e: prefixes
    "gpt_neox.embed_in.weight": frozenset({NEOX}),
    "model.decoder.layers.3.fc1.weight": frozenset({OPT}),
    "bert.pooler.dense.weight": frozenset({BERT}),
    # 2: contains model.layers (anywhere), with or without the qwen markers
    "model.layers.2.mlp.up_proj.weight": frozenset({LAYERS}),
    "base.model.layers.2.mlp.down_proj.weight": frozenset({LAYERS}),
    "model.layers.2.self_attn.q_norm.weight": frozenset({LAYERS, QNORM}),
    "model.layers.2.self_attn.q_proj.bias": frozenset({LAYERS, QBIAS}),
    "model.layers.2.self_attn.qkv_proj.weight": frozenset({LAYERS, QBIAS}),
    # the qwen markers without model.layers in the same name (they count once any name has it)
    "layers.0.self_attn.q_norm.weight": frozenset({QNORM}),
    "layers.0.self_attn.q_proj.bias": frozenset({QBIAS}),
    "blocks.1.qkv_proj.weight": frozenset({QBIAS}),
    # 3: contains transformer.h / starts with h. and contains .attn.
    "transformer.h.1.attn.c_attn.weight": frozenset({GPT2}),
    "transformer.h.0.mlp.c_fc.weight": frozenset({GPT2}),
    "h.1.attn.c_proj.weight": frozenset({GPT2}),
}

NEAR_MISSES: tuple[str, ...] = (
    # 1a: one character or separator off
    "backbone.layers.0.mixer.inproj.weight", "backbone.mixer.in_pro", "mixer_out_proj.weight", "mixer.outproj",
    # 1b: rwkv.blocks. not at the start, no dot after blocks, another block index, attn not att.
    "model.rwkv.blocks.1.ffn.weight", "rwkv.blocks1.ffn.weight", "rwkv.blocks", "blocks.1.att.key.weight",
    "blocks.0.attn.key.weight", "blocks.0.att",
    # 1c: gpt_neox. not at the start, no dot, a hyphen
    "x.gpt_neox.embed_in.weight", "gpt_neoxembed_in.weight", "gpt-neox.layers.0.weight",
    # 1d: not at the start, layer singular, no trailing dot
    "base.model.decoder.layers.0.fc1.weight", "model.decoder.layer.0.fc1.weight", "model.decoder.layers",
    "model.decoder.embed_tokens.weight",
    # 1e
    "x.bert.pooler.dense.weight", "bertmodel.pooler.dense.weight", "BERT.pooler.dense.weight",
    # 2: model.layers misspelt
    "model.layer.0.mlp.up_proj.weight", "model_layers.0.mlp.weight", "Model.layers.0.mlp.weight",
    # 3: gpt2 near misses (no .attn., not at the start, attn_ not .attn.)
    "transformer.wte.weight", "h.0.mlp.c_fc.weight", "xh.0.attn.c_attn.weight", "h.0.attn_c.weight",
    "attn.h.0.weight", "H.0.attn.c_attn.weight", "x.attn.weight",
    # 4: GGUF names are ambiguous
    "blk.0.attn_q.weight", "token_embd.weight", "output_norm.weight",
    # the qwen markers, one piece off
    "self_attn.k_norm.weight", "self_attn.q_norm.bias", "self_attn.k_proj.bias", "qkv_proj.bias",
    "self_attn.q_proj.weight", "lm_head.weight",
)
# near misses inside a model.layers decoder: model.layers and nothing more (llama, not qwen)
LLAMA_NEAR_MISSES: tuple[str, ...] = (
    "model.layers.0.self_attn.k_norm.weight", "model.layers.0.self_attn.q_norm.bias",
    "model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.qkv_proj.bias",
    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight",
)


def expected_family(names: list[str]) -> str:
    """§5.1 applied to hand-labelled markers, in aprender's order."""
    markers: set[str] = set()
    for name in names:
        markers |= ATOMS.get(name, frozenset({LAYERS}) if name in LLAMA_NEAR_MISSES else frozenset())
    for family in (MAMBA, RWKV, NEOX, OPT, BERT):
        if family in markers:
            return family
    if LAYERS in markers:
        return "qwen3" if QNORM in markers else "qwen2" if QBIAS in markers else "llama"
    return GPT2 if GPT2 in markers else "unknown"


def _first(marker: str) -> str:
    return next(n for n, m in ATOMS.items() if m == frozenset({marker}))


@pytest.mark.parametrize("name", sorted(ATOMS))
def test_each_marker_name_alone(name):
    assert family_from_tensor_names([name]) == expected_family([name])


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_near_misses_alone_are_unknown(name):
    assert family_from_tensor_names([name]) == "unknown"


@pytest.mark.parametrize("name", LLAMA_NEAR_MISSES)
def test_qwen_near_misses_in_a_decoder_are_llama(name):
    assert family_from_tensor_names([name]) == "llama"


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_near_misses_do_not_change_a_family(name):
    for atom, markers in ATOMS.items():
        if markers & {QNORM, QBIAS} and LAYERS not in markers:
            continue
        assert family_from_tensor_names([name, atom]) == family_from_tensor_names([atom, name]) == expected_family([atom])


# Every pair of adjacent rules in §5.1's order is pinned below by an @example: the earlier rule wins
# (or, for the qwen markers, needs model.layers somewhere in the set).
@given(names=st.lists(st.sampled_from(sorted(ATOMS) + list(NEAR_MISSES) + list(LLAMA_NEAR_MISSES)), max_size=6))
@example(names=[])
@example(names=["h.0.mlp.c_fc.weight", "x.attn.weight"])
@example(names=[_first(MAMBA), "rwkv.blocks.3.ffn.key.weight"])
@example(names=["backbone.layers.0.mixer.out_proj.weight", "encoder.blocks.0.att.key.weight"])
@example(names=["encoder.blocks.0.att.key.weight", _first(NEOX)])
@example(names=["rwkv.blocks.3.ffn.key.weight", _first(NEOX)])
@example(names=[_first(NEOX), _first(OPT)])
@example(names=[_first(OPT), _first(BERT)])
@example(names=[_first(BERT), "model.layers.2.self_attn.q_norm.weight"])
@example(names=[_first(OPT), "model.layers.2.self_attn.q_proj.bias"])
@example(names=["model.layers.2.self_attn.q_norm.weight", "model.layers.2.self_attn.q_proj.bias"])
@example(names=["model.layers.2.self_attn.q_norm.weight", "model.layers.2.self_attn.qkv_proj.weight"])
@example(names=["model.layers.2.mlp.up_proj.weight", "layers.0.self_attn.q_norm.weight"])
@example(names=["model.layers.2.mlp.up_proj.weight", "layers.0.self_attn.q_proj.bias"])
@example(names=["model.layers.2.mlp.up_proj.weight", "blocks.1.qkv_proj.weight"])
@example(names=["model.layers.2.mlp.up_proj.weight", "transformer.h.1.attn.c_attn.weight"])
@example(names=["model.layers.2.mlp.up_proj.weight", "h.1.attn.c_proj.weight"])
@example(names=["layers.0.self_attn.q_norm.weight", "h.1.attn.c_proj.weight"])
@example(names=[_first(MAMBA), _first(GPT2)])
def test_family_is_first_matching_rule_of_section_5_1(names):
    expected = expected_family(names)
    assert family_from_tensor_names(names) == expected
    assert family_from_tensor_names(reversed(names)) == expected  # order of names never matters
    assert family_from_tensor_names(iter(names)) == expected  # any iterable, read once
    assert expected in FAMILIES


# ------------------------------------------------------------------------------------------------
# §5.3 gate and salvage command
# ------------------------------------------------------------------------------------------------

# aprender §5.3 HFCLASS table and Hugging Face's config.json model_type spellings.
APRENDER_HF_CLASS = {
    "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM",
    "gpt2": "GPT2LMHeadModel", "gpt-neox": "GPTNeoXForCausalLM", "mamba": "MambaForCausalLM",
    "rwkv": "RwkvForCausalLM", "bert": "BertModel", "opt": "OPTForCausalLM",
}
HF_MODEL_TYPE = {
    "qwen2": "qwen2", "qwen3": "qwen3", "llama": "llama", "gpt2": "gpt2", "gpt-neox": "gpt_neox",
    "mamba": "mamba", "rwkv": "rwkv", "bert": "bert", "opt": "opt",
}
TENSORS_OF = {  # one characteristic name set per family (aprender's fixtures for qwen2 / llama)
    "qwen2": ["model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj.weight"],
    "llama": ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight"],
    "qwen3": ["model.layers.0.self_attn.q_norm.weight"],
    "mamba": ["backbone.layers.0.mixer.in_proj.weight"],
    "rwkv": ["rwkv.blocks.0.att.key.weight"],
    "gpt-neox": ["gpt_neox.embed_in.weight"],
    "opt": ["model.decoder.layers.0.fc1.weight"],
    "bert": ["bert.embeddings.word_embeddings.weight"],
    "gpt2": ["transformer.h.0.attn.c_attn.weight"],
}


@pytest.mark.parametrize("family", sorted(APRENDER_HF_CLASS))
def test_salvage_command_exact(family):
    cls, model_type = APRENDER_HF_CLASS[family], HF_MODEL_TYPE[family]
    tail = f"--architecture {family} --hf-architecture {cls} --hf-model-type {model_type}"
    assert salvage_command(family) == f"apr stamp <input.apr> {tail} -o <stamped.apr>"
    assert salvage_command(family, "ckpt/my model.apr", "out dir/o.apr") == (
        f"apr stamp 'ckpt/my model.apr' {tail} -o 'out dir/o.apr'")


def test_salvage_command_for_a_family_without_hf_identity():
    assert salvage_command("unknown") == "apr stamp <input.apr> --architecture unknown -o <stamped.apr>"
    assert salvage_command("falcon", "a.apr", "b.apr") == "apr stamp a.apr --architecture falcon -o b.apr"


@pytest.mark.parametrize("path,rendered", [
    ("<input.apr>", "<input.apr>"),  # a placeholder stays as it is
    ("<x>", "<x>"),
    ("<input.apr", "'<input.apr'"),  # near misses: only one bracket is a real (odd) path, quoted
    ("input.apr>", "'input.apr>'"),
    ("plain.apr", "plain.apr"),
    ("it's.apr", shlex.quote("it's.apr")),
])
def test_salvage_command_quotes_real_paths_only(path, rendered):
    assert salvage_command("llama", path, path) == (
        f"apr stamp {rendered} --architecture llama --hf-architecture LlamaForCausalLM "
        f"--hf-model-type llama -o {rendered}")


@pytest.mark.parametrize("claim,claimed", [("LlamaForCausalLM", "llama"), ("qwen", "qwen2"), ("Phi3", "llama"),
                                           ("pythia", "gpt-neox"), ("BertForMaskedLM", "bert")])
@pytest.mark.parametrize("tensor_family", sorted(TENSORS_OF))
@pytest.mark.parametrize("path", [None, "ckpt/epoch 3.apr"])
def test_gate_error_record(claim, claimed, tensor_family, path):
    names = TENSORS_OF[tensor_family]
    if claimed == tensor_family:
        assert validate_init_arch_matches_tensor_evidence(claim, names, path=path) is None
        return
    with pytest.raises(ArchitectureMismatchError) as info:
        validate_init_arch_matches_tensor_evidence(claim, names, path=path)
    err = info.value
    shown = "<input.apr>" if path is None else shlex.quote(path)
    command = (f"apr stamp {shown} --architecture {tensor_family} --hf-architecture {APRENDER_HF_CLASS[tensor_family]}"
               f" --hf-model-type {HF_MODEL_TYPE[tensor_family]} -o <stamped.apr>")
    assert err.salvage == command
    assert err.hint == f"{command}  (then re-run with --init <stamped.apr>)"
    assert (err.claimed_family, err.tensor_family, err.field, err.path) == (claimed, tensor_family, "architecture", path)
    assert err.exit_code == 5
    assert err.message.startswith(
        f"FALSIFY-INIT-ARCH-MATCH-001: --init APR metadata claims architecture family `{claimed}` (from `{claim}`) "
        f"but tensor naming implies family `{tensor_family}`.")
    assert "SPEC §86" in err.message


@pytest.mark.parametrize("claim", [None, "", "unknown", "WeirdNovelArchForCausalLM", "llama2", "qwen2 "])
def test_gate_skips_claims_that_name_no_family(claim):
    for names in TENSORS_OF.values():
        assert validate_init_arch_matches_tensor_evidence(claim, names) is None


@pytest.mark.parametrize("names", [[], ["blk.0.attn_q.weight"], list(NEAR_MISSES)])
def test_gate_trusts_the_claim_when_tensors_are_unknown(names):
    for claim in ("LlamaForCausalLM", "qwen3", "gpt2", "opt"):
        assert validate_init_arch_matches_tensor_evidence(claim, names) is None


def test_gate_reads_tensor_names_once_from_an_iterator():
    with pytest.raises(ArchitectureMismatchError) as info:
        validate_init_arch_matches_tensor_evidence("llama", iter(TENSORS_OF["qwen2"]))
    assert info.value.tensor_family == "qwen2"


# ------------------------------------------------------------------------------------------------
# §3.1 quality score: the point table, each rule alone, each boundary
# ------------------------------------------------------------------------------------------------

HAS_VOCAB = 0x0200  # aprender's header flag bit
FULL = {"architecture": "qwen2", "hidden_size": 896, "num_layers": 24, "num_heads": 14, "license": "Apache-2.0",
        "data_source": "teacher-only", "data_license": "Apache-2.0", "hf_architecture": "Qwen2ForCausalLM",
        "hf_model_type": "qwen2"}
# §3.1: (part, points, metadata field, the `apr stamp` field that earns it back or None)
POINT_TABLE = [
    ("structural", 5, "architecture", "architecture"),
    ("structural", 5, "hidden_size", None),
    ("structural", 5, "num_layers", None),
    ("structural", 5, "num_heads", None),
    ("provenance", 9, "license", "license"),
    ("provenance", 8, "data_source", "data_source"),
    ("provenance", 8, "data_license", "data_license"),
    ("hf_identity", 12, "hf_architecture", "hf_architecture"),
    ("hf_identity", 8, "hf_model_type", "hf_model_type"),
]
PARTS = ("physics", "structural", "provenance", "hf_identity", "tokenizer")


def test_full_marks_are_100_and_nothing_missing():
    score = score_quality(checksum_valid=True, metadata=FULL, flags=HAS_VOCAB)
    assert score.breakdown == {"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 20, "tokenizer": 15}
    assert list(score.breakdown) == list(PARTS)
    assert (score.score, score.ship_ready, score.missing) == (100, True, ())


def test_nothing_scores_zero_and_lists_every_rule_in_order():
    score = score_quality(checksum_valid=False, metadata={}, flags=0)
    assert score.breakdown == dict.fromkeys(PARTS, 0) and score.score == 0 and not score.ship_ready
    got = [(m.part, m.points, m.field) for m in score.missing]
    assert got == ([("physics", 20, None)] + [(p, pts, f) for p, pts, _key, f in POINT_TABLE]
                   + [("tokenizer", 15, "tokenizer")])
    assert all(isinstance(m, Missing) and m.what for m in score.missing)


@pytest.mark.parametrize("part,points,key,field", POINT_TABLE)
@pytest.mark.parametrize("absent", ["drop", None, ""])
def test_each_metadata_rule_alone(part, points, key, field, absent):
    meta = {k: v for k, v in FULL.items() if k != key}
    if absent != "drop":
        meta[key] = absent
    if absent == "" and key in ("hidden_size", "num_layers", "num_heads"):
        points_lost = 0  # a dimension counts when present at all (not None), "" included
    else:
        points_lost = points
    score = score_quality(checksum_valid=True, metadata=meta, flags=HAS_VOCAB)
    assert score.score == 100 - points_lost
    assert score.breakdown[part] == MAXIMA_DOC[part] - points_lost
    assert {p: v for p, v in score.breakdown.items() if p != part} == {p: MAXIMA_DOC[p] for p in PARTS if p != part}
    expected_missing = [(part, points, field)] if points_lost else []
    assert [(m.part, m.points, m.field) for m in score.missing] == expected_missing
    if points_lost:
        assert key in score.missing[0].what


MAXIMA_DOC = {"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 20, "tokenizer": 15}


@pytest.mark.parametrize("value,counts", [
    ("qwen2", True), ("Unknown", True), ("UNKNOWN", True), (" ", True), ("unknown ", True), ("x", True),
    ("unknown", False), ("", False), (None, False), (0, False), (2, False), (["qwen2"], False), (b"qwen2", False),
])
def test_architecture_counts_only_as_a_nonempty_string_other_than_unknown(value, counts):
    score = score_quality(checksum_valid=True, metadata={**FULL, "architecture": value}, flags=HAS_VOCAB)
    assert score.breakdown["structural"] == (20 if counts else 15)


@pytest.mark.parametrize("key", ["hidden_size", "num_layers", "num_heads"])
@pytest.mark.parametrize("value,counts", [(0, True), (1, True), ("", True), (False, True), (None, False)])
def test_dimensions_count_when_not_none(key, value, counts):
    score = score_quality(checksum_valid=True, metadata={**FULL, key: value}, flags=HAS_VOCAB)
    assert score.breakdown["structural"] == (20 if counts else 15)


@pytest.mark.parametrize("key,points", [("license", 9), ("data_source", 8), ("data_license", 8),
                                        ("hf_architecture", 12), ("hf_model_type", 8)])
@pytest.mark.parametrize("value,counts", [("unknown", True), (" ", True), ("0", True), (0, True), (False, True),
                                          ("", False), (None, False)])
def test_text_fields_count_when_not_none_and_not_empty(key, points, value, counts):
    score = score_quality(checksum_valid=True, metadata={**FULL, key: value}, flags=HAS_VOCAB)
    assert score.score == (100 if counts else 100 - points)


@pytest.mark.parametrize("flags,counts", [
    (HAS_VOCAB, True), (0xFFFF, True), (HAS_VOCAB | 0x0001, True), (HAS_VOCAB | 0x0400, True),
    (0, False), (0x01FF, False), (0x0100, False), (0x0400, False), (0xFDFF, False), (0x0001, False),
])
def test_tokenizer_points_are_the_has_vocab_bit(flags, counts):
    score = score_quality(checksum_valid=True, metadata=FULL, flags=flags)
    assert score.breakdown["tokenizer"] == (15 if counts else 0)
    assert [(m.part, m.points, m.field) for m in score.missing] == ([] if counts else [("tokenizer", 15, "tokenizer")])


def test_invalid_checksum_loses_exactly_physics():
    score = score_quality(checksum_valid=False, metadata=FULL, flags=HAS_VOCAB)
    assert score.breakdown == {**MAXIMA_DOC, "physics": 0}
    assert (score.score, score.ship_ready) == (80, False)
    assert [(m.part, m.points, m.field) for m in score.missing] == [("physics", 20, None)]


@pytest.mark.parametrize("score,ready", [(0, False), (88, False), (89, False), (90, True), (91, True), (100, True)])
def test_ship_ready_boundary(score, ready):
    assert THRESHOLD == 90
    assert is_ship_ready(score) is ready


@pytest.mark.parametrize("drop,score", [
    (("num_layers", "num_heads"), 90),  # exactly at the threshold
    (("license",), 91),  # just above
    (("hf_architecture",), 88),  # just below (89 cannot be reached: no rule is worth 11)
    (("num_heads",), 95),
    (("data_source", "data_license", "hidden_size"), 79),
])
def test_ship_ready_at_reachable_scores_around_90(drop, score):
    meta = {k: v for k, v in FULL.items() if k not in drop}
    result = score_quality(checksum_valid=True, metadata=meta, flags=HAS_VOCAB)
    assert (result.score, result.ship_ready) == (score, score >= 90)
    assert result.to_dict() == {"score": score, "ship_ready": score >= 90, "threshold": 90,
                                "breakdown": result.breakdown}
    assert list(result.to_dict()) == ["score", "ship_ready", "threshold", "breakdown"]


@given(parts=st.fixed_dictionaries({p: st.integers(0, MAXIMA_DOC[p]) for p in PARTS}))
@example(parts={"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 10, "tokenizer": 15})  # 90
@example(parts={"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 9, "tokenizer": 15})  # 89
@example(parts={"physics": 0, "structural": 0, "provenance": 0, "hf_identity": 0, "tokenizer": 1})
def test_score_is_the_sum_and_ready_at_90(parts):
    expected = parts["physics"] + parts["structural"] + parts["provenance"] + parts["hf_identity"] + parts["tokenizer"]
    assert total_score(parts) == expected
    record = QualityScore(breakdown=dict(parts), missing=())
    assert record.score == expected and record.ship_ready == (expected >= 90)
    as_dict = record.to_dict()
    assert as_dict == {"score": expected, "ship_ready": expected >= 90, "threshold": 90, "breakdown": parts}
    as_dict["breakdown"]["physics"] = -1  # the dict is a copy: changing it leaves the record alone
    assert record.breakdown["physics"] == parts["physics"]


def test_maxima_are_aprenders():
    assert MAXIMA == MAXIMA_DOC and list(MAXIMA) == list(PARTS)
