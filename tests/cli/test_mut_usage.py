"""Usage errors (`apr.cli.usage`, issue 17 and 23): exit 2 in text and ``--json``, the did-you-mean
for a mistyped flag or command, and the parser walk that finds the command the user named.

Suggestions are checked against small parsers built here, so the expected spelling is known from
the test's own input; the real `apr` parser is checked through `main` in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import pytest

from apr.cli.main import main
from apr.cli import usage
from apr.cli.usage import command_parser, option_strings, subcommand_parsers, suggestion


def _tree() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="t")
    root.add_argument("--verbose", "-v", action="store_true")
    sub = root.add_subparsers(dest="command")
    inspect = sub.add_parser("inspect")
    inspect.add_argument("--quality", action="store_true")
    inspect.add_argument("-o", "--output")
    contracts = sub.add_parser("contracts")
    inner = contracts.add_subparsers(dest="sub")
    verify = inner.add_parser("verify")
    verify.add_argument("--mutants", action="store_true")
    verify.add_argument("--profile")
    return root


def test_subcommand_parsers_of_a_tree_and_of_a_leaf() -> None:
    root = _tree()
    found = subcommand_parsers(root)
    assert sorted(found) == ["contracts", "inspect"]
    assert found["inspect"].prog == "t inspect"
    assert subcommand_parsers(found["inspect"]) == {}


def test_option_strings_lists_every_flag_in_order() -> None:
    root = _tree()
    assert option_strings(root) == ["-h", "--help", "--verbose", "-v"]
    assert option_strings(subcommand_parsers(root)["inspect"]) == ["-h", "--help", "--quality", "-o", "--output"]


@pytest.mark.parametrize(("argv", "prog"), [
    ([], "t"),
    (["inspect"], "t inspect"),
    (["-v", "inspect", "m.apr"], "t inspect"),          # leading flags are skipped
    (["contracts", "verify", "--mutnts"], "t contracts verify"),
    (["contracts", "--x", "verify"], "t contracts verify"),
    (["contracts", "nope", "verify"], "t contracts"),    # an unknown word stops the walk
    (["nope", "inspect"], "t"),
    (["inspect", "contracts"], "t inspect"),            # a leaf has no children
])
def test_command_parser_walks_the_leading_words(argv, prog) -> None:
    assert command_parser(_tree(), argv).prog == prog


@pytest.mark.parametrize(("message", "argv", "expected"), [
    ("unrecognized arguments: --qualty", ["inspect", "m.apr", "--qualty"], "did you mean --quality?"),
    # the value after = is not part of the flag (a long value would hide the match)
    ("unrecognized arguments: --qualty=/a/long/path/to/some/file.apr", ["inspect", "--qualty=/a/long/path/to/some/file.apr"],
     "did you mean --quality?"),
    ("unrecognized arguments: --outptu", ["inspect", "--outptu"], "did you mean --output?"),
    # only the command's own flags: --mutants belongs to contracts verify, not to inspect
    ("unrecognized arguments: --profle", ["contracts", "verify", "--profle"], "did you mean --profile?"),
    ("unrecognized arguments: --profle", ["inspect", "--profle"], None),
    # non-flag words are skipped; the first close flag wins
    ("unrecognized arguments: extra --qualty --outptu", ["inspect", "extra", "--qualty", "--outptu"],
     "did you mean --quality?"),
    ("unrecognized arguments: qualty", ["inspect", "qualty"], None),
    ("unrecognized arguments: --zzzzzz", ["inspect", "--zzzzzz"], None),
    # a near miss under the 0.6 ratio: no suggestion
    ("unrecognized arguments: --qxxxxxy", ["inspect", "--qxxxxxy"], None),
    ("argument command: invalid choice: 'inspct' (choose from 'inspect', 'contracts')", ["inspct"],
     "did you mean 'inspect'?"),
    ("argument command: invalid choice: 'contrcts' (choose from 'inspect', 'contracts')", ["contrcts"],
     "did you mean 'contracts'?"),
    ("argument command: invalid choice: 'zzz' (choose from 'inspect', 'contracts')", ["zzz"], None),
    ("the following arguments are required: file", ["inspect"], None),
])
def test_suggestion(message, argv, expected) -> None:
    assert suggestion(message, _tree(), argv) == expected


def test_the_ratio_cutoff_is_0_6_inclusive() -> None:
    # difflib ratio 2*M/T: "--abcdxyzw" vs "--abcdefgh" is 2*6/20 = 0.6 (kept), "--abcxyzwv" 2*5/20 = 0.5
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--abcdefgh")
    assert suggestion("unrecognized arguments: --abcdxyzw", parser, []) == "did you mean --abcdefgh?"
    assert suggestion("unrecognized arguments: --abcxyzwv", parser, []) is None
    # "abcxy" vs "abcde" is 2*3/10 = 0.6 (kept), "abxyz" 2*2/10 = 0.4
    assert suggestion("argument c: invalid choice: 'abcxy' (choose from 'abcde')", parser, []) == "did you mean 'abcde'?"
    assert suggestion("argument c: invalid choice: 'abxyz' (choose from 'abcde')", parser, []) is None


def test_an_invalid_choice_is_matched_only_against_the_choices() -> None:
    # 'inspct' itself appears before "choose from": it must not be offered back
    msg = "argument command: invalid choice: 'inspct' (choose from 'validate', 'run')"
    assert suggestion(msg, _tree(), ["inspct"]) is None


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("argv", "close", "prog"), [
    (["inspct", "m.apr"], "did you mean 'inspect'?", "apr"),
    (["inspect", "m.apr", "--qualty"], "did you mean --quality?", "apr inspect"),
    (["contracts", "verify", "--mutnts"], "did you mean --mutants?", "apr contracts verify"),
    (["contracts", "verfy"], "did you mean 'verify'?", "apr contracts"),
    (["inspect", "m.apr", "--zzzzzz"], None, "apr inspect"),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_usage_errors_exit_64_in_text_and_json(argv, close, prog, as_json) -> None:
    code, out, err = _run(argv + (["--json"] if as_json else []))
    assert code == 64
    hint = f"run `{prog} --help` for the accepted flags"
    if as_json:
        assert err == ""
        error = json.loads(out)["error"]
        assert error["exit_code"] == 64 and error["code"] == "usage" and error["type"] == "UsageError"
        assert error["hint"] == hint
        if close:
            assert error["message"].endswith(f" ({close})")
        else:
            assert "did you mean" not in error["message"]
    else:
        assert out == ""
        assert err.startswith(f"usage: {prog} ")
        assert f"  fix: {hint}\n" in err
        if close:
            assert f" ({close})\n" in err
        else:
            assert "did you mean" not in err


def test_no_command_is_usage_exit_64(capsys) -> None:
    assert main([]) == 64
    assert "usage: apr" in capsys.readouterr().err


def test_a_mistyped_word_containing_choose_from_is_not_taken_for_the_choices() -> None:
    # the choices are those after the last "choose from"; the user's word came before it
    msg = "argument command: invalid choice: 'xchoose fromx' (choose from 'inspect', 'contracts')"
    assert suggestion(msg, _tree(), ["xchoose fromx"]) is None
    msg = "argument command: invalid choice: 'choose fro' (choose from 'inspect', 'choose')"
    assert suggestion(msg, _tree(), ["choose fro"]) == "did you mean 'choose'?"


def test_only_the_first_equals_sign_ends_a_flag() -> None:
    msg = "unrecognized arguments: --qualty=/a/long/path/to/some/file=x"
    assert suggestion(msg, _tree(), ["inspect", "--qualty=/a/long/path/to/some/file=x"]) == "did you mean --quality?"



@pytest.mark.parametrize("argv", [["--data-source=--"], ["--data-source", "--"]])
def test_a_flag_whose_only_value_is_double_dash_is_a_usage_error(argv: list[str], tmp_path, capsys) -> None:
    """argparse 3.11 hands the command [] for ``--data-source=--`` (and refuses the two-word form
    itself); the CLI names the flag instead (exit 64)."""
    from apr.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["stamp", str(tmp_path / "m.apr"), "-o", str(tmp_path / "o.apr"), *argv])
    assert stop.value.code == 64
    err = capsys.readouterr().err
    assert "error: argument --data-source: expected one argument" in err
    assert ("'--' alone cannot be its value" in err) == ("=" in argv[0])
    assert not (tmp_path / "o.apr").exists()


def test_swallowed_value_ignores_lists_of_other_actions() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one")
    parser.add_argument("--many", nargs="*")
    parser.add_argument("--flag", action="store_true")
    assert usage.swallowed_value(parser, parser.parse_args(["--many"])) is None  # [] is its empty value
    assert usage.swallowed_value(parser, parser.parse_args(["--one", "x", "--flag"])) is None
    assert usage.swallowed_value(parser, parser.parse_args(["--one=--"])) == "--one"
