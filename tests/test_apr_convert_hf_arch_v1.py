"""contracts/apr-convert-hf-arch-v1.yaml: hf_architecture comes from config.json, never invented."""

from __future__ import annotations

import json
import os

import pytest

from apr.cli.main import main
from apr.convert import hf_config
from apr.convert.hf_import import import_hf
from apr.format import open_file
from tests.convert.tiny_hf import build_hf_folder


@pytest.fixture(scope="module")
def qwen2_folder(tmp_path_factory):
    return build_hf_folder(tmp_path_factory.mktemp("hfarch") / "qwen2", "qwen2")


def _metadata(path):
    with open_file(path) as reader:
        return reader.metadata


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-001")
def test_falsify_convert_hf_arch_001_extracts_architectures_0():
    meta = hf_config.metadata_from_hf_config({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                              "hidden_size": 64, "num_attention_heads": 4})
    assert meta["hf_architecture"] == "Qwen2ForCausalLM"
    assert meta["hf_model_type"] == "qwen2"
    assert meta["architecture"] == "qwen2"


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-001")
def test_falsify_convert_hf_arch_001_cli_import_then_inspect(qwen2_folder, tmp_path, capsys):
    out = tmp_path / "m.apr"
    assert main(["import", os.fspath(qwen2_folder), "-o", os.fspath(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["hf_architecture"] == "Qwen2ForCausalLM"
    meta = _metadata(out)
    assert (meta["hf_architecture"], meta["hf_model_type"]) == ("Qwen2ForCausalLM", "qwen2")
    assert main(["inspect", os.fspath(out), "--json"]) == 0
    inspected = json.dumps(json.loads(capsys.readouterr().out))
    assert "Qwen2ForCausalLM" in inspected


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-002")
@pytest.mark.parametrize("architectures", [None, [], [42], "Qwen2ForCausalLM"])
def test_falsify_convert_hf_arch_002_no_usable_architectures_leaves_none(architectures):
    config = {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4}
    if architectures is not None:
        config["architectures"] = architectures
    assert hf_config.hf_architecture_from_config(config) is None
    assert "hf_architecture" not in hf_config.metadata_from_hf_config(config)


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-002")
def test_falsify_convert_hf_arch_002_import_without_architectures_or_config(qwen2_folder, tmp_path):
    folder = tmp_path / "noarch"
    folder.mkdir()
    for item in qwen2_folder.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    del config["architectures"]
    (folder / "config.json").write_text(json.dumps(config))
    import_hf(folder, tmp_path / "a.apr")
    meta = _metadata(tmp_path / "a.apr")
    assert "hf_architecture" not in meta and meta["hf_model_type"] == "qwen2"
    (folder / "config.json").unlink()
    import_hf(folder, tmp_path / "b.apr", allow_no_config=True)
    meta = _metadata(tmp_path / "b.apr")
    assert "hf_architecture" not in meta and "hf_model_type" not in meta
    assert meta["architecture"] == "qwen2"  # tensor-name evidence, not an HF claim


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-003")
def test_falsify_convert_hf_arch_003_picks_first_of_several(qwen2_folder, tmp_path):
    config = {"architectures": ["Qwen2ForCausalLM", "Qwen2ForSequenceClassification"], "model_type": "qwen2"}
    assert hf_config.metadata_from_hf_config(config)["hf_architecture"] == "Qwen2ForCausalLM"
    folder = tmp_path / "multi"
    folder.mkdir()
    for item in qwen2_folder.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    document = json.loads((folder / "config.json").read_text())
    document["architectures"] = ["Qwen2ForCausalLM", "Qwen2ForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(document))
    import_hf(folder, tmp_path / "m.apr")
    assert _metadata(tmp_path / "m.apr")["hf_architecture"] == "Qwen2ForCausalLM"


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-004")
@pytest.mark.parametrize("family, expected", [
    ("qwen2", "Qwen2ForCausalLM"), ("qwen2.5", "Qwen2ForCausalLM"), ("qwen3", "Qwen3ForCausalLM"),
    ("llama", "LlamaForCausalLM"), ("mistral", "MistralForCausalLM"), ("gemma2", "Gemma2ForCausalLM"),
    ("phi", "PhiForCausalLM"), ("phi3", "Phi3ForCausalLM"), ("falcon", "FalconForCausalLM"),
])
def test_falsify_convert_hf_arch_004_synthesize_table(family, expected):
    assert hf_config.synthesize_hf_architecture_from_family(family) == expected


@pytest.mark.falsifies("FALSIFY-CONVERT-HF-ARCH-004")
def test_falsify_convert_hf_arch_004_gguf_import_synthesizes(qwen2_folder, tmp_path):
    from apr.convert.gguf_export import export_gguf
    from apr.convert.gguf_import import import_gguf

    import_hf(qwen2_folder, tmp_path / "m.apr")
    export_gguf(tmp_path / "m.apr", tmp_path / "m.gguf")
    import_gguf(tmp_path / "m.gguf", tmp_path / "back.apr")
    meta = _metadata(tmp_path / "back.apr")
    assert (meta["hf_architecture"], meta["hf_model_type"], meta["architecture"]) == ("Qwen2ForCausalLM", "qwen2", "qwen2")


def test_config_aliases_and_defaults():
    meta = hf_config.metadata_from_hf_config({"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4,
                                              "n_positions": 64, "layer_norm_epsilon": 1e-5, "vocab_size": 10})
    assert (meta["hidden_size"], meta["num_layers"], meta["num_heads"], meta["num_kv_heads"]) == (32, 2, 4, 4)
    assert meta["intermediate_size"] == 128 and meta["max_position_embeddings"] == 64
    assert meta["rms_norm_eps"] == 1e-5 and meta["rope_theta"] == 10000.0 and meta["rope_type"] == 0
    qwen = hf_config.metadata_from_hf_config({"model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 4,
                                              "rope_parameters": {"rope_theta": 1e6}})
    assert qwen["rope_type"] == 2 and qwen["rope_theta"] == 1e6 and qwen["head_dim"] == 128


def test_config_text_sanitised_and_refused():
    assert hf_config.parse_config_text('{"a": Infinity, "b": -Infinity, "c": NaN}') == {"a": 1e308, "b": -1e308, "c": None}
    from apr.errors import ConvertError

    with pytest.raises(ConvertError, match="not valid JSON"):
        hf_config.parse_config_text("{")
    with pytest.raises(ConvertError, match="JSON object"):
        hf_config.parse_config_text("[1]")
    with pytest.raises(ConvertError, match="not a number"):
        hf_config.metadata_from_hf_config({"hidden_size": "64"})
