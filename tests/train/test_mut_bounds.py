"""A shape against its evidence (apr/train/bounds.py), rule by rule with near misses, and each limit
below, at and above (issue 23). Pure integer work on hand-written shapes."""

from __future__ import annotations

import math
import os

import pytest

import apr.train.bounds as bounds
from apr.errors import ModelConfigError
from apr.train.bounds import (
    Disagreement,
    check_against_tensors,
    check_config_ceiling,
    disagreements,
    layer_count,
    physical_memory,
    tensor_shape_problems,
)
from apr.train.config import ModelConfig

LLAMA = ModelConfig("llama", vocab_size=10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1,
                    intermediate_size=6, head_dim=2)


def shapes_of(config: ModelConfig, **changes) -> dict[str, tuple[int, ...]]:
    shapes = dict(config.parameter_shapes())
    for name, shape in changes.items():
        name = name.replace("__", ".")
        if shape is None:
            shapes.pop(name)
        else:
            shapes[name] = shape
    return shapes


def found(config: ModelConfig, shapes) -> list[str]:
    return [str(d) for d in disagreements(config, shapes)]


def test_limits() -> None:
    assert (bounds.MAX_PARAMETER_RATIO, bounds.MAX_CONFIG_PARAMETERS, bounds.FP32_BYTES) == (10, 2**35, 4)


def test_disagreement_text() -> None:
    assert str(Disagreement("num_layers", 3, "x y")) == "num_layers = 3 in the metadata, but x y"


@pytest.mark.parametrize(("names", "count"), [
    ([], 0),
    (["model.embed_tokens.weight", "model.norm.weight"], 0),
    (["model.layers.0.a"], 1),
    (["model.layers.2.a", "model.layers.10.b", "model.layers.9.c"], 11),  # numeric, not text order
    (["xmodel.layers.5.a", "model.layers.5", "model.layers.x.a", "model.layersX5.a"], 0),  # near misses
    (["model.layers.3.a", "lm.model.layers.7.a"], 4),
])
def test_layer_count(names: list[str], count: int) -> None:
    assert layer_count(names) == count


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "mistral"])
def test_a_matching_file_has_no_disagreement(family: str) -> None:
    config = LLAMA.with_(family=family, num_layers=2)
    assert disagreements(config, config.parameter_shapes()) == []
    untied = config.with_(tie_word_embeddings=False)
    assert disagreements(untied, untied.parameter_shapes()) == []


def test_embedding_rows_and_columns() -> None:
    assert found(LLAMA, shapes_of(LLAMA, model__embed_tokens__weight=(12, 4))) == [
        "vocab_size = 10 in the metadata, but model.embed_tokens.weight has 12 rows (shape [12, 4])"]
    assert found(LLAMA, shapes_of(LLAMA, model__embed_tokens__weight=(10, 5))) == [
        "hidden_size = 4 in the metadata, but model.embed_tokens.weight has 5 columns (shape [10, 5])"]
    assert found(LLAMA, shapes_of(LLAMA, model__embed_tokens__weight=(40,))) == [
        "vocab_size = 10 in the metadata, but model.embed_tokens.weight has shape [40], not 2-D",
        "hidden_size = 4 in the metadata, but model.embed_tokens.weight has shape [40], not 2-D"]


def test_without_an_embedding_the_norms_give_hidden_size() -> None:
    shapes = shapes_of(LLAMA, model__embed_tokens__weight=None, model__norm__weight=(5,))
    assert found(LLAMA, shapes) == [
        "hidden_size = 4 in the metadata, but model.norm.weight has 5 values (shape [5])"]
    shapes = shapes_of(LLAMA, model__embed_tokens__weight=None, model__norm__weight=None)
    shapes["model.layers.0.input_layernorm.weight"] = (7,)
    assert found(LLAMA, shapes) == [
        "hidden_size = 4 in the metadata, but model.layers.0.input_layernorm.weight has 7 values (shape [7])"]
    # with the embedding present the norms are not consulted
    assert found(LLAMA, shapes_of(LLAMA, model__norm__weight=(5,))) == []


