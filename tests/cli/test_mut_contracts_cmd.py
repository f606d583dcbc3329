"""`apr contracts ...`'s command module (apr/cli/contracts_cmd.py), issue 23: each subcommand's exit
codes (lint 0 / 5, verify the runner's 0 / 1 / 2, 3 for a name or path that is not there, 64 for
a usage error), its ``--json`` envelope, and its text output.

Everything runs in-process (`apr.cli.main.main`) inside a throw-away project (pyproject.toml,
contracts/, tests/) in a temporary folder: the repository's own contracts are never read. The
verify runner (a child pytest) is replaced by a recording stand-in; its own tests are in
tests/harness/.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from apr.cli import contracts_cmd
from apr.cli.main import main
from tests.harness.projects import PYPROJECT, contract_yaml, passing_test


@pytest.fixture()
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(extra=""), encoding="utf-8")
    (tmp_path / "contracts").mkdir()
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    return tmp_path


def _apr(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _contract(project: Path, name: str, prefix: str, falsifiers: list[dict[str, Any]] | None = None) -> Path:
    path = project / "contracts" / f"{name}.yaml"
    path.write_text(contract_yaml(prefix, falsifiers), encoding="utf-8")
    return path


# --- plumbing ------------------------------------------------------------------------------------


def test_the_command_names_its_envelope() -> None:
    assert contracts_cmd._command(argparse.Namespace(contracts_command="lint")) == "contracts lint"
    assert contracts_cmd._command(argparse.Namespace(contracts_command=None)) == "contracts"
    assert contracts_cmd._command(argparse.Namespace()) == "contracts"


def test_a_harness_documents_schema_becomes_receipt_schema() -> None:
    document = {"schema": "apr-contracts/lint/1", "a": 1}
    assert contracts_cmd._payload(document) == {"a": 1, "receipt_schema": "apr-contracts/lint/1"}
    assert document == {"schema": "apr-contracts/lint/1", "a": 1}  # the harness's own document is kept
    assert contracts_cmd._payload({"a": 1}) == {"a": 1}


def test_contracts_alone_prints_the_help_and_is_a_usage_error(project: Path, capsys) -> None:
    code, out, err = _apr(capsys, "contracts")
    assert code == 64 and out == ""
    assert "usage:" in err and "SUBCOMMAND" in err and "lint" in err


@pytest.mark.parametrize(("width", "expected"), [(None, 120), ("80", 100), ("100", 100), ("99", 100), ("150", 150)])
def test_the_verdict_tables_width(monkeypatch, width, expected: int) -> None:
    """Off a terminal 120; on one (COLUMNS here) the terminal's, at least 100."""
    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", width)
    assert contracts_cmd._width() == expected


def test_as_text() -> None:
    document = {"kind": "contract", "empty": "", "none": None, "zero": 0, "names": ["a", "b"], "nothing": [],
                "items": [{"id": "X", "tags": []}, {"id": "Y", "tags": ["t"]}]}
    assert contracts_cmd._as_text(document) == (
        "kind: contract\nempty: —\nnone: —\nzero: 0\nnames: a, b\nnothing: —\nitems:\n"
        "  - id: X\n    tags: —\n  - id: Y\n    tags: t\n")
    assert contracts_cmd._as_text({"a": 1}, indent="  ") == "  a: 1\n"


def test_claimed_by_finds_both_quote_styles_with_line_numbers(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "sub").mkdir(parents=True)
    (tests / "test_a.py").write_text('x = 1\n@m("FALSIFY-A-001")\n', encoding="utf-8")
    (tests / "sub" / "test_b.py").write_text("# FALSIFY-A-001 unquoted\n\ny = 'FALSIFY-A-001'\n", encoding="utf-8")
    (tests / "test_c.py").write_bytes(b"\xff\xfe FALSIFY-A-001")  # not UTF-8: skipped
    (tests / "test_d.py").write_text('"FALSIFY-A-0011"\n', encoding="utf-8")  # another id
    (tests / "notes.txt").write_text('"FALSIFY-A-001"\n', encoding="utf-8")  # not a .py file
    assert contracts_cmd._claimed_by("FALSIFY-A-001", tests) == ["tests/sub/test_b.py:3", "tests/test_a.py:2"]
    assert contracts_cmd._claimed_by("FALSIFY-A-001", tmp_path / "none") == []


# --- lint ----------------------------------------------------------------------------------------


def test_lint_clean_text_and_json(project: Path, capsys) -> None:
    """A falsifier without a mutant is a warning: exit 0, and 5 under --strict."""
    _contract(project, "ok-v1", "OK")
    code, out, _ = _apr(capsys, "contracts", "lint")
    assert code == 0 and out.splitlines()[-1] == "1 file(s) checked: 0 error(s), 1 warning(s), 0 note(s)"
    assert "warning[no-mutant]" in out
    code, out, _ = _apr(capsys, "contracts", "lint", "--strict")
    assert code == 5 and out.splitlines()[-1] == "1 file(s) checked: 0 error(s), 1 warning(s), 0 note(s)"
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "apr.contracts.lint/1" and doc["command"] == "contracts lint"
    assert doc["exit_code"] == 0 and doc["ok"] is True and doc["receipt_schema"] == "apr-contracts/lint/1"
    assert [c["path"] for c in doc["contracts"]] == ["contracts/ok-v1.yaml"]


def test_lint_errors_are_5_and_compat_makes_unknown_keys_warnings(project: Path, capsys) -> None:
    _contract(project, "odd-v1", "ODD", [{"surprise": 1}])
    code, out, _ = _apr(capsys, "contracts", "lint")
    assert code == 5
    lines = out.splitlines()
    assert any("surprise" in line for line in lines[:-1])  # the finding, above the counts
    assert lines[-1] == "1 file(s) checked: 1 error(s), 1 warning(s), 0 note(s)"
    code, out, _ = _apr(capsys, "contracts", "lint", "--compat")
    assert code == 0 and out.splitlines()[-1] == "1 file(s) checked (compat): 0 error(s), 2 warning(s), 0 note(s)"
    code, out, _ = _apr(capsys, "contracts", "lint", "--compat", "--strict", "--json")
    doc = json.loads(out)
    assert code == 5 and doc["exit_code"] == 5 and doc["ok"] is False


def test_lint_paths_given_and_missing(project: Path, capsys) -> None:
    _contract(project, "odd-v1", "ODD", [{"surprise": 1}])
    good = project / "elsewhere" / "ok-v1.yaml"
    good.parent.mkdir()
    good.write_text(contract_yaml("OK"), encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "lint", str(good))
    assert code == 0 and out.splitlines()[-1].startswith("1 file(s) checked: 0 error(s)")
    code, out, err = _apr(capsys, "contracts", "lint", "nowhere", "--json")
    assert code == 3 and json.loads(out)["error"]["exit_code"] == 3
    code, out, err = _apr(capsys, "contracts", "lint", "nowhere")
    assert code == 3 and out == "" and err.startswith("error:")


def test_lint_resolves_mutants_against_the_project(project: Path, capsys) -> None:
    """A falsifier's mutant must name code that exists in the project (resolve_mutants=root)."""
    _contract(project, "mut-v1", "MUT", [{"mutants": [{"name": "m", "target": "nowhere.module:function",
                                                       "replace": "a", "with": "b"}]}])
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    findings = json.loads(out)["findings"]
    assert code == 5 and findings and all(f["severity"] == "error" for f in findings)


# --- list / show ---------------------------------------------------------------------------------


