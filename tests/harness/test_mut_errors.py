"""The harness's deliberate errors (issue 23): their text, their ``--json`` object, and the exit
code and stable code each class carries (interface: `apr` exits with them, scripts read them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from falsifiers.errors import (
    ArtifactNotFoundError,
    ContractError,
    ContractIOError,
    ContractNameError,
    ContractNotFoundError,
    ScaffoldExistsError,
    SelectionError,
    SettingsError,
    VerifyError,
)


@pytest.mark.parametrize(("kwargs", "text"), [
    ({}, "it broke"),
    ({"path": "c.yaml"}, "c.yaml: it broke"),
    ({"path": Path("d") / "c.yaml", "line": 3}, "d/c.yaml:3: it broke"),
    ({"path": "c.yaml", "line": 3, "col": 9}, "c.yaml:3:9: it broke"),
    ({"path": "c.yaml", "line": 0, "col": 0}, "c.yaml:0:0: it broke"),
    ({"path": "c.yaml", "col": 9}, "c.yaml: it broke"),          # a column without a line says nothing
    ({"line": 3, "col": 9}, "it broke"),                          # a place needs a file
    ({"path": "", "line": 3}, "it broke"),
    ({"path": "c.yaml", "line": 3, "hint": "fix it"}, "c.yaml:3: it broke\n  fix: fix it"),
    ({"hint": "fix it"}, "it broke\n  fix: fix it"),
    ({"hint": ""}, "it broke"),
])
def test_an_error_reads_path_line_col_message_then_the_fix(kwargs: dict[str, object], text: str) -> None:
    error = ContractError("it broke", **kwargs)  # type: ignore[arg-type]
    assert str(error) == text
    assert error.message == "it broke"


def test_an_error_keeps_its_facts_and_gives_them_as_json() -> None:
    error = SettingsError("unknown key 'x'", path=Path("p") / "pyproject.toml", line=4, col=2, hint="did you mean 'y'?")
    assert (error.path, error.line, error.col, error.hint) == ("p/pyproject.toml", 4, 2, "did you mean 'y'?")
    assert error.to_dict() == {"code": "invalid-settings", "type": "SettingsError", "message": "unknown key 'x'",
                               "path": "p/pyproject.toml", "line": 4, "col": 2, "hint": "did you mean 'y'?",
                               "exit_code": 2}
    bare = ContractError("m")
    assert (bare.path, bare.line, bare.col, bare.hint) == (None, None, None, None)
    assert bare.to_dict() == {"code": "contract-error", "type": "ContractError", "message": "m", "path": None,
                              "line": None, "col": None, "hint": None, "exit_code": 1}


@pytest.mark.parametrize(("kind", "code", "exit_code", "builtin"), [
    (ContractError, "contract-error", 1, Exception),
    (ContractNotFoundError, "contract-not-found", 3, FileNotFoundError),
    (ArtifactNotFoundError, "artifact-not-found", 3, FileNotFoundError),
    (SettingsError, "invalid-settings", 2, ValueError),
    (SelectionError, "unknown-selection", 2, LookupError),
    (ContractNameError, "invalid-contract-name", 2, ValueError),
    (ScaffoldExistsError, "output-exists", 5, FileExistsError),
    (ContractIOError, "io-error", 7, OSError),
    (VerifyError, "no-verdict", 2, RuntimeError),
])
def test_each_error_has_its_code_exit_code_and_builtin(kind: type[ContractError], code: str, exit_code: int,
                                                        builtin: type[Exception]) -> None:
    error = kind("m", path="f")
    assert (error.code, error.exit_code) == (code, exit_code)
    assert isinstance(error, builtin) and isinstance(error, ContractError)
    assert error.to_dict()["code"] == code and error.to_dict()["exit_code"] == exit_code
    assert error.to_dict()["type"] == kind.__name__
    assert str(error) == "f: m"