def test_without_an_embedding_an_untied_head_gives_vocab_size() -> None:
    untied = LLAMA.with_(tie_word_embeddings=False)
    shapes = shapes_of(untied, model__embed_tokens__weight=None, lm_head__weight=(11, 4))
    assert found(untied, shapes) == [
        "vocab_size = 10 in the metadata, but lm_head.weight has 11 rows (shape [11, 4])"]
    # tied: lm_head is no evidence; with the embedding present: the embedding is
    tied_shapes = shapes_of(LLAMA, model__embed_tokens__weight=None)
    tied_shapes["lm_head.weight"] = (11, 4)
    assert found(LLAMA, tied_shapes) == []
    assert found(untied, shapes_of(untied, lm_head__weight=(11, 4))) == []


def test_layer_count_against_num_layers() -> None:
    config = LLAMA.with_(num_layers=3)
    assert found(config, LLAMA.parameter_shapes()) == [
        "num_layers = 3 in the metadata, but the tensors name model.layers.0 to model.layers.0 (1 layers)"]
    assert found(config, {"model.embed_tokens.weight": (10, 4)}) == [
        "num_layers = 3 in the metadata, but the tensors name no model.layers.N block"]


def test_head_counts_against_the_projections() -> None:
    p = "model.layers.0.self_attn."
    assert found(LLAMA, {**LLAMA.parameter_shapes(), p + "q_proj.weight": (6, 4)}) == [
        f"num_heads = 2 in the metadata, but {p}q_proj.weight has 6 rows, not num_heads x head_dim = 2 x 2"]
    assert found(LLAMA, {**LLAMA.parameter_shapes(), p + "k_proj.weight": (4, 4)}) == [
        f"num_kv_heads = 1 in the metadata, but {p}k_proj.weight has 4 rows, not num_kv_heads x head_dim = 1 x 2"]
    assert found(LLAMA, {**LLAMA.parameter_shapes(), p + "q_proj.weight": (16,)}) == [
        f"num_heads = 2 in the metadata, but {p}q_proj.weight has shape [16], not 2-D"]


def test_qk_norm_gives_head_dim_for_qwen3_only() -> None:
    qwen3 = LLAMA.with_(family="qwen3")
    name = "model.layers.0.self_attn.q_norm.weight"
    assert found(qwen3, {**qwen3.parameter_shapes(), name: (3,)}) == [
        f"head_dim = 2 in the metadata, but {name} has 3 values (shape [3])"]


def test_intermediate_size_from_gate_proj() -> None:
    name = "model.layers.0.mlp.gate_proj.weight"
    assert found(LLAMA, {**LLAMA.parameter_shapes(), name: (7, 4)}) == [
        f"intermediate_size = 6 in the metadata, but {name} has 7 rows (shape [7, 4])"]


# --- the ceiling ----------------------------------------------------------------------------------

def ceiling_case(present: int) -> tuple[ModelConfig, dict[str, tuple[int, ...]]]:
    """Embedding and one layer name: vocab, hidden and num_layers confirmed, the rest not."""
    config = LLAMA.with_(intermediate_size=200)
    shapes = {"model.embed_tokens.weight": (10, 4), "model.layers.0.other": (present - 40,)}
    return config, shapes


def test_ceiling_at_and_past_ten_times() -> None:
    config = LLAMA.with_(intermediate_size=200)
    implied = config.param_count
    at = math.ceil(implied / 10)
    assert disagreements(*ceiling_case(at)) == []
    assert 10 * (at - 1) < implied
    assert found(*ceiling_case(at - 1)) == [
        f"num_heads = 2 in the metadata, but the metadata implies {implied:,} parameters, over 10x the "
        f"{at - 1:,} values the tensors hold (no tensor present confirms num_heads, num_kv_heads, "
        "intermediate_size, head_dim)"]


def test_ceiling_with_no_values_at_all() -> None:
    config = LLAMA.with_(num_layers=1)
    shapes = {"model.layers.0.a": (0,), "model.embed_tokens.weight": (10, 0)}  # 0 values: divide by 1
    result = disagreements(config, shapes)
    assert [d.field for d in result] == ["hidden_size"]  # the embedding's columns contradict first
    empty = {"model.layers.0.a": (0,)}
    tiny = ModelConfig("llama", vocab_size=1, hidden_size=1, num_layers=1, num_heads=1, num_kv_heads=1,
                       intermediate_size=1, head_dim=2)
    assert tiny.param_count > 10
    assert found(tiny, empty) == [
        f"vocab_size = 1 in the metadata, but the metadata implies {tiny.param_count:,} parameters, over 10x the "
        "0 values the tensors hold (no tensor present confirms vocab_size, hidden_size, num_heads, num_kv_heads, "
        "intermediate_size, head_dim)"]


