"""Every error the `falsifiers` package raises on purpose, in one place (huggingface_hub's errors).

Lint never raises for a bad contract: it returns `Finding` records, so one bad file cannot hide the
others. These exceptions are for callers' mistakes and for commands that cannot go on (a path that
does not exist, a settings table with a typo, a scaffold that would overwrite a file).

Each class refines a builtin, so ``except FileNotFoundError`` in caller code keeps working, carries
a stable kebab-case ``code`` and the exit code the `apr` CLI uses for it, and keeps its facts as
attributes (``path``, ``line``, ``col``, ``hint``) so the CLI renders text or JSON the same way.

Example::

    >>> err = ContractNotFoundError("no contract, invariant or falsifier 'FALSIFY-X-01'",
    ...                             hint="did you mean 'FALSIFY-X-001'?")
    >>> str(err)
    "no contract, invariant or falsifier 'FALSIFY-X-01'\\n  fix: did you mean 'FALSIFY-X-001'?"
"""

from __future__ import annotations

import os
from typing import Any

# Exit codes shared with `apr` (apr/errors.py, aprender's apr-cli table). Duplicated as plain
# numbers because `falsifiers` must not import `apr`: the harness works in any project.
_EXIT_GENERIC = 1
_EXIT_USAGE = 2
_EXIT_NOT_FOUND = 3
_EXIT_VALIDATION = 5
_EXIT_IO = 7


class ContractError(Exception):
    """Root of every deliberate failure in `falsifiers`.

    Args:
        message: what is wrong, in one line.
        path: the file concerned, if any.
        line: 1-based line in that file, if known.
        col: 1-based column, if known.
        hint: how to fix it, ideally a command to paste.
    """

    code: str = "contract-error"
    exit_code: int = _EXIT_GENERIC

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.col = col
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as the ``error`` object of a ``--json`` document."""
        return {
            "code": self.code,
            "type": type(self).__name__,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


# --- finding contracts --------------------------------------------------------------------------


class ContractNotFoundError(ContractError, FileNotFoundError):
    """A path, contract name, invariant or falsifier id does not exist; the hint names the nearest."""

    code = "contract-not-found"
    exit_code = _EXIT_NOT_FOUND


# --- settings and usage -------------------------------------------------------------------------


class ArtifactNotFoundError(ContractError, FileNotFoundError):
    """``--artifact FILE`` or ``--model-card FILE`` names no regular file."""

    code = "artifact-not-found"
    exit_code = _EXIT_NOT_FOUND


class SettingsError(ContractError, ValueError):
    """``[tool.apr-contracts]`` in pyproject.toml is malformed (unknown key, wrong type, bad profile)."""

    code = "invalid-settings"
    exit_code = _EXIT_USAGE


class SelectionError(ContractError, LookupError):
    """``--falsifier``/``--contract`` names something no contract declares."""

    code = "unknown-selection"
    exit_code = _EXIT_USAGE


class ContractNameError(ContractError, ValueError):
    """A new contract name is not a valid file stem (``apr contracts new NAME``)."""

    code = "invalid-contract-name"
    exit_code = _EXIT_USAGE


# --- writing ------------------------------------------------------------------------------------


class ScaffoldExistsError(ContractError, FileExistsError):
    """``apr contracts new`` would overwrite a file, or reuse an id; nothing was written."""

    code = "output-exists"
    exit_code = _EXIT_VALIDATION


class ContractIOError(ContractError, OSError):
    """The operating system refused a read or write (permissions, disk full)."""

    code = "io-error"
    exit_code = _EXIT_IO


# --- running ------------------------------------------------------------------------------------


class VerifyError(ContractError, RuntimeError):
    """``apr contracts verify`` could not reach a verdict (pytest stopped before the plugin wrote one)."""

    code = "no-verdict"
    exit_code = 2  # UNKNOWN: no evidence either way


__all__ = [
    "ArtifactNotFoundError",
    "ContractError",
    "ContractIOError",
    "ContractNameError",
    "ContractNotFoundError",
    "ScaffoldExistsError",
    "SelectionError",
    "SettingsError",
    "VerifyError",
]
