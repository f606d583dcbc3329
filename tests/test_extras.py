"""Extras by job (issue 17): a command that needs a missing optional part says which to install.

The machine running the suite has torch; its absence is simulated by making ``find_spec`` miss it,
which is exactly what `apr.cli.extras` asks.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from apr.cli.main import main
from apr.errors import EXIT_FEATURE_DISABLED

NEEDS_TORCH = {
    "pretrain": ["pretrain", "--dataset", "d", "--run-dir", "r"],
    "run": ["run", "m.apr", "hello"],
    "qa": ["qa", "m.apr"],
    "readiness": ["readiness", "m.apr", "--model-card", "card.md"],
    "demo": ["demo", "-o", "out"],
}


@pytest.fixture
def without_torch(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "torch" or name.startswith("torch.") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("command", sorted(NEEDS_TORCH))
def test_a_command_that_needs_torch_names_the_extra(command, without_torch, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(NEEDS_TORCH[command]) == EXIT_FEATURE_DISABLED == 9
    err = capsys.readouterr().err
    assert f"apr {command} needs PyTorch" in err and "pip install 'apr-contracts[train]'" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []  # refused before any work


def test_the_refusal_is_json_under_json(without_torch, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["qa", "m.apr", "--json"]) == 9
    error = json.loads(capsys.readouterr().out)["error"]
    assert (error["code"], error["field"], error["exit_code"]) == ("missing-extra", "train", 9)


@pytest.mark.parametrize("argv", [["inspect", "--help"], ["validate", "--help"], ["stamp", "--help"]])
def test_commands_without_torch_do_not_ask_for_it(argv, without_torch, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0 and "PyTorch" not in capsys.readouterr().err


def test_the_train_extra_is_declared_and_torch_is_not_a_base_dependency():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert not any(dep.split(">")[0].split("=")[0].strip() == "torch" for dep in project["dependencies"])
    assert any(dep.startswith("torch") for dep in project["optional-dependencies"]["train"])
    assert "apr-contracts[train]" in project["optional-dependencies"]["test"]
