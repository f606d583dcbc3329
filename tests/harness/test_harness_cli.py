"""`apr contracts …` as a user runs it: exit codes, stdout (data) and stderr (people) apart."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from apr.cli import contracts_cmd
from falsifiers.settings import load_settings
from tests.harness.projects import DATA, Project, contract_yaml, passing_test


def apr(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apr")
    contracts_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def inside(project: Project) -> Project:
    cwd = os.getcwd()
    os.chdir(project.root)
    yield project
    os.chdir(cwd)


def test_lint_text_json_and_exit_codes(inside: Project, capsys: pytest.CaptureFixture[str]) -> None:
    inside.contract("ok-v1", contract_yaml("OK"))
    assert apr(["contracts", "lint"]) == 0
    assert "0 error(s)" in capsys.readouterr().out
    inside.contract("typo-v1", contract_yaml("TYPO").replace("if_fails", "if_fail"))
    assert apr(["contracts", "lint", "--json"]) == 5
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "apr.contracts.lint/1" and document["ok"] is False and document["exit_code"] == 5
    assert document["receipt_schema"] == "apr-contracts/lint/1"
    unknown = next(f for f in document["findings"] if f["code"] == "unknown-key")
    assert unknown["location"] == {"path": "contracts/typo-v1.yaml", "line": 17, "col": 5}
    assert apr(["contracts", "lint", "nowhere"]) == 3
    assert "no such file or folder" in capsys.readouterr().err


def test_lint_compat_reads_pv_samples(inside: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code = apr(["contracts", "lint", "--compat", "--json", str(DATA / "pv")])
    document = json.loads(capsys.readouterr().out)
    assert code == 5 and len(document["contracts"]) == 6  # real defects are errors, but nothing crashed
    assert {c["style"] for c in document["contracts"]} == {"pv", "ship-gate", "binding-registry"}


def test_list_and_show(inside: Project, capsys: pytest.CaptureFixture[str]) -> None:
    inside.contract("show-v1", contract_yaml("SHOW"))
    inside.test("test_show", passing_test("SHOW"))
    assert apr(["contracts", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["contracts"]
    assert (row["name"], row["falsifiers"], row["valid"]) == ("show-v1", 1, True)
    assert apr(["contracts", "show", "FALSIFY-SHOW-001", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["claimed_by"] == ["tests/test_show.py:4"] and shown["location"] == "contracts/show-v1.yaml:13:9"
    assert apr(["contracts", "show", "FALSIFY-SHOW-01", "--json"]) == 3
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "contract-not-found" and error["hint"] == "did you mean 'FALSIFY-SHOW-001'?"


@pytest.mark.falsifies("FALSIFY-HARNESS-012")
def test_new_scaffold_lints_clean_and_starts_red(inside: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert apr(["contracts", "new", "demo-v1", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["falsifier"] == "FALSIFY-DEMO-001"
    assert apr(["contracts", "lint"]) == 0
    capsys.readouterr()
    result = inside.run()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FALSIFY-DEMO-001*REFUTED*", "*verdict: NO-GO*"])
    before = (inside.root / "contracts" / "demo-v1.yaml").read_text()
    assert apr(["contracts", "new", "demo-v1"]) == 5
    assert "already exists; nothing was written" in capsys.readouterr().err
    assert (inside.root / "contracts" / "demo-v1.yaml").read_text() == before
    assert apr(["contracts", "new", "Bad Name"]) == 2


def test_verify_prints_the_verdict_and_returns_its_code(inside: Project, capsys: pytest.CaptureFixture[str]) -> None:
    inside.contract("ver-v1", contract_yaml("VER"))
    inside.test("test_ver", passing_test("VER"))
    assert apr(["contracts", "verify", "--json", "--", "-q"]) == 0
    captured = capsys.readouterr()
    receipt = json.loads(captured.out)  # stdout is exactly one JSON document
    assert receipt["verdict"] == "GO" and receipt["scope"] == "full"
    assert "passed" in captured.err  # pytest's own output went to stderr
    (inside.root / "tests" / "test_ver.py").write_text(passing_test("VER").replace("1 + 1 == 2", "1 + 1 == 3"))
    assert apr(["contracts", "verify"]) == 1
    assert "verdict: NO-GO" in capsys.readouterr().out
    # The user's own --contracts-json (either spelling) gets the receipt; a stale one never stands.
    stale = inside.root / "mine.json"
    stale.write_text('{"verdict": "GO"}')
    assert apr(["contracts", "verify", "--", "--contracts-json", "mine.json"]) == 1
    assert json.loads(stale.read_text())["verdict"] == "NO-GO"
    assert apr(["contracts", "verify", "--", "-q", "--contracts-json=other.json"]) == 1
    assert json.loads((inside.root / "other.json").read_text())["verdict"] == "NO-GO"
    capsys.readouterr()


def test_settings_reject_unknown_keys(tmp_path: Path) -> None:
    from falsifiers.errors import SettingsError

    (tmp_path / "pyproject.toml").write_text('[tool.apr-contracts]\ncontract = "x"\n')
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path / "pyproject.toml")
    assert info.value.hint == "did you mean 'contracts'?"
