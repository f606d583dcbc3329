"""``--compat`` exactly (issue 23): which style a document is in, how each pv and ship-gate form is
rewritten into the canonical shape, every finding it adds (code, severity, message, place, fix),
and the binding-registry check.

Each document is a small YAML text loaded by the harness's loader; a finding's place is found in
that text by hand (`_at`), never read back from the rewrite.
"""

from __future__ import annotations

from typing import Any

import pytest

from falsifiers import loader
from falsifiers.compat import (
    COMPAT_OPTIONAL,
    STYLE_BINDING,
    STYLE_CANONICAL,
    STYLE_PV,
    STYLE_SHIP_GATE,
    check_bindings,
    classify_test,
    detect_style,
    normalize,
)
from falsifiers.records import Finding, Location, Severity

PATH = "c-v1.yaml"
FIX = 'bind a pytest test with @pytest.mark.falsifies("{}")'


def _doc(text: str) -> loader.Document:
    doc = loader.load_bytes(text.encode(), PATH)
    assert not doc.findings, doc.findings
    return doc


def _at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the ``nth`` occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _after(text: str, needle: str, prefix: str) -> tuple[int, int]:
    """Where ``needle`` continues after its ``prefix``."""
    line, col = _at(text, needle)
    return line, col + len(prefix)


def _f(severity: Severity, code: str, message: str, where: tuple[int, int], hint: str | None = None) -> Finding:
    return Finding(severity, code, message, Location(PATH, *where), hint=hint)


W, N, E = Severity.WARNING, Severity.INFO, Severity.ERROR  # warning, note (info), error


def _norm(text: str) -> tuple[Any, list[Finding], str, loader.Document]:
    doc = _doc(text)
    out, style = normalize(doc)
    return out.data, out.findings, style, out


def test_the_style_names_and_the_optional_keys_are_interface() -> None:
    assert (STYLE_CANONICAL, STYLE_PV, STYLE_SHIP_GATE, STYLE_BINDING) == ("canonical", "pv", "ship-gate",
                                                                           "binding-registry")
    assert frozenset({"changelog", "status", "invariant", "invariants"}) == COMPAT_OPTIONAL


# --- detect_style ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "style"), [
    (None, STYLE_CANONICAL), ([], STYLE_CANONICAL), ("text", STYLE_CANONICAL),
    ({"bindings": []}, STYLE_BINDING),
    ({"bindings": [], "contract_id": "x"}, STYLE_BINDING),  # a registry first
    ({"bindings": [], "falsification_tests": []}, STYLE_PV),  # then `bindings` is an unknown top key
    ({"contract_id": "x", "metadata": {"status": "FUNCTIONAL"}, "invariants": []}, STYLE_SHIP_GATE),
    ({"metadata": {"status": "FUNCTIONAL"}, "invariants": [], "gates": []}, STYLE_PV),
    ({"metadata": {"status": "FUNCTIONAL"}, "invariants": [], "equations": {}, "proof_obligations": [],
      "falsification_tests": []}, STYLE_CANONICAL),  # every allowed top key, nothing pv-only
    ({"metadata": {"status": "FUNCTIONAL"}, "falsification_tests": [{"id": "F", "test": "x"}]}, STYLE_PV),
    ({"metadata": {"status": "FUNCTIONAL"}, "falsification_tests": ["test", {"id": "F"}]}, STYLE_CANONICAL),
    ({"metadata": {"status": "FUNCTIONAL"}, "falsification_tests": {"test": "x"}}, STYLE_CANONICAL),
    ({"metadata": {"version": "1.0.0"}}, STYLE_PV),  # no status and no invariants: pv
    ({"metadata": {"version": "1.0.0"}, "invariants": []}, STYLE_CANONICAL),
    ({"metadata": {"status": "PROPOSED"}}, STYLE_CANONICAL),
    ({"metadata": "text"}, STYLE_CANONICAL),
    ({}, STYLE_CANONICAL),
])
def test_detect_style(data: Any, style: str) -> None:
    assert detect_style(data) == style


