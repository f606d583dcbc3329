"""`apr.cli.output`: the JSON every ``--json`` command writes (non-finite numbers, JSON Pointers,
surrogates, numpy scalars, key order), the literal text printers, the ``--previous-report`` shape
check and the JSON-argument reader's errors (issue 23: mutation score of apr/cli/output.py).

Expected documents are written out in full (RFC 6901 pointers, RFC 8259 JSON), not read back from
the functions under test.
"""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest

from apr.cli import output
from apr.cli.output import (
    emit_json,
    escape,
    json_text,
    literal,
    previous_qa_report_problem,
    protect_streams,
    read_json_argument,
    render_error,
)
from apr.errors import AprError, AprFileNotFoundError, AprIOError, UsageError

# --- json_text ------------------------------------------------------------------------------------


def test_finite_documents_are_plain_indented_json_in_key_order() -> None:
    document = {"b": 1, "a": [1.5, "x", None, True], "c": {"z": {}, "y": []}}
    assert json_text(document) == json.dumps(document, indent=2, ensure_ascii=False)
    assert "non_finite" not in json.loads(json_text(document))


def test_non_finite_numbers_become_null_with_their_pointer() -> None:
    document = {"gates": [{"name": "t", "value": float("nan")}, {"value": float("inf")}],
                "a/b": {"c~d": float("-inf")}, "ok": 1.0}
    assert json.loads(json_text(document)) == {
        "gates": [{"name": "t", "value": None}, {"value": None}],
        "a/b": {"c~d": None},
        "ok": 1.0,
        "non_finite": {"/gates/0/value": "NaN", "/gates/1/value": "Infinity", "/a~1b/c~0d": "-Infinity"},
    }


def test_a_non_finite_top_level_value_or_list_item_has_no_place_for_the_map() -> None:
    assert json_text(float("nan")) == "null"
    assert json.loads(json_text([1.0, float("inf")])) == [1.0, None]


def test_the_input_is_not_changed() -> None:
    document = {"x": [float("nan")]}
    json_text(document)
    assert math.isnan(document["x"][0]) and set(document) == {"x"}


def test_tuples_numpy_scalars_and_odd_keys() -> None:
    document = {"t": (1, 2), "f32": np.float32(0.5), "i64": np.int64(7), "nan32": np.float32("nan"),
                1: "int key", None: "none key", ("a", "b"): "tuple key"}
    assert json.loads(json_text(document)) == {
        "t": [1, 2], "f32": 0.5, "i64": 7, "nan32": None, "1": "int key", "null": "none key",
        "('a', 'b')": "tuple key", "non_finite": {"/nan32": "NaN"},
    }


def test_a_float_subclass_is_named_by_its_float_value() -> None:
    class Reading(float):
        def __repr__(self) -> str:
            return f"Reading({float(self)!r})"

    assert json.loads(json_text({"x": Reading("nan"), "y": Reading("-inf")}))["non_finite"] == {
        "/x": "NaN", "/y": "-Infinity"}


def test_a_numpy_array_is_not_taken_for_a_scalar() -> None:
    assert json.loads(json_text({"a": np.arange(2)})) == {"a": "[0 1]"}  # default=str, not .item()


def test_unknown_objects_are_written_as_their_str() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    assert json.loads(json_text({"x": Thing()})) == {"x": "a thing"}


def test_lone_surrogates_are_written_as_escapes(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    text = json_text({"k\ud800": "v\udfff", "é": "ü"})
    assert text == '{\n  "k\\ud800": "v\\udfff",\n  "é": "ü"\n}'
    assert json.loads(text) == {"k\ud800": "v\udfff", "é": "ü"}


@pytest.mark.parametrize(("encoding", "ascii_only"), [("utf-8", False), ("UTF-8", False), ("utf8", False),
                                                     ("utf_8", False), ("ascii", True), ("latin-1", True)])
def test_non_ascii_is_escaped_unless_stdout_is_utf8(monkeypatch, encoding, ascii_only) -> None:
    class Stream:
        pass

    stream = Stream()
    stream.encoding = encoding  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "stdout", stream)
    assert json_text({"é": 1}) == ('{\n  "\\u00e9": 1\n}' if ascii_only else '{\n  "é": 1\n}')


