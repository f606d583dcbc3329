"""Autoregressive generation with a KV cache, over the trainer's model weights.

`forward_cached` runs the same modules as `apr.train.model.CausalLM.forward` (same RMSNorm,
RoPE, SwiGLU, q/k norms and biases) but feeds only the new tokens and keeps each layer's keys
and values in a preallocated cache, so a step costs one token's work. Prefill of T tokens gives
the logits the plain forward gives (tested), and greedy decoding is deterministic.

Shape letters: B batch, T new tokens, S cached length, H query heads, K kv heads, D head_dim.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import torch

from apr.errors import InferenceError, UsageError
from apr.train.model import CausalLM, DecoderLayer, causal_mask, repeat_kv, rope_cos_sin


MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes a 64-bit seed
INITIAL_CACHE_TOKENS = 256  # the KV cache starts this long and doubles as generation needs


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """How the next token is picked. ``temperature == 0`` is greedy (deterministic).

    Every field is checked here, before a model is loaded: a value of the wrong type, NaN, an
    infinite or negative temperature, or a seed torch cannot take is a `UsageError` naming the
    flag, never a failure deep inside torch.
    """

    max_tokens: int = 128
    temperature: float = 0.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    seed: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise UsageError(f"--max-tokens must be a positive integer, got {self.max_tokens!r}", field="--max-tokens")
        if not (_is_real(self.temperature) and math.isfinite(self.temperature) and self.temperature >= 0):
            raise UsageError(f"--temperature must be a finite number >= 0, got {self.temperature!r}",
                             field="--temperature", hint="0 means greedy decoding; 0.7 is a usual sampling value")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise UsageError(f"--top-k must be an integer >= 0, got {self.top_k!r}", field="--top-k",
                             hint="0 keeps every token")
        if not (_is_real(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise UsageError(f"--top-p must be in (0, 1], got {self.top_p!r}", field="--top-p",
                             hint="1.0 keeps every token")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed must be an integer in [0, 2**64 - 1], got {self.seed!r}", field="--seed")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class KVCache:
    """Keys and values of every layer: (layers, B, K, allocated, D), filled up to ``length``.

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
        """Make room for ``length`` positions (at most ``capacity``), keeping what is cached."""
        allocated = self.keys.shape[3]
        if length <= allocated:
            return
        size = min(self.capacity, max(length, 2 * allocated))
        grown_keys = self.keys.new_zeros((*self.keys.shape[:3], size, self.keys.shape[4]))
        grown_values = self.values.new_zeros(grown_keys.shape)
        grown_keys[:, :, :, :self.length] = self.keys[:, :, :, :self.length]
        grown_values[:, :, :, :self.length] = self.values[:, :, :, :self.length]
        self.keys, self.values = grown_keys, grown_values


@torch.inference_mode()
def forward_cached(model: CausalLM, input_ids: torch.Tensor, cache: KVCache, *, last_only: bool = True) -> torch.Tensor:
    """Logits for ``input_ids`` (B, T) continuing the cached sequence; the cache grows by T.

    Returns (B, 1, V) when ``last_only`` (what generation needs), else (B, T, V).
    """
    stack = model.model
    B, T = input_ids.shape
    start = cache.length
    if start + T > cache.capacity:
        raise InferenceError(f"the sequence would reach {start + T} tokens, over the cache's {cache.capacity}",
                             hint="lower --max-tokens or shorten the prompt")
    cache.reserve(start + T)
    x = stack.embed(input_ids)  # (B, T, C)
    positions = torch.arange(start, start + T, device=input_ids.device)
    cos, sin = rope_cos_sin(positions, stack.head_dim, stack.rope_theta, x.dtype)  # (T, D)
    masks: dict[int | None, torch.Tensor | None] = {}  # per window: gemma2's layers alternate
    for index, layer in enumerate(cast("Iterable[DecoderLayer]", stack.layers)):  # a ModuleList types as Module
        attn = layer.self_attn
        window = attn.sliding_window
        if window not in masks:
            masks[window] = _cached_mask(positions, start, T, window)
        q, k, v = attn.project(layer.input_layernorm(x), cos, sin)  # (B, H|K, T, D)
        cache.keys[index, :, :, start:start + T] = k
        cache.values[index, :, :, start:start + T] = v
        groups = attn.num_heads // attn.num_kv_heads
        keys = repeat_kv(cache.keys[index, :, :, : start + T], groups)  # (B, H, S, D)
        values = repeat_kv(cache.values[index, :, :, : start + T], groups)
        y = attn.attend(q, keys, values, masks[window], causal=T > 1)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, attn.num_heads * attn.head_dim)
        x = layer.add_mlp(layer.add_attention(x, attn.o_proj(y)))
    cache.length = start + T
    x = stack.norm(x[:, -1:] if last_only else x)
    return model.logits(x)


