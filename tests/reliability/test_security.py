"""Security (issue 8 §4): no pickle, nothing evaluated, no reads outside a folder, inputs read-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability import security_scan

ROOT = security_scan.ROOT


@pytest.mark.falsifies("FALSIFY-RELIABILITY-005")
def test_falsify_reliability_005_no_pickle_eval_or_unsafe_load_in_the_package():
    assert security_scan.scan_package_files() == []
    assert len(list(security_scan.package_sources())) > 50  # the scan saw the packages


@pytest.mark.falsifies("FALSIFY-RELIABILITY-005")
@pytest.mark.parametrize("snippet", [
    "import pickle", "import cPickle as p", "from dill import loads", "import marshal\nmarshal.loads(b'')",
    "eval('1')", "exec('x=1')", "import yaml\nyaml.load(s)", "import yaml\nyaml.load(s, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(s)", "import torch\ntorch.load('m.pt')",
    "import torch\ntorch.load('m.pt', weights_only=False)", "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
])
def test_falsify_reliability_005_the_scan_catches_a_planted_unsafe_call(tmp_path, snippet):
    planted = tmp_path / "apr" / "planted.py"
    planted.parent.mkdir()
    planted.write_text(snippet + "\n")
    assert security_scan.unsafe_calls(planted.read_text(), "planted.py"), snippet
    safe = "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\nimport torch\ntorch.load(p, weights_only=True)\n"
    assert security_scan.unsafe_calls(safe, "safe.py") == []


# --- nothing executed, inputs read-only ----------------------------------------------------------


EVIL_YAML = """\
metadata: !!python/object/apply:os.system ["touch {canary}"]
invariants: !!python/name:os.system
falsification_tests:
  - id: FALSIFY-EVIL-001
    rule: !!python/object/new:subprocess.Popen [["touch", "{canary}"]]
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    from tests.convert.tiny_hf import build_hf_folder

    from apr.convert.hf_import import import_hf

    folder = tmp_path_factory.mktemp("security")
    inputs, outputs = folder / "inputs", folder / "outputs"
    outputs.mkdir()
    hf = build_hf_folder(inputs / "hf", "qwen2", hidden=32, layers=1, heads=2, kv_heads=1, inter=64)
    canary = folder / "PWNED"
    config = json.loads((hf / "config.json").read_text())
    config.update({"model_type": "qwen2", "auto_map": {"AutoModel": "evil.Model"},
                   "torch_dtype": f"__import__('os').system('touch {canary}')"})
    (hf / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((hf / "tokenizer_config.json").read_text())
    tok_config["chat_template"] = f"{{{{ cycler.__init__.__globals__.os.system('touch {canary}') }}}}"
    (hf / "tokenizer_config.json").write_text(json.dumps(tok_config))
    (inputs / "evil-v1.yaml").write_text(EVIL_YAML.format(canary=canary))
    import_hf(hf, inputs / "m.apr")
    for path in inputs.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    report = folder / "report.json"
    env = dict(os.environ, PYTHONPATH=os.fspath(ROOT))
    subprocess.run([sys.executable, "-m", "tests.reliability.security_probe", os.fspath(folder), os.fspath(report)],
                   cwd=ROOT, env=env, check=True, timeout=300, capture_output=True)
    return json.loads(report.read_text()), canary


@pytest.mark.falsifies("FALSIFY-RELIABILITY-006")
def test_falsify_reliability_006_nothing_from_an_input_is_executed(probe):
    result, canary = probe
    assert result["executed"] == [], result["executed"]
    assert not canary.exists()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-006")
def test_falsify_reliability_006_inputs_are_opened_read_only(probe):
    result, _ = probe
    assert result["errors"] == [], result["errors"]
    assert result["opened"], "the probe saw no open of an input: the audit hook is not working"
    writes = [o for o in result["opened"]
              if (o["mode"] is not None and any(c in o["mode"] for c in "wax+"))
              or (o["mode"] is None and isinstance(o["flags"], int) and o["flags"] & (os.O_WRONLY | os.O_RDWR))]
    assert writes == []


# --- no reads outside the folder ----------------------------------------------------------------


def _tokenizer_folder(tmp_path: Path) -> tuple[Path, Path]:
    from tests.stamp_builders import write_tokenizer_json, write_vocab_merges

    outside = tmp_path / "outside"
    write_tokenizer_json(outside)
    write_vocab_merges(outside)
    folder = tmp_path / "tok"
    folder.mkdir()
    return folder, outside


@pytest.mark.falsifies("FALSIFY-RELIABILITY-007")
@pytest.mark.parametrize("name", ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                  "added_tokens.json"])
def test_falsify_reliability_007_tokenizer_file_symlinked_outside_is_refused(tmp_path, name):
    from apr.errors import TokenizerError
    from apr.tokenizer import read_tokenizer_dir

    folder, outside = _tokenizer_folder(tmp_path)
    if name in ("merges.txt", "added_tokens.json"):
        (folder / "vocab.json").write_bytes((outside / "vocab.json").read_bytes())
    if name == "tokenizer_config.json":
        (folder / "tokenizer.json").write_bytes((outside / "tokenizer.json").read_bytes())
    (outside / "added_tokens.json").write_text('{"<x>": 99}')
    (outside / "tokenizer_config.json").write_text('{"eos_token": "<|endoftext|>"}')
    (folder / name).symlink_to(outside / name)
    with pytest.raises(TokenizerError, match="outside"):
        read_tokenizer_dir(folder)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-007")
def test_falsify_reliability_007_symlinked_tokenizer_folder_inside_itself_is_fine(tmp_path):
    from apr.tokenizer import read_tokenizer_dir

    folder, outside = _tokenizer_folder(tmp_path)
    (folder / "real.json").write_bytes((outside / "tokenizer.json").read_bytes())
    (folder / "tokenizer.json").symlink_to(folder / "real.json")
    assert read_tokenizer_dir(folder).vocabulary


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    from tests.convert.tiny_hf import build_hf_folder

    return build_hf_folder(tmp_path_factory.mktemp("hf") / "model", "qwen2", hidden=32, layers=1, heads=2,
                           kv_heads=1, inter=64)


def _model_copy(hf_folder: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(hf_folder, folder)
    return folder


@pytest.mark.falsifies("FALSIFY-RELIABILITY-007")
@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors",
                                   "link.safetensors"])
def test_falsify_reliability_007_model_index_cannot_name_a_file_outside(tmp_path, hf_folder, shard):
    from apr.convert.hf_import import import_hf
    from apr.errors import ConvertError

    folder = _model_copy(hf_folder, tmp_path)
    (tmp_path / "outside.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (folder / "model.safetensors").unlink()
    (folder / "link.safetensors").symlink_to(tmp_path / "outside.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(ConvertError):
        import_hf(folder, tmp_path / "out.apr")
    assert not (tmp_path / "out.apr").exists()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-007")
@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"])
def test_falsify_reliability_007_model_folder_symlink_outside_is_refused(tmp_path, hf_folder, name):
    from apr.convert.hf_import import import_hf
    from apr.errors import AprError

    folder = _model_copy(hf_folder, tmp_path)
    outside = tmp_path / f"outside-{name}"
    outside.write_bytes((folder / name).read_bytes())
    (folder / name).unlink()
    (folder / name).symlink_to(outside)
    with pytest.raises(AprError, match="outside"):
        import_hf(folder, tmp_path / "out.apr")