def test_a_stdout_without_encoding_is_taken_as_utf8(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", object())
    assert json_text({"é": 1}) == '{\n  "é": 1\n}'


def test_deep_nesting_is_written_and_the_recursion_limit_restored() -> None:
    limit = sys.getrecursionlimit()
    document: object = float("nan")
    depth = limit + 500
    for _ in range(depth):
        document = [document]
    text = json_text(document)
    assert text.count("[") == depth and text.count("null") == 1
    assert sys.getrecursionlimit() == limit


def test_nesting_near_the_limit_is_written() -> None:
    limit = sys.getrecursionlimit()
    document: object = 1
    depth = limit - 5  # within 200 of the limit: the dump (a frame per level) needs the limit raised
    for _ in range(depth):
        document = {"k": document}
    assert json_text(document).count("{") == depth
    assert sys.getrecursionlimit() == limit


def test_finite_copy_reports_the_depth() -> None:
    assert output._finite_copy(1)[2] == 0
    assert output._finite_copy([1])[2] == 1
    assert output._finite_copy({"a": [{"b": 1}]})[2] == 3


# --- emit_json and render_error -------------------------------------------------------------------


def test_emit_json_writes_one_document_and_a_newline(capsys) -> None:
    emit_json({"a": 1})
    assert capsys.readouterr().out == '{\n  "a": 1\n}\n'


def test_render_error_as_json(capsys) -> None:
    error = AprFileNotFoundError("model not found", path="m.apr", hint="check the path")
    render_error(error, as_json=True, command="inspect", input="m.apr")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {"schema": "apr.inspect/1", "command": "inspect", "input": "m.apr", "ok": False,
                                        "exit_code": 3, "error": error.to_dict()}
    render_error(error, as_json=True)  # no command known (the guard before parsing): the program's envelope
    document = json.loads(capsys.readouterr().out)
    assert (document["schema"], document["command"], document["input"]) == ("apr.apr/1", "apr", None)


def test_render_error_as_text_is_literal(capsys) -> None:
    render_error(AprError("bad [red]value[/red]\nsecond line\x1b[2J"), as_json=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == "error: bad [red]value[/red]"
    assert lines[1] == "second line\\x1b[2J"


def test_render_error_without_a_message_names_the_type(capsys) -> None:
    class Quiet(AprError):
        def __str__(self) -> str:
            return ""

    render_error(Quiet("x"), as_json=False)
    assert capsys.readouterr().err == "error: Quiet\n"


# --- literal text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain", "plain"), ("tab\tand\nnewline", "tab\tand\nnewline"), ("\x00", "\\x00"), ("\x08", "\\x08"),
    ("\x0b", "\\x0b"), ("\x1b[31m", "\\x1b[31m"), ("\x1f", "\\x1f"), ("\x7f", "\\x7f"), ("\x9f", "\\x9f"),
    ("\xa0", "\xa0"), ("\ud800", "\\ud800"), ("\udfff", "\\udfff"), (" ", " "), ("~", "~"),
])
def test_printable(raw, shown) -> None:
    assert output._printable(raw) == shown


def test_literal_keeps_markup_and_style() -> None:
    text = literal("[bold]x\x1b", style="red")
    assert text.plain == "[bold]x\\x1b" and str(text.style) == "red"
    assert str(literal(3).style) == "" and literal(3).plain == "3"


def test_escape_escapes_markup_and_controls() -> None:
    assert escape("model[v2].apr [/x]\x07") == "model\\[v2].apr \\[/x]\\x07"


def test_consoles_print_literally(capsys) -> None:
    output.err().print("[red]e[/red] :smile:")
    output.out().print("[b]o[/b] :smile:")
    captured = capsys.readouterr()
    assert captured.err == "[red]e[/red] :smile:\n" and captured.out == "[b]o[/b] :smile:\n"


def test_both_consoles_interpret_nothing_and_never_wrap() -> None:
    for console, on_stderr in ((output.err(), True), (output.out(), False)):
        assert console.stderr is on_stderr
        assert console.soft_wrap is True  # a long path stays on one line (scripts grep it)
        assert (console._markup, console._emoji, console._highlight) == (False, False, False)


def test_a_long_line_is_not_wrapped(capsys) -> None:
    line = "/very/long/path/" + "x" * 300 + ".apr"
    output.err().print(line)
    assert capsys.readouterr().err == line + "\n"


