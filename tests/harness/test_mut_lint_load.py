"""falsifiers.lint's loading half (issue 23): `load_contract` and `build_contract` on small files.

Found by the committed mutation configuration on a clean clone: with the tests that lint this
repository's own contracts deselected (mutmut's copy has no contracts/), nothing stated the default
mode, the schema cache, the not-a-mapping finding, the records salvaged from a broken file, or how
declared mutants, references and versions are read. Each test states the exact expected record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from falsifiers import compat
from falsifiers.lint import build_contract, load_contract
from falsifiers.loader import load_file
from falsifiers.records import Falsifier, Finding, Location, Mutant, Severity
from falsifiers.schema import schema_fingerprint
from tests.harness.projects import contract_yaml


def write(tmp_path: Path, text: str, name: str = "demo-v1.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def codes(findings: list[Finding]) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in findings]


def test_the_default_mode_is_canonical_where_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, contract_yaml("DEMO") + "surprise: 1\n")
    doc, contract = load_contract(path)
    assert ("unknown-key", Severity.ERROR) in codes(doc.findings)
    assert contract.is_valid is False
    compat_doc, compat_contract = load_contract(path, compat_mode=True)
    assert ("unknown-key", Severity.WARNING) in codes(compat_doc.findings)
    assert ("unknown-key", Severity.ERROR) not in codes(compat_doc.findings)
    assert compat_contract.is_valid is True


@pytest.mark.parametrize("dropped", sorted(compat.COMPAT_OPTIONAL & {"status", "changelog"}))
def test_keys_optional_only_in_compat_mode(tmp_path: Path, dropped: str) -> None:
    text = contract_yaml("DEMO")
    if dropped == "status":
        text = text.replace("  status: FUNCTIONAL\n", "")
    else:
        text = text.replace('  changelog:\n    - {version: 1.0.0, date: "2026-11-26", changes: "first"}\n', "")
    path = write(tmp_path, text)
    canonical, _ = load_contract(path)
    assert [f for f in canonical.findings if f.severity is Severity.ERROR], f"no error without {dropped}"
    compat_doc, _ = load_contract(path, compat_mode=True)
    assert [f for f in compat_doc.findings if f.severity is Severity.ERROR] == []


def test_the_schema_cache_stores_each_files_findings_under_its_hash_path_mode_and_schema(tmp_path: Path) -> None:
    path = write(tmp_path, contract_yaml("DEMO") + "surprise: 1\n")
    cache: dict[str, Any] = {}
    doc, _ = load_contract(path, schema_cache=cache)
    key = f"{doc.sha256}:{doc.path}:0:{schema_fingerprint()}"
    assert list(cache) == [key]
    assert cache[key] == [f.to_dict() for f in doc.findings]
    assert cache[key] and all(isinstance(f, dict) for f in cache[key])
    compat_doc, _ = load_contract(path, compat_mode=True, schema_cache=cache)
    assert set(cache) == {key, f"{compat_doc.sha256}:{compat_doc.path}:1:{schema_fingerprint()}"}


def test_a_cached_entry_replaces_validation(tmp_path: Path) -> None:
    path = write(tmp_path, contract_yaml("DEMO"))
    fresh, _ = load_contract(path)
    assert fresh.findings == []
    planted = Finding(Severity.WARNING, "planted", "from the cache", Location(str(path), 3, 2), hint="h")
    cache: dict[str, Any] = {f"{fresh.sha256}:{fresh.path}:0:{schema_fingerprint()}": [planted.to_dict()]}
    doc, contract = load_contract(path, schema_cache=cache)
    assert doc.findings == [planted]
    assert contract.is_valid is True  # a warning does not invalidate


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str"), ("7\n", "int")])
def test_a_document_that_is_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    doc, contract = load_contract(path)
    assert doc.findings == [Finding(Severity.ERROR, "not-a-mapping", f"a contract is a mapping of keys, not a {kind}",
                                    doc.locate(()), hint="start from `apr contracts new NAME`")]
    assert doc.locate(()) == Location(str(path), 1, 1)
    assert contract.is_valid is False and contract.falsifiers == () and contract.invariants == ()


def test_a_broken_file_keeps_the_ids_that_look_declared_with_empty_texts(tmp_path: Path) -> None:
    text = contract_yaml("DEMO").replace('    rule: "r"\n', '    rule: "r\n', 1)  # an unclosed quote
    path = write(tmp_path, text)
    doc = load_file(path)
    assert doc.data is None
    contract = build_contract(doc)
    line = text.splitlines().index("  - id: FALSIFY-DEMO-001") + 1
    assert contract.falsifiers == (Falsifier("FALSIFY-DEMO-001", "demo-v1", (), "", "", "",
                                             Location(doc.path, line, 1)),)
    assert contract.is_valid is False


def test_declared_mutants_are_read_with_sorted_args_and_malformed_items_skipped(tmp_path: Path) -> None:
    mutants = ["not a mapping", {"target": "no.name"}, {"name": 7},
               {"name": "code", "target": "apr.x.f", "replacement": "tests.m:g"},
               {"name": "bytes", "artifact": "flip_byte", "args": {"offset": 9, "bit": 3}},
               {"name": "odd-args", "artifact": "truncate", "args": ["not", "a", "mapping"]}]
    path = write(tmp_path, contract_yaml("DEMO", [{"mutants": mutants}]))
    _, contract = load_contract(path)
    (falsifier,) = contract.falsifiers
    assert falsifier.mutants == (
        Mutant("code", "apr.x.f", "tests.m:g", None, ()),
        Mutant("bytes", None, None, "flip_byte", (("bit", 3), ("offset", 9))),
        Mutant("odd-args", None, None, "truncate", ()),
    )


def test_texts_that_are_not_strings_read_as_empty(tmp_path: Path) -> None:
    text = contract_yaml("DEMO").replace('    rule: "r"', "    rule: [1, 2]").replace('    if_fails: "f"', "    if_fails: 3")
    _, contract = load_contract(write(tmp_path, text))
    (falsifier,) = contract.falsifiers
    assert (falsifier.rule, falsifier.prediction, falsifier.if_fails) == ("", "p", "")


@pytest.mark.parametrize(("references", "expected"), [
    ('["https://a", 7, "b"]', ("https://a", "b")),
    ('"https://not-a-list"', ()),
    ("null", ()),
])
def test_references_keep_the_strings_of_a_list(tmp_path: Path, references: str, expected: tuple[str, ...]) -> None:
    text = contract_yaml("DEMO").replace("metadata:\n", f"metadata:\n  references: {references}\n")
    _, contract = load_contract(write(tmp_path, text))
    assert contract.references == expected


@pytest.mark.parametrize(("version", "expected"), [('"1.2.3"', "1.2.3"), ("1.5", None), ("[1]", None)])
def test_only_a_string_version_is_kept(tmp_path: Path, version: str, expected: str | None) -> None:
    text = contract_yaml("DEMO").replace("  version: 1.0.0\n", f"  version: {version}\n", 1)
    _, contract = load_contract(write(tmp_path, text))
    assert contract.version == expected


BODY = """\
metadata:
  version: 1.0.0
  status: FUNCTIONAL
  description: {description}
  depends_on: {depends_on}
