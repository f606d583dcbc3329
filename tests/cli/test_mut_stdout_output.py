"""`apr.cli.stdout_output` (``-o -``) on its own: when a command streams, what reaches the pipe and
in which order, what the command's messages say, and that the temporary folder and the argument are
put back whatever happens (issue 23: the module had no mutation figure)."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import pytest

from apr.cli import stdout_output as so
from apr.errors import UsageError

PAYLOAD = bytes(range(256)) * 9  # not UTF-8: the copy must be binary


def _args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**values)


# --- streamed_output -------------------------------------------------------------------------------

def test_a_command_that_does_not_declare_streaming_never_streams() -> None:
    assert so.streamed_output(_args(output="-")) is None
    assert so.streamed_output(_args(output="-", stdout_output=None)) is None
    assert so.streamed_output(_args(output="-", stdout_output=())) is None


def test_only_a_dash_in_the_declared_argument_streams() -> None:
    declared = ("output", "x.gguf")
    assert so.streamed_output(_args(output="out.gguf", stdout_output=declared, json=False)) is None
    assert so.streamed_output(_args(stdout_output=declared, json=False)) is None  # the argument absent
    assert so.streamed_output(_args(output="-", other="x", stdout_output=("other", "x.gguf"), json=False)) is None
    assert so.streamed_output(_args(output="-", stdout_output=declared, json=False)) == declared


def test_a_command_without_a_json_flag_streams() -> None:
    declared = ("output", "x.gguf")
    assert so.streamed_output(_args(output="-", stdout_output=declared)) == declared


def test_dash_with_json_is_refused_naming_the_json_flag() -> None:
    with pytest.raises(UsageError) as refused:
        so.streamed_output(_args(output="-", stdout_output=("output", "x.gguf"), json=True))
    assert refused.value.field == "--json"
    assert refused.value.exit_code == 64
    assert refused.value.hint and "--json" in refused.value.hint


# --- run_streamed ----------------------------------------------------------------------------------

def _binary_sink() -> tuple[io.BytesIO, io.TextIOWrapper]:
    """A text stream over a buffered writer over bytes, as sys.stdout is: the bytes only reach
    ``raw`` once each layer is flushed."""
    raw = io.BytesIO()
    return raw, io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")


def _writer(seen: dict[str, object], code: int = 0):
    def handler(args: argparse.Namespace) -> int:
        seen["path"] = args.output
        seen["folder_existed"] = os.path.isdir(os.path.dirname(args.output))
        Path(args.output).write_bytes(PAYLOAD)
        print(f"wrote {args.output}")
        return code
    return handler


def test_the_file_reaches_the_sink_flushed_after_what_was_written_before(capsys) -> None:
    raw, sink = _binary_sink()
    sink.write("head:")  # pending in the text layer: must reach the pipe before the file
    seen: dict[str, object] = {}
    args = _args(output="-")
    code = so.run_streamed(args, _writer(seen), ("output", "model.gguf"), stdout=sink)
    assert code == 0
    assert raw.getvalue() == b"head:" + PAYLOAD  # no flush by the test: the copy flushed every layer
    assert os.path.basename(str(seen["path"])) == "model.gguf"
    assert seen["folder_existed"] is True


def test_the_argument_is_put_back_and_the_folder_removed(capsys) -> None:
    seen: dict[str, object] = {}
    args = _args(output="-")
    so.run_streamed(args, _writer(seen), ("output", "model.gguf"), stdout=_binary_sink()[1])
    assert args.output == "-"
    folder = os.path.dirname(str(seen["path"]))
    assert not os.path.exists(folder)
    assert os.path.basename(folder).startswith("apr-stdout-")


def test_a_failed_command_streams_nothing_and_still_cleans_up(capsys) -> None:
    raw, sink = _binary_sink()
    seen: dict[str, object] = {}
    args = _args(output="-")
    assert so.run_streamed(args, _writer(seen, code=5), ("output", "model.gguf"), stdout=sink) == 5
    sink.flush()
    assert raw.getvalue() == b""
    assert args.output == "-" and not os.path.exists(os.path.dirname(str(seen["path"])))


def test_a_raising_command_still_cleans_up(capsys) -> None:
    seen: dict[str, str] = {}

    def handler(args: argparse.Namespace) -> int:
        seen["path"] = args.output
        Path(args.output).write_bytes(PAYLOAD)
        raise UsageError("refused")

    args = _args(output="-")
    with pytest.raises(UsageError):
        so.run_streamed(args, handler, ("output", "model.gguf"), stdout=_binary_sink()[1])
    assert args.output == "-" and not os.path.exists(os.path.dirname(seen["path"]))


def test_the_name_may_be_a_function_of_the_arguments(capsys) -> None:
    raw, sink = _binary_sink()
    seen: dict[str, object] = {}
    args = _args(output="-", suffix=".bin")
    so.run_streamed(args, _writer(seen), ("output", lambda a: "file" + a.suffix), stdout=sink)
    assert os.path.basename(str(seen["path"])) == "file.bin" and raw.getvalue() == PAYLOAD


def test_without_a_sink_the_file_goes_to_sys_stdout(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    raw, sink = _binary_sink()
    monkeypatch.setattr("sys.stdout", sink)
    seen: dict[str, object] = {}
    assert so.run_streamed(_args(output="-"), _writer(seen), ("output", "model.gguf")) == 0
    assert raw.getvalue().endswith(PAYLOAD)


def test_the_commands_messages_go_to_stderr_naming_standard_output(capsys) -> None:
    raw, sink = _binary_sink()
    seen: dict[str, object] = {}
    so.run_streamed(_args(output="-"), _writer(seen), ("output", "model.gguf"), stdout=sink)
    captured = capsys.readouterr()
    assert captured.err == "wrote standard output\n"
    assert captured.out == "" and raw.getvalue() == PAYLOAD  # nothing printed reached the pipe


def test_renaming_writes_through_and_reports_the_length_given() -> None:
    inner = io.StringIO()
    renaming = so._Renaming(inner, "/tmp/x", "standard output")
    assert renaming.write("to /tmp/x!") == len("to /tmp/x!")
    assert inner.getvalue() == "to standard output!"
    assert renaming.getvalue() == inner.getvalue()  # anything else is the wrapped stream's


def test_copy_sends_bytes_to_a_binary_sink_without_a_buffer(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(PAYLOAD * 600)  # over one CHUNK
    sink = io.BytesIO()
    so._copy(os.fspath(source), sink)
    assert sink.getvalue() == PAYLOAD * 600


def test_a_cleanup_that_finds_nothing_to_remove_keeps_the_commands_exit_code(capsys) -> None:
    """Removing the temporary folder never fails the command or replaces its exit code: here the
    command failed after something else removed the folder (a temp cleaner, say)."""
    import shutil

    def handler(args: argparse.Namespace) -> int:
        shutil.rmtree(os.path.dirname(args.output))
        return 5

    args = _args(output="-")
    assert so.run_streamed(args, handler, ("output", "model.gguf"), stdout=_binary_sink()[1]) == 5
    assert args.output == "-"
