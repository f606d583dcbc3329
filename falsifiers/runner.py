"""``apr contracts verify``: run the suite under the plugin in a child pytest, read its receipt.

A child process, not ``pytest.main`` in this one: pytest's own output then goes to our stderr
(people) while our stdout carries only the verdict (data), a crash in a test cannot take the CLI
down, and the exit status is the one the plugin chose. The receipt is the only channel between the
two, so ``verify --json`` prints exactly what ``pytest --contracts-json`` writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from falsifiers.errors import VerifyError

# Set for the child pytest of `run_verify`: its plugin leaves the verdict table to the caller, which
# renders it from the receipt (the table used to be printed twice: issue 17).
TABLE_ENV = "APR_CONTRACTS_TABLE"


def pytest_command(
    pytest_args: Sequence[str],
    receipt: str | os.PathLike[str],
    *,
    profile: str | None = None,
    falsifiers: Sequence[str] = (),
    contracts: Sequence[str] = (),
    artifact: str | os.PathLike[str] | None = None,
    model_card: str | os.PathLike[str] | None = None,
    mutants: bool = False,
) -> list[str]:
    """The child command line: this interpreter's pytest, the plugin's options, the user's args."""
    # named explicitly: the harness is on whether or not the project's pyproject.toml opts in
    # (falsifiers.entry) and whether or not entry points are loaded (PYTEST_DISABLE_PLUGIN_AUTOLOAD)
    command = [sys.executable, "-m", "pytest", "-p", "falsifiers.plugin"]
    command += list(pytest_args)
    command.append(f"--contracts-json={os.fspath(receipt)}")
    if profile:
        command.append(f"--contracts-profile={profile}")
    command += [f"--falsifier={ident}" for ident in falsifiers]
    command += [f"--contract={name}" for name in contracts]
    if artifact is not None:  # absolute: the child may run in another folder
        command.append(f"--artifact={os.path.abspath(os.fspath(artifact))}")
    if model_card is not None:
        command.append(f"--model-card={os.path.abspath(os.fspath(model_card))}")
    if mutants:
        command.append("--mutants")
    return command


def run_verify(
    pytest_args: Sequence[str] = (),
    *,
    profile: str | None = None,
    falsifiers: Sequence[str] = (),
    contracts: Sequence[str] = (),
    artifact: str | os.PathLike[str] | None = None,
    model_card: str | os.PathLike[str] | None = None,
    mutants: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    output: IO[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the suite and return (exit code, receipt).

    Args:
        pytest_args: passed to pytest as they are (paths, ``-n auto``, ``-k``...).
        profile: the verdict profile (default: pyproject's).
        falsifiers / contracts: narrow the run, as ``--falsifier`` / ``--contract`` do.
        artifact / model_card: verify that file (``--artifact``): only the artifact-level
            falsifiers run, and the receipt records the file's sha256.
        mutants: after the verdict, run every declared mutant (``--mutants``).
        cwd: the project folder (default: the current one).
        output: where pytest's own output goes (default: this process's stderr).

    Raises:
        VerifyError: pytest ended before the harness wrote a verdict (a usage error, a crash, or a
            project without a contracts folder).
    """
    sink = output if output is not None else sys.stderr
    pytest_args, kept = _split_receipt_option(pytest_args)
    with tempfile.TemporaryDirectory(prefix="apr-verify-") as folder:
        # The user's own --contracts-json PATH is honoured (pytest would keep only the last of two).
        receipt_path = Path(cwd or ".", kept) if kept else Path(folder) / "verdict.json"
        receipt_path.unlink(missing_ok=True)  # an old receipt must never pass for this run's
        command = pytest_command(pytest_args, receipt_path, profile=profile, falsifiers=falsifiers,
                                 contracts=contracts, artifact=artifact, model_card=model_card,
                                 mutants=mutants)
        # the table is rendered once, by the caller from the receipt, not also by the child pytest
        env = {**os.environ, TABLE_ENV: "receipt"}
        try:
            fileno = sink.fileno()
        except (AttributeError, OSError, ValueError):
            fileno = None
        if fileno is not None:
            sink.flush()
            process = subprocess.run(command, cwd=cwd, stdout=fileno, stderr=subprocess.STDOUT, text=True, check=False,
                                     env=env)
        else:  # a captured stream (tests): copy the output over
            process = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, check=False, env=env)
            sink.write(process.stdout)
        if not receipt_path.is_file():
            raise VerifyError(
                f"pytest exited with status {process.returncode} before the contract harness reached a verdict",
                hint="read pytest's output above; a project needs a contracts folder "
                "([tool.apr-contracts] contracts = \"contracts\" in pyproject.toml) and at least one falsifier "
                "in scope",
            )
        document = json.loads(receipt_path.read_text(encoding="utf-8"))
    return process.returncode, document


def _split_receipt_option(pytest_args: Sequence[str]) -> tuple[list[str], str | None]:
    """``pytest_args`` without ``--contracts-json[=]PATH``, and that PATH (the last one given)."""
    rest: list[str] = []
    path: str | None = None
    args = iter(pytest_args)  # a for loop over an iterator: no index arithmetic that could loop for ever
    for arg in args:
        if arg.startswith("--contracts-json="):
            path = arg.split("=", 1)[1]
        elif arg == "--contracts-json":
            value = next(args, None)
            if value is None:  # a dangling option: left for pytest to refuse
                rest.append(arg)
            else:
                path = value
        else:
            rest.append(arg)
    return rest, path


__all__ = ["TABLE_ENV", "pytest_command", "run_verify"]
