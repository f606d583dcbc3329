"""``-o -``: a command that writes one file streams it to standard output (issue 17, part 5).

A command opts in with ``stdout_output=(DEST, NAME)`` in its parser defaults: ``DEST`` is the
argument holding the output path, ``NAME`` the file name to write, or a function of the parsed
arguments that returns it (its suffix may decide the format, as `apr export` infers gguf from
``.gguf``) or raises `UsageError` when this invocation cannot stream (a folder export). Plain
values, so registering a command imports nothing; this module is imported only for ``-o -``. `main.dispatch` then runs the command unchanged on a
temporary file in a fresh private folder, with everything the command prints for people sent to
stderr, and copies the finished file to stdout: the command's own checks, its atomic write and
its refusals all apply, and only a complete file ever reaches the pipe. The folder is removed
whatever happens. Every other output refuses ``-`` (`apr.format.outputs.refuse_stdout`), so no
file named ``-`` is ever created.

``-o -`` with ``--json`` is a usage error: both would be standard output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from apr.format.outputs import STDOUT

# Copy in pieces of this size: a 1 GiB checkpoint never sits in memory.
CHUNK = 1 << 20

StreamName = str | Callable[[argparse.Namespace], str]


def streamed_output(args: argparse.Namespace) -> tuple[str, StreamName] | None:
    """``(DEST, name)`` when ``args`` asks this command to write its one file to stdout, else None.

    Raises:
        UsageError: ``-o -`` together with ``--json``.
    """
    declared = getattr(args, "stdout_output", None)
    if not declared or getattr(args, declared[0], None) != STDOUT:
        return None
    if getattr(args, "json", False):
        from apr.errors import UsageError

        raise UsageError("-o - and --json both write to standard output", field="--json",
                         hint="drop --json to stream the file, or write it to a path with -o FILE and keep --json")
    return declared


def run_streamed(args: argparse.Namespace, handler: Callable[[argparse.Namespace], int],
                 declared: tuple[str, StreamName], *, stdout: Any = None) -> int:
    """Run ``handler`` writing to a temporary file, then copy that file to ``stdout`` (binary).

    Nothing reaches ``stdout`` unless the command succeeded (exit 0); its messages for people go
    to stderr meanwhile. Returns the command's exit code.
    """
    dest, name = declared
    file_name = name if isinstance(name, str) else name(args)  # may refuse (UsageError) before any write
    sink = stdout if stdout is not None else sys.stdout
    folder = tempfile.mkdtemp(prefix="apr-stdout-")
    try:
        temporary = os.path.join(folder, file_name)
        setattr(args, dest, temporary)
        with contextlib.redirect_stdout(_Renaming(sys.stderr, temporary, "standard output")):
            code = handler(args)
        if code == 0:
            _copy(os.path.join(folder, file_name), sink)
        return code
    finally:
        setattr(args, dest, STDOUT)
        shutil.rmtree(folder, ignore_errors=True)


class _Renaming:
    """A text stream that writes through to ``stream``, showing ``old`` as ``new``: the command's
    messages name the temporary file it wrote, which the user never sees and which is deleted;
    they read "→ standard output" instead. Everything else (``isatty``, ``fileno``, ``encoding``,
    what rich asks of a stream) is the wrapped stream's."""

    def __init__(self, stream: Any, old: str, new: str) -> None:
        self._stream, self._old, self._new = stream, old, new

    def write(self, text: str) -> int:
        self._stream.write(text.replace(self._old, self._new))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _copy(path: str, sink: Any) -> None:
    sink.flush()
    target = getattr(sink, "buffer", sink)
    with open(path, "rb") as source:
        shutil.copyfileobj(source, target, CHUNK)
    target.flush()


__all__ = ["CHUNK", "run_streamed", "streamed_output"]