def test_list_json_and_text(project: Path, capsys) -> None:
    _contract(project, "b-v1", "BEE", [{}, {"pending": "not yet"}])
    _contract(project, "a-v1", "AYE")
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "apr.contracts.list/1" and doc["command"] == "contracts list"
    assert doc["input"] is None and doc["exit_code"] == 0
    assert doc["contracts"] == [
        {"name": "a-v1", "version": "1.0.0", "status": "FUNCTIONAL", "path": "contracts/a-v1.yaml", "valid": True,
         "invariants": 1, "falsifiers": 1, "pending": 0},
        {"name": "b-v1", "version": "1.0.0", "status": "FUNCTIONAL", "path": "contracts/b-v1.yaml", "valid": True,
         "invariants": 2, "falsifiers": 2, "pending": 1},
    ]
    code, out, _ = _apr(capsys, "contracts", "list")
    assert code == 0
    rows = [re.sub(r"[│┃]", " ", line).split() for line in out.splitlines()]
    assert ["contract", "version", "status", "invariants", "falsifiers", "pending", "lint", "path"] in rows
    assert ["a-v1", "1.0.0", "FUNCTIONAL", "1", "1", "0", "ok", "contracts/a-v1.yaml"] in rows
    assert ["b-v1", "1.0.0", "FUNCTIONAL", "2", "2", "1", "ok", "contracts/b-v1.yaml"] in rows


