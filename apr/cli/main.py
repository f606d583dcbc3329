"""`apr`: a thin command line over the library.

Each command lives in its own module under `apr.cli` and exposes ``register(subparsers)``, which
adds its parser and sets ``handler`` to a function ``(args) -> int``. Command modules import their
heavy libraries inside the handler, so `apr inspect` never pays for torch.

No traceback reaches a user: `main` runs everything (parsing aside) under the top-level guard
(`apr.cli.guard`, pip's base_command), which maps every exception to a documented exit code and
prints its message literally: an `AprError` exits with its own code; an OSError is a clear I/O
error (7, or 3 for a missing file); Ctrl-C is a cancellation (130); a closed stdout pipe is one
line on stderr; anything else is a bug, exit 70 with a bug-report hint (the traceback with ``-v``
or ``APR_DEBUG=1``), and with ``--json`` a JSON error document like every other failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from apr.cli import exit_codes

# Command modules, in pipeline order. A new command adds one line here.
COMMAND_MODULES: tuple[str, ...] = (
    "apr.cli.inspect_cmd",
    "apr.cli.validate_cmd",
    "apr.cli.demo_cmd",
    "apr.cli.tokenize_cmd",
    "apr.cli.pretrain_cmd",
    "apr.cli.stamp_cmd",
    "apr.cli.import_cmd",
    "apr.cli.export_cmd",
    "apr.cli.run_cmd",
    "apr.cli.qa_cmd",
    "apr.cli.readiness_cmd",
    "apr.cli.publish_cmd",
    "apr.cli.diff_cmd",
    "apr.cli.contracts_cmd",
    "apr.cli.completion_cmd",
)
# Commands a module registers beyond the one its name says (``<command>_cmd``).
_EXTRA_COMMANDS: dict[str, str] = {"card": "apr.cli.readiness_cmd"}


# The command line being parsed, for usage errors raised by a subcommand's parser (which does not
# see the words before its own): set by `main`.
_ARGV: list[str] = []
_ROOT: list[argparse.ArgumentParser] = []


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as a usage error (exit 64, EX_USAGE) with a did-you-mean and the
    command's help hint, as JSON on stdout under ``--json`` (`apr.cli.usage`)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from apr.cli.usage import command_parser, suggestion

        root = _ROOT[0] if _ROOT else self
        close = suggestion(message, root, _ARGV)
        text = f"{message} ({close})" if close else message
        # the root parser reports flags its subcommand did not take: show that command's usage
        shown = command_parser(root, _ARGV) if self is root else self
        hint = f"run `{shown.prog} --help` for the accepted flags"
        if "--json" in _ARGV:
            from apr.cli.output import emit_error
            from apr.cli.usage import command_name
            from apr.errors import UsageError

            emit_error(command_name(root, _ARGV), UsageError(text, hint=hint))
        else:
            shown.print_usage(sys.stderr)
            sys.stderr.write(f"error: {text}\n  fix: {hint}\n")
        raise SystemExit(exit_codes.EXIT_USAGE)


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata costs ~20 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            pkg_version = version("apr-contracts")
        except PackageNotFoundError:  # running from a source tree without install
            pkg_version = "0+unknown"
        sys.stdout.write(f"apr {pkg_version}\n")  # stdout, as argparse's own version action does
        parser.exit()


class _LazyRichHandler(logging.Handler):
    """Hands records to a rich `RichHandler` built on the first record: a command that logs
    nothing never imports rich.logging (~10 ms of start-up)."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self._verbosity = verbosity
        self._handler: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._handler is None:
            from rich.logging import RichHandler

            from apr.cli.output import err

            self._handler = RichHandler(console=err(), show_time=False, show_path=self._verbosity > 1)
        self._handler.handle(record)


