"""The features an architecture module may honour, and the ones a config or metadata asks for.

A checkpoint's config (Hugging Face ``config.json``, or the same keys carried in APR metadata by
`apr import`) can ask for maths the runtime does not implement: a rope scaling type, a sliding
window shorter than the context, logit softcapping, another activation, biases. `requested_features`
reads those requests as data; `apr.arch.resolve` refuses every one the registry entry does not
honour, so nothing is silently ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class Feature(enum.Enum):
    """A piece of maths or layout beyond the plain pre-norm llama decoder."""

    TIED_EMBEDDINGS = "tied embeddings"
    QKV_BIAS = "q/k/v projection biases"
    QK_NORM = "per-head q/k RMSNorm"
    SLIDING_WINDOW = "sliding-window attention"
    SOFTCAPPING = "attention/logit softcapping"
    GELU_TANH = "GELU (tanh) MLP"
    NORM_PLUS_ONE = "RMSNorm scaled by (1 + weight)"
    SCALED_EMBEDDINGS = "embeddings scaled by sqrt(hidden_size)"
    FUSED_PROJECTIONS = "fused qkv_proj and gate_up_proj"
    SANDWICH_NORMS = "norms after attention and around the feed-forward (pre/post feed-forward norms)"
    ALTERNATING_WINDOW = "sliding-window and full-attention layers (layer_types)"
    QUERY_SCALAR = "query_pre_attn_scalar"


# Activations (config.json ``hidden_act``) the runtime computes, and the feature each needs
# (``None``: every module computes it). `activation_of` reads the one a config asks for.
ACTIVATIONS: dict[str, Feature | None] = {"silu": None, "gelu_pytorch_tanh": Feature.GELU_TANH}


# Keys of config.json that change the maths; `apr import` copies them into the APR metadata
# under the same names (apr.convert.hf_config), so a run is checked the same way as an import.
FLAG_KEYS: tuple[str, ...] = (
    "rope_scaling", "rope_parameters", "sliding_window", "use_sliding_window", "hidden_act",
    "hidden_activation", "attention_bias", "mlp_bias", "attn_logit_softcapping", "final_logit_softcapping",
    "query_pre_attn_scalar", "partial_rotary_factor", "layer_types", "use_bidirectional_attention",
)


def activation_of(settings: Mapping[str, Any], default: str = "silu") -> Any:
    """The MLP activation a config asks for: ``hidden_activation`` (transformers 4's Gemma key)
    over ``hidden_act``, else ``default`` (the family's).

    Example:
        >>> activation_of({"hidden_act": "gelu_pytorch_tanh"}), activation_of({}, "silu")
        ('gelu_pytorch_tanh', 'silu')
    """
    for key in ("hidden_activation", "hidden_act"):
        if settings.get(key) is not None:
            return settings[key]
    return default


def rope_scaling_type(settings: Mapping[str, Any]) -> str | None:
    """The rope scaling type a config asks for, ``None`` for plain RoPE (``"default"`` included).

    Example:
        >>> rope_scaling_type({"rope_scaling": {"type": "linear", "factor": 2.0}})
        'linear'
        >>> rope_scaling_type({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}}) is None
        True
    """
    for key in ("rope_scaling", "rope_parameters"):
        value = settings.get(key)
        if isinstance(value, dict):
            kind = value.get("rope_type", value.get("type"))
            if kind not in (None, "default"):
                return str(kind)
    return None


def active_sliding_window(settings: Mapping[str, Any]) -> int | None:
    """The sliding window a config asks for, or ``None`` when attention sees the whole context.

    A window is inactive when ``use_sliding_window`` is false (qwen2's switch), when it is null,
    or when it covers ``max_position_embeddings`` (then it never masks anything).
    """
    window = settings.get("sliding_window")
    if settings.get("use_sliding_window") is False or window is None:
        return None
    context = settings.get("max_position_embeddings")
    if isinstance(context, int) and isinstance(window, int) and not isinstance(window, bool) and window >= context:
        return None
    return window


def requested_features(settings: Mapping[str, Any]) -> tuple[dict[Feature, Any], list[str]]:
    """What a config (or APR metadata with the same keys) asks for.

    Returns:
        (features with their values, other requests no registry entry implements, in words).
    """
    features: dict[Feature, Any] = {}
    other: list[str] = []
    window = active_sliding_window(settings)
    if window is not None:
        features[Feature.SLIDING_WINDOW] = window
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if settings.get(key) is not None:
            features[Feature.SOFTCAPPING] = f"{key} = {settings.get(key)!r}"
    if settings.get("tie_word_embeddings") or settings.get("tied_embeddings"):
        features[Feature.TIED_EMBEDDINGS] = True
    kind = rope_scaling_type(settings)
    if kind is not None:
        other.append(f"rope scaling type {kind!r}")
    activation = activation_of(settings)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        other.append(f"hidden_act {activation!r} (the runtime implements {', '.join(ACTIVATIONS)})")
    elif (feature := ACTIVATIONS[activation]) is not None:
        features[feature] = activation
    if settings.get("mlp_bias"):
        other.append("mlp_bias")
    factor = settings.get("partial_rotary_factor")
    if factor not in (None, 1, 1.0):
        other.append(f"partial_rotary_factor {factor!r}")
    if settings.get("use_bidirectional_attention"):
        other.append("use_bidirectional_attention (the runtime is causal)")
    if settings.get("query_pre_attn_scalar") is not None:
        features[Feature.QUERY_SCALAR] = settings.get("query_pre_attn_scalar")
    types = settings.get("layer_types")
    if isinstance(types, list) and len(set(map(str, types))) > 1:
        features[Feature.ALTERNATING_WINDOW] = sorted(set(map(str, types)))
    return features, other


__all__ = ["ACTIVATIONS", "FLAG_KEYS", "Feature", "activation_of", "active_sliding_window", "requested_features", "rope_scaling_type"]
