"""ModelConfig: Hugging Face config.json semantics in, APR metadata identity out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, ModelConfigError
from apr.train.config import ModelConfig

from train_fixtures import TINY_CONFIG


def test_from_hf_config_reads_tiny_qwen2() -> None:
    config = ModelConfig.from_hf_config(TINY_CONFIG)
    assert (config.family, config.head_dim, config.num_kv_heads, config.tie_word_embeddings) == ("qwen2", 16, 2, True)
    assert config.qkv_bias and not config.qk_norm


def test_family_defaults_follow_hugging_face() -> None:
    base = {k: v for k, v in TINY_CONFIG.items() if k not in ("rope_theta", "tie_word_embeddings", "head_dim")}
    qwen3 = ModelConfig.from_hf_config({**base, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]})
    assert qwen3.head_dim == 128 and qwen3.qk_norm  # Qwen3Config's default head_dim
    llama = ModelConfig.from_hf_config({**base, "model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    assert llama.tie_word_embeddings is False and llama.max_position_embeddings == 256


def test_transformers_5_rope_parameters() -> None:
    document = {**TINY_CONFIG, "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}
    document.pop("rope_theta")
    assert ModelConfig.from_hf_config(document).rope_theta == 1e6


@pytest.mark.parametrize("extra", [
    {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
    {"use_sliding_window": True},
    {"hidden_act": "gelu"},
    {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "attention_bias": True},
    {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "mlp_bias": True},
])
def test_unsupported_features_are_refused_by_name(extra: dict) -> None:
    with pytest.raises(ModelConfigError, match="does not implement"):
        ModelConfig.from_hf_config({**TINY_CONFIG, **extra})


def test_unknown_family_and_missing_field() -> None:
    with pytest.raises(ModelConfigError, match="does not implement architecture 'gpt2'"):
        ModelConfig.from_hf_config({**TINY_CONFIG, "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    document = dict(TINY_CONFIG)
    document.pop("intermediate_size")
    with pytest.raises(ModelConfigError, match="intermediate_size") as info:
        ModelConfig.from_hf_config(document)
    assert info.value.field == "intermediate_size"


def test_heads_must_group() -> None:
    with pytest.raises(ModelConfigError, match="multiple of num_kv_heads"):
        ModelConfig.from_hf_config({**TINY_CONFIG, "num_key_value_heads": 3})


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError):
        ModelConfig.from_config_file(tmp_path / "missing.json")
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ModelConfigError, match="not valid JSON"):
        ModelConfig.from_config_file(tmp_path)


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_metadata_round_trip(family: str) -> None:
    config = ModelConfig(family=family, vocab_size=300, hidden_size=48, num_layers=3, num_heads=6, num_kv_heads=2,
                         intermediate_size=96, head_dim=8, rope_theta=5e5, tie_word_embeddings=family != "llama")
    metadata = json.loads(json.dumps(config.to_metadata()))
    assert metadata["architecture"] == family and metadata["hf_architecture"] == config.hf_architecture
    back = ModelConfig.from_metadata(metadata, config.parameter_shapes())
    assert back == config
    assert metadata["param_count"] == config.param_count


def test_hf_config_round_trip() -> None:
    config = ModelConfig.from_hf_config(TINY_CONFIG)
    assert ModelConfig.from_hf_config(config.to_hf_config()) == config
