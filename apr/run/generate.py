"""Autoregressive generation with a KV cache, over the trainer's model weights.

Each step is the model's own forward (`apr.train.model.CausalLM.forward`) given a
`apr.train.kv_cache.KVCache`: it feeds only the new tokens, so a step costs one token's work.
The prefill of T tokens gives the logits the uncached forward gives (tested), and greedy
decoding is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from apr.errors import InferenceError, UsageError
from apr.train.kv_cache import KVCache
from apr.train.model import CausalLM

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes a 64-bit seed


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
    logits = _step(model, torch.tensor([prompt_ids], device=device), cache)
    for _ in range(min(sampling.max_tokens, capacity - len(prompt_ids))):
        token = pick_token(logits[0, -1], sampling, generator)
        if token in stop_ids:
            return
        yield token
        if cache.length >= capacity:
            return
        logits = _step(model, torch.tensor([[token]], device=device), cache)


@torch.inference_mode()
def _step(model: CausalLM, input_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """The last position's logits (B, 1, V) of ``input_ids`` continuing the cached sequence."""
    return model(input_ids, cache=cache, last_only=True)


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


__all__ = ["SamplingConfig", "TextStream", "generate_ids", "pick_token"]
