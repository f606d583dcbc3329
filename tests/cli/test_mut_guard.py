"""The top-level guard (`apr.cli.guard`) and every exit code it gives, text and ``--json`` (issue 23).

Each test calls the guard or `apr.cli.main.main` in-process so mutation testing sees the code; the
expected codes are aprender's table (3 not found, 5 validation, 7 I/O), 130 for Ctrl-C and 70
(sysexits EX_SOFTWARE) for a bug, written here, not read from `apr.cli.exit_codes`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
import traceback

import pytest

from apr.cli import guard, usage
from apr.cli.guard import as_documented_error, debug_requested, exit_code_for, internal_error
from apr.cli.main import main
from apr.errors import AprError, AprFileNotFoundError, AprIOError, InternalError, ValidationError
from falsifiers.errors import ContractError

# --- debug_requested ------------------------------------------------------------------------------


@pytest.mark.parametrize(("verbosity", "env", "expected"), [
    (0, None, False),
    (1, None, True),
    (2, None, True),
    (-1, None, False),
    (0, "1", True),
    (0, "true", True),
    (0, "yes", True),
    (0, "on", True),
    (0, " TRUE ", True),
    (0, "On", True),
    (0, "0", False),
    (0, "", False),
    (0, "false", False),
    (0, "no", False),
    (0, "2", False),
    (0, "y", False),
])
def test_debug_requested(monkeypatch, verbosity, env, expected) -> None:
    if env is None:
        monkeypatch.delenv("APR_DEBUG", raising=False)
    else:
        monkeypatch.setenv("APR_DEBUG", env)
    assert debug_requested(verbosity) is expected


def test_debug_requested_defaults_to_no_verbosity(monkeypatch) -> None:
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert debug_requested() is False
    monkeypatch.setenv("APR_DEBUG", "1")
    assert debug_requested() is True


# --- as_documented_error ----------------------------------------------------------------------


def test_an_apr_error_and_a_contract_error_stand_for_themselves() -> None:
    apr_error = ValidationError("bad", path="m.apr")
    contract_error = ContractError("broken contract")
    assert as_documented_error(apr_error) is apr_error
    assert as_documented_error(contract_error) is contract_error


@pytest.mark.parametrize(("filename", "path"), [("m.apr", "m.apr"), (b"b.apr", "b.apr"), (None, None), (3, None)])
def test_file_not_found_is_exit_3_with_the_path(filename, path) -> None:
    error = FileNotFoundError(errno.ENOENT, "No such file or directory", filename)
    documented = as_documented_error(error)
    assert type(documented) is AprFileNotFoundError
    assert documented.exit_code == 3
    assert documented.path == path
    assert documented.message == "file not found"
    assert documented.hint == "check the path"


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EIO])
def test_other_os_errors_are_exit_7(code) -> None:
    documented = as_documented_error(OSError(code, os.strerror(code), "/x/out.apr"))
    assert type(documented) is AprIOError
    assert documented.exit_code == 7
    assert documented.path == "/x/out.apr"
    assert documented.errno == code


@pytest.mark.parametrize("error", [BrokenPipeError(), KeyError("x"), RuntimeError("r"), ValueError("v"), TypeError()])
def test_a_bug_or_a_broken_pipe_is_not_documented(error) -> None:
    assert as_documented_error(error) is None


# --- internal_error -------------------------------------------------------------------------------


def _raised(fn, *args) -> BaseException:
    try:
        fn(*args)
    except Exception as error:  # noqa: BLE001
        return error
    raise AssertionError("no exception")


def _line_of(location: str) -> str:
    """The source line a ``path:line`` location names, read from the package's own file."""
    relative, lineno = location.rsplit(":", 1)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(guard.__file__))))
    with open(os.path.join(root, relative), encoding="utf-8") as handle:
        return handle.read().splitlines()[int(lineno) - 1]


def test_internal_error_names_the_type_message_and_innermost_package_frame(tmp_path, monkeypatch) -> None:
    # suggestion -> command_parser -> subcommand_parsers, which fails on None: three package frames;
    # the innermost counts, named relative to the package's folder whatever the working directory
    monkeypatch.chdir(tmp_path)
    error = _raised(usage.suggestion, "unrecognized arguments: --x", None, ["inspect"])
    assert isinstance(error, AttributeError)
    bug = internal_error(error)
    assert type(bug) is InternalError and bug.exit_code == 70
    assert bug.exception == "AttributeError"
    assert re.fullmatch(r"apr/cli/usage\.py:\d+", bug.location), bug.location
    assert "parser._actions" in _line_of(bug.location)
    first = str(error).splitlines()[0]
    assert bug.message == f"internal error: AttributeError: {first} (at {bug.location})"
    assert bug.hint == (
        "this is a bug in apr, not a problem with your input. Please report it with the command you ran, the "
        "output of `apr --version` and the traceback (rerun with -v, or with APR_DEBUG=1 in the environment, "
        "to print it)")
    document = bug.to_dict()
    assert document["exception"] == "AttributeError" and document["location"] == bug.location
    assert document["exit_code"] == 70 and document["code"] == "internal-error"