invariants:
  - not a mapping
  - {{id: 7, statement: "an id that is no string"}}
  - {{id: INV-A-001, statement: {statement}}}
falsification_tests:
  - just text
  - {{invariant: INV-A-001}}
  - id: FALSIFY-A-001
    invariant: {invariant}
    rule: r
    prediction: p
    if_fails: f
    level: {level}
    requires: {requires}
"""


def built(tmp_path: Path, **values: str) -> Any:
    """`build_contract` on a file with malformed pieces around one good invariant and falsifier: the
    schema reports them, and building must skip them without raising."""
    fields = {"description": '"d"', "depends_on": "[]", "statement": '"s"', "invariant": "INV-A-001",
              "level": "artifact", "requires": "[cuda]", **values}
    return build_contract(load_file(write(tmp_path, BODY.format(**fields), "a-v1.yaml")))


def test_malformed_items_are_skipped_and_the_good_ones_kept(tmp_path: Path) -> None:
    contract = built(tmp_path)
    assert [(i.id, i.statement, i.contract) for i in contract.invariants] == [("INV-A-001", "s", "a-v1")]
    (falsifier,) = contract.falsifiers
    assert (falsifier.id, falsifier.invariants, falsifier.level.value, falsifier.requires) == (
        "FALSIFY-A-001", ("INV-A-001",), "artifact", ("cuda",))
    assert contract.location == Location(contract.path, 1, 1)
    assert (contract.description, contract.depends_on) == ("d", ())


@pytest.mark.parametrize(("statement", "expected"), [('"kept"', "kept"), ("[1]", ""), ("3", "")])
def test_an_invariant_statement_that_is_not_a_string_reads_as_empty(tmp_path: Path, statement: str,
                                                                     expected: str) -> None:
    assert [i.statement for i in built(tmp_path, statement=statement).invariants] == [expected]


@pytest.mark.parametrize(("invariant", "expected"), [
    ("INV-A-001", ("INV-A-001",)),
    ("[INV-A-001, 7, INV-B-002]", ("INV-A-001", "INV-B-002")),
    ("{x: 1}", ()),
])
def test_the_attacked_invariants_are_a_string_or_the_strings_of_a_list(tmp_path: Path, invariant: str,
                                                                       expected: tuple[str, ...]) -> None:
    (falsifier,) = built(tmp_path, invariant=invariant).falsifiers
    assert falsifier.invariants == expected


@pytest.mark.parametrize(("level", "expected"), [("live", "live"), ("artifact", "artifact"), ("nonsense", "algorithm"),
                                                 ("7", "algorithm")])
def test_a_level_outside_the_known_ones_reads_as_algorithm(tmp_path: Path, level: str, expected: str) -> None:
    (falsifier,) = built(tmp_path, level=level).falsifiers
    assert falsifier.level.value == expected


@pytest.mark.parametrize(("requires", "expected"), [("[cuda, 7, network]", ("cuda", "network")), ("cuda", ()),
                                                     ("[]", ())])
def test_requires_keeps_the_strings_of_a_list(tmp_path: Path, requires: str, expected: tuple[str, ...]) -> None:
    (falsifier,) = built(tmp_path, requires=requires).falsifiers
    assert falsifier.requires == expected


@pytest.mark.parametrize(("description", "expected"), [('"what it promises"', "what it promises"), ("[1]", ""),
                                                       ("12", "")])
def test_a_description_that_is_not_a_string_reads_as_empty(tmp_path: Path, description: str, expected: str) -> None:
    assert built(tmp_path, description=description).description == expected


@pytest.mark.parametrize(("depends_on", "expected"), [("[b-v1, 7, c-v1]", ("b-v1", "c-v1")), ("b-v1", ()),
                                                      ("null", ()), ("{b: 1}", ())])
def test_depends_on_keeps_the_strings_of_a_list(tmp_path: Path, depends_on: str, expected: tuple[str, ...]) -> None:
    assert built(tmp_path, depends_on=depends_on).depends_on == expected
