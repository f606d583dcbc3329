"""``apr contracts verify``'s runner exactly (issue 23), in-process: the child command line it builds,
where the child's output goes, which receipt it reads, and the error when there is none.

The child here is a stand-in for ``python -m pytest`` (``sys.executable`` pointed at a small script
for the length of a test): it records what it was given (arguments, folder, environment, whether a
receipt was already there) into the receipt path it was handed, so every property is checked on a
real process started by the real ``subprocess.run``, in milliseconds and without a child pytest
(which mutmut could not see).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from falsifiers.errors import VerifyError
from falsifiers.runner import TABLE_ENV, _split_receipt_option, pytest_command, run_verify

PYTHON = sys.executable  # the interpreter itself: the fixture below points sys.executable elsewhere

CHILD = '''#!{python}
import json, os, sys
receipt = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--contracts-json="))
existed = os.path.exists(receipt)
sys.stdout.write("child stdout\\n")
sys.stdout.flush()
sink = os.environ.get("FAKE_SINK")  # the caller's log file: does this child write straight into it?
streamed = sink is not None and "child stdout" in open(sink, encoding="utf-8").read()
sys.stderr.write("child stderr\\n")
sys.stderr.flush()
if not os.environ.get("FAKE_NO_RECEIPT"):
    with open(receipt, "w", encoding="utf-8") as out:
        json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(), "table": os.environ.get("{table}"),
                   "inherited": os.environ.get("FAKE_INHERITED"), "existed": existed,
                   "streamed": streamed, "name": "Gr\\u00fc\\u00dfe \\u2713"}}, out, ensure_ascii=False)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
'''


@pytest.fixture
def child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sys.executable`` is a script that plays the child pytest (see the module docstring)."""
    script = tmp_path / "bin" / "fake-python"
    script.parent.mkdir()
    script.write_text(CHILD.format(python=PYTHON, table=TABLE_ENV), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", os.fspath(script))
    for name in ("FAKE_NO_RECEIPT", "FAKE_EXIT", "FAKE_SINK", TABLE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_INHERITED", "yes")
    return script


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def _receipt_arg(argv: list[str]) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith("--contracts-json=")]
    return value


# --- the command line ------------------------------------------------------------------------------


def test_the_table_variable_is_interface() -> None:
    assert TABLE_ENV == "APR_CONTRACTS_TABLE"


def test_the_plain_command_names_the_plugin_then_the_args_then_the_receipt(tmp_path: Path) -> None:
    command = pytest_command(["-q", "tests"], tmp_path / "r.json")
    assert command == [sys.executable, "-m", "pytest", "-p", "falsifiers.plugin", "-q", "tests",
                       f"--contracts-json={tmp_path / 'r.json'}"]
    assert pytest_command((), "r.json") == [sys.executable, "-m", "pytest", "-p", "falsifiers.plugin",
                                            "--contracts-json=r.json"]


def test_every_option_is_spelt_as_the_plugin_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    command = pytest_command(["-x"], "r.json", profile="gpu", falsifiers=["FALSIFY-A-001", "FALSIFY-B-002"],
                             contracts=["a-v1", "b-v1"], artifact="model.apr", model_card=Path("card.md"),
                             mutants=True)
    assert command[5:] == [
        "-x", "--contracts-json=r.json", "--contracts-profile=gpu",
        "--falsifier=FALSIFY-A-001", "--falsifier=FALSIFY-B-002", "--contract=a-v1", "--contract=b-v1",
        # absolute: the child may run in another folder
        f"--artifact={tmp_path / 'model.apr'}", f"--model-card={tmp_path / 'card.md'}", "--mutants",
    ]


def test_an_empty_profile_and_absent_files_add_nothing(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "pytest", "-p", "falsifiers.plugin", "--contracts-json=r.json"]
    assert pytest_command([], "r.json", profile="", artifact=None, model_card=None, mutants=False) == base
    assert pytest_command([], "r.json", profile=None) == base
    absolute = tmp_path / "m.apr"
    assert pytest_command([], "r.json", artifact=absolute)[-1] == f"--artifact={absolute}"
    assert pytest_command([], "r.json", model_card=absolute)[-1] == f"--model-card={absolute}"


# --- --contracts-json in the user's args -------------------------------------------------------------


def test_the_users_receipt_option_is_taken_out_in_either_spelling() -> None:
    assert _split_receipt_option([]) == ([], None)
    assert _split_receipt_option(["-q", "tests"]) == (["-q", "tests"], None)
    assert _split_receipt_option(["-q", "--contracts-json=a.json", "-x"]) == (["-q", "-x"], "a.json")
    assert _split_receipt_option(["--contracts-json", "b.json", "-x"]) == (["-x"], "b.json")
    # a path with '=' in it keeps everything after the first '='
    assert _split_receipt_option(["--contracts-json=x=y.json"]) == ([], "x=y.json")
    # pytest keeps the last of two; so does the runner
    assert _split_receipt_option(["--contracts-json=a.json", "--contracts-json", "b.json"]) == ([], "b.json")
    assert _split_receipt_option(["--contracts-json", "b.json", "--contracts-json=a.json"]) == ([], "a.json")
    # a dangling option has no path: it is left for pytest to refuse
    assert _split_receipt_option(["-q", "--contracts-json"]) == (["-q", "--contracts-json"], None)
    # near misses are the user's own arguments
    assert _split_receipt_option(["--contracts-jsonx", "--contracts-profile=cpu", "--contracts-json-x=1"]) == (
        ["--contracts-jsonx", "--contracts-profile=cpu", "--contracts-json-x=1"], None)


# --- run_verify against a real child -----------------------------------------------------------------


def test_the_child_gets_the_command_the_folder_and_the_environment(child: Path, project: Path) -> None:
    output = io.StringIO()
    code, receipt = run_verify(["-q", "tests"], profile="cpu", falsifiers=["FALSIFY-A-001"], contracts=["a-v1"],
                               mutants=True, cwd=project, output=output)
    assert code == 0
    argv = receipt["argv"]
    path = Path(_receipt_arg(argv))
    # the receipt is this run's own, in a temporary folder that is gone afterwards
    assert path.name == "verdict.json" and path.parent.name.startswith("apr-verify-")
    assert not path.parent.exists()
    assert argv == pytest_command(["-q", "tests"], path, profile="cpu", falsifiers=["FALSIFY-A-001"],
                                  contracts=["a-v1"], mutants=True)[1:]
    assert receipt["cwd"] == os.fspath(project)
    assert receipt["table"] == "receipt"  # the child leaves the table to the caller
    assert receipt["inherited"] == "yes"  # the rest of the environment goes through
    assert receipt["existed"] is False


def test_the_artifact_and_card_reach_the_child_as_absolute_paths(child: Path, project: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    _, receipt = run_verify(artifact="m.apr", model_card="card.md", cwd=project, output=io.StringIO())
    assert receipt["argv"][-2:] == [f"--artifact={project / 'm.apr'}", f"--model-card={project / 'card.md'}"]


def test_the_childs_exit_status_is_returned_with_the_receipt(child: Path, project: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for status in (1, 2, 5):
        monkeypatch.setenv("FAKE_EXIT", str(status))
        code, receipt = run_verify(cwd=project, output=io.StringIO())
        assert code == status and receipt["cwd"] == os.fspath(project)


def test_the_current_folder_is_the_default(child: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    _, receipt = run_verify(output=io.StringIO())
    assert receipt["cwd"] == os.fspath(project)


def test_the_users_receipt_path_is_honoured_relative_to_the_project(child: Path, project: Path) -> None:
    stale = project / "mine.json"
    stale.write_text('{"verdict": "GO"}', encoding="utf-8")
    _, receipt = run_verify(["-q", "--contracts-json", "mine.json"], cwd=project, output=io.StringIO())
    assert receipt["argv"][4:] == ["-q", f"--contracts-json={stale}"]  # one receipt option, the user's path
    assert receipt["existed"] is False  # the old receipt was removed before the child started
    assert json.loads(stale.read_text(encoding="utf-8")) == receipt


def test_without_a_folder_the_users_path_is_relative_to_the_current_one(child: Path, project: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    _, receipt = run_verify(["--contracts-json=mine.json"], output=io.StringIO())
    assert _receipt_arg(receipt["argv"]) == "mine.json"
    assert json.loads((project / "mine.json").read_text(encoding="utf-8")) == receipt


def test_no_receipt_is_an_unknown_verdict_error_and_a_stale_one_never_stands(child: Path, project: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stale = project / "mine.json"
    stale.write_text('{"verdict": "GO"}', encoding="utf-8")
    monkeypatch.setenv("FAKE_NO_RECEIPT", "1")
    monkeypatch.setenv("FAKE_EXIT", "4")
    output = io.StringIO()
    with pytest.raises(VerifyError) as info:
        run_verify(["--contracts-json=mine.json"], cwd=project, output=output)
    assert not stale.exists()
    err = info.value
    assert str(err).startswith("pytest exited with status 4 before the contract harness reached a verdict")
    assert err.exit_code == 2 and err.code == "no-verdict"
    assert err.hint == ("read pytest's output above; a project needs a contracts folder ([tool.apr-contracts] "
                        'contracts = "contracts" in pyproject.toml) and at least one falsifier in scope')
    assert "child stdout" in output.getvalue()  # pytest's own output still reached the user
    with pytest.raises(VerifyError, match="status 4"):
        run_verify(cwd=project, output=io.StringIO())


# --- where pytest's own output goes ------------------------------------------------------------------


def test_a_captured_stream_gets_both_of_the_childs_streams(child: Path, project: Path) -> None:
    output = io.StringIO()
    output.write("before\n")
    run_verify(cwd=project, output=output)
    assert output.getvalue() == "before\nchild stdout\nchild stderr\n"


def test_a_real_file_gets_the_output_in_order_after_what_was_buffered(child: Path, project: Path,
                                                                      tmp_path: Path) -> None:
    with open(tmp_path / "log.txt", "w", encoding="utf-8") as sink:
        sink.write("before\n")  # buffered, not yet on disk: it must be flushed before the child writes
        run_verify(cwd=project, output=sink)
        sink.write("after\n")
    assert (tmp_path / "log.txt").read_text(encoding="utf-8") == "before\nchild stdout\nchild stderr\nafter\n"


def test_a_real_file_is_the_childs_own_output_with_the_same_child_settings(
        child: Path, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a descriptor, the child writes into the caller's file as it runs (a long run's progress
    shows at once), from the project folder, with the same environment and its own exit status."""
    log = tmp_path / "log.txt"
    monkeypatch.setenv("FAKE_SINK", os.fspath(log))
    monkeypatch.setenv("FAKE_EXIT", "1")
    with open(log, "w", encoding="utf-8") as sink:
        code, receipt = run_verify(["-q"], cwd=project, output=sink)
    assert code == 1
    assert receipt["streamed"] is True
    assert (receipt["cwd"], receipt["table"], receipt["inherited"]) == (os.fspath(project), "receipt", "yes")
    assert log.read_text(encoding="utf-8") == "child stdout\nchild stderr\n"


def test_a_captured_stream_gets_the_output_after_the_child_ended(child: Path, project: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log.txt"
    log.write_text("", encoding="utf-8")
    monkeypatch.setenv("FAKE_SINK", os.fspath(log))
    monkeypatch.setenv("FAKE_EXIT", "2")
    output = io.StringIO()
    code, receipt = run_verify(cwd=project, output=output)
    assert (code, receipt["streamed"]) == (2, False)
    assert output.getvalue() == "child stdout\nchild stderr\n"


class _NoFileno:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        raise AssertionError("a stream without a file descriptor is never flushed for the child")


class _FilenoRaises(_NoFileno):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def fileno(self) -> int:
        raise self.error


@pytest.mark.parametrize("make", [_NoFileno, lambda: _FilenoRaises(ValueError("closed")),
                                  lambda: _FilenoRaises(io.UnsupportedOperation("fileno")),
                                  lambda: _FilenoRaises(OSError("no fd"))],
                         ids=["no-fileno", "value-error", "unsupported", "os-error"])
def test_a_stream_without_a_descriptor_gets_a_copy(child: Path, project: Path, make: Any) -> None:
    sink = make()  # a new one per run: a test may run twice in one process (mutmut)
    run_verify(cwd=project, output=sink)
    assert "".join(sink.parts) == "child stdout\nchild stderr\n"


def test_the_default_output_is_this_processs_stderr(child: Path, project: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_verify(cwd=project)
    captured = capsys.readouterr()
    assert code == 0 and captured.out == ""
    assert "child stdout\nchild stderr\n" in captured.err


def test_the_receipt_is_read_as_utf8_under_an_ascii_locale(child: Path, project: Path) -> None:
    """The plugin writes the receipt in UTF-8 whatever the locale; under LC_ALL=C (CI images, cron)
    the runner must read it the same way, not in the locale's encoding."""
    import subprocess

    import falsifiers.runner

    _, receipt = run_verify(cwd=project, output=io.StringIO())  # in-process too, so mutmut sees it reached
    assert receipt["name"] == "Grüße ✓"
    package_root = Path(falsifiers.runner.__file__).resolve().parents[1]  # mutmut's copy under a mutant
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "ascii", "PYTHONPATH": os.fspath(package_root)}
    code = ("import json, locale, sys; print(locale.getpreferredencoding(False)); sys.executable = sys.argv[1]; "
            "from falsifiers.runner import run_verify; code, doc = run_verify(cwd=sys.argv[2]); "
            "print(json.dumps(doc['name']))")
    done = subprocess.run([PYTHON, "-c", code, os.fspath(child), os.fspath(project)], env=env, cwd=package_root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    encoding, name = done.stdout.splitlines()
    assert "utf" not in encoding.lower(), f"the child ran under {encoding}, not a non-UTF-8 locale"
    assert json.loads(name) == "Grüße ✓"

