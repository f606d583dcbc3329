"""Tiny GGUF sources for the round-trip contract (apr-gguf-roundtrip-v1) and the keys it compares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "a", "b", "ab", "\u0100"]
# keys an export decides for itself (its own quantization)
EXPORT_DECIDES = frozenset({"general.file_type"})


def gguf_kv(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every KV pair of a GGUF file, read with the gguf package (pseudo-fields left out)."""
    import gguf

    reader = gguf.GGUFReader(os.fspath(path))
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def round_trip_keys(kv: dict[str, Any], arch: str = "llama") -> dict[str, Any]:
    """The keys INV-GGUF-RT-001 says come back: tokenizer.*, general.*, {arch}.rope.*."""
    return {k: v for k, v in kv.items() if k not in EXPORT_DECIDES
            and (k.startswith(("tokenizer.", "general.")) or k.startswith(f"{arch}.rope."))}


def write_source(path: Path, *, extra: dict[str, Any] | None = None, types: list[int] | None = None,
                 ggml_type: str = "F32", hidden: int = 32, inter: int = 64, seed: int = 0) -> Path:
    """A tiny llama GGUF (2 heads, 1 KV head, 1 layer, tied head) with ``extra`` KV pairs (typed by
    `gguf_type_of`), 2-D tensors stored as ``ggml_type`` (F32, F16, Q8_0, Q4_0) and 1-D ones F32."""
    import gguf
    from gguf.quants import quantize

    from apr.convert.names import hf_to_gguf
    from tests.convert.tiny_hf import shapes

    writer = gguf.GGUFWriter(os.fspath(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(hidden // 2)
    writer.add_vocab_size(len(TOKENS))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(TOKENS)
    writer.add_token_types(types or [1] * len(TOKENS))
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    for key, value in (extra or {}).items():
        writer.kv_data[0].pop(key, None)
        vtype, sub = gguf_type_of(value)
        writer.add_key_value(key, value, vtype, sub_type=sub)
    rng = np.random.default_rng(seed)
    for name, shape in shapes("llama", vocab=len(TOKENS), hidden=hidden, layers=1, heads=2, kv_heads=1, inter=inter,
                              head_dim=hidden // 2, tied=True).items():
        values = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        if len(shape) == 2 and ggml_type == "F16":
            writer.add_tensor(hf_to_gguf(name), values.astype(np.float16))
        elif len(shape) == 2 and ggml_type != "F32":
            qtype = gguf.GGMLQuantizationType[ggml_type]
            writer.add_tensor(hf_to_gguf(name), quantize(values, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(hf_to_gguf(name), values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def gguf_type_of(value: Any) -> tuple[Any, Any]:
    """(GGUFValueType, sub_type) for a Python value, as llama.cpp writes such keys."""
    from gguf import GGUFValueType

    def one(v: Any) -> Any:
        if isinstance(v, bool):
            return GGUFValueType.BOOL
        if isinstance(v, str):
            return GGUFValueType.STRING
        if isinstance(v, float):
            return GGUFValueType.FLOAT32
        return GGUFValueType.UINT32

    if isinstance(value, list):
        return GGUFValueType.ARRAY, one(value[0])
    return one(value), None
