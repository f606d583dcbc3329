"""Contract apr-contracts-diff-v1: `apr contracts diff OLD NEW` (issue 15, part 4)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.cli.main import main
from falsifiers.contract_diff import Side, diff_contracts, diff_sides, read_side


def _contract(version: str = "1.0.0", falsifiers: int = 3) -> dict:
    return {
        "metadata": {"version": version, "status": "FUNCTIONAL", "description": "d"},
        "invariants": [{"id": f"INV-T-00{i}", "statement": f"s{i}"} for i in range(1, 3)],
        "falsification_tests": [
            {"id": f"FALSIFY-T-00{i}", "invariant": "INV-T-001", "rule": "r", "prediction": "p", "if_fails": "f",
             "level": "algorithm", "requires": [],
             "mutants": [{"name": f"m{i}a", "target": "a.b", "replacement": "c:d"},
                         {"name": f"m{i}b", "target": "a.b", "replacement": "c:e"}]}
            for i in range(1, falsifiers + 1)],
    }


def _side(**contracts: dict) -> Side:
    return Side("x", {k.replace("_", "-"): v for k, v in contracts.items()}, {})


def _kinds(result) -> set[tuple[str, str, str]]:
    return {(c.kind, c.what, c.id) for c in result.changes}


# --- FALSIFY-CONTRACT-DIFF-001 / 002: Hypothesis over edits ----------------------------------------------

_OPS = ["remove_falsifier", "remove_mutant", "add_mutant", "add_falsifier", "add_invariant", "change_prediction",
        "add_requires", "set_pending", "move_falsifier"]
_WEAKENING = {"remove_falsifier", "remove_mutant", "add_requires", "set_pending"}


def _apply(op: str, index: int, new: dict, other: dict) -> tuple[set, bool]:
    """Apply one edit to ``new`` (and maybe ``other``); return the changes it must produce and
    whether it weakens (falsifier index ``index`` is 1-based and untouched before)."""
    fid = f"FALSIFY-T-00{index}"
    tests = new["falsification_tests"]
    entry = next(t for t in tests if t["id"] == fid)
    if op == "remove_falsifier":
        tests.remove(entry)
        return {("removed", "falsifier", fid)}, True
    if op == "remove_mutant":
        gone = entry["mutants"].pop(0)
        return {("removed", "mutant", f"{fid}/{gone['name']}")}, True
    if op == "add_mutant":
        entry["mutants"].append({"name": "extra", "target": "a.b", "replacement": "c:z"})
        return {("added", "mutant", f"{fid}/extra")}, False
    if op == "add_falsifier":
        tests.append({**copy.deepcopy(entry), "id": f"FALSIFY-T-10{index}"})
        return {("added", "falsifier", f"FALSIFY-T-10{index}")}, False
    if op == "add_invariant":
        new["invariants"].append({"id": f"INV-T-10{index}", "statement": "new"})
        return {("added", "invariant", f"INV-T-10{index}")}, False
    if op == "change_prediction":
        entry["prediction"] = "p2"
        return {("changed", "falsifier", fid)}, False
    if op == "add_requires":
        entry["requires"] = ["cuda"]
        return {("changed", "falsifier", fid)}, True
    if op == "set_pending":
        entry["pending"] = "later"
        return {("changed", "falsifier", fid)}, True
    tests.remove(entry)  # move_falsifier
    other["falsification_tests"].append(entry)
    return {("moved", "falsifier", fid)}, False


@st.composite
def _edits(draw):
    indices = draw(st.lists(st.integers(1, 3), unique=True, min_size=0, max_size=3))
    return [(draw(st.sampled_from(_OPS)), i) for i in indices], draw(st.booleans())


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-001")
@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-002")
@settings(max_examples=150, deadline=None)
@given(case=_edits())
def test_changes_and_errors_are_exactly_the_edits(case):
    edits, bump = case
    old_main, old_other = _contract(), {**_contract(), "falsification_tests": []}
    new_main, new_other = copy.deepcopy(old_main), copy.deepcopy(old_other)
    expected, weakened = set(), set()
    for op, index in edits:
        changes, weakens = _apply(op, index, new_main, new_other)
        expected |= changes
        if weakens:
            weakened.add(f"FALSIFY-T-00{index}")
    if bump:
        new_main["metadata"]["version"] = "2.0.0"
        expected.add(("changed", "contract", "main"))
    result = diff_sides(_side(main=old_main, other=old_other), _side(main=new_main, other=new_other))
    assert _kinds(result) == expected
    assert {e.falsifier for e in result.errors} == (set() if bump else weakened)
    for error in result.errors:
        assert "without a major version bump" in error.message and "2.0.0" in error.hint


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-001")
def test_a_side_against_itself_has_no_change(tmp_path):
    result = diff_contracts("contracts", "contracts", contracts_dir="contracts")
    assert result.changes == [] and result.errors == []


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-002")
@pytest.mark.parametrize(("edit", "words"), [
    (lambda f: f["mutants"].pop(), "mutant 'm1b' removed"),
    (lambda f: f.__setitem__("requires", ["cuda"]), "now requires 'cuda'"),
    (lambda f: f.__setitem__("pending", "soon"), "now pending"),
    (lambda f: f.__setitem__("invariant", "INV-T-002"), "no longer attacks INV-T-001"),
])
def test_each_weakening_is_named(tmp_path, capsys, edit, words):
    old, new = _contract(), _contract("1.1.0")
    edit(new["falsification_tests"][0])
    for name, data in (("old", old), ("new", new)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "t-v1.yaml").write_text(yaml.safe_dump(data))
    assert main(["contracts", "diff", os.fspath(tmp_path / "old"), os.fspath(tmp_path / "new")]) == 5
    out = capsys.readouterr().out
    assert f"error: FALSIFY-T-001: check weakened: {words}" in out
    assert "fix: bump t-v1's metadata.version to 2.0.0" in out
    new["metadata"]["version"] = "2.0.0"
    (tmp_path / "new" / "t-v1.yaml").write_text(yaml.safe_dump(new))
    assert main(["contracts", "diff", os.fspath(tmp_path / "old"), os.fspath(tmp_path / "new"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == [] and document["ok"] is True
    assert any(c["id"].startswith("FALSIFY-T-001") for c in document["changes"])


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-002")
def test_removing_a_contract_removes_its_falsifiers_unless_they_moved():
    both = _contract()
    result = diff_sides(_side(a=both, b={**_contract(), "falsification_tests": []}), _side(b=both))
    assert {e.falsifier for e in result.errors} == set()
    assert ("moved", "falsifier", "FALSIFY-T-001") in _kinds(result)
    gone = diff_sides(_side(a=_contract()), _side())
    assert {e.falsifier for e in gone.errors} == {"FALSIFY-T-001", "FALSIFY-T-002", "FALSIFY-T-003"}
    assert "the contract was removed" in gone.errors[0].message


# --- FALSIFY-CONTRACT-DIFF-003: git:REV reads, never runs ---------------------------------------------------


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    (root / "contracts").mkdir(parents=True)
    _git(root, "init", "-q")
    (root / "contracts" / "t-v1.yaml").write_text(yaml.safe_dump(_contract()))
    pwned = tmp_path / "pwned"
    (root / ".gitattributes").write_text("*.yaml diff=evil\n")
    _git(root, "config", "diff.evil.textconv", f"sh -c 'touch {pwned}; cat' --")
    _git(root, "config", "core.hooksPath", ".hooks")
    (root / ".hooks").mkdir()
    for hook in ("post-checkout", "pre-commit", "reference-transaction"):
        (root / ".hooks" / hook).write_text(f"#!/bin/sh\ntouch {pwned}\n")
    _git(root, "add", "-A")
    _git(root, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "base")
    return root, pwned


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-003")
def test_git_rev_is_read_as_committed_and_nothing_runs(repo):
    root, pwned = repo
    changed = _contract("1.0.1")
    changed["falsification_tests"].pop()
    (root / "contracts" / "t-v1.yaml").write_text(yaml.safe_dump(changed))
    result = diff_contracts("git:HEAD", os.fspath(root / "contracts"), contracts_dir=root / "contracts")
    assert _kinds(result) == {("changed", "contract", "t-v1"), ("removed", "falsifier", "FALSIFY-T-003")}
    assert [e.falsifier for e in result.errors] == ["FALSIFY-T-003"]
    assert not pwned.exists()


@pytest.mark.falsifies("FALSIFY-CONTRACT-DIFF-003")
@pytest.mark.parametrize("rev", ["--output=x", "-p", "HEAD:../x", "HEAD; touch y", "", "no-such-branch"])
def test_a_rev_that_is_not_a_revision_is_refused(repo, monkeypatch, capsys, rev):
    root, pwned = repo
    monkeypatch.chdir(root)
    assert main(["contracts", "diff", f"git:{rev}", "contracts"]) == 3
    assert "error:" in capsys.readouterr().err
    assert not (root / "x").exists() and not (root / "y").exists() and not pwned.exists()


def test_read_side_of_a_file_and_of_an_invalid_one(tmp_path):
    (tmp_path / "a-v1.yaml").write_text(yaml.safe_dump(_contract()))
    assert list(read_side(os.fspath(tmp_path / "a-v1.yaml"), contracts_dir=tmp_path).contracts) == ["a-v1"]
    (tmp_path / "b-v1.yaml").write_text("metadata: [unclosed\n")
    assert main(["contracts", "diff", os.fspath(tmp_path / "b-v1.yaml"), os.fspath(tmp_path / "a-v1.yaml")]) == 4
