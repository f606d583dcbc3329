"""apr/convert/names.py against an independent oracle: gguf-py's own tensor-name tables.

`gguf.get_tensor_name_map(arch, n_blocks)` is llama.cpp's HF -> GGUF map (tensor_mapping.py) and
`gguf.MODEL_TENSORS[arch]` the tensors each architecture may hold; our table must agree with both
for llama, qwen2 and qwen3, the maps must be exact inverses (round trips, both ways), and anything
outside the table, near misses included, must be refused with an error that names the tensor.
The q/k permutation is checked against its definition written as an index formula.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from gguf import MODEL_ARCH, MODEL_TENSOR, MODEL_TENSORS, TENSOR_NAMES
from hypothesis import example, given
from hypothesis import strategies as st

from apr.convert import names
from apr.errors import ConvertError

ARCH = {"llama": MODEL_ARCH.LLAMA, "qwen2": MODEL_ARCH.QWEN2, "qwen3": MODEL_ARCH.QWEN3}

_ATTN = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight"]
_MLP = ["mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]
_NORMS = ["input_layernorm.weight", "post_attention_layernorm.weight"]
# The per-layer tensors of a Hugging Face checkpoint of each family (transformers' modeling files):
# qwen2 adds q/k/v biases, qwen3 adds per-head q/k RMSNorm.
LAYER_TENSORS = {
    "llama": _NORMS + _ATTN + _MLP,
    "qwen2": _NORMS + _ATTN + ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"] + _MLP,
    "qwen3": _NORMS + _ATTN + ["self_attn.q_norm.weight", "self_attn.k_norm.weight"] + _MLP,
}
GLOBAL_TENSORS = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]

# Exact examples, written out by hand from llama.cpp's names (one per family, each family's own tensors).
EXACT = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
    ("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"),  # llama
    ("model.layers.7.self_attn.q_proj.weight", "blk.7.attn_q.weight"),  # llama
    ("model.layers.10.self_attn.o_proj.weight", "blk.10.attn_output.weight"),  # llama
    ("model.layers.31.mlp.down_proj.weight", "blk.31.ffn_down.weight"),  # llama
    ("model.layers.2.self_attn.k_proj.bias", "blk.2.attn_k.bias"),  # qwen2
    ("model.layers.23.self_attn.v_proj.bias", "blk.23.attn_v.bias"),  # qwen2
    ("model.layers.5.post_attention_layernorm.weight", "blk.5.ffn_norm.weight"),  # qwen2
    ("model.layers.27.self_attn.q_norm.weight", "blk.27.attn_q_norm.weight"),  # qwen3
    ("model.layers.1.self_attn.k_norm.weight", "blk.1.attn_k_norm.weight"),  # qwen3
    ("model.layers.100.mlp.gate_proj.weight", "blk.100.ffn_gate.weight"),  # qwen3
]


def family_names(family: str, layers: int) -> list[str]:
    return GLOBAL_TENSORS + [f"model.layers.{i}.{s}" for i in range(layers) for s in LAYER_TENSORS[family]]


def oracle_gguf_name(family: str, hf_name: str, n_blocks: int) -> tuple[MODEL_TENSOR, str]:
    """gguf-py's answer: the tensor kind and GGUF name of ``hf_name`` in ``family``."""
    found = gguf.get_tensor_name_map(ARCH[family], n_blocks).get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
    assert found is not None, f"gguf-py has no name for {hf_name!r} in {family}"
    return found


# --- HF -> GGUF agrees with gguf-py, per family --------------------------------------------------


@pytest.mark.parametrize("family", sorted(ARCH))
def test_every_family_tensor_maps_as_gguf_py_maps_it(family: str) -> None:
    layers = 3
    for hf_name in family_names(family, layers):
        kind, expected = oracle_gguf_name(family, hf_name, layers)
        assert names.hf_to_gguf(hf_name) == expected, hf_name
        assert kind in MODEL_TENSORS[ARCH[family]], f"llama.cpp's {family} has no {kind.name} tensor"
        bid = int(hf_name.split(".")[2]) if hf_name.startswith("model.layers.") else None
        stem = TENSOR_NAMES[kind].format(bid=bid)
        assert expected in (stem + ".weight", stem + ".bias")


@pytest.mark.parametrize(("hf_name", "gguf_name"), EXACT)
def test_exact_examples_both_ways(hf_name: str, gguf_name: str) -> None:
    assert names.hf_to_gguf(hf_name) == gguf_name
    assert names.gguf_to_hf(gguf_name) == hf_name


def test_supported_families_are_the_three_converted() -> None:
    assert names.SUPPORTED_FAMILIES == ("llama", "qwen2", "qwen3")
    assert names.GGUF_MAX_NAME_BYTES == 63  # ggml's GGML_MAX_NAME is 64 bytes with the terminating NUL


# --- round trips (a bijection on the names each side accepts) -----------------------------------

_ALL_SUFFIXES = sorted({s for family in LAYER_TENSORS.values() for s in family})


@given(layer=st.integers(0, 10**9), suffix=st.sampled_from(_ALL_SUFFIXES), family=st.sampled_from(sorted(ARCH)))
@example(layer=0, suffix="self_attn.q_proj.weight", family="llama")
@example(layer=10, suffix="self_attn.q_norm.weight", family="qwen3")
def test_hf_gguf_hf_round_trip(layer: int, suffix: str, family: str) -> None:
    hf_name = f"model.layers.{layer}.{suffix}"
    gguf_name = names.hf_to_gguf(hf_name)
    assert gguf_name.startswith(f"blk.{layer}.") and names.gguf_to_hf(gguf_name) == hf_name
    if suffix in LAYER_TENSORS[family] and layer < 64:
        assert gguf_name == oracle_gguf_name(family, hf_name, 64)[1]


@given(layer=st.integers(0, 10**9), kind=st.sampled_from(sorted(names._LAYER_SUFFIXES_BACK)))
def test_gguf_hf_gguf_round_trip(layer: int, kind: str) -> None:
    gguf_name = f"blk.{layer}.{kind}"
    hf_name = names.gguf_to_hf(gguf_name)
    assert hf_name.startswith(f"model.layers.{layer}.") and names.hf_to_gguf(hf_name) == gguf_name


@pytest.mark.parametrize("family", sorted(ARCH))
def test_maps_are_injective_on_a_whole_model(family: str) -> None:
    hf = family_names(family, 12)
    mapped = [names.hf_to_gguf(n) for n in hf]
    assert len(set(mapped)) == len(hf) and [names.gguf_to_hf(g) for g in mapped] == hf


# --- near misses are refused, with the tensor named -----------------------------------------------

HF_NEAR_MISSES = [
    "model.layers.01.self_attn.q_proj.weight",  # leading zero: not the name of layer 1
    "model.layers.-1.self_attn.q_proj.weight",
    "model.layers..self_attn.q_proj.weight",
    "model.layers.3.self_attn.q_proj",  # no .weight
    "model.layers.3.self_attn.q_proj.weights",
    "model.layers.3.self_attn.q_proj.weight\n",  # `$` would match before the newline
    "model.layers.3.self_attn.q_proj.weight.x",
    " model.layers.3.self_attn.q_proj.weight",
    "xmodel.layers.3.self_attn.q_proj.weight",
    "model.layers.3.mlp.fc1.weight",
    "model.layers.3",
    "layers.3.self_attn.q_proj.weight",
    "blk.3.attn_q.weight",  # a GGUF name is not an HF name
    "token_embd.weight",
    "model.embed_tokens.weight\n",
    "model.embed_tokens",
    "transformer.wte.weight",
    "",
]
GGUF_NEAR_MISSES = [
    "blk.01.attn_q.weight",
    "blk.-1.attn_q.weight",
    "blk.x.attn_q.weight",
    "blk.3.attn_q",
    "blk.3.attn_q.weight\n",
    "blk.3.attn_q.weight.x",
    "xblk.3.attn_q.weight",
    "blk.3.attn_qkv.weight",
    "blk.3",
    "model.layers.3.self_attn.q_proj.weight",  # an HF name is not a GGUF name
    "model.embed_tokens.weight",
    "token_embd.weight\n",
    "output",
    "",
]


@pytest.mark.parametrize("bad", HF_NEAR_MISSES)
def test_hf_near_misses_refused_naming_the_tensor(bad: str) -> None:
    with pytest.raises(ConvertError) as info:
        names.hf_to_gguf(bad)
    error = info.value
    assert error.field == bad and repr(bad) in error.message
    assert error.exit_code == 5 and error.code == "convert-failed" and error.to_dict()["field"] == bad
    assert error.hint and all(family in error.hint for family in names.SUPPORTED_FAMILIES)


