"""``apr contracts diff`` exactly (issue 23): every change with its details and order, the lint
rule's errors and their fix, the text rendering, and how each kind of side is read (a file, a
folder, ``git:REV`` through read-only plumbing), with the error for each way a side cannot be read.

Expected changes are written out by hand from the two sides each test builds; nothing reads the
repository's contracts/ (each side lives in tmp_path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsifiers import contract_diff
from falsifiers.contract_diff import (
    GIT_PREFIX,
    Change,
    ContractFormatError,
    ContractsDiff,
    LintError,
    Side,
    diff_contracts,
    diff_sides,
    major,
    read_side,
    render_text,
    weakenings,
)
from falsifiers.errors import ContractNotFoundError


def _f(fid: str, invariant: str = "INV-K-001", **extra: Any) -> dict[str, Any]:
    return {"id": fid, "invariant": invariant, "rule": "r", "prediction": "p", "if_fails": "f",
            "level": "algorithm", "requires": [], **extra}


def _c(version: Any, invariants: list[tuple[str, str]], falsifiers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"version": version, "status": "FUNCTIONAL", "description": "d"},
            "invariants": [{"id": i, "statement": s} for i, s in invariants],
            "falsification_tests": falsifiers}


def _m(name: str, replacement: str = "a:b") -> dict[str, str]:
    return {"name": name, "target": "x.y", "replacement": replacement}


# --- the records are interface ---------------------------------------------------------------------


def test_the_records_as_json() -> None:
    assert GIT_PREFIX == "git:"
    assert Change("added", "falsifier", "F-1", "c-v1").to_dict() == {
        "kind": "added", "what": "falsifier", "id": "F-1", "contract": "c-v1", "details": {}}
    assert Change("changed", "mutant", "F-1/m", "c-v1", {"a": [1, 2]}).to_dict()["details"] == {"a": [1, 2]}
    assert LintError("c-v1", "F-1", "msg", "hint").to_dict() == {
        "contract": "c-v1", "falsifier": "F-1", "message": "msg", "hint": "hint"}
    empty = ContractsDiff("old", "new")
    assert (empty.changes, empty.errors) == ([], [])
    assert empty.to_dict() == {"command": "contracts diff", "old": "old", "new": "new", "changes": [], "errors": [],
                               "ok": True}
    full = ContractsDiff("o", "n", [Change("removed", "falsifier", "F-1", "c")], [LintError("c", "F-1", "m", "h")])
    assert full.to_dict() == {"command": "contracts diff", "old": "o", "new": "n",
                              "changes": [{"kind": "removed", "what": "falsifier", "id": "F-1", "contract": "c",
                                           "details": {}}],
                              "errors": [{"contract": "c", "falsifier": "F-1", "message": "m", "hint": "h"}],
                              "ok": False}
    assert ContractFormatError("x").exit_code == 4 and ContractFormatError("x").code == "invalid-contract"


# --- versions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "expected"), [
    ("2.0.1", 2), ("1.10.0", 1), ("10.2.3", 10), ("0.1.0", 0), ("1.2.3-rc1", 1), ("1.2.3.4", 1),
    ("draft", None), ("1.2", None), ("v1.2.3", None), (" 1.2.3", None), ("1..2.3", None), ("1.2.", None),
    ("a.b.c", None), (None, None), (1, None), (1.2, None), (["1.2.3"], None),
])
def test_major_reads_the_first_number_of_a_full_version_only(version: Any, expected: int | None) -> None:
    assert major(version) == expected


# --- what counts as weaker -------------------------------------------------------------------------


def test_nothing_changed_is_nothing_weaker() -> None:
    falsifier = _f("F", mutants=[_m("a")], requires=["cuda"], pending="x")
    assert weakenings(falsifier, dict(falsifier)) == []
    assert weakenings({}, {}) == []


def test_removed_mutants_in_the_old_order_and_only_by_name() -> None:
    old = {"mutants": [_m("b"), _m("a"), _m("c")]}
    assert weakenings(old, {"mutants": [_m("c", "other:x")]}) == ["mutant 'b' removed", "mutant 'a' removed"]
    assert weakenings(old, {}) == ["mutant 'b' removed", "mutant 'a' removed", "mutant 'c' removed"]
    # entries that are no mutant (no name, not a mapping) are no mutant on either side
    assert weakenings({"mutants": [{"target": "x"}, "m", None]}, {}) == []
    assert weakenings({"mutants": [{"name": 7}]}, {"mutants": [{"name": "7"}]}) == []  # names compared as text
    assert weakenings({"mutants": _m("solo")}, {}) == ["mutant 'solo' removed"]  # one mapping, not a list


def test_new_requirements_in_the_new_order() -> None:
    assert weakenings({"requires": ["x"]}, {"requires": ["y", "x", "cuda"]}) == ["now requires 'y'",
                                                                              "now requires 'cuda'"]
    assert weakenings({}, {"requires": "cuda"}) == ["now requires 'cuda'"]  # a single capability
    assert weakenings({"requires": "cuda"}, {"requires": ["cuda"]}) == []
    assert weakenings({"requires": ["cuda"]}, {"requires": None}) == []  # dropping a requirement is stronger


@pytest.mark.parametrize(("old", "new", "weaker"), [
    (None, "later", True), ("", "later", True), (False, True, True),
    ("soon", "later", False), ("soon", None, False), (None, None, False), (None, "", False), (None, False, False),
])
def test_pending_is_weaker_only_when_it_is_newly_set(old: Any, new: Any, weaker: bool) -> None:
    found = weakenings({"pending": old}, {"pending": new})
    assert found == (["now pending (no test runs it)"] if weaker else [])


def test_an_invariant_no_longer_attacked() -> None:
    assert weakenings({"invariant": ["I-1", "I-2"]}, {"invariant": "I-2"}) == ["no longer attacks I-1"]
    assert weakenings({"invariant": "I-1"}, {"invariant": ["I-1", "I-3"]}) == []  # attacking more is fine
    assert weakenings({"invariant": "I-1"}, {}) == ["no longer attacks I-1"]


def test_every_weakening_in_one_list_in_a_fixed_order() -> None:
    old = {"mutants": [_m("m")], "invariant": "I-1"}
    new = {"requires": ["cuda"], "pending": "p", "invariant": "I-2"}
    assert weakenings(old, new) == ["mutant 'm' removed", "now requires 'cuda'", "now pending (no test runs it)",
                                    "no longer attacks I-1"]


# --- diff_sides: one edit of every kind --------------------------------------------------------------


def _sides() -> tuple[Side, Side]:
    old = Side("OLD", {
        "keep-v1": _c("1.0.0", [("INV-K-001", "a"), ("INV-K-002", "b"), ("INV-K-003", "c")], [
            _f("FALSIFY-K-001", mutants=[_m("m1"), _m("m2", "a:c")]),
            _f("FALSIFY-K-002", "INV-K-002"),
            _f("FALSIFY-K-003", "INV-K-003"),
        ]),
        "gone-v1": _c("1.0.0", [("INV-G-001", "g")], [_f("FALSIFY-G-001", "INV-G-001")]),
        "other-v1": _c("3.1.0", [], []),
    }, {})
    new = Side("NEW", {
        "keep-v1": _c("1.1.0", [("INV-K-001", "a2"), ("INV-K-002", "b"), ("INV-K-004", "d")], [
            _f("FALSIFY-K-001", prediction="p2", requires=["cuda"], mutants=[_m("m1", "a:z"), _m("m3")]),
            _f("FALSIFY-K-002", "INV-K-002"),
            _f("FALSIFY-K-005", mutants=[_m("z"), _m("a")]),
        ]),
        "other-v1": _c("3.1.0", [], [_f("FALSIFY-K-003", "INV-K-003")]),
        "new-v1": _c("0.1.0", [("INV-N-001", "n")], [_f("FALSIFY-N-001", "INV-N-001")]),
    }, {})
    return old, new


def test_every_change_with_its_details_in_order() -> None:
    old, new = _sides()
    result = diff_sides(old, new)
    assert (result.old, result.new) == ("OLD", "NEW")
    assert [c.to_dict() for c in result.changes] == [
        # contracts in name order, each with its invariants in id order
        {"kind": "removed", "what": "contract", "id": "gone-v1", "contract": "gone-v1", "details": {"version": "1.0.0"}},
        {"kind": "removed", "what": "invariant", "id": "INV-G-001", "contract": "gone-v1", "details": {}},
        {"kind": "changed", "what": "contract", "id": "keep-v1", "contract": "keep-v1",
         "details": {"version": ["1.0.0", "1.1.0"]}},
        {"kind": "changed", "what": "invariant", "id": "INV-K-001", "contract": "keep-v1",
         "details": {"statement": ["a", "a2"]}},
        {"kind": "removed", "what": "invariant", "id": "INV-K-003", "contract": "keep-v1", "details": {}},
        {"kind": "added", "what": "invariant", "id": "INV-K-004", "contract": "keep-v1", "details": {}},
        {"kind": "added", "what": "contract", "id": "new-v1", "contract": "new-v1", "details": {"version": "0.1.0"}},
        {"kind": "added", "what": "invariant", "id": "INV-N-001", "contract": "new-v1", "details": {}},
        # then falsifiers in id order, across contracts
        {"kind": "removed", "what": "falsifier", "id": "FALSIFY-G-001", "contract": "gone-v1", "details": {}},
        {"kind": "changed", "what": "falsifier", "id": "FALSIFY-K-001", "contract": "keep-v1",
         "details": {"prediction": ["p", "p2"], "requires": [[], ["cuda"]]}},
        {"kind": "changed", "what": "mutant", "id": "FALSIFY-K-001/m1", "contract": "keep-v1",
         "details": {"replacement": ["a:b", "a:z"]}},
        {"kind": "removed", "what": "mutant", "id": "FALSIFY-K-001/m2", "contract": "keep-v1", "details": {}},
        {"kind": "added", "what": "mutant", "id": "FALSIFY-K-001/m3", "contract": "keep-v1", "details": {}},
        {"kind": "moved", "what": "falsifier", "id": "FALSIFY-K-003", "contract": "other-v1",
         "details": {"from": "keep-v1"}},
        {"kind": "added", "what": "falsifier", "id": "FALSIFY-K-005", "contract": "keep-v1",
         "details": {"mutants": ["a", "z"]}},
        {"kind": "added", "what": "falsifier", "id": "FALSIFY-N-001", "contract": "new-v1", "details": {"mutants": []}},
    ]
    assert [e.to_dict() for e in result.errors] == [
        {"contract": "gone-v1", "falsifier": "FALSIFY-G-001",
         "message": "FALSIFY-G-001: falsifier removed without a major version bump (the contract was removed)",
         "hint": "bump gone-v1's metadata.version to 2.0.0 and say why in its changelog, or restore the falsifier"},
        {"contract": "keep-v1", "falsifier": "FALSIFY-K-001",
         "message": "FALSIFY-K-001: check weakened: mutant 'm2' removed; now requires 'cuda' without a major version "
                    "bump (version 1.0.0 -> 1.1.0)",
         "hint": "bump keep-v1's metadata.version to 2.0.0 and say why in its changelog, or restore the falsifier"},
    ]
    assert diff_sides(new, new).changes == [] and diff_sides(old, old).to_dict()["ok"] is True


@pytest.mark.parametrize("field", ["rule", "prediction", "if_fails", "level", "requires", "pending", "invariant"])
def test_each_watched_field_is_a_change_with_old_and_new(field: str) -> None:
    before = _f("F-1", **{field: "one"})
    after = _f("F-1", **{field: "two"})
    result = diff_sides(Side("o", {"c": _c("1.0.0", [], [before])}, {}), Side("n", {"c": _c("2.0.0", [], [after])}, {}))
    (falsifier,) = [c for c in result.changes if c.what == "falsifier"]
    assert (falsifier.kind, falsifier.details) == ("changed", {field: ["one", "two"]})
    assert result.errors == []  # a major bump makes any weakening deliberate


def test_an_unwatched_field_and_a_changed_mutant_key_set() -> None:
    before = _f("F-1", note="x", mutants=[{"name": "m", "target": "x.y", "replacement": "a:b"}])
    after = _f("F-1", note="y", mutants=[{"name": "m", "artifact": "truncate"}])
    result = diff_sides(Side("o", {"c": _c("1.0.0", [], [before])}, {}), Side("n", {"c": _c("1.0.0", [], [after])}, {}))
    # `note` is not watched; the mutant's keys are compared over both key sets, in name order
    assert [c.to_dict() for c in result.changes] == [
        {"kind": "changed", "what": "mutant", "id": "F-1/m", "contract": "c",
         "details": {"artifact": [None, "truncate"], "replacement": ["a:b", None], "target": ["x.y", None]}}]
    assert result.errors == []


def _one(version_old: Any, version_new: Any, *, weaken: bool = True) -> ContractsDiff:
    before = _f("F-1", mutants=[_m("m")])
    after = _f("F-1", mutants=[] if weaken else [_m("m")])
    return diff_sides(Side("o", {"c": _c(version_old, [], [before])}, {}),
                      Side("n", {"c": _c(version_new, [], [after])}, {}))


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("1.0.0", "2.0.0", True), ("1.9.9", "2.0.0", True), ("0.1.0", "1.0.0", True), ("1.0.0", "10.0.0", True),
    ("1.0.0", "1.1.0", False), ("1.0.0", "1.0.0", False), ("2.0.0", "1.0.0", False), ("2.0.0", "2.5.0", False),
    ("draft", "2.0.0", False), ("1.0.0", "draft", False), (None, "2.0.0", False), ("1.0.0", None, False),
])
def test_a_weakening_is_allowed_only_by_a_strictly_greater_major(old: Any, new: Any, allowed: bool) -> None:
    result = _one(old, new)
    assert [e.falsifier for e in result.errors] == ([] if allowed else ["F-1"])
    assert _one(old, new, weaken=False).errors == []


@pytest.mark.parametrize(("old", "target"), [("4.1.0", "5.0.0"), ("0.3.0", "1.0.0"), ("draft", "1.0.0"),
                                             (None, "1.0.0")])
def test_the_fix_names_the_next_major(old: Any, target: str) -> None:
    (error,) = _one(old, old).errors
    assert error.message == f"F-1: check weakened: mutant 'm' removed without a major version bump (version {old} -> {old})"
    assert error.hint == f"bump c's metadata.version to {target} and say why in its changelog, or restore the falsifier"


def _moved(old_versions: tuple[str, str], new_versions: tuple[str | None, str]) -> ContractsDiff:
    """F-1 moves from a to b and loses its mutant; a keeps existing unless its new version is None."""
    old = {"a": _c(old_versions[0], [], [_f("F-1", mutants=[_m("m")])]), "b": _c(old_versions[1], [], [])}
    new = {"b": _c(new_versions[1], [], [_f("F-1")])}
    if new_versions[0] is not None:
        new["a"] = _c(new_versions[0], [], [])
    return diff_sides(Side("o", old, {}), Side("n", new, {}))


def test_a_moved_and_weakened_falsifier_needs_a_bump_of_either_contract() -> None:
    assert _moved(("1.0.0", "1.0.0"), ("2.0.0", "1.0.0")).errors == []  # the old owner went up
    assert _moved(("1.0.0", "1.0.0"), ("1.0.0", "2.0.0")).errors == []  # the new owner went up
    (error,) = _moved(("1.0.0", "1.0.0"), ("1.0.0", "1.1.0")).errors
    assert (error.contract, error.falsifier) == ("b", "F-1")  # reported on the contract that holds it now
    assert error.message.endswith("(version 1.0.0 -> 1.1.0)")
    (error,) = _moved(("1.0.0", "1.0.0"), (None, "1.0.0")).errors  # the old owner is gone, not bumped
    assert error.contract == "b"


def test_a_falsifier_moved_into_a_new_contract_is_not_bumped_by_it() -> None:
    old = {"a": _c("1.0.0", [], [_f("F-1", mutants=[_m("m")])])}
    new = {"a": _c("1.0.0", [], []), "z": _c("2.0.0", [], [_f("F-1")])}
    (error,) = diff_sides(Side("o", old, {}), Side("n", new, {})).errors
    assert error.contract == "z"
    assert error.message.endswith("without a major version bump (version None -> 2.0.0)")
    assert error.hint.startswith("bump z's metadata.version to 1.0.0 ")


def test_a_removed_falsifier_is_allowed_by_a_bump_and_reported_either_way() -> None:
    old = {"c": _c("1.0.0", [], [_f("F-1"), _f("F-2")])}
    for version, errors in (("2.0.0", []), ("1.5.0", ["F-2"])):
        result = diff_sides(Side("o", old, {}), Side("n", {"c": _c(version, [], [_f("F-1")])}, {}))
        assert [e.falsifier for e in result.errors] == errors
        assert [(c.kind, c.what, c.id, c.contract) for c in result.changes if c.what == "falsifier"] == [
            ("removed", "falsifier", "F-2", "c")]
    (error,) = diff_sides(Side("o", old, {}), Side("n", {"c": _c("1.5.0", [], [_f("F-1")])}, {})).errors
    assert error.message == "F-2: falsifier removed without a major version bump (version 1.0.0 -> 1.5.0)"


def test_malformed_parts_of_a_contract_are_read_as_empty() -> None:
    odd = {"metadata": "not a mapping", "invariants": "none", "falsification_tests": {"id": "F-1"}}
    odd_items = {"metadata": {"version": "1.0.0"}, "invariants": [{"statement": "no id"}, "text", {"id": 7}],
                 "falsification_tests": [{"rule": "no id"}, None, {"id": "F-9"}]}
    result = diff_sides(Side("o", {"x": odd, "y": odd_items}, {}), Side("n", {"x": odd, "y": odd_items}, {}))
    assert result.changes == [] and result.errors == []
    added = diff_sides(Side("o", {}, {}), Side("n", {"x": odd, "y": odd_items}, {}))
    assert [(c.kind, c.what, c.id, c.details) for c in added.changes] == [
        ("added", "contract", "x", {"version": None}),
        ("added", "contract", "y", {"version": "1.0.0"}),
        ("added", "invariant", "7", {}),  # ids as text
        ("added", "falsifier", "F-9", {"mutants": []}),
    ]


def test_versions_of_contracts_without_metadata() -> None:
    result = diff_sides(Side("o", {"x": {"invariants": []}}, {}), Side("n", {"x": {"metadata": {"version": "1.0.0"}}}, {}))
    assert [c.to_dict() for c in result.changes] == [
        {"kind": "changed", "what": "contract", "id": "x", "contract": "x", "details": {"version": [None, "1.0.0"]}}]


# --- render_text -----------------------------------------------------------------------------------


def test_the_text_rendering_line_by_line() -> None:
    result = ContractsDiff("git:HEAD~1", "contracts", [
        Change("changed", "contract", "keep-v1", "keep-v1", {"version": ["1.0.0", "1.1.0"]}),
        Change("added", "contract", "new-v1", "new-v1", {"version": "0.1.0"}),
        Change("added", "invariant", "INV-K-004", "keep-v1"),
        Change("moved", "falsifier", "FALSIFY-K-003", "other-v1", {"from": "keep-v1"}),
        Change("changed", "falsifier", "FALSIFY-K-001", "keep-v1", {"prediction": ["p", "p2"], "requires": [[], ["cuda"]]}),
        Change("removed", "mutant", "FALSIFY-K-001/m2", "keep-v1"),
        Change("changed", "falsifier", "F-2", "c", {"x": "single", "y": [1, 2, 3]}),
    ], [LintError("keep-v1", "FALSIFY-K-001", "FALSIFY-K-001: check weakened", "bump it")])
    assert render_text(result).split("\n") == [
        "apr contracts diff git:HEAD~1 contracts",
        "  ~ contract keep-v1: version '1.0.0' -> '1.1.0'",
        "  + contract new-v1",
        "  + invariant INV-K-004 (keep-v1)",
        "  > falsifier FALSIFY-K-003 (other-v1) from keep-v1",
        "  ~ falsifier FALSIFY-K-001 (keep-v1): prediction 'p' -> 'p2'; requires [] -> ['cuda']",
        "  - mutant FALSIFY-K-001/m2 (keep-v1)",
        "  ~ falsifier F-2 (c): x 'single'; y [1, 2, 3]",
        "error: FALSIFY-K-001: check weakened",
        "  fix: bump it",
        "7 change(s) (2 added, 1 removed, 3 changed, 1 moved), 1 lint error(s)",
    ]
    assert render_text(ContractsDiff("a", "b")).split("\n") == [
        "apr contracts diff a b", "0 change(s) (0 added, 0 removed, 0 changed, 0 moved), 0 lint error(s)"]


def test_long_values_are_cut_to_sixty_characters() -> None:
    fits, long = "x" * 58, "y" * 59  # reprs of 60 and 61 characters
    text = render_text(ContractsDiff("a", "b", [Change("changed", "falsifier", "F", "c", {"rule": [fits, long]})]))
    line = text.split("\n")[1]
    assert line == f"  ~ falsifier F (c): rule {fits!r} -> '{'y' * 58}…"
    assert len(repr(fits)) == 60 and len(f"'{'y' * 58}…") == 60


# --- reading a side: files and folders --------------------------------------------------------------


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_folder_is_its_top_level_yaml_files(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    a = _write(folder / "a-v1.yaml", _c("1.0.0", [], []))
    b = _write(folder / "b-v1.yml", _c("2.0.0", [], []))
    _write(folder / "sub" / "c-v1.yaml", _c("3.0.0", [], []))  # below the top level
    (folder / "notes.txt").write_text("not yaml")
    (folder / "d.json").write_text("{}")
    (folder / "e-v1.yaml").mkdir()  # a folder named like a contract
    side = read_side(os.fspath(folder), contracts_dir="elsewhere")
    assert side.label == os.fspath(folder)
    assert side.contracts == {"a-v1": _c("1.0.0", [], []), "b-v1": _c("2.0.0", [], [])}
    assert side.paths == {"a-v1": os.fspath(a), "b-v1": os.fspath(b)}


def test_a_file_is_one_contract_named_by_its_stem(tmp_path: Path) -> None:
    path = _write(tmp_path / "x" / "one-v1.yaml", _c("1.0.0", [], [_f("F-1")]))
    side = read_side(os.fspath(path), contracts_dir="contracts")
    assert (side.label, side.contracts, side.paths) == (os.fspath(path), {"one-v1": _c("1.0.0", [], [_f("F-1")])},
                                                        {"one-v1": os.fspath(path)})


def test_nothing_there_is_not_found(tmp_path: Path) -> None:
    spec = os.fspath(tmp_path / "missing")
    with pytest.raises(ContractNotFoundError) as info:
        read_side(spec, contracts_dir=tmp_path)
    err = info.value
    assert err.message == f"no contract file or folder {spec!r}" and err.path == spec and err.exit_code == 3
    assert err.hint == "give a contract .yaml, a folder of them, or git:REV (e.g. git:HEAD~1)"


@pytest.mark.parametrize(("text", "first"), [
    ("- 1\n- 2\n", "no `metadata` mapping"),
    ("metadata: 3\n", "no `metadata` mapping"),
    ("metadata: {version: 1.0.0}\nmetadata: {version: 2.0.0}\n",
     "duplicate key 'metadata': it is already set at line 1; plain YAML loaders would silently keep only the last one"),
    ("a: [", "YAML syntax: did not find expected node content (while parsing a flow node)"),
])
def test_a_file_that_is_no_contract_is_a_format_error(tmp_path: Path, text: str, first: str) -> None:
    path = tmp_path / "bad-v1.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContractFormatError) as info:
        read_side(os.fspath(path), contracts_dir=tmp_path)
    err = info.value
    assert err.message == f"not a contract: {first}" and err.path == os.fspath(path) and err.exit_code == 4
    assert err.hint == f"check it with `apr contracts lint {path}`"


def test_diff_contracts_reads_both_sides(tmp_path: Path) -> None:
    _write(tmp_path / "old" / "c-v1.yaml", _c("1.0.0", [], [_f("F-1"), _f("F-2")]))
    _write(tmp_path / "new" / "c-v1.yaml", _c("1.0.1", [], [_f("F-1")]))
    result = diff_contracts(os.fspath(tmp_path / "old"), os.fspath(tmp_path / "new"), contracts_dir="unused")
    assert (result.old, result.new) == (os.fspath(tmp_path / "old"), os.fspath(tmp_path / "new"))
    assert [(c.kind, c.what, c.id) for c in result.changes] == [("changed", "contract", "c-v1"),
                                                                 ("removed", "falsifier", "F-2")]
    assert [e.falsifier for e in result.errors] == ["F-2"]


# --- reading a side: git:REV ------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose contracts folder is two levels down, with neighbours that are not contracts."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    contracts = root / "proj" / "specs"
    _write(contracts / "a-v1.yaml", _c("1.0.0", [], [_f("F-1")]))
    _write(contracts / "b-v1.yml", _c("1.0.0", [], []))
    _write(contracts / "sub" / "c-v1.yaml", _c("1.0.0", [], []))
    (contracts / "notes.txt").write_text("x")
    with open(os.path.join(os.fsencode(contracts), b"caf\xe9.txt"), "wb") as other:  # a name that is no UTF-8
        other.write(b"x")
    _write(root / "proj" / "specs2" / "z-v1.yaml", _c("1.0.0", [], []))  # a sibling with the same prefix
    _write(root / "proj" / "top-v1.yaml", _c("1.0.0", [], []))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _write(contracts / "a-v1.yaml", _c("1.1.0", [], []))  # the working tree differs from HEAD
    return contracts


def test_git_reads_the_committed_folder_only(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []
    real = subprocess.run

    def record(command: list[str], **kwargs: Any) -> Any:
        calls.append((command, kwargs))
        return real(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", record)
    side = read_side("git:HEAD", contracts_dir=repo)
    assert side.label == "git:HEAD"
    assert side.contracts == {"a-v1": _c("1.0.0", [], [_f("F-1")]), "b-v1": _c("1.0.0", [], [])}
    assert side.paths == {"a-v1": "HEAD:proj/specs/a-v1.yaml", "b-v1": "HEAD:proj/specs/b-v1.yml"}
    top = repo.parent.parent.resolve()
    assert [(command, kwargs["cwd"]) for command, kwargs in calls] == [
        (["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "--no-pager", *args], cwd)
        for args, cwd in [
            (["rev-parse", "--show-toplevel"], repo.resolve()),
            (["rev-parse", "--verify", "--quiet", "--end-of-options", "HEAD^{commit}"], top),
            (["ls-tree", "-z", "--name-only", "--end-of-options", "HEAD", "proj/specs/"], top),
            (["show", "--no-textconv", "--end-of-options", "HEAD:proj/specs/a-v1.yaml"], top),
            (["show", "--no-textconv", "--end-of-options", "HEAD:proj/specs/b-v1.yml"], top),
        ]]
    for _, kwargs in calls:
        assert kwargs["env"] == {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
        assert (kwargs["capture_output"], kwargs["check"], kwargs["timeout"]) == (True, False, 60)


def test_git_and_a_folder_side_compare(repo: Path) -> None:
    result = diff_contracts("git:HEAD", os.fspath(repo), contracts_dir=repo)
    assert [(c.kind, c.what, c.id) for c in result.changes] == [("changed", "contract", "a-v1"),
                                                                 ("removed", "falsifier", "F-1")]


@pytest.mark.parametrize("rev", ["", "-p", "--output=x", "HEAD:x", "HEAD x", "a" * 201, "HEAD\n", ".HEAD", "~1"])
def test_a_rev_that_is_not_a_revision_is_refused_before_git_runs(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 rev: str) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("git ran"))
    with pytest.raises(ContractNotFoundError) as info:
        read_side(f"git:{rev}", contracts_dir=repo)
    err = info.value
    assert err.message == f"{'git:' + rev!r} does not name a git revision" and err.path == f"git:{rev}"
    assert err.hint == "e.g. git:HEAD~1, git:main, git:v1.2.0 or a commit hash"


@pytest.mark.parametrize("rev", ["HEAD", "HEAD~0", "HEAD^", "master@{0}", "v1.2.0", "feature/x_y", "a" * 200])
def test_revision_spellings_reach_git(repo: Path, monkeypatch: pytest.MonkeyPatch, rev: str) -> None:
    asked: list[list[str]] = []

    def fail(command: list[str], **kwargs: Any) -> Any:
        asked.append(command)
        return subprocess.CompletedProcess(command, 128, b"", b"fatal: no\n")

    monkeypatch.setattr(subprocess, "run", fail)
    with pytest.raises(ContractNotFoundError) as info:
        read_side(f"git:{rev}", contracts_dir=repo)
    assert info.value.message == "git rev-parse failed: fatal: no"
    assert len(asked) == 1
    assert info.value.hint == "check the revision with `git log --oneline`"
    assert info.value.path == os.fspath(repo.resolve())


def test_git_failures_name_the_command_and_its_message(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = subprocess.run

    def fail_listing(command: list[str], **kwargs: Any) -> Any:
        if "ls-tree" in command:
            return subprocess.CompletedProcess(command, 1, b"", b"  fatal: bad \xff tree  \n")
        return real(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", fail_listing)
    with pytest.raises(ContractNotFoundError) as info:
        read_side("git:HEAD", contracts_dir=repo)
    assert info.value.message == "git ls-tree failed: fatal: bad \ufffd tree"
    assert info.value.path == os.fspath(repo.parent.parent.resolve())


def test_an_unknown_revision_is_not_found(repo: Path) -> None:
    with pytest.raises(ContractNotFoundError, match="git rev-parse failed") as info:
        read_side("git:no-such-branch", contracts_dir=repo)
    assert info.value.exit_code == 3


def test_a_folder_outside_any_repository_or_missing_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ContractNotFoundError) as info:
        read_side("git:HEAD", contracts_dir=tmp_path / "missing")
    assert info.value.message == f"no contracts folder at {(tmp_path / 'missing').resolve()}"
    assert info.value.hint == "run from the project, or compare two folders"
    assert info.value.path == os.fspath((tmp_path / "missing").resolve())
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ContractNotFoundError, match="git rev-parse failed: fatal: not a git repository"):
        read_side("git:HEAD", contracts_dir=plain)


@pytest.mark.parametrize("error", [FileNotFoundError(2, "No such file or directory: 'git'"),
                                   subprocess.TimeoutExpired(["git"], 60)])
def test_git_that_cannot_run_is_not_found(repo: Path, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(subprocess, "run", refuse)
    with pytest.raises(ContractNotFoundError) as info:
        read_side("git:HEAD", contracts_dir=repo)
    err = info.value
    assert err.message == f"cannot run git: {error}" and err.hint == "install git, or compare folders"
    assert err.path == os.fspath(repo.resolve()) and err.__cause__ is None and err.__suppress_context__


def test_each_file_goes_through_the_modules_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A declared mutant of the harness patches `loader.load_bytes`: the module must look it up there."""
    seen: list[str] = []
    real = contract_diff.loader.load_bytes

    def spy(raw: bytes, shown: str) -> Any:
        seen.append(shown)
        return real(raw, shown)

    monkeypatch.setattr(contract_diff.loader, "load_bytes", spy)
    path = _write(tmp_path / "c-v1.yaml", _c("1.0.0", [], []))
    read_side(os.fspath(path), contracts_dir=tmp_path)
    assert seen == [os.fspath(path)]


