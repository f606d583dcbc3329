"""A Hugging Face ``config.json`` as APR metadata (docs/aprender-format.md §6.2, contract
apr-convert-hf-arch-v1).

The aliases and defaults are aprender's ``load_model_config_from_json``. The identity rule is
P0-K: ``hf_architecture`` is ``architectures[0]`` when that is a string in a non-empty list and is
otherwise absent — never invented from the family (INV-CONVERT-HF-ARCH-002). Only the GGUF path,
which has no ``architectures``, synthesizes a class name (`synthesize_hf_architecture_from_family`,
INV-CONVERT-HF-ARCH-004).

The file is parsed as data: JSON only, bounded in size, ``Infinity``/``NaN`` literals mapped as
aprender's sanitiser maps them, nothing evaluated.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apr.convert.hf_side_files import json_type, lone_surrogate, shown
from apr.errors import ConvertError
from apr.format.inputs import read_regular

_MAX_CONFIG_BYTES = 16 * 1024 * 1024

# model_type values whose RoPE is NEOX-style (split halves): rope_type 2; others 0 (§6.2).
_NEOX_MODEL_TYPES = frozenset({
    "qwen2", "qwen2.5", "qwen", "qwen3", "qwen3_5", "qwen3.5", "phi", "phi3", "phi4",
    "gpt-neox", "gpt_neox", "gptneox", "pythia",
})

# §6.2 synthesize_hf_architecture_from_family: explicit entries, else Cap(family) + "ForCausalLM".
_SYNTHESIZED_CLASS: dict[str, str] = {
    "qwen2": "Qwen2ForCausalLM", "qwen2.5": "Qwen2ForCausalLM", "qwen": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM", "qwen3_5": "Qwen3ForCausalLM", "qwen3.5": "Qwen3ForCausalLM",
    "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
    "phi": "PhiForCausalLM", "phi3": "Phi3ForCausalLM", "phi4": "Phi4ForCausalLM",
    "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
}

# (metadata key, config.json keys tried in order) — first present wins (§6.2).
_ALIASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hidden_size", ("hidden_size", "n_embd", "n_embed", "d_model")),
    ("num_layers", ("num_hidden_layers", "n_layer", "num_layers")),
    ("num_heads", ("num_attention_heads", "n_head", "num_heads")),
    ("num_kv_heads", ("num_key_value_heads",)),
    ("vocab_size", ("vocab_size",)),
    ("intermediate_size", ("intermediate_size", "n_inner", "ffn_dim")),
    ("max_position_embeddings", ("max_position_embeddings", "n_positions", "n_ctx")),
    ("rope_theta", ("rope_theta",)),
    ("rms_norm_eps", ("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps")),
    ("head_dim", ("head_dim",)),
    ("num_experts", ("num_local_experts", "num_experts", "n_routed_experts")),
    ("num_experts_per_tok", ("num_experts_per_tok", "num_experts_per_token")),
    ("moe_intermediate_size", ("moe_intermediate_size",)),
)
HF_CONFIG_ALIASES = _ALIASES  # public: apr.arch.config_keys joins it with the GGUF keys
_INT_KEYS = frozenset({
    "hidden_size", "num_layers", "num_heads", "num_kv_heads", "vocab_size", "intermediate_size",
    "max_position_embeddings", "head_dim", "num_experts", "num_experts_per_tok", "moe_intermediate_size",
})


def _constant(token: str) -> float | None:
    """aprender's sanitiser: ``-Infinity`` → -1e308, ``Infinity`` → 1e308, ``NaN`` → null."""
    return {"-Infinity": -1e308, "Infinity": 1e308}.get(token)


def parse_config_text(text: str, *, path: str | None = None) -> dict[str, Any]:
    """Parse config.json text into a dict (no evaluation; non-finite literals sanitised).

    Raises:
        ConvertError: not JSON, or not a JSON object.
    """
    try:
        document = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as err:
        raise ConvertError(
            f"config.json is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
            path=path, field="config.json", hint="re-save the config with transformers' save_pretrained",
        ) from err
    except RecursionError:
        raise ConvertError("config.json nests too deeply to parse", path=path, field="config.json",
                           hint="re-save the config with transformers' save_pretrained") from None
    except ValueError as err:  # e.g. an integer longer than sys.int_max_str_digits
        raise ConvertError(f"config.json holds a value Python refuses to parse: {err}", path=path,
                           field="config.json", hint="re-save the config with transformers' save_pretrained") from None
    if not isinstance(document, dict):
        raise ConvertError(f"config.json must hold a JSON object, not {json_type(document)}", path=path,
                           field="config.json", hint="re-save the config with transformers' save_pretrained")
    where = lone_surrogate(document)
    if where is not None:
        raise ConvertError(f"config.json holds text that is not valid Unicode (an unpaired \\ud800-\\udfff escape) "
                           f"at {where}", path=path, field=where, hint="remove the unpaired surrogate escape")
    return document