def test_ceiling_when_everything_is_confirmed_names_vocab_size() -> None:
    config = LLAMA.with_(num_layers=1000)
    shapes = {**LLAMA.parameter_shapes(), "model.layers.999.input_layernorm.weight": (4,)}
    result = disagreements(config, shapes)
    assert [d.field for d in result] == ["vocab_size"]
    assert str(result[0]).endswith("(no tensor present confirms vocab_size)")


def test_ceiling_not_reached_when_tensors_disagree() -> None:  # disagreements first, the ceiling only after
    config = LLAMA.with_(intermediate_size=10**6)
    shapes = {"model.embed_tokens.weight": (11, 4), "model.layers.0.other": (1,)}
    assert [d.field for d in disagreements(config, shapes)] == ["vocab_size"]


# --- check_against_tensors ------------------------------------------------------------------------

def test_check_against_tensors_passes_silently() -> None:
    assert check_against_tensors(LLAMA, LLAMA.parameter_shapes()) is None


def seven_disagreements() -> tuple[ModelConfig, dict]:
    qwen3 = LLAMA.with_(family="qwen3")
    p = "model.layers.0."
    return qwen3, {"model.embed_tokens.weight": (11, 5), "model.layers.1.x": (1,),
                   p + "self_attn.q_norm.weight": (3,), p + "self_attn.q_proj.weight": (1, 4),
                   p + "self_attn.k_proj.weight": (1, 4), p + "mlp.gate_proj.weight": (1, 4)}


@pytest.mark.parametrize("keep", [6, 7])
def test_check_against_tensors_lists_six_then_counts(keep: int) -> None:
    config, shapes = seven_disagreements()
    if keep == 6:
        shapes["model.layers.0.mlp.gate_proj.weight"] = (6, 4)
    expected = [str(d) for d in disagreements(config, shapes)]
    assert len(expected) == keep
    with pytest.raises(ModelConfigError) as info:
        check_against_tensors(config, shapes, path=os.path.join("d", "m.apr"))
    error = info.value
    tail = f"; ... ({keep} in all)" if keep > 6 else ""
    assert error.message == "metadata disagrees with the tensors: " + "; ".join(expected[:6]) + tail
    assert error.field == "vocab_size" and error.path == os.path.join("d", "m.apr")
    assert error.hint == ("the metadata was edited or written for another model: compare them with `apr inspect "
                          "FILE`, and re-import or re-export the checkpoint from its source")


# --- tensor_shape_problems ------------------------------------------------------------------------

def test_tensor_shape_problems_exactly() -> None:
    shapes = shapes_of(LLAMA, model__norm__weight=None, model__layers__0__mlp__up_proj__weight=(6, 5))
    shapes["zeta.weight"] = (1,)
    shapes["alpha.weight"] = (1,)
    shapes["lm_head.weight"] = (10, 4)  # tolerated beside a tied embedding
    assert tensor_shape_problems(LLAMA, shapes) == [
        "model.layers.0.mlp.up_proj.weight: shape [6, 5] != expected [6, 4]",
        "model.norm.weight: missing",
        "alpha.weight: unexpected tensor for a llama model",
        "zeta.weight: unexpected tensor for a llama model",
    ]
    assert tensor_shape_problems(LLAMA, LLAMA.parameter_shapes()) == []


def test_an_untied_model_needs_its_head() -> None:
    untied = LLAMA.with_(tie_word_embeddings=False)
    assert tensor_shape_problems(untied, LLAMA.parameter_shapes()) == ["lm_head.weight: missing"]
    assert tensor_shape_problems(untied, {**untied.parameter_shapes(), "lm_head.weight": [10, 4]}) == []


# --- physical memory and the --config ceiling ----------------------------------------------------