# --- classify_test ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    (None, "prose"), (3, "prose"), ("", "prose"), ("   ", "prose"),
    ("PENDING: needs a GPU", "pending"), ("  pending later", "pending"), ("LIVE-PENDING on the box", "pending"),
    ("live-pending", "pending"), ("pendingx", "pending"),
    ("cargo test -p x", "command"), ("grep -r foo", "command"), ("pytest tests/x.py", "command"),
    ("  apr qa model.apr", "command"), ("see: cargo test foo", "command"), ("python3 -m x", "command"),
    ("test_foo", "function"), ("tests::a_b::c", "function"), ("_private", "function"), ("Foo9", "function"),
    ("the output is checked", "prose"), ("1abc", "prose"), ("test_foo()", "prose"), ("a.b", "prose"),
    ("cargotest x", "prose"),
])
def test_classify_test(text: Any, kind: str) -> None:
    assert classify_test(text) == kind


# --- normalize: what is left alone -------------------------------------------------------------------


CANONICAL = """\
metadata:
  version: 1.0.0
  status: FUNCTIONAL
invariants:
  - id: INV-A-001
    statement: s
"""


def test_a_canonical_document_and_a_registry_come_back_as_they_are() -> None:
    for text, style in ((CANONICAL, STYLE_CANONICAL), ("bindings: []\n", STYLE_BINDING), ("- 1\n", STYLE_CANONICAL)):
        doc = _doc(text)
        assert normalize(doc) == (doc, style)
        assert normalize(doc)[0] is doc


def test_the_rewrite_is_a_copy_that_keeps_the_documents_identity() -> None:
    text = "metadata:\n  version: 1.0.0\ngates: []\n"
    doc = _doc(text)
    doc.findings.append(Finding(W, "earlier", "kept", Location(PATH, 1, 1)))
    out, style = normalize(doc)
    assert style == STYLE_PV and out is not doc
    assert (out.path, out.sha256, out.text) == (doc.path, doc.sha256, doc.text)
    assert out.positions == doc.positions and out.positions is not doc.positions
    assert out.key_positions == doc.key_positions and out.key_positions is not doc.key_positions
    assert out.findings[0] == doc.findings[0] and out.findings is not doc.findings
    assert len(doc.findings) == 1  # the source's findings are untouched
    assert doc.data == {"metadata": {"version": "1.0.0"}, "gates": []}  # and so is its data


# --- the top level ---------------------------------------------------------------------------------


def test_top_level_keys_pv_knows_are_counted_once_and_others_are_warned() -> None:
    text = "metadata:\n  version: 1.0.0\n  status: FUNCTIONAL\nequations: {}\ngates: []\nequatoins: {}\nzzz: 1\n"
    data, findings, style, _ = _norm(text)
    assert style == STYLE_PV
    assert data == {"metadata": {"version": "1.0.0", "status": "FUNCTIONAL"}}
    assert findings == [
        _f(W, "unknown-key", "unknown key `equatoins` in the contract (ignored in compat mode)", _at(text, "equatoins"),
           "did you mean `equations`?"),
        _f(W, "unknown-key", "unknown key `zzz` in the contract (ignored in compat mode)", _at(text, "zzz")),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: equations, gates", (1, 1)),
    ]


def test_an_unknown_top_key_close_to_a_core_key_gets_that_hint() -> None:
    text = "metadata:\n  status: FUNCTIONAL\ninvariant: []\n"
    _, findings, _, _ = _norm(text)
    assert findings == [_f(W, "unknown-key", "unknown key `invariant` in the contract (ignored in compat mode)",
                           _at(text, "invariant"), "did you mean `invariants`?")]


def test_lists_are_rewritten_and_other_values_passed_on_for_the_schema() -> None:
    data, _, _, _ = _norm("metadata:\n  status: FUNCTIONAL\ninvariants: text\nfalsification_tests: 3\ngates: []\n")
    assert data == {"metadata": {"status": "FUNCTIONAL"}, "invariants": "text", "falsification_tests": 3}
    data, _, _, _ = _norm("metadata:\n  status: FUNCTIONAL\ngates: []\n")
    assert data == {"metadata": {"status": "FUNCTIONAL"}}  # absent stays absent