def read_config_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse a config.json file: a regular file (never a FIFO or device), bounded in size.

    Raises:
        ConvertError: not a regular file, too large, not UTF-8, not JSON, not an object.
        AprFileNotFoundError: the file does not exist.
    """
    file = Path(path)
    data = read_regular(file, limit=_MAX_CONFIG_BYTES, error=ConvertError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConvertError(f"config.json is not UTF-8 (byte {err.start})", path=file, field="config.json",
                           offset=err.start, hint="re-save the config with transformers' save_pretrained") from None
    return parse_config_text(text, path=os.fspath(file))


def hf_architecture_from_config(config: Mapping[str, Any]) -> str | None:
    """EQ-CONVERT-HF-ARCH-001: ``architectures[0]`` if it is a string in a non-empty list, else None.

    Example:
        >>> hf_architecture_from_config({"architectures": ["Qwen2ForCausalLM", "Qwen2ForSequenceClassification"]})
        'Qwen2ForCausalLM'
        >>> hf_architecture_from_config({"model_type": "qwen2"}) is None
        True
    """
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        return architectures[0]
    return None


def synthesize_hf_architecture_from_family(family: str) -> str:
    """EQ-CONVERT-HF-ARCH-002, for GGUF sources only: the canonical HF class of a family slug.

    Example:
        >>> synthesize_hf_architecture_from_family("falcon")
        'FalconForCausalLM'
    """
    if family in _SYNTHESIZED_CLASS:
        return _SYNTHESIZED_CLASS[family]
    return family[:1].upper() + family[1:] + "ForCausalLM"  # "" gives "ForCausalLM"


def rope_type_for(model_type: str | None) -> int:
    """2 (NEOX, split halves) for the qwen/phi/neox families, else 0 (§6.2)."""
    return 2 if model_type in _NEOX_MODEL_TYPES else 0


def _type_words(value: Any) -> str:
    return f"{json_type(value)} ({shown(value)})"


def _number(key: str, value: Any, *, want_int: bool) -> int | float:
    """``value`` (never None: callers skip null keys) as an int or a float, else a ConvertError."""
    fix = f"set {key} in config.json to the value the model was trained with (it must match the weights)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConvertError(f"config.json {key!r} is not a number: it is {_type_words(value)}", field=key, hint=fix)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConvertError(f"config.json {key!r} = {value!r} is not a finite number", field=key, hint=fix)
    if want_int:
        if isinstance(value, float) and not value.is_integer():
            raise ConvertError(f"config.json {key!r} = {value!r} is not an integer", field=key, hint=fix)
        if not 0 <= int(value) < 2**63:
            raise ConvertError(f"config.json {key!r} = {value!r} is out of range (0 … 2^63-1)", field=key, hint=fix)
        return int(value)
    try:
        return float(value)
    except OverflowError:
        raise ConvertError(f"config.json {key!r} is too large for a float", field=key, hint=fix) from None


def config_key_for(config: Mapping[str, Any], key: str) -> str:
    """The config.json key a metadata ``key`` was read from, or a note that it is a default.

    Example:
        >>> config_key_for({"n_layer": 2}, "num_layers")
        'n_layer'
        >>> config_key_for({}, "intermediate_size")
        'intermediate_size (not in config.json: a default)'
    """
    for name, aliases in _ALIASES:
        if name == key:
            for alias in aliases:
                if config.get(alias) is not None:
                    return alias
    if key == "rope_theta" and isinstance(config.get("rope_parameters"), dict):
        return "rope_parameters.rope_theta"
    return f"{key} (not in config.json: a default)"


def metadata_from_hf_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The APR metadata fields a config.json stands for (§6.2).

    ``architecture`` and ``hf_model_type`` are ``model_type``; ``hf_architecture`` is
    `hf_architecture_from_config` (absent when the config has no usable ``architectures``).
    Defaults: ``num_kv_heads`` = ``num_heads``, ``intermediate_size`` = 4 × hidden,
    ``rope_theta`` = 10000 (or transformers 5's ``rope_parameters.rope_theta``),
    ``rms_norm_eps`` = 1e-6; ``head_dim`` = hidden / heads when absent (Qwen3Config: 128).

    Raises:
        ConvertError: a dimension is not a number (naming the key and the value's type).
    """
    out: dict[str, Any] = {}
    for key, aliases in _ALIASES:
        for alias in aliases:
            if alias in config and config[alias] is not None:
                out[key] = _number(alias, config[alias], want_int=key in _INT_KEYS)
                break
    rope = config.get("rope_parameters")
    if "rope_theta" not in out and isinstance(rope, dict) and rope.get("rope_theta") is not None:
        out["rope_theta"] = _number("rope_parameters.rope_theta", rope["rope_theta"], want_int=False)
    out.setdefault("rope_theta", 10000.0)
    out.setdefault("rms_norm_eps", 1e-6)
    if "num_heads" in out:
        out.setdefault("num_kv_heads", out["num_heads"])
    if "hidden_size" in out:
        out.setdefault("intermediate_size", 4 * out["hidden_size"])
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    if "head_dim" not in out and "hidden_size" in out and out.get("num_heads"):
        if model_type == "qwen3":
            out["head_dim"] = 128  # Qwen3Config's default, independent of hidden_size
        elif out["hidden_size"] % out["num_heads"] == 0:
            out["head_dim"] = out["hidden_size"] // out["num_heads"]
    if model_type is not None:
        out["architecture"] = model_type
        out["hf_model_type"] = model_type
        out["model_type"] = model_type
    hf_architecture = hf_architecture_from_config(config)
    if hf_architecture is not None:
        out["hf_architecture"] = hf_architecture
    out["rope_type"] = rope_type_for(model_type)
    from apr.arch.features import FLAG_KEYS  # keys that change the maths: kept so run/export can refuse them

    for key in FLAG_KEYS:
        if config.get(key) is not None and key not in out:
            out[key] = config[key]
    return out


__all__ = [
    "HF_CONFIG_ALIASES",
    "config_key_for",
    "hf_architecture_from_config",
    "metadata_from_hf_config",
    "parse_config_text",
    "read_config_json",
    "rope_type_for",
    "synthesize_hf_architecture_from_family",
]
