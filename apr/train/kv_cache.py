"""The keys and values a decoder keeps between forward calls, so a generation step costs one token.

`apr.train.model.CausalLM.forward` takes one (``cache=``): each attention layer writes its new keys
and values at positions ``length .. length + T`` and attends over everything cached so far; RoPE
and the masks start at ``length``. The same forward, without a cache, is the training forward.

Shape letters: L layers, B batch, K key/value heads, S positions, D head_dim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from apr.errors import InferenceError

if TYPE_CHECKING:
    from apr.train.model import CausalLM

INITIAL_CACHE_TOKENS = 256  # the cache starts this long and doubles as generation needs


class KVCache:
    """Keys and values of every layer: (L, B, K, allocated, D), filled up to ``length``.

    ``capacity`` is the most the sequence may reach; storage starts at `INITIAL_CACHE_TOKENS` and
    doubles when needed, so memory follows the tokens actually generated, not what ``--max-tokens``
    or the metadata's ``max_position_embeddings`` allow.
    """

    def __init__(self, model: CausalLM, batch: int, capacity: int) -> None:
        config = model.config
        weight = model.model.embed_tokens.weight
        size = min(capacity, INITIAL_CACHE_TOKENS)
        shape = (config.num_layers, batch, config.num_kv_heads, size, config.head_dim)
        self.keys = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.capacity = capacity
        self.length = 0

    def reserve(self, length: int) -> None:
        """Make room for ``length`` positions, keeping what is cached.

        Raises:
            InferenceError: ``length`` is over ``capacity``.
        """
        if length > self.capacity:
            raise InferenceError(f"the sequence would reach {length} tokens, over the cache's {self.capacity}",
                                 hint="lower --max-tokens or shorten the prompt")
        allocated = self.keys.shape[3]
        if length <= allocated:
            return
        size = min(self.capacity, max(length, 2 * allocated))
        grown_keys = self.keys.new_zeros((*self.keys.shape[:3], size, self.keys.shape[4]))
        grown_values = self.values.new_zeros(grown_keys.shape)
        grown_keys[:, :, :, :self.length] = self.keys[:, :, :, :self.length]
        grown_values[:, :, :, :self.length] = self.values[:, :, :, :self.length]
        self.keys, self.values = grown_keys, grown_values

    def store(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one layer's new (B, K, T, D) keys and values after the cached ones; return that
        layer's whole (B, K, length + T, D) keys and values. `reserve` came first; `length` moves
        only in `advance`, once every layer has stored."""
        end = self.length + keys.shape[2]
        self.keys[layer, :, :, self.length:end] = keys
        self.values[layer, :, :, self.length:end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, tokens: int) -> None:
        """Every layer stored ``tokens`` new positions: they are part of the cached sequence now."""
        self.length += tokens


__all__ = ["INITIAL_CACHE_TOKENS", "KVCache"]