# --- metadata ----------------------------------------------------------------------------------------


def test_metadata_keys_kept_counted_or_warned() -> None:
    text = ("metadata:\n  version: 1.0.0\n  status: FUNCTIONAL\n  description: d\n  author: me\n  tags: [a]\n"
            "  kind: kernel\n  registry: r\n  title: t\n  versoin: 2\n  zzz: 1\ngates: []\n")
    data, findings, style, _ = _norm(text)
    assert style == STYLE_PV
    assert data["metadata"] == {"version": "1.0.0", "status": "FUNCTIONAL", "description": "d", "author": "me",
                                "tags": ["a"]}
    assert findings == [
        _f(W, "unknown-key", "unknown key `versoin` in metadata (ignored in compat mode)", _at(text, "versoin"),
           "did you mean `version`?"),
        _f(W, "unknown-key", "unknown key `zzz` in metadata (ignored in compat mode)", _at(text, "zzz")),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: gates, metadata.kind, "
           "metadata.registry, metadata.title", (1, 1)),
    ]


SHIP_GATE = """\
contract_id: apr-x
version: 2.0.0
status: ACTIVE
references:
  parent_spec: spec.md
  external: 3
changelog:
  - "2.0.0 (2025-03-01): second"
created: 2025-01-01
updated: yesterday
summary: what it does
title: not used
invariants: []
"""


def test_ship_gate_top_keys_move_into_metadata_with_their_positions() -> None:
    data, findings, style, out = _norm(SHIP_GATE)
    assert style == STYLE_SHIP_GATE
    assert data["metadata"] == {
        "version": "2.0.0", "status": "FUNCTIONAL", "references": ["parent_spec: spec.md", "external: 3"],
        "changelog": [{"version": "2.0.0", "date": "2025-03-01", "changes": "second"}],
        "created": "2025-01-01", "description": "what it does",
    }
    for key, needle in (("version", "2.0.0"), ("status", "ACTIVE"), ("created", "2025-01-01"),
                        ("description", "what it does")):
        assert out.positions[("metadata", key)] == _at(SHIP_GATE, needle)
    for key in ("version", "status", "references", "changelog", "created", "updated"):
        assert out.key_positions[("metadata", key)] == _at(SHIP_GATE, f"{key}:")
    assert ("metadata", "updated") not in data["metadata"]
    assert findings == [
        _f(W, "compat-status", "status 'ACTIVE' is not in the lifecycle; read as FUNCTIONAL", _at(SHIP_GATE, "ACTIVE"),
           "use PROPOSED, PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL or DISCHARGED"),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: changelog, contract_id, created, "
           "metadata.updated, references, references (a mapping), status, summary, title, updated, version",
           (1, 1)),
    ]


def test_metadata_wins_over_the_top_level_and_draft_is_proposed() -> None:
    text = "metadata:\n  version: 1.0.0\n  status: DRAFT\nversion: 9.9.9\nabstract: from abstract\ntitle: t\n"
    data, findings, _, out = _norm(text)
    assert data["metadata"] == {"version": "1.0.0", "status": "PROPOSED", "description": "from abstract"}
    assert out.positions[("metadata", "version")] == _at(text, "1.0.0")
    assert findings[0] == _f(W, "compat-status", "status 'DRAFT' is not in the lifecycle; read as PROPOSED",
                             _at(text, "DRAFT"), "use PROPOSED, PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL or DISCHARGED")


def test_no_status_is_read_as_proposed_with_a_note() -> None:
    text = "metadata:\n  version: 1.0.0\n  description: kept\nsummary: not used\n"
    data, findings, _, _ = _norm(text)
    assert data["metadata"] == {"version": "1.0.0", "description": "kept", "status": "PROPOSED"}
    assert findings == [
        _f(N, "compat-status", "no status; read as PROPOSED", _at(text, "version"), "add `status: PROPOSED`"),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: summary", (1, 1)),
    ]


