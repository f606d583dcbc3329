"""Declared mutants: resolve them safely, apply them in the test process, judge what their runs showed.

A falsifier whose tests cannot fail is worse than none: it reads as evidence. Each falsifier may
declare ``mutants:``, small named faults that must turn its bound tests red. ``--mutants`` reruns
a falsifier's bound tests once per mutant, each in its own child pytest (`falsifiers.mutant_runs`),
with ``--apply-mutant FALSIFIER:NAME``; that child patches the fault in around each bound test
(`apply_mutant`) and restores it afterwards. While it is patched, ``APR_CONTRACTS_MUTANT`` names it,
so a pytest the test starts itself (a pytester subprocess, xdist workers) patches the same fault
in at configure time (`install_inherited_mutant`): tests that check the harness through child
runs can be killed too.

Nothing read from a contract is ever executed or evaluated: a ``target`` is an attribute path and a
``replacement`` a ``module:attribute`` name, and both must lie in the project's own packages
(`ALLOWED_NAMESPACES`) at every step (see *Resolution* below); the only code that runs is
what those modules already define. A declared mutant that cannot be applied (it does not resolve,
or it reaches outside the project) is ``invalid``: it is never run, and it makes the verdict NO-GO
(`invalid_mutant_reasons`), since a falsifier whose declared fault does not exist shows nothing.

*Resolution*: a mutant's ``target`` and ``replacement`` are resolved to the project's own objects,
and nothing else.

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

import contextlib
import enum
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from falsifiers.artifact import MUTATORS
from falsifiers.errors import SelectionError
from falsifiers.records import Corpus, Falsifier, Mutant


# --- resolution: names to the project's own objects ---------------------------------------------

ALLOWED_NAMESPACES = ("apr", "falsifiers", "tests")
NAMESPACE = "mutant-namespace"  # lint code: a name reaches outside the project
UNRESOLVED = "mutant-unresolved"  # lint code: a name does not resolve to anything
UNCHECKED = "mutant-unchecked"  # lint code: a project module imports a package this environment lacks
_PLAIN = (bool, int, float, complex, str, bytes, type(None), range)
_CONTAINERS = (tuple, list, set, frozenset, dict)
_MAX_ITEMS = 100_000  # items of plain data checked in one replacement (a larger one is refused)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a mutant cannot be applied: ``code`` is `NAMESPACE`, `UNRESOLVED` or `UNCHECKED`.

    `UNCHECKED` says nothing is known to be wrong with the mutant: a project module on its way
    imports a third-party package that is not installed (e.g. ``hypothesis`` in a lean install
    without the test extra), so it could not be resolved here.
    """

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
        if missing and not is_project_module_name(missing):
            top = missing.split(".")[0]
            problem = Problem(UNCHECKED, f"{what} {dotted!r}: not checked: importing {module_name} needs {top!r}, "
                              "which is not installed here",
                              f"install {top!r} (the project's extras bring it: the tests' with pip install -e "
                              "'.[test]') to resolve it; `apr contracts verify` checks every mutant it runs")
            raise _Refused(problem) from err
        raise _missing(what, dotted, f"importing {module_name} failed: {type(err).__name__}: {err}",
                       f"fix the import in {module_name}") from err
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


# --- applying a mutant, and judging its runs ---------------------------------------------------

VACUOUS = "VACUOUS"
INVALID_MUTANT = "INVALID MUTANT"
INHERIT_ENV = "APR_CONTRACTS_MUTANT"


class MutantStatus(str, enum.Enum):
    """What one mutant run showed about its falsifier's tests."""

    KILLED = "killed"  # a bound test failed with the fault in: the tests can fail
    SURVIVED = "survived"  # every bound test passed with the fault in: the falsifier is vacuous
    NOT_RUN = "not-run"  # the falsifier was not corroborated, or its tests were skipped under the mutant
    ERROR = "error"  # its run ended without a verdict (a timeout, a crash)
    INVALID = "invalid"  # the declaration cannot be applied: it does not resolve, or leaves the project


@dataclass(frozen=True, slots=True)
class MutantResult:
    """One mutant's run (plain data: it goes into the receipt)."""

    falsifier: str
    contract: str
    name: str
    kind: str
    status: MutantStatus
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"falsifier": self.falsifier, "contract": self.contract, "name": self.name, "kind": self.kind,
                "status": self.status.value, "detail": self.detail, "seconds": round(self.seconds, 3)}


@contextlib.contextmanager
def apply_mutant(mutant: Mutant) -> Iterator[None]:
    """Patch a code mutant in for the block and restore the original after (artifact mutants: no-op here).

    Raises:
        SelectionError: the mutant names something outside the allowed packages, or nothing at all.
    """
    patch = patch_in(mutant)
    try:
        yield
    finally:
        patch_out(patch)