def test_internal_error_outside_the_package_has_no_location() -> None:
    bug = internal_error(_raised(lambda: {}["architecture"]))
    assert bug.location is None
    assert bug.message == "internal error: KeyError: 'architecture'"


def test_internal_error_keeps_the_first_line_cut_at_300() -> None:
    for size in (299, 300, 301):
        bug = internal_error(RuntimeError("x" * size + "\nsecond line"))
        assert bug.message == "internal error: RuntimeError: " + "x" * min(size, 300)


def test_internal_error_without_a_message_is_the_type_name() -> None:
    assert internal_error(RuntimeError()).message == "internal error: RuntimeError"
    assert internal_error(RuntimeError("  \n ")).message == "internal error: RuntimeError"


def test_internal_error_whose_str_fails() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    bug = internal_error(Unprintable())
    assert bug.message == "internal error: Unprintable: <message unavailable>"
    assert bug.exception == "Unprintable"


# --- exit_code_for: each code, text and --json ----------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_is_130(capsys, as_json) -> None:
    assert exit_code_for(KeyboardInterrupt(), as_json=as_json) == 130
    captured = capsys.readouterr()
    assert captured.err == "cancelled by user\n" and captured.out == ""


@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_pipe_is_7_and_one_line(capsys, as_json) -> None:
    assert exit_code_for(BrokenPipeError(), as_json=as_json) == 7
    captured = capsys.readouterr()
    assert captured.err == "apr: output pipe closed\n" and captured.out == ""


def test_a_closed_pipe_points_stdout_at_devnull(tmp_path, monkeypatch) -> None:
    target = tmp_path / "stdout.txt"
    with open(target, "w", encoding="utf-8") as handle:
        monkeypatch.setattr(sys, "stdout", handle)
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        open_before = _open_descriptors()
        assert exit_code_for(BrokenPipeError(), as_json=False) == 7
        assert _open_descriptors() == open_before  # /dev/null's own descriptor is closed again
        handle.write("after the reader left")
        handle.flush()
    assert target.read_text(encoding="utf-8") == ""


def _open_descriptors() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_a_closed_pipe_with_a_stdout_that_is_no_file(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert exit_code_for(BrokenPipeError(), as_json=True) == 7


@pytest.mark.parametrize(("error", "code"), [
    (AprError("generic"), 1),
    (AprFileNotFoundError("file not found", path="m.apr"), 3),
    (ValidationError("bad", path="m.apr"), 5),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "gone.apr"), 3),
    (OSError(errno.EROFS, "Read-only file system", "/ro/out.apr"), 7),
    (ContractError("broken"), 1),
    (RuntimeError("boom"), 70),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_each_error_kind_exits_with_its_code(capsys, monkeypatch, error, code, as_json) -> None:
    monkeypatch.delenv("APR_DEBUG", raising=False)
    assert exit_code_for(error, as_json=as_json) == code
    captured = capsys.readouterr()
    if as_json:
        document = json.loads(captured.out)
        assert document["error"]["exit_code"] == code
        assert captured.err == ""
    else:
        assert captured.out == ""
        assert captured.err.startswith("error: ")
        assert "Traceback" not in captured.err


@pytest.mark.parametrize("debug", ["verbosity", "env"])
def test_a_bug_prints_its_traceback_only_when_asked(capsys, monkeypatch, debug) -> None:
    monkeypatch.delenv("APR_DEBUG", raising=False)
    error = _raised(usage.command_parser, None, ["inspect"])
    assert exit_code_for(error, as_json=False) == 70
    assert "Traceback" not in capsys.readouterr().err
    if debug == "env":
        monkeypatch.setenv("APR_DEBUG", "1")
        assert exit_code_for(error, as_json=False) == 70
    else:
        assert exit_code_for(error, as_json=False, verbosity=1) == 70
    text = capsys.readouterr().err
    assert text.startswith("".join(traceback.format_exception(error)))
    assert text.startswith("Traceback (most recent call last):")
    assert "AttributeError" in text and "error: internal error: AttributeError" in text


def test_a_documented_error_never_prints_a_traceback(capsys, monkeypatch) -> None:
    monkeypatch.setenv("APR_DEBUG", "1")
    assert exit_code_for(ValidationError("bad"), as_json=False, verbosity=2) == 5
    assert "Traceback" not in capsys.readouterr().err


def test_a_failing_mapping_is_an_internal_error(capsys, monkeypatch) -> None:
    def broken(_error):
        raise RuntimeError("mapping failed")

    monkeypatch.setattr(guard, "as_documented_error", broken)
    assert exit_code_for(ValidationError("bad"), as_json=True) == 70
    document = json.loads(capsys.readouterr().out)["error"]
    assert document["exit_code"] == 70 and document["exception"] == "ValidationError"


def test_a_failing_renderer_falls_back_to_one_ascii_line(capsys, monkeypatch) -> None:
    import apr.cli.output as output

    def broken(*_args, **_kwargs):
        raise RuntimeError("cannot render")

    monkeypatch.setattr(output, "render_error", broken)
    assert exit_code_for(ValidationError("bad café"), as_json=False) == 5
    captured = capsys.readouterr()
    assert captured.err == "error: 'bad caf\\xe9'\n"


@pytest.mark.parametrize(("kwargs", "command", "input"), [
    ({}, "apr", None),  # no command known (argv did not parse): the program's own name
    ({"command": "contracts lint"}, "contracts lint", None),
    ({"command": "inspect", "input": "m.apr"}, "inspect", "m.apr"),
])
def test_the_json_error_envelope_names_the_command_and_input(capsys, kwargs, command, input) -> None:
    """`command` and `input` are JSON fields a script reads: they reach the envelope unchanged."""
    assert exit_code_for(ValidationError("bad"), as_json=True, **kwargs) == 5
    doc = json.loads(capsys.readouterr().out)
    assert (doc["command"], doc["input"], doc["ok"], doc["exit_code"]) == (command, input, False, 5)
    assert doc["error"]["message"] == "bad"


def test_a_renderer_meeting_a_closed_pipe_still_gives_the_code(capsys, monkeypatch) -> None:
    import apr.cli.output as output

    def closed(*_args, **_kwargs):
        raise BrokenPipeError()

    monkeypatch.setattr(output, "render_error", closed)
    assert exit_code_for(ValidationError("bad"), as_json=True) == 5
    assert capsys.readouterr().err == ""


def test_a_documented_error_without_exit_code_is_70(capsys, monkeypatch) -> None:
    class Bare(Exception):
        def to_dict(self):
            return {"message": str(self)}

    monkeypatch.setattr(guard, "as_documented_error", lambda error: error)
    assert exit_code_for(Bare("odd"), as_json=True) == 70
    capsys.readouterr()


def test_stderr_that_cannot_write_falls_back_to_fd_2(capfd, monkeypatch) -> None:
    class Broken:
        def write(self, _text):
            raise UnicodeEncodeError("ascii", "é", 0, 1, "no")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Broken())
    assert exit_code_for(KeyboardInterrupt(), as_json=False) == 130
    monkeypatch.undo()
    assert capfd.readouterr().err == "cancelled by user\n"