def test_piped_output_is_wide_unless_columns_is_set(monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert output.out().width == output.PIPE_WIDTH == 10_000
    monkeypatch.setenv("COLUMNS", "77")
    assert output.out().width == 77


def test_a_terminal_keeps_its_own_width(monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", Tty())
    assert output.out().width != output.PIPE_WIDTH


# --- protect_streams ------------------------------------------------------------------------------


def test_protect_streams_makes_both_streams_backslash_replace(monkeypatch) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    error = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", error)
    protect_streams()
    assert out.errors == "backslashreplace" and error.errors == "backslashreplace"


def test_protect_streams_skips_closed_and_plain_streams(monkeypatch) -> None:
    closed = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    closed.close()
    later = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", closed)
    monkeypatch.setattr(sys, "stderr", later)
    protect_streams()  # a closed stdout raises ValueError on reconfigure: the next stream is still done
    assert later.errors == "backslashreplace"
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # no reconfigure at all
    monkeypatch.setattr(sys, "stderr", later)
    protect_streams()


def test_protect_streams_survives_an_os_error(monkeypatch) -> None:
    class Broken(io.StringIO):
        def reconfigure(self, **_: object) -> None:
            raise OSError("detached")

    later = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", Broken())
    monkeypatch.setattr(sys, "stderr", later)
    protect_streams()
    assert later.errors == "backslashreplace"


# --- previous_qa_report_problem -------------------------------------------------------------------


@pytest.mark.parametrize(("document", "problem"), [
    ({"gates": [{"name": "throughput", "value": 1.5}, {"name": "x", "value": None}, {"value": 3}, {}]}, None),
    ({}, None),
    ([], "expected the JSON object `apr qa FILE --json` prints, got a list"),
    ("x", "expected the JSON object `apr qa FILE --json` prints, got a string"),
    (None, "expected the JSON object `apr qa FILE --json` prints, got null"),
    ({"gates": {}}, "'gates' must be a list, got an object"),
    ({"gates": 3}, "'gates' must be a list, got a number"),
    ({"gates": [{}, 1]}, "gates[1] must be an object, got a number"),
    ({"gates": [{"name": 3}]}, "gates[0].name must be a string, got a number"),
    ({"gates": [{"name": True}]}, "gates[0].name must be a string, got a boolean"),
    ({"gates": [{"name": "t", "value": True}]}, "gates[0].value must be a finite number or null, got a boolean True"),
    ({"gates": [{"value": "1"}]}, "gates[0].value must be a finite number or null, got a string '1'"),
    ({"gates": [{}, {"value": float("inf")}]}, "gates[1].value must be a finite number or null, got a number inf"),
    ({"gates": [{"value": float("nan")}]}, "gates[0].value must be a finite number or null, got a number nan"),
    ({"gates": [{"value": [1]}]}, "gates[0].value must be a finite number or null, got a list [1]"),
])
def test_previous_qa_report_problem(document, problem) -> None:
    assert previous_qa_report_problem(document) == problem


def test_a_long_value_problem_is_cut_at_200_characters() -> None:
    problem = previous_qa_report_problem({"gates": [{"value": "x" * 500}]})
    assert problem is not None and len(problem) == 200
    assert problem.startswith("gates[0].value must be a finite number or null, got a string 'xxx")


def test_json_type_of_other_python_types() -> None:
    assert output._json_type(1.5) == "a number" and output._json_type(object()) == "object"
    assert output._json_type(()) == "tuple"


# --- read_json_argument ---------------------------------------------------------------------------


def test_read_json_argument_reads_and_checks(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"gates": []}', encoding="utf-8")
    assert read_json_argument(str(path), "--previous-report") == {"gates": []}
    seen = []
    assert read_json_argument(str(path), "--x", check=lambda d: seen.append(d)) == {"gates": []}
    assert seen == [{"gates": []}]
    with pytest.raises(UsageError) as why:
        read_json_argument(str(path), "--previous-report", check=lambda d: "it is wrong")
    assert why.value.message == "--previous-report: it is wrong"
    assert why.value.path == str(path) and why.value.hint == "pass a JSON file to --previous-report"
    assert why.value.exit_code == 64


def test_read_json_argument_missing_file(tmp_path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(AprFileNotFoundError) as why:
        read_json_argument(missing, "--previous-report")
    assert why.value.message == "--previous-report: file not found"
    assert why.value.path == missing and why.value.hint == "check the path" and why.value.exit_code == 3


def test_read_json_argument_folder(tmp_path) -> None:
    with pytest.raises(UsageError) as why:
        read_json_argument(str(tmp_path), "--previous-report")
    assert why.value.message == "--previous-report names a folder, not a JSON file"
    assert why.value.path == str(tmp_path) and why.value.hint == "pass a JSON file to --previous-report"


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[" * 100_000])
def test_read_json_argument_not_json(tmp_path, content) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as why:
        read_json_argument(str(path), "--previous-report")
    try:  # the oracle: what the JSON and UTF-8 decoders themselves say about these bytes
        json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        detail = str(error)
    assert why.value.message == f"--previous-report is not a JSON file: {detail[:200]}"
    assert why.value.hint == "pass a JSON file to --previous-report" and why.value.path == str(path)


def test_read_json_argument_unreadable(tmp_path, monkeypatch) -> None:
    import builtins

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(AprIOError) as why:
        read_json_argument(str(tmp_path / "r.json"), "--previous-report")
    assert why.value.exit_code == 7 and why.value.path == str(tmp_path / "r.json")
    assert "read --previous-report" in str(why.value)


def test_read_json_argument_reads_utf8_whatever_the_locale(tmp_path) -> None:
    """JSON is UTF-8 (RFC 8259 §8.1): a C-locale shell (ASCII) must read it the same. The child
    process runs the same code under an ASCII locale; the in-process call is the baseline."""
    import os
    import subprocess

    path = tmp_path / "r.json"
    path.write_text('{"name": "café ü"}', encoding="utf-8")
    assert read_json_argument(str(path), "--x") == {"name": "café ü"}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = ("import json, locale, sys\n"
            "from apr.cli.output import read_json_argument\n"
            "print(locale.getpreferredencoding(False))\n"
            "print(json.dumps(read_json_argument(sys.argv[1], '--x')))\n")
    child = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert child.returncode == 0, child.stderr
    encoding, document = child.stdout.splitlines()
    if encoding.lower() not in ("ansi_x3.4-1968", "ascii", "us-ascii"):
        pytest.skip(f"this Python does not honour LC_ALL=C (locale encoding {encoding})")
    assert json.loads(document) == {"name": "café ü"}
