"""The third-party packages `apr inspect`, `validate` and `stamp -o` import (issue 17).

A command pays at start-up for every package it imports: ``ml_dtypes`` alone cost about a second
(0.7.0) and every command paid it. The list below is pinned so that a new heavy import at start-up
is a visible decision (a change to this list in review), not an accident. Measured in a fresh
interpreter per command, because this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apr.format import save_file

PINNED = {
    "inspect": ["rich"],  # header, metadata and index only: numpy (~60 ms) loads with the first tensor read
    "validate": ["numpy", "rich"],  # it reads every tensor's values (NaN/Inf, all-zero checks)
    "stamp": ["rich"],  # the data section is copied by the kernel, never decoded
}
# Never at start-up of these commands: each costs 0.2-1.5 s to import and none is needed.
HEAVY = {"ml_dtypes", "torch", "safetensors", "gguf", "tokenizers", "transformers", "yaml", "jsonschema",
         "huggingface_hub", "hypothesis", "jinja2"}

_PROBE = r"""
import json, sys
from apr.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
skip = set(sys.stdlib_module_names) | {"apr", "__main__", "_distutils_hack", "sitecustomize"}
names = {m.split(".")[0] for m in sys.modules}
print(json.dumps(sorted(n for n in names - skip if not n.startswith("_"))), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "m.apr"
    save_file({"w": np.zeros((4, 4), np.float32)}, path, {"name": "m", "architecture": "llama"})
    return path


def _third_party_imports(argv: list[str], cwd: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("command", sorted(PINNED))
def test_start_up_imports_are_the_pinned_list(command: str, checkpoint: Path) -> None:
    argv = {"inspect": ["inspect", str(checkpoint)], "validate": ["validate", str(checkpoint)],
            "stamp": ["stamp", str(checkpoint), "-o", str(checkpoint.with_name("s.apr")), "--name", "x", "-f"]}[command]
    imported = [name for name in _third_party_imports(argv, checkpoint.parent)
                if not name.startswith("editable") and "editable" not in name]
    assert not HEAVY & set(imported), f"apr {command} imports {sorted(HEAVY & set(imported))} at start-up"
    assert imported == PINNED[command], (
        f"apr {command} now imports {imported}; if that is intended, update PINNED (and say why in review)")


def test_version_is_looked_up_only_when_asked(tmp_path: Path) -> None:
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "apr.cli.main", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, f"apr {version('apr-contracts')}\n")


def test_a_warning_still_reaches_stderr_through_the_lazy_handler(tmp_path: Path) -> None:
    probe = ("import logging, sys\nfrom apr.cli.main import _configure_logging\n_configure_logging(0)\n"
             "assert 'rich.logging' not in sys.modules\nlogging.getLogger('apr.x').info('hidden')\n"
             "logging.getLogger('apr.x').warning('disk [b]nearly[/b] full')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING" in done.stderr and "disk [b]nearly[/b] full" in done.stderr and "hidden" not in done.stderr


@pytest.mark.parametrize(("argv", "module"), [
    (["inspect", "m.apr"], "apr.cli.inspect_cmd"), (["-v", "stamp", "m.apr"], "apr.cli.stamp_cmd"),
    (["card", "m.apr"], "apr.cli.readiness_cmd"), (["contracts", "lint"], "apr.cli.contracts_cmd"),
])
def test_a_command_builds_only_its_own_parser(argv: list[str], module: str) -> None:
    """The other commands' modules are neither imported nor parsed: ~half of inspect's start-up."""
    from apr.cli.main import COMMAND_MODULES, build_parser, command_module

    assert command_module(argv) == module
    subparsers = next(a for a in build_parser(argv)._actions if a.dest == "command")
    names = set(subparsers.choices)
    assert argv[argv[0] == "-v"] in names and names <= {"readiness", "card"} | {argv[argv[0] == "-v"]}
    assert set(next(a for a in build_parser()._actions if a.dest == "command").choices) >= {
        m.removeprefix("apr.cli.").removesuffix("_cmd") for m in COMMAND_MODULES}


@pytest.mark.parametrize("argv", [["inspekt", "m.apr"], ["--help"], [], ["-v"]])
def test_no_command_or_a_typo_builds_every_command(argv: list[str]) -> None:
    from apr.cli.main import COMMAND_MODULES, build_parser, command_module

    assert command_module(argv) is None
    names = set(next(a for a in build_parser(argv)._actions if a.dest == "command").choices)
    assert len(names) == len(COMMAND_MODULES) + 1  # `card` lives beside `readiness`


def test_a_mistyped_command_still_gets_its_did_you_mean(capsys) -> None:
    from apr.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["inspekt", "m.apr"])
    assert exited.value.code == 64 and "inspect" in capsys.readouterr().err