@dataclass(frozen=True, slots=True)
class Patch:
    """What `patch_in` replaced, so that `patch_out` can put it back."""

    owner: Any
    name: str
    original: Any
    inherited: str | None  # APR_CONTRACTS_MUTANT before the patch (None: it was unset)


def patch_in(mutant: Mutant) -> Patch | None:
    """Set a code mutant's replacement on its target and announce it in ``APR_CONTRACTS_MUTANT``.

    The body of `apply_mutant` (a plain function, so mutation testing measures it).

    Returns:
        What `patch_out` needs to undo it; ``None`` for an artifact mutant (nothing is patched).

    Raises:
        SelectionError: the mutant names something outside the allowed packages, or nothing at all.
    """
    if mutant.artifact:
        return None
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(problem, hint=f"targets and replacements must start with one of "
                             f"{', '.join(n + '.' for n in ALLOWED_NAMESPACES)}")
    assert mutant.target is not None and mutant.replacement is not None  # the schema's oneOf
    owner, name = resolve_target(mutant.target)
    replacement = resolve_replacement(mutant.replacement)
    original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
    inherited = os.environ.get(INHERIT_ENV)
    setattr(owner, name, replacement)
    os.environ[INHERIT_ENV] = json.dumps({"name": mutant.name, "target": mutant.target,
                                          "replacement": mutant.replacement,
                                          "paths": _import_roots(mutant.target, mutant.replacement)})
    return Patch(owner, name, original, inherited)


def patch_out(patch: Patch | None) -> None:
    """Undo `patch_in`: the original attribute back, ``APR_CONTRACTS_MUTANT`` as it was before."""
    if patch is None:
        return
    setattr(patch.owner, patch.name, patch.original)
    if patch.inherited is None:
        os.environ.pop(INHERIT_ENV, None)
    else:
        os.environ[INHERIT_ENV] = patch.inherited


def _import_roots(*specs: str) -> list[str]:
    """The folders from which the top packages of ``specs`` were imported (for a child's sys.path)."""
    roots = []
    for spec in specs:
        package = sys.modules.get(spec.split(":", 1)[0].split(".", 1)[0])
        location = getattr(package, "__file__", None)
        if location:
            root = os.fspath(Path(location).resolve().parent.parent)
            if root not in roots:
                roots.append(root)
    return roots


def install_inherited_mutant() -> Mutant | None:
    """In a pytest started while a mutant was applied: patch the same fault in for the whole process.

    Called by the plugin's ``pytest_configure`` when ``APR_CONTRACTS_MUTANT`` is set (only
    `apply_mutant` sets it). The target and replacement are checked against
    `ALLOWED_NAMESPACES` again, and the patch is never undone: the process exists for this run.

    Raises:
        SelectionError: the variable is malformed or names something outside the project.
    """
    raw = os.environ.get(INHERIT_ENV)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        mutant = Mutant(name=str(spec["name"]), target=str(spec["target"]), replacement=str(spec["replacement"]))
        paths = [str(p) for p in spec.get("paths", ())]
    except (ValueError, KeyError, TypeError) as err:
        raise SelectionError(f"{INHERIT_ENV} is not a mutant this harness wrote: {err}",
                             hint=f"unset {INHERIT_ENV}") from err
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(f"{INHERIT_ENV}: {problem}", hint=f"unset {INHERIT_ENV}")
    sys.path.extend(p for p in paths if p not in sys.path)  # after the child's own entries
    assert mutant.target is not None and mutant.replacement is not None
    owner, name = resolve_target(mutant.target)
    setattr(owner, name, resolve_replacement(mutant.replacement))
    return mutant


def find_mutant(falsifiers: Mapping[str, Falsifier], spec: str) -> tuple[Falsifier, Mutant]:
    """``FALSIFY-X-001:name`` -> (the falsifier, its mutant).

    Raises:
        SelectionError: no such falsifier, or it declares no mutant of that name.
    """
    ident, _, name = spec.partition(":")
    falsifier = falsifiers.get(ident)
    if falsifier is None:
        raise SelectionError(f"--apply-mutant {spec}: no contract declares {ident!r}",
                             hint="write FALSIFIER:MUTANT, e.g. FALSIFY-APR-FORMAT-004:skip-header-checksum")
    for mutant in falsifier.mutants:
        if mutant.name == name:
            return falsifier, mutant
    names = ", ".join(m.name for m in falsifier.mutants) or "none"
    raise SelectionError(f"--apply-mutant {spec}: {ident} declares no mutant {name!r}", hint=f"its mutants: {names}")


def resolve_mutant(corpus: Corpus, spec: str) -> tuple[Falsifier, Mutant]:
    """``--apply-mutant FALSIFIER:NAME``, checked now (a bad name is a usage error, not a failing test)."""
    falsifier, mutant = find_mutant(corpus.falsifiers, spec)
    if mutant.artifact:
        if mutant.artifact not in MUTATORS:
            raise SelectionError(f"--apply-mutant {spec}: no artifact mutator {mutant.artifact!r}",
                                 hint=f"built-in mutators: {', '.join(sorted(MUTATORS))}")
        return falsifier, mutant
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(problem)
    assert mutant.target is not None and mutant.replacement is not None
    resolve_target(mutant.target)
    resolve_replacement(mutant.replacement)
    return falsifier, mutant


