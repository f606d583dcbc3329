"""Where output goes: stdout carries the result, stderr is for people (typer, rich).

Commands build a result (a dict for ``--json``, rich renderables for people) and hand it here;
nothing else in the package prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from apr.errors import AprError


def _console(stderr: bool):  # rich is imported lazily: `apr --help` should not pay for it
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def out():
    """The console for results (stdout)."""
    return _console(stderr=False)


def err():
    """The console for progress, warnings and errors (stderr)."""
    return _console(stderr=True)


def read_json_argument(path: str, flag: str) -> Any:
    """Load the JSON file a flag names, with the project's errors (3 missing, 2 not JSON)."""
    from apr.errors import AprFileNotFoundError, UsageError

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AprFileNotFoundError(f"{flag}: file not found", path=path, hint="check the path") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"{flag} is not a JSON file: {error}", path=path) from None


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=str))
    sys.stdout.write("\n")
    sys.stdout.flush()


def render_error(error: AprError, *, as_json: bool) -> None:
    """Show an `AprError`: a JSON ``error`` document on stdout with ``--json``, text on stderr."""
    if as_json:
        emit_json({"error": error.to_dict()})
        return
    lines = str(error).splitlines()
    console = err()
    console.print(f"[bold red]error:[/] {lines[0]}", markup=True, highlight=False)
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False)
