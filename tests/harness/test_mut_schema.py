"""falsifiers.schema (issue 23): each jsonschema error becomes the finding its rule promises.

Findings are checked whole (severity, code, message, place, hint), with the expected text written
from the input and the translation rule, near misses beside each rule (the id hints, the version
hint, the nearest-key threshold), and the small helpers called directly.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import jsonschema
import pytest

from falsifiers import schema
from falsifiers.records import Finding, Severity
from falsifiers.loader import Document, load_bytes
from falsifiers.records import Location
from falsifiers.schema import did_you_mean, field_name, validate_document
from tests.harness.projects import contract_yaml

BASE = contract_yaml("A")  # line 3: version, 4: status, 6: depends_on, 8: changelog, 13: FALSIFY-A-001 ...
STATUSES = "PROPOSED, PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL, DISCHARGED"
FALSIFIER = "FALSIFY-A-001 (`falsification_tests[0]`)"


def findings(text: str, **kwargs: Any) -> list[tuple[str, str, str, str, str | None]]:
    doc = load_bytes(text.encode(), "c.yaml")
    assert not doc.findings, doc.findings
    return [(f.severity.value, f.code, f.message, str(f.location), f.hint) for f in validate_document(doc, **kwargs)]


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def translate(sch: dict[str, Any], instance: Any, unknown: Severity = Severity.ERROR) -> list[Finding]:
    """Every finding for ``instance`` against a small schema (a document without positions: 1:1)."""
    doc = Document("d.yaml", "", data=instance)
    return [f for e in jsonschema.Draft202012Validator(sch).iter_errors(instance)
            for f in schema._translate(e, doc, unknown)]


def test_a_valid_contract_has_no_finding() -> None:
    assert findings(BASE) == []


# --- types, with the version hint -----------------------------------------------------------------


@pytest.mark.parametrize(("written", "hint"), [
    ("1.0", 'quote it and give three parts: version: "1.0.0"'),
    ("2", 'quote it and give three parts: version: "2.0.0"'),
])
def test_an_unquoted_version_gets_a_three_part_hint(written: str, hint: str) -> None:
    value = json.loads(written)
    assert findings(edit("  version: 1.0.0", f"  version: {written}")) == [
        ("error", "wrong-type", f"`metadata.version` must be a string, not {type(value).__name__} {value!r}",
         "c.yaml:3:12", hint)]


def test_the_version_hint_applies_to_changelog_versions_too() -> None:
    (found,) = findings(edit("- {version: 1.0.0,", "- {version: 1.5,"))
    assert found[1:3] == ("wrong-type", "`metadata.changelog[0].version` must be a string, not float 1.5")
    assert found[4] == 'quote it and give three parts: version: "1.5.0"'


def test_a_number_for_another_string_just_needs_quotes() -> None:
    assert findings(edit('    rule: "r"', "    rule: 1.5")) == [
        ("error", "wrong-type", "`falsification_tests[0].rule` must be a string, not float 1.5", "c.yaml:15:11",
         "quote the value")]
    # a list where a string belongs (path ends in `version`, but the value is no number): plain quoting
    (found,) = findings(edit("  version: 1.0.0", "  version: [1]"))
    assert found[1:3] == ("wrong-type", "`metadata.version` must be a string, not list [1]")
    assert found[4] == "quote the value"


@pytest.mark.parametrize(("expected", "article"), [("array", "an"), ("object", "an"), ("integer", "an"),
                                                   ("number", "a"), ("boolean", "a")])
def test_the_article_follows_the_expected_type(expected: str, article: str) -> None:
    (finding,) = translate({"properties": {"x": {"type": expected}}}, {"x": "s"})
    assert (finding.code, finding.message, finding.hint) == (
        "wrong-type", f"`x` must be {article} {expected}, not str 's'", f"write {article} {expected}")
    assert finding.location == Location("d.yaml", 1, 1)


def test_a_wrong_type_at_the_top_of_the_document() -> None:
    (finding,) = translate({"type": "string"}, 5)
    assert (finding.code, finding.message, finding.hint) == ("wrong-type", "`the document` must be a string, not int 5",
                                                             "quote the value")
    (finding,) = translate({"type": "object"}, [1])
    assert (finding.code, finding.message, finding.hint) == ("wrong-type", "`the document` must be an object, not "
                                                             "list [1]", "write an object")


def test_a_long_value_is_shortened_in_the_message() -> None:
    (finding,) = translate({"type": "object", "properties": {"x": {"type": "integer"}}}, {"x": "y" * 80})
    assert finding.message == "`x` must be an integer, not str " + repr("y" * 80)[:59] + "…"


@pytest.mark.parametrize(("length", "shortened"), [(58, False), (59, True)])
def test_short_keeps_sixty_characters(length: int, shortened: bool) -> None:
    text = repr("z" * length)  # 60 or 61 characters with the quotes
    assert schema._short("z" * length) == (text[:59] + "…" if shortened else text)
    assert schema._short("z" * length, limit=100) == text


# --- enums ----------------------------------------------------------------------------------------


def test_a_misspelled_status_gets_the_nearest_value() -> None:
    assert findings(edit("status: FUNCTIONAL", "status: FUNCTIONL")) == [
        ("error", "bad-value", f"`metadata.status` is 'FUNCTIONL'; expected one of {STATUSES}", "c.yaml:4:11",
         "did you mean 'FUNCTIONAL'?")]


def test_a_far_off_status_lists_every_value() -> None:
    assert findings(edit("status: FUNCTIONAL", "status: XYZ")) == [
        ("error", "bad-value", f"`metadata.status` is 'XYZ'; expected one of {STATUSES}", "c.yaml:4:11",
         f"use one of: {STATUSES}")]


# --- patterns and ids -----------------------------------------------------------------------------


def test_a_falsifier_id_without_three_digits() -> None:
    assert findings(edit("  - id: FALSIFY-A-001", "  - id: FALSIFY-A-1")) == [
        ("error", "id-format", "`falsification_tests[0].id` is 'FALSIFY-A-1', which is not a falsifier id "
         "FALSIFY-<PREFIX>-NNN, e.g. FALSIFY-APR-FORMAT-001", "c.yaml:13:9",
         "e.g. 'FALSIFY-A-001' (upper case, three-digit number)")]


def test_an_invariant_id_without_prefix() -> None:
    text = BASE.replace("INV-A-001", "INV-001")
    assert findings(text) == [
        ("error", "id-format", "`invariants[0].id` is 'INV-001', which is not an invariant id INV-<PREFIX>-NNN, "
         "e.g. INV-APR-FORMAT-001", "c.yaml:10:9", "add a prefix naming the contract, e.g. 'INV-APR-FORMAT-001'"),
        ("error", "bad-value", "`falsification_tests[0].invariant` must be an invariant id (INV-<PREFIX>-NNN) or "
         "a non-empty list of them", "c.yaml:14:16", "got 'INV-001'")]


def test_a_bad_date_and_a_bad_contract_name_are_bad_values() -> None:
    text = edit('date: "2026-11-26"', 'date: "26.11.2026"').replace("depends_on: []", "depends_on: [Bad Name]")
    assert findings(text) == [
        ("error", "bad-value", "`metadata.depends_on[0]` is 'Bad Name', which is not a contract name: the file stem, "
         'lower-case, e.g. "apr-format-v2"', "c.yaml:6:16", None),
        ("error", "bad-value", "`metadata.changelog[0].date` is '26.11.2026', which is not a date written YYYY-MM-DD",
         "c.yaml:8:30", None)]


@pytest.mark.parametrize(("path", "code"), [
    (("id",), "id-format"), (("a", "id"), "id-format"), (("invariant",), "id-format"),
    (("invariant", 0), "id-format"), (("a", "invariant", 2), "id-format"),
    # near misses: a pattern error elsewhere is a bad value
    (("ids",), "bad-value"), (("identifier",), "bad-value"), (("id", 0), "bad-value"), ((0,), "bad-value"),
    (("invariants", 0), "bad-value"), (("x", "invariant", "y", 0), "bad-value"),
])
def test_which_pattern_errors_are_id_errors(path: tuple[Any, ...], code: str) -> None:
    sch: dict[str, Any] = {"type": "string", "pattern": "^ok$"}
    instance: Any = "bad"
    for part in reversed(path):
        if isinstance(part, int):
            sch, instance = {"prefixItems": [{}] * part + [sch]}, [None] * part + [instance]
        else:
            sch, instance = {"properties": {part: sch}}, {part: instance}
    (finding,) = translate(sch, instance)
    assert finding.code == code
    assert finding.message == f"`{field_name(path)}` is 'bad', which is not matched by the pattern '^ok$'"


def test_a_pattern_error_at_the_top_is_a_bad_value() -> None:
    (finding,) = translate({"type": "string", "pattern": "^ok$"}, "bad")
    assert (finding.code, finding.message) == ("bad-value", "`the document` is 'bad', which is not matched by the "
                                                            "pattern '^ok$'")


def test_expected_wording_comes_from_the_schema_or_a_matching_definition() -> None:
    defs = schema.contract_schema()["$defs"]
    assert schema._expected({"x-expected": "a thing", "pattern": "x"}) == "a thing"
    assert schema._expected({"pattern": defs["date"]["pattern"]}) == defs["date"]["x-expected"]
    assert schema._expected({"pattern": defs["text"]["pattern"]}) == "matched by the pattern '\\\\S'"
    assert schema._expected({"pattern": "^q$"}) == "matched by the pattern '^q$'"


NNN = "an id PREFIX-NNN"


@pytest.mark.parametrize(("value", "expected", "hint"), [
    ("FALSIFY-A-1", NNN, "e.g. 'FALSIFY-A-001' (upper case, three-digit number)"),
    ("FALSIFY-A-B-12", NNN, "e.g. 'FALSIFY-A-B-012' (upper case, three-digit number)"),
    ("FALSIFY-A-1234", NNN, "e.g. 'FALSIFY-A-234' (upper case, three-digit number)"),
    ("FALSify_a_7", NNN, "e.g. 'FALSIFY-A-007' (upper case, three-digit number)"),
    ("INV-x-12", NNN, "e.g. 'INV-X-012' (upper case, three-digit number)"),
    ("FALSIFY-7", NNN, "add a prefix naming the contract, e.g. 'FALSIFY-APR-FORMAT-007'"),
    ("INV-1234", NNN, "add a prefix naming the contract, e.g. 'INV-APR-FORMAT-234'"),
    ("FALSIFY", NNN, "add a prefix naming the contract, e.g. 'FALSIFY-APR-FORMAT-IFY'"),  # odd, but the rule
    # near misses: no hint
    ("FALSIFY-A-B", NNN, None),  # the last part is no number
    ("FALSIFY-A-1", "a date", None),  # not an id rule
    ("INV_A_1", NNN, None),  # "INV_" is not an id start
    ("FAL-A-1", NNN, None),
    ("inv-a-1", NNN, None),
    (17, NNN, None),
])
def test_pattern_hint(value: Any, expected: str, hint: str | None) -> None:
    assert schema._pattern_hint(value, expected) == hint


# --- lengths, uniqueness, alternatives, anything else ---------------------------------------------


def test_an_empty_text_is_reported_as_empty_and_as_not_matching() -> None:
    assert findings(edit('    rule: "r"', '    rule: ""')) == [
        ("error", "empty", "`falsification_tests[0].rule` is empty", "c.yaml:15:11", "write something, or remove the key"),
        ("error", "bad-value", "`falsification_tests[0].rule` is '', which is not matched by the pattern '\\\\S'",
         "c.yaml:15:11", None)]


def test_an_empty_list_is_empty() -> None:
    text = BASE.replace("  changelog:\n    - {version: 1.0.0, date: \"2026-11-26\", changes: \"first\"}\n",
                        "  changelog: []\n")
    assert findings(text) == [("error", "empty", "`metadata.changelog` is empty", "c.yaml:7:14",
                               "write something, or remove the key")]


def test_a_repeated_dependency_is_a_duplicate_item() -> None:
    assert findings(edit("depends_on: []", "depends_on: [b-v1, b-v1]")) == [
        ("error", "duplicate-item", "`metadata.depends_on` lists the same item twice", "c.yaml:6:15",
         "remove the repeated item")]


@pytest.mark.parametrize(("written", "hint"), [("inv-a-1", "got 'inv-a-1'"), ("5", "got 5"),
                                               ("[INV-A-001, INV-A-001]", None), ("{a: 1}", None)])
def test_an_invariant_that_is_neither_an_id_nor_a_list(written: str, hint: str | None) -> None:
    assert findings(edit("    invariant: INV-A-001", f"    invariant: {written}")) == [
        ("error", "bad-value", "`falsification_tests[0].invariant` must be an invariant id (INV-<PREFIX>-NNN) or a "
         "non-empty list of them", "c.yaml:14:16", hint)]


def test_an_alternative_without_wording_uses_the_validator_message() -> None:
    (finding,) = translate({"properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}}, {"x": "s"})
    assert finding.code == "bad-value"
    assert finding.message == "`x` must be 's' is not valid under any of the given schemas"
    assert finding.hint == "got 's'"
    (finding,) = translate({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 3)
    assert (finding.code, finding.hint) == ("bad-value", "got 3")
    assert finding.message.startswith("`the document` must be 3 is valid under each of")


def test_a_mutant_with_both_kinds() -> None:
    mutants = "    mutants: [{name: m, target: a.b, replacement: c.d, artifact: x}]\n"
    assert findings(edit('    if_fails: "f"\n', '    if_fails: "f"\n' + mutants)) == [
        ("error", "bad-value", "`falsification_tests[0].mutants[0]` must be either `target` and `replacement` (a code "
         "mutant) or `artifact` (an artifact mutant), not both", "c.yaml:18:15", None)]


def test_any_other_error_keeps_the_validator_message_without_hint() -> None:
    doc = Document("d.yaml", "", data={"n": 5}, positions={("n",): (4, 7)})
    (error,) = jsonschema.Draft202012Validator({"properties": {"n": {"maximum": 3}}}).iter_errors(doc.data)
    assert schema._translate(error, doc, Severity.ERROR) == [
        Finding(Severity.ERROR, "schema", "`n`: 5 is greater than the maximum of 3", Location("d.yaml", 4, 7))]


def test_a_false_schema_is_reported_without_crashing() -> None:
    (finding,) = translate({"properties": {"n": False}}, {"n": 5})
    assert finding.code == "schema" and finding.message.endswith(": False schema does not allow 5")


# --- required keys --------------------------------------------------------------------------------


def test_each_missing_key_is_its_own_finding_with_its_hint() -> None:
    text = "metadata: {version: 2.1.0}\ninvariants: []\n"
    assert findings(text) == [
        ("error", "missing-key", "the contract is missing the required key `falsification_tests`", "c.yaml:1:1",
         "nothing can refute this contract: add falsifiers (`apr contracts new` shows the shape)"),
        ("error", "missing-key", "`metadata` is missing the required key `status`", "c.yaml:1:11",
         "add `status: PROPOSED` (or PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL, DISCHARGED)"),
        ("error", "missing-key", "`metadata` is missing the required key `description`", "c.yaml:1:11", None),
        ("error", "missing-key", "`metadata` is missing the required key `changelog`", "c.yaml:1:11",
         'add `changelog: [{version: "2.1.0", date: "YYYY-MM-DD", changes: "..."}]`'),
        ("error", "empty", "`invariants` is empty", "c.yaml:2:13", "write something, or remove the key")]


@pytest.mark.parametrize(("key", "hint"), [
    ("if_fails", 'say what a failure would mean (`if_fails: "the reader accepts a bad CRC"`)'),
    ("invariant", "name the invariant this falsifier attacks, e.g. `invariant: INV-…-001`"),
    ("rule", None), ("prediction", None),
])
def test_a_falsifier_missing_a_key_is_named_by_its_id(key: str, hint: str | None) -> None:
    line = next(line for line in BASE.splitlines(keepends=True) if line.startswith(f"    {key}:"))
    assert findings(edit(line, "")) == [
        ("error", "missing-key", f"{FALSIFIER} is missing the required key `{key}`", "c.yaml:13:5", hint)]


@pytest.mark.parametrize(("key", "instance", "hint"), [
    ("changelog", {"version": "3.2.1"}, 'add `changelog: [{version: "3.2.1", date: "YYYY-MM-DD", changes: "..."}]`'),
    ("changelog", {}, 'add `changelog: [{version: "1.0.0", date: "YYYY-MM-DD", changes: "..."}]`'),
    ("changelog", ["not", "a", "dict"], 'add `changelog: [{version: "1.0.0", date: "YYYY-MM-DD", changes: "..."}]`'),
    ("status", {}, "add `status: PROPOSED` (or PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL, DISCHARGED)"),
    ("statement", {}, None), ("id", {}, None),
])
def test_missing_hint(key: str, instance: Any, hint: str | None) -> None:
    assert schema._missing_hint(key, instance) == hint


def test_a_required_error_whose_message_names_no_key_reports_the_first_missing_one() -> None:
    doc = Document("d.yaml", "", data={"a": 1})
    error = jsonschema.ValidationError("custom wording", validator="required", validator_value=["a", "b", "c"],
                                       instance={"a": 1}, schema={})
    (finding,) = schema._translate(error, doc, Severity.ERROR)
    assert finding.message == "the contract is missing the required key `b`"
    error = jsonschema.ValidationError("'c' is a required property", validator="required",
                                       validator_value=["a", "b", "c"], instance={"a": 1}, schema={})
    (finding,) = schema._translate(error, doc, Severity.ERROR)
    assert finding.message == "the contract is missing the required key `c`"


@pytest.mark.parametrize(("path", "shown"), [
    ((), "the contract"),
    (("falsification_tests", 0), "FALSIFY-A-001 (`falsification_tests[0]`)"),
    (("invariants", 0), "INV-A-001 (`invariants[0]`)"),
    (("metadata",), "`metadata`"),  # a dict without id
    (("metadata", "changelog", 0), "`metadata.changelog[0]`"),
    (("falsification_tests", 3), "`falsification_tests[3]`"),  # IndexError
    (("nope", 0), "`nope[0]`"),  # KeyError
    (("metadata", "version", "x"), "`metadata.version.x`"),  # TypeError: a string indexed by a key
])
def test_describe(path: tuple[Any, ...], shown: str) -> None:
    doc = load_bytes(BASE.encode(), "c.yaml")
    assert schema._describe(path, doc) == shown


def test_describe_needs_a_string_id() -> None:
    doc = Document("d.yaml", "", data={"x": {"id": 7}})
    assert schema._describe(("x",), doc) == "`x`"


# --- unknown keys ---------------------------------------------------------------------------------


def test_a_misspelled_key_gets_the_nearest_known_key_and_its_own_place() -> None:
    text = edit('    if_fails: "f"\n', '    iffails: "f"\n')
    assert findings(text) == [
        ("error", "missing-key", f"{FALSIFIER} is missing the required key `if_fails`", "c.yaml:13:5",
         'say what a failure would mean (`if_fails: "the reader accepts a bad CRC"`)'),
        ("error", "unknown-key", f"unknown key `iffails` in {FALSIFIER}", "c.yaml:17:5", "did you mean `if_fails`?")]


def test_unknown_keys_are_warnings_when_asked_and_listed_in_written_order() -> None:
    text = edit('    if_fails: "f"\n', '    if_fails: "f"\n    zzz: 1\n    levle: artifact\n')
    assert findings(text, unknown_keys=Severity.WARNING) == [
        ("warning", "unknown-key", f"unknown key `zzz` in {FALSIFIER}", "c.yaml:18:5",
         "known keys here: id, invariant, rule, prediction, if_fails, level, requires, pending, mutants"),
        ("warning", "unknown-key", f"unknown key `levle` in {FALSIFIER}", "c.yaml:19:5", "did you mean `level`?")]


@pytest.mark.parametrize(("where", "key", "hint"), [
    ("falsifier", "test", 'a `test:` string binds nothing; put @pytest.mark.falsifies("FALSIFY-A-001") on the test '
                          "instead"),
    ("falsifier", "falsification_test", 'a prose test binds nothing; put @pytest.mark.falsifies("FALSIFY-A-001") on '
                                        "the test instead"),
    ("falsifier", "test_harness", 'a prose test binds nothing; put @pytest.mark.falsifies("FALSIFY-A-001") on the '
                                  "test instead"),
    ("falsifier", "description", "invariants use `statement:` (falsifiers use `rule:`/`prediction:`)"),
    ("top", "kani_harnesses", "formal back ends are not part of this harness; delete the block"),
])
def test_keys_from_pv_get_their_own_hint(where: str, key: str, hint: str) -> None:
    if where == "top":
        text, owner, place = BASE + f"{key}: []\n", "the contract", "c.yaml:18:1"
    else:
        text, owner, place = edit('    if_fails: "f"\n', f'    if_fails: "f"\n    {key}: x\n'), FALSIFIER, "c.yaml:18:5"
    assert findings(text) == [("error", "unknown-key", f"unknown key `{key}` in {owner}", place, hint)]


def test_a_pv_key_hint_without_an_id_names_a_placeholder() -> None:
    sch = {"type": "object", "properties": {"rule": {}, "id": {}}, "additionalProperties": False}
    (finding,) = translate(sch, {"test": "x"})
    assert finding.hint == 'a `test:` string binds nothing; put @pytest.mark.falsifies("FALSIFY-…") on the test instead'
    (finding,) = translate(sch, {"test": "x", "id": "FALSIFY-B-002"})
    assert finding.hint == 'a `test:` string binds nothing; put @pytest.mark.falsifies("FALSIFY-B-002") on the test ' \
                           "instead"


def test_a_closed_object_without_properties_lists_no_known_key() -> None:
    (finding,) = translate({"type": "object", "additionalProperties": False}, {"zzz": 1})
    assert (finding.code, finding.message, finding.hint) == ("unknown-key", "unknown key `zzz` in the contract",
                                                             "known keys here: ")


# --- the document as a whole: order and the --compat options --------------------------------------


def test_findings_are_sorted_by_line_then_column() -> None:
    text = edit("status: FUNCTIONAL", "status: X").replace("    - {version: 1.0.0, date: \"2026-11-26\"",
                                                             "    - {version: 1.0.0, date: \"1\"")
    text = text.replace("  - id: FALSIFY-A-001", "  - id: F")
    places = [f[3] for f in findings(text)]
    assert places == ["c.yaml:4:11", "c.yaml:8:30", "c.yaml:13:9"]
    # jsonschema reports `falsification_tests` before `metadata` for a document in that key order
    moved = "falsification_tests:" + text.split("falsification_tests:")[1] + text.split("falsification_tests:")[0]
    assert [f[3] for f in findings(moved)] == sorted((f[3] for f in findings(moved)),
                                                    key=lambda p: tuple(int(n) for n in p.split(":")[1:]))


def test_sort_key_of_findings_is_line_then_column_numerically() -> None:
    text = "\n".join(["metadata:", "  version: 1.0.0", "  status: X", "  description: d",
                      "  changelog: [{version: 1.0.0, date: '2026-01-01', changes: c}]",
                      "invariants: [{id: INV-A-001, statement: s}]",
                      "falsification_tests: [{requires: [A], id: FALSIFY-A-001, invariant: INV-A-001, rule: r,"
                      " prediction: p, if_fails: f, level: x}]"]) + "\n"
    last = text.splitlines()[6]
    requires, level = last.index("[A]") + 2, last.index("level: x") + 8  # 1-based columns of `A` and `x`
    # jsonschema reports `level` before `requires` (the schema's order); the findings follow the text
    assert [f[3] for f in findings(text)] == ["c.yaml:3:11", f"c.yaml:7:{requires}", f"c.yaml:7:{level}"]
    assert requires < 100 < level  # compared as numbers (as text, '1xx' < '2x')


@pytest.mark.parametrize(("optional", "kept"), [
    (frozenset(), ["status", "description", "changelog"]),
    (frozenset({"status"}), ["description", "changelog"]),
    (frozenset({"status", "changelog"}), ["description"]),
    (frozenset({"descr"}), ["status", "description", "changelog"]),  # a key's tail is not the key
])
def test_optional_keys_are_not_reported_missing(optional: frozenset[str], kept: list[str]) -> None:
    text = BASE.replace("  status: FUNCTIONAL\n", "").replace('  description: "contract A"\n', "")
    text = text.replace("  changelog:\n    - {version: 1.0.0, date: \"2026-11-26\", changes: \"first\"}\n", "")
    got = findings(text, optional=optional)
    assert [f[2].rsplit("`", 2)[1] for f in got] == kept
    assert {f[1] for f in got} == {"missing-key"}


def test_is_optional_only_drops_missing_keys() -> None:
    missing = Finding(Severity.ERROR, "missing-key", "x is missing the required key `status`")
    other = Finding(Severity.ERROR, "bad-value", "x is missing the required key `status`")
    assert schema._is_optional(missing, frozenset({"status"})) is True
    assert schema._is_optional(missing, frozenset({"statu"})) is False
    assert schema._is_optional(missing, frozenset()) is False
    assert schema._is_optional(other, frozenset({"status"})) is False


# --- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "text"), [
    ((), "the document"), (("a",), "a"), (("a", "b"), "a.b"), (("a", 0), "a[0]"),
    (("falsification_tests", 2, "level"), "falsification_tests[2].level"), ((0,), "[0]"), ((0, "a", 1), "[0].a[1]"),
])
def test_field_name(path: tuple[Any, ...], text: str) -> None:
    assert field_name(path) == text


def test_did_you_mean_prefers_a_case_insensitive_match() -> None:
    assert did_you_mean("IF_FAILS", ["rule", "if_fails"]) == "if_fails"
    assert difflib.get_close_matches("IF_FAILS", ["rule", "if_fails"], cutoff=0.6) == []  # only folding finds it
    assert did_you_mean("functional", {"FUNCTIONAL": 1, "LIVE": 2}) == "FUNCTIONAL"  # any iterable of choices
    assert did_you_mean("7", [7, 8]) == "7"
    assert did_you_mean("x", []) is None


@pytest.mark.parametrize(("word", "choice", "close"), [
    ("abcd", "abcxyz", True),  # ratio 2*3/10 = 0.6: at the cutoff
    ("abc", "abd", True),  # 0.67
    ("abcdefg", "abcdefgxxxxxxxxxx", False),  # 2*7/24 = 0.58: just below
    ("abcde", "abxyz", False),  # 0.4
])
def test_did_you_mean_threshold(word: str, choice: str, close: bool) -> None:
    ratio = difflib.SequenceMatcher(None, word, choice).ratio()
    assert (ratio >= 0.6) is close
    assert did_you_mean(word, ["zzzzzzzzzzzzzz", choice]) == (choice if close else None)


def test_the_best_of_several_close_choices_wins() -> None:
    assert did_you_mean("if_fail", ["if_fall", "if_fails", "rule"]) == "if_fails"


def test_the_packaged_schema_is_what_contract_schema_parses() -> None:
    assert json.loads(schema.schema_text()) == schema.contract_schema()
    assert schema.contract_schema()["$id"] == "urn:apr-contracts:schema:contract:1"
    assert len(schema.schema_fingerprint()) == 16
