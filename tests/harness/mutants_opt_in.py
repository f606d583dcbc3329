"""Declared mutants for FALSIFY-HARNESS-018 (the opt-in entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def always_opted_in(inipath: Path | None, rootpath: Path, environ: Any = None) -> bool:
    """The harness is on in every project (the behaviour before issue 17)."""
    return True


def any_tool_table(pyproject: Path) -> bool:
    """Any pyproject.toml opts in, with or without [tool.apr-contracts]."""
    return True