def test_list_marks_an_invalid_contract(project: Path, capsys) -> None:
    (project / "contracts" / "bad-v1.yaml").write_text("metadata: {}\n", encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    (row,) = json.loads(out)["contracts"]
    assert code == 0 and row["valid"] is False
    code, out, _ = _apr(capsys, "contracts", "list")
    row = next(re.sub(r"[│┃]", " ", line).split() for line in out.splitlines() if "bad-v1" in line)
    assert row[0] == "bad-v1" and "errors" in row and "?" in row


def test_list_without_a_contracts_folder_is_3(project: Path, capsys) -> None:
    (project / "contracts").rmdir()
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    error = json.loads(out)["error"]
    assert code == 3 and error["exit_code"] == 3 and "no contracts folder at" in error["message"]
    assert "apr contracts new NAME" in error["hint"] and json.loads(out)["command"] == "contracts list"


def test_show_a_contract_an_invariant_and_a_falsifier(project: Path, capsys) -> None:
    _contract(project, "show-v1", "SHOW", [{}, {}])
    (project / "tests" / "test_show.py").write_text(passing_test("SHOW"), encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "show", "show-v1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "apr.contracts.show/1" and doc["command"] == "contracts show"
    assert doc["kind"] == "contract" and doc["name"] == "show-v1" and doc["path"] == "contracts/show-v1.yaml"
    assert doc["version"] == "1.0.0" and doc["status"] == "FUNCTIONAL" and doc["description"] == "contract SHOW"
    assert doc["depends_on"] == [] and doc["valid"] is True and doc["references"] == []
    assert [i["id"] for i in doc["invariants"]] == ["INV-SHOW-001", "INV-SHOW-002"]
    assert doc["invariants"][0]["statement"] == "promise 1" and doc["invariants"][0]["location"].startswith(
        "contracts/show-v1.yaml:")
    assert [f["id"] for f in doc["falsifiers"]] == ["FALSIFY-SHOW-001", "FALSIFY-SHOW-002"]
    first = doc["falsifiers"][0]
    assert first == {"id": "FALSIFY-SHOW-001", "contract": "show-v1", "invariants": ["INV-SHOW-001"], "rule": "r",
                     "prediction": "p", "if_fails": "f", "level": first["level"], "requires": [], "pending": None,
                     "location": first["location"], "mutants": [], "claimed_by": ["tests/test_show.py:4"]}
    assert isinstance(first["level"], str) and first["location"].startswith("contracts/show-v1.yaml:")
    code, out, _ = _apr(capsys, "contracts", "show", "INV-SHOW-002", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "invariant" and doc["id"] == "INV-SHOW-002" and doc["contract"] == "show-v1"
    assert doc["statement"] == "promise 2" and doc["falsifiers"] == ["FALSIFY-SHOW-002"]
    assert doc["location"].startswith("contracts/show-v1.yaml:")
    code, out, _ = _apr(capsys, "contracts", "show", "FALSIFY-SHOW-002", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "falsifier" and doc["id"] == "FALSIFY-SHOW-002" and doc["claimed_by"] == []


def test_show_in_text(project: Path, capsys) -> None:
    _contract(project, "show-v1", "SHOW")
    code, out, _ = _apr(capsys, "contracts", "show", "INV-SHOW-001")
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == ["kind: invariant", "id: INV-SHOW-001", "contract: show-v1", "statement: promise 1"]
    assert lines[5] == "falsifiers: FALSIFY-SHOW-001" and len(lines) == 6


def test_show_an_unknown_id_is_3_with_the_nearest(project: Path, capsys) -> None:
    _contract(project, "show-v1", "SHOW")
    code, out, _ = _apr(capsys, "contracts", "show", "FALSIFY-SHOW-01", "--json")
    error = json.loads(out)["error"]
    assert code == 3 and error["exit_code"] == 3 and error["hint"] == "did you mean 'FALSIFY-SHOW-001'?"
    assert error["message"] == "no contract, invariant or falsifier 'FALSIFY-SHOW-01'"
    assert json.loads(out)["command"] == "contracts show"
    code, out, _ = _apr(capsys, "contracts", "show", "zzzzzzzzzzzzzzzzzzzzzzzz", "--json")
    assert code == 3 and json.loads(out)["error"]["hint"] == "see `apr contracts list`"
    code, out, err = _apr(capsys, "contracts", "show", "FALSIFY-SHOW-01")
    assert code == 3 and out == "" and "did you mean 'FALSIFY-SHOW-001'?" in err


# --- diff ----------------------------------------------------------------------------------------


def test_diff_exit_codes_and_json(project: Path, capsys, tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(contract_yaml("DIF", [{}, {}]), encoding="utf-8")
    same = tmp_path / "same.yaml"
    same.write_text(contract_yaml("DIF", [{}, {}]), encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "diff", str(old), str(same), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "apr.contracts.diff/1" and doc["command"] == "contracts diff"
    assert doc["input"] == [str(old), str(same)] and doc["exit_code"] == 0 and doc["ok"] is True
    weaker = tmp_path / "weaker.yaml"
    weaker.write_text(contract_yaml("DIF", [{}]), encoding="utf-8")  # a falsifier removed, same version
    code, out, _ = _apr(capsys, "contracts", "diff", str(old), str(weaker), "--json")
    doc = json.loads(out)
    assert code == 5 and doc["exit_code"] == 5 and doc["ok"] is False and doc["errors"]
    code, out, _ = _apr(capsys, "contracts", "diff", str(old), str(weaker))
    assert code == 5 and out.startswith(f"apr contracts diff {old} {weaker}\n") and out.endswith("\n")
    assert not out.endswith("\n\n")


# --- verify --------------------------------------------------------------------------------------


class Verify:
    def __init__(self, code: int) -> None:
        self.code = code
        self.calls: list[dict[str, Any]] = []
        self.rendered: list[dict[str, Any]] = []

    def run_verify(self, pytest_args, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.calls.append({"pytest_args": pytest_args, **kwargs})
        verdict = {0: "GO", 1: "NO-GO", 2: "UNKNOWN"}[self.code]
        return self.code, {"schema": "apr-contracts/verdict/1", "verdict": verdict, "falsifiers": []}

    def render_receipt(self, document, **kwargs: Any) -> str:
        self.rendered.append({"document": document, **kwargs})
        return f"verdict: {document['verdict']}\n"


@pytest.fixture()
def verify(monkeypatch) -> Any:
    import falsifiers.report
    import falsifiers.runner

    def make(code: int) -> Verify:
        fake = Verify(code)
        monkeypatch.setattr(falsifiers.runner, "run_verify", fake.run_verify)
        monkeypatch.setattr(falsifiers.report, "render_receipt", fake.render_receipt)
        return fake

    return make


@pytest.mark.parametrize("code", [0, 1, 2])
def test_verify_returns_the_runners_code(project: Path, capsys, verify, code: int) -> None:
    fake = verify(code)
    got, out, _ = _apr(capsys, "contracts", "verify", "--json")
    doc = json.loads(out)
    assert got == code and doc["exit_code"] == code and doc["ok"] is (code == 0)
    assert doc["schema"] == "apr.contracts.verify/1" and doc["receipt_schema"] == "apr-contracts/verdict/1"
    assert doc["command"] == "contracts verify"
    assert fake.calls == [{"pytest_args": [], "profile": None, "falsifiers": [], "contracts": [], "artifact": None,
                           "model_card": None, "mutants": False}]
    got, out, _ = _apr(capsys, "contracts", "verify")
    assert got == code and out == f"verdict: {doc['verdict']}\n"


def test_verify_hands_on_its_flags(project: Path, capsys, verify) -> None:
    fake = verify(0)
    artifact, card = project / "m.apr", project / "CARD.md"
    artifact.write_bytes(b"x")
    card.write_text("c", encoding="utf-8")
    code, _, _ = _apr(capsys, "contracts", "verify", "--profile", "gpu", "--falsifier", "F-1", "--falsifier", "F-2",
                      "--contract", "c-v1", "--artifact", str(artifact), "--model-card", str(card), "--mutants",
                      "--", "-q", "tests")
    assert code == 0
    assert fake.calls == [{"pytest_args": ["-q", "tests"], "profile": "gpu", "falsifiers": ["F-1", "F-2"],
                           "contracts": ["c-v1"], "artifact": str(artifact), "model_card": str(card), "mutants": True}]
    assert fake.rendered[0]["width"] == 120 and fake.rendered[0]["color"] is False
    assert fake.rendered[0]["verbose"] is False


def test_verify_verbose_and_a_double_dash_kept_after_the_first(project: Path, capsys, verify) -> None:
    fake = verify(0)
    code, _, _ = _apr(capsys, "-v", "contracts", "verify", "--", "--", "-x")
    assert code == 0 and fake.calls[0]["pytest_args"] == ["--", "-x"]
    assert fake.rendered[0]["verbose"] is True


def test_verify_refusals(project: Path, capsys, verify) -> None:
    fake = verify(0)
    card = project / "CARD.md"
    card.write_text("c", encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "verify", "--model-card", str(card), "--json")
    error = json.loads(out)["error"]
    assert code == 2 and error["exit_code"] == 2  # pytest's usage code
    assert error["message"] == "--model-card needs --artifact"
    assert error["hint"] == "apr contracts verify --artifact MODEL.apr --model-card CARD.md"
    code, out, _ = _apr(capsys, "contracts", "verify", "--artifact", str(project / "none.apr"), "--json")
    error = json.loads(out)["error"]
    assert code == 3 and error["message"] == f"--artifact {project / 'none.apr'}: no such file"
    assert error["hint"] == "give the path of an existing file"
    assert error["path"] == str(project / "none.apr")
    artifact = project / "m.apr"
    artifact.write_bytes(b"x")
    code, out, _ = _apr(capsys, "contracts", "verify", "--artifact", str(artifact), "--model-card",
                        str(project / "none.md"), "--json")
    assert code == 3 and json.loads(out)["error"]["message"] == f"--model-card {project / 'none.md'}: no such file"
    code, out, _ = _apr(capsys, "contracts", "verify", "--artifact", str(project), "--json")
    assert code == 3  # a folder is not a file
    assert fake.calls == []


# --- new -----------------------------------------------------------------------------------------


def test_new_writes_both_files(project: Path, capsys) -> None:
    code, out, err = _apr(capsys, "contracts", "new", "demo-v1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "apr.contracts.new/1" and doc["command"] == "contracts new"
    assert doc["contract"] == (project / "contracts" / "demo-v1.yaml").as_posix()
    assert doc["test"] == (project / "tests" / "test_demo_v1.py").as_posix()
    assert doc["invariant"] == "INV-DEMO-001" and doc["falsifier"] == "FALSIFY-DEMO-001"
    assert (project / doc["contract"]).is_file() and (project / doc["test"]).is_file()
    assert err == ""
    code, out, err = _apr(capsys, "contracts", "new", "other-v1")
    assert code == 0
    assert out == f"wrote {project.as_posix()}/contracts/other-v1.yaml and {project.as_posix()}/tests/test_other_v1.py\n"
    assert err == ("next: state INV-OTHER-001 in the contract and write the test for FALSIFY-OTHER-001; until then "
                   "the verdict is NO-GO\n")


def test_new_refuses_existing_files_and_taken_ids(project: Path, capsys) -> None:
    code, _, _ = _apr(capsys, "contracts", "new", "demo-v1")
    before = (project / "contracts" / "demo-v1.yaml").read_text(encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "new", "demo-v1", "--json")
    assert code == 5 and json.loads(out)["error"]["exit_code"] == 5
    assert (project / "contracts" / "demo-v1.yaml").read_text(encoding="utf-8") == before
    (project / "contracts" / "demo-v1.yaml").write_text(before.replace("\n", "\n# edited\n", 1), encoding="utf-8")
    code, _, _ = _apr(capsys, "contracts", "new", "demo-v1", "--force")  # its own ids are not "taken"
    assert code == 0 and "# edited" not in (project / "contracts" / "demo-v1.yaml").read_text(encoding="utf-8")
    # another contract already declares the ids a new demo-v2 would take, --force or not
    for extra in ([], ["--force"]):
        code, out, _ = _apr(capsys, "contracts", "new", "demo-v2", "--json", *extra)
        assert code == 5 and "already declared" in json.loads(out)["error"]["message"]
        assert not (project / "contracts" / "demo-v2.yaml").exists()


def test_new_refuses_a_folder_where_its_test_goes(project: Path, capsys) -> None:
    (project / "tests" / "test_box_v1.py").mkdir()
    code, out, _ = _apr(capsys, "contracts", "new", "box-v1", "--force", "--json")
    assert code == 5 and json.loads(out)["error"]["exit_code"] == 5 and not (project / "contracts" / "box-v1.yaml").exists()


def test_new_without_a_contracts_folder_creates_it(project: Path, capsys) -> None:
    (project / "contracts").rmdir()
    code, out, _ = _apr(capsys, "contracts", "new", "demo-v1", "--json")
    assert code == 0 and (project / "contracts" / "demo-v1.yaml").is_file()
    assert json.loads(out)["falsifier"] == "FALSIFY-DEMO-001"


# --- issue 23, the survivors of the contracts_cmd run (helper mutcc) ------------------------------


def test_a_subcommands_own_usage_error_is_64_with_its_help_hint(project: Path, capsys) -> None:
    """`contracts show` without its ID: the subcommand's own parser reports it, as every apr parser does
    (exit 64, EX_USAGE, and the JSON envelope under --json), not argparse's exit 2."""
    code, out, err = _apr(capsys, "contracts", "show", "--json")
    error = json.loads(out)["error"]
    assert code == 64 and error["exit_code"] == 64 and error["code"] == "usage"
    assert error["message"] == "the following arguments are required: ID"
    assert error["hint"] == "run `apr contracts show --help` for the accepted flags"
    code, out, err = _apr(capsys, "contracts", "new")
    assert code == 64 and out == "" and "error: the following arguments are required: NAME" in err


def test_the_folders_and_bounds_come_from_the_projects_pyproject(tmp_path: Path, monkeypatch, capsys) -> None:
    """[tool.apr-contracts] contracts / tests name the folders; max-bytes bounds each contract file."""
    (tmp_path / "pyproject.toml").write_text('[tool.apr-contracts]\ncontracts = "specs"\ntests = "checks"\n',
                                             encoding="utf-8")
    (tmp_path / "specs").mkdir()
    (tmp_path / "checks").mkdir()
    (tmp_path / "specs" / "cfg-v1.yaml").write_text(contract_yaml("CFG"), encoding="utf-8")
    (tmp_path / "checks" / "test_cfg.py").write_text(passing_test("CFG"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    assert code == 0 and [c["path"] for c in json.loads(out)["contracts"]] == ["specs/cfg-v1.yaml"]
    code, out, _ = _apr(capsys, "contracts", "show", "FALSIFY-CFG-001", "--json")
    assert code == 0 and json.loads(out)["claimed_by"] == ["checks/test_cfg.py:4"]


def test_max_bytes_of_the_pyproject_bounds_list_and_lint(project: Path, capsys) -> None:
    path = _contract(project, "big-v1", "BIG")
    size = path.stat().st_size
    with (project / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(f"max-bytes = {size - 1}\n")
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    (row,) = json.loads(out)["contracts"]
    assert code == 0 and row["name"] == "big-v1" and row["valid"] is False
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    doc = json.loads(out)
    assert code == 5 and doc["exit_code"] == 5
    assert any(f"a contract may be at most {size - 1:,} bytes" in f["message"] for f in doc["findings"])
    text = (project / "pyproject.toml").read_text(encoding="utf-8").replace(f"max-bytes = {size - 1}", f"max-bytes = {size}")
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    assert code == 0 and json.loads(out)["contracts"][0]["valid"] is True  # a file of exactly max-bytes is read


def test_without_a_pyproject_the_current_folder_is_the_project(tmp_path: Path, monkeypatch, capsys) -> None:
    from falsifiers.settings import find_pyproject

    if find_pyproject(tmp_path) is not None:
        pytest.skip("a pyproject.toml above the temporary folder")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _apr(capsys, "contracts", "new", "demo-v1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["contract"] == (tmp_path / "contracts" / "demo-v1.yaml").as_posix()
    assert doc["test"] == (tmp_path / "tests" / "test_demo_v1.py").as_posix()


def test_no_contracts_folder_names_the_folder_and_how_to_make_one(project: Path, capsys) -> None:
    (project / "contracts").rmdir()
    code, out, _ = _apr(capsys, "contracts", "list", "--json")
    error = json.loads(out)["error"]
    assert code == 3 and error["path"] == str(project / "contracts")
    assert error["message"] == f"no contracts folder at {project / 'contracts'}"
    assert error["hint"] == ("create one with `apr contracts new NAME`, or set [tool.apr-contracts] contracts = \"…\" "
                             "in pyproject.toml")


def test_lint_resolves_each_mutant_inside_the_project(project: Path, capsys) -> None:
    """A mutant whose target is in the project's namespaces but names nothing: only resolving finds it."""
    mutant = {"name": "m", "target": "falsifiers.report.NO_SUCH_NAME", "replacement": "falsifiers.mutation:VACUOUS"}
    _contract(project, "res-v1", "RES", [{"mutants": [mutant]}])
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    doc = json.loads(out)
    assert code == 5 and [(f["severity"], f["code"]) for f in doc["findings"]] == [("error", "mutant-unresolved")]
    good = {"name": "m", "target": "falsifiers.report.HARNESS", "replacement": "falsifiers.mutation:VACUOUS"}
    _contract(project, "res-v1", "RES", [{"mutants": [good]}])
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    assert code == 0 and json.loads(out)["findings"] == []


def test_lint_knows_the_capabilities_the_projects_profiles_name(project: Path, capsys) -> None:
    _contract(project, "cap-v1", "CAP", [{"requires": ["tpu"]}])
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    assert code == 0 and [f["code"] for f in json.loads(out)["findings"]] == ["capability", "no-mutant"]
    with (project / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[tool.apr-contracts.profiles.cpu]\noptional-requires = ["tpu"]\n')
    code, out, _ = _apr(capsys, "contracts", "lint", "--json")
    assert code == 0 and [f["code"] for f in json.loads(out)["findings"]] == ["no-mutant"]


def test_list_text_rows_of_an_invalid_contract_exactly(project: Path, capsys) -> None:
    """An unknown version and status read "?"; the table has no padding at its outer edges."""
    (project / "contracts" / "bad-v1.yaml").write_text("metadata: {}\n", encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "list")
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "contract" in line and "version" in line)
    row = next(line for line in lines if "bad-v1" in line)
    assert header.startswith("┃contract ")
    assert row.startswith("│bad-v1 ") and row.endswith("contracts/bad-v1.yaml│")
    assert re.sub(r"[│┃]", " ", row).split() == ["bad-v1", "?", "?", "0", "0", "0", "errors", "contracts/bad-v1.yaml"]


def test_show_a_contract_without_a_status(project: Path, capsys) -> None:
    (project / "contracts" / "bad-v1.yaml").write_text("metadata: {}\n", encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "show", "bad-v1", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "contract" and doc["name"] == "bad-v1"
    assert doc["status"] is None and doc["version"] is None and doc["valid"] is False


def test_claimed_by_scans_every_file_after_one_without_the_id_or_unreadable(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text("nothing here\n", encoding="utf-8")  # no id: the next file is still read
    (tests / "test_b.py").write_bytes(b'\xff\xfe"FALSIFY-A-001"')  # not UTF-8: skipped, the next still read
    (tests / "test_c.py").write_text('\n"FALSIFY-A-001"\n', encoding="utf-8")
    assert contracts_cmd._claimed_by("FALSIFY-A-001", tests) == ["tests/test_c.py:2"]


def test_claimed_by_reads_utf8_whatever_the_locale(tmp_path: Path, monkeypatch) -> None:
    """Test files are UTF-8 (PEP 3120); where the locale's encoding is another (here ASCII), a file
    with non-ASCII text is still scanned."""
    import io

    real = io.text_encoding
    monkeypatch.setattr(io, "text_encoding", lambda encoding, stacklevel=2: "ascii" if encoding is None
                        else real(encoding))
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text('"""Café."""\n@m("FALSIFY-A-001")\n', encoding="utf-8")
    assert contracts_cmd._claimed_by("FALSIFY-A-001", tests) == ["tests/test_a.py:2"]


def test_as_text_keeps_the_end_of_a_list_items_last_value() -> None:
    document = {"items": [{"id": "A", "note": "ends in X"}, {"id": "B", "note": "ends in a space "}]}
    assert contracts_cmd._as_text(document) == (
        "items:\n  - id: A\n    note: ends in X\n  - id: B\n    note: ends in a space \n")


def test_verify_under_a_parser_without_apr_global_flags(project: Path, capsys, verify) -> None:
    """`register` is self-contained: under a parser without apr's -v, verify is not verbose."""
    fake = verify(1)
    parser = argparse.ArgumentParser(prog="t")
    contracts_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["contracts", "verify"])
    assert not hasattr(args, "verbose")
    assert args.handler(args) == 1
    assert capsys.readouterr().out == "verdict: NO-GO\n"
    assert [r["verbose"] for r in fake.rendered] == [False]


def test_new_refuses_the_ids_of_a_contract_of_the_same_name_elsewhere(project: Path, capsys) -> None:
    """contracts/old/demo-v1.yaml declares INV-DEMO-001: a new contracts/demo-v1.yaml would declare them twice."""
    (project / "contracts" / "old").mkdir()
    (project / "contracts" / "old" / "demo-v1.yaml").write_text(contract_yaml("DEMO"), encoding="utf-8")
    code, out, _ = _apr(capsys, "contracts", "new", "demo-v1", "--json")
    error = json.loads(out)["error"]
    assert code == 5 and "is already declared by another contract" in error["message"]
    assert not (project / "contracts" / "demo-v1.yaml").exists()


def test_new_names_its_name_argument_when_a_folder_is_in_the_way(project: Path, capsys) -> None:
    (project / "tests" / "test_box_v1.py").mkdir()
    code, out, _ = _apr(capsys, "contracts", "new", "box-v1", "--force", "--json")
    error = json.loads(out)["error"]
    assert code == 5 and error["field"] == "NAME"
    assert error["hint"] == f"give the path of the file to create, e.g. NAME {project / 'tests' / 'test_box_v1.py' / 'out'}"
