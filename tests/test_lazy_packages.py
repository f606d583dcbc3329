"""Packages whose names load on first use (`apr._lazy`): the table is the package's interface."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["apr.format", "apr.tokenizer"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_loads_from_its_home(package: str) -> None:
    module = importlib.import_module(package)
    homes = module._HOME
    assert sorted(module.__all__) == sorted(homes)  # nothing exported that the table cannot load
    for name, home in homes.items():
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(f"{package}.{home}"), name)
    assert set(homes) <= set(dir(module))
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018 - the lookup is the test


def test_a_submodule_import_leaves_its_siblings_unloaded() -> None:
    """What `apr stamp` relies on: the record module without the BPE builder, a header without numpy."""
    probe = ("import sys\nimport apr.tokenizer.record, apr.format.header\n"
             "print(sorted(m for m in ('apr.tokenizer.build', 'apr.tokenizer.train', 'apr.format.reader', 'numpy')"
             " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr
