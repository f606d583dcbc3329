"""The package's doctests run in CI (issue 18, part 3): an example in a docstring is a test.

Every module of `apr` and `falsifiers` is imported and its examples run (``+SKIP`` ones are
documentation of what needs a real file). A module that cannot be imported fails here too,
except one listed in `OPTIONAL` while its extra is not installed (then it is skipped, saying so).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules that exist only for an optional extra: module -> the distribution it imports at the top.
OPTIONAL = {"apr.convert.quant_k_numba": "numba", "apr.convert.blocks_numba": "numba"}  # extra [fast]


def _modules() -> list[str]:
    names = []
    for package in ("apr", "falsifiers"):
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_doctests_pass(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name} needs {OPTIONAL[name]} (an optional extra)")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} doctest examples failed"