def test_physical_memory_is_pages_times_page_size(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"SC_PHYS_PAGES": 3, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", values.__getitem__)
    assert physical_memory() == 3 * 4096


@pytest.mark.parametrize("error", [AttributeError, OSError, ValueError])
def test_physical_memory_unknown(monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> None:
    def fail(name: str) -> int:
        raise error(name)

    monkeypatch.setattr(os, "sysconf", fail)
    assert physical_memory() is None


DIMS = "vocab_size 10, hidden_size 4, num_layers 1, intermediate_size 6"


def test_parameter_ceiling_at_and_past(monkeypatch: pytest.MonkeyPatch) -> None:
    count = LLAMA.param_count
    monkeypatch.setattr(bounds, "physical_memory", lambda: None)
    monkeypatch.setattr(bounds, "MAX_CONFIG_PARAMETERS", count)
    assert check_config_ceiling(LLAMA) is None
    monkeypatch.setattr(bounds, "MAX_CONFIG_PARAMETERS", count - 1)
    with pytest.raises(ModelConfigError) as info:
        check_config_ceiling(LLAMA, path="c.json", field="--init-config")
    error = info.value
    assert error.message == (f"the model has {count:,} parameters ({DIMS}), over the trainer's ceiling of "
                             f"{count - 1:,} (2**35: 16 bytes of training state each, per rank)")
    assert error.field == "--init-config" and error.path == "c.json"
    assert error.hint == "lower num_hidden_layers, hidden_size, intermediate_size or vocab_size"


def test_the_real_parameter_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "physical_memory", lambda: None)
    # 2**35 parameters and one more, built from the closed form: vocab * hidden + layers * layer + hidden
    base = ModelConfig("llama", vocab_size=1, hidden_size=1, num_layers=1, num_heads=1, num_kv_heads=1,
                       intermediate_size=1, head_dim=2)
    with pytest.raises(ModelConfigError) as info:
        check_config_ceiling(base.with_(num_layers=2**35))
    assert info.value.field == "--config"
    check_config_ceiling(base.with_(num_layers=2**35 // base.param_count // 2))


def test_memory_ceiling_at_and_past(monkeypatch: pytest.MonkeyPatch) -> None:
    count = LLAMA.param_count
    monkeypatch.setattr(bounds, "physical_memory", lambda: 4 * count)
    assert check_config_ceiling(LLAMA) is None
    monkeypatch.setattr(bounds, "physical_memory", lambda: 4 * count - 1)
    with pytest.raises(ModelConfigError) as info:
        check_config_ceiling(LLAMA, path="c.json")
    error = info.value
    assert error.message == (f"the model's fp32 weights alone need {4 * count / 2**30:,.1f} GiB ({count:,} "
                             f"parameters: {DIMS}); this machine has {(4 * count - 1) / 2**30:,.1f} GiB of memory")
    assert error.field == "--config" and error.path == "c.json"
    assert error.hint == "train a smaller model here, or run on a machine with more memory"


def test_memory_message_in_gibibytes(monkeypatch: pytest.MonkeyPatch) -> None:
    big = LLAMA.with_(vocab_size=2**20, hidden_size=2**10)  # about 2**31 parameters: arithmetic only
    count = big.param_count
    monkeypatch.setattr(bounds, "physical_memory", lambda: 2**31)  # 2 GiB
    with pytest.raises(ModelConfigError) as info:
        check_config_ceiling(big)
    gib = 4 * count / 2**30
    assert gib > 2
    assert info.value.message.startswith(f"the model's fp32 weights alone need {gib:,.1f} GiB ({count:,} parameters")
    assert info.value.message.endswith("this machine has 2.0 GiB of memory")


def test_kv_heads_are_checked_without_a_q_projection() -> None:
    p = "model.layers.0.self_attn."
    shapes = {name: shape for name, shape in LLAMA.parameter_shapes().items() if name != p + "q_proj.weight"}
    shapes[p + "k_proj.weight"] = (4, 4)
    assert found(LLAMA, shapes) == [
        f"num_kv_heads = 1 in the metadata, but {p}k_proj.weight has 4 rows, not num_kv_heads x head_dim = 1 x 2"]
