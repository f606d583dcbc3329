"""The contract loader's limits, findings and positions, exactly (issue 23).

A contract that should be refused must not load: each bound (bytes, nesting depth, expanded node
count) is tested at, and one past, its limit; each refusal by its code, message, place and remedy;
and what does load, by its data and the line:col of every key and value.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from falsifiers import loader
from falsifiers.loader import Document, Limits, load_bytes, load_file, salvage_ids
from falsifiers.records import Finding, Location, Severity


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail a test whose loop never ends (a mutant of a loop bound) instead of hanging."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError("no answer in 10 s: a loop that does not end")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _codes(doc: Document) -> list[str]:
    return [f.code for f in doc.findings]


def _only(doc: Document) -> tuple[str, str, str, str | None]:
    (finding,) = doc.findings
    assert finding.severity is Severity.ERROR
    return finding.code, finding.message, str(finding.location), finding.hint


# --- limits ----------------------------------------------------------------------------------------


def test_the_default_limits() -> None:
    assert Limits() == Limits(max_bytes=2 * 1024 * 1024, max_nodes=200_000, max_depth=64)


def test_a_file_at_the_byte_limit_loads_and_one_byte_more_is_refused_unread(tmp_path: Path) -> None:
    limits = Limits(max_bytes=12)
    exact = tmp_path / "exact.yaml"
    exact.write_bytes(b"a: 12345678\n")  # 12 bytes
    doc = load_file(exact, limits=limits)
    assert doc.findings == [] and doc.data == {"a": 12345678}
    assert doc.sha256 == hashlib.sha256(b"a: 12345678\n").hexdigest() and doc.path == os.fspath(exact)
    over = tmp_path / "over.yaml"
    over.write_bytes(b"a: 123456789\n")  # 13 bytes
    doc = load_file(over, limits=limits, shown="shown.yaml")
    assert _only(doc) == ("file-too-large", "the file is 13 bytes; a contract may be at most 12 bytes", "shown.yaml",
                          "split it into several contracts (depends_on links them), "
                          "or raise `max-bytes` under [tool.apr-contracts] in pyproject.toml")
    assert (doc.path, doc.sha256, doc.data) == ("shown.yaml", "", None)
    big = Limits(max_bytes=1_234_567)
    assert load_bytes(b"x" * 1_234_568, "b.yaml", limits=big).findings[0].message == (
        "the file is 1,234,568 bytes; a contract may be at most 1,234,567 bytes")
    assert load_bytes(b"x" * 1_234_567, "b.yaml", limits=big).findings == []


def test_bytes_past_the_limit_are_refused_in_memory_too() -> None:
    doc = load_bytes(b"a: 123456789\n", "m.yaml", limits=Limits(max_bytes=12))
    assert _codes(doc) == ["file-too-large"] and (doc.sha256, doc.data, doc.path) == ("", None, "m.yaml")
    assert load_bytes(b"a: 12345678\n", "m.yaml", limits=Limits(max_bytes=12)).data == {"a": 12345678}


def test_a_file_that_grows_between_stat_and_read_is_refused_at_its_read_size(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "growing.yaml"
    path.write_bytes(b"a: " + b"1" * 40 + b"\n")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: os.stat_result((0o100644, 0, 0, 1, 0, 0, 5, 0, 0, 0))
                        if os.fspath(p) == os.fspath(path) else real_stat(p, *a, **k))
    doc = load_file(path, limits=Limits(max_bytes=10))
    # only max_bytes + 1 bytes were read: that is the size it reports
    assert _only(doc)[:2] == ("file-too-large", "the file is 11 bytes; a contract may be at most 10 bytes")


def test_an_unreadable_file_is_a_finding_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load_file(tmp_path / "missing.yaml")
    assert _only(doc) == ("unreadable", "cannot read the file: No such file or directory",
                          os.fspath(tmp_path / "missing.yaml"), "check the path and its permissions")
    assert (doc.sha256, doc.data) == ("", None)
    doc = load_file(tmp_path / "missing.yaml", shown="contracts/x.yaml")
    assert str(doc.findings[0].location) == "contracts/x.yaml" and doc.path == "contracts/x.yaml"
    present = tmp_path / "present.yaml"
    present.write_bytes(b"a: 1\n")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError()  # no strerror: the exception's name is the reason

    monkeypatch.setattr("builtins.open", refuse)
    assert load_file(present).findings[0].message == "cannot read the file: PermissionError"


def test_nesting_at_the_depth_limit_loads_and_one_level_more_is_refused(tmp_path: Path) -> None:
    limits = Limits(max_depth=3)
    assert load_bytes(b"[[[1]]]", "d.yaml", limits=limits).data == [[[1]]]  # the scalar is at depth 3
    assert load_bytes(b"{a: {b: {c: 1}}}", "d.yaml", limits=limits).data == {"a": {"b": {"c": 1}}}
    assert load_bytes(b"{a: 1}", "d.yaml", limits=Limits(max_depth=1)).data == {"a": 1}  # key and value at 1
    assert _codes(load_bytes(b"{a: {b: {c: {d: 1}}}}", "d.yaml", limits=limits)) == ["too-deep"]
    # a key is as deep as its value: a nested complex key is refused as too deep before anything else
    assert _codes(load_bytes(b"? [[[1]]]\n: 1\n", "d.yaml", limits=limits)) == ["too-deep"]
    path = tmp_path / "d.yaml"
    path.write_bytes(b"[[[[1]]]]")
    assert _codes(load_file(path, limits=limits)) == ["too-deep"]  # load_file passes its limits on
    assert load_file(path).data == [[[[1]]]]
    doc = load_bytes(b"[[[[1]]]]", "d.yaml", limits=limits)
    assert _only(doc) == ("too-deep", "nesting deeper than 3 levels", "d.yaml:1:5", "flatten the structure")
    assert doc.data is None


def test_a_document_at_the_node_limit_loads_and_one_node_more_is_refused() -> None:
    limits = Limits(max_nodes=4)
    assert load_bytes(b"[1, 2, 3]", "n.yaml", limits=limits).data == [1, 2, 3]  # the list and 3 items
    doc = load_bytes(b"[1, 2, 3, 4]", "n.yaml", limits=limits)
    assert _only(doc) == ("alias-bomb", "aliases expand the document to more than 4 values (a 'billion laughs' "
                          "file); it was not expanded", "n.yaml:1:1",
                          "write values out instead of nesting aliases (*name) of aliases")
    assert load_bytes(b"{a: 1, b: 2}", "n.yaml", limits=Limits(max_nodes=5)).data == {"a": 1, "b": 2}
    # the limit reached exactly after the first pair: the second still counts
    assert _codes(load_bytes(b"{a: 1, b: 2}", "n.yaml", limits=Limits(max_nodes=3))) == ["alias-bomb"]
    assert _codes(load_bytes(b"[1, 2, 3, 4]", "n.yaml", limits=Limits(max_nodes=3))) == ["alias-bomb"]
    # a complex key counts all its values: map 1 + key [a, b, c] 4 + value 1 = 6
    assert _codes(load_bytes(b"? [a, b, c]\n: 1\n", "n.yaml", limits=Limits(max_nodes=5))) == ["alias-bomb"]
    assert _codes(load_bytes(b"? [a, b, c]\n: 1\n", "n.yaml", limits=Limits(max_nodes=6))) == ["complex-key"]
    assert _codes(load_bytes(b"{a: 1, b: 2}", "n.yaml", limits=Limits(max_nodes=4))) == ["alias-bomb"]


def test_aliases_count_once_per_use_and_a_shared_node_is_counted_without_walking_it_again() -> None:
    source = b"a: &x [1, 2]\nb: *x\nc: *x\n"  # map 1 + 3 keys + 3 x (list 1 + 2 items) = 13
    assert load_bytes(source, "a.yaml", limits=Limits(max_nodes=13)).data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert _codes(load_bytes(source, "a.yaml", limits=Limits(max_nodes=12))) == ["alias-bomb"]
    assert loader._expanded_size(loader._compose(source.decode(), Document("a", "")), Limits(), Document("a", "")) == 13


def test_a_self_referencing_alias_is_refused_where_it_starts() -> None:
    assert _only(load_bytes(b"a: 1\nb: &x\n  - *x\n", "r.yaml")) == (
        "recursive-alias", "an alias refers to the collection that contains it", "r.yaml:2:4",
        "remove the self-referencing alias")


# --- text and syntax ---------------------------------------------------------------------------------


def test_the_sha256_is_of_the_bytes_and_a_utf8_bom_is_dropped() -> None:
    raw = b"\xef\xbb\xbfa: 1\n"
    doc = load_bytes(raw, "bom.yaml")
    assert doc.data == {"a": 1} and doc.text == "a: 1\n" and doc.sha256 == hashlib.sha256(raw).hexdigest()
    assert doc.findings == [] and not doc.has_errors


def test_bytes_that_are_not_utf8_are_refused_at_their_line_and_column() -> None:
    doc = load_bytes(b"a: 1\nbb: \xff\n", "u.yaml")
    assert _only(doc) == ("not-utf8", "byte 0xff is not valid UTF-8", "u.yaml:2:5", "save the file as UTF-8")
    assert doc.text is None and doc.data is None and doc.sha256 == hashlib.sha256(b"a: 1\nbb: \xff\n").hexdigest()
    assert str(load_bytes(b"\xc3(", "u.yaml").findings[0].location) == "u.yaml:1:1"
    assert str(load_bytes(b"a: 1\nb: 2\nc: \xff", "u.yaml").findings[0].location) == "u.yaml:3:4"  # the last line
    assert str(load_bytes(b"\nc: \xff", "u.yaml").findings[0].location) == "u.yaml:2:4"  # a newline at offset 0
    assert load_bytes(b"\xc3(", "u.yaml").findings[0].message == "byte 0xc3 is not valid UTF-8"


@pytest.mark.parametrize("raw", [b"", b"# only a comment\n", b"\n\n"])
def test_a_file_without_a_document_is_refused(raw: bytes) -> None:
    doc = load_bytes(raw, "e.yaml")
    assert _only(doc) == ("empty", "the file holds no YAML document", "e.yaml:1:1",
                          "start from `apr contracts new NAME`")
    assert doc.text == raw.decode()


@pytest.mark.parametrize(("raw", "message", "where", "hint"), [
    (b"a: b: c\n", "YAML syntax: mapping values are not allowed in this context", "1:5",
     "fix the YAML at that position; `yamllint` shows more detail"),
    (b"a: [1, 2\n", "YAML syntax: did not find expected ',' or ']' (while parsing a flow sequence)", "2:1",
     "fix the YAML at that position; `yamllint` shows more detail"),
    (b"a:\n\tb: 1\n", "YAML syntax: a tab character where YAML allows only spaces", "2:1",
     "indent with spaces, never tabs (YAML forbids tabs for indentation)"),
    (b"a: 1\n---\nb: 2\n", "the file holds more than one YAML document (`---`)", "2:1",
     "one contract per file: move the second document into its own file"),
    (b"a: &x 1\nb: &x 2\n", "YAML syntax: second occurrence (found duplicate anchor; first occurrence)", "2:4",
     "give each anchor (&name) a unique name"),
    (b"a: *nope\n", "YAML syntax: found undefined alias", "1:4",
     "define the anchor (&name) before using the alias (*name)"),
    (b"a: \x07\n", "YAML cannot read character U+0007: control characters are not allowed", "1:4",
     "remove the character or write it as an escape in a quoted string"),
    (b"a: 1\nb: \x01c\n", "YAML cannot read character U+0001: control characters are not allowed", "2:4",
     "remove the character or write it as an escape in a quoted string"),
    (b"a: 1\nb: 2\nc: \x01\n", "YAML cannot read character U+0001: control characters are not allowed", "3:4",
     "remove the character or write it as an escape in a quoted string"),
    (b"\nc: \x01\n", "YAML cannot read character U+0001: control characters are not allowed", "2:4",
     "remove the character or write it as an escape in a quoted string"),
])
def test_a_syntax_error_is_one_finding_at_its_place_with_its_remedy(raw: bytes, message: str, where: str,
                                                                     hint: str) -> None:
    doc = load_bytes(raw, "s.yaml")
    assert _only(doc) == ("yaml-syntax", message, f"s.yaml:{where}", hint)
    assert doc.data is None


class _Mark:
    def __init__(self, line: int, column: int, index: int) -> None:
        self.line, self.column, self.index = line, column, index


class _Err:
    def __init__(self, problem: str | None, context: str | None, problem_mark: _Mark | None,
                 context_mark: _Mark | None = None) -> None:
        self.problem, self.context, self.problem_mark, self.context_mark = problem, context, problem_mark, context_mark


@pytest.mark.parametrize(("error", "text", "message", "where", "hint"), [
    (_Err(None, None, None), "a", "YAML syntax: invalid YAML", "p.yaml", "fix the YAML at that position; "
     "`yamllint` shows more detail"),
    (_Err("  bad thing ", " while x ", None, _Mark(2, 3, 0)), "a", "YAML syntax: bad thing (while x)", "p.yaml:3:4",
     "fix the YAML at that position; `yamllint` shows more detail"),
    (_Err("found character '\\t' that cannot start any token", None, _Mark(0, 0, 99)), "a",
     "YAML syntax: a tab character where YAML allows only spaces", "p.yaml:1:1",
     "indent with spaces, never tabs (YAML forbids tabs for indentation)"),
    (_Err("p", None, _Mark(0, 1, 1)), "a\tb", "YAML syntax: a tab character where YAML allows only spaces",
     "p.yaml:1:2", "indent with spaces, never tabs (YAML forbids tabs for indentation)"),
    (_Err("p", None, _Mark(0, 2, 2)), "a\tb", "YAML syntax: p", "p.yaml:1:3",
     "fix the YAML at that position; `yamllint` shows more detail"),
    (_Err("p", None, _Mark(0, 0, 0)), "\tb", "YAML syntax: a tab character where YAML allows only spaces",
     "p.yaml:1:1", "indent with spaces, never tabs (YAML forbids tabs for indentation)"),  # a tab at the start
    (_Err("p", None, _Mark(0, 0, -1)), "\t", "YAML syntax: p", "p.yaml:1:1",
     "fix the YAML at that position; `yamllint` shows more detail"),  # no tab at a negative index
    (_Err("p", None, _Mark(0, 0, 1)), "\t", "YAML syntax: p", "p.yaml:1:1",
     "fix the YAML at that position; `yamllint` shows more detail"),  # past the end: no tab there
    (_Err("but found another document", None, _Mark(0, 0, 0)), "a",
     "the file holds more than one YAML document (`---`)", "p.yaml:1:1",
     "one contract per file: move the second document into its own file"),
    (_Err("expected a single document in the stream", "but found x", _Mark(0, 0, 0)), "a",
     "the file holds more than one YAML document (`---`)", "p.yaml:1:1",
     "one contract per file: move the second document into its own file"),
    (_Err("x", "found duplicate anchor 'a'", _Mark(0, 0, 0)), "a", "YAML syntax: x (found duplicate anchor 'a')",
     "p.yaml:1:1", "give each anchor (&name) a unique name"),
    (_Err("found undefined alias 'a'", None, _Mark(0, 0, 0)), "a", "YAML syntax: found undefined alias 'a'",
     "p.yaml:1:1", "define the anchor (&name) before using the alias (*name)"),
])
def test_each_syntax_error_gets_its_own_message_and_remedy(error: _Err, text: str, message: str, where: str,
                                                           hint: str) -> None:
    finding = loader._syntax_finding(error, "p.yaml", text)  # type: ignore[arg-type]
    assert (finding.severity, finding.code, finding.message, str(finding.location), finding.hint) == (
        Severity.ERROR, "yaml-syntax", message, where, hint)


@pytest.mark.parametrize(("facts", "shown"), [
    ({"character": 9}, "U+0009"),        # libyaml gives the code point
    ({"character": "\x0b"}, "U+000B"),   # PyYAML's pure reader gives the character
    ({}, "U+0000"),                      # neither
    ({"character": None}, "U+0000"),
])
def test_a_reader_error_without_a_position_is_still_a_finding(monkeypatch: pytest.MonkeyPatch,
                                                               facts: dict[str, object], shown: str) -> None:
    import yaml

    class _Loader:
        def __init__(self, text: str) -> None:
            pass

        def get_single_node(self) -> None:
            error = yaml.YAMLError()
            for name, value in facts.items():
                setattr(error, name, value)
            raise error

        def dispose(self) -> None:
            disposed.append(True)

    disposed: list[bool] = []
    monkeypatch.setattr(loader, "_BaseLoader", _Loader)
    doc = load_bytes(b"a: 1\n", "r.yaml")
    assert _only(doc) == ("yaml-syntax", f"YAML cannot read character {shown}: unreadable character", "r.yaml:1:1",
                          "remove the character or write it as an escape in a quoted string")
    assert disposed == [True]


# --- what loads: values, tags, keys, positions ---------------------------------------------------


def test_scalars_keep_the_core_json_types_and_timestamps_stay_text() -> None:
    doc = load_bytes(b"s: x\nn: null\nt: true\nf: no\ni: 0x1F\nr: 1.5\nd: 2026-11-26\nq: '12'\n"
                     b"e: !!str 12\nz: !!null ''\n", "v.yaml")
    assert doc.findings == []
    assert doc.data == {"s": "x", "n": None, "t": True, "f": False, "i": 31, "r": 1.5, "d": "2026-11-26",
                        "q": "12", "e": "12", "z": None}
    assert [type(v) for v in doc.data.values()] == [str, type(None), bool, bool, int, float, str, str, str,
                                                    type(None)]


@pytest.mark.parametrize(("raw", "value"), [
    (b"a: !!int abc\n", "abc"), (b"a: !!float x\n", "x"), (b"a: !!bool maybe\n", "maybe"),
    (b"a: !!int ''\n", ""), (b"a: !!float ''\n", ""), (b"a: !!bool ''\n", ""), (b"a: !!timestamp 2026-13-45\n", "2026-13-45"),
])
def test_a_tagged_value_that_does_not_parse_as_its_tag_is_kept_as_written_never_an_exception(raw: bytes,
                                                                                            value: str) -> None:
    doc = load_bytes(raw, "v.yaml")
    assert doc.findings == [] and doc.data == {"a": value}


@pytest.mark.parametrize(("raw", "tag", "data", "where"), [
    (b"a: !custom x\n", "'!custom'", {"a": "x"}, "1:4"),
    (b"a: !!python/object/apply:os.system [ls]\n", "'!!python/object/apply:os.system'", {"a": ["ls"]}, "1:4"),
    (b"!custom [1]\n", "'!custom'", [1], "1:1"),
    (b"!!python/tuple [1]\n", "'!!python/tuple'", [1], "1:1"),
    (b"!custom {a: 1}\n", "'!custom'", {"a": 1}, "1:1"),
    (b"a: !!binary aGk=\n", "'!!binary'", {"a": "aGk="}, "1:4"),
])
def test_any_tag_but_the_core_ones_is_refused_and_the_value_kept_as_written(raw: bytes, tag: str, data: object,
                                                                             where: str) -> None:
    doc = load_bytes(raw, "g.yaml")
    assert _only(doc) == ("yaml-tag", f"the tag {tag} is not allowed; contracts hold only strings, numbers, "
                          "booleans, null, lists and mappings", f"g.yaml:{where}",
                          "remove the tag (`!name` / `!!type`) and write the value plainly")
    assert doc.data == data


def test_explicit_core_tags_for_lists_and_mappings_are_fine() -> None:
    assert load_bytes(b"!!seq [1]\n", "g.yaml").findings == []
    assert load_bytes(b"!!map {a: !!seq [1]}\n", "g.yaml").data == {"a": [1]}


def test_keys_that_are_not_plain_strings_are_refused_and_skipped() -> None:
    doc = load_bytes(b"? [a]\n: 1\n<<: {b: 1}\nz: 2\n5: five\n", "k.yaml")
    assert [(f.code, f.message, str(f.location), f.hint) for f in doc.findings] == [
        ("complex-key", "a mapping key must be a plain string", "k.yaml:1:3", "use a plain word as the key"),
        ("merge-key", "merge keys (`<<: *anchor`) are not allowed in contracts", "k.yaml:3:1",
         "write the keys out; a contract should read top to bottom")]
    assert doc.data == {"z": 2, "5": "five"}  # a scalar key is its text
    assert all(f.severity is Severity.ERROR for f in doc.findings)


def test_a_duplicate_key_names_the_first_and_the_first_value_wins() -> None:
    doc = load_bytes(b"top:\n  a: 1\n  b: 2\n  a: 3\n  c: 4\n", "d.yaml")
    (finding,) = doc.findings
    assert (finding.severity, finding.code, str(finding.location)) == (Severity.ERROR, "duplicate-key", "d.yaml:4:3")
    assert finding.message == ("duplicate key 'a': it is already set at line 2; plain YAML loaders would silently "
                               "keep only the last one")
    assert finding.hint == "remove one of the two 'a' entries (or merge their content)"
    assert finding.related == (Location("d.yaml", 2, 3),)
    assert doc.data == {"top": {"a": 1, "b": 2, "c": 4}}  # the keys after a duplicate are still read
    assert doc.key_positions[("top", "a")] == (2, 3)


def test_every_value_and_key_has_its_one_based_position() -> None:
    doc = load_bytes(b"name: x\nlist:\n  - a\n  - {k: v}\n", "p.yaml")
    assert doc.positions == {(): (1, 1), ("name",): (1, 7), ("list",): (3, 3), ("list", 0): (3, 5),
                             ("list", 1): (4, 5), ("list", 1, "k"): (4, 9)}
    assert doc.key_positions == {("name",): (1, 1), ("list",): (2, 1), ("list", 1, "k"): (4, 6)}


def test_locate_finds_a_key_a_value_or_the_nearest_enclosing_value(deadline: None) -> None:
    doc = load_bytes(b"name: x\nlist:\n  - a\n", "p.yaml")
    assert doc.locate(("list",), key=True) == Location("p.yaml", 2, 1)
    assert doc.locate(("list",)) == Location("p.yaml", 3, 3)
    assert doc.locate(("list", 0)) == Location("p.yaml", 3, 5)
    assert doc.locate(("list", 7, "deep")) == Location("p.yaml", 3, 3)  # the nearest that exists
    assert doc.locate(("list", 0, "deep")) == Location("p.yaml", 3, 5)  # one level up, not two
    assert doc.locate(("name", "a", "b", "c")) == Location("p.yaml", 1, 7)
    assert doc.locate(("list", 0), key=True) == Location("p.yaml", 3, 5)  # a list item has no key: its value
    assert doc.locate(("missing",), key=True) == Location("p.yaml", 1, 1)
    assert Document("n.yaml", "").locate(("a", "b")) == Location("n.yaml", 1, 1)  # nothing loaded: the top


def test_has_errors_counts_errors_only() -> None:
    doc = Document("w.yaml", "")
    assert not doc.has_errors
    doc.findings.append(Finding(Severity.WARNING, "w", "m"))
    doc.findings.append(Finding(Severity.INFO, "i", "m"))
    assert not doc.has_errors
    doc.findings.append(Finding(Severity.ERROR, "e", "m"))
    assert doc.has_errors


# --- salvage_ids -----------------------------------------------------------------------------------


def test_ids_are_salvaged_from_broken_text_with_their_lines() -> None:
    text = ("falsification_tests:\n"
            "  - id: FALSIFY-HARNESS-001\n"
            "    rule: x\n"
            "  - id: 'FALSIFY-A-002.'\n"
            "  -   id :\"FALSIFY-B_3-004-\"\n"
            "  - uid: FALSIFY-NOT-001\n"
            "  - id: FALSIFY--bad\n"
            "  - id: INV-A-001\n"
            "  - id: FALSIFY-A-BOX\n")
    assert salvage_ids(text) == [("FALSIFY-HARNESS-001", 2), ("FALSIFY-A-002", 4), ("FALSIFY-B_3-004", 5),
                                 ("FALSIFY-A-BOX", 9)]
    assert salvage_ids(text, prefix="INV") == [("INV-A-001", 8)]
    assert salvage_ids(None) == [] and salvage_ids("") == []
