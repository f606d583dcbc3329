"""apr/convert/hf_config.py key by key (issue 23): each expected value is derived from the config
dict the test writes (aprender §6.2 aliases and defaults), never read back from the output."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.arch.features import FLAG_KEYS
from apr.convert import hf_config as hc
from apr.errors import AprFileNotFoundError, ConvertError

RESAVE = "re-save the config with transformers' save_pretrained"
NEOX = ("qwen2", "qwen2.5", "qwen", "qwen3", "qwen3_5", "qwen3.5", "phi", "phi3", "phi4",
        "gpt-neox", "gpt_neox", "gptneox", "pythia")
# §6.2 alias table, written out independently of the module's constant
ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "n_embed", "d_model"),
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_kv_heads": ("num_key_value_heads",),
    "vocab_size": ("vocab_size",),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "n_ctx"),
    "rope_theta": ("rope_theta",),
    "rms_norm_eps": ("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps"),
    "head_dim": ("head_dim",),
    "num_experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "num_experts_per_tok": ("num_experts_per_tok", "num_experts_per_token"),
    "moe_intermediate_size": ("moe_intermediate_size",),
}
FLOAT_KEYS = {"rope_theta", "rms_norm_eps"}


def test_alias_table_is_the_documented_one():
    assert dict(hc.HF_CONFIG_ALIASES) == ALIASES
    assert [k for k, _ in hc.HF_CONFIG_ALIASES] == list(ALIASES)


# ---- parsing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("token", "value"), [("Infinity", 1e308), ("-Infinity", -1e308)])
def test_non_finite_literals_are_sanitised_like_aprender(token, value):
    document = hc.parse_config_text(f'{{"rope_theta": {token}, "x": [1, {token}]}}')
    assert document == {"rope_theta": value, "x": [1, value]}
    assert math.isfinite(document["rope_theta"])


def test_nan_is_read_as_null():
    assert hc.parse_config_text('{"rms_norm_eps": NaN}') == {"rms_norm_eps": None}


def test_valid_object_parses_as_data():
    text = json.dumps({"model_type": "llama", "hidden_size": 8, "nested": {"a": [1, 2.5, None]}})
    assert hc.parse_config_text(text, path="c.json") == json.loads(text)


def _refusal(text, path="m/config.json"):
    with pytest.raises(ConvertError) as info:
        hc.parse_config_text(text, path=path)
    return info.value


def test_not_json_names_line_and_column():
    err = _refusal('{\n  "a": 1,\n  oops}')
    assert (err.field, err.path, err.hint) == ("config.json", "m/config.json", RESAVE)
    assert "config.json is not valid JSON" in str(err)
    assert "(line 3, column 3)" in str(err)


def test_too_deep_nesting_is_refused():
    err = _refusal("[" * 200_000 + "]" * 200_000)
    assert (err.field, err.path, err.hint) == ("config.json", "m/config.json", RESAVE)
    assert err.message == "config.json nests too deeply to parse"


def test_integer_longer_than_python_allows_is_refused():
    err = _refusal('{"hidden_size": ' + "9" * 10_000 + "}")
    assert (err.field, err.path, err.hint) == ("config.json", "m/config.json", RESAVE)
    assert "refuses to parse" in str(err)


@pytest.mark.parametrize(("text", "words"), [("[1]", "an array"), ('"x"', "a string"), ("3", "an integer"),
                                             ("null", "null")])
def test_a_document_that_is_not_an_object_is_refused(text, words):
    err = _refusal(text)
    assert (err.field, err.path, err.hint) == ("config.json", "m/config.json", RESAVE)
    assert f"must hold a JSON object, not {words}" in str(err)


def test_a_lone_surrogate_is_refused_at_its_place():
    err = _refusal('{"a": {"b": ["ok", "\\ud800"]}}')
    assert err.field == "a.b[1]"
    assert err.path == "m/config.json"
    assert "at a.b[1]" in str(err)
    assert err.hint == "remove the unpaired surrogate escape"


def test_read_config_json_reads_a_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "qwen2", "t": Infinity}', encoding="utf-8")
    assert hc.read_config_json(path) == {"model_type": "qwen2", "t": 1e308}
    assert hc.read_config_json(str(path)) == {"model_type": "qwen2", "t": 1e308}


def test_read_config_json_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ConvertError) as info:
        hc.read_config_json(path)
    err = info.value
    assert (err.field, err.offset, err.path, err.hint) == ("config.json", 7, str(path), RESAVE)
    assert "not UTF-8 (byte 7)" in str(err)


def test_read_config_json_passes_the_path_to_the_parser(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[]")
    with pytest.raises(ConvertError) as info:
        hc.read_config_json(path)
    assert info.value.path == str(path)


def test_read_config_json_missing_file(tmp_path):
    with pytest.raises(AprFileNotFoundError):
        hc.read_config_json(tmp_path / "config.json")


def test_read_config_json_size_limit_is_16_mib(tmp_path):
    path = tmp_path / "config.json"
    body = b'{"a": "' + b"x" * (16 * 1024 * 1024 - 9) + b'"}'
    path.write_bytes(body)  # exactly 16 MiB
    assert len(body) == 16 * 1024 * 1024
    assert hc.read_config_json(path)["a"].startswith("xxx")
    path.write_bytes(body[:-2] + b'x"}')  # one byte over
    with pytest.raises(ConvertError, match="over the 16777216-byte limit"):
        hc.read_config_json(path)


# ---- identity -------------------------------------------------------------------------------------

@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.one_of(st.text(), st.integers(), st.none()))))
@example(["Qwen2ForCausalLM", "X"])
@example([])
@example([3, "LlamaForCausalLM"])
@example("LlamaForCausalLM")
@example(("LlamaForCausalLM",))
def test_hf_architecture_is_the_first_list_entry_when_a_string(architectures):
    expected = (architectures[0] if isinstance(architectures, list) and architectures
                and isinstance(architectures[0], str) else None)
    assert hc.hf_architecture_from_config({"architectures": architectures}) == expected


def test_hf_architecture_absent_key():
    assert hc.hf_architecture_from_config({"model_type": "llama"}) is None


@pytest.mark.parametrize(("family", "cls"), [
    ("qwen2", "Qwen2ForCausalLM"), ("qwen2.5", "Qwen2ForCausalLM"), ("qwen", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"), ("qwen3_5", "Qwen3ForCausalLM"), ("qwen3.5", "Qwen3ForCausalLM"),
    ("llama", "LlamaForCausalLM"), ("mistral", "MistralForCausalLM"), ("phi", "PhiForCausalLM"),
    ("phi3", "Phi3ForCausalLM"), ("phi4", "Phi4ForCausalLM"), ("gemma", "GemmaForCausalLM"),
    ("gemma2", "Gemma2ForCausalLM"),
    ("falcon", "FalconForCausalLM"), ("f", "FForCausalLM"), ("gpt2", "Gpt2ForCausalLM"),
    ("starCoder", "StarCoderForCausalLM"), ("", "ForCausalLM"),
])
def test_synthesized_class_names(family, cls):
    assert hc.synthesize_hf_architecture_from_family(family) == cls


@pytest.mark.parametrize("model_type", NEOX)
def test_neox_rope_families(model_type):
    assert hc.rope_type_for(model_type) == 2


@pytest.mark.parametrize("model_type", [None, "llama", "mistral", "gemma", "Qwen2", "qwen4", "phi2", "gpt2", ""])
def test_normal_rope_near_misses(model_type):
    assert hc.rope_type_for(model_type) == 0


# ---- numbers --------------------------------------------------------------------------------------

def _number_error(config):
    with pytest.raises(ConvertError) as info:
        hc.metadata_from_hf_config(config)
    return info.value


def _fix(key):
    return f"set {key} in config.json to the value the model was trained with (it must match the weights)"


@pytest.mark.parametrize("value", ["8", [8], {"a": 8}, True, False])
def test_a_dimension_that_is_not_a_number_is_refused(value):
    err = _number_error({"n_embd": value})
    assert err.field == "n_embd"
    assert err.hint == _fix("n_embd")
    assert "config.json 'n_embd' is not a number" in str(err)


def test_a_float_key_that_is_not_a_number_is_refused():
    err = _number_error({"rope_theta": "1e4"})
    assert (err.field, err.hint) == ("rope_theta", _fix("rope_theta"))
    assert "a string ('1e4')" in str(err)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("key", ["hidden_size", "rms_norm_eps"])
def test_non_finite_numbers_are_refused(key, value):
    err = _number_error({key: value})
    assert (err.field, err.hint) == (key, _fix(key))
    assert "is not a finite number" in str(err)


def test_a_fractional_integer_dimension_is_refused():
    err = _number_error({"num_hidden_layers": 2.5})
    assert (err.field, err.hint) == ("num_hidden_layers", _fix("num_hidden_layers"))
    assert "= 2.5 is not an integer" in str(err)


@pytest.mark.parametrize("value", [-1, 2**63, 2**63 + 1, -1.0, float(2**63), 10**30])
def test_integer_dimensions_outside_0_to_2_63_are_refused(value):
    err = _number_error({"vocab_size": value})
    assert (err.field, err.hint) == ("vocab_size", _fix("vocab_size"))
    assert "is out of range (0 … 2^63-1)" in str(err)


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 0.0, 7.0])
def test_integer_dimensions_inside_the_range_are_ints(value):
    out = hc.metadata_from_hf_config({"vocab_size": value})
    assert out["vocab_size"] == int(value)
    assert type(out["vocab_size"]) is int


def test_a_float_key_too_large_for_a_float_is_refused():
    err = _number_error({"rope_theta": 10**400})
    assert (err.field, err.hint) == ("rope_theta", _fix("rope_theta"))
    assert "too large for a float" in str(err)


def test_float_keys_are_floats():
    out = hc.metadata_from_hf_config({"rope_theta": 500000, "layer_norm_epsilon": 1})
    assert out["rope_theta"] == 500000.0 and type(out["rope_theta"]) is float
    assert out["rms_norm_eps"] == 1.0 and type(out["rms_norm_eps"]) is float


def test_rope_parameters_theta_error_names_the_nested_key():
    err = _number_error({"rope_parameters": {"rope_theta": "big"}})
    assert err.field == "rope_parameters.rope_theta"
    assert err.hint == _fix("rope_parameters.rope_theta")


# ---- metadata key by key --------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(ALIASES))
def test_every_alias_reads_its_key_and_the_first_present_wins(key):
    aliases = ALIASES[key]
    for position, alias in enumerate(aliases):
        config = {a: 7 + i for i, a in enumerate(aliases) if i >= position}
        config[aliases[0]] = None if position else config[aliases[0]]  # earlier aliases null: skipped
        out = hc.metadata_from_hf_config(config)
        assert out[key] == 7 + position, (key, alias)
        assert hc.config_key_for(config, key) == alias


def test_a_full_llama_config_key_by_key():
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320,
        "intermediate_size": 128, "max_position_embeddings": 256, "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5, "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
        "torch_dtype": "float32", "tie_word_embeddings": True,
    }
    assert hc.metadata_from_hf_config(config) == {
        "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 320,
        "intermediate_size": 128, "max_position_embeddings": 256, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
        "head_dim": 16, "architecture": "llama", "hf_model_type": "llama", "model_type": "llama",
        "hf_architecture": "LlamaForCausalLM", "rope_type": 0,
        "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
    }
    out = hc.metadata_from_hf_config(config)
    assert {k for k, v in out.items() if type(v) is int} == {
        "hidden_size", "num_layers", "num_heads", "num_kv_heads", "vocab_size", "intermediate_size",
        "max_position_embeddings", "head_dim", "rope_type"}


def test_defaults_of_an_almost_empty_config():
    assert hc.metadata_from_hf_config({}) == {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "rope_type": 0}


def test_defaults_derived_from_hidden_and_heads():
    out = hc.metadata_from_hf_config({"model_type": "qwen2", "hidden_size": 48, "num_attention_heads": 6})
    assert out["num_kv_heads"] == 6
    assert out["intermediate_size"] == 4 * 48
    assert out["head_dim"] == 8 and type(out["head_dim"]) is int
    assert out["rope_type"] == 2
    assert "hf_architecture" not in out


def test_stated_values_beat_defaults():
    out = hc.metadata_from_hf_config({"hidden_size": 48, "num_attention_heads": 6, "num_key_value_heads": 2,
                                      "intermediate_size": 100, "head_dim": 5, "model_type": "qwen3"})
    assert (out["num_kv_heads"], out["intermediate_size"], out["head_dim"]) == (2, 100, 5)


def test_qwen3_head_dim_default_is_128_whatever_hidden():
    out = hc.metadata_from_hf_config({"model_type": "qwen3", "hidden_size": 48, "num_attention_heads": 6})
    assert out["head_dim"] == 128


@pytest.mark.parametrize(("config", "head_dim"), [
    ({"hidden_size": 50, "num_attention_heads": 6}, None),  # not divisible: no head_dim
    ({"hidden_size": 48, "num_attention_heads": 0}, None),  # zero heads: no division
    ({"hidden_size": 48}, None),
    ({"num_attention_heads": 6}, None),
    ({"model_type": "qwen3", "num_attention_heads": 6}, None),  # qwen3 without hidden: none
    ({"model_type": "qwen3", "hidden_size": 48, "num_attention_heads": 0}, None),
    ({"hidden_size": 48, "num_attention_heads": 48}, 1),
    ({"hidden_size": 48, "num_attention_heads": 1}, 48),
])
def test_head_dim_derivation_edges(config, head_dim):
    out = hc.metadata_from_hf_config(config)
    assert out.get("head_dim") == head_dim


def test_intermediate_default_needs_hidden_and_kv_default_needs_heads():
    out = hc.metadata_from_hf_config({"num_hidden_layers": 3})
    assert "intermediate_size" not in out and "num_kv_heads" not in out


@pytest.mark.parametrize("model_type", [5, None, ["llama"]])
def test_a_model_type_that_is_not_a_string_is_dropped(model_type):
    out = hc.metadata_from_hf_config({"model_type": model_type, "hidden_size": 48, "num_attention_heads": 6})
    assert not {"architecture", "hf_model_type", "model_type"} & set(out)
    assert out["rope_type"] == 0
    assert out["head_dim"] == 8


def test_rope_parameters_theta_is_read_when_rope_theta_is_absent():
    rope = {"rope_type": "default", "rope_theta": 1000000}
    out = hc.metadata_from_hf_config({"rope_parameters": rope})
    assert out["rope_theta"] == 1000000.0 and type(out["rope_theta"]) is float
    assert out["rope_parameters"] == rope
    assert hc.config_key_for({"rope_parameters": rope}, "rope_theta") == "rope_parameters.rope_theta"


def test_top_level_rope_theta_beats_rope_parameters():
    config = {"rope_theta": 5.0, "rope_parameters": {"rope_theta": 7.0}}
    assert hc.metadata_from_hf_config(config)["rope_theta"] == 5.0
    assert hc.config_key_for(config, "rope_theta") == "rope_theta"


@pytest.mark.parametrize("rope", [{"rope_theta": None}, {"type": "linear"}, [1e6], "1e6"])
def test_rope_parameters_without_a_theta_leave_the_default(rope):
    assert hc.metadata_from_hf_config({"rope_parameters": rope})["rope_theta"] == 10000.0


def test_rope_parameters_note_only_for_rope_theta():
    config = {"rope_parameters": {"rope_theta": 7.0}}
    assert hc.config_key_for(config, "hidden_size") == "hidden_size (not in config.json: a default)"
    assert hc.config_key_for({"rope_parameters": [1]}, "rope_theta") == "rope_theta (not in config.json: a default)"


def test_config_key_for_unknown_key_and_null_values():
    assert hc.config_key_for({"foo": 1}, "foo") == "foo (not in config.json: a default)"
    assert hc.config_key_for({"num_key_value_heads": None}, "num_kv_heads") == \
        "num_kv_heads (not in config.json: a default)"
    # an alias of another metadata key does not count
    assert hc.config_key_for({"n_embd": 8}, "num_layers") == "num_layers (not in config.json: a default)"


@pytest.mark.parametrize("key", FLAG_KEYS)
def test_flag_keys_are_kept_as_given_and_nulls_dropped(key):
    value = {"marker": key}
    assert hc.metadata_from_hf_config({key: value})[key] == value
    assert key not in hc.metadata_from_hf_config({key: None})


def test_unknown_keys_are_not_copied():
    out = hc.metadata_from_hf_config({"torch_dtype": "bfloat16", "use_cache": True, "bos_token_id": 1})
    assert not {"torch_dtype", "use_cache", "bos_token_id"} & set(out)