@pytest.mark.parametrize(("extra", "description"), [
    ("summary: 3\nabstract: a\n", "a"),  # a summary that is no text is skipped
    ("title: t\nabstract: a\n", "a"),  # abstract before title
    ("title: t\n", "t"),
    ("summary: s\ntitle: t\n", "s"),
])
def test_the_description_comes_from_the_first_text_of_summary_abstract_title(extra: str, description: str) -> None:
    data, _, _, _ = _norm("metadata:\n  status: FUNCTIONAL\n" + extra)
    assert data["metadata"]["description"] == description


def test_a_description_that_is_no_text_anywhere_is_absent() -> None:
    data, _, _, _ = _norm("metadata:\n  status: FUNCTIONAL\nsummary: [a]\ngates: []\n")
    assert "description" not in data["metadata"]


def test_references_and_depends_on_are_made_plain() -> None:
    text = ("metadata:\n  status: FUNCTIONAL\n  references: [a, 3, {k: v}]\n"
            "  depends_on: [../x/a-v1.yaml, b-v1.yml, c-v1, d.yaml.bak, 7]\ngates: []\n")
    data, _, _, _ = _norm(text)
    assert data["metadata"]["references"] == ["a", "3", "{'k': 'v'}"]
    assert data["metadata"]["depends_on"] == ["a-v1", "b-v1", "c-v1", "d.yaml.bak", "7"]
    data, _, _, _ = _norm("metadata:\n  status: FUNCTIONAL\n  references: text\n  depends_on: x.yaml\ngates: []\n")
    assert (data["metadata"]["references"], data["metadata"]["depends_on"]) == ("text", "x.yaml")  # for the schema


@pytest.mark.parametrize(("value", "kept"), [("2025-01-02", True), ("2025-1-2", False), ("2025-01-02x", False),
                                             ("x2025-01-02", False), ("[2025]", False)])
def test_created_and_updated_are_kept_only_as_dates(value: str, kept: bool) -> None:
    data, findings, _, _ = _norm(f"metadata:\n  status: FUNCTIONAL\n  created: '{value}'\n  updated: '{value}'\ngates: []\n")
    assert ("created" in data["metadata"], "updated" in data["metadata"]) == (kept, kept)
    ignored = findings[-1].message
    assert ("metadata.created" in ignored and "metadata.updated" in ignored) is not kept


def test_a_metadata_that_is_no_mapping_is_read_as_empty() -> None:
    data, _, _, _ = _norm("metadata: text\nversion: 1.0.0\nstatus: FUNCTIONAL\ngates: []\n")
    assert data["metadata"] == {"version": "1.0.0", "status": "FUNCTIONAL"}


# --- changelog ---------------------------------------------------------------------------------------


CHANGELOG = """\
metadata:
  status: FUNCTIONAL
  changelog:
    - "v1.2.0 (2025-01-02): fixed it"
    - "1.1.0 \u2014 no date"
    - "1.0.0"
    - v0.9.0 (2024-12-01): as a mapping
    - "  0.8.0 - spaced  "
    - "not a version"
    - {version: 0.7.0, date: "2024-01-01", change: singular}
    - {version: 0.6.0, date: "2024-01-01", change: a, changes: b}
    - {note: other}
    - 3
gates: []
"""


def test_each_changelog_form_is_read_or_reported() -> None:
    data, findings, _, _ = _norm(CHANGELOG)
    assert data["metadata"]["changelog"] == [
        {"version": "1.2.0", "date": "2025-01-02", "changes": "fixed it"},
        {"version": "1.1.0", "date": "0000-00-00", "changes": "no date"},
        {"version": "1.0.0", "date": "0000-00-00", "changes": "1.0.0"},
        {"version": "0.9.0", "date": "2024-12-01", "changes": "as a mapping"},
        {"version": "0.8.0", "date": "0000-00-00", "changes": "spaced"},
        {"version": "0.7.0", "date": "2024-01-01", "changes": "singular"},
        {"version": "0.6.0", "date": "2024-01-01", "change": "a", "changes": "b"},
        {"note": "other"},
        3,
    ]
    no_date = "changelog entry has no (YYYY-MM-DD) date"
    assert findings[:-1] == [
        _f(W, "compat-changelog", no_date, _at(CHANGELOG, '"1.1.0')),
        _f(W, "compat-changelog", no_date, _at(CHANGELOG, '"1.0.0"')),
        _f(W, "compat-changelog", no_date, _at(CHANGELOG, '"  0.8.0')),
        _f(W, "compat-changelog", "changelog entry does not start with a version", _at(CHANGELOG, '"not a version"'),
           'write `{version: "1.2.0", date: "YYYY-MM-DD", changes: "..."}`'),
    ]


