"""Where output goes: stdout carries the result, stderr is for people (typer, rich).

Commands build a result (a dict for ``--json``, rich renderables for people) and hand it here;
nothing else in the package prints.

Everything is printed literally. The consoles interpret no markup and no ``:emoji:`` codes, so a
path, a metadata value or a tensor name such as ``[/x]`` or ``model[v2].apr`` shows as it is (rich
markup in data used to crash or vanish). A line that styles text passes ``markup=True`` and runs
every piece of data through `escape`. Text that cannot be encoded (a lone surrogate from a JSON
``"\\ud800"`` escape) is written backslash-escaped: `protect_streams` sets that up for the process.

JSON (`emit_result`, `emit_error`): every ``--json`` document, success or failure, is one envelope
``{"schema": "apr.<command>/1", "command", "input", "ok", "exit_code", ...}`` (docs/json.md) that
validates against the command's JSON Schema shipped in ``apr/cli/schemas/`` (`apr.cli.schemas`).
Commands call `emit_result`; the guard and the usage-error path call `emit_error`, so a command
added later gets the same shape by calling the same function.

JSON text (`emit_json`): one document, UTF-8. A non-finite number (NaN, Infinity), which JSON cannot
hold, is written as ``null``, and a top-level ``"non_finite"`` object maps the JSON Pointer
(RFC 6901) of each such value to what it was (``{"/gates/4/value": "NaN"}``); a lone surrogate in a
string is written as its ``\\uXXXX`` escape, so the document always parses back.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

from apr.errors import AprError

# U+D800..U+DFFF cannot be encoded as UTF-8 on their own; JSON can carry them as \\uXXXX escapes.
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls other than tab and newline, DEL and C1 controls: shown as \\xNN so data cannot move
# the cursor, clear the screen or retitle the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NON_FINITE_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


# Width of results written to a pipe or file: rich would cut tables at 80 columns ("apr-arc…"),
# and what is piped is read by programs and pagers, not a terminal that wraps.
PIPE_WIDTH = 10_000


def _console(stderr: bool, width: int | None = None):  # rich is imported lazily: `apr --help` should not pay for it
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False, markup=False, emoji=False, width=width)


def out():
    """The console for results (stdout). Strings print literally unless ``markup=True`` is passed.

    Off a terminal (and without ``COLUMNS``) tables keep their full width instead of rich's 80
    columns: ``apr contracts list | less`` shows every name whole (issue 17).
    """
    import os

    stream = sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    return _console(stderr=False, width=PIPE_WIDTH if piped and not os.environ.get("COLUMNS") else None)


def err():
    """The console for progress, warnings and errors (stderr). Strings print literally."""
    return _console(stderr=True)


def escape(value: Any) -> str:
    """``str(value)`` made safe inside a ``markup=True`` line: brackets and backslashes escaped.

    Example:
        >>> escape("model[v2].apr [/x]")
        'model\\\\[v2].apr \\\\[/x]'
    """
    from rich.markup import escape as rich_escape

    return rich_escape(_printable(str(value)))


def _printable(text: str) -> str:
    """Control characters (ESC, CR, BEL...) as ``\\xNN``; lone surrogates as ``\\udXXX``."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def literal(value: Any, style: str | None = None):
    """A rich `Text` holding ``str(value)`` exactly (no markup, controls and surrogates escaped)."""
    from rich.text import Text

    return Text(_printable(str(value)), style=style or "")


