"""Tiny GGUF files for the import-bounds tests and the ``gguf_metadata`` fuzz seeds.

`tiny_gguf` writes a complete llama/qwen2/qwen3 model (random weights, a small byte-level BPE
vocabulary, every key `apr import` reads) with the ``gguf`` package's own writer, and lets a test
replace any key with a value of any GGUF type (``overrides``) or leave keys out (``drop``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

TOKENS = ["a", "b", "c", "ab", "<s>", "</s>"]
BASE_TYPES = [1, 1, 1, 1, 3, 3]  # normal x4, control x2


def _tokens(vocab: int) -> tuple[list[str], list[int]]:
    tokens = TOKENS + [chr(0x100 + i) for i in range(max(0, vocab - len(TOKENS)))]
    return tokens[:vocab], (BASE_TYPES + [1] * vocab)[:vocab]


def tiny_gguf(
    path: str | os.PathLike[str],
    family: str = "llama",
    *,
    hidden: int = 8,
    layers: int = 1,
    heads: int = 2,
    kv_heads: int = 1,
    inter: int = 16,
    vocab: int = 6,
    overrides: dict[str, tuple[Any, Any, Any]] | None = None,
    drop: tuple[str, ...] = (),
    seed: int = 0,
) -> Path:
    """Write a tiny GGUF model and return its path.

    Args:
        overrides: key -> (value, GGUFValueType, sub_type or None), written instead of the usual value.
        drop: keys to leave out.
    """
    import gguf

    from apr.convert.names import hf_to_gguf
    from tests.convert.tiny_hf import shapes

    target = Path(path)
    writer = gguf.GGUFWriter(os.fspath(target), family)
    writer.add_block_count(layers)
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_name("tiny")
    tokens, types = _tokens(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(min(4, vocab - 1))
    writer.add_eos_token_id(min(5, vocab - 1))
    for key, (value, vtype, sub_type) in (overrides or {}).items():
        writer.kv_data[0].pop(key, None)  # replace quietly (the writer warns on duplicates)
        writer.add_key_value(key, value, vtype, sub_type=sub_type)
    for key in drop:
        writer.kv_data[0].pop(key, None)
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    for name, shape in shapes(family, vocab=vocab, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                              inter=inter, head_dim=head_dim, tied=True).items():
        writer.add_tensor(hf_to_gguf(name), (0.1 * rng.standard_normal(shape)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