def test_a_changelog_that_is_no_list_is_passed_on() -> None:
    data, findings, _, _ = _norm("metadata:\n  status: FUNCTIONAL\n  changelog: text\ngates: []\n")
    assert data["metadata"]["changelog"] == "text"
    assert [f.code for f in findings] == ["compat-ignored"]


def test_a_multi_line_changelog_text_is_kept_whole() -> None:
    data, _, _, _ = _norm('metadata:\n  status: FUNCTIONAL\n  changelog:\n    - "1.0.0: one\\ntwo"\ngates: []\n')
    assert data["metadata"]["changelog"] == [{"version": "1.0.0", "date": "0000-00-00", "changes": "one\ntwo"}]


# --- invariants ----------------------------------------------------------------------------------------


INVARIANTS = """\
metadata:
  status: FUNCTIONAL
invariants:
  - id: INV-A-001
    description: from description
    formal: f
    rationale: r
    site: s
    falsifier: prose
    statment: typo
  - id: INV-A-002
    statement: kept
    description: dropped
  - text
  - description: no id
    zzz: 1
gates: []
"""


def test_invariants_are_rewritten_with_their_findings() -> None:
    data, findings, _, out = _norm(INVARIANTS)
    assert data["invariants"] == [
        {"id": "INV-A-001", "statement": "from description", "formal": "f", "rationale": "r"},
        {"id": "INV-A-002", "statement": "kept"},
        "text",
        {"statement": "no id"},
    ]
    assert out.positions[("invariants", 0, "statement")] == _at(INVARIANTS, "from description")
    assert out.key_positions[("invariants", 0, "statement")] == _at(INVARIANTS, "description")
    assert findings == [
        _f(W, "prose-falsifier", "invariant INV-A-001: `falsifier:` is prose and binds nothing",
           _at(INVARIANTS, "falsifier:"),
           "declare it under falsification_tests and bind a test with @pytest.mark.falsifies"),
        _f(W, "unknown-key", "unknown key `statment` in invariant INV-A-001 (ignored in compat mode)",
           _at(INVARIANTS, "statment"), "did you mean `statement`?"),
        _f(W, "unknown-key", "unknown key `zzz` in invariant 3 (ignored in compat mode)", _at(INVARIANTS, "zzz")),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: gates, invariants[].description, "
           "invariants[].site", (1, 1)),
    ]


def test_an_invariant_without_an_id_names_a_question_mark() -> None:
    text = "metadata:\n  status: FUNCTIONAL\ninvariants:\n  - falsifier: x\ngates: []\n"
    _, findings, _, _ = _norm(text)
    assert findings[0].message == "invariant ?: `falsifier:` is prose and binds nothing"


# --- falsifiers ----------------------------------------------------------------------------------------


FALSIFIERS = """\
metadata:
  status: FUNCTIONAL
falsification_tests:
  - id: F-1
    invariant: INV-A-001
    rule: r
    prediction: p
    if_fails: f
    level: algorithm
    requires: []
    mutants: []
    test: cargo test -p x
    site: s
    ship_blocking: true
    predicton: typo
  - id: F-2
    invariant: INV-A-001
    falsification_test: test_foo
  - id: F-3
    test_harness: "PENDING: needs a GPU and a long time on it, more than sixty characters in all"
  - command: "the loss goes down when it should and up when it should not, for a long time"
  - text
"""


