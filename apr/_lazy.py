"""Package namespaces whose names load on first use (PEP 562).

A package ``__init__`` that imports all its submodules makes every ``import apr.pkg.small``
pay for the whole package: that is how ``apr stamp`` came to import numpy and the BPE builder
it never calls (issue 17). `lazy_names` gives a package ``__getattr__`` and ``__dir__`` that
import a name's home module when the name is first looked up; ``from apr.pkg import name``
and ``apr.pkg.name`` work as before, and type checkers read the ``TYPE_CHECKING`` imports the
package keeps beside the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, namespace: dict[str, Any],
               homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: name -> its submodule (relative to the package).

    Example:
        >>> get, names = lazy_names("json", {}, {"JSONDecoder": "decoder"})
        >>> get("JSONDecoder").__module__, names()
        ('json.decoder', ['JSONDecoder'])
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value  # later lookups find it without this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__


__all__ = ["lazy_names"]
