"""The corpus records' text and dict forms, exactly (issue 23): ``path:line:col``, a finding's
compiler-style block, the JSON keys consumers read, and which declaration of an id wins."""

from __future__ import annotations

from falsifiers.records import (
    Contract,
    Corpus,
    Falsifier,
    Finding,
    Invariant,
    Level,
    Location,
    Mutant,
    Severity,
    Status,
)


def test_a_location_prints_as_editors_read_it() -> None:
    assert str(Location("c.yaml")) == "c.yaml"
    assert str(Location("c.yaml", 3)) == "c.yaml:3"
    assert str(Location("c.yaml", 3, 7)) == "c.yaml:3:7"
    assert str(Location("c.yaml", 0, 0)) == "c.yaml:0:0"  # zero is a value, not "unknown"
    assert str(Location("c.yaml", None, 7)) == "c.yaml"  # a column without a line says nothing


def test_a_location_as_json_has_path_line_and_col() -> None:
    assert Location("c.yaml", 3, 7).to_dict() == {"path": "c.yaml", "line": 3, "col": 7}
    assert Location("c.yaml").to_dict() == {"path": "c.yaml", "line": None, "col": None}


def test_a_finding_renders_as_a_compiler_error_with_related_places_and_the_fix() -> None:
    finding = Finding(Severity.ERROR, "duplicate-id", "id 'X' is declared twice", Location("b.yaml", 9, 5),
                      hint="rename one", related=(Location("a.yaml", 2, 3), Location("a.yaml", 4)))
    assert finding.render() == ("b.yaml:9:5: error[duplicate-id]: id 'X' is declared twice\n"
                                "  see also: a.yaml:2:3\n"
                                "  see also: a.yaml:4\n"
                                "  fix: rename one")
    assert Finding(Severity.WARNING, "w", "m").render() == "warning[w]: m"  # no place, no fix
    assert Finding(Severity.INFO, "i", "m", Location("c.yaml"), hint="").render() == "c.yaml: info[i]: m"


def test_a_finding_as_json_keeps_every_field_and_reads_back_the_same() -> None:
    finding = Finding(Severity.WARNING, "unknown-key", "unknown key 'x'", Location("c.yaml", 1, 2), hint="drop it",
                      related=(Location("d.yaml", 3, 4), Location("e.yaml")))
    data = finding.to_dict()
    assert data == {"severity": "warning", "code": "unknown-key", "message": "unknown key 'x'",
                    "location": {"path": "c.yaml", "line": 1, "col": 2}, "hint": "drop it",
                    "related": [{"path": "d.yaml", "line": 3, "col": 4}, {"path": "e.yaml", "line": None, "col": None}]}
    assert Finding.from_dict(data) == finding
    bare = Finding(Severity.ERROR, "empty-corpus", "no contracts")
    assert bare.to_dict() == {"severity": "error", "code": "empty-corpus", "message": "no contracts", "location": None,
                              "hint": None, "related": []}
    assert Finding.from_dict(bare.to_dict()) == bare
    assert Finding.from_dict({"severity": "info", "code": "c", "message": "m", "location": {"path": "p"}}) == (
        Finding(Severity.INFO, "c", "m", Location("p")))


def test_only_errors_are_errors() -> None:
    assert Finding(Severity.ERROR, "c", "m").is_error
    assert not Finding(Severity.WARNING, "c", "m").is_error and not Finding(Severity.INFO, "c", "m").is_error
    assert [s.value for s in Severity] == ["error", "warning", "info"]


def test_the_closed_sets_spell_what_contracts_and_receipts_say() -> None:
    assert [s.value for s in Status] == ["PROPOSED", "PARTIAL_ALGORITHM_LEVEL", "FUNCTIONAL", "DISCHARGED"]
    assert [lv.value for lv in Level] == ["algorithm", "artifact", "live"]


def test_a_mutant_is_an_artifact_mutant_only_when_it_names_a_mutator() -> None:
    assert Mutant("m", "a.b", "c:d").kind == "code"
    assert Mutant("m", artifact="truncate").kind == "artifact"
    assert Mutant("m", artifact="").kind == "code"


def _falsifier(fid: str, contract: str) -> Falsifier:
    return Falsifier(fid, contract, ("INV-A-001",), "r", "p", "f", Location(f"{contract}.yaml"))


def _contract(name: str, *falsifiers: Falsifier, invariants: tuple[Invariant, ...] = ()) -> Contract:
    return Contract(name, f"{name}.yaml", "0" * 64, "1.0.0", Status.PROPOSED, "d", (), invariants, falsifiers, True,
                    Location(f"{name}.yaml"))


def test_a_corpus_looks_ids_up_and_the_first_declaration_wins() -> None:
    first, again, other = _falsifier("F-1", "a"), _falsifier("F-1", "b"), _falsifier("F-2", "b")
    inv_a, inv_b = Invariant("INV-1", "s", "a", Location("a.yaml")), Invariant("INV-1", "t", "b", Location("b.yaml"))
    error = Finding(Severity.ERROR, "duplicate-id", "m")
    corpus = Corpus.of([_contract("a", first, invariants=(inv_a,)), _contract("b", again, other, invariants=(inv_b,))],
                       [error])
    assert corpus.falsifiers == {"F-1": first, "F-2": other}
    assert corpus.invariants == {"INV-1": inv_a}
    assert corpus.findings == (error,) and corpus.has_errors
    assert [c.name for c in corpus.contracts] == ["a", "b"]
    assert corpus.contract("b") is corpus.contracts[1] and corpus.contract("c") is None
    assert not Corpus.of([], [Finding(Severity.WARNING, "w", "m")]).has_errors


def test_contract_finds_the_first_of_two_with_one_name() -> None:
    one, two = _contract("a", _falsifier("F-1", "a")), _contract("a", _falsifier("F-2", "a"))
    assert Corpus.of([one, two], []).contract("a") is one
