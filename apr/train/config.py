"""The shape of a decoder-only model (llama, mistral, qwen2, qwen3, gemma, gemma2, phi3) as one frozen record.

Built from a Hugging Face ``config.json`` (with Hugging Face's defaults and spellings, including
transformers 5's ``rope_parameters``) or from APR metadata (docs/aprender-format.md §1.8), and
written back as either. The family is a registry entry (`apr.arch`); unsupported features (rope
scaling, a sliding window the family does not implement, MLP or o_proj biases) are refused by name
rather than silently ignored: a model that trains differently from its Hugging Face twin is worse
than no model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from apr.arch import IMPLEMENTED, REGISTRY, Feature, require_architecture, spec_from_metadata
from apr.arch.features import ACTIVATIONS, active_sliding_window, activation_of
from apr.errors import AprFileNotFoundError, AprIOError, ModelConfigError

SUPPORTED_FAMILIES: tuple[str, ...] = IMPLEMENTED

# Hugging Face defaults that differ per family (LlamaConfig, Qwen2Config, Qwen3Config).
_HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 2048},
    "qwen2": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768},
    "qwen3": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768, "head_dim": 128},
    "mistral": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096 * 32},
    "gemma": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 8192, "head_dim": 256,
              "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": True},
    "phi3": {"rope_theta": 10000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 4096},
    "gemma2": {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 8192, "head_dim": 256,
               "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": True, "sliding_window": 4096,
               "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0},
}
LAYER_TYPES: tuple[str, ...] = ("sliding_attention", "full_attention")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything that fixes a model's parameter shapes and forward pass.

    ``family`` decides the two structural differences: qwen2 has biases on q/k/v (not on o),
    qwen3 has RMSNorm on each head of q and k before RoPE. ``head_dim`` is explicit because qwen3
    decouples it from ``hidden_size // num_heads``.
    """

    family: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02  # std of the normal init, as Hugging Face's _init_weights
    sliding_window: int | None = None  # mistral: each query sees itself and the window - 1 keys before it
    hidden_act: str = "silu"  # the MLP's activation: gemma's is gelu_pytorch_tanh
    # gemma2: logits squashed as cap * tanh(z / cap), 1 / sqrt(query_pre_attn_scalar) attention scale,
    # and which layers use the sliding window (None: all of them, when there is one)
    attn_softcap: float | None = None
    final_softcap: float | None = None
    query_pre_attn_scalar: float | None = None
    layer_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.family not in SUPPORTED_FAMILIES:
            raise ModelConfigError(
                f"model family {self.family!r} is not one the trainer builds", field="architecture",
                hint=f"use one of {', '.join(SUPPORTED_FAMILIES)}",
            )
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "intermediate_size", "head_dim", "max_position_embeddings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelConfigError(f"{name} must be a positive integer, got {value!r}", field=name)
        if self.num_heads % self.num_kv_heads:
            raise ModelConfigError(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}",
                field="num_kv_heads", hint="grouped-query attention needs whole groups of query heads",
            )
        if self.head_dim % 2:
            raise ModelConfigError(f"head_dim {self.head_dim} must be even for RoPE", field="head_dim")
        for name in ("rope_theta", "rms_norm_eps"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value > 0):
                raise ModelConfigError(f"{name} must be a positive number, got {value!r}", field=name)
        if not (_is_real(self.initializer_range) and math.isfinite(self.initializer_range)
                and self.initializer_range >= 0):
            raise ModelConfigError(f"initializer_range must be a finite number >= 0, got {self.initializer_range!r}",
                                   field="initializer_range")
        if not activation_allowed(self.family, self.hidden_act):
            allowed = [name for name in ACTIVATIONS if activation_allowed(self.family, name)]
            raise ModelConfigError(f"a {self.family} model cannot use activation {self.hidden_act!r}",
                                   field="hidden_act", hint=f"use {' or '.join(allowed)}")
        _check_gemma2_fields(self)
        if self.sliding_window is not None:
            if not REGISTRY[self.family].honours(Feature.SLIDING_WINDOW):
                raise ModelConfigError(f"a {self.family} model has no sliding window (got {self.sliding_window!r})",
                                       field="sliding_window", hint="use family mistral, or drop sliding_window")
            if isinstance(self.sliding_window, bool) or not isinstance(self.sliding_window, int) \
                    or self.sliding_window <= 0:
                raise ModelConfigError(f"sliding_window must be a positive integer, got {self.sliding_window!r}",
                                       field="sliding_window")

    # --- identity -------------------------------------------------------------------------------

    @property
    def qkv_bias(self) -> bool:
        """qwen2 puts biases on q/k/v (and not on o_proj)."""
        return REGISTRY[self.family].honours(Feature.QKV_BIAS)

    @property
    def qk_norm(self) -> bool:
        """qwen3 normalises each query and key head (RMSNorm over head_dim) before RoPE."""
        return REGISTRY[self.family].honours(Feature.QK_NORM)

    @property
    def norm_plus_one(self) -> bool:
        """gemma: every RMSNorm scales by (1 + weight), its weights centred on zero."""
        return REGISTRY[self.family].honours(Feature.NORM_PLUS_ONE)

    @property
    def fused_projections(self) -> bool:
        """phi3: one ``qkv_proj`` (rows q | k | v) and one ``gate_up_proj`` (rows gate | up)."""
        return REGISTRY[self.family].honours(Feature.FUSED_PROJECTIONS)

    @property
    def sandwich_norms(self) -> bool:
        """gemma2: a norm on the attention output and norms before and after the MLP."""
        return REGISTRY[self.family].honours(Feature.SANDWICH_NORMS)

    def window_for(self, layer: int) -> int | None:
        """The sliding window of layer ``layer`` (gemma2 alternates; the others use one for all)."""
        if self.layer_types is not None and self.layer_types[layer] != "sliding_attention":
            return None
        return self.sliding_window

    @property
    def embed_scale(self) -> float | None:
        """gemma multiplies the embeddings by sqrt(hidden_size); ``None`` for the others."""
        return embedding_scale(self)

    @property
    def hf_architecture(self) -> str:
        return REGISTRY[self.family].hf_class

    @property
    def hf_model_type(self) -> str:
        return REGISTRY[self.family].model_type

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Hugging Face tensor name -> shape, for every tensor a checkpoint of this model holds.

        ``lm_head.weight`` is absent when the head is tied to the embedding (as HF saves it).
        """
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        q = self.num_heads * self.head_dim
        shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (self.vocab_size, h)}
        for i in range(self.num_layers):
            p = f"model.layers.{i}."
            shapes[p + "input_layernorm.weight"] = (h,)
            if self.fused_projections:
                shapes[p + "self_attn.qkv_proj.weight"] = (q + 2 * kv, h)
            else:
                shapes[p + "self_attn.q_proj.weight"] = (q, h)
                shapes[p + "self_attn.k_proj.weight"] = (kv, h)
                shapes[p + "self_attn.v_proj.weight"] = (kv, h)
            if self.qkv_bias:
                shapes[p + "self_attn.q_proj.bias"] = (q,)
                shapes[p + "self_attn.k_proj.bias"] = (kv,)
                shapes[p + "self_attn.v_proj.bias"] = (kv,)
            if self.qk_norm:
                shapes[p + "self_attn.q_norm.weight"] = (self.head_dim,)
                shapes[p + "self_attn.k_norm.weight"] = (self.head_dim,)
            shapes[p + "self_attn.o_proj.weight"] = (h, q)
            shapes[p + "post_attention_layernorm.weight"] = (h,)
            if self.sandwich_norms:
                shapes[p + "pre_feedforward_layernorm.weight"] = (h,)
                shapes[p + "post_feedforward_layernorm.weight"] = (h,)
            if self.fused_projections:
                shapes[p + "mlp.gate_up_proj.weight"] = (2 * self.intermediate_size, h)
            else:
                shapes[p + "mlp.gate_proj.weight"] = (self.intermediate_size, h)
                shapes[p + "mlp.up_proj.weight"] = (self.intermediate_size, h)
            shapes[p + "mlp.down_proj.weight"] = (h, self.intermediate_size)
        shapes["model.norm.weight"] = (h,)
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, h)
        return shapes

    @property
    def param_count(self) -> int:
        """Exact number of parameters (a tied head counted once): `parameter_shapes` in closed form.

        Arithmetic only, so it costs the same for ``num_layers`` 2 or 2**63: the bounds checks
        (`apr.train.bounds`) call it on untrusted shapes before anything is enumerated or built.
        """
        return parameter_count(self)

    # --- Hugging Face config.json --------------------------------------------------------------

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], *, path: str | None = None) -> ModelConfig:
        """Read a Hugging Face ``config.json`` document with that family's defaults.

        Raises:
            ModelConfigError: unknown family, a missing dimension, or an unsupported feature.
        """
        return _from_hf_config(cls, config, path)

    @classmethod
    def from_config_file(cls, path: str | os.PathLike[str]) -> ModelConfig:
        """`from_hf_config` on a file (or on ``DIR/config.json``): the shape of a from-scratch run.

        A config has no tensors to check its dimensions against, so the shape must also pass the
        trainer's stated ceiling (`apr.train.bounds.check_config_ceiling`) before anything is built.

        Raises:
            AprFileNotFoundError: no such file.
            AprIOError: the file cannot be read.
            ModelConfigError: not a JSON object of a supported model, or a model past the ceiling.
        """
        return _from_config_file(cls, path)

    def to_hf_config(self) -> dict[str, Any]:
        """The ``config.json`` that makes transformers build the same model."""
        config: dict[str, Any] = {
            "architectures": [self.hf_architecture],
            "model_type": self.hf_model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "intermediate_size": self.intermediate_size,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range,
            "hidden_act": self.hidden_act,
        }
        if self.family in ("llama", "qwen3", "mistral", "gemma"):
            config["attention_bias"] = False
        if self.family == "llama":
            config["mlp_bias"] = False
        if REGISTRY[self.family].honours(Feature.SLIDING_WINDOW):
            config["sliding_window"] = self.sliding_window  # null: no window
        config.update(self.gemma2_settings())
        if self.family == "gemma2":  # Gemma2Config reads hidden_activation
            config["hidden_activation"] = config.pop("hidden_act")
        if self.family == "phi3":  # Phi3Config's defaults would pad with id 32000, past a small vocabulary
            config.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
        return config

    # --- APR metadata ---------------------------------------------------------------------------

    def to_metadata(self) -> dict[str, Any]:
        """Typed APR metadata fields (§1.8) plus ``tied_embeddings``: the checkpoint's identity."""
        return {
            "architecture": self.family,
            "hf_architecture": self.hf_architecture,
            "hf_model_type": self.hf_model_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "vocab_size": self.vocab_size,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            # aprender's import rule: NEOX (2) for the qwen families, NORM (0) for llama/mistral
            "rope_type": REGISTRY[self.family].rope_type,
            "rms_norm_eps": self.rms_norm_eps,
            "head_dim": self.head_dim,
            "param_count": self.param_count,
            "tied_embeddings": self.tie_word_embeddings,
            # gemma2 writes a null window too: its default (4096) must not come back on load
            **({"sliding_window": self.sliding_window}
               if self.sliding_window is not None or self.family == "gemma2" else {}),
            **({"hidden_act": self.hidden_act} if self.hidden_act != "silu" else {}),
            **self.gemma2_settings(),
        }

    def gemma2_settings(self) -> dict[str, Any]:
        """Gemma 2's keys under their config.json names (also the APR metadata keys); {} otherwise."""
        if self.family != "gemma2":
            return {}
        return {"attn_logit_softcapping": self.attn_softcap, "final_logit_softcapping": self.final_softcap,
                "query_pre_attn_scalar": self.query_pre_attn_scalar,
                "layer_types": list(self.layer_types) if self.layer_types is not None else None}

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], tensor_names: Iterable[str] | None = None, *, path: str | None = None
    ) -> ModelConfig:
        """Rebuild the shape from APR metadata, using tensor names as evidence where they help.

        The family is the tensor-name family when that is concrete (the ground truth of §5.1),
        else the ``architecture`` / ``hf_architecture`` / ``hf_model_type`` claim. Whether the head
        is tied comes from the tensors (no ``lm_head.weight``) unless ``tied_embeddings`` is true.

        Raises:
            ModelConfigError: a dimension is missing or not an integer, or the family is unknown.
        """
        return _from_metadata(cls, metadata, tensor_names, path)

    def with_(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embedding_scale(config: ModelConfig) -> float | None:
    """`ModelConfig.embed_scale` (a plain function, so mutation testing measures it)."""
    return config.hidden_size ** 0.5 if REGISTRY[config.family].honours(Feature.SCALED_EMBEDDINGS) else None


def parameter_count(config: ModelConfig) -> int:
    """`ModelConfig.param_count`: the tensors of `ModelConfig.parameter_shapes` counted in closed form."""
    h, d = config.hidden_size, config.head_dim
    q, kv = config.num_heads * d, config.num_kv_heads * d
    layer = 2 * h + q * h + 2 * kv * h + h * q + 3 * config.intermediate_size * h  # norms, q, k, v, o, MLP
    if config.qkv_bias:
        layer += q + 2 * kv
    if config.qk_norm:
        layer += 2 * d
    if config.sandwich_norms:
        layer += 2 * h
    heads = 1 if config.tie_word_embeddings else 2  # embedding, plus an untied lm_head
    return heads * config.vocab_size * h + config.num_layers * layer + h


def _from_hf_config(cls: type[ModelConfig], config: Mapping[str, Any], path: str | None) -> ModelConfig:
    """`ModelConfig.from_hf_config` (a plain function, so mutation testing measures it)."""
    model_type = config.get("model_type")
    claim = model_type if isinstance(model_type, str) else None
    if claim is None:
        architectures = config.get("architectures") or []
        first = architectures[0] if isinstance(architectures, list) and architectures else None
        claim = first if isinstance(first, str) else None
    if claim is None:
        raise ModelConfigError(
            "config.json has no model_type", path=path, field="model_type",
            hint=f"set \"model_type\" to one of {', '.join(SUPPORTED_FAMILIES)}",
        )
    family = require_architecture(claim, config, path=path).model_type  # UnsupportedArchitectureError
    _refuse_unsupported(config, path)
    defaults = _HF_DEFAULTS[family]

    def need(key: str) -> Any:
        if key not in config:
            raise ModelConfigError(f"config.json has no {key!r}", path=path, field=key,
                                   hint=f"add \"{key}\" to the config")
        return config[key]

    hidden, heads = need("hidden_size"), need("num_attention_heads")
    rope = found if isinstance(found := config.get("rope_parameters"), dict) else {}
    head_dim = config.get("head_dim") or defaults.get("head_dim") or _div(hidden, heads, path)
    return cls(
        family=family,
        vocab_size=need("vocab_size"),
        hidden_size=hidden,
        num_layers=need("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads") or heads,
        intermediate_size=need("intermediate_size"),
        head_dim=head_dim,
        max_position_embeddings=config.get("max_position_embeddings", defaults["max_position_embeddings"]),
        rope_theta=_real(config.get("rope_theta", rope.get("rope_theta", defaults["rope_theta"])), "rope_theta",
                         path),
        rms_norm_eps=_real(config.get("rms_norm_eps", defaults["rms_norm_eps"]), "rms_norm_eps", path),
        # absent: the family's default (gemma ties, the others do not)
        tie_word_embeddings=bool(config.get("tie_word_embeddings", defaults.get("tie_word_embeddings", False))),
        initializer_range=_real(config.get("initializer_range", 0.02), "initializer_range", path),
        sliding_window=_window(family, {**defaults, **config}),
        hidden_act=activation_of(config, defaults.get("hidden_act", "silu")),
        **_gemma2_fields(family, {**defaults, **config}, config.get("num_hidden_layers"), path),
    )


def _from_config_file(cls: type[ModelConfig], path: str | os.PathLike[str]) -> ModelConfig:
    """`ModelConfig.from_config_file` (a plain function, so mutation testing measures it)."""
    from apr.train.bounds import check_config_ceiling

    file = Path(path)
    if file.is_dir():
        file = file / "config.json"
    if not file.is_file():
        raise AprFileNotFoundError("model config not found", path=file, field="--config",
                                   hint="pass a Hugging Face config.json")
    document = _read_json_object(file)
    config = cls.from_hf_config(document, path=os.fspath(file))
    check_config_ceiling(config, path=file)
    return config


def _from_metadata(cls: type[ModelConfig], metadata: Mapping[str, Any], tensor_names: Iterable[str] | None,
                   path: str | None) -> ModelConfig:
    """`ModelConfig.from_metadata` (a plain function, so mutation testing measures it)."""
    names = list(tensor_names) if tensor_names is not None else []
    # the registry names the family from the claims (or, with none, the tensor names) and
    # refuses what it does not implement exactly: UnsupportedArchitectureError
    family = spec_from_metadata(metadata, names or None, path=path).model_type

    def dim(key: str, default: Any = None) -> Any:
        value = metadata.get(key, default)
        if value is None:
            raise ModelConfigError(f"metadata has no {key!r}", path=path, field=key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelConfigError(f"metadata {key!r} = {value!r} is not an integer", path=path, field=key)
        return value

    hidden, heads = dim("hidden_size"), dim("num_heads")
    if names:
        tied = "lm_head.weight" not in names or metadata.get("tied_embeddings") is True
    else:
        tied = bool(metadata.get("tied_embeddings", True))
    return cls(
        family=family,
        vocab_size=dim("vocab_size"),
        hidden_size=hidden,
        num_layers=dim("num_layers"),
        num_heads=heads,
        num_kv_heads=dim("num_kv_heads", heads),
        intermediate_size=dim("intermediate_size"),
        head_dim=dim("head_dim") if metadata.get("head_dim") is not None else _div(hidden, heads, path),
        max_position_embeddings=dim("max_position_embeddings", 2048),
        rope_theta=_real(metadata.get("rope_theta") or 10000.0, "rope_theta", path),
        rms_norm_eps=_real(metadata.get("rms_norm_eps") or 1e-6, "rms_norm_eps", path),
        tie_word_embeddings=tied,
        sliding_window=_window(family, {**_HF_DEFAULTS[family], **metadata}),
        hidden_act=activation_of(metadata, _HF_DEFAULTS[family].get("hidden_act", "silu")),
        **_gemma2_fields(family, {**_HF_DEFAULTS[family], **metadata}, metadata.get("num_layers"), path),
    )


ARCH_FIELDS: tuple[str, ...] = (
    "family", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
    "intermediate_size", "head_dim", "max_position_embeddings", "tie_word_embeddings", "sliding_window",
    "hidden_act", "attn_softcap", "final_softcap", "query_pre_attn_scalar", "layer_types",
)


def config_differences(left: ModelConfig, right: ModelConfig) -> list[str]:
    """``["hidden_size: 64 != 32", ...]`` for every shape field on which two configs differ."""
    return [f"{name}: {getattr(left, name)!r} != {getattr(right, name)!r}"
            for name in ARCH_FIELDS if getattr(left, name) != getattr(right, name)]


MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a real config.json is a few KB


def _read_json_object(file: Path) -> dict[str, Any]:
    """``file`` parsed as one JSON object, its size bounded first."""
    try:
        size = file.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ModelConfigError(f"config.json is {size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte limit",
                                   path=file, field="--config", hint="pass the model's config.json itself")
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise AprIOError(f"cannot read the config: {err.strerror or err}", path=file, field="--config") from err
    except UnicodeDecodeError as err:
        raise ModelConfigError(f"config.json is not UTF-8: {err}", path=file, field="--config") from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelConfigError(f"config.json is not valid JSON: {err}", path=file, field="--config") from err
    except (RecursionError, ValueError) as err:  # nesting past the parser's depth, a 5000-digit integer
        raise ModelConfigError(f"config.json cannot be parsed: {type(err).__name__}", path=file,
                               field="--config") from None
    if not isinstance(document, dict):
        raise ModelConfigError("config.json must hold a JSON object", path=file, field="--config")
    return document


def _window(family: str, settings: Mapping[str, Any]) -> int | None:
    """The sliding window a family that implements one honours (None: none, or one covering the context)."""
    if not REGISTRY[family].honours(Feature.SLIDING_WINDOW):
        return None  # the registry has refused a window this family would ignore
    return active_sliding_window(settings)


def _gemma2_fields(family: str, settings: Mapping[str, Any], num_layers: Any, path: str | None) -> dict[str, Any]:
    """Gemma 2's softcaps, query scalar and layer types from a config or metadata (with its defaults)."""
    if family != "gemma2":
        return {}
    types = settings.get("layer_types")
    if types is None and isinstance(num_layers, int) and not isinstance(num_layers, bool) and 0 < num_layers <= 2**20:
        types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(num_layers)]  # HF's default
    return {
        "attn_softcap": _optional_real(settings.get("attn_logit_softcapping"), "attn_logit_softcapping", path),
        "final_softcap": _optional_real(settings.get("final_logit_softcapping"), "final_logit_softcapping", path),
        "query_pre_attn_scalar": _optional_real(settings.get("query_pre_attn_scalar"), "query_pre_attn_scalar", path),
        "layer_types": tuple(types) if isinstance(types, list) else types,
    }


def _optional_real(value: Any, key: str, path: str | None) -> float | None:
    """A number as written (an int stays an int: Gemma2Config types query_pre_attn_scalar as int)."""
    if value is None:
        return None
    _real(value, key, path)  # refuses what is not a number
    return value


def activation_allowed(family: str, activation: object) -> bool:
    """Whether ``family``'s runtime computes ``activation``: one the runtime implements at all
    (`ACTIVATIONS`) whose feature, if it needs one (gemma's tanh GELU), the family honours.

    A direct construction reaches this where `from_hf_config` would have refused the config
    already (a llama ``ModelConfig`` built with ``gelu_pytorch_tanh`` in code, a resumed
    checkpoint's metadata edited by hand).

    Example:
        >>> activation_allowed("llama", "silu"), activation_allowed("llama", "gelu_pytorch_tanh")
        (True, False)
    """
    if not isinstance(activation, str) or activation not in ACTIVATIONS:  # isinstance first: a list is unhashable
        return False
    needs = ACTIVATIONS[activation]
    return needs is None or REGISTRY[family].honours(needs)


def _check_gemma2_fields(config: ModelConfig) -> None:
    """Softcaps and the query scalar positive and finite; layer types one per layer, each known."""
    for name in ("attn_softcap", "final_softcap", "query_pre_attn_scalar"):
        value = getattr(config, name)
        if value is None:
            continue
        if config.family != "gemma2":
            raise ModelConfigError(f"a {config.family} model has no {name}", field=name)
        if not (_is_real(value) and math.isfinite(value) and value > 0):
            raise ModelConfigError(f"{name} must be a positive number, got {value!r}", field=name)
    types = config.layer_types
    if types is None:
        return
    if config.family != "gemma2":
        raise ModelConfigError(f"a {config.family} model has no layer_types", field="layer_types")
    if not isinstance(types, tuple) or len(types) != config.num_layers or any(t not in LAYER_TYPES for t in types):
        raise ModelConfigError(f"layer_types must list {config.num_layers} of {', '.join(LAYER_TYPES)}, got {types!r}",
                               field="layer_types")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _real(value: Any, key: str, path: str | None) -> float:
    """A float field as written (an int or a float), or the error naming it; never ``float("abc")``."""
    if not _is_real(value):
        raise ModelConfigError(f"{key} = {value!r} is not a number", path=path, field=key)
    try:
        return float(value)
    except OverflowError:  # an int past the float range
        raise ModelConfigError(f"{key} = {value!r} is out of range", path=path, field=key) from None


def _div(hidden: Any, heads: Any, path: str | None) -> int:
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise ModelConfigError(f"hidden_size {hidden!r} is not divisible by num_heads {heads!r}", path=path,
                               field="head_dim", hint="set head_dim explicitly")
    return hidden // heads


def _refuse_unsupported(config: Mapping[str, Any], path: str | None) -> None:
    """What the registry lets through but the trainer does not build: a null ``hidden_act`` and
    ``use_sliding_window`` without a window. Rope scaling, another activation, ``mlp_bias`` and an
    ``attention_bias`` the family lacks are refused earlier, by `require_architecture`."""
    problems = []
    if "hidden_act" in config and config["hidden_act"] is None:  # transformers' ACT2FN has no None
        problems.append("hidden_act None")
    if config.get("use_sliding_window"):
        problems.append("use_sliding_window")
    if problems:
        raise ModelConfigError(
            f"config.json asks for {', '.join(problems)}, which the trainer does not implement", path=path,
            hint="remove these keys, or train this model with transformers",
        )