def test_falsifiers_are_rewritten_with_their_findings() -> None:
    data, findings, _, _ = _norm(FALSIFIERS)
    long_pending = "PENDING: needs a GPU and a long time on it, more than sixty characters in all"
    assert data["falsification_tests"] == [
        {"id": "F-1", "invariant": "INV-A-001", "rule": "r", "prediction": "p", "if_fails": "f", "level": "algorithm",
         "requires": [], "mutants": []},
        {"id": "F-2", "invariant": "INV-A-001"},
        {"id": "F-3", "pending": long_pending},
        {},
        "text",
    ]
    prose = "the loss goes down when it should and up when it should not, for a long time"
    assert findings == [
        _f(W, "test-command", "falsifier F-1: `test:` is a shell command the harness never runs",
           _at(FALSIFIERS, "cargo test"), FIX.format("F-1")),
        _f(W, "unknown-key", "unknown key `predicton` in falsifier F-1 (ignored in compat mode)",
           _at(FALSIFIERS, "predicton"), "did you mean `prediction`?"),
        _f(W, "test-name", "falsifier F-2: `falsification_test:` names 'test_foo' but nothing checks that it exists "
           "or that it ran", _at(FALSIFIERS, "test_foo"), FIX.format("F-2")),
        _f(N, "pending-test", f"falsifier F-3: `test_harness:` says {long_pending[:60]!r}; read as pending",
           _at(FALSIFIERS, '"PENDING'), FIX.format("F-3")),
        _f(W, "no-invariant", "falsifier F-3 names no invariant: it attacks nothing the contract promises",
           _at(FALSIFIERS, "id: F-3"), "add `invariant: INV-…-NNN` (declare the invariant under `invariants:`)"),
        _f(W, "prose-test", f"falsifier #3: `command:` is prose that binds nothing ({prose[:50]!r})",
           _at(FALSIFIERS, '"the loss'), FIX.format("#3")),
        _f(W, "no-invariant", "falsifier #3 names no invariant: it attacks nothing the contract promises",
           _at(FALSIFIERS, "command:"), "add `invariant: INV-…-NNN` (declare the invariant under `invariants:`)"),
        _f(N, "compat-ignored", "pv keys the harness does not check were ignored: falsification_tests[].ship_blocking, "
           "falsification_tests[].site", (1, 1)),
    ]


def test_a_pending_test_never_overrides_a_declared_pending() -> None:
    text = ("metadata:\n  status: FUNCTIONAL\nfalsification_tests:\n  - id: F-1\n    invariant: I\n"
            "    pending: declared\n    test: '  PENDING later  '\n")
    data, findings, _, _ = _norm(text)
    assert data["falsification_tests"][0]["pending"] == "declared"
    assert findings[0].message == "falsifier F-1: `test:` says 'PENDING later'; read as pending"


def test_ignored_keys_are_counted_across_items() -> None:
    text = ("metadata:\n  status: FUNCTIONAL\nfalsification_tests:\n"
            "  - {id: F-1, invariant: I, site: a}\n  - {id: F-2, invariant: I, site: b}\ngates: []\n")
    _, findings, _, _ = _norm(text)
    assert findings == [_f(N, "compat-ignored", "pv keys the harness does not check were ignored: "
                           "falsification_tests[].site (2), gates", (1, 1))]


def test_a_ship_gate_changelog_entry_is_reported_at_the_moved_list() -> None:
    text = "contract_id: x\nstatus: FUNCTIONAL\nchangelog:\n  - '1.0.0: first'\n"
    _, findings, _, _ = _norm(text)
    assert findings[0] == _f(W, "compat-changelog", "changelog entry has no (YYYY-MM-DD) date",
                             _at(text, "- '1.0.0"))


# --- check_bindings ------------------------------------------------------------------------------------


def _registry(text: str) -> loader.Document:
    return _doc(text)


def test_a_registry_without_a_list_is_one_error() -> None:
    for text, where in (("bindings: text\n", _at("bindings: text\n", "text")), ("- 1\n", (1, 1)),
                        ("other: 1\n", (1, 1))):
        assert check_bindings(_registry(text), {}) == [
            _f(E, "binding-registry", "`bindings` is not a list", where)]


REGISTRY = """\
bindings:
  - contract: contracts/a-v1.yaml
    equation: eq1
  - contract: a-v1.yaml
    equation: eq2
  - contract: b-v1.yaml
    equation: softmx
  - contract: c-v1.yaml
    equation: anything
  - contract: e-v1.yaml
    equation: x
  - text
  - equation: no contract
"""


