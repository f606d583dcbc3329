"""falsifiers.lint (issue 23): each corpus rule with its exact finding, its near misses and its edges.

The cross-file rules are pure functions of records (`check_corpus`), so most tests build records
by hand and state the whole finding; `lint_paths` is tested on small files for what only it does
(positions, validity, order, the lookup tables, the empty corpus).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from falsifiers import lint
from falsifiers.artifact import MUTATORS
from falsifiers.records import Finding, Severity
from falsifiers.lint import KNOWN_CAPABILITIES, check_corpus, check_mutant_resolution, lint_paths, semver_key
from falsifiers.records import Contract, Falsifier, Invariant, Location, Mutant, Status
from tests.harness.projects import contract_yaml

REPO = Path(__file__).resolve().parents[2]
NAMESPACES = "apr., falsifiers., tests."


def at(path: str, line: int) -> Location:
    return Location(path, line, 1)


def inv(ident: str, contract: str = "a-v1", line: int = 5) -> Invariant:
    return Invariant(ident, "s", contract, at(f"{contract}.yaml", line))


def fal(ident: str, *invariants: str, contract: str = "a-v1", line: int = 9, **extra: Any) -> Falsifier:
    return Falsifier(ident, contract, invariants, "r", "p", "f", at(f"{contract}.yaml", line), **extra)


def con(name: str, invariants: tuple[Invariant, ...] = (), falsifiers: tuple[Falsifier, ...] = (), *,
        path: str | None = None, depends_on: tuple[str, ...] = (), status: Status | None = Status.FUNCTIONAL,
        style: str = "canonical", version: str | None = "1.0.0") -> Contract:
    path = path or f"{name}.yaml"
    return Contract(name, path, "", version, status, "d", depends_on, invariants, falsifiers, True, at(path, 1),
                    style=style)


def with_mutant(ident: str, contract: str = "a-v1") -> Falsifier:
    """A falsifier whose declared mutant is harmless for the rules under test (no `no-mutant` warning)."""
    return fal(ident, f"INV-{ident[8:]}", contract=contract, mutants=(Mutant("m", artifact="truncate"),))


def pair(ident: str, contract: str = "a-v1") -> tuple[Invariant, Falsifier]:
    """An invariant INV-X and a falsifier FALSIFY-X that attacks it (nothing to report)."""
    return inv(f"INV-{ident}", contract), with_mutant(f"FALSIFY-{ident}", contract)


def codes(found: list[Finding]) -> list[str]:
    return [f.code for f in found]


def only(found: list[Finding], code: str) -> list[Finding]:
    return [f for f in found if f.code == code]


def test_a_clean_corpus_has_no_finding() -> None:
    i1, f1 = pair("A-001")
    i2, f2 = pair("B-001", "b-v1")
    assert check_corpus([con("a-v1", (i1,), (f1,)), con("b-v1", (i2,), (f2,), depends_on=("a-v1",))]) == []


# --- duplicate names and ids ----------------------------------------------------------------------


def test_two_files_with_one_name() -> None:
    first, second, third = (con("x-v1", path=p) for p in ("one/x-v1.yaml", "two/x-v1.yaml", "three/x-v1.yml"))
    found = lint._duplicate_names([first, second, con("y-v1"), third])
    expected = [Finding(Severity.ERROR, "duplicate-contract",
                        "two files define the contract 'x-v1' (a contract's name is its file stem)", c.location,
                        hint="rename one of the files", related=(first.location,)) for c in (second, third)]
    assert found == expected
    assert lint._duplicate_names([first, con("x-v2")]) == []


def test_an_id_declared_twice_names_both_places_and_always_the_first() -> None:
    a = con("a-v1", (inv("INV-X-001", line=3), inv("INV-X-001", line=4)), (fal("FALSIFY-X-001", line=9),))
    b = con("b-v1", (inv("INV-Y-001", "b-v1"),), (fal("FALSIFY-X-001", contract="b-v1", line=7),
                                                   fal("FALSIFY-X-001", contract="b-v1", line=8)))
    found = lint._duplicate_ids([a, b])
    tail = "; ids must be unique across all contracts"
    hint = "give one of them a new number (ids are never reused, so evidence cannot be confused)"
    assert found == [
        Finding(Severity.ERROR, "duplicate-id", "invariant id INV-X-001 is declared twice: here and at a-v1.yaml:3:1"
                + tail, at("a-v1.yaml", 4), hint=hint, related=(at("a-v1.yaml", 3),)),
        Finding(Severity.ERROR, "duplicate-id", "falsifier id FALSIFY-X-001 is declared twice: here and at "
                "a-v1.yaml:9:1" + tail, at("b-v1.yaml", 7), hint=hint, related=(at("a-v1.yaml", 9),)),
        Finding(Severity.ERROR, "duplicate-id", "falsifier id FALSIFY-X-001 is declared twice: here and at "
                "a-v1.yaml:9:1" + tail, at("b-v1.yaml", 8), hint=hint, related=(at("a-v1.yaml", 9),)),
    ]


def test_an_invariant_and_a_falsifier_share_one_id_space() -> None:
    (finding,) = lint._duplicate_ids([con("a-v1", (inv("SAME-001", line=3),), (fal("SAME-001", line=9),))])
    assert finding.message.startswith("falsifier id SAME-001 is declared twice: here and at a-v1.yaml:3:1")


# --- invariant links ------------------------------------------------------------------------------


def test_an_unknown_invariant_with_a_near_one() -> None:
    declared = inv("INV-LINK-001", line=4)
    found = lint._invariant_links([con("a-v1", (declared,), (fal("FALSIFY-LINK-001", "INV-LINK-01"),))])
    assert found == [
        Finding(Severity.ERROR, "unknown-invariant", "falsifier FALSIFY-LINK-001 names invariant INV-LINK-01, which "
                "does not exist (did you mean INV-LINK-001?)", at("a-v1.yaml", 9),
                hint="use INV-LINK-001, declared at a-v1.yaml:4:1", related=(at("a-v1.yaml", 4),)),
        Finding(Severity.ERROR, "unfalsified-invariant", "invariant INV-LINK-001 has no falsifier: nothing could ever "
                "show it is broken", at("a-v1.yaml", 4),
                hint="add a falsification_tests entry with `invariant: "
                "INV-LINK-001` (mark it `pending: \"reason\"` until its test exists)"),
    ]


def test_an_unknown_invariant_with_nothing_near() -> None:
    i, f = pair("A-001")
    found = lint._invariant_links([con("a-v1", (i,), (f, fal("FALSIFY-Q-001", "ZZZZ")))])
    assert found == [Finding(Severity.ERROR, "unknown-invariant",
                             "falsifier FALSIFY-Q-001 names invariant ZZZZ, which does not exist", at("a-v1.yaml", 9),
                             hint="declare it under `invariants:` or fix the id")]


def test_an_invariant_attacked_from_another_contract_is_falsified() -> None:
    i, f = inv("INV-A-001"), fal("FALSIFY-B-001", "INV-A-001", contract="b-v1")
    assert lint._invariant_links([con("a-v1", (i,)), con("b-v1", (), (f,))]) == []


def test_one_falsifier_attacking_two_invariants_covers_both() -> None:
    one, two = inv("INV-A-001"), inv("INV-A-002")
    assert lint._invariant_links([con("a-v1", (one, two), (fal("F", "INV-A-001", "INV-A-002"),))]) == []
    found = lint._invariant_links([con("a-v1", (one, two), (fal("F", "INV-A-002"),))])
    assert [(f.code, f.location) for f in found] == [("unfalsified-invariant", one.location)]


@pytest.mark.parametrize(("style", "reported"), [("pv", False), ("canonical", True), ("ship-gate", True)])
def test_only_pv_contracts_may_leave_invariants_unattacked(style: str, reported: bool) -> None:
    found = lint._invariant_links([con("a-v1", (inv("INV-A-001"),), style=style)])
    assert codes(found) == (["unfalsified-invariant"] if reported else [])


# --- dependencies ---------------------------------------------------------------------------------


def test_an_unknown_dependency_suggests_another_contract_never_itself() -> None:
    found = lint._dependencies([con("abc-v1", depends_on=("abc-v2",))], {})
    assert found == [Finding(Severity.ERROR, "unknown-dependency", "abc-v1 depends on 'abc-v2', which is not a "
                             "contract here", at("abc-v1.yaml", 1), hint="use a contract's file stem")]
    found = lint._dependencies([con("abc-v1", depends_on=("abd-v1",)), con("abc-v2")], {})
    assert [(f.message, f.hint) for f in found] == [
        ("abc-v1 depends on 'abd-v1', which is not a contract here", "did you mean 'abc-v2'?")]


def test_an_unknown_dependency_sits_on_its_list_item(tmp_path: Path) -> None:
    (tmp_path / "one-v1.yaml").write_text(contract_yaml("ONE", depends_on=("two-v1", "nope-v9")))
    (tmp_path / "two-v1.yaml").write_text(contract_yaml("TWO"))
    (finding,) = only(list(lint_paths([tmp_path], relative_to=tmp_path).findings), "unknown-dependency")
    line = contract_yaml("ONE", depends_on=("two-v1", "nope-v9")).splitlines()[5]
    assert str(finding.location) == f"one-v1.yaml:6:{line.index('nope-v9') + 1}"


@pytest.mark.parametrize(("sibling", "reported"), [("dep-v1.yaml", False), ("dep-v1.yml", False),
                                                   ("dep-v1.json", True), ("dep-v1.yaml/", True), (None, True)])
def test_a_dependency_beside_the_file_but_not_linted_is_fine(tmp_path: Path, sibling: str | None,
                                                             reported: bool) -> None:
    if sibling and sibling.endswith("/"):
        (tmp_path / sibling).mkdir()
    elif sibling:
        (tmp_path / sibling).write_text("")
    contract = con("a-v1", path=os.fspath(tmp_path / "a-v1.yaml"), depends_on=("dep-v1",))
    assert codes(lint._dependencies([contract], {})) == (["unknown-dependency"] if reported else [])


@pytest.mark.parametrize("name", [None, 7, "x" * 5000, "nul\x00name"])
def test_a_name_no_file_system_accepts_is_no_sibling(tmp_path: Path, name: object) -> None:
    assert lint._is_sibling_contract(tmp_path, name) is False


def test_a_sibling_name_is_looked_up_with_both_suffixes(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("")
    (tmp_path / "c.yaml").write_text("")
    assert [lint._is_sibling_contract(tmp_path, n) for n in ("b", "c", "d", "b.yml")] == [True, True, False, False]


def test_a_cycle_is_reported_once_from_its_first_name() -> None:
    contracts = [con("c-v1", depends_on=("a-v1",)), con("a-v1", depends_on=("b-v1",)),
                 con("b-v1", depends_on=("c-v1",)), con("d-v1", depends_on=("a-v1",))]
    assert lint._dependencies(contracts, {}) == [
        Finding(Severity.ERROR, "dependency-cycle", "depends_on forms a cycle: a-v1 -> b-v1 -> c-v1 -> a-v1",
                at("a-v1.yaml", 1), hint="remove one of the depends_on entries in the cycle",
                related=(at("b-v1.yaml", 1), at("c-v1.yaml", 1)))]


def test_a_contract_depending_on_itself_is_a_cycle_of_one() -> None:
    (finding,) = lint._dependencies([con("a-v1", depends_on=("a-v1",))], {})
    assert (finding.code, finding.message, finding.related) == (
        "dependency-cycle", "depends_on forms a cycle: a-v1 -> a-v1", ())


@pytest.mark.parametrize(("graph", "cycles"), [
    ({}, []),
    ({"a": []}, []),
    ({"a": ["b"], "b": []}, []),
    ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, []),  # a diamond: d is reached twice, no cycle
    ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
    ({"b": ["a"], "a": ["b"]}, [["a", "b"]]),  # started from the smallest name
    ({"a": ["a"]}, [["a"]]),
    ({"a": ["b"], "b": ["c"], "c": ["b"]}, [["b", "c"]]),  # the cycle, not the path into it
    ({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}, [["a", "b"], ["c", "d"]]),
    ({"a": ["b", "c"], "b": ["a"], "c": ["a"]}, [["a", "b"], ["a", "c"]]),  # two cycles through one node
    ({"a": ["zzz"]}, []),  # an edge to a name outside the graph
])
def test_cycles(graph: dict[str, list[str]], cycles: list[list[str]]) -> None:
    assert lint._cycles(graph) == cycles


def test_a_long_chain_does_not_overflow_the_stack() -> None:
    n = 5000
    names = [f"n{i:05d}" for i in range(n)]
    chain = {name: [names[i + 1]] if i + 1 < n else [] for i, name in enumerate(names)}
    assert lint._cycles(chain) == []
    chain[names[-1]] = [names[0]]
    assert lint._cycles(chain) == [names]


# --- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "key"), [
    ("1.2.3", (1, 2, 3, 1, "")), ("0.0.0", (0, 0, 0, 1, "")), ("10.20.30", (10, 20, 30, 1, "")),
    ("1.2.3-rc.1", (1, 2, 3, 0, "rc.1")), ("1.2.3+build", (1, 2, 3, 1, "")),
    ("1.2", None), ("v1.2.3", None), ("", None), ("a.b.c", None), (None, None), (123, None),
])
def test_semver_key(version: Any, key: tuple[int, int, int, int, str] | None) -> None:
    assert semver_key(version) == key


def test_semver_order_is_numeric_and_puts_a_pre_release_first() -> None:
    ordered = ["0.9.9", "1.0.0-alpha", "1.0.0-beta", "1.0.0", "1.2.0", "1.10.0", "2.0.0"]
    assert sorted(reversed(ordered), key=semver_key) == ordered


def versions_yaml(version: str, *changelog: str, status: str = "FUNCTIONAL") -> str:
    entries = "".join(f'    - {{version: "{v}", date: "2026-11-26", changes: "c"}}\n' for v in changelog)
    text = contract_yaml("VER", status=status)
    head, tail = text.split("  changelog:\n", 1)
    tail = tail.split("\n", 1)[1]
    return head.replace("  version: 1.0.0", f'  version: "{version}"') + "  changelog:\n" + entries + tail


def version_findings(tmp_path: Path, version: str, *changelog: str) -> list[tuple[str, str, str, str, str | None,
                                                                                   list[str]]]:
    (tmp_path / "ver-v1.yaml").write_text(versions_yaml(version, *changelog))
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    return [(f.severity.value, f.code, f.message, str(f.location), f.hint, [str(r) for r in f.related])
            for f in corpus.findings if f.code in ("version-changelog", "changelog-duplicate")]


@pytest.mark.parametrize(("version", "changelog"), [
    ("1.1.0", ("1.1.0", "1.0.0")), ("1.1.0", ("1.0.0", "1.1.0")), ("1.0.0", ("1.0.0-rc.1", "1.0.0")),
    ("1.10.0", ("1.9.0", "1.10.0")), ("1.0.0", ("1.0.0",)),
])
def test_the_version_equals_the_newest_entry_in_any_order(tmp_path: Path, version: str,
                                                          changelog: tuple[str, ...]) -> None:
    assert version_findings(tmp_path, version, *changelog) == []


@pytest.mark.parametrize(("version", "changelog", "newest", "index"), [
    ("1.0.0", ("1.0.0", "1.1.0"), "1.1.0", 1),
    ("1.0.0-rc.1", ("1.0.0-rc.1", "1.0.0"), "1.0.0", 1),
    ("1.9.0", ("1.10.0", "1.9.0"), "1.10.0", 0),
    ("2.0.0", ("1.0.0",), "1.0.0", 0),
])
def test_a_version_behind_the_newest_entry(tmp_path: Path, version: str, changelog: tuple[str, ...], newest: str,
                                           index: int) -> None:
    assert version_findings(tmp_path, version, *changelog) == [
        ("error", "version-changelog", f"metadata.version is {version} but the newest changelog entry is {newest}",
         "ver-v1.yaml:3:12", f"bump metadata.version to {newest}, or add a changelog entry for {version}",
         [f"ver-v1.yaml:{8 + index}:7"])]


def test_a_repeated_changelog_version_warns_once_per_version(tmp_path: Path) -> None:
    found = version_findings(tmp_path, "2.0.0", "2.0.0", "1.0.0", "2.0.0", "1.0.0", "1.0.0", "1.5.0")
    assert found == [
        ("warning", "changelog-duplicate", f"the changelog lists version {v} twice", "ver-v1.yaml:8:5",
         "merge the two entries", []) for v in ("1.0.0", "2.0.0")]


def test_the_newest_of_two_equal_entries_is_the_later_one() -> None:
    from falsifiers.loader import load_bytes

    doc = load_bytes(versions_yaml("1.0.0", "2.0.0", "2.0.0").encode(), "v.yaml")
    (behind,) = only(lint._version_rules(con("v", version="1.0.0"), doc), "version-changelog")
    assert [str(r) for r in behind.related] == ["v.yaml:9:7"]


def test_changelog_entries_without_a_usable_version_are_ignored() -> None:
    from falsifiers.loader import Document

    def rules(entries: Any, version: str | None = "1.0.0", data: Any = None) -> list[str]:
        doc = Document("v.yaml", "", data=data if data is not None else {"metadata": {"changelog": entries}})
        return codes(lint._version_rules(con("v", version=version), doc))

    assert rules([{"version": "x"}, {"version": 2}, "1.0.0", {"date": "d"}, {"version": "v3.0.0"}]) == []
    assert rules([{"version": "x"}, {"version": "3.0.0"}]) == ["version-changelog"]
    assert rules([{"version": "3.0.0"}], version=None) == []  # no version at all: the schema says so
    assert rules([{"version": "3.0.0"}], version="") == []
    assert rules({"version": "3.0.0"}) == []  # not a list
    assert rules(None, data={"metadata": None}) == []
    assert rules(None, data={"metadata": ["changelog"]}) == []
    assert rules(None, data=["metadata"]) == []
    assert codes(lint._version_rules(con("v", version="1.0.0"), None)) == []


@pytest.mark.parametrize(("status", "pending", "reported"), [
    (Status.DISCHARGED, "no test yet", True), (Status.DISCHARGED, None, False), (Status.FUNCTIONAL, "later", False),
    (Status.PROPOSED, "later", False), (None, "later", False),
])
def test_a_discharged_contract_has_no_pending_falsifier(status: Status | None, pending: str | None,
                                                        reported: bool) -> None:
    contract = con("a-v1", (), (fal("FALSIFY-A-001", line=9), fal("FALSIFY-A-002", line=12, pending=pending)),
                   status=status)
    expected = [Finding(Severity.ERROR, "discharged-pending", "the contract is DISCHARGED but falsifier FALSIFY-A-002 "
                        "is still pending", at("a-v1.yaml", 12), hint="bind its test, or lower the status to FUNCTIONAL")]
    assert lint._version_rules(contract, None) == (expected if reported else [])


# --- capabilities ---------------------------------------------------------------------------------


def test_the_built_in_capabilities() -> None:
    assert KNOWN_CAPABILITIES == frozenset({"cuda", "network", "posix", "hf-token"})


def test_an_unknown_capability_is_a_note_with_the_nearest_known_one() -> None:
    contract = con("a-v1", (), (fal("FALSIFY-A-001", requires=("cuda", "cudaa", "quantum", "network", "posix",
                                                                "hf-token", "tpu")),))
    found = check_corpus([contract], known_capabilities=frozenset({"tpu"}))
    capability = only(found, "capability")
    why = ": where its tests cannot run, it is UNDETERMINED, and only a profile listing it under optional-requires " \
          "tolerates that"
    assert capability == [
        Finding(Severity.INFO, "capability", f"falsifier FALSIFY-A-001 requires 'cudaa'{why}", at("a-v1.yaml", 9),
                hint="did you mean 'cuda'?"),
        Finding(Severity.INFO, "capability", f"falsifier FALSIFY-A-001 requires 'quantum'{why}", at("a-v1.yaml", 9),
                hint="add it to [tool.apr-contracts.profiles.cpu] optional-requires if CI may lack it"),
    ]
    assert codes(check_corpus([contract])).count("capability") == 3  # tpu too, without the project's profile


# --- mutants --------------------------------------------------------------------------------------


NO_MUTANT_HINT = ("add `mutants: [{name: ..., target: apr.MODULE.NAME, replacement: \"tests.PKG.mutants:FUNCTION\"}]` "
                  "and check it with `apr contracts verify --mutants`")


@pytest.mark.parametrize(("pending", "style", "warned"), [
    (None, "canonical", True), ("later", "canonical", False), (None, "pv", False), (None, "ship-gate", False),
])
def test_a_falsifier_without_mutant_warns_unless_pending_or_not_canonical(pending: str | None, style: str,
                                                                          warned: bool) -> None:
    found = lint._mutants(con("a-v1", (), (fal("FALSIFY-A-001", pending=pending),), style=style))
    expected = [Finding(Severity.WARNING, "no-mutant", "falsifier FALSIFY-A-001 declares no mutant: nothing shows its "
                        "tests can fail", at("a-v1.yaml", 9), hint=NO_MUTANT_HINT)]
    assert found == (expected if warned else [])


def test_a_mutant_outside_the_project_is_an_error() -> None:
    from falsifiers.mutation import namespace_problem

    evil = Mutant("evil", "os.system", "tests.m:f")
    found = lint._mutants(con("a-v1", (), (fal("FALSIFY-A-001", mutants=(evil, Mutant("ok", "apr.x", "tests.m:f"))),)))
    assert found == [Finding(Severity.ERROR, "mutant-namespace", f"falsifier FALSIFY-A-001: {namespace_problem(evil)}",
                             at("a-v1.yaml", 9), hint="only attributes of the project's own packages are imported ("
                             f"{NAMESPACES}); nothing else is ever run")]


@pytest.mark.parametrize(("mutator", "hint_head"), [("truncat", "did you mean 'truncate'? "), ("qqq", "")])
def test_an_unknown_artifact_mutator(mutator: str, hint_head: str) -> None:
    found = lint._mutants(con("a-v1", (), (fal("FALSIFY-A-001", mutants=(Mutant("m", artifact=mutator),)),)))
    assert found == [Finding(Severity.ERROR, "unknown-mutator", f"falsifier FALSIFY-A-001: mutant 'm' names no "
                             f"built-in artifact mutator {mutator!r}", at("a-v1.yaml", 9),
                             hint=hint_head + "built-in: " + ", ".join(sorted(MUTATORS)))]


def test_every_built_in_mutator_is_accepted() -> None:
    mutants = tuple(Mutant(name, artifact=name) for name in MUTATORS)
    assert lint._mutants(con("a-v1", (), (fal("FALSIFY-A-001", mutants=mutants),))) == []


def test_mutant_resolution_reports_what_does_not_resolve_and_skips_the_rest() -> None:
    falsifier = fal("FALSIFY-A-001", mutants=(
        Mutant("art", artifact="no-such-mutator"),  # artifact mutants are not resolved
        Mutant("foreign", "os.system", "tests.m:f"),  # refused by `_mutants` already: not imported, not repeated
        Mutant("fine", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"),
        Mutant("missing", "falsifiers.report.NO_SUCH_NAME", "falsifiers.mutation:VACUOUS"),
    ))
    found = check_mutant_resolution([con("a-v1", (), (falsifier,))], REPO)
    assert [(f.severity, f.code, f.location) for f in found] == [(Severity.ERROR, "mutant-unresolved",
                                                                  at("a-v1.yaml", 9))]
    assert found[0].message.startswith("falsifier FALSIFY-A-001: mutant 'missing'")
    assert "NO_SUCH_NAME" in found[0].message and found[0].hint


def _importer_lacking(package: str, *, inside: str) -> Any:
    """An importer for which importing ``inside`` fails on a missing ``package`` (as a lean install does)."""
    import importlib

    def load(name: str) -> Any:
        if name == inside:
            raise ModuleNotFoundError(f"No module named {package!r}", name=package)
        return importlib.import_module(name)
    return load


def test_a_missing_third_party_package_leaves_the_mutant_unchecked_not_unresolved() -> None:
    from falsifiers.mutation import UNCHECKED, UNRESOLVED, mutant_problem
    mutant = Mutant("m", "falsifiers.report.HARNESS", "tests.lean.mutants:f")
    problem = mutant_problem(mutant, importer=_importer_lacking("hypothesis", inside="tests.lean.mutants"))
    assert problem is not None and problem.code == UNCHECKED
    assert "'hypothesis'" in problem.message and "not installed" in problem.message
    assert "pip install" in problem.hint and "'hypothesis'" in problem.hint
    # a project module that is missing is still a real error (a typo or a deleted module)
    problem = mutant_problem(mutant, importer=_importer_lacking("apr.gone", inside="tests.lean.mutants"))
    assert problem is not None and problem.code == UNRESOLVED


def test_unchecked_mutants_are_one_warning_per_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import mutation

    def problem(mutant: Mutant, *, importer: Any = None) -> Any:
        package, _, _ = mutant.name.partition("-")
        if package == "ok":
            return None
        if package == "bad":
            return mutation.Problem(mutation.UNRESOLVED, f"mutant {mutant.name!r}: no", "fix it")
        return mutation.Problem(mutation.UNCHECKED, f"mutant {mutant.name!r}: needs {package}", f"install {package!r}")

    monkeypatch.setattr(lint, "mutant_problem", problem)
    names = ("hyp-1", "ok-1", "hyp-2", "bad-1", "tb-1", "hyp-3")
    falsifier = fal("FALSIFY-A-001", mutants=tuple(Mutant(n, "apr.x.y", "tests.m:f") for n in names))
    found = check_mutant_resolution([con("a-v1", (), (falsifier,))], REPO)
    assert [(f.severity, f.code) for f in found] == [(Severity.ERROR, "mutant-unresolved"),
                                                     (Severity.WARNING, "mutant-unchecked"),
                                                     (Severity.WARNING, "mutant-unchecked")]
    assert found[1].message == "falsifier FALSIFY-A-001: mutant 'hyp-1': needs hyp (and 2 more mutants for the same reason)"
    assert found[1].hint == "install 'hyp'" and found[1].location == at("a-v1.yaml", 9)
    assert found[2].message == "falsifier FALSIFY-A-001: mutant 'tb-1': needs tb"
    two = fal("FALSIFY-A-001", mutants=(Mutant("hyp-1", "apr.x.y", "tests.m:f"), Mutant("hyp-2", "apr.x.y", "tests.m:f")))
    assert check_mutant_resolution([con("a-v1", (), (two,))], REPO)[0].message.endswith(
        "(and 1 more mutant for the same reason)")


# --- lint_paths -----------------------------------------------------------------------------------


def test_an_empty_folder_is_one_warning_without_place(tmp_path: Path) -> None:
    corpus = lint_paths([tmp_path])
    assert corpus.findings == (Finding(Severity.WARNING, "no-contracts", f"no contract files (*.yaml) under {tmp_path}",
                                       hint="create one with `apr contracts new NAME`"),)
    assert corpus.contracts == () and not corpus.has_errors
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (finding,) = lint_paths([tmp_path / "a", tmp_path / "b"]).findings
    assert finding.message == f"no contract files (*.yaml) under {tmp_path / 'a'}, {tmp_path / 'b'}"


def test_paths_are_shown_relative_to_the_root_or_as_given(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one-v1.yaml").write_text(contract_yaml("ONE").replace("if_fails", "if_fail"))
    relative = lint_paths([tmp_path], relative_to=tmp_path)
    assert {f.location.path for f in relative.findings if f.location} == {os.path.join("sub", "one-v1.yaml")}
    given = lint_paths([tmp_path / "sub"])
    assert {f.location.path for f in given.findings if f.location} == {os.fspath(tmp_path / "sub" / "one-v1.yaml")}
    assert [c.path for c in given.contracts] == [os.fspath(tmp_path / "sub" / "one-v1.yaml")]


def test_a_corpus_error_invalidates_only_its_own_contract(tmp_path: Path) -> None:
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("A", status="DISCHARGED", falsifiers=[{"pending": "later"}]))
    (tmp_path / "b-v1.yaml").write_text(contract_yaml("B"))  # only a warning (no mutant): still valid
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    assert {c.name: c.is_valid for c in corpus.contracts} == {"a-v1": False, "b-v1": True}
    assert ("b-v1.yaml", "no-mutant") in {(f.location.path, f.code) for f in corpus.findings if f.location}


def test_findings_are_ordered_by_path_line_column_then_code(tmp_path: Path) -> None:
    (tmp_path / "b-v1.yaml").write_text(contract_yaml("B", depends_on=("zz-v1",)).replace("if_fails", "if_fail"))
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("A", [{}, {}]).replace("INV-A-002", "INV-A-012", 1))
    found = lint_paths([tmp_path], relative_to=tmp_path).findings
    keys = [(f.location.path, f.location.line, f.location.col, f.code) for f in found if f.location]
    assert keys == sorted(keys)
    assert keys[0][0] == "a-v1.yaml" and keys[-1][0] == "b-v1.yaml"
    at_one_place = [k for k in keys if k[:3] == keys[0][:3]]
    assert len(found) >= 6 and at_one_place == sorted(at_one_place)


def test_order_key() -> None:
    assert lint._order(Finding(Severity.ERROR, "x", "m")) == ("", 0, 0, "x")
    assert lint._order(Finding(Severity.ERROR, "x", "m", Location("p"))) == ("p", 0, 0, "x")
    assert lint._order(Finding(Severity.ERROR, "x", "m", Location("p", 3, 4))) == ("p", 3, 4, "x")


def test_replace_valid_keeps_the_record_when_nothing_changes() -> None:
    contract = con("a-v1")
    assert lint._replace_valid(contract, True) is contract
    invalid = lint._replace_valid(contract, False)
    assert invalid.is_valid is False and invalid.name == "a-v1"
    assert lint._replace_valid(invalid, True).is_valid is True


def test_the_lookup_tables_keep_the_first_declaration(tmp_path: Path) -> None:
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("SAME"))
    (tmp_path / "b-v1.yaml").write_text(contract_yaml("SAME"))
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    assert corpus.falsifiers["FALSIFY-SAME-001"].location.path == "a-v1.yaml"
    assert corpus.invariants["INV-SAME-001"].location.path == "a-v1.yaml"
    assert set(corpus.falsifiers) == {"FALSIFY-SAME-001"} and set(corpus.invariants) == {"INV-SAME-001"}


def test_lint_paths_resolves_mutants_only_when_asked(tmp_path: Path) -> None:
    mutant = {"name": "m", "target": "falsifiers.report.NO_SUCH_NAME", "replacement": "falsifiers.mutation:VACUOUS"}
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("A", [{"mutants": [mutant]}]))
    assert "mutant-unresolved" not in codes(list(lint_paths([tmp_path]).findings))
    corpus = lint_paths([tmp_path], resolve_mutants=REPO)
    assert "mutant-unresolved" in codes(list(corpus.findings))
    assert corpus.contracts[0].is_valid is False


def test_lint_paths_passes_the_project_capabilities(tmp_path: Path) -> None:
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("A", [{"requires": ["tpu"]}]))
    assert "capability" in codes(list(lint_paths([tmp_path]).findings))
    assert "capability" not in codes(list(lint_paths([tmp_path], known_capabilities=frozenset({"tpu"})).findings))


def test_lint_paths_fills_and_reuses_the_schema_cache(tmp_path: Path) -> None:
    (tmp_path / "a-v1.yaml").write_text(contract_yaml("A").replace("if_fails", "if_fail"))
    cache: dict[str, Any] = {}
    first = lint_paths([tmp_path], schema_cache=cache)
    assert len(cache) == 1
    (key,) = cache
    cache[key] = []  # a cached answer is used as it is
    again = lint_paths([tmp_path], schema_cache=cache)
    assert "unknown-key" in codes(list(first.findings)) and "unknown-key" not in codes(list(again.findings))


def test_compat_mode_checks_bindings_against_each_contracts_equations(tmp_path: Path) -> None:
    def with_equations(prefix: str, *names: str) -> str:
        return contract_yaml(prefix) + "equations:\n" + "".join(f'  {n}: {{formula: "f"}}\n' for n in names)

    (tmp_path / "good-v1.yaml").write_text(with_equations("GOOD", "eq1"))
    (tmp_path / "bad-v1.yaml").write_text(with_equations("BAD", "eq2").replace("if_fails", "if_fail"))  # invalid
    (tmp_path / "broken-v1.yaml").write_text("metadata: [unclosed\n")  # unreadable: no equation known
    entries = [("good-v1.yaml", "eq1"), ("good-v1.yaml", "eqX"), ("bad-v1.yaml", "eq9"), ("broken-v1.yaml", "any")]
    (tmp_path / "binding.yaml").write_text("bindings:\n" + "".join(
        f"  - {{contract: {c}, equation: {e}}}\n" for c, e in entries))
    corpus = lint_paths([tmp_path], compat_mode=True, relative_to=tmp_path)
    dangling = [(f.location.line, f.message) for f in corpus.findings if f.code == "binding-dangling"]
    assert dangling == [(3, "binding names equation 'eqX', which good-v1.yaml does not define"),
                        (4, "binding names equation 'eq9', which bad-v1.yaml does not define")]
    assert not any(f.code == "binding-dangling" for f in lint_paths([tmp_path], relative_to=tmp_path).findings)


def test_mutant_resolution_imports_as_pytest_would_from_the_given_root(tmp_path: Path) -> None:
    """A module that imports a sibling by bare name (as test helpers do) resolves: its folder goes on sys.path."""
    import sys

    package = f"mutprobe_{os.getpid()}"
    folder = tmp_path / "apr" / package  # `apr` is a namespace package: the root's apr/ joins it
    folder.mkdir(parents=True)
    (folder / "helper.py").write_text(f"import {package}_sibling\nVALUE = {package}_sibling.VALUE\n")
    (folder / f"{package}_sibling.py").write_text("VALUE = 1\n")
    mutant = Mutant("m", f"apr.{package}.helper.VALUE", "falsifiers.mutation:VACUOUS")
    before = list(sys.path)
    try:
        assert check_mutant_resolution([con("a-v1", (), (fal("FALSIFY-A-001", mutants=(mutant,)),))], tmp_path) == []
        assert sys.path == before  # the folders it added are gone again
    finally:
        for name in [n for n in sys.modules if package in n]:
            del sys.modules[name]


def test_lint_paths_applies_the_given_limits(tmp_path: Path) -> None:
    from falsifiers.loader import Limits

    text = contract_yaml("A")
    (tmp_path / "a-v1.yaml").write_text(text)
    assert "file-too-large" not in codes(list(lint_paths([tmp_path]).findings))
    corpus = lint_paths([tmp_path], limits=Limits(max_bytes=len(text) - 1), relative_to=tmp_path)
    (finding,) = [f for f in corpus.findings if f.code == "file-too-large"]
    assert str(finding.location) == "a-v1.yaml" and f"{len(text):,} bytes" in finding.message
    assert corpus.contracts[0].is_valid is False


def test_check_corpus_keeps_the_findings_of_every_rule() -> None:
    i, f = pair("A-001")
    twin = con("a-v1", (i,), (f,), path="other/a-v1.yaml")
    found = check_corpus([con("a-v1", (i,), (f,)), twin])
    assert codes(found) == ["duplicate-contract", "duplicate-id", "duplicate-id"]


def test_a_pv_contract_does_not_end_the_check_of_the_others() -> None:
    found = lint._invariant_links([con("pv-v1", (inv("INV-P-001", "pv-v1"),), style="pv"),
                                   con("b-v1", (inv("INV-B-001", "b-v1"),))])
    assert [(f.code, f.location) for f in found] == [("unfalsified-invariant", at("b-v1.yaml", 5))]


def test_a_sibling_dependency_does_not_end_the_check_of_the_others(tmp_path: Path) -> None:
    (tmp_path / "sib-v1.yaml").write_text("")
    contract = con("a-v1", path=os.fspath(tmp_path / "a-v1.yaml"), depends_on=("sib-v1", "nope-v1", "b-v1"))
    found = lint._dependencies([contract, con("b-v1", depends_on=("a-v1",))], {})
    assert [(f.code, f.message) for f in found] == [
        ("unknown-dependency", "a-v1 depends on 'nope-v1', which is not a contract here"),
        ("dependency-cycle", "depends_on forms a cycle: a-v1 -> b-v1 -> a-v1")]