def quiet_hypothesis() -> Callable[[], None]:
    """In a mutant's child run: derandomized, no shrinking, no example database (if Hypothesis is installed).

    A mutant needs one failing example, not the smallest, and its failures must not be replayed
    by later plain runs. Derandomized whatever the session's profile, so a mutant killed on a
    laptop is killed in CI too: a survivor is a weak test, not a bad draw. Loaded before
    collection, so tests' own ``settings(...)`` inherit it.

    Returns:
        A function that loads the previous profile again (the session calls it at its end, so an
        in-process run, e.g. under pytester, leaves the global profile as it found it).
    """
    if importlib.util.find_spec("hypothesis") is None:
        return lambda: None
    from hypothesis import Phase, settings  # an optional dependency: looked for above

    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("apr-contracts-mutant", phases=[Phase.explicit, Phase.reuse, Phase.generate],
                              database=None, derandomize=True)
    settings.load_profile("apr-contracts-mutant")
    return lambda: settings.load_profile(previous)


def judge_mutant(outcome: str | None, reason: str) -> tuple[MutantStatus, str]:
    """A child run's outcome for the falsifier (from its receipt) -> killed / survived / not-run / error."""
    if outcome == "REFUTED":
        return MutantStatus.KILLED, reason
    if outcome == "CORROBORATED":
        return MutantStatus.SURVIVED, "every bound test passed with the fault in"
    if outcome == "UNDETERMINED":
        return MutantStatus.NOT_RUN, reason
    return MutantStatus.ERROR, reason or "the run ended without a verdict"


def vacuous_reasons(results: Sequence[MutantResult]) -> dict[str, str]:
    """Falsifier id -> the VACUOUS reason, for each falsifier with a surviving mutant."""
    reasons: dict[str, str] = {}
    for result in results:
        if result.status is MutantStatus.SURVIVED and result.falsifier not in reasons:
            reasons[result.falsifier] = (f"{VACUOUS}: mutant {result.name!r} survived (its tests pass with the "
                                         f"fault in; they cannot fail for it)")
    return reasons


def invalid_mutant_reasons(results: Sequence[MutantResult]) -> dict[str, str]:
    """Falsifier id -> the reason, for each falsifier with a mutant that cannot be applied.

    Such a falsifier is REFUTED (`falsifiers.verdict.compute_verdict`), so the verdict is NO-GO:
    a declared fault that does not exist, or that names something outside the project, is a broken
    contract, and it would otherwise sit in the report as an error while the verdict stays GO.
    """
    reasons: dict[str, str] = {}
    for result in results:
        if result.status is MutantStatus.INVALID and result.falsifier not in reasons:
            reasons[result.falsifier] = (f"{INVALID_MUTANT}: {result.detail} (the declared fault cannot be applied; "
                                         "fix the mutant in the contract, see `apr contracts lint`)")
    return reasons


def mutant_summary(falsifiers: Sequence[Falsifier], results: Sequence[MutantResult]) -> dict[str, dict[str, int]]:
    """Per contract: mutants declared, killed, survived, and falsifiers without any mutant."""
    summary: dict[str, dict[str, int]] = {}
    for falsifier in falsifiers:
        row = summary.setdefault(falsifier.contract, {"declared": 0, "killed": 0, "survived": 0, "not_run": 0,
                                                      "error": 0, "invalid": 0, "falsifiers": 0, "without_mutant": 0,
                                                      "with_killed_mutant": 0})
        row["falsifiers"] += 1
        row["declared"] += len(falsifier.mutants)
        row["without_mutant"] += not falsifier.mutants
        mine = [r for r in results if r.falsifier == falsifier.id]
        row["with_killed_mutant"] += any(r.status is MutantStatus.KILLED for r in mine)
        for result in mine:
            row[result.status.value.replace("-", "_")] += 1
    return summary


__all__ = ["ALLOWED_NAMESPACES", "NAMESPACE", "UNCHECKED", "UNRESOLVED", "Problem", "ProjectImporter", "describe",
           "is_project_module_name", "is_project_owner", "mutant_problem", "namespace_problem",
           "replacement_problem", "resolve_replacement", "resolve_target", "INHERIT_ENV", "INVALID_MUTANT", "VACUOUS",
           "MutantResult", "MutantStatus", "apply_mutant", "find_mutant", "install_inherited_mutant", "invalid_mutant_reasons", "judge_mutant",
           "mutant_summary", "quiet_hypothesis", "resolve_mutant", "vacuous_reasons"]