def test_each_binding_is_checked_against_its_contracts_equations() -> None:
    equations = {"a-v1.yaml": ("eq1",), "b-v1.yaml": ("softmax", "relu"), "c-v1.yaml": None, "e-v1.yaml": ()}
    assert check_bindings(_registry(REGISTRY), equations) == [
        _f(E, "binding-dangling", "binding names equation 'eq2', which a-v1.yaml does not define",
           _at(REGISTRY, "eq2"), "did you mean 'eq1'?"),
        _f(E, "binding-dangling", "binding names equation 'softmx', which b-v1.yaml does not define",
           _at(REGISTRY, "softmx"), "did you mean 'softmax'?"),
        _f(E, "binding-dangling", "binding names equation 'x', which e-v1.yaml does not define",
           _after(REGISTRY, "equation: x\n", "equation: "), "equations there: none"),
        _f(N, "binding-outside-corpus", "1 binding(s) name 1 contract(s) not among the linted files (); not checked",
           (2, 3), "lint the whole contracts folder to check them"),
    ]


def test_a_binding_far_from_any_equation_lists_them_all() -> None:
    text = "bindings:\n  - {contract: a-v1.yaml, equation: zzzz}\n"
    (finding,) = check_bindings(_registry(text), {"a-v1.yaml": ("eq1", "eq2")})
    assert finding.hint == "equations there: eq1, eq2"


def test_bindings_outside_the_corpus_are_one_note_naming_five() -> None:
    names = [f"x{i}-v1.yaml" for i in (6, 1, 5, 2, 4, 3)]
    text = "bindings:\n" + "".join(f"  - {{contract: {n}, equation: e}}\n" for n in names + ["x1-v1.yaml"])
    assert check_bindings(_registry(text), {}) == [
        _f(N, "binding-outside-corpus", "7 binding(s) name 6 contract(s) not among the linted files "
           "(x1-v1.yaml, x2-v1.yaml, x3-v1.yaml, x4-v1.yaml, x5-v1.yaml …); not checked", (2, 3),
           "lint the whole contracts folder to check them")]
    five = "bindings:\n" + "".join(f"  - {{contract: {n}, equation: e}}\n" for n in names[:5])
    (note,) = check_bindings(_registry(five), {})
    assert note.message.endswith("(x1-v1.yaml, x2-v1.yaml, x4-v1.yaml, x5-v1.yaml, x6-v1.yaml); not checked")
    assert check_bindings(_registry("bindings: []\n"), {}) == []


def test_a_binding_names_its_contract_by_the_last_part_of_the_path() -> None:
    text = "bindings:\n  - {contract: a/b/a-v1.yaml, equation: eqX}\n"
    (finding,) = check_bindings(_registry(text), {"a-v1.yaml": ("eq1",)})
    assert finding.message == "binding names equation 'eqX', which a-v1.yaml does not define"


def test_invariant_keys_are_counted_per_item_and_misspelt_ones_get_their_hint() -> None:
    text = ("metadata:\n  status: FUNCTIONAL\ninvariants:\n  - {id: I-1, statement: s, site: a}\n"
            "  - {id: I-2, statement: s, site: b, Id: x, FORMAL: y, Rationale: z, Statement: w}\ngates: []\n")
    _, findings, _, _ = _norm(text)
    assert [(f.code, f.hint) for f in findings if f.code == "unknown-key"] == [
        ("unknown-key", "did you mean `id`?"), ("unknown-key", "did you mean `formal`?"),
        ("unknown-key", "did you mean `rationale`?"), ("unknown-key", "did you mean `statement`?")]
    assert findings[-1].message == "pv keys the harness does not check were ignored: gates, invariants[].site (2)"


def test_a_misspelt_core_top_key_gets_its_hint() -> None:
    text = "metadata:\n  status: FUNCTIONAL\nMetadata: {}\nInvariants: []\nFalsification_Tests: []\n"
    _, findings, _, _ = _norm(text)
    assert [f.hint for f in findings] == ["did you mean `metadata`?", "did you mean `invariants`?",
                                          "did you mean `falsification_tests`?"]
