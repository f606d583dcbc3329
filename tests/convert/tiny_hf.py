"""Tiny Hugging Face model folders built without transformers: random weights under HF names,
a config.json as ``save_pretrained`` writes it, and a real byte-level BPE trained with
``tokenizers`` on a few KB of text.

Imported as ``tests.convert.tiny_hf`` (the repository root is on ``sys.path`` via its conftest).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# (family, HF class, extra config)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaForCausalLM", {"attention_bias": False, "mlp_bias": False}),
    "qwen2": ("Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3ForCausalLM", {"attention_bias": False}),
}


def training_text() -> str:
    """A few KB of English-ish text that is on every machine (stdlib docstrings)."""
    import argparse
    import json as json_module
    import textwrap

    parts = [inspect.getdoc(m) or "" for m in (argparse, json_module, textwrap, os)]
    text = "\n".join(parts)
    return (text + "\nThe capital of France is Paris. What is the capital of France?\n") * 2


def train_tokenizer(folder: Path, vocab_size: int = 320) -> None:
    """A byte-level BPE (tokenizers' GPT-2 pipeline) saved as tokenizer.json + tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([training_text()], trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(os.fspath(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": None, "eos_token": "<|im_end|>", "chat_template": CHATML,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }))


def shapes(family: str, *, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int,
           inter: int, head_dim: int, tied: bool) -> dict[str, tuple[int, ...]]:
    q, kv = heads * head_dim, kv_heads * head_dim
    out: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (hidden,)
        out[p + "self_attn.q_proj.weight"] = (q, hidden)
        out[p + "self_attn.k_proj.weight"] = (kv, hidden)
        out[p + "self_attn.v_proj.weight"] = (kv, hidden)
        if family == "qwen2":
            out[p + "self_attn.q_proj.bias"] = (q,)
            out[p + "self_attn.k_proj.bias"] = (kv,)
            out[p + "self_attn.v_proj.bias"] = (kv,)
        if family == "qwen3":
            out[p + "self_attn.q_norm.weight"] = (head_dim,)
            out[p + "self_attn.k_norm.weight"] = (head_dim,)
        out[p + "self_attn.o_proj.weight"] = (hidden, q)
        out[p + "post_attention_layernorm.weight"] = (hidden,)
        out[p + "mlp.gate_proj.weight"] = (inter, hidden)
        out[p + "mlp.up_proj.weight"] = (inter, hidden)
        out[p + "mlp.down_proj.weight"] = (hidden, inter)
    out["model.norm.weight"] = (hidden,)
    if not tied:
        out["lm_head.weight"] = (vocab, hidden)
    return out


def build_hf_folder(
    folder: Path,
    family: str = "qwen2",
    *,
    tokenizer_from: Path | None = None,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    inter: int = 128,
    head_dim: int | None = None,
    vocab: int | None = None,
    tied: bool = False,
    dtype: str = "float32",
    seed: int = 0,
    shards: int = 1,
) -> Path:
    """Write a complete tiny HF model folder and return it."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is None:
        train_tokenizer(folder)
    else:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).write_bytes((tokenizer_from / name).read_bytes())
    if vocab is None:
        vocab = len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])
    head_dim = head_dim or hidden // heads
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape in shapes(family, vocab=vocab, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                              inter=inter, head_dim=head_dim, tied=tied).items():
        if len(shape) == 1:
            value = 1.0 + 0.1 * rng.standard_normal(shape) if name.endswith("norm.weight") else 0.1 * rng.standard_normal(shape)
        else:
            value = 0.08 * rng.standard_normal(shape)
        tensors[name] = value.astype(np.float32)
    if dtype == "float16":
        tensors = {k: v.astype(np.float16) for k, v in tensors.items()}
    elif dtype == "bfloat16":
        import ml_dtypes

        tensors = {k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()}
    cls, extra = FAMILIES[family]
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    specials = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    config = {
        "architectures": [cls], "model_type": family, "vocab_size": vocab, "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "intermediate_size": inter, "head_dim": head_dim, "max_position_embeddings": 256,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": tied, "hidden_act": "silu",
        "torch_dtype": dtype, "bos_token_id": specials["<|endoftext|>"], "eos_token_id": specials["<|im_end|>"],
        **extra,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, os.fspath(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for index in range(shards):
            part = names[index::shards]
            file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: tensors[k] for k in part}, os.fspath(folder / file), metadata={"format": "pt"})
            weight_map.update({k: file for k in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def load_tensors(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a HF folder (bf16 as ml_dtypes via torch-free raw read)."""
    from apr.convert.hf_import import collect_safetensors, read_tensor_bytes

    _root, tensors, _meta = collect_safetensors(folder)
    return {name: read_tensor_bytes(t).view(t.dtype.numpy_dtype).reshape(t.shape) for name, t in tensors.items()}