def test_a_contract_is_named_by_its_files_stem_whatever_the_characters(tmp_path: Path) -> None:
    """A ':' or a space in a file's name is part of the contract's name (the name once came from the
    text after the first ':' of the shown path, which made `a:b-v1.yaml` the contract `b-v1`)."""
    folder = tmp_path / "contracts"
    for name in ("a:b-v1", "my contract-v1"):
        _write(folder / f"{name}.yaml", _c("1.0.0", [], []))
    assert sorted(read_side(os.fspath(folder), contracts_dir=folder).contracts) == ["a:b-v1", "my contract-v1"]
    single = os.fspath(folder / "a:b-v1.yaml")
    assert read_side(single, contracts_dir=folder).paths == {"a:b-v1": single}


def test_a_contracts_folder_at_the_top_of_the_repository(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "top"
    _write(root / "a-v1.yaml", _c("1.0.0", [], []))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    side = read_side("git:HEAD", contracts_dir=root)
    assert (side.contracts, side.paths) == ({"a-v1": _c("1.0.0", [], [])}, {"a-v1": "HEAD:a-v1.yaml"})


def test_the_new_side_may_be_the_git_one(repo: Path) -> None:
    result = diff_contracts(os.fspath(repo), "git:HEAD", contracts_dir=repo)
    assert [(c.kind, c.what, c.id) for c in result.changes] == [("changed", "contract", "a-v1"),
                                                                 ("added", "falsifier", "F-1")]
