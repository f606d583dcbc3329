"""transformers as the oracle: models it saved import, run and export back with its logits."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.real_model

FAMILIES = ("qwen2", "llama", "qwen3")


def _save_pretrained(folder, family, tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    import torch

    cls = {"qwen2": "Qwen2", "llama": "Llama", "qwen3": "Qwen3"}[family]
    config_cls = getattr(transformers, f"{cls}Config")
    model_cls = getattr(transformers, f"{cls}ForCausalLM")
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(os.fspath(tokenizer_dir / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(0)
    config = config_cls(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                        tie_word_embeddings=family == "llama")
    model = model_cls(config).eval()
    with torch.no_grad():  # a sharper random model so greedy paths are not ties
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tokenizer_dir / name).read_bytes())
    return model


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from tests.convert.tiny_hf import train_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


@pytest.mark.falsifies("FALSIFY-EXPORT-006")
@pytest.mark.falsifies("FALSIFY-RUN-TOK-004")
@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_models_import_run_export(tmp_path, tokenizer_dir, family):
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer

    from apr.convert.hf_export import export_safetensors
    from apr.convert.hf_import import import_hf
    from apr.run import load_model, prompt_ids
    from apr.run.generate import SamplingConfig, generate_ids

    reference = _save_pretrained(tmp_path / "src", family, tokenizer_dir)
    import_hf(tmp_path / "src", tmp_path / "m.apr")
    loaded = load_model(tmp_path / "m.apr")
    ids = torch.tensor([prompt_ids(loaded, "The capital of France is Paris. What is the capital", chat=False)])
    with torch.no_grad():
        theirs = reference(ids).logits[0]
        ours = loaded.model(ids)[0]
    assert float((theirs - ours).abs().max()) <= 1e-4
    greedy = list(generate_ids(loaded.model, ids[0].tolist(), SamplingConfig(max_tokens=12)))
    with torch.no_grad():
        generated = reference.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert greedy == generated[0, ids.shape[1]:].tolist()

    export_safetensors(tmp_path / "m.apr", tmp_path / "out")
    exported = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert type(exported).__name__ == type(reference).__name__
    with torch.no_grad():
        again = exported(ids).logits[0]
    assert float((again - ours).abs().max()) <= 1e-4
    source_tok = Tokenizer.from_file(os.fspath(tmp_path / "src" / "tokenizer.json"))
    exported_tok = Tokenizer.from_file(os.fspath(tmp_path / "out" / "tokenizer.json"))
    text = "naïve café <|im_start|>user hi<|im_end|>"
    assert source_tok.encode(text).ids == exported_tok.encode(text).ids
