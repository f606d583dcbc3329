"""`apr.cli.main`: the parser it builds, the logging it sets up, the checks `dispatch` makes before a
command runs, and every way `main` ends (issue 23: mutation score of apr/cli/main.py).

Everything runs in-process so mutation testing sees it. Expected values are written here from the
documented interface (exit codes 0/64/70, ``--json`` documents, the ``-v`` levels), never read back
from the module under test.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys

import pytest

from apr.cli import main as cli_main
from apr.cli.main import COMMAND_MODULES, build_parser, command_module, dispatch, main

# Every command word and the module that registers it (the module list is pipeline order).
COMMANDS = {
    "inspect": "apr.cli.inspect_cmd", "validate": "apr.cli.validate_cmd", "demo": "apr.cli.demo_cmd",
    "tokenize": "apr.cli.tokenize_cmd", "pretrain": "apr.cli.pretrain_cmd", "stamp": "apr.cli.stamp_cmd",
    "import": "apr.cli.import_cmd", "export": "apr.cli.export_cmd", "run": "apr.cli.run_cmd",
    "qa": "apr.cli.qa_cmd", "readiness": "apr.cli.readiness_cmd", "publish": "apr.cli.publish_cmd",
    "diff": "apr.cli.diff_cmd", "contracts": "apr.cli.contracts_cmd", "completion": "apr.cli.completion_cmd",
    "card": "apr.cli.readiness_cmd",
}


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


# --- command_module -------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "module"), sorted(COMMANDS.items()))
def test_each_command_word_names_its_module(word, module) -> None:
    assert command_module([word]) == module
    assert command_module(["-v", "--json", word, "FILE"]) == module


@pytest.mark.parametrize("argv", [None, [], ["--help"], ["-v", "--json"], ["inspekt"], ["m.apr", "inspect"],
                                  ["cli.inspect"], ["Inspect"], ["main"], ["cards"]])
def test_a_word_no_command_has_names_no_module(argv) -> None:
    # the first non-flag word decides: a file name before the command is not looked past
    assert command_module(argv) is None


def test_the_module_list_is_the_pipeline() -> None:
    assert COMMAND_MODULES == tuple(dict.fromkeys(m for w, m in COMMANDS.items() if w != "card"))


# --- build_parser ---------------------------------------------------------------------------------


def test_a_named_command_builds_only_its_parser() -> None:
    assert _subcommands(build_parser(["inspect", "m.apr"])) == {"inspect"}
    assert _subcommands(build_parser(["-v", "card", "m.apr"])) == {"readiness", "card"}


@pytest.mark.parametrize("argv", [None, [], ["inspekt"], ["--help"]])
def test_no_command_or_an_unknown_word_builds_every_parser(argv) -> None:
    assert _subcommands(build_parser(argv)) == set(COMMANDS)


def test_the_root_parser() -> None:
    parser = build_parser(["inspect"])
    assert isinstance(parser, cli_main._Parser)
    assert parser.prog == "apr"
    assert parser.description == "APR v2 checkpoints under contract."
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub.dest == "command" and sub.metavar == "COMMAND"
    assert isinstance(sub.choices["inspect"], cli_main._Parser)  # subcommands report usage errors too
    assert "usage: apr [-h] [--version] [-v] COMMAND ..." in parser.format_usage()
    (verbose,) = [a for a in parser._actions if a.option_strings == ["-v", "--verbose"]]
    assert verbose.help == "more log output on stderr"


@pytest.mark.parametrize(("flags", "verbose"), [([], 0), (["-v"], 1), (["--verbose"], 1), (["-v", "-v"], 2),
                                                (["-vvv"], 3)])
def test_verbose_counts(flags, verbose) -> None:
    args = build_parser(["inspect"]).parse_args([*flags, "inspect", "m.apr"])
    assert args.verbose == verbose and args.command == "inspect"


def test_the_version_flag_is_declared_without_a_value() -> None:
    (action,) = [a for a in build_parser(["inspect"])._actions if a.option_strings == ["--version"]]
    assert isinstance(action, cli_main._VersionAction)
    assert action.nargs == 0
    assert action.default == argparse.SUPPRESS  # (argparse passes dest="version" itself)
    assert action.help == "show the version and exit"
    assert "--version" not in vars(build_parser(["inspect"]).parse_args(["inspect", "m.apr"]))


def test_version_prints_the_installed_version_on_stdout_and_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == f"apr {importlib.metadata.version('apr-contracts')}\n"
    assert captured.err == ""


def test_version_from_a_source_tree_without_install(capsys, monkeypatch) -> None:
    def not_installed(name: str) -> str:
        assert name == "apr-contracts"
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == "apr 0+unknown\n"


# --- _Parser.error without a root ----------------------------------------------------------------


def test_a_parser_error_before_main_set_the_root_reports_its_own_usage(capsys, monkeypatch) -> None:
    monkeypatch.setattr(cli_main, "_ROOT", [])
    monkeypatch.setattr(cli_main, "_ARGV", ["--qualty"])
    parser = cli_main._Parser(prog="apr-x")
    parser.add_argument("--quality", action="store_true")
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--qualty"])
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert err == ("usage: apr-x [-h] [--quality]\n"
                   "error: unrecognized arguments: --qualty (did you mean --quality?)\n"
                   "  fix: run `apr-x --help` for the accepted flags\n")


def test_a_parser_that_is_not_the_root_takes_suggestions_from_the_command_line(capsys, monkeypatch) -> None:
    # the did-you-mean is computed over the parser the whole command line names (the root's view),
    # while the usage shown is the reporting parser's own
    root = build_parser(["inspect"])
    monkeypatch.setattr(cli_main, "_ROOT", [root])
    monkeypatch.setattr(cli_main, "_ARGV", ["inspect", "m.apr", "--qualty"])
    other = cli_main._Parser(prog="apr-other")
    with pytest.raises(SystemExit) as exited:
        other.error("unrecognized arguments: --qualty")
    assert exited.value.code == 64
    assert capsys.readouterr().err == ("usage: apr-other [-h]\n"
                                       "error: unrecognized arguments: --qualty (did you mean --quality?)\n"
                                       "  fix: run `apr-other --help` for the accepted flags\n")


def test_a_subcommand_parser_shows_its_own_usage_not_the_root(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["inspect"])  # the file argument is missing: inspect's own parser reports it
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert err.startswith("usage: apr inspect ")
    assert "error: the following arguments are required: file\n" in err
    assert err.endswith("  fix: run `apr inspect --help` for the accepted flags\n")


def test_a_subcommand_usage_error_is_json_under_json(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["inspect", "--json"])
    assert exited.value.code == 64
    captured = capsys.readouterr()
    assert captured.err == ""
    error = json.loads(captured.out)["error"]
    assert error["exit_code"] == 64 and error["code"] == "usage"
    assert error["message"] == "the following arguments are required: file"
    assert error["hint"] == "run `apr inspect --help` for the accepted flags"


# --- logging --------------------------------------------------------------------------------------


@pytest.fixture
def restore_loggers():
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
             for name in ("apr", "falsifiers")}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(("verbosity", "level"), [(0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG),
                                                  (3, logging.DEBUG)])
def test_configure_logging_levels_and_one_shared_handler(restore_loggers, verbosity, level) -> None:
    cli_main._configure_logging(verbosity)
    apr_logger, falsifiers_logger = logging.getLogger("apr"), logging.getLogger("falsifiers")
    assert apr_logger.level == level and falsifiers_logger.level == level
    (handler,) = apr_logger.handlers
    assert falsifiers_logger.handlers == [handler]
    assert isinstance(handler, cli_main._LazyRichHandler)
    assert handler._verbosity == verbosity and handler._handler is None  # rich not built before a record


@pytest.mark.parametrize(("verbosity", "show_path"), [(1, False), (2, True), (3, True)])
def test_the_rich_handler_is_built_on_the_first_record(capsys, verbosity, show_path) -> None:
    from rich.logging import RichHandler

    handler = cli_main._LazyRichHandler(verbosity)
    record = logging.LogRecord("apr.x", logging.WARNING, __file__, 1, "first %s", ("record",), None)
    handler.emit(record)
    built = handler._handler
    assert isinstance(built, RichHandler)
    assert built._log_render.show_path is show_path
    assert built._log_render.show_time is False
    handler.emit(logging.LogRecord("apr.x", logging.WARNING, __file__, 2, "second record", (), None))
    assert handler._handler is built  # built once
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "first record" in captured.err and "second record" in captured.err


# --- the interrupted-stamp check ------------------------------------------------------------------


@pytest.fixture
def journal_calls(monkeypatch):
    """Records which paths the check looks at and which it hands to the journal reader."""
    import apr.stamp.journal as journal
    import apr.stamp.journal_site as journal_site

    calls: dict[str, list[object]] = {"looked": [], "judged": []}
    pending: set[object] = set()

    def any_entry(path):
        calls["looked"].append(path)
        return path in pending

    monkeypatch.setattr(journal_site, "any_journal_entry", any_entry)
    monkeypatch.setattr(journal, "require_no_pending_journal", calls["judged"].append)
    return calls, pending


def test_only_the_named_checkpoint_arguments_that_are_given_are_looked_at(journal_calls) -> None:
    calls, pending = journal_calls
    pending.add("b.apr")
    args = argparse.Namespace(reads_checkpoints=("a", "missing", "init", "b"), a="a.apr", init=None, b="b.apr",
                              other="c.apr")
    cli_main._refuse_interrupted_stamps(args)
    assert calls["looked"] == ["a.apr", "b.apr"]
    assert calls["judged"] == ["b.apr"]  # only a path with a journal entry is judged


def test_a_command_that_reads_no_checkpoint_looks_at_nothing(journal_calls) -> None:
    calls, _ = journal_calls
    cli_main._refuse_interrupted_stamps(argparse.Namespace(file="a.apr"))
    assert calls == {"looked": [], "judged": []}


# --- main and dispatch ----------------------------------------------------------------------------


def _command(handler, **defaults) -> argparse.Namespace:
    return argparse.Namespace(command="fake", verbose=0, json=False, handler=handler, **defaults)


def test_dispatch_returns_the_handler_code_as_an_int(restore_loggers) -> None:
    seen = []

    def handler(args):
        seen.append(args)
        return True  # a truthy non-int: dispatch makes it the int 1

    args = _command(handler)
    code = dispatch(args)
    assert code == 1 and type(code) is int
    assert seen == [args]


@pytest.mark.parametrize(("verbose", "level"), [(0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG)])
def test_dispatch_sets_up_logging_from_verbose(restore_loggers, verbose, level) -> None:
    dispatch(argparse.Namespace(command="fake", verbose=verbose, handler=lambda args: 0))
    assert logging.getLogger("apr").level == level
    assert logging.getLogger("apr").handlers[0]._verbosity == verbose


def test_the_console_script_exits_with_mains_code(monkeypatch) -> None:
    monkeypatch.setattr(cli_main, "main", lambda: 5)
    with pytest.raises(SystemExit) as exited:
        cli_main.run()
    assert exited.value.code == 5


def test_dispatch_checks_extras_before_the_command_runs(restore_loggers, monkeypatch) -> None:
    import apr.cli.extras as extras

    asked = []
    monkeypatch.setattr(extras, "require_extras", lambda command, needed: asked.append((command, needed)))
    ran = []
    assert dispatch(_command(lambda args: ran.append(1) or 0, needs_extras=("train",))) == 0
    assert asked == [("fake", ("train",))] and ran == [1]
    asked.clear()
    dispatch(_command(lambda args: 0))
    assert asked == []  # a command that names no extras asks for none


def test_dispatch_refuses_a_missing_extra_without_running_the_command(restore_loggers, monkeypatch) -> None:
    import importlib.util

    from apr.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    ran = []
    with pytest.raises(MissingExtraError) as why:
        dispatch(_command(lambda args: ran.append(1) or 0, needs_extras=("train",)))
    assert ran == []
    assert why.value.message == "apr fake needs PyTorch, which runs and trains models (the 'torch' module is not installed)"
    assert why.value.field == "train"
    assert why.value.hint == ("pip install 'apr-contracts[train]' (for a CPU-only PyTorch first: pip install "
                              "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)")


def test_dispatch_checks_journals_before_the_command_runs(restore_loggers, monkeypatch) -> None:
    import apr.stamp.journal as journal
    import apr.stamp.journal_site as journal_site

    order: list[object] = []
    monkeypatch.setattr(journal_site, "any_journal_entry", lambda path: True)
    monkeypatch.setattr(journal, "require_no_pending_journal", lambda path: order.append(("judged", path)))
    dispatch(_command(lambda args: order.append("ran") or 0, reads_checkpoints=("file",), file="m.apr"))
    assert order == [("judged", "m.apr"), "ran"]


def test_dispatch_refuses_an_interrupted_stamp_without_running_the_command(restore_loggers, monkeypatch) -> None:
    import apr.stamp.journal as journal
    import apr.stamp.journal_site as journal_site
    from apr.errors import AprError

    def refuse(path):
        raise AprError(f"{path} was being stamped")

    monkeypatch.setattr(journal_site, "any_journal_entry", lambda path: True)
    monkeypatch.setattr(journal, "require_no_pending_journal", refuse)
    ran = []
    with pytest.raises(AprError, match=r"m\.apr was being stamped"):
        dispatch(_command(lambda args: ran.append(1) or 0, reads_checkpoints=("file",), file="m.apr"))
    assert ran == []


def test_main_protects_the_streams_first(monkeypatch, capsys) -> None:
    import apr.cli.output as output

    calls = []
    monkeypatch.setattr(output, "protect_streams", lambda: calls.append("protected"))
    assert main([]) == 64
    assert calls == ["protected"]


def test_no_command_prints_the_full_help_on_stderr(capsys) -> None:
    assert main(["-v"]) == 64
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: apr [-h] [--version] [-v] COMMAND ...\n")
    assert "APR v2 checkpoints under contract." in captured.err  # the help, not only the usage line


def test_main_reads_sys_argv_when_given_none(monkeypatch, capsys, tmp_path) -> None:
    missing = tmp_path / "missing.apr"
    monkeypatch.setattr(sys, "argv", ["apr", "inspect", str(missing), "--json"])
    assert main() == 3
    document = json.loads(capsys.readouterr().out)
    assert document["command"] == "inspect" and document["exit_code"] == 3
    error = document["error"]
    assert error["exit_code"] == 3 and str(missing) in json.dumps(error)


def test_main_returns_the_command_code(monkeypatch, capsys, tmp_path) -> None:
    missing = tmp_path / "missing.apr"
    assert main(["inspect", str(missing)]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and str(missing) in captured.err


def _broken_build(argv):
    raise RuntimeError("parser broke")


@pytest.mark.parametrize(("argv", "sys_argv", "as_json"), [
    (["inspect", "m.apr", "--json"], ["apr"], True),
    (["inspect", "m.apr"], ["apr", "--json"], False),  # argv given: sys.argv is not consulted
    (None, ["apr", "inspect", "m.apr", "--json"], True),
    (None, ["apr", "--json", "inspect", "m.apr"], True),  # every word after the program name counts
    (None, ["apr", "inspect", "m.apr"], False),
])
def test_a_failure_before_the_arguments_are_parsed_honours_json(monkeypatch, capsys, argv, sys_argv, as_json) -> None:
    monkeypatch.setattr(sys, "argv", sys_argv)
    monkeypatch.setattr(cli_main, "build_parser", _broken_build)
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert main(argv) == 70
    captured = capsys.readouterr()
    if as_json:
        document = json.loads(captured.out)
        assert document["command"] == "apr"  # no parser was built: no command can be named
        error = document["error"]
        assert error["exit_code"] == 70 and "parser broke" in error["message"]
    else:
        assert captured.out == ""
        assert "parser broke" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(("flags", "traceback_shown"), [([], False), (["-v"], True)])
def test_a_bug_in_a_command_honours_json_and_verbosity_of_the_parsed_arguments(
        monkeypatch, capsys, restore_loggers, flags, traceback_shown) -> None:
    import apr.cli.inspect_cmd as inspect_cmd

    def broken(args):
        raise RuntimeError("handler broke")

    monkeypatch.setattr(inspect_cmd, "run", broken)
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert main([*flags, "inspect", "m.apr"]) == 70
    captured = capsys.readouterr()
    assert captured.out == "" and "handler broke" in captured.err
    assert ("Traceback" in captured.err) is traceback_shown
    assert main([*flags, "inspect", "m.apr", "--json"]) == 70
    assert json.loads(capsys.readouterr().out)["error"]["exit_code"] == 70


def test_json_is_read_from_the_parsed_arguments_when_there_are_some(capsys, tmp_path) -> None:
    # argparse takes the abbreviation --js for --json: the parsed flag decides, not the literal word
    missing = tmp_path / "missing.apr"
    assert main(["inspect", str(missing), "--js"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["exit_code"] == 3


def test_a_command_without_a_json_flag_fails_in_text(capsys, monkeypatch) -> None:
    def broken(args):
        raise RuntimeError("dispatch broke")

    monkeypatch.setattr(cli_main, "dispatch", broken)
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert not hasattr(build_parser(["contracts"]).parse_args(["contracts"]), "json")
    assert main(["contracts"]) == 70
    captured = capsys.readouterr()
    assert captured.out == "" and "dispatch broke" in captured.err


def test_sys_argv_words_after_the_program_name_name_the_command(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["apr", "inspect", "m.apr", "--qualty"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert err.startswith("usage: apr inspect ") and "(did you mean --quality?)" in err


def test_ctrl_c_during_parsing_is_130(monkeypatch, capsys) -> None:
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "build_parser", interrupted)
    assert main(["inspect", "m.apr"]) == 130


def test_the_guard_gets_the_root_parser(monkeypatch) -> None:
    seen = []
    real = cli_main.build_parser

    asked = []

    def recording(argv):
        asked.append(list(argv) if argv is not None else None)
        parser = real(argv)
        seen.append(parser)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", recording)
    with pytest.raises(SystemExit):
        main(["inspect", "m.apr", "--qualty"])
    assert cli_main._ROOT == seen and cli_main._ARGV == ["inspect", "m.apr", "--qualty"]
    assert asked == [["inspect", "m.apr", "--qualty"]]  # built for the command named, not every command


def test_a_failed_build_after_a_good_call_names_no_stale_command(monkeypatch, capsys, tmp_path) -> None:
    assert main(["inspect", str(tmp_path / "missing.apr"), "--json"]) == 3  # leaves a built parser behind
    capsys.readouterr()
    monkeypatch.setattr(cli_main, "build_parser", _broken_build)
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert main(["validate", "m.apr", "--json"]) == 70
    document = json.loads(capsys.readouterr().out)
    assert document["command"] == "apr" and document["error"]["exit_code"] == 70


def test_a_value_flag_given_only_the_end_of_options_marker_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["stamp", "m.apr", "--license=--"])
    assert exited.value.code == 64
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2:] == [
        "error: argument --license: expected one argument ('--' alone cannot be its value: "
        "it means the end of the options)",
        "  fix: run `apr stamp --help` for the accepted flags",
    ]


@pytest.mark.parametrize(("dest", "flag"), [("run_dir", "--run-dir"), ("output", "-o")])
def test_dispatch_refuses_standard_output_where_a_command_cannot_stream(restore_loggers, dest, flag) -> None:
    from apr.errors import UsageError

    ran = []
    with pytest.raises(UsageError) as refused:
        dispatch(_command(lambda args: ran.append(1) or 0, **{dest: "-"}))
    assert str(refused.value).startswith(f"{flag} - (standard output) is not possible here")
    assert refused.value.field == flag
    assert ran == []


def test_dispatch_with_a_declared_stdout_output_it_was_not_given_runs_the_command(restore_loggers) -> None:
    # a Namespace built by hand (fuzz targets) may lack the declared argument: that is not `-`
    assert dispatch(_command(lambda args: 7, stdout_output=("output",))) == 7
