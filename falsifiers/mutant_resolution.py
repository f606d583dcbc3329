"""A mutant's ``target`` and ``replacement`` to the project's own objects, and nothing else.

A contract is data: nothing read from it may run code the project did not write. A mutant's names
are therefore checked twice. The first segment must be one of the project's packages
(`ALLOWED_NAMESPACES`); that alone let ``apr.format.atomic.os.system`` through, which walks into the
standard library's ``os`` (imported by ``apr.format.atomic``) and patched ``os.system`` for the whole
process. So resolution also checks **every step**:

* only the project's modules are imported (the longest importable prefix of the dotted name, whose
  first segment was checked), and a module that is not the project's is refused even if a project
  module holds it (``apr.format.atomic.os``, or a ``sys.modules`` alias);
* every object the path walks *through* (each owner of the next name) must be defined in the
  project: one of its modules, a class or function whose ``__module__`` is one of its modules, or
  an instance of such a class. A foreign module, class, function or a plain container is refused;
* a target's last name is only rebound on that project owner (its old value is kept and put back,
  never called or patched into), so it may hold anything: ``apr.train.loop.math`` rebinds the name
  ``math`` in ``apr.train.loop`` and leaves the ``math`` module alone;
* a replacement's value is what gets patched in, so it must be the project's own: a module, class
  or function defined in the project, an instance of a project class, or plain data (numbers,
  strings, tuples, lists, dicts, sets) whose items are such values, checked recursively.

Nothing else is evaluated: names are looked up with ``getattr`` on those project objects only.
`mutant_problem` says what is wrong without raising (lint and the ``--mutants`` planner use it);
`resolve_target` and `resolve_replacement` raise `SelectionError` with the same text.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from falsifiers.errors import SelectionError
from falsifiers.records import Mutant

ALLOWED_NAMESPACES = ("apr", "falsifiers", "tests")
NAMESPACE = "mutant-namespace"  # lint code: a name reaches outside the project
UNRESOLVED = "mutant-unresolved"  # lint code: a name does not resolve to anything
_PLAIN = (bool, int, float, complex, str, bytes, type(None), range)
_CONTAINERS = (tuple, list, set, frozenset, dict)
_MAX_ITEMS = 100_000  # items of plain data checked in one replacement (a larger one is refused)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a mutant cannot be applied: ``code`` is `NAMESPACE` or `UNRESOLVED`."""

    code: str
    message: str
    hint: str


class _Refused(Exception):
    """Internal: carries a `Problem` up to the public boundary (never escapes this module)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _namespace_hint() -> str:
    return ("targets and replacements name the project's own objects, step by step: modules, classes and "
            "functions of " + ", ".join(n + "." for n in ALLOWED_NAMESPACES) + " (nothing else is imported or patched)")


def _foreign(what: str, dotted: str, message: str) -> _Refused:
    return _Refused(Problem(NAMESPACE, f"{what} {dotted!r}: {message}", _namespace_hint()))


def _missing(what: str, dotted: str, message: str, hint: str) -> _Refused:
    return _Refused(Problem(UNRESOLVED, f"{what} {dotted!r}: {message}", hint))


def is_project_module_name(name: object) -> bool:
    """Whether a module name lies in one of the project's packages (``apr.x`` yes, ``os``/``aprx`` no)."""
    return isinstance(name, str) and name.split(".", 1)[0] in ALLOWED_NAMESPACES


def _home(value: Any) -> str | None:
    """The module ``value`` was defined in, for modules, classes and callables; ``None`` for other objects."""
    if isinstance(value, ModuleType):
        return value.__name__
    if isinstance(value, type):
        return getattr(value, "__module__", None) or "builtins"
    if isinstance(value, (staticmethod, classmethod)):
        return _home(value.__func__)
    if isinstance(value, property):
        return _home(value.fget) if value.fget is not None else "builtins"
    if inspect.ismethod(value):
        return _home(value.__func__)
    if inspect.isroutine(value):
        return getattr(value, "__module__", None) or "builtins"
    return None


def describe(value: Any) -> str:
    """A short name for an object in a message: ``module 'os'``, ``function 'posix.system'``."""
    if isinstance(value, ModuleType):
        return f"module {value.__name__!r}"
    home = _home(value)
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if home is not None and name:
        kind = "class" if isinstance(value, type) else "function"
        return f"{kind} {home + '.' + name!r}"
    return f"{type(value).__module__}.{type(value).__qualname__} object"


def is_project_owner(value: Any) -> bool:
    """Whether ``value`` may be walked through or patched on: a project module, class, function or
    an instance of a project class."""
    home = _home(value)
    if home is not None:
        return is_project_module_name(home)
    return is_project_module_name(type(value).__module__)


def replacement_problem(value: Any) -> str | None:
    """Why ``value`` may not be patched into the project, or ``None`` (see the module docstring)."""
    pending, seen, count = [value], set(), 0
    while pending:
        item = pending.pop()
        count += 1
        if count > _MAX_ITEMS:
            return f"holds more than {_MAX_ITEMS} items to check"
        if type(item) in _PLAIN:
            continue
        if type(item) in _CONTAINERS:
            if id(item) not in seen:  # a list may hold itself
                seen.add(id(item))
                pending.extend(item.items() if isinstance(item, dict) else item)  # dict items: (key, value)
            continue
        if not is_project_owner(item):
            where = "" if item is value else " (inside the value)"
            return f"{describe(item)}{where} is not defined in the project"
    return None


