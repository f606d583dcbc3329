"""ModelConfig, field by field: validation bounds, Hugging Face defaults and spellings, APR metadata
key by key, and the parameter count against an independent enumeration (issue 23)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import apr.train.config as config_module
from apr.errors import AprFileNotFoundError, AprIOError, ModelConfigError, UnsupportedArchitectureError
from apr.train.config import ARCH_FIELDS, ModelConfig, config_differences, parameter_count

# the smallest shape every family accepts; family-specific fields added per test
BASE = dict(vocab_size=10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=6, head_dim=2)
HF_BASE = {"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
           "intermediate_size": 6}
FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
HF_CLASS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM"}


def make(family: str = "llama", **changes) -> ModelConfig:
    return ModelConfig(family=family, **{**BASE, **changes})


def refusal(field: str, **changes) -> ModelConfigError:
    with pytest.raises(ModelConfigError) as info:
        make(**changes)
    assert info.value.field == field
    return info.value


# --- __post_init__ ------------------------------------------------------------------------------

def test_defaults_of_the_record() -> None:
    config = make()
    assert (config.max_position_embeddings, config.rope_theta, config.rms_norm_eps, config.tie_word_embeddings,
            config.initializer_range, config.sliding_window) == (2048, 10000.0, 1e-6, True, 0.02, None)


def test_unknown_family_is_refused_naming_architecture() -> None:
    with pytest.raises(ModelConfigError, match="'gpt2' is not one the trainer builds") as info:
        make("gpt2")
    assert info.value.field == "architecture"
    assert info.value.message == "model family 'gpt2' is not one the trainer builds"
    assert info.value.hint == "use one of llama, mistral, qwen2, qwen3, gemma, gemma2, phi3"


@pytest.mark.parametrize("name", ["vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                                  "intermediate_size", "head_dim", "max_position_embeddings"])
@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2", None])
def test_every_dimension_must_be_a_positive_integer(name: str, bad) -> None:
    assert "must be a positive integer" in str(refusal(name, **{name: bad}))


def test_dimension_of_one_is_accepted() -> None:  # the boundary: 1 is positive
    config = make(vocab_size=1, hidden_size=1, num_layers=1, num_heads=1, num_kv_heads=1, intermediate_size=1,
                  head_dim=2, max_position_embeddings=1)
    assert config.num_heads == 1 and config.max_position_embeddings == 1


@pytest.mark.parametrize(("heads", "kv", "ok"), [(4, 3, False), (4, 8, False), (6, 4, False), (4, 2, True),
                                                 (4, 4, True), (4, 1, True)])
def test_query_heads_come_in_whole_groups(heads: int, kv: int, ok: bool) -> None:
    if ok:
        assert make(num_heads=heads, num_kv_heads=kv).num_kv_heads == kv
    else:
        error = refusal("num_kv_heads", num_heads=heads, num_kv_heads=kv)
        assert error.message == f"num_heads {heads} is not a multiple of num_kv_heads {kv}"
        assert error.hint == "grouped-query attention needs whole groups of query heads"


@pytest.mark.parametrize(("head_dim", "ok"), [(1, False), (3, False), (2, True), (4, True)])
def test_head_dim_must_be_even(head_dim: int, ok: bool) -> None:
    if ok:
        assert make(head_dim=head_dim).head_dim == head_dim
    else:
        assert "must be even for RoPE" in str(refusal("head_dim", head_dim=head_dim))


@pytest.mark.parametrize("name", ["rope_theta", "rms_norm_eps"])
@pytest.mark.parametrize("bad", [0, 0.0, -1e-9, math.inf, math.nan, True, "1.0", None])
def test_positive_reals(name: str, bad) -> None:
    assert "must be a positive number" in str(refusal(name, **{name: bad}))


@pytest.mark.parametrize("name", ["rope_theta", "rms_norm_eps"])
@pytest.mark.parametrize("good", [1, 5e-324, 1e6])
def test_positive_reals_accepted(name: str, good) -> None:
    assert getattr(make(**{name: good}), name) == good


@pytest.mark.parametrize("bad", [-1e-9, math.inf, -math.inf, math.nan, True, "0.02", None])
def test_initializer_range_refused(bad) -> None:
    assert "initializer_range must be a finite number >= 0" in str(refusal("initializer_range", initializer_range=bad))


@pytest.mark.parametrize("good", [0, 0.0, 1e-9, 1])
def test_initializer_range_zero_is_allowed(good) -> None:
    assert make(initializer_range=good).initializer_range == good


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_only_mistral_has_a_sliding_window(family: str) -> None:
    with pytest.raises(ModelConfigError, match=f"a {family} model has no sliding window") as info:
        make(family, sliding_window=4)
    assert info.value.field == "sliding_window" and info.value.hint == "use family mistral, or drop sliding_window"


@pytest.mark.parametrize("bad", [0, -3, True, 4.0, "4"])
def test_mistral_window_must_be_a_positive_integer(bad) -> None:
    assert "sliding_window must be a positive integer" in str(refusal("sliding_window", family="mistral",
                                                                       sliding_window=bad))


@pytest.mark.parametrize("good", [1, 4, None])
def test_mistral_window_accepted(good) -> None:
    assert make("mistral", sliding_window=good).sliding_window == good


# --- identity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_identity_properties(family: str) -> None:
    config = make(family)
    assert config.qkv_bias is (family == "qwen2")
    assert config.qk_norm is (family == "qwen3")
    assert config.hf_architecture == HF_CLASS[family]
    assert config.hf_model_type == family


def test_parameter_shapes_of_a_qwen2_layer_exactly() -> None:
    config = make("qwen2", vocab_size=10, hidden_size=4, num_heads=2, num_kv_heads=1, head_dim=3 * 2,
                  intermediate_size=6, num_layers=1, tie_word_embeddings=False)
    p = "model.layers.0."
    assert config.parameter_shapes() == {
        "model.embed_tokens.weight": (10, 4),
        p + "input_layernorm.weight": (4,),
        p + "self_attn.q_proj.weight": (12, 4),
        p + "self_attn.k_proj.weight": (6, 4),
        p + "self_attn.v_proj.weight": (6, 4),
        p + "self_attn.q_proj.bias": (12,),
        p + "self_attn.k_proj.bias": (6,),
        p + "self_attn.v_proj.bias": (6,),
        p + "self_attn.o_proj.weight": (4, 12),
        p + "post_attention_layernorm.weight": (4,),
        p + "mlp.gate_proj.weight": (6, 4),
        p + "mlp.up_proj.weight": (6, 4),
        p + "mlp.down_proj.weight": (4, 6),
        "model.norm.weight": (4,),
        "lm_head.weight": (10, 4),
    }


def test_parameter_shapes_qwen3_norms_and_layer_names() -> None:
    shapes = make("qwen3", num_layers=2, head_dim=4).parameter_shapes()
    assert shapes["model.layers.1.self_attn.q_norm.weight"] == (4,)
    assert shapes["model.layers.1.self_attn.k_norm.weight"] == (4,)
    assert "model.layers.1.self_attn.q_proj.bias" not in shapes and "lm_head.weight" not in shapes
    assert sum(name.startswith("model.layers.") for name in shapes) == 2 * 11


def test_parameter_count_by_hand() -> None:
    # llama, untied: embed 10*4 + head 10*4 + layer (norms 2*4, q 4*4, k+v 2*2*4, o 4*4, mlp 3*6*4) + norm 4
    config = make("llama", tie_word_embeddings=False)
    assert config.param_count == parameter_count(config) == 80 + (8 + 16 + 16 + 16 + 72) + 4 == 212
    # qwen2 adds q/k/v biases (4 + 2*2), qwen3 two head norms (2*2); tied: the embedding once
    assert make("qwen2").param_count == 40 + 128 + 8 + 4
    assert make("qwen3").param_count == 40 + 128 + 4 + 4


@given(family=st.sampled_from(FAMILIES), heads=st.integers(1, 4), group=st.integers(1, 3),
       kv=st.integers(1, 3), half=st.integers(1, 4), layers=st.integers(1, 3), vocab=st.integers(1, 50),
       hidden=st.integers(1, 16), inter=st.integers(1, 16), tied=st.booleans())
@example(family="qwen2", heads=1, group=2, kv=3, half=1, layers=2, vocab=7, hidden=3, inter=5, tied=False)
@example(family="qwen3", heads=1, group=1, kv=2, half=3, layers=3, vocab=5, hidden=2, inter=3, tied=True)
def test_parameter_count_equals_the_enumeration(family, heads, group, kv, half, layers, vocab, hidden, inter,
                                                tied) -> None:
    config = ModelConfig(family=family, vocab_size=vocab, hidden_size=hidden, num_layers=layers,
                         num_heads=kv * group, num_kv_heads=kv, intermediate_size=inter, head_dim=2 * half,
                         tie_word_embeddings=tied)
    assert config.param_count == sum(math.prod(shape) for shape in config.parameter_shapes().values())


# --- to_hf_config / to_metadata -----------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_to_hf_config_key_by_key(family: str) -> None:
    config = make(family, max_position_embeddings=64, rope_theta=5e5, rms_norm_eps=1e-5,
                  tie_word_embeddings=False, initializer_range=0.01)
    expected = {
        "architectures": [HF_CLASS[family]], "model_type": family, "vocab_size": 10, "hidden_size": 4,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 6,
        "head_dim": 2, "max_position_embeddings": 64, "rope_theta": 5e5, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "initializer_range": 0.01, "hidden_act": "silu",
    }
    if family != "qwen2":
        expected["attention_bias"] = False
    if family == "llama":
        expected["mlp_bias"] = False
    if family == "mistral":
        expected["sliding_window"] = None
    assert config.to_hf_config() == expected


def test_to_hf_config_writes_the_mistral_window() -> None:
    assert make("mistral", sliding_window=8).to_hf_config()["sliding_window"] == 8


@pytest.mark.parametrize(("family", "rope_type"), [("llama", 0), ("mistral", 0), ("qwen2", 2), ("qwen3", 2)])
def test_to_metadata_key_by_key(family: str, rope_type: int) -> None:
    config = make(family, max_position_embeddings=64, rope_theta=5e5, rms_norm_eps=1e-5, tie_word_embeddings=False)
    assert config.to_metadata() == {
        "architecture": family, "hf_architecture": HF_CLASS[family], "hf_model_type": family,
        "hidden_size": 4, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "vocab_size": 10,
        "intermediate_size": 6, "max_position_embeddings": 64, "rope_theta": 5e5, "rope_type": rope_type,
        "rms_norm_eps": 1e-5, "head_dim": 2, "param_count": config.param_count, "tied_embeddings": False,
    }


def test_to_metadata_writes_a_window_only_when_there_is_one() -> None:
    assert make("mistral", sliding_window=8).to_metadata()["sliding_window"] == 8
    assert "sliding_window" not in make("mistral").to_metadata()


def test_with_and_to_dict() -> None:
    config = make()
    assert config.with_(num_layers=3).num_layers == 3 and config.num_layers == 1
    with pytest.raises(ModelConfigError):
        config.with_(num_layers=0)
    assert config.to_dict() == {"family": "llama", **BASE, "max_position_embeddings": 2048, "rope_theta": 10000.0,
                                "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "initializer_range": 0.02,
                                "sliding_window": None, "hidden_act": "silu", "attn_softcap": None,
                                "final_softcap": None, "query_pre_attn_scalar": None, "layer_types": None}


# --- from_hf_config -----------------------------------------------------------------------------

def hf(**extra) -> ModelConfig:
    return ModelConfig.from_hf_config({"model_type": "llama", **HF_BASE, **extra}, path="c.json")


@pytest.mark.parametrize(("family", "context", "head_dim"), [("llama", 2048, 4), ("qwen2", 32768, 4),
                                                             ("qwen3", 32768, 128), ("mistral", 131072, 4)])
def test_hugging_face_defaults_per_family(family: str, context: int, head_dim: int) -> None:
    config = ModelConfig.from_hf_config({"model_type": family, **HF_BASE})
    assert config == ModelConfig(family=family, vocab_size=10, hidden_size=8, num_layers=1, num_heads=2,
                                 num_kv_heads=2, intermediate_size=6, head_dim=head_dim,
                                 max_position_embeddings=context, rope_theta=10000.0, rms_norm_eps=1e-6,
                                 tie_word_embeddings=False, initializer_range=0.02, sliding_window=None)
    assert isinstance(config.rope_theta, float) and isinstance(config.rms_norm_eps, float)


def test_every_written_value_is_read() -> None:
    config = hf(num_key_value_heads=1, head_dim=6, max_position_embeddings=77, rope_theta=123, rms_norm_eps=1e-5,
                tie_word_embeddings=True, initializer_range=0.05)
    assert (config.num_kv_heads, config.head_dim, config.max_position_embeddings, config.rope_theta,
            config.rms_norm_eps, config.tie_word_embeddings, config.initializer_range) == (
        1, 6, 77, 123.0, 1e-5, True, 0.05)
    assert type(config.rope_theta) is float
    assert (config.vocab_size, config.hidden_size, config.num_layers, config.num_heads, config.intermediate_size) == (
        10, 8, 1, 2, 6)


def test_rope_theta_precedence() -> None:
    assert hf(rope_parameters={"rope_theta": 7.0}).rope_theta == 7.0
    assert hf(rope_theta=3.0, rope_parameters={"rope_theta": 7.0}).rope_theta == 3.0
    assert hf(rope_parameters=[("rope_theta", 7.0)]).rope_theta == 10000.0  # not a dict: ignored


@pytest.mark.parametrize("falsy", [None, 0])
def test_falsy_optional_counts_fall_back(falsy) -> None:
    config = hf(num_key_value_heads=falsy, head_dim=falsy)
    assert (config.num_kv_heads, config.head_dim) == (2, 4)


def test_claim_from_architectures_when_model_type_is_absent_or_not_text() -> None:
    document = {**HF_BASE, "architectures": ["Qwen3ForCausalLM", "LlamaForCausalLM"]}
    assert ModelConfig.from_hf_config(document).family == "qwen3"
    assert ModelConfig.from_hf_config({**document, "model_type": 5}).family == "qwen3"
    assert ModelConfig.from_hf_config({**document, "model_type": "llama"}).family == "llama"  # model_type first


@pytest.mark.parametrize("architectures", [None, [], "LlamaForCausalLM", [5], [None, "LlamaForCausalLM"]])
def test_no_claim_at_all(architectures) -> None:
    document = {**HF_BASE, "model_type": None}
    if architectures is not None:
        document["architectures"] = architectures
    with pytest.raises(ModelConfigError, match=r"config\.json has no model_type") as info:
        ModelConfig.from_hf_config(document, path="c.json")
    assert info.value.field == "model_type" and info.value.message == "config.json has no model_type"
    assert info.value.path == "c.json"
    assert info.value.hint == 'set "model_type" to one of llama, mistral, qwen2, qwen3, gemma, gemma2, phi3'
    assert not isinstance(info.value, UnsupportedArchitectureError)


@pytest.mark.parametrize("key", ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                 "intermediate_size"])
def test_each_required_key(key: str) -> None:
    document = {"model_type": "llama", **HF_BASE, "head_dim": 4}
    del document[key]
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_hf_config(document, path="c.json")
    assert info.value.field == key and f"config.json has no {key!r}" in str(info.value)
    assert info.value.hint == f'add "{key}" to the config' and info.value.path == "c.json"


@pytest.mark.parametrize(("hidden", "heads"), [(9, 2), (8, 0), (8, -2), (8.0, 2), (8, "2")])
def test_head_dim_needs_an_exact_division(hidden, heads) -> None:
    with pytest.raises(ModelConfigError, match="is not divisible by num_heads") as info:
        hf(hidden_size=hidden, num_attention_heads=heads)
    assert info.value.field == "head_dim" and info.value.hint == "set head_dim explicitly"
    assert info.value.path == "c.json"
    assert info.value.message == f"hidden_size {hidden!r} is not divisible by num_heads {heads!r}"


def test_head_dim_by_division() -> None:
    assert hf(hidden_size=12, num_attention_heads=3, num_key_value_heads=1).head_dim == 4
    assert hf(hidden_size=8, num_attention_heads=1, num_key_value_heads=1).head_dim == 8  # one head: all of it


@pytest.mark.parametrize("key", ["rope_theta", "rms_norm_eps", "initializer_range"])
@pytest.mark.parametrize("bad", ["1e4", None, True, [1]])
def test_real_fields_must_be_numbers(key: str, bad) -> None:
    with pytest.raises(ModelConfigError) as info:
        hf(**{key: bad})
    assert info.value.field == key and info.value.path == "c.json"
    assert info.value.message == f"{key} = {bad!r} is not a number"


@pytest.mark.parametrize("key", ["rope_theta", "rms_norm_eps", "initializer_range"])
def test_real_fields_past_the_float_range(key: str) -> None:
    with pytest.raises(ModelConfigError, match="is out of range") as info:
        hf(**{key: 10**400})
    assert info.value.field == key and info.value.path == "c.json"


def test_tie_word_embeddings_is_a_truth_value() -> None:
    assert hf(tie_word_embeddings=1).tie_word_embeddings is True
    assert hf(tie_word_embeddings=0).tie_word_embeddings is False


@pytest.mark.parametrize(("extra", "named"), [
    ({"hidden_act": None}, "hidden_act None"),
    ({"use_sliding_window": True}, "use_sliding_window"),
    ({"hidden_act": None, "use_sliding_window": 1}, "hidden_act None, use_sliding_window"),
])
def test_what_the_trainer_refuses_itself(extra: dict, named: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_hf_config({"model_type": "qwen2", **HF_BASE, **extra}, path="c.json")
    assert info.value.message.startswith(f"config.json asks for {named}, which the trainer does not implement")
    assert info.value.hint == "remove these keys, or train this model with transformers"
    assert info.value.path == "c.json"
    assert not isinstance(info.value, UnsupportedArchitectureError)


@pytest.mark.parametrize("extra", [{"hidden_act": "silu"}, {"use_sliding_window": False}, {"rope_scaling": "x"},
                                   {"rope_scaling": {"type": "default"}}, {"attention_bias": True},
                                   {"mlp_bias": False}])
def test_near_misses_are_accepted(extra: dict) -> None:
    assert ModelConfig.from_hf_config({"model_type": "qwen2", **HF_BASE, **extra}).family == "qwen2"


def test_mistral_window_from_config() -> None:
    base = {"model_type": "mistral", **HF_BASE, "max_position_embeddings": 64}
    assert ModelConfig.from_hf_config({**base, "sliding_window": 16}).sliding_window == 16
    assert ModelConfig.from_hf_config({**base, "sliding_window": 64}).sliding_window is None  # covers the context
    assert ModelConfig.from_hf_config({**base, "sliding_window": None}).sliding_window is None


# --- from_config_file -----------------------------------------------------------------------------

def write(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_config_file_and_folder(tmp_path: Path) -> None:
    document = {"model_type": "llama", **HF_BASE}
    write(tmp_path / "config.json", document)
    expected = ModelConfig.from_hf_config(document)
    assert ModelConfig.from_config_file(tmp_path) == expected
    assert ModelConfig.from_config_file(os.fspath(tmp_path / "config.json")) == expected


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError, match="model config not found") as info:
        ModelConfig.from_config_file(tmp_path)  # a folder without config.json
    assert info.value.field == "--config" and Path(info.value.path) == tmp_path / "config.json"
    assert info.value.hint == "pass a Hugging Face config.json" and info.value.message == "model config not found"
    bad = write(tmp_path / "bad.json", {"model_type": "llama", **HF_BASE, "hidden_act": None})
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_config_file(bad)
    assert info.value.path == os.fspath(bad)


def test_config_file_past_the_ceiling(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", {"model_type": "llama", **HF_BASE, "num_hidden_layers": 10**9,
                                       "vocab_size": 10**6, "hidden_size": 4096, "intermediate_size": 4096})
    with pytest.raises(ModelConfigError, match="over the trainer's ceiling") as info:
        ModelConfig.from_config_file(path)
    assert info.value.field == "--config" and info.value.path == os.fspath(path)


@pytest.mark.parametrize(("text", "message"), [
    (b"{nope", "config.json is not valid JSON"),
    (b"[1, 2]", "config.json must hold a JSON object"),
    (b"\"llama\"", "config.json must hold a JSON object"),
    (b"\xff\xfe{}", "config.json is not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "config.json cannot be parsed: RecursionError"),
    (b'{"a": ' + b"9" * 5000 + b"}", "config.json cannot be parsed: ValueError"),
])
def test_unparseable_files(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(text)
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_config_file(path)
    assert info.value.message.startswith(message) and info.value.field == "--config"
    assert info.value.path == os.fspath(path)


def test_size_limit_at_and_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.json", {"model_type": "llama", **HF_BASE})
    size = path.stat().st_size
    assert config_module.MAX_CONFIG_BYTES == 16 * 1024 * 1024
    monkeypatch.setattr(config_module, "MAX_CONFIG_BYTES", size)
    assert ModelConfig.from_config_file(path).family == "llama"  # at the limit
    monkeypatch.setattr(config_module, "MAX_CONFIG_BYTES", size - 1)
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_config_file(path)
    assert info.value.message.startswith(f"config.json is {size:,} bytes, over the {size - 1:,}-byte limit")
    assert info.value.field == "--config" and info.value.hint == "pass the model's config.json itself"
    assert info.value.path == os.fspath(path)


def test_unreadable_file_is_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.json", {"model_type": "llama", **HF_BASE})

    def fail(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", fail)
    with pytest.raises(AprIOError) as info:
        ModelConfig.from_config_file(path)
    assert info.value.message == "cannot read the config: Permission denied"
    assert info.value.field == "--config" and info.value.path == os.fspath(path)


# --- from_metadata ------------------------------------------------------------------------------

META = {"architecture": "llama", "hidden_size": 8, "num_heads": 2, "num_layers": 1, "vocab_size": 10,
        "intermediate_size": 6}


def test_metadata_defaults() -> None:
    config = ModelConfig.from_metadata(META)
    assert config == ModelConfig(family="llama", vocab_size=10, hidden_size=8, num_layers=1, num_heads=2,
                                 num_kv_heads=2, intermediate_size=6, head_dim=4, max_position_embeddings=2048,
                                 rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)


def test_metadata_values_are_read() -> None:
    config = ModelConfig.from_metadata({**META, "num_kv_heads": 1, "head_dim": 6, "max_position_embeddings": 99,
                                        "rope_theta": 5e5, "rms_norm_eps": 1e-5, "tied_embeddings": False})
    assert (config.num_kv_heads, config.head_dim, config.max_position_embeddings, config.rope_theta,
            config.rms_norm_eps, config.tie_word_embeddings) == (1, 6, 99, 5e5, 1e-5, False)


def test_metadata_zero_reals_fall_back_to_defaults() -> None:
    config = ModelConfig.from_metadata({**META, "rope_theta": 0, "rms_norm_eps": None, "head_dim": None})
    assert (config.rope_theta, config.rms_norm_eps, config.head_dim) == (10000.0, 1e-6, 4)


@pytest.mark.parametrize("key", ["hidden_size", "num_heads", "num_layers", "vocab_size", "intermediate_size"])
def test_metadata_missing_dimension(key: str) -> None:
    metadata = {k: v for k, v in META.items() if k != key}
    with pytest.raises(ModelConfigError, match=f"metadata has no {key!r}") as info:
        ModelConfig.from_metadata(metadata, path="m.apr")
    assert info.value.field == key and info.value.path == "m.apr"


@pytest.mark.parametrize("key", ["hidden_size", "num_kv_heads", "head_dim", "max_position_embeddings"])
@pytest.mark.parametrize("bad", [True, 8.0, "8"])
def test_metadata_dimension_must_be_an_integer(key: str, bad) -> None:
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_metadata({**META, key: bad}, path="m.apr")
    assert info.value.field == key and info.value.path == "m.apr"
    assert info.value.message == f"metadata {key!r} = {bad!r} is not an integer"


UNTIED_NAMES = list(ModelConfig.from_metadata(META).with_(tie_word_embeddings=False).parameter_shapes())
TIED_NAMES = [name for name in UNTIED_NAMES if name != "lm_head.weight"]


@pytest.mark.parametrize(("names", "flag", "tied"), [
    (TIED_NAMES, None, True),
    (UNTIED_NAMES, None, False),
    (UNTIED_NAMES, False, False),
    (UNTIED_NAMES, True, True),
    (UNTIED_NAMES, 1, False),  # only a literal true
    (TIED_NAMES, False, True),  # tensors first
    (None, None, True),
    (None, False, False),
    (None, 0, False),
    (None, True, True),
])
def test_tied_head_evidence(names, flag, tied: bool) -> None:
    metadata = dict(META) if flag is None else {**META, "tied_embeddings": flag}
    assert ModelConfig.from_metadata(metadata, names).tie_word_embeddings is tied


def test_metadata_window_for_mistral() -> None:
    metadata = {**META, "architecture": "mistral", "max_position_embeddings": 64}
    assert ModelConfig.from_metadata({**metadata, "sliding_window": 16}).sliding_window == 16
    assert ModelConfig.from_metadata(metadata).sliding_window is None
    assert ModelConfig.from_metadata({**META, "sliding_window": None}).sliding_window is None


def test_metadata_round_trip_keeps_every_field() -> None:
    config = make("qwen2", num_layers=2, max_position_embeddings=64, rope_theta=5e5, rms_norm_eps=1e-5,
                  tie_word_embeddings=False)
    assert ModelConfig.from_metadata(config.to_metadata(), list(config.parameter_shapes())) == config


# --- config_differences -------------------------------------------------------------------------

def test_arch_fields() -> None:
    assert ARCH_FIELDS == ("family", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                           "intermediate_size", "head_dim", "max_position_embeddings", "tie_word_embeddings",
                           "sliding_window", "hidden_act", "attn_softcap", "final_softcap", "query_pre_attn_scalar",
                           "layer_types")


def test_differences_exactly() -> None:
    left = make("mistral")
    assert config_differences(left, left) == []
    right = left.with_(hidden_size=8, num_layers=3, tie_word_embeddings=False, sliding_window=4, rope_theta=1.0)
    assert config_differences(left, right) == ["hidden_size: 4 != 8", "num_layers: 1 != 3",
                                               "tie_word_embeddings: True != False", "sliding_window: None != 4"]
    assert config_differences(make("llama"), make("qwen2")) == ["family: 'llama' != 'qwen2'"]


def test_metadata_tensor_names_are_evidence() -> None:
    qwen3 = ModelConfig("qwen3", vocab_size=10, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2,
                        intermediate_size=6, head_dim=4)
    bare = {key: value for key, value in qwen3.to_metadata().items()
            if key not in ("architecture", "hf_architecture", "hf_model_type")}
    assert ModelConfig.from_metadata(bare, list(qwen3.parameter_shapes())).family == "qwen3"  # no claim: the names
    with pytest.raises(UnsupportedArchitectureError):  # an incomplete tensor set is refused by the registry
        ModelConfig.from_metadata(qwen3.to_metadata(), ["model.embed_tokens.weight"])


def test_the_registry_refusal_names_the_file() -> None:
    with pytest.raises(UnsupportedArchitectureError) as info:
        ModelConfig.from_hf_config({"model_type": "gpt2", **HF_BASE}, path="c.json")
    assert info.value.path == "c.json"


@pytest.mark.parametrize("key", ["rope_theta", "rms_norm_eps"])
def test_metadata_reals_must_be_numbers(key: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_metadata({**META, key: "big"}, path="m.apr")
    assert (info.value.field, info.value.path, info.value.message) == (key, "m.apr", f"{key} = 'big' is not a number")


def test_metadata_head_dim_by_division_names_the_file() -> None:
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_metadata({**META, "hidden_size": 9}, path="m.apr")
    assert (info.value.field, info.value.path) == ("head_dim", "m.apr")


# --- gemma, gemma2 and phi3: the keys their configs and metadata carry (issue 23) -------------------


def test_phi3_hf_config_clears_the_special_token_ids() -> None:
    """Phi3Config's defaults pad with id 32000, past a small vocabulary: the ids are written as null."""
    phi3 = make("phi3").to_hf_config()
    assert {k: phi3[k] for k in ("pad_token_id", "bos_token_id", "eos_token_id")} == dict.fromkeys(
        ("pad_token_id", "bos_token_id", "eos_token_id"))
    assert not {"pad_token_id", "bos_token_id", "eos_token_id"} & set(make("llama").to_hf_config())


def test_gemma2_settings_under_their_config_names() -> None:
    config = make("gemma2", attn_softcap=50.0, final_softcap=30.0, query_pre_attn_scalar=256, layer_types=None)
    assert config.gemma2_settings() == {"attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
                                        "query_pre_attn_scalar": 256, "layer_types": None}
    typed = config.with_(layer_types=("sliding_attention",))
    assert typed.gemma2_settings()["layer_types"] == ["sliding_attention"]
    assert make("llama").gemma2_settings() == {}


def test_gemma2_metadata_writes_a_null_window_and_others_only_a_set_one() -> None:
    assert make("gemma2", sliding_window=None).to_metadata()["sliding_window"] is None
    assert "sliding_window" not in make("llama", sliding_window=None).to_metadata()
    assert make("mistral", sliding_window=3).to_metadata()["sliding_window"] == 3


@pytest.mark.parametrize(("family", "act"), [("gemma", "gelu_pytorch_tanh"), ("gemma2", "gelu_pytorch_tanh"),
                                             ("llama", "silu")])
def test_metadata_without_an_activation_takes_the_familys(family: str, act: str) -> None:
    meta = {"architecture": family, "vocab_size": 10, "hidden_size": 4, "num_layers": 2, "num_heads": 2,
            "num_kv_heads": 1, "intermediate_size": 6, "head_dim": 2}
    assert ModelConfig.from_metadata(meta).hidden_act == act


@pytest.mark.parametrize("key", ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"])
def test_a_gemma2_number_that_is_not_one_names_its_key_and_file(key: str) -> None:
    hf = {**HF_BASE, "model_type": "gemma2", "head_dim": 4, key: "fifty"}
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_hf_config(hf, path="cfg/config.json")
    assert (info.value.field, info.value.path) == (key, "cfg/config.json")
    assert info.value.message == f"{key} = 'fifty' is not a number"


@pytest.mark.parametrize(("layers", "expected"), [
    (1, ("sliding_attention",)),  # HF's default alternation starts with a sliding layer
    (3, ("sliding_attention", "full_attention", "sliding_attention")),
    (41, tuple("sliding_attention" if i % 2 == 0 else "full_attention" for i in range(41))),
])
def test_gemma2_layer_types_default_to_hfs_alternation(layers: int, expected: tuple) -> None:
    hf = {**HF_BASE, "model_type": "gemma2", "head_dim": 4, "num_hidden_layers": layers}
    assert ModelConfig.from_hf_config(hf).layer_types == expected
    meta = {"architecture": "gemma2", "vocab_size": 10, "hidden_size": 8, "num_layers": layers, "num_heads": 2,
            "num_kv_heads": 2, "intermediate_size": 6, "head_dim": 4}
    assert ModelConfig.from_metadata(meta).layer_types == expected


def test_gemma2_default_layer_types_stop_at_a_million_layers() -> None:
    """The default list is built up to 2**20 layers (a bound on a count read from a file), not past it."""
    settings = {"attn_logit_softcapping": None, "final_logit_softcapping": None, "query_pre_attn_scalar": None}
    at = config_module._gemma2_fields("gemma2", settings, 2**20, None)["layer_types"]
    assert len(at) == 2**20 and at[-1] == "full_attention"
    assert config_module._gemma2_fields("gemma2", settings, 2**20 + 1, None)["layer_types"] is None
    assert config_module._gemma2_fields("gemma2", settings, 0, None)["layer_types"] is None
    assert config_module._gemma2_fields("llama", settings, 4, None) == {}


def test_a_gemma2_metadata_number_that_is_not_one_names_the_file() -> None:
    meta = {"architecture": "gemma2", "vocab_size": 10, "hidden_size": 8, "num_layers": 1, "num_heads": 2,
            "num_kv_heads": 2, "intermediate_size": 6, "head_dim": 4, "attn_logit_softcapping": "fifty"}
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_metadata(meta, path="m.apr")
    assert (info.value.field, info.value.path) == ("attn_logit_softcapping", "m.apr")


@pytest.mark.parametrize("name", ["attn_softcap", "final_softcap", "query_pre_attn_scalar"])
def test_gemma2_numbers_on_another_family_or_not_positive_are_refused(name: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        make("llama", **{name: 30.0})
    assert (info.value.message, info.value.field) == (f"a llama model has no {name}", name)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ModelConfigError) as info:
            make("gemma2", **{name: bad})
        assert (info.value.message, info.value.field) == (f"{name} must be a positive number, got {bad!r}", name)
    assert getattr(make("gemma2", **{name: 0.5}), name) == 0.5  # any positive number, below 1 too
    # a None softcap is skipped, and the numbers after it are still checked
    with pytest.raises(ModelConfigError) as info:
        make("gemma2", attn_softcap=None, final_softcap=None, query_pre_attn_scalar=-2.0)
    assert info.value.field == "query_pre_attn_scalar"


def test_layer_types_on_another_family_are_refused() -> None:
    with pytest.raises(ModelConfigError) as info:
        make("llama", layer_types=("full_attention",))
    assert (info.value.message, info.value.field) == ("a llama model has no layer_types", "layer_types")


def test_a_wrong_layer_types_list_is_refused_naming_what_it_must_be() -> None:
    for bad in (("sliding_attention",), ("sliding_attention", "global"), ["sliding_attention", "full_attention"]):
        with pytest.raises(ModelConfigError) as info:
            make("gemma2", num_layers=2, layer_types=bad)
        assert (info.value.message, info.value.field) == (
            f"layer_types must list 2 of sliding_attention, full_attention, got {bad!r}", "layer_types")
    assert make("gemma2", num_layers=2, layer_types=("full_attention", "sliding_attention")).num_layers == 2


# --- the MLP activation by family ---------------------------------------------------------------

# the families whose runtime computes gemma's tanh GELU (Feature.GELU_TANH); silu every family computes
GELU_FAMILIES = {"gemma", "gemma2"}
ALL_FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3")


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_each_family_takes_silu_and_only_gemmas_take_the_tanh_gelu(family: str) -> None:
    assert config_module.activation_allowed(family, "silu")
    assert make(family, hidden_act="silu").hidden_act == "silu"
    gelu = family in GELU_FAMILIES
    assert config_module.activation_allowed(family, "gelu_pytorch_tanh") is gelu
    if gelu:
        assert make(family, hidden_act="gelu_pytorch_tanh").hidden_act == "gelu_pytorch_tanh"
    else:
        error = refusal("hidden_act", family=family, hidden_act="gelu_pytorch_tanh")
        assert error.message == f"a {family} model cannot use activation 'gelu_pytorch_tanh'"
        assert error.hint == "use silu"


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("act", ["relu", "gelu", "SILU", "", None, 1, ["silu"]])
def test_an_activation_the_runtime_lacks_is_refused_by_every_family(family: str, act) -> None:
    """Even by the gemmas, whose one extra activation must not become a default for any unknown name;
    a value that is not a string (an unhashable list too) is a config error, never a TypeError."""
    assert config_module.activation_allowed(family, act) is False
    error = refusal("hidden_act", family=family, hidden_act=act)
    assert error.message == f"a {family} model cannot use activation {act!r}"
    assert error.hint == ("use silu or gelu_pytorch_tanh" if family in GELU_FAMILIES else "use silu")
