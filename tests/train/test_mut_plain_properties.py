"""The trainer's decisions that used to live in properties and a classmethod (issue 23).

mutmut 3 does not mutate decorated functions, so each decision now sits in a plain function the
property calls; these tests state each one at its boundary and check that the property agrees.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from apr.arch.registry import REGISTRY
from apr.train.batches import TokenSplit, segment_tokens
from apr.train.config import ModelConfig, embedding_scale
from apr.train.ddp import DistContext, is_distributed, is_main_rank
from apr.train.metrics_log import MetricRecord, is_evaluation_row
from apr.train.shards import Manifest, ShardInfo, total_tokens
from apr.train.train_state import Progress, progress_from_json

# Gemma and Gemma 2 multiply the embeddings by sqrt(hidden_size) (transformers' Gemma*Model.forward:
# `hidden_states * normalizer` with normalizer = hidden_size ** 0.5); no other supported family does.
SCALED_FAMILIES = {"gemma", "gemma2"}


@pytest.mark.parametrize(("world_size", "expected"), [(0, False), (1, False), (2, True), (8, True)])
def test_only_more_than_one_process_is_distributed(world_size: int, expected: bool) -> None:
    assert is_distributed(world_size) is expected
    ctx = DistContext(rank=0, world_size=world_size, local_rank=0, device=torch.device("cpu"))
    assert ctx.enabled is expected


@pytest.mark.parametrize(("rank", "expected"), [(-1, False), (0, True), (1, False), (3, False)])
def test_only_rank_zero_is_main(rank: int, expected: bool) -> None:
    assert is_main_rank(rank) is expected
    ctx = DistContext(rank=rank, world_size=4, local_rank=rank, device=torch.device("cpu"))
    assert ctx.is_main is expected


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=6))
def test_train_tokens_count_every_segment(lengths: list[int]) -> None:
    segments = tuple(np.zeros(n, dtype=np.int64) for n in lengths)
    assert segment_tokens(segments) == sum(lengths)
    split = TokenSplit(train=segments, val_windows=np.zeros((0, 3), dtype=np.int64), seq_length=2)
    assert split.train_tokens == sum(lengths)


@given(st.lists(st.integers(min_value=0, max_value=2**40), max_size=6))
def test_manifest_tokens_are_the_shards_tokens(counts: list[int]) -> None:
    shards = tuple(ShardInfo(file=f"shard-{i:05d}.bin", num_tokens=n, sha256="0" * 64) for i, n in enumerate(counts))
    assert total_tokens(shards) == sum(counts)
    manifest = Manifest(vocab_size=256, itemsize=2, eos_token_id=None, shards=shards)
    assert manifest.num_tokens == sum(counts)
    assert manifest.to_json()["num_tokens"] == sum(counts)


@pytest.mark.parametrize(("val_loss", "expected"), [(None, False), (0.0, True), (2.5, True), (math.nan, True)])
def test_a_row_with_a_val_loss_is_an_evaluation(val_loss: float | None, expected: bool) -> None:
    # 0.0 is the near miss: a falsy loss is still an evaluation
    assert is_evaluation_row(val_loss) is expected
    record = MetricRecord(step=3, epoch=None, train_loss=None, val_loss=val_loss, lr=None, grad_norm=None,
                          tokens_per_sec=None, tokens_seen=12, wall_s=0.5)
    assert record.is_evaluation is expected


def _config(family: str, hidden_size: int) -> ModelConfig:
    extra: dict[str, object] = {}
    if family in SCALED_FAMILIES:
        extra["hidden_act"] = "gelu_pytorch_tanh"
    if family == "gemma2":
        extra.update(attn_softcap=50.0, final_softcap=30.0, query_pre_attn_scalar=16.0, sliding_window=8,
                     layer_types=("sliding_attention", "full_attention"))
    if family == "mistral":
        extra["sliding_window"] = 8
    return ModelConfig(family=family, vocab_size=64, hidden_size=hidden_size, num_layers=2, num_heads=2,
                       num_kv_heads=1, intermediate_size=32, head_dim=hidden_size // 2, **extra)


@pytest.mark.parametrize("family", sorted(REGISTRY))
@pytest.mark.parametrize("hidden_size", [16, 36, 64])
def test_only_gemma_families_scale_the_embeddings_by_sqrt_hidden(family: str, hidden_size: int) -> None:
    config = _config(family, hidden_size)
    expected = math.sqrt(hidden_size) if family in SCALED_FAMILIES else None
    assert embedding_scale(config) == expected
    assert config.embed_scale == expected


def test_the_registry_still_has_both_scaled_families() -> None:
    assert SCALED_FAMILIES <= set(REGISTRY)


@pytest.mark.parametrize("best", [math.inf, 0.0, 1.25])
def test_progress_survives_its_json(best: float) -> None:
    progress = Progress(step=7, epoch=2, tokens_seen=96, epoch_losses=[1.5, 1.25], grad_norm_max=3.0,
                        history=[2.0, 1.75], best=best, patience=1, checkpoints=["a.apr"], init_val_loss=4.0,
                        stop_status="EARLY_STOP", stop_detail="no improvement")
    document = progress.to_json()
    assert document["best"] == (None if math.isinf(best) else best)
    assert progress_from_json(document) == progress
    assert Progress.from_json(document) == progress


def test_a_null_or_absent_best_reads_as_infinity_and_other_fields_are_kept() -> None:
    assert progress_from_json({"step": 3, "best": None}) == Progress(step=3, best=math.inf)
    assert progress_from_json({"step": 3}) == Progress(step=3, best=math.inf)
    assert progress_from_json({"best": 0.5, "patience": 2}) == Progress(best=0.5, patience=2)