# --- through main(): the guard around a real command --------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_main_maps_a_bug_in_a_command_to_70(capsys, monkeypatch, as_json) -> None:
    import apr.cli.inspect_cmd as inspect_cmd

    def bug(_args):
        raise KeyError("architecture")

    monkeypatch.delenv("APR_DEBUG", raising=False)
    monkeypatch.setattr(inspect_cmd, "run", bug)
    code = main(["inspect", "m.apr", *(["--json"] if as_json else [])])
    captured = capsys.readouterr()
    assert code == 70
    if as_json:
        assert json.loads(captured.out)["error"]["exit_code"] == 70
    else:
        assert "internal error: KeyError" in captured.err


@pytest.mark.parametrize("as_json", [False, True])
def test_main_maps_ctrl_c_and_os_errors(capsys, monkeypatch, tmp_path, as_json) -> None:
    import apr.cli.main as cli_main

    flag = ["--json"] if as_json else []
    for raised, code in ((KeyboardInterrupt(), 130), (OSError(errno.EIO, "Input/output error", "m.apr"), 7),
                         (FileNotFoundError(errno.ENOENT, "No such file", "m.apr"), 3)):
        def handler(_args, raised=raised):
            raise raised

        def dispatch(args, handler=handler):
            return handler(args)

        monkeypatch.setattr(cli_main, "dispatch", dispatch)
        assert main(["inspect", str(tmp_path / "m.apr"), *flag]) == code
        captured = capsys.readouterr()
        if as_json and code != 130:
            assert json.loads(captured.out)["error"]["exit_code"] == code


def test_the_fd_2_fallback_escapes_what_ascii_cannot_say(capfd, monkeypatch) -> None:
    class Broken:
        def write(self, _text):
            raise UnicodeEncodeError("ascii", "é", 0, 1, "no")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Broken())
    guard._write_stderr("café ☕\n")
    monkeypatch.undo()
    assert capfd.readouterr().err == "caf\\xe9 \\u2615\n"


def test_the_fd_2_fallback_gives_up_quietly(monkeypatch) -> None:
    class Broken:
        def write(self, _text):
            raise ValueError("closed")

    def no_fd(_fd, _data):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(sys, "stderr", Broken())
    monkeypatch.setattr(guard.os, "write", no_fd)
    assert exit_code_for(KeyboardInterrupt(), as_json=False) == 130
