"""FALSIFY-HARNESS-018: installed, the harness is silent and free until a project opts in (issue 17).

A foreign project's pytest run (here: a subprocess with the installed entry point replaced by
`falsifiers.entry` explicitly, which is what the ``pytest11`` entry point names) must give the same
output and exit code as without the package, even with a ``contracts/`` folder of unrelated YAML.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from falsifiers import entry
from falsifiers.entry import OPT_IN_ENV

ROOT = Path(__file__).resolve().parents[2]
TEST = "def test_one():\n    assert 1 + 1 == 2\n"


def _foreign(folder: Path, pyproject: str) -> Path:
    (folder / "contracts").mkdir()
    (folder / "contracts" / "deploy.yaml").write_text("name: deploy\nsteps: [build, ship]\n")
    (folder / "contracts" / "Token.sol").write_text("pragma solidity ^0.8.0;\n")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_one.py").write_text(TEST)
    (folder / "pyproject.toml").write_text(pyproject)
    return folder


def _pytest(folder: Path, *args: str, entry: bool = True) -> subprocess.CompletedProcess[str]:
    plugins = ["-p", "no:apr_contracts"] + (["-p", "falsifiers.entry"] if entry else [])
    env = {k: v for k, v in os.environ.items() if k != OPT_IN_ENV}  # a mutant (APR_CONTRACTS_MUTANT) reaches the child
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider",
                           *plugins, *args], cwd=folder, capture_output=True, text=True, timeout=300, env=env,
                          check=False)


def _timing_free(text: str) -> str:
    return "\n".join(line.split(" in ")[0] for line in text.splitlines())


@pytest.mark.falsifies("FALSIFY-HARNESS-018")
def test_a_foreign_project_sees_no_difference(tmp_path: Path) -> None:
    folder = _foreign(tmp_path, '[project]\nname = "foreign"\nversion = "0"\n')
    with_package, without = _pytest(folder), _pytest(folder, entry=False)
    assert (with_package.returncode, without.returncode) == (0, 0), with_package.stdout + with_package.stderr
    assert _timing_free(with_package.stdout) == _timing_free(without.stdout)
    assert with_package.stderr == without.stderr
    helped = _pytest(folder, "--help")
    assert "--contracts-json" not in helped.stdout and "falsifies(" not in _pytest(folder, "--markers").stdout


@pytest.mark.falsifies("FALSIFY-HARNESS-018")
def test_a_project_that_opts_in_gets_the_harness(tmp_path: Path) -> None:
    folder = _foreign(tmp_path, '[project]\nname = "p"\nversion = "0"\n\n[tool.apr-contracts]\n')
    done = _pytest(folder)
    assert done.returncode != 0 and "verdict:" in done.stdout + done.stderr  # its contracts/ is linted
    assert "--contracts-json" in _pytest(folder, "--help").stdout


@pytest.mark.falsifies("FALSIFY-HARNESS-018")
def test_the_environment_and_an_explicit_plugin_opt_in(tmp_path: Path, monkeypatch) -> None:
    folder = _foreign(tmp_path, '[project]\nname = "p"\nversion = "0"\n')
    assert "--contracts-json" in _pytest(folder, "-p", "falsifiers.plugin", "--help").stdout
    monkeypatch.setenv(OPT_IN_ENV, "1")
    assert entry.opted_in(None, folder)
    monkeypatch.setenv(OPT_IN_ENV, "0")
    assert not entry.opted_in(None, folder, os.environ)


_TABLES = st.sampled_from([
    ("[tool.apr-contracts]\n", True),
    ("[tool.apr-contracts]\nprofile = \"cpu\"\n", True),
    ("[tool.apr-contracts.profiles.cpu]\noptional-requires = []\n", True),
    ("[tool.apr_contracts]\n", False),  # near misses: another spelling, another tool, a project key
    ("[tool.apr-contract]\n", False),
    ("[tool.pytest.ini_options]\naddopts = \"-q\"\n", False),
    ("[project]\nname = \"apr-contracts\"\nversion = \"0\"\n", False),
    ("", False),
    ("[tool.apr-contracts\n", False),  # not TOML: pytest reports it; the harness stays off
])


@pytest.mark.falsifies("FALSIFY-HARNESS-018")
@given(table=_TABLES)
@example(table=("[tool.apr_contracts]\n", False))
def test_only_the_table_opts_in(tmp_path_factory, table: tuple[str, bool]) -> None:
    text, expected = table
    folder = tmp_path_factory.mktemp("p")
    (folder / "pyproject.toml").write_text(text)
    assert entry.declares_harness(folder / "pyproject.toml") is expected
    assert entry.opted_in(folder / "pyproject.toml", folder, environ={}) is expected
    assert entry.opted_in(None, folder, environ={}) is expected  # found at the rootdir too
    other = tmp_path_factory.mktemp("ini")
    (other / "pytest.ini").write_text("[pytest]\n")
    assert entry.opted_in(other / "pytest.ini", folder, environ={}) is expected  # ini elsewhere: rootdir decides
