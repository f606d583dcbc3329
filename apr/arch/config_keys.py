"""One architecture's configuration in its three spellings: Hugging Face ``config.json``, APR
metadata (docs/aprender-format.md §1.8) and GGUF keys (llama.cpp, ``{arch}.`` prefixed).

The config.json side is `apr.convert.hf_config.HF_CONFIG_ALIASES` (aprender's aliases, the ones
`apr import` reads); the GGUF side is what `apr.convert.gguf_import` reads and
`apr.convert.gguf_export` writes. This module joins them by APR key and holds no second copy of
either; `config_mapping` is the table docs/architectures.md prints.
"""

from __future__ import annotations

from dataclasses import dataclass

# APR metadata key -> GGUF key suffix (after "{arch}."), as gguf_import/gguf_export use them.
GGUF_KEY_FOR: dict[str, str] = {
    "hidden_size": "embedding_length",
    "num_layers": "block_count",
    "num_heads": "attention.head_count",
    "num_kv_heads": "attention.head_count_kv",
    "intermediate_size": "feed_forward_length",
    "max_position_embeddings": "context_length",
    "rope_theta": "rope.freq_base",
    "rms_norm_eps": "attention.layer_norm_rms_epsilon",
    "head_dim": "attention.key_length",
    "vocab_size": "vocab_size",
    "sliding_window": "attention.sliding_window",
}


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One setting: its APR metadata key, the config.json keys read for it, its GGUF key."""

    apr: str
    hf: tuple[str, ...]
    gguf: str | None


def config_mapping() -> tuple[ConfigKey, ...]:
    """Every setting the runtime reads, joined across the three formats."""
    from apr.convert.hf_config import HF_CONFIG_ALIASES

    rows = [ConfigKey(apr, hf, GGUF_KEY_FOR.get(apr)) for apr, hf in HF_CONFIG_ALIASES]
    rows.append(ConfigKey("sliding_window", ("sliding_window",), GGUF_KEY_FOR["sliding_window"]))
    return tuple(rows)


__all__ = ["GGUF_KEY_FOR", "ConfigKey", "config_mapping"]
