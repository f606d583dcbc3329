"""Contract apr-diff-v1, across formats: `apr diff` with a .apr, a safetensors folder or a GGUF file on
either side, read through the importers (issue 15, part 3)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from apr.cli.main import main
from tests.convert.gguf_rt_inputs import write_source


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny llama GGUF (q/k permuted, tied head, rms eps stored as float32), its import and exports."""
    folder = tmp_path_factory.mktemp("diff-formats")
    source = write_source(folder / "src.gguf", hidden=64, inter=128, seed=3)
    assert main(["import", os.fspath(source), "-o", os.fspath(folder / "m.apr")]) == 0
    assert main(["export", os.fspath(folder / "m.apr"), "-o", os.fspath(folder / "hf"), "--format", "safetensors"]) == 0
    for quant in ("f32", "q8_0"):
        assert main(["export", os.fspath(folder / "m.apr"), "-o", os.fspath(folder / f"m-{quant}.gguf"),
                     "--quantize", quant]) == 0
    return folder


def _diff(capsys, a, b, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["diff", os.fspath(a), os.fspath(b), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.falsifies("FALSIFY-DIFF-004")
@pytest.mark.parametrize(("a", "b", "formats", "count"), [
    # embed, 9 in the layer, final norm, and the head: the .apr holds it, the others read it from the embedding
    ("m.apr", "hf", ["apr", "safetensors"], 12),
    ("m.apr", "hf/model.safetensors", ["apr", "safetensors"], 12),
    ("m.apr", "m-f32.gguf", ["apr", "gguf"], 12),
    ("src.gguf", "m.apr", ["gguf", "apr"], 12),
    ("src.gguf", "hf", ["gguf", "safetensors"], 11),  # neither holds a head
])
def test_a_model_equals_its_imports_and_exports(model, capsys, a, b, formats, count):
    code, doc = _diff(capsys, model / a, model / b)
    assert doc["formats"] == formats
    assert doc["metadata"] == {} and doc["only_in_a"] == [] and doc["only_in_b"] == []
    assert doc["tensors_changed"] == []
    assert doc["tensors_compared"] == count
    assert code == 0


@pytest.mark.falsifies("FALSIFY-DIFF-004")
def test_a_config_change_across_formats_is_reported(model, capsys, tmp_path):
    import shutil

    shutil.copytree(model / "hf", tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["rope_theta"] = 5e5
    config["rms_norm_eps"] = 1e-6  # the GGUF holds float32(1e-6) = 9.99999997e-07: the same value
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    code, doc = _diff(capsys, model / "m-f32.gguf", tmp_path / "hf")
    assert code == 1 and set(doc["metadata"]) == {"rope_theta"}
    assert doc["metadata"]["rope_theta"]["b"] == 5e5


@pytest.mark.falsifies("FALSIFY-DIFF-005")
def test_q8_0_export_errors_are_the_quantization_errors(model, capsys):
    import gguf
    from gguf.quants import dequantize, quantize

    from apr.format import open_file

    code, doc = _diff(capsys, model / "m.apr", model / "m-q8_0.gguf")
    assert code == 1
    changed = {t["name"]: t for t in doc["tensors_changed"]}
    with open_file(model / "m.apr") as reader:
        for name in reader.keys():
            x = np.asarray(reader.get_float32(name), np.float32)
            if x.ndim < 2:
                assert name not in changed  # vectors stay F32
                continue
            y = dequantize(quantize(x, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0)
            x64, y64 = x.astype(np.float64).ravel(), np.asarray(y, np.float64).ravel()
            entry = changed[name]
            assert entry["dtype"] == ["F32", "Q8_0"]
            assert entry["max_abs"] == pytest.approx(float(np.max(np.abs(x64 - y64))), rel=1e-12, abs=0)
            assert entry["rel_l2"] == pytest.approx(np.linalg.norm(x64 - y64) / np.linalg.norm(x64), rel=1e-9)
    capsys.readouterr()
    assert main(["diff", os.fspath(model / "m.apr"), os.fspath(model / "m-q8_0.gguf")]) == 1
    text = capsys.readouterr().out
    assert "formats: apr -> gguf" in text and "dtype F32 -> Q8_0; max|a-b|" in text


@pytest.mark.falsifies("FALSIFY-DIFF-005")
def test_sides_read_in_different_pieces_line_up(tmp_path, capsys):
    """A GGUF tensor comes whole, an APR one in pieces of 1 M elements: 1.2 M elements compare."""
    import gguf

    from apr.format import save_file

    values = np.linspace(-1, 1, 1_200_000, dtype=np.float32)
    save_file({"big": values}, tmp_path / "a.apr", {"architecture": "llama"})
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "b.gguf"), "llama")
    moved = values.copy()
    moved[-1] += np.float32(0.25)
    writer.add_tensor("big", moved)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    code, doc = _diff(capsys, tmp_path / "a.apr", tmp_path / "b.gguf")
    [only] = doc["tensors_changed"]
    assert code == 1 and only["max_abs"] == pytest.approx(0.25, abs=1e-7)


def test_missing_and_invalid_sides_across_formats(model, tmp_path, capsys):
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + b"\xff" * 40)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    assert main(["diff", os.fspath(model / "m.apr"), os.fspath(tmp_path / "none.gguf")]) == 3
    assert main(["diff", os.fspath(model / "m.apr"), os.fspath(tmp_path / "bad.gguf")]) in (4, 5)
    assert main(["diff", os.fspath(tmp_path / "bad.safetensors"), os.fspath(model / "m.apr")]) in (4, 5)
    assert "Traceback" not in capsys.readouterr().err
