"""Helpers for the harness's own tests: isolated pytest projects with their own contracts.

Nothing here reads the repository's `contracts/` folder: each test builds a project in pytester's
temporary directory (pyproject.toml, contracts/, tests/) and runs pytest inside it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"

PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--strict-markers -p no:cacheprovider -p no:randomly"

[tool.apr-contracts]
contracts = "contracts"
{extra}
"""


def contract_yaml(
    prefix: str,
    falsifiers: list[dict[str, Any]] | None = None,
    *,
    version: str = "1.0.0",
    status: str = "FUNCTIONAL",
    depends_on: tuple[str, ...] = (),
) -> str:
    """A valid contract: one invariant per falsifier, ids INV-<PREFIX>-NNN / FALSIFY-<PREFIX>-NNN."""
    falsifiers = falsifiers if falsifiers is not None else [{}]
    lines = [
        "# yaml-language-server: $schema=schema/contract.schema.json",
        "metadata:",
        f"  version: {version}",
        f"  status: {status}",
        f'  description: "contract {prefix}"',
        f"  depends_on: [{', '.join(depends_on)}]",
        "  changelog:",
        f'    - {{version: {version}, date: "2026-11-26", changes: "first"}}',
        "invariants:",
    ]
    for n in range(1, len(falsifiers) + 1):
        lines += [f"  - id: INV-{prefix}-{n:03d}", f'    statement: "promise {n}"']
    lines.append("falsification_tests:")
    for n, extra in enumerate(falsifiers, start=1):
        lines += [
            f"  - id: FALSIFY-{prefix}-{n:03d}",
            f"    invariant: INV-{prefix}-{n:03d}",
            '    rule: "r"',
            '    prediction: "p"',
            '    if_fails: "f"',
        ]
        for key, value in extra.items():
            lines.append(f"    {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class Project:
    """A pytest project under pytester, with helpers to add contracts and tests and read verdicts."""

    def __init__(self, pytester: pytest.Pytester, extra_settings: str = "") -> None:
        self.pytester = pytester
        self.root = pytester.path
        (self.root / "pyproject.toml").write_text(PYPROJECT.format(extra=extra_settings))
        (self.root / "contracts").mkdir()
        (self.root / "tests").mkdir()

    def contract(self, name: str, text: str) -> Path:
        path = self.root / "contracts" / f"{name}.yaml"
        path.write_text(text)
        return path

    def test(self, name: str, source: str) -> Path:
        path = self.root / "tests" / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return path

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*args)

    def run_subprocess(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*args)

    def receipt(self, name: str = "verdict.json") -> dict[str, Any]:
        return json.loads((self.root / name).read_text())

    def outcomes(self, name: str = "verdict.json") -> dict[str, str]:
        return {f["id"]: f["outcome"] for f in self.receipt(name)["falsifiers"]}


PASSING_TEST = """
import pytest

@pytest.mark.falsifies("FALSIFY-{prefix}-001")
def test_falsify_{lower}_001():
    assert 1 + 1 == 2
"""


def passing_test(prefix: str) -> str:
    return PASSING_TEST.format(prefix=prefix, lower=prefix.lower().replace("-", "_"))
