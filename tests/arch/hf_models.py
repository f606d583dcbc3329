"""Tiny real Hugging Face models, built offline by ``transformers`` from a config and saved with
``save_pretrained`` (plus a tokenizers-trained byte-level BPE), for the architecture registry's
tests (contract arch-registry-v1). ``transformers`` is imported lazily: callers skip without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# model_type -> (config class, model class, config overrides beyond the common tiny shape)
TINY: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": 4}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {"head_dim": 16}),
    # softcaps low enough to bite on random weights; a query scalar that is not head_dim
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16, "sliding_window": 4, "query_pre_attn_scalar": 24,
                                                   "attn_logit_softcapping": 2.0, "final_logit_softcapping": 3.0}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 16, "sliding_window": 4}),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM",
                  {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 64}),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {"pad_token_id": 0, "bos_token_id": None, "eos_token_id": None}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0, "bos_token_id": None, "eos_token_id": None,
                                               "sliding_window": 4}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {"bos_token_id": None, "eos_token_id": None}),
    "bert": ("BertConfig", "BertForMaskedLM", {"max_position_embeddings": 128, "pad_token_id": 0}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128,
                                            "bos_token_id": None, "eos_token_id": None}),
}

NOT_IMPLEMENTED: tuple[str, ...] = ("gemma3", "qwen2_moe", "olmo2", "mixtral", "gpt2", "gpt_neox", "bert")


def build_model(model_type: str, vocab: int, *, seed: int = 0, tied: bool | None = None, **overrides: Any) -> Any:
    """A tiny random ``transformers`` model of ``model_type`` in eval mode (fp32)."""
    import torch
    import transformers

    config_name, model_name, extra = TINY[model_type]
    shape: dict[str, Any] = {"vocab_size": vocab}
    if model_type != "gpt2":
        shape.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=128)
    shape.update(extra)
    shape.update(overrides)
    if tied is not None:
        shape["tie_word_embeddings"] = tied
    config = getattr(transformers, config_name)(**shape)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():  # a sharper random model than the 0.02 init, so differences show
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.2)
            elif parameter.dim() == 1:
                parameter.normal_(0, 0.3)
    return model


def save_model(model: Any, folder: Path, tokenizer_dir: Path) -> Path:
    """``save_pretrained`` into ``folder`` with the tokenizer files beside it."""
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tokenizer_dir / name).read_bytes())
    return folder


def vocab_size(tokenizer_dir: Path) -> int:
    import json

    return len(json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"]) + 3
