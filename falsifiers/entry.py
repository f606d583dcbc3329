"""The ``pytest11`` entry point: turns the harness on only in a project that opts in.

Installing apr-contracts must not change a foreign pytest run (issue 17): a project with an
unrelated ``contracts/`` folder (Solidity, deploy YAML) used to get lint errors and exit 2, and
every project got the harness's options. This module is all an installed package adds to such a
run: one hook that reads the project's ``pyproject.toml`` and registers `falsifiers.plugin` (its
options, marker, verdict) only when

* that file has a ``[tool.apr-contracts]`` table, or
* ``APR_CONTRACTS=1`` is set in the environment, or
* the plugin was named explicitly (``-p falsifiers.plugin``; `apr contracts verify` does this).

``pytest_load_initial_conftests`` runs after pytest has found the rootdir and its ini file and
before it parses the command line for good, which is when a conftest may still add options.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

OPT_IN_ENV = "APR_CONTRACTS"
PLUGIN_NAME = "apr-contracts-harness"


def declares_harness(pyproject: Path) -> bool:
    """Whether ``pyproject`` has a ``[tool.apr-contracts]`` table (False for an unreadable file:
    pytest itself reports a broken ini file)."""
    try:
        with open(pyproject, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, ValueError):
        return False
    tool = document.get("tool")
    return isinstance(tool, dict) and "apr-contracts" in tool


def opted_in(inipath: Path | None, rootpath: Path, environ: Any = os.environ) -> bool:
    """The rule above, on the ini file pytest chose (or ``rootpath/pyproject.toml``)."""
    if environ.get(OPT_IN_ENV, "") not in ("", "0"):
        return True
    candidates = [inipath] if inipath is not None and inipath.name == "pyproject.toml" else []
    candidates.append(rootpath / "pyproject.toml")
    return any(path.is_file() and declares_harness(path) for path in candidates)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    manager = early_config.pluginmanager
    plugin = sys.modules.get("falsifiers.plugin")
    if plugin is not None and manager.is_registered(plugin):
        return  # named with -p: already on
    if opted_in(early_config.inipath, Path(early_config.rootpath)):
        from falsifiers import plugin as harness

        manager.register(harness, PLUGIN_NAME)