def command_module(argv: Sequence[str] | None) -> str | None:
    """The module of the command ``argv`` names (its first word that is not a flag), if it names one.

    Example:
        >>> command_module(["-v", "inspect", "m.apr"]), command_module(["card", "m.apr"])
        ('apr.cli.inspect_cmd', 'apr.cli.readiness_cmd')
        >>> command_module(["inspekt"]) is None, command_module(["--help"]) is None
        (True, True)
    """
    word = next((a for a in argv or () if not a.startswith("-")), None)
    if word is None:
        return None
    module = _EXTRA_COMMANDS.get(word, f"apr.cli.{word}_cmd")
    return module if module in COMMAND_MODULES else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `apr` parser. Given the command line, only the command it names is built (its module
    imported and its flags added: about half of `apr inspect`'s start-up otherwise); every command
    when it names none or a word no command has (`--help`, the did-you-mean of a typo)."""
    parser = _Parser(prog="apr", description="APR v2 checkpoints under contract.")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = command_module(argv)
    for name in (wanted,) if wanted is not None else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _LazyRichHandler(verbosity)
    root = logging.getLogger("apr")
    root.handlers[:] = [handler]
    root.setLevel(level)
    falsifiers_logger = logging.getLogger("falsifiers")
    falsifiers_logger.handlers[:] = [handler]
    falsifiers_logger.setLevel(level)


def _refuse_interrupted_stamps(args: argparse.Namespace) -> None:
    """A command that reads a checkpoint refuses one whose in-place `apr stamp` was interrupted.

    Commands name the arguments that are checkpoints they read (``reads_checkpoints`` in their
    parser defaults); a trusted journal of such a file (beside the real file: the path is resolved,
    so a stamp through a symlink is seen from every path) means it may be half-written, and the
    error gives the `apr stamp FILE --recover` command; an untrusted one is only reported.
    `apr stamp` itself recovers, so it names none.
    """
    paths = [path for name in getattr(args, "reads_checkpoints", ()) if (path := getattr(args, name, None))]
    from apr.stamp.journal_site import any_journal_entry  # a few lstat calls, stdlib only

    for path in paths:
        if any_journal_entry(path):  # only then load the journal reader to judge the entry
            from apr.stamp.journal import require_no_pending_journal

            require_no_pending_journal(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `apr` command; return its exit code (usage errors exit 64 through SystemExit)."""
    from apr.cli.guard import exit_code_for
    from apr.cli.output import protect_streams

    protect_streams()
    args: argparse.Namespace | None = None
    try:
        _ARGV[:] = list(argv) if argv is not None else sys.argv[1:]
        _ROOT.clear()  # a parser left by an earlier call must not name this call's command
        parser = build_parser(_ARGV)
        _ROOT[:] = [parser]
        args = parser.parse_args(argv)
        _refuse_swallowed_value(parser, args)
        if not getattr(args, "handler", None):
            return _no_command(parser)
        return dispatch(args)
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - the guard; SystemExit (argparse) passes through
        from apr.cli.output import input_of
        from apr.cli.usage import command_name

        as_json = bool(getattr(args, "json", False)) if args is not None else "--json" in _ARGV
        command = command_name(_ROOT[0], _ARGV) if _ROOT else "apr"
        return exit_code_for(error, as_json=as_json, verbosity=getattr(args, "verbose", 0) or 0,
                             command=command, input=input_of(args))


def _refuse_swallowed_value(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (64) for a flag whose only value was ``--`` (see `apr.cli.usage.swallowed_value`)."""
    from apr.cli.usage import command_parser, swallowed_value

    command = command_parser(parser, _ARGV)
    flag = swallowed_value(command, args)
    if flag is not None:
        command.error(f"argument {flag}: expected one argument ('--' alone cannot be its value: "
                      "it means the end of the options)")


def _no_command(parser: argparse.ArgumentParser) -> int:
    """``apr`` alone (or with only ``-v``): the help on stderr and a usage error (64).

    ``apr --json`` never reaches here: ``--json`` is each command's flag, so the root parser refuses
    it first, as a JSON usage error (`_Parser.error`).
    """
    parser.print_help(sys.stderr)
    return exit_codes.EXIT_USAGE


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command without the guard: exceptions propagate (fuzz targets, debugging)."""
    _configure_logging(args.verbose)
    extras = getattr(args, "needs_extras", ())
    if extras:
        from apr.cli.extras import require_extras

        require_extras(args.command, extras)
    _refuse_interrupted_stamps(args)
    declared = getattr(args, "stdout_output", None)
    if declared and getattr(args, declared[0], None) == "-":  # `-o -`: the one file goes to stdout
        from apr.cli.stdout_output import run_streamed, streamed_output

        streamed = streamed_output(args)
        if streamed is not None:
            return int(run_streamed(args, args.handler, streamed))
    for dest, flag in _OUTPUT_ARGUMENTS:  # any other output spelled `-`: refused before any work
        if getattr(args, dest, None) == "-":
            from apr.format.outputs import refuse_stdout

            refuse_stdout("-", flag=flag)
    return int(args.handler(args))


# Arguments that name what a command writes; `-` there is standard output, which only the
# commands declaring ``stdout_output`` can write (apr.cli.stdout_output).
_OUTPUT_ARGUMENTS: tuple[tuple[str, str], ...] = (("output", "-o"), ("run_dir", "--run-dir"))


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