@pytest.mark.parametrize("bad", GGUF_NEAR_MISSES)
def test_gguf_near_misses_refused_naming_the_tensor(bad: str) -> None:
    with pytest.raises(ConvertError) as info:
        names.gguf_to_hf(bad)
    error = info.value
    assert error.field == bad and repr(bad) in error.message
    assert error.exit_code == 5 and error.code == "convert-failed" and error.to_dict()["field"] == bad
    assert error.hint and all(family in error.hint for family in names.SUPPORTED_FAMILIES)


# --- which tensors llama permutes, and with how many heads ---------------------------------------


@pytest.mark.parametrize("suffix", ["q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias"])
def test_qk_projections_are_recognised(suffix: str) -> None:
    assert names.is_qk_projection(f"model.layers.0.self_attn.{suffix}")


@pytest.mark.parametrize("name", [
    "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
    "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
    "model.layers.0.self_attn.q_proj.weightx", "model.layers.0.self_attn.q_proj.weight\n",
    "model.layers.0.mlp.q_proj.weight", "model.layers.0.q_proj.weight", "model.layers.0.self_attn.qk_proj.weight",
    "blk.0.attn_q.weight",
])
def test_near_misses_are_not_qk_projections(name: str) -> None:
    assert not names.is_qk_projection(name)


@pytest.mark.parametrize(("suffix", "expected"), [
    ("self_attn.q_proj.weight", 12), ("self_attn.q_proj.bias", 12),
    ("self_attn.k_proj.weight", 4), ("self_attn.k_proj.bias", 4),
])
def test_k_uses_kv_heads_and_q_uses_heads(suffix: str, expected: int) -> None:
    assert names.qk_heads(f"model.layers.2.{suffix}", 12, 4) == expected


# --- the permutation, against its definition -------------------------------------------------------


def interleaved_index(n_heads: int, rows: int) -> list[int]:
    """GGUF row h*D + 2k + t holds HF row h*D + t*D/2 + k (rotate-half pairs (k, k + D/2) made adjacent)."""
    d = rows // n_heads
    return [h * d + t * (d // 2) + k for h in range(n_heads) for k in range(d // 2) for t in range(2)]


def test_permute_exact_examples() -> None:
    assert names.permute_qk(np.arange(8), 1).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert names.permute_qk(np.arange(8), 2).tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    assert names.unpermute_qk(np.array([0, 4, 1, 5, 2, 6, 3, 7]), 1).tolist() == list(range(8))
    assert names.unpermute_qk(np.array([0, 2, 1, 3, 4, 6, 5, 7]), 2).tolist() == list(range(8))


@given(heads=st.integers(1, 6), half=st.integers(1, 6), cols=st.integers(0, 3))
def test_permute_matches_the_index_formula_and_unpermute_inverts_it(heads: int, half: int, cols: int) -> None:
    n = heads * 2 * half
    shape = (n,) if cols == 0 else (n, cols)
    rows = np.arange(np.prod(shape)).reshape(shape)
    permuted = names.permute_qk(rows, heads)
    assert permuted.shape == rows.shape and permuted.flags["C_CONTIGUOUS"]
    assert np.array_equal(permuted, rows[interleaved_index(heads, n)])
    back = names.unpermute_qk(permuted, heads)
    assert np.array_equal(back, rows) and back.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("function", [names.permute_qk, names.unpermute_qk])
@pytest.mark.parametrize(("rows", "heads"), [(6, 2), (7, 1), (2, 2), (12, 8), (5, 1)])
def test_rows_not_in_whole_head_pairs_are_refused(function, rows: int, heads: int) -> None:
    with pytest.raises(ConvertError) as info:
        function(np.zeros((rows, 3)), heads)
    error = info.value
    assert str(rows) in error.message and str(heads) in error.message
    assert error.hint and "num_heads" in error.hint and "num_kv_heads" in error.hint


@pytest.mark.parametrize("function", [names.permute_qk, names.unpermute_qk])
@pytest.mark.parametrize(("rows", "heads"), [(4, 2), (2, 1), (16, 8), (12, 3)])
def test_rows_in_whole_head_pairs_are_accepted(function, rows: int, heads: int) -> None:
    assert function(np.zeros((rows, 3)), heads).shape == (rows, 3)
