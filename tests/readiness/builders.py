"""A publishable tiny qwen2 checkpoint built without training (random weights, ASCII-only BPE).

The tokenizer's alphabet is only the corpus's ASCII characters, so whatever random weights
generate decodes to clean text: golden_output checks the pipeline, not the model's wisdom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CONFIG: dict[str, Any] = {
    "model_type": "qwen2",
    "name": "tiny-qwen2",
    "architecture": "qwen2",
    "hf_architecture": "Qwen2ForCausalLM",
    "hf_model_type": "qwen2",
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "num_kv_heads": 1,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "license": "Apache-2.0",
    "data_source": "python-stdlib",
    "data_license": "PSF-2.0",
    "tied_embeddings": True,
}

TEXT = "The quick brown fox jumps over the lazy dog. " * 40 + "def add(a, b):\n    return a + b\n" * 30


def tokenizer_metadata(tmp: Path) -> dict[str, Any]:
    from apr.tokenizer import read_tokenizer_dir, record_to_metadata, train_byte_level_bpe

    corpus = tmp / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    folder = train_byte_level_bpe([corpus], tmp / "tok", vocab_size=120, full_byte_alphabet=False)
    return record_to_metadata(read_tokenizer_dir(folder))


def build_checkpoint(path: Path, *, overrides: dict[str, Any] | None = None, tokenizer: dict[str, Any] | None,
                     nan_tensor: bool = False) -> Path:
    from apr.format import Flags, save_file

    meta = dict(CONFIG)
    vocab = len(tokenizer["tokenizer.vocabulary"]) if tokenizer else 120
    meta["vocab_size"] = vocab
    if tokenizer:
        meta.update(tokenizer)
    for key, value in (overrides or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    rng = np.random.default_rng(0)
    h, inter, kv = 32, 64, 16

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    tensors = {"model.embed_tokens.weight": w(vocab, h), "model.norm.weight": np.ones(h, np.float32)}
    p = "model.layers.0."
    tensors.update({
        p + "input_layernorm.weight": np.ones(h, np.float32),
        p + "post_attention_layernorm.weight": np.ones(h, np.float32),
        p + "self_attn.q_proj.weight": w(h, h), p + "self_attn.q_proj.bias": w(h),
        p + "self_attn.k_proj.weight": w(kv, h), p + "self_attn.k_proj.bias": w(kv),
        p + "self_attn.v_proj.weight": w(kv, h), p + "self_attn.v_proj.bias": w(kv),
        p + "self_attn.o_proj.weight": w(h, h),
        p + "mlp.gate_proj.weight": w(inter, h), p + "mlp.up_proj.weight": w(inter, h),
        p + "mlp.down_proj.weight": w(h, inter),
    })
    if nan_tensor:
        tensors[p + "mlp.down_proj.weight"][0, 0] = np.nan
    flags = Flags.HAS_VOCAB if tokenizer else 0
    save_file(tensors, path, meta, flags=flags)
    return path
