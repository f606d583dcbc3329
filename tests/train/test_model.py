"""The model: Hugging Face names and shapes, the fused chunked loss, and logits equal to
transformers' own classes (skipped, with its reason, when transformers is not installed)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from apr.train.config import ModelConfig
from apr.train.loss import IGNORE_INDEX, linear_cross_entropy
from apr.train.model import CausalLM, flops_per_token

FAMILIES = ("llama", "qwen2", "qwen3")


def tiny(family: str, **changes: object) -> ModelConfig:
    base = dict(family=family, vocab_size=256, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                intermediate_size=128, head_dim=16 if family != "qwen3" else 24, max_position_embeddings=128,
                rope_theta=10000.0 if family != "llama" else 500000.0, tie_word_embeddings=family != "llama")
    base.update(changes)
    return ModelConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_uses_hugging_face_names_and_shapes(family: str) -> None:
    config = tiny(family)
    model = CausalLM(config)
    state = {k: tuple(v.shape) for k, v in model.hf_state_dict().items()}
    assert state == config.parameter_shapes()
    assert model.num_parameters() == config.param_count
    from apr.identity import family_from_tensor_names

    assert family_from_tensor_names(state) == family  # the names are their own identity evidence


def test_tied_head_shares_the_embedding() -> None:
    model = CausalLM(tiny("qwen2"))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert "lm_head.weight" not in model.hf_state_dict()


@pytest.mark.falsifies("FALSIFY-TRAIN-LOSS-001")
@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_falsify_train_loss_001_chunked_equals_plain_cross_entropy(chunk: int) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(40, 16, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 40, (50,))
    targets[:5] = IGNORE_INDEX
    reference = F.cross_entropy(hidden @ weight.T, targets, ignore_index=IGNORE_INDEX)
    gh, gw = torch.autograd.grad(reference * 3.0, (hidden, weight))
    fused = linear_cross_entropy(hidden, weight, targets, chunk_rows=chunk)
    fh, fw = torch.autograd.grad(fused * 3.0, (hidden, weight))
    assert torch.allclose(fused, reference, atol=1e-10)
    assert torch.allclose(fh, gh, atol=1e-10) and torch.allclose(fw, gw, atol=1e-10)


@pytest.mark.falsifies("FALSIFY-TRAIN-LOSS-001")
def test_falsify_train_loss_001_model_loss_path_matches_logits_path() -> None:
    torch.manual_seed(1)
    model = CausalLM(tiny("qwen3"))
    ids = torch.randint(0, 256, (3, 20))
    logits = model(ids[:, :-1])
    plain = F.cross_entropy(logits.reshape(-1, 256), ids[:, 1:].reshape(-1))
    assert torch.allclose(model(ids[:, :-1], ids[:, 1:], loss_chunk_rows=11), plain, atol=1e-5)


def test_random_init_loss_is_near_uniform() -> None:
    torch.manual_seed(2)
    model = CausalLM(tiny("llama"))
    ids = torch.randint(0, 256, (4, 33))
    with torch.no_grad():
        assert abs(float(model(ids[:, :-1], ids[:, 1:])) - math.log(256)) < 0.1


def test_causality_future_tokens_do_not_change_past_logits() -> None:
    torch.manual_seed(3)
    model = CausalLM(tiny("qwen2")).eval()
    a = torch.randint(0, 256, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 256
    assert torch.allclose(model(a)[0, :10], model(b)[0, :10], atol=1e-6)


def test_flops_per_token_counts_6n_plus_attention() -> None:
    config = tiny("qwen2")
    assert flops_per_token(config, 64) == 6 * config.param_count + 12 * 2 * 64 * 64


@pytest.mark.falsifies("FALSIFY-TRAIN-MODEL-001")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_train_model_001_logits_equal_stored_transformers_logits(family: str) -> None:
    """Logits that transformers computed for these exact weights (data/make_hf_golden_logits.py)."""
    import json
    from pathlib import Path

    from train_fixtures import GOLDEN_IDS, golden_config, golden_weights

    golden = json.loads((Path(__file__).parent / "data" / "hf_golden_logits.json").read_text())
    assert golden["ids"] == GOLDEN_IDS
    config = golden_config(family)
    model = CausalLM(config).eval()
    state = {k: torch.from_numpy(v) for k, v in golden_weights(config).items()}
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    with torch.no_grad():
        ours = model(torch.tensor([GOLDEN_IDS]))[0]
    theirs = torch.tensor(golden["logits"][family])
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.falsifies("FALSIFY-TRAIN-MODEL-002")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_train_model_002_logits_equal_transformers(family: str) -> None:
    transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install -e .[hf])")
    torch.manual_seed(4)
    config = tiny(family)
    ours = CausalLM(config).eval()
    hf_config = transformers.AutoConfig.for_model(**config.to_hf_config())
    theirs = getattr(transformers, config.hf_architecture)(hf_config).eval()
    missing, unexpected = theirs.load_state_dict(ours.hf_state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    assert ModelConfig.from_hf_config(hf_config.to_dict()) == config
    ids = torch.randint(0, config.vocab_size, (2, 37))
    with torch.no_grad():
        difference = (ours(ids) - theirs(ids).logits).abs().max().item()
    assert difference <= 1e-4
