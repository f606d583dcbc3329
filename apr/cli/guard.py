"""The top-level guard: every exception that leaves a command becomes a documented exit code.

One place maps exceptions to exit codes (pip's ``base_command``):

* an `AprError` (or the harness's `ContractError`) prints its three-part message and exits with
  its own code;
* an ``OSError`` no module wrapped is still the operating system speaking: a missing file is
  `AprFileNotFoundError` (3), anything else `AprIOError` (7) with what, where and a fix by errno;
* Ctrl-C is a cancellation (130); a closed stdout pipe (``apr inspect --json | head``) is one line;
* anything else is a bug in `apr`: `InternalError`, exit 70 (``exit_codes.INTERNAL_ERROR``), with
  a bug-report hint. Its traceback is printed only with ``-v`` or ``APR_DEBUG=1``; CI logs are kept
  and a traceback is noise to a user (typer's reasoning).

The message is printed literally (`apr.cli.output.render_error`), and under ``--json`` every
failure, the internal error included, is one JSON ``error`` document on stdout. Rendering never
raises: if even that fails, one ASCII line goes to file descriptor 2.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from apr.cli import exit_codes
from apr.errors import AprError, AprFileNotFoundError, AprIOError, InternalError

_DEBUG_VALUES = frozenset({"1", "true", "yes", "on"})
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../apr
# Frames in these folders locate a bug for the report (the harness's code is ours too).
_OUR_ROOTS = (_PACKAGE_ROOT + os.sep, os.path.join(os.path.dirname(_PACKAGE_ROOT), "falsifiers") + os.sep)


def debug_requested(verbosity: int = 0) -> bool:
    """``-v`` on the command line, or ``APR_DEBUG=1`` in the environment."""
    return verbosity > 0 or os.environ.get("APR_DEBUG", "").strip().lower() in _DEBUG_VALUES


def as_documented_error(error: BaseException) -> Any | None:
    """The documented error ``error`` stands for (an `AprError` or `ContractError`), or None for a bug.

    Example:
        >>> import errno
        >>> as_documented_error(OSError(errno.EROFS, "Read-only file system", "out.apr")).exit_code
        7
        >>> as_documented_error(KeyError("architecture")) is None
        True
    """
    if isinstance(error, AprError):
        return error
    contract_errors = sys.modules.get("falsifiers.errors")  # not loaded: it cannot be one
    if contract_errors is not None and isinstance(error, contract_errors.ContractError):
        return error
    if isinstance(error, FileNotFoundError):
        where = os.fsdecode(error.filename) if isinstance(error.filename, (str, bytes)) else None
        return AprFileNotFoundError("file not found", path=where, hint="check the path")
    if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
        return AprIOError.from_os_error(error)
    return None


def internal_error(error: BaseException) -> InternalError:
    """The `InternalError` for a bug: the exception's type, its message and where in `apr` it rose."""
    location = _innermost_package_frame(error)
    try:
        detail = str(error).strip().splitlines()
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails is still reported
        detail = ["<message unavailable>"]
    text = f"{type(error).__name__}: {detail[0][:300]}" if detail else type(error).__name__
    where = f" (at {location})" if location else ""
    return InternalError(
        f"internal error: {text}{where}",
        exception=type(error).__name__,
        location=location,
        hint="this is a bug in apr, not a problem with your input. Please report it with the command you "
             "ran, the output of `apr --version` and the traceback (rerun with -v, or with APR_DEBUG=1 "
             "in the environment, to print it)",
    )


def _innermost_package_frame(error: BaseException) -> str | None:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if os.path.abspath(f.filename).startswith(_OUR_ROOTS)]
    if not ours:
        return None
    frame = ours[-1]
    relative = os.path.relpath(os.path.abspath(frame.filename), os.path.dirname(_PACKAGE_ROOT))
    return f"{relative}:{frame.lineno}"


def exit_code_for(error: BaseException, *, as_json: bool, verbosity: int = 0, command: str = "apr",
                  input: Any = None) -> int:
    """Report ``error`` the documented way and return the exit code (never raises).

    Args:
        error: what left the command (not SystemExit: argparse's own exits pass through).
        as_json: the command was given ``--json``: the error is a JSON document on stdout.
        verbosity: the ``-v`` count; with it (or ``APR_DEBUG=1``) an internal error's traceback
            goes to stderr as well.
        command: the command as typed (``"contracts lint"``), naming the JSON envelope.
        input: the path(s) the command read, for the JSON envelope.
    """
    if isinstance(error, KeyboardInterrupt):
        _write_stderr("cancelled by user\n")
        return exit_codes.INTERRUPTED
    if isinstance(error, BrokenPipeError):
        _silence_stdout()
        _write_stderr("apr: output pipe closed\n")
        return exit_codes.EXIT_IO
    try:
        documented = as_documented_error(error)
    except Exception:  # noqa: BLE001 - mapping must not fail; what failed to map is a bug
        documented = None
    if documented is None:
        documented = internal_error(error)
        if debug_requested(verbosity):
            _write_stderr("".join(traceback.format_exception(error)))
    try:
        from apr.cli.output import render_error

        render_error(documented, as_json=as_json, command=command, input=input)
    except BrokenPipeError:
        _silence_stdout()
    except Exception:  # noqa: BLE001 - the last resort: one line the terminal can always show
        _write_stderr(f"error: {str(documented)!a}\n")
    return int(getattr(documented, "exit_code", exit_codes.INTERNAL_ERROR))


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr itself is gone or cannot encode: write bytes
        try:
            os.write(2, text.encode("ascii", "backslashreplace"))
        except OSError:
            pass


def _silence_stdout() -> None:
    """After the reader of stdout went away, point it at /dev/null so the final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests): nothing to do
        pass