def _check_segments(what: str, dotted: str) -> list[str]:
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        raise _missing(what, dotted, "not a dotted name of identifiers",
                       "write it as package.module.attribute, e.g. apr.format.reader.parse_header")
    if not is_project_module_name(parts[0]):
        raise _foreign(what, dotted, f"its first segment {parts[0]!r} is outside the project's packages ("
                       + ", ".join(n + "." for n in ALLOWED_NAMESPACES) + ")")
    return parts


def _import(what: str, dotted: str, module_name: str, importer: Callable[[str], ModuleType]) -> ModuleType | None:
    """Import one project module; ``None`` if no module has that name (a shorter prefix may)."""
    try:
        module = importer(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            return None  # that module (or its package) does not exist: not an import failure inside it
        raise _missing(what, dotted, f"importing {module_name} failed: {type(err).__name__}: {err}",
                       f"install {missing.split('.')[0]!r} (the project's test dependencies, e.g. pip install -e "
                       "'.[test]'), or fix the import in " + module_name) from err
    except (_Refused, KeyboardInterrupt):
        raise
    except BaseException as err:  # a module that fails to import (raises, exits, skips) is a finding
        raise _missing(what, dotted, f"importing {module_name} failed: {type(err).__name__}: {err}",
                       f"fix the import error in {module_name}") from err
    if not isinstance(module, ModuleType) or not is_project_module_name(module.__name__):
        raise _foreign(what, dotted, f"{module_name} is {describe(module)}, not a module of the project")
    return module


def _walk(what: str, dotted: str, owner: Any, prefix: str, names: list[str]) -> Any:
    """Follow ``names`` from ``owner``, each object walked through being the project's own."""
    for name in names:
        if not hasattr(owner, name):
            raise _missing(what, dotted, f"{prefix} has no attribute {name!r}", "check the spelling"
                           + ("; a target is the name as its caller looks it up" if what == "target" else ""))
        value = getattr(owner, name)
        prefix = f"{prefix}.{name}"
        if not is_project_owner(value):
            raise _foreign(what, dotted, f"{prefix} is {describe(value)}, which is not defined in the project")
        owner = value
    return owner


def _resolve_target(dotted: str, importer: Callable[[str], ModuleType], what: str = "target") -> tuple[Any, str]:
    parts = _check_segments(what, dotted)
    if len(parts) < 2:
        raise _missing(what, dotted, "names a package, not an attribute of a module",
                       "a target is module.attribute, e.g. apr.format.reader.parse_header")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        module = _import(what, dotted, module_name, importer)
        if module is None:
            continue
        owner = _walk(what, dotted, module, module_name, parts[cut:-1])
        if not hasattr(owner, parts[-1]):
            shown = ".".join(parts[:-1])
            raise _missing(what, dotted, f"{shown} has no attribute {parts[-1]!r}",
                           "a target is the name as its caller looks it up")
        return owner, parts[-1]
    raise _missing(what, dotted, "no importable module in it",
                   f"does the module {'.'.join(parts[:-1])} exist?")


def _resolve_replacement(spec: str, importer: Callable[[str], ModuleType]) -> Any:
    module_name, colon, attribute = spec.partition(":")
    if not colon:  # a dotted path, looked up like a target
        owner, name = _resolve_target(spec, importer, "replacement")
        value = getattr(owner, name)
    else:
        _check_segments("replacement", module_name)
        names = attribute.split(".")
        if not all(n.isidentifier() for n in names):
            raise _missing("replacement", spec, "the part after ':' is not a dotted name",
                           "write module:attribute, e.g. tests.format.mutants:skip_header_checksum")
        module = _import("replacement", spec, module_name, importer)
        if module is None:
            raise _missing("replacement", spec, f"no module {module_name}",
                           "write module:attribute with an importable module of the project")
        owner = _walk("replacement", spec, module, module_name, names[:-1])
        if not hasattr(owner, names[-1]):
            where = module_name + (":" + ".".join(names[:-1]) if len(names) > 1 else "")
            raise _missing("replacement", spec, f"{where} has no attribute {names[-1]!r}",
                           "define it in the module (usually tests/<area>/mutants.py)")
        value = getattr(owner, names[-1])
    problem = replacement_problem(value)
    if problem:
        raise _foreign("replacement", spec, problem)
    return value


def resolve_target(dotted: str, *, importer: Callable[[str], ModuleType] | None = None) -> tuple[Any, str]:
    """``apr.format.reader.parse_header`` -> (the module ``apr.format.reader``, ``"parse_header"``).

    The longest importable module prefix is imported; the rest is followed with ``getattr``, so
    ``pkg.mod.Class.method`` works too. Every object walked through must be the project's own.

    Raises:
        SelectionError: nothing by that name exists, or the path leaves the project (the message
            names the step).
    """
    try:
        return _resolve_target(dotted, importer or importlib.import_module)
    except _Refused as refused:
        raise SelectionError(f"mutant {refused.problem.message}", hint=refused.problem.hint) from None


def resolve_replacement(spec: str, *, importer: Callable[[str], ModuleType] | None = None) -> Any:
    """``tests.format.mutants:skip_header_checksum`` -> that attribute (a function or a value).

    Raises:
        SelectionError: as `resolve_target`; also when the value is not the project's own.
    """
    try:
        return _resolve_replacement(spec, importer or importlib.import_module)
    except _Refused as refused:
        raise SelectionError(f"mutant {refused.problem.message}", hint=refused.problem.hint) from None


def namespace_problem(mutant: Mutant) -> str | None:
    """Why a mutant's target or replacement may not even be imported (its first segment), or ``None``.

    The cheap, static check lint always runs; `mutant_problem` also resolves every step.
    """
    for field, value in (("target", mutant.target), ("replacement", mutant.replacement)):
        if value is None:
            continue
        root = value.split(":", 1)[0].split(".", 1)[0]
        if root not in ALLOWED_NAMESPACES:
            return (f"mutant {mutant.name!r}: {field} {value!r} is outside the project's packages "
                    f"({', '.join(n + '.' for n in ALLOWED_NAMESPACES)})")
    return None


def mutant_problem(mutant: Mutant, *, importer: Callable[[str], ModuleType] | None = None) -> Problem | None:
    """Why a code mutant cannot be applied (unresolvable, or reaching outside the project), or ``None``.

    Artifact mutants are not resolved here (lint checks their mutator's name).
    """
    if mutant.artifact or (mutant.target is None and mutant.replacement is None):
        return None
    if mutant.target is None or mutant.replacement is None:
        return Problem(UNRESOLVED, f"mutant {mutant.name!r}: a code mutant needs both target and replacement",
                       "add the missing key")
    load = importer or importlib.import_module
    try:
        _resolve_target(mutant.target, load)
        _resolve_replacement(mutant.replacement, load)
    except _Refused as refused:
        problem = refused.problem
        return Problem(problem.code, f"mutant {mutant.name!r}: {problem.message}", problem.hint)
    return None


class ProjectImporter:
    """Imports the project's modules as pytest would, for resolving mutants outside pytest (lint).

    ``root`` (the folder of pyproject.toml) goes first on ``sys.path`` while it is active; a
    ``tests`` package must be found inside it (a ``tests`` package of some other distribution is
    never imported). Before a module inside ``root`` is imported, what pytest's default import
    mode would have done is done: each folder on the way that has no ``__init__.py`` goes on
    ``sys.path`` (test helpers there import each other by bare name), and each ``conftest.py`` on
    the way is imported first (``tests/conftest.py`` puts ``tests/`` on ``sys.path``).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._added: list[str] = []

    @contextmanager
    def active(self) -> Iterator[ProjectImporter]:
        """Put ``root`` on ``sys.path`` for the block; the folders this importer added are removed after."""
        self._add_path(os.fspath(self.root))
        try:
            yield self
        finally:
            for entry in self._added:
                if entry in sys.path:
                    sys.path.remove(entry)
            self._added.clear()

    def __call__(self, name: str) -> ModuleType:
        if name.split(".", 1)[0] == "tests":
            self._check_inside_root("tests")
        parts = name.split(".")
        for cut in range(1, len(parts)):
            package = ".".join(parts[:cut])
            folders = [Path(f) for f in getattr(importlib.import_module(package), "__path__", None) or ()]
            if not folders:
                break
            for folder in folders:
                if not self._inside_root(folder):
                    continue
                if not (folder / "__init__.py").is_file():
                    self._add_path(os.fspath(folder))
                if (folder / "conftest.py").is_file() and f"{package}.conftest" not in sys.modules:
                    importlib.import_module(f"{package}.conftest")
        return importlib.import_module(name)

    def _add_path(self, entry: str) -> None:
        if entry not in sys.path:
            sys.path.insert(0, entry)
            self._added.append(entry)

    def _inside_root(self, place: str | os.PathLike[str]) -> bool:
        try:
            Path(place).resolve().relative_to(self.root)
        except ValueError:
            return False
        return True

    def _check_inside_root(self, top: str) -> None:
        spec = importlib.util.find_spec(top)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        places = list(spec.submodule_search_locations or ()) or ([spec.origin] if spec.origin else [])
        outside = [p for p in places if not self._inside_root(p)]
        if outside:
            raise _foreign("package", top, f"is found at {outside[0]}, outside the project ({self.root}): "
                           "it is not the project's own, and is not imported")


__all__ = [
    "ALLOWED_NAMESPACES",
    "NAMESPACE",
    "UNRESOLVED",
    "Problem",
    "ProjectImporter",
    "describe",
    "is_project_module_name",
    "is_project_owner",
    "mutant_problem",
    "namespace_problem",
    "replacement_problem",
    "resolve_replacement",
    "resolve_target",
]
