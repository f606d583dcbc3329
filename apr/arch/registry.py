"""The architectures the runtime implements exactly (`apr.train.model`), one entry per ``model_type``.

An entry says which tensors the family holds (`TensorSchema`), which features it honours, how its
identity is spelled in Hugging Face, APR metadata and GGUF, and how its RoPE pairs rows. Anything
not here is refused by `apr run`, `apr pretrain`, `apr qa` and `apr export` (`apr.arch.resolve`);
`NOT_IMPLEMENTED` says, for the families people import, what the runtime lacks for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from apr.arch.features import Feature
from apr.arch.schema import (
    FUSED_LAYER,
    GLOBAL_OPTIONAL,
    GLOBAL_REQUIRED,
    LLAMA_LAYER,
    QK_NORM_LAYER,
    QKV_BIAS_LAYER,
    SANDWICH_LAYER,
    TensorSchema,
)


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """One architecture the runtime implements exactly.

    Attributes:
        model_type: config.json ``model_type`` and the APR ``architecture`` slug.
        hf_class: the ``transformers`` class that loads an export.
        module: the module that runs it.
        schema: its tensor names.
        features: what it honours beyond the plain llama decoder.
        rope_scaling_types: rope scaling types implemented (``()``: plain RoPE only).
        tensor_family: what `apr.identity.family_from_tensor_names` calls its tensors.
        gguf_arch: llama.cpp's ``general.architecture`` for it.
        gguf_permute_qk: whether llama.cpp's converter permutes q/k rows (llama-style RoPE).
        rope_type: aprender's rope_type (0 NORM, 2 NEOX).
        aliases: other spellings of the identity (HF class, legacy names) that mean this entry.
    """

    model_type: str
    hf_class: str
    module: str
    schema: TensorSchema
    features: frozenset[Feature]
    tensor_family: str
    gguf_arch: str
    gguf_permute_qk: bool
    rope_type: int
    rope_scaling_types: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def honours(self, feature: Feature) -> bool:
        return feature in self.features


_MODULE = "apr.train.model.CausalLM"
_LLAMA_SCHEMA = TensorSchema(GLOBAL_REQUIRED, GLOBAL_OPTIONAL, LLAMA_LAYER)

REGISTRY: dict[str, ArchSpec] = {
    "llama": ArchSpec(
        "llama", "LlamaForCausalLM", _MODULE, _LLAMA_SCHEMA, frozenset({Feature.TIED_EMBEDDINGS}),
        tensor_family="llama", gguf_arch="llama", gguf_permute_qk=True, rope_type=0,
        aliases=("LlamaForCausalLM", "Llama"),
    ),
    "mistral": ArchSpec(
        "mistral", "MistralForCausalLM", _MODULE, _LLAMA_SCHEMA,
        frozenset({Feature.TIED_EMBEDDINGS, Feature.SLIDING_WINDOW}),
        tensor_family="llama", gguf_arch="llama", gguf_permute_qk=True, rope_type=0,
        aliases=("MistralForCausalLM", "Mistral"),
    ),
    "qwen2": ArchSpec(
        "qwen2", "Qwen2ForCausalLM", _MODULE,
        TensorSchema(GLOBAL_REQUIRED, GLOBAL_OPTIONAL, LLAMA_LAYER + QKV_BIAS_LAYER),
        frozenset({Feature.TIED_EMBEDDINGS, Feature.QKV_BIAS}),
        tensor_family="qwen2", gguf_arch="qwen2", gguf_permute_qk=False, rope_type=2,
        aliases=("Qwen2ForCausalLM", "Qwen2.5ForCausalLM", "qwen2.5", "qwen", "Qwen2", "Qwen2.5", "Qwen"),
    ),
    "qwen3": ArchSpec(
        "qwen3", "Qwen3ForCausalLM", _MODULE,
        TensorSchema(GLOBAL_REQUIRED, GLOBAL_OPTIONAL, LLAMA_LAYER + QK_NORM_LAYER),
        frozenset({Feature.TIED_EMBEDDINGS, Feature.QK_NORM}),
        tensor_family="qwen3", gguf_arch="qwen3", gguf_permute_qk=False, rope_type=2,
        aliases=("Qwen3ForCausalLM", "Qwen3"),
    ),
    "gemma": ArchSpec(
        "gemma", "GemmaForCausalLM", _MODULE, _LLAMA_SCHEMA,
        frozenset({Feature.TIED_EMBEDDINGS, Feature.GELU_TANH, Feature.NORM_PLUS_ONE, Feature.SCALED_EMBEDDINGS}),
        # llama.cpp's Gemma converter neither permutes q/k (NEOX rope) nor keeps the zero-centred
        # norms: it writes 1 + weight (apr.convert.gguf_export)
        tensor_family="llama", gguf_arch="gemma", gguf_permute_qk=False, rope_type=2,
        aliases=("GemmaForCausalLM", "Gemma"),
    ),
    "gemma2": ArchSpec(
        "gemma2", "Gemma2ForCausalLM", _MODULE, TensorSchema(GLOBAL_REQUIRED, GLOBAL_OPTIONAL, SANDWICH_LAYER),
        frozenset({Feature.TIED_EMBEDDINGS, Feature.GELU_TANH, Feature.NORM_PLUS_ONE, Feature.SCALED_EMBEDDINGS,
                   Feature.SOFTCAPPING, Feature.SANDWICH_NORMS, Feature.SLIDING_WINDOW, Feature.ALTERNATING_WINDOW,
                   Feature.QUERY_SCALAR}),
        tensor_family="llama", gguf_arch="gemma2", gguf_permute_qk=False, rope_type=2,
        aliases=("Gemma2ForCausalLM", "Gemma2"),
    ),
    "phi3": ArchSpec(
        "phi3", "Phi3ForCausalLM", _MODULE, TensorSchema(GLOBAL_REQUIRED, GLOBAL_OPTIONAL, FUSED_LAYER),
        frozenset({Feature.TIED_EMBEDDINGS, Feature.SLIDING_WINDOW, Feature.FUSED_PROJECTIONS}),
        # llama.cpp's phi3 keeps the fused tensors (attn_qkv, ffn_up = gate | up) and NEOX rope
        tensor_family="qwen2", gguf_arch="phi3", gguf_permute_qk=False, rope_type=2,
        aliases=("Phi3ForCausalLM", "Phi3", "phi4", "Phi4"),
    ),
}

# Families people import that the runtime does not implement, and what it lacks for each.
NOT_IMPLEMENTED: dict[str, str] = {
    "gemma3": "Gemma 2's maths plus q/k norms, local/global RoPE and a 5:1 sliding-window pattern",
    "phi": "LayerNorm, partial rotary embeddings, a GELU MLP and a parallel attention/MLP block",
    "olmo2": "full-width q/k norms and post-attention/post-feed-forward norms instead of pre-norms",
    "qwen2_moe": "a mixture-of-experts MLP with a router and a gated shared expert",
    "qwen3_moe": "a mixture-of-experts MLP with a router",
    "mixtral": "a mixture-of-experts MLP with a router",
    "gpt2": "learned position embeddings, LayerNorm, fused c_attn and a GELU MLP",
    "gpt_neox": "LayerNorm, fused query_key_value, partial rotary embeddings and a parallel residual",
    "bert": "a bidirectional encoder (no causal language-model head)",
    "mamba": "a state-space (selective scan) layer instead of attention",
    "rwkv": "RWKV time-mixing instead of attention",
    "opt": "learned position embeddings, LayerNorm and a ReLU MLP",
}

# Other spellings of the not-implemented families (HF classes, identity slugs).
_NOT_IMPLEMENTED_ALIASES: dict[str, str] = {
    "Gemma3ForCausalLM": "gemma3",
    "Gemma3ForConditionalGeneration": "gemma3", "gemma3_text": "gemma3",
    "PhiForCausalLM": "phi", "Phi": "phi",
    "Olmo2ForCausalLM": "olmo2", "Qwen2MoeForCausalLM": "qwen2_moe", "Qwen3MoeForCausalLM": "qwen3_moe",
    "MixtralForCausalLM": "mixtral", "GPT2LMHeadModel": "gpt2", "Gpt2": "gpt2", "GPT2": "gpt2",
    "GPTNeoXForCausalLM": "gpt_neox", "gpt-neox": "gpt_neox", "gptneox": "gpt_neox", "pythia": "gpt_neox",
    "BertModel": "bert", "BertForMaskedLM": "bert", "MambaForCausalLM": "mamba",
    "RwkvForCausalLM": "rwkv", "Rwkv6ForCausalLM": "rwkv", "OPTForCausalLM": "opt",
}

IMPLEMENTED: tuple[str, ...] = tuple(REGISTRY)


def slug_of(claim: str) -> str | None:
    """The architecture a claim names (an implemented or a known not-implemented slug), else None.

    Example:
        >>> slug_of("MistralForCausalLM"), slug_of("Gemma2ForCausalLM"), slug_of("NovelForCausalLM")
        ('mistral', 'gemma2', None)
    """
    if claim in REGISTRY or claim in NOT_IMPLEMENTED:
        return claim
    for spec in REGISTRY.values():
        if claim in spec.aliases:
            return spec.model_type
    return _NOT_IMPLEMENTED_ALIASES.get(claim)


def spec_for(slug: str) -> ArchSpec | None:
    """The registry entry of an implemented slug, else None."""
    return REGISTRY.get(slug)


__all__ = ["IMPLEMENTED", "NOT_IMPLEMENTED", "REGISTRY", "ArchSpec", "slug_of", "spec_for"]