def _cached_mask(positions: torch.Tensor, start: int, T: int, window: int | None) -> torch.Tensor | None:
    """Which of the ``start + T`` cached keys each new query sees; ``None``: causal (or all, for one query)."""
    if window is not None and start + T > window:  # only the last `window` positions
        return causal_mask(positions, torch.arange(start + T, device=positions.device), window)  # (T, S)
    if T > 1 and start > 0:  # a chunk after a cached prefix: causal within the chunk, all of the prefix
        return torch.ones(T, start + T, dtype=torch.bool, device=positions.device).tril(diagonal=start)
    return None


def pick_token(logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None) -> int:
    """The next token id from one position's logits (V,)."""
    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    scores = logits.double()
    if bool(torch.isnan(scores).any()) or bool(torch.isposinf(scores).any()):
        raise InferenceError("the model produced NaN or infinite logits; it cannot be sampled",
                             hint="check the weights with `apr validate FILE`")
    # Shift so the best score is 0 before dividing: any positive temperature, 1e-45 included, then
    # gives finite scores (0 for the best token, -inf at worst for the others), never 0/0 or inf-inf.
    scores = (scores - scores.max()) / sampling.temperature
    if sampling.top_k and sampling.top_k < scores.numel():
        kth = torch.topk(scores, sampling.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= sampling.top_p  # keep the token crossing top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def generate_ids(
    model: CausalLM, prompt_ids: list[int], sampling: SamplingConfig, stop_ids: frozenset[int] = frozenset()
) -> Iterator[int]:
    """Yield generated token ids one at a time (a stop id ends generation and is not yielded).

    Raises:
        InferenceError: empty prompt, or prompt + max_tokens beyond the model's context.
    """
    if not prompt_ids:
        raise InferenceError("the prompt encodes to no tokens", hint="pass a non-empty prompt")
    limit = model.config.max_position_embeddings
    if len(prompt_ids) >= limit:
        raise InferenceError(f"the prompt is {len(prompt_ids)} tokens; the model's context is {limit}",
                             hint="shorten the prompt")
    capacity = min(limit, len(prompt_ids) + sampling.max_tokens)
    device = model.model.embed_tokens.weight.device
    cache = KVCache(model, 1, capacity)
    generator = None
    if sampling.temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed)
    logits = forward_cached(model, torch.tensor([prompt_ids], device=device), cache)
    for _ in range(min(sampling.max_tokens, capacity - len(prompt_ids))):
        token = pick_token(logits[0, -1], sampling, generator)
        if token in stop_ids:
            return
        yield token
        if cache.length >= capacity:
            return
        logits = forward_cached(model, torch.tensor([[token]], device=device), cache)


class TextStream:
    """Turns token ids into text increments, holding back an incomplete UTF-8 character."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        delta = text[len(self.emitted):] if text.startswith(self.emitted) else ""
        self.emitted = text
        return delta


__all__ = ["KVCache", "SamplingConfig", "TextStream", "forward_cached", "generate_ids", "pick_token"]