def protect_streams() -> None:
    """Make stdout and stderr write what they cannot encode as backslash escapes, never raise.

    A lone surrogate in metadata (valid JSON: ``"\\ud800"``) crashed every text printer with
    UnicodeEncodeError; stdout's default error handler is ``strict`` (``surrogateescape`` in a C
    locale, which writes raw bytes that are not UTF-8).
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing will be written to it
                pass


def read_json_argument(path: str, flag: str, *, check: Callable[[Any], str | None] | None = None) -> Any:
    """Load the JSON file a flag names, with the project's errors (3 missing, 2 not usable).

    Args:
        path: the file.
        flag: the option that named it, quoted in every message.
        check: returns what is wrong with the document's shape, or None when it is usable.

    Raises:
        AprFileNotFoundError: no such file. AprIOError: it cannot be read. UsageError: not JSON,
            or ``check`` found a problem.
    """
    from apr.errors import AprFileNotFoundError, AprIOError, UsageError

    hint = f"pass a JSON file to {flag}"
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise AprFileNotFoundError(f"{flag}: file not found", path=path, hint="check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{flag} names a folder, not a JSON file", path=path, hint=hint) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise UsageError(f"{flag} is not a JSON file: {str(error)[:200]}", path=path, hint=hint) from None
    except OSError as error:
        raise AprIOError.from_os_error(error, path=path, action=f"read {flag}") from error
    problem = check(document) if check is not None else None
    if problem is not None:
        raise UsageError(f"{flag}: {problem}", path=path, hint=hint)
    return document


def previous_qa_report_problem(document: Any) -> str | None:
    """What makes ``document`` unusable as ``apr qa --previous-report`` (None when it is usable).

    It must be what ``apr qa FILE --json`` prints: an object whose ``gates`` is a list of objects,
    each with a string ``name`` and a ``value`` that is a finite number or null (the regression
    gate compares the ``throughput`` gate's value).
    """
    if not isinstance(document, dict):
        return f"expected the JSON object `apr qa FILE --json` prints, got {_json_type(document)}"
    gates = document.get("gates", [])
    if not isinstance(gates, list):
        return f"'gates' must be a list, got {_json_type(gates)}"
    for index, gate in enumerate(gates):
        if not isinstance(gate, dict):
            return f"gates[{index}] must be an object, got {_json_type(gate)}"
        name = gate.get("name")
        if name is not None and not isinstance(name, str):
            return f"gates[{index}].name must be a string, got {_json_type(name)}"
        value = gate.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return f"gates[{index}].value must be a finite number or null, got {_json_type(value)} {value!r}"[:200]
    return None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def json_text(document: Any) -> str:
    """The JSON text `emit_json` writes for ``document`` (pure; see the module docstring for the rules).

    Example:
        >>> json.loads(json_text({"gates": [{"name": "throughput", "value": float("nan")}]}))
        {'gates': [{'name': 'throughput', 'value': None}], 'non_finite': {'/gates/0/value': 'NaN'}}
    """
    clean, non_finite, depth = _finite_copy(document)
    if non_finite and isinstance(clean, dict):
        clean["non_finite"] = non_finite
    encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("_", "-")
    ascii_only = encoding not in ("utf-8", "utf8")
    limit = sys.getrecursionlimit()
    if depth + 200 > limit:  # metadata may nest ~1,000 deep (the reader's parser allows it)
        sys.setrecursionlimit(depth + 200)
    try:
        text = json.dumps(clean, indent=2, ensure_ascii=ascii_only, allow_nan=False, default=str)
    finally:
        sys.setrecursionlimit(limit)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _finite_copy(document: Any) -> tuple[Any, dict[str, str], int]:
    """A copy with every non-finite float replaced by None; their JSON Pointers; the nesting depth.

    Iterative (no recursion), so a deeply nested metadata value costs no Python stack. Tuples
    become lists and numpy scalars Python numbers, as JSON would write them.
    """
    non_finite: dict[str, str] = {}
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, str, int]] = [(document, holder, 0, "", 0)]
    deepest = 0
    while stack:
        value, parent, key, pointer, depth = stack.pop()
        deepest = max(deepest, depth)
        if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            non_finite[pointer] = _NON_FINITE_NAMES.get(repr(float(value)), repr(value))
            parent[key] = None
        elif isinstance(value, dict):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            children = []
            for item_key, item in value.items():
                name = item_key if isinstance(item_key, (str, int, float, bool)) or item_key is None else str(item_key)
                copy[name] = None  # keeps the key order; filled when popped
                token = str(name).replace("~", "~0").replace("/", "~1")
                children.append((item, copy, name, f"{pointer}/{token}", depth + 1))
            stack.extend(reversed(children))  # popped in document order
        elif isinstance(value, (list, tuple)):
            items: list[Any] = [None] * len(value)
            parent[key] = items
            stack.extend((value[index], items, index, f"{pointer}/{index}", depth + 1)
                         for index in reversed(range(len(value))))
        else:
            parent[key] = value
    return holder[0], non_finite, deepest


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout (non-finite numbers as null, see `json_text`)."""
    sys.stdout.write(json_text(document))
    sys.stdout.write("\n")
    sys.stdout.flush()


# The envelope's own keys, in the order they are written; a command's payload cannot redefine them.
ENVELOPE_KEYS: tuple[str, ...] = ("schema", "command", "input", "ok", "exit_code")
# The program itself: usage errors that name no command (`apr inspct`, `apr --json`).
PROGRAM = "apr"


def schema_name(command: str) -> str:
    """The ``schema`` value of ``command``'s documents: ``apr.<command>/1``, words joined by dots.

    Example:
        >>> schema_name("inspect"), schema_name("contracts lint"), schema_name("apr")
        ('apr.inspect/1', 'apr.contracts.lint/1', 'apr.apr/1')
    """
    return f"apr.{'.'.join(command.split())}/1"


def envelope(command: str, payload: dict[str, Any] | None = None, *, input: Any = None,
             exit_code: int = 0) -> dict[str, Any]:
    """The one JSON document shape (pure): the envelope keys first, then the command's payload.

    ``ok`` is ``exit_code == 0`` for every command (a NO-GO verdict or a diff that found
    differences is not ok), so a script needs no per-command rule to read it.

    Args:
        command: the command as typed (``"inspect"``, ``"contracts lint"``; ``"apr"`` for none).
        payload: the command's own keys; one of the envelope's keys there is a bug (ValueError)
            unless it holds the same value.
        input: the path the command read (a list for several, None for none).
        exit_code: the code the command exits with.

    Example:
        >>> envelope("card", {"bytes": 10}, input="m.apr")
        {'schema': 'apr.card/1', 'command': 'card', 'input': 'm.apr', 'ok': True, 'exit_code': 0, 'bytes': 10}
    """
    document: dict[str, Any] = {"schema": schema_name(command), "command": command, "input": input,
                                "ok": exit_code == 0, "exit_code": int(exit_code)}
    for key, value in (payload or {}).items():
        if key in document and document[key] != value:  # a bug in the command, not bad input
            raise ValueError(f"payload key {key!r} redefines the JSON envelope's ({value!r} != {document[key]!r})")
        document[key] = value
    return document


def emit_result(command: str, payload: dict[str, Any] | None = None, *, input: Any = None,
                exit_code: int = 0) -> int:
    """Write ``command``'s result as the JSON envelope on stdout; return ``exit_code``.

    Every command's ``--json`` output goes through here (``return emit_result(...)``).

    Example:
        >>> emit_result("card", {"bytes": 10}, input="m.apr")  # doctest: +ELLIPSIS
        {
          "schema": "apr.card/1",
        ...
        0
    """
    emit_json(envelope(command, payload, input=input, exit_code=exit_code))
    return exit_code


def json_names(document: dict[str, Any], **names: str) -> dict[str, Any]:
    """``document`` with keys renamed to the envelope's shared names (``path="output"``,
    ``file_size="bytes"``), in place of order: a library record keeps its field names, the JSON
    says the same thing the same way in every command (docs/json.md).

    Example:
        >>> json_names({"path": "m.gguf", "file_size": 10, "format": "gguf"}, path="output", file_size="bytes")
        {'output': 'm.gguf', 'bytes': 10, 'format': 'gguf'}
    """
    return {names.get(key, key): value for key, value in document.items()}


def emit_error(command: str, error: Any, *, input: Any = None) -> None:
    """Write ``error`` (anything with ``to_dict()`` and ``exit_code``) as ``command``'s envelope.

    The same envelope as a result, ``ok`` false, with an ``error`` object (code, type, message,
    path, offset, field, hint, exit_code) and nothing else: a script reads ``exit_code`` and
    ``error.message`` the same way for every command and every failure.
    """
    detail = error.to_dict()
    emit_json(envelope(command, {"error": detail}, input=input, exit_code=int(detail.get("exit_code", 1))))


def input_of(args: Any) -> Any:
    """The ``input`` of a parsed command line: the arguments its parser names in ``json_input``
    (defaults), else the first of ``file`` / ``source`` / ``dataset`` it has; None when it reads no path."""
    names = getattr(args, "json_input", None)
    if names:
        values = [getattr(args, name, None) for name in names]
        return values[0] if len(values) == 1 else values
    for name in ("file", "source", "dataset"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            return value
    return None


def render_error(error: AprError | Any, *, as_json: bool, command: str = PROGRAM, input: Any = None) -> None:
    """Show an error: ``command``'s JSON envelope on stdout with ``--json``, literal text on stderr.

    Works for any error with ``to_dict()`` (`AprError`, the harness's `ContractError`).
    """
    if as_json:
        emit_error(command, error, input=input)
        return
    lines = str(error).splitlines() or [type(error).__name__]
    console = err()
    head = literal("error:", style="bold red")
    head.append(" ")
    head.append_text(literal(lines[0]))
    console.print(head)
    for line in lines[1:]:
        console.print(literal(line))
