"""Usage errors as users of conventional tools expect them (issue 17): a did-you-mean for a
mistyped flag or command, and JSON under ``--json``.

argparse (3.11) prints the top-level usage for ``apr inspect --qualty`` and nothing else, as text
even when the caller asked for JSON. `usage_error` keeps argparse's message and adds the closest
accepted spelling, computed with `difflib` over the options of the command the user named.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence

_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.+)$")
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser (``{"inspect": <parser>, ...}``); empty for a leaf parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag ``parser`` accepts (``-o``, ``--output``, ...)."""
    return [flag for action in parser._actions for flag in action.option_strings]


def command_parser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The innermost parser that ``argv``'s leading words name (``contracts verify`` -> its parser)."""
    return _walk(parser, argv)[0]


def _walk(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """Follow ``argv``'s leading command words (flags skipped) down the subparsers: the innermost
    parser and the words that led there."""
    words: list[str] = []
    for word in argv:
        if word.startswith("-"):
            continue
        child = subcommand_parsers(parser).get(word)
        if child is None:
            break
        words.append(word)
        parser = child
    return parser, words


def swallowed_value(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The flag whose one value argparse (3.11) dropped, if any: ``--data-source=--`` and
    ``--data-source --`` both reach the command as an empty list, since argparse removes a ``--``
    from an option's values (fixed in later Pythons). Without this check the command would see
    ``[]`` and fail far from the cause ("data_source must be a str, got list []").

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument("--data-source")
        >>> swallowed_value(p, p.parse_args(["--data-source=--"])), swallowed_value(p, p.parse_args([]))
        ('--data-source', None)
    """
    for action in parser._actions:
        if (action.option_strings and action.nargs is None and isinstance(action, argparse._StoreAction)
                and getattr(args, action.dest, None) == []):
            return max(action.option_strings, key=len)
    return None


def command_name(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The command ``argv``'s leading words name, as typed (``"contracts lint"``); ``"apr"`` for none.

    It names the JSON envelope of a usage error or a failure (``apr.contracts.lint/1``).

    Example:
        >>> root = argparse.ArgumentParser(prog="apr")
        >>> sub = root.add_subparsers().add_parser("contracts").add_subparsers()
        >>> _ = sub.add_parser("lint")
        >>> command_name(root, ["-v", "contracts", "lint", "x.yaml"]), command_name(root, ["inspct"])
        ('contracts lint', 'apr')
    """
    return " ".join(_walk(parser, argv)[1]) or "apr"


def suggestion(message: str, parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """``"did you mean --quality?"`` for argparse's ``message``, or None when nothing is close.

    Example:
        >>> p = argparse.ArgumentParser(prog="apr")
        >>> _ = p.add_argument("--quality", action="store_true")
        >>> suggestion("unrecognized arguments: --qualty", p, ["--qualty"])
        'did you mean --quality?'
    """
    unrecognized = _UNRECOGNIZED.search(message)
    if unrecognized:
        accepted = option_strings(command_parser(parser, argv))
        for word in unrecognized.group(1).split():
            flag = word.partition("=")[0]
            if flag.startswith("-"):
                close = _closest(flag, accepted)
                if close is not None:
                    return f"did you mean {close}?"
        return None
    invalid = _INVALID_CHOICE.search(message)
    if invalid:
        # the choices follow the last "choose from" (the mistyped word itself may contain those words)
        choices = re.findall(r"'([^']*)'", message.rpartition("choose from")[2])
        close = _closest(invalid.group(1), choices)
        if close is not None:
            return f"did you mean {close!r}?"
    return None


def _closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate most like ``word`` (difflib ratio at least 0.6), or None."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


__all__ = ["command_name", "command_parser", "option_strings", "subcommand_parsers", "suggestion"]
