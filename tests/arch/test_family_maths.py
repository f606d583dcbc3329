"""Gemma's and Phi-3's pieces against independent constructions (the default suite, no transformers).

The transformers tier (FALSIFY-ARCH-REG-003..005) compares whole models; these pin each piece
where CI runs: Gemma's (1 + w) norm, GELU with the tanh approximation, the sqrt(hidden) embedding
scale, the config defaults Gemma's config.json leaves out and the GGUF norm offset (formulas
written out in numpy); Phi-3's fused projections against the unfused llama model carrying the
same rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from apr.convert.gguf_export import gguf_norm_offset  # noqa: E402
from apr.train.config import ModelConfig  # noqa: E402
from apr.train.model import CausalLM, RMSNorm, activation  # noqa: E402

GEMMA = {"model_type": "gemma", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 32,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8}
_floats = st.floats(-4, 4, width=32, allow_nan=False)


@given(x=hnp.arrays(np.float32, (3, 8), elements=_floats), w=hnp.arrays(np.float32, 8, elements=_floats))
def test_gemma_norm_scales_by_one_plus_weight(x, w):
    norm = RMSNorm(8, 1e-6, plus_one=True)
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(w))
        ours = norm(torch.from_numpy(x)).numpy()
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + 1e-6) * (1.0 + w.astype(np.float64))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_a_gemma_norm_starts_as_the_identity_scale():
    assert torch.equal(RMSNorm(4, 1e-6, plus_one=True).weight, torch.zeros(4))
    assert torch.equal(RMSNorm(4, 1e-6).weight, torch.ones(4))


@given(x=hnp.arrays(np.float32, 16, elements=_floats))
def test_gelu_is_the_tanh_approximation_and_silu_stays_silu(x):
    x64 = x.astype(np.float64)
    tanh_gelu = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(activation("gelu_pytorch_tanh", torch.from_numpy(x)).numpy(), tanh_gelu,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activation("silu", torch.from_numpy(x)).numpy(), x64 / (1 + np.exp(-x64)),
                               rtol=1e-5, atol=1e-6)


def test_gemma_embeddings_are_scaled_by_the_root_of_the_width():
    config = ModelConfig.from_hf_config(GEMMA)
    model = CausalLM(config)
    ids = torch.tensor([[0, 5, 39]])
    table = model.model.embed_tokens.weight.detach().numpy()
    np.testing.assert_allclose(model.model.embed(ids)[0].detach().numpy(), table[[0, 5, 39]] * np.float32(4.0),
                               rtol=1e-6)
    llama = CausalLM(ModelConfig.from_hf_config({**GEMMA, "model_type": "llama"}))
    assert torch.equal(llama.model.embed(ids), llama.model.embed_tokens(ids))


def test_gemma_config_defaults_and_metadata_round_trip():
    config = ModelConfig.from_hf_config(GEMMA)
    assert (config.family, config.hidden_act, config.tie_word_embeddings, config.max_position_embeddings) == \
        ("gemma", "gelu_pytorch_tanh", True, 8192)
    assert config.norm_plus_one and config.embed_scale == 4.0
    meta = config.to_metadata()
    assert (meta["architecture"], meta["hf_architecture"], meta["hidden_act"], meta["rope_type"]) == \
        ("gemma", "GemmaForCausalLM", "gelu_pytorch_tanh", 2)
    assert ModelConfig.from_metadata(meta) == config
    hf = config.to_hf_config()
    assert (hf["model_type"], hf["hidden_act"], hf["attention_bias"], hf["tie_word_embeddings"]) == \
        ("gemma", "gelu_pytorch_tanh", False, True)
    # transformers 4's key wins over hidden_act, as GemmaMLP read it
    assert ModelConfig.from_hf_config({**GEMMA, "hidden_act": "gelu_pytorch_tanh",
                                       "hidden_activation": "silu"}).hidden_act == "silu"
    llama = ModelConfig.from_hf_config({**GEMMA, "model_type": "llama"})
    assert "hidden_act" not in llama.to_metadata() and not llama.norm_plus_one and llama.embed_scale is None


@pytest.mark.parametrize("settings", [{"hidden_act": "gelu"}, {"hidden_act": "relu"},
                                      {"use_bidirectional_attention": True}])
def test_gemma_requests_the_module_does_not_compute_are_refused(settings):
    from apr.errors import UnsupportedArchitectureError

    with pytest.raises(UnsupportedArchitectureError) as info:
        ModelConfig.from_hf_config({**GEMMA, **settings})
    assert info.value.architecture == "gemma" and info.value.exit_code == 5


def test_a_llama_with_gemma_activation_is_refused():
    from apr.errors import UnsupportedArchitectureError

    with pytest.raises(UnsupportedArchitectureError, match="gelu_pytorch_tanh"):
        ModelConfig.from_hf_config({**GEMMA, "model_type": "llama", "hidden_act": "gelu_pytorch_tanh"})


@pytest.mark.parametrize(("family", "name", "offset"), [
    ("gemma", "model.norm.weight", 1.0), ("gemma", "model.layers.3.input_layernorm.weight", 1.0),
    ("gemma", "model.layers.0.post_attention_layernorm.weight", 1.0),
    ("gemma", "model.layers.0.self_attn.q_proj.weight", 0.0), ("gemma", "model.embed_tokens.weight", 0.0),
    ("llama", "model.norm.weight", 0.0), ("qwen3", "model.layers.0.self_attn.q_norm.weight", 0.0),
])
def test_gguf_norm_offset_is_gemmas_alone(family, name, offset):
    assert gguf_norm_offset(family, name) == offset


PHI3 = {**GEMMA, "model_type": "phi3", "head_dim": 8, "num_hidden_layers": 2}


def test_phi3_fused_projections_compute_what_the_split_rows_compute():
    """rows q | k | v of qkv_proj and gate | up of gate_up_proj, in that order: a llama model given
    those rows as separate tensors gives the same logits, in the forward and the KV-cache path."""
    from apr.train.kv_cache import KVCache

    phi3 = ModelConfig.from_hf_config(PHI3)
    llama = ModelConfig.from_hf_config({**PHI3, "model_type": "llama", "rms_norm_eps": 1e-5})  # phi3's default
    assert phi3.param_count == llama.param_count
    torch.manual_seed(0)
    fused, split = CausalLM(phi3).eval(), CausalLM(llama).eval()
    q, kv, inner = 2 * 8, 1 * 8, 32
    state = {}
    for name, value in fused.hf_state_dict().items():
        value = value.detach().normal_(0, 0.3) if value.dim() == 2 else value.detach()
        if name.endswith("qkv_proj.weight"):
            base = name.removesuffix("qkv_proj.weight")
            state[base + "q_proj.weight"], state[base + "k_proj.weight"], state[base + "v_proj.weight"] = \
                value[:q], value[q:q + kv], value[q + kv:]
        elif name.endswith("gate_up_proj.weight"):
            base = name.removesuffix("gate_up_proj.weight")
            state[base + "gate_proj.weight"], state[base + "up_proj.weight"] = value[:inner], value[inner:]
        else:
            state[name] = value
    split.load_state_dict(state, strict=False)
    assert set(fused.hf_state_dict()) == set(phi3.parameter_shapes())
    ids = torch.tensor([[1, 7, 3, 9, 2, 5]])
    with torch.no_grad():
        ours, theirs = fused(ids), split(ids)
        cache = KVCache(fused, 1, 6)
        cached = torch.cat([fused(ids[:, :3], cache=cache),
                            fused(ids[:, 3:], cache=cache)], dim=1)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cached, theirs, rtol=1e-5, atol=1e-5)


def test_phi3_shapes_metadata_and_gguf_names():
    from apr.convert.names import hf_to_gguf_for

    config = ModelConfig.from_hf_config(PHI3)
    shapes = config.parameter_shapes()
    assert shapes["model.layers.1.self_attn.qkv_proj.weight"] == (2 * 8 + 2 * 8, 16)
    assert shapes["model.layers.1.mlp.gate_up_proj.weight"] == (64, 16)
    assert "model.layers.0.self_attn.q_proj.weight" not in shapes and "lm_head.weight" in shapes  # untied
    assert (config.rms_norm_eps, config.max_position_embeddings, config.tie_word_embeddings) == (1e-5, 4096, False)
    assert ModelConfig.from_metadata(config.to_metadata(), list(shapes)) == config
    assert hf_to_gguf_for("phi3", "model.layers.2.self_attn.qkv_proj.weight") == "blk.2.attn_qkv.weight"
    assert hf_to_gguf_for("phi3", "model.layers.2.mlp.down_proj.weight") == "blk.2.ffn_down.weight"
    with pytest.raises(Exception, match=r"no llama\.cpp name"):
        hf_to_gguf_for("llama", "model.layers.2.self_attn.qkv_proj.weight")


GEMMA2 = {**GEMMA, "model_type": "gemma2", "num_hidden_layers": 3, "max_position_embeddings": 64, "sliding_window": 4}


@given(cap=st.floats(0.5, 30.0), chunk=st.integers(1, 7))
def test_softcapped_fused_loss_and_its_gradients_equal_autograd(cap, chunk):
    """The hand-written backward through cap * tanh(z / cap) against autograd on the full logits."""
    from apr.train.loss import linear_cross_entropy

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(6, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1, 0, 10, -100, 4, 7])
    ours = linear_cross_entropy(hidden, weight, targets, chunk_rows=chunk, softcap=cap)
    grads = torch.autograd.grad(ours, (hidden, weight))
    logits = torch.tanh((hidden @ weight.T) / cap) * cap
    reference = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100)
    expected = torch.autograd.grad(reference, (hidden, weight))
    torch.testing.assert_close(ours, reference)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_gemma2_config_defaults_layers_and_metadata_round_trip():
    config = ModelConfig.from_hf_config(GEMMA2)
    assert (config.attn_softcap, config.final_softcap, config.query_pre_attn_scalar) == (50.0, 30.0, 256)
    assert config.layer_types == ("sliding_attention", "full_attention", "sliding_attention")  # HF's default
    assert [config.window_for(i) for i in range(3)] == [4, None, 4]
    shapes = config.parameter_shapes()
    assert shapes["model.layers.2.pre_feedforward_layernorm.weight"] == (16,)
    assert config.param_count == sum(math.prod(s) for s in shapes.values())
    meta = config.to_metadata()
    assert meta["layer_types"] == list(config.layer_types) and meta["final_logit_softcapping"] == 30.0
    assert ModelConfig.from_metadata(meta, list(shapes)) == config
    hf = config.to_hf_config()
    assert hf["hidden_activation"] == "gelu_pytorch_tanh" and "hidden_act" not in hf
    # a window covering the context is none, and stays none through the metadata (not the 4096 default)
    wide = ModelConfig.from_hf_config({**GEMMA2, "sliding_window": 64})
    assert wide.sliding_window is None and ModelConfig.from_metadata(wide.to_metadata()).sliding_window is None


@pytest.mark.parametrize(("changes", "field"), [
    ({"layer_types": ["sliding_attention"]}, "layer_types"),
    ({"layer_types": ["sliding_attention", "global", "full_attention"]}, "layer_types"),
    ({"attn_logit_softcapping": 0}, "attn_softcap"),
    ({"final_logit_softcapping": -3.0}, "final_softcap"),
])
def test_gemma2_fields_are_checked(changes, field):
    from apr.errors import ModelConfigError

    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_hf_config({**GEMMA2, **changes})
    assert info.value.field == field


def test_only_gemma2_carries_gemma2_fields():
    from apr.errors import ModelConfigError

    llama = ModelConfig.from_hf_config({**GEMMA, "model_type": "llama"})
    with pytest.raises(ModelConfigError):
        llama.with_(attn_softcap=50.0)
    with pytest.raises(ModelConfigError):
        llama.with_(layer_types=("full_attention",))
    assert llama.gemma2_settings() == {} and [llama.window_for(0)] == [None]
