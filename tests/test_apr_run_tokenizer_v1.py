"""contracts/apr-run-tokenizer-v1.yaml: the embedded tokenizer, PMAT-172, the KV cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from apr.cli.main import main
from apr.convert.hf_import import import_hf
from apr.errors import InferenceError, MissingTokenizerError
from apr.format import save_file
from apr.run import chat as chat_module
from apr.run import load_model, prompt_ids
from apr.run.generate import SamplingConfig, generate_ids
from apr.train.kv_cache import KVCache
from tests.convert.tiny_hf import CHATML, build_hf_folder, train_tokenizer

FAMILIES = ("llama", "qwen2", "qwen3")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("runmodels")
    tok = root / "tok"
    train_tokenizer(tok)
    out = {}
    for family in FAMILIES:
        folder = build_hf_folder(root / family, family, tokenizer_from=tok, tied=family == "llama")
        import_hf(folder, root / f"{family}.apr")
        out[family] = (folder, root / f"{family}.apr")
    return out


def _no_tokenizer_file(path):
    save_file({"model.embed_tokens.weight": np.zeros((8, 4), np.float32)}, path,
              {"architecture": "llama", "hidden_size": 4, "num_layers": 1, "num_heads": 1, "vocab_size": 8})


@pytest.mark.falsifies("FALSIFY-RUN-TOK-001")
def test_falsify_run_tok_001_pmat_172_refusal(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bare.apr"
    _no_tokenizer_file(path)

    def no_reads(*args, **kwargs):
        raise AssertionError("a tensor was read before the tokenizer check")

    monkeypatch.setattr("apr.format.reader.AprReader.get_tensor", no_reads)
    assert main(["run", os.fspath(path), "hello"]) == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[PMAT-172]" in captured.err and "missing embedded tokenizer" in captured.err
    assert f"Re-convert with: apr import <source>.gguf -o {path}" in captured.err.replace("\n", " ").replace("  ", " ") \
        or "Re-convert with" in captured.err
    with pytest.raises(MissingTokenizerError) as info:
        load_model(path)
    assert info.value.exit_code == 6 and info.value.field == "tokenizer.vocabulary"


@pytest.mark.falsifies("FALSIFY-RUN-TOK-001")
def test_falsify_run_tok_001_vocabulary_without_merges_refused(tmp_path):
    path = tmp_path / "nomerges.apr"
    save_file({"model.embed_tokens.weight": np.zeros((2, 4), np.float32)}, path,
              {"architecture": "llama", "tokenizer.vocabulary": ["a", "b"]})
    with pytest.raises(MissingTokenizerError, match="PMAT-172"):
        load_model(path)


@pytest.mark.falsifies("FALSIFY-RUN-TOK-002")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_run_tok_002_rebuilt_tokenizer_encodes_like_source(models, family):
    from tokenizers import Tokenizer

    folder, apr_path = models[family]
    source = Tokenizer.from_file(os.fspath(folder / "tokenizer.json"))
    rebuilt = load_model(apr_path).tokenizer
    for text in ("The capital of France is Paris.", "naïve café — ünïcödé ✓ 東京", "<|im_start|>user\nhi<|im_end|>\n",
                 "  two  spaces\tand\ttabs\n\n", "def f(x):\n    return x ** 2"):
        ids = source.encode(text, add_special_tokens=False).ids
        assert rebuilt.encode(text, add_special_tokens=False).ids == ids
        assert rebuilt.decode(ids, skip_special_tokens=False) == source.decode(ids, skip_special_tokens=False)


@pytest.mark.falsifies("FALSIFY-RUN-TOK-003")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_run_tok_003_kv_cache_equals_full_forward(models, family):
    loaded = load_model(models[family][1])
    model = loaded.model
    ids = torch.randint(0, loaded.config.vocab_size, (1, 14), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(ids)[0]  # (T, V)
    cache = KVCache(model, 1, 32)
    with torch.no_grad():
        prefill = model(ids[:, :6], cache=cache)[0]
    assert torch.allclose(prefill, full[:6], atol=1e-4)
    for t in range(6, 10):  # token by token
        with torch.no_grad():
            step = model(ids[:, t:t + 1], cache=cache, last_only=True)[0, -1]
        assert torch.allclose(step, full[t], atol=1e-4), t
    with torch.no_grad():
        chunk = model(ids[:, 10:], cache=cache)[0]  # a chunk after a prefix
    assert torch.allclose(chunk, full[10:], atol=1e-4)


@pytest.mark.falsifies("FALSIFY-RUN-TOK-003")
def test_falsify_run_tok_003_greedy_deterministic_and_seeded_sampling(models):
    loaded = load_model(models["qwen2"][1])
    prompt = prompt_ids(loaded, "The capital of France", chat=False)
    greedy = SamplingConfig(max_tokens=12)
    first = list(generate_ids(loaded.model, prompt, greedy))
    assert first == list(generate_ids(loaded.model, prompt, greedy)) and len(first) == 12
    with torch.no_grad():  # greedy = argmax of the plain forward, step by step
        ids = list(prompt)
        for _ in range(12):
            ids.append(int(loaded.model(torch.tensor([ids]))[0, -1].argmax()))
    assert ids[len(prompt):] == first
    sampled = SamplingConfig(max_tokens=12, temperature=0.9, top_k=20, top_p=0.9, seed=7)
    assert list(generate_ids(loaded.model, prompt, sampled)) == list(generate_ids(loaded.model, prompt, sampled))


@pytest.mark.falsifies("FALSIFY-RUN-TOK-005")
def test_falsify_run_tok_005_chat_template_sandboxed():
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert chat_module.render_chat(CHATML, messages) == chat_module.chatml(messages)
    assert chat_module.render_chat(None, messages).endswith("<|im_start|>assistant\n")
    with pytest.raises(InferenceError, match="chat template"):
        chat_module.render_chat("{{ raise_exception('no system role') }}", messages)
    with pytest.raises(InferenceError):  # the sandbox refuses Python internals
        chat_module.render_chat("{{ messages.__class__.__mro__[1].__subclasses__() }}", messages)


@pytest.mark.falsifies("FALSIFY-RUN-TOK-005")
def test_falsify_run_tok_005_cli_chat_streams(models, capsys):
    assert main(["run", os.fspath(models["qwen3"][1]), "What is the capital of France?", "--chat", "--max-tokens", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("\n") and "tok/s" in captured.err


@pytest.mark.falsifies("FALSIFY-RUN-TOK-006")
@pytest.mark.parametrize("flag, value", [("--max-tokens", "0"), ("--temperature", "-1"), ("--top-k", "-1"),
                                         ("--top-p", "0"), ("--top-p", "1.5")])
def test_falsify_run_tok_006_bad_sampling_arguments(models, capsys, flag, value):
    assert main(["run", os.fspath(models["qwen2"][1]), "hi", flag, value]) == 64  # a usage error (EX_USAGE)
    captured = capsys.readouterr()
    assert captured.out == "" and flag in captured.err


def test_prompt_longer_than_context_refused(models):
    loaded = load_model(models["qwen2"][1])
    with pytest.raises(InferenceError, match="context"):
        list(generate_ids(loaded.model, [1] * 300, SamplingConfig(max_tokens=2)))
