"""Faults for contract apr-contracts-diff-v1 (`apr contracts verify --mutants`)."""

from __future__ import annotations

from typing import Any


def no_mutants(falsifier: Any) -> dict[str, Any]:
    return {}


def never_weaker(old: Any, new: Any) -> list[str]:
    return []


def always_major_one(version: Any) -> int:
    return 1


def git_with_textconv(args: list[str], cwd: Any) -> bytes:
    import subprocess

    args = ["--textconv" if a == "--no-textconv" else a for a in args]
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout
