"""Faults for contract apr-cli-v1 (`apr contracts verify --mutants`): each is a way the CLI's
conventions used to be broken, or could plausibly break again."""

from __future__ import annotations

import argparse
from typing import Any


def envelope_ok_on_verdicts(command: str, payload: dict[str, Any] | None = None, *, input: Any = None,
                            exit_code: int = 0) -> dict[str, Any]:
    """``ok`` true for a NO-GO or a diff that found differences too (exit 1)."""
    document = {"schema": f"apr.{'.'.join(command.split())}/1", "command": command, "input": input,
                "ok": exit_code in (0, 1), "exit_code": exit_code}
    document.update(payload or {})
    return document


def bare_error(command: str, error: Any, *, input: Any = None) -> None:
    """The old error document: ``{"error": ...}`` with no envelope."""
    from apr.cli.output import emit_json

    emit_json({"error": error.to_dict()})


def no_suggestion(word: str, candidates: Any) -> None:
    """argparse's bare message: no did-you-mean."""
    return None


def format_from_flag_only(given: str | None, output: str) -> str:
    """The reproducer: `apr export m.apr -o m.gguf` wrote a safetensors folder named m.gguf."""
    return given or "safetensors"


def stdout_allowed(output: Any, *, flag: str = "-o") -> None:
    """``-`` accepted as a path: a file or folder named ``-`` gets created."""
    return None


def copy_nothing(path: str, sink: Any) -> None:
    """``-o -`` writes the temporary file and streams none of it."""
    return None


def top_level_only(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    """Completion that knows the command names and nothing below them."""
    from apr.cli.completion_cmd import CommandWords
    from apr.cli.usage import subcommand_parsers

    return {"": CommandWords(list(subcommand_parsers(parser)), ["--help", "--version"], {})}
