"""The model's forward with a KV cache is the forward without one, fed in pieces.

For any split of a sequence into chunks (prefill, single tokens, chunks after a prefix) the cached
logits equal the uncached ones within 1e-5, for a plain family and for gemma2 (softcapped
attention, alternating sliding windows of 4 that the sequence outgrows, sandwich norms); and a
cache that cannot hold the next chunk refuses it before touching anything.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.errors import InferenceError
from apr.train.config import ModelConfig
from apr.train.kv_cache import KVCache
from apr.train.model import CausalLM

_BASE = {"vocab_size": 40, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 64}
CONFIGS = {
    "qwen2": {**_BASE, "model_type": "qwen2"},
    "gemma2": {**_BASE, "model_type": "gemma2", "sliding_window": 4, "attn_logit_softcapping": 2.0,
               "final_logit_softcapping": 3.0, "query_pre_attn_scalar": 24},
}
_MODELS: dict[str, CausalLM] = {}


def _model(family: str) -> CausalLM:
    if family not in _MODELS:
        torch.manual_seed(0)
        model = CausalLM(ModelConfig.from_hf_config(CONFIGS[family])).eval()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.normal_(0, 0.3)  # far from the init, so masks and windows matter
        _MODELS[family] = model
    return _MODELS[family]


@settings(max_examples=25, deadline=None)
@given(family=st.sampled_from(sorted(CONFIGS)), cuts=st.lists(st.integers(1, 13), min_size=0, max_size=6, unique=True),
       seed=st.integers(0, 2**16))
def test_cached_forward_in_any_chunks_equals_the_uncached_forward(family: str, cuts: list[int], seed: int) -> None:
    model = _model(family)
    ids = torch.randint(0, 40, (1, 14), generator=torch.Generator().manual_seed(seed))
    bounds = [0, *sorted(cuts), 14]
    cache = KVCache(model, 1, 14)
    with torch.no_grad():
        full = model(ids)
        pieces = [model(ids[:, a:b], cache=cache) for a, b in itertools.pairwise(bounds)]
        last = model(ids[:, :5], cache=KVCache(model, 1, 5), last_only=True)
    assert cache.length == 14
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)
    torch.testing.assert_close(last, full[:, 4:5], rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_a_full_cache_refuses_the_next_chunk_and_keeps_its_contents(family: str) -> None:
    model = _model(family)
    cache = KVCache(model, 1, 6)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4]]), cache=cache)
        keys = cache.keys.clone()
        with pytest.raises(InferenceError, match="would reach 7 tokens, over the cache's 6"):
            model(torch.tensor([[5, 6, 7]]), cache=cache)
    assert cache.length == 4 and torch.equal(cache.keys, keys)
