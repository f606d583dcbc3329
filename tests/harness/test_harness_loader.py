"""Hostile YAML becomes findings at file:line:col, never an exception (FALSIFY-HARNESS-003/004)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from falsifiers.loader import Limits, load_bytes, load_file
from falsifiers.schema import schema_text, validate_document

REPO = Path(__file__).resolve().parents[2]


def codes(doc) -> list[str]:
    return [f.code for f in doc.findings]


@pytest.mark.falsifies("FALSIFY-HARNESS-003")
def test_duplicate_key_is_an_error_naming_both_lines() -> None:
    doc = load_bytes(b"metadata:\n  version: 1.0.0\n  version: 2.0.0\n", "c.yaml")
    (finding,) = doc.findings
    assert (finding.code, str(finding.location)) == ("duplicate-key", "c.yaml:3:3")
    assert finding.related[0].line == 2
    assert doc.data == {"metadata": {"version": "1.0.0"}}  # the first wins, and it is reported


@pytest.mark.falsifies("FALSIFY-HARNESS-003")
@pytest.mark.parametrize(
    ("source", "code", "where"),
    [
        (b"a:\n\tb: 1\n", "yaml-syntax", "c.yaml:2:1"),
        (b"a: [1, 2\n", "yaml-syntax", "c.yaml:2:1"),
        (b"a: 1\n---\nb: 2\n", "yaml-syntax", "c.yaml:2:1"),
        (b"a: !!python/object/apply:os.system [ls]\n", "yaml-tag", "c.yaml:1:4"),
        (b"a: !custom x\n", "yaml-tag", "c.yaml:1:4"),
        (b"<<: {a: 1}\n", "merge-key", "c.yaml:1:1"),
        (b"? [a, b]\n: 1\n", "complex-key", "c.yaml:1:3"),
        (b"&a [*a]\n", "recursive-alias", "c.yaml:1:1"),
        (b"a: \xff\n", "not-utf8", "c.yaml:1:4"),
        (b"a: \x07\n", "yaml-syntax", "c.yaml:1:4"),
        (b"", "empty", "c.yaml:1:1"),
        (b"[" * 100 + b"]" * 100, "too-deep", None),
    ],
)
def test_bad_yaml_is_a_located_finding(source: bytes, code: str, where: str | None) -> None:
    doc = load_bytes(source, "c.yaml")
    assert code in codes(doc), doc.findings
    finding = next(f for f in doc.findings if f.code == code)
    assert finding.is_error and finding.hint
    if where:
        assert str(finding.location) == where


@pytest.mark.falsifies("FALSIFY-HARNESS-003")
def test_billion_laughs_is_refused_before_expansion() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 10):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    doc = load_bytes("\n".join(lines).encode(), "bomb.yaml")
    assert codes(doc) == ["alias-bomb"]
    assert doc.data is None


@pytest.mark.falsifies("FALSIFY-HARNESS-003")
def test_a_20_mb_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    doc = load_file(big)
    assert codes(doc) == ["file-too-large"]
    assert "20,971,520 bytes" in doc.findings[0].message
    assert codes(load_file(tmp_path / "missing.yaml")) == ["unreadable"]


@pytest.mark.falsifies("FALSIFY-HARNESS-003")
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet="ab: -[]{}&*!\t\n'\"#?|>", max_size=200).map(str.encode))
def test_any_bytes_give_findings_never_an_exception(raw: bytes) -> None:
    doc = load_bytes(raw, "fuzz.yaml", limits=Limits(max_nodes=1000, max_depth=20))
    if isinstance(doc.data, dict):
        validate_document(doc)  # the schema stage must not raise either


def test_timestamps_stay_text_and_positions_are_recorded() -> None:
    doc = load_bytes(b"changelog:\n  - {version: 1.0.0, date: 2026-11-26}\n", "c.yaml")
    assert doc.data["changelog"][0]["date"] == "2026-11-26"
    assert str(doc.locate(("changelog", 0, "date"))) == "c.yaml:2:28"
    assert str(doc.locate(("changelog", 0, "date"), key=True)) == "c.yaml:2:22"


@pytest.mark.falsifies("FALSIFY-HARNESS-004")
def test_unknown_key_suggests_the_known_one() -> None:
    source = b"""metadata:
  version: 1.0.0
  status: FUNCTONAL
  description: d
  changelog: [{version: 1.0.0, date: "2026-11-26", changes: c}]
invariants:
  - {id: INV-A-001, statement: s}
falsification_tests:
  - id: FALSIFY-A-001
    invariant: INV-A-001
    rule: r
    prediction: p
    if_fail: f
"""
    doc = load_bytes(source, "c.yaml")
    by_code = {f.code: f for f in validate_document(doc)}
    unknown = by_code["unknown-key"]
    assert str(unknown.location) == "c.yaml:13:5"
    assert unknown.hint == "did you mean `if_fails`?"
    assert by_code["bad-value"].hint == "did you mean 'FUNCTIONAL'?"
    assert "if_fails" in by_code["missing-key"].message


@pytest.mark.falsifies("FALSIFY-HARNESS-004")
def test_published_schema_is_the_packaged_one() -> None:
    published = REPO / "contracts" / "schema" / "contract.schema.json"
    assert published.read_text(encoding="utf-8") == schema_text()


def test_wrong_types_say_how_to_fix_them() -> None:
    doc = load_bytes(b"metadata: {version: 1.0, status: PROPOSED, description: d, changelog: []}\n", "c.yaml")
    findings = {f.code: f for f in validate_document(doc)}
    assert findings["wrong-type"].hint == 'quote it and give three parts: version: "1.0.0"'
    assert str(findings["wrong-type"].location) == "c.yaml:1:21"
