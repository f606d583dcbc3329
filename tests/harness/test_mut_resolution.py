"""falsifiers.mutation's resolution half in-process (issue 23, after issue 18 moved it into `mutation`):
what counts as the project's own object, how a refused name is described, the hint a refusal
carries, and how `ProjectImporter` imports a project's modules the way pytest would.

Expected values are written from the rules in `falsifiers.mutation`'s docstring; FALSIFY-HARNESS-017's
tests (`test_harness_mutant_resolution.py`) check the codes, these the objects and messages.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import falsifiers
from falsifiers.errors import SelectionError
from falsifiers.mutation import (
    NAMESPACE,
    UNCHECKED,
    UNRESOLVED,
    Problem,
    ProjectImporter,
    describe,
    is_project_module_name,
    is_project_owner,
    mutant_problem,
    namespace_problem,
    replacement_problem,
    resolve_replacement,
    resolve_target,
)
from falsifiers.records import Mutant

REPO = Path(falsifiers.__file__).resolve().parents[1]
HINT = ("targets and replacements name the project's own objects, step by step: modules, classes and functions of "
        "apr., falsifiers., tests. (nothing else is imported or patched)")


class Named:
    """Instances have a ``__name__`` (and no ``__qualname__``) but no home: still described as objects."""

    __name__ = "named-instance"


MODULE = __name__  # where pytest imported this file from


def _unqualified() -> None:
    """A function whose ``__qualname__`` is empty: described by its ``__name__``."""


_unqualified.__qualname__ = ""


# --- what belongs to the project, and how an object is named -----------------------------------------


@pytest.mark.parametrize(("value", "owned"), [
    (describe, True),
    (ProjectImporter, True),
    (ProjectImporter(REPO), True),  # an instance of a project class
    (ProjectImporter(REPO).active, True),  # a bound method: its function's module
    (staticmethod(describe), True),  # the staticmethod object itself: its function's module
    (staticmethod(os.getcwd), False),
    (property(describe), True),  # a property: its getter's module
    (property(os.getcwd), False),
    (property(), False),  # no getter: counted as a builtin
    (Problem("c", "m", "h"), True),
    (falsifiers, True),
    (os, False),
    (os.getcwd, False),
    (Path, False),
    (Path("x"), False),
    ((1).__add__, False),  # a method-wrapper has no __module__ at all
    (type("Loose", (), {"__module__": None}), False),  # a class whose module is None: a builtin
])
def test_is_project_owner(value: object, owned: bool) -> None:
    assert is_project_owner(value) is owned


@pytest.mark.parametrize(("value", "text"), [
    (os, "module 'os'"),
    (falsifiers, "module 'falsifiers'"),
    (os.getcwd, "function 'posix.getcwd'" if os.name == "posix" else "function 'nt.getcwd'"),
    (Path, "class 'pathlib.Path'"),
    (Path.exists, "function 'pathlib.Path.exists'"),  # the qualified name, not just 'exists'
    (describe, "function 'falsifiers.mutation.describe'"),
    (ProjectImporter, "class 'falsifiers.mutation.ProjectImporter'"),
    (ProjectImporter(REPO).active, "function 'falsifiers.mutation.ProjectImporter.active'"),
    (staticmethod(describe), "function 'falsifiers.mutation.describe'"),
    ((1).__add__, "function 'builtins.int.__add__'"),
    (type("Loose", (), {"__module__": None}), "class 'builtins.Loose'"),
    (_unqualified, f"function '{MODULE}._unqualified'"),
    (Named(), f"{MODULE}.Named object"),  # a __name__ without a home is still an object
    (Path("x"), f"{type(Path('x')).__module__}.{type(Path('x')).__qualname__} object"),
    (property(), "builtins.property object"),
])
def test_describe(value: object, text: str) -> None:
    assert describe(value) == text


# --- refusals carry the step and the hint --------------------------------------------------------------


@pytest.mark.parametrize("resolve", [resolve_target, resolve_replacement])
def test_a_refused_name_raises_with_the_namespace_hint(resolve) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SelectionError) as raised:
        resolve("os.system")
    assert raised.value.hint == HINT
    assert str(raised.value).startswith("mutant ")
    with pytest.raises(SelectionError) as missing:
        resolve("falsifiers.report.NO_SUCH_NAME")
    assert missing.value.hint == "a target is the name as its caller looks it up"


def test_a_foreign_step_is_a_namespace_problem_with_the_hint() -> None:
    problem = mutant_problem(Mutant("m", "falsifiers.mutation.os.getcwd", "falsifiers.mutation:VACUOUS"))
    assert problem == Problem(NAMESPACE, "mutant 'm': target 'falsifiers.mutation.os.getcwd': falsifiers.mutation.os "
                              "is module 'os', which is not defined in the project", HINT)


# --- ProjectImporter ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    """Forget the throw-away packages a test imports (their names start with ``mutimp_``)."""
    yield
    for name in [n for n in sys.modules if n.startswith("mutimp_")]:
        del sys.modules[name]


def _write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_root_goes_first_on_sys_path_and_only_for_the_block(tmp_path: Path) -> None:
    importer = ProjectImporter(tmp_path)
    with importer.active():
        assert sys.path[0] == os.fspath(tmp_path.resolve())
    assert os.fspath(tmp_path.resolve()) not in sys.path


@pytest.mark.usefixtures("fresh_modules")
def test_conftests_run_first_and_folders_without_init_go_on_sys_path(tmp_path: Path) -> None:
    """As pytest's default import mode: ``mutimp_a/conftest.py`` before ``mutimp_a.helpers.mod``; the
    package folder with an ``__init__.py`` is not put on sys.path, the one without it is (its modules
    import each other by bare name)."""
    _write(tmp_path / "mutimp_a" / "__init__.py")
    _write(tmp_path / "mutimp_a" / "conftest.py", "import sys\nsys.mutimp_order = ['conftest']\n")
    _write(tmp_path / "mutimp_a" / "helpers" / "mutimp_sibling.py", "VALUE = 7\n")
    _write(tmp_path / "mutimp_a" / "helpers" / "mod.py",
           "import sys\nimport mutimp_sibling\nsys.mutimp_order.append('mod')\nVALUE = mutimp_sibling.VALUE\n")
    importer = ProjectImporter(tmp_path)
    try:
        with importer.active():
            module = importer("mutimp_a.helpers.mod")
            assert module.VALUE == 7
            assert sys.mutimp_order == ["conftest", "mod"]  # type: ignore[attr-defined]
            assert sys.path[0] == os.fspath(tmp_path / "mutimp_a" / "helpers")
            assert os.fspath(tmp_path / "mutimp_a") not in sys.path
            importer("mutimp_a.helpers.mutimp_sibling")  # the conftest is not imported twice
            assert sys.mutimp_order == ["conftest", "mod"]  # type: ignore[attr-defined]
        assert os.fspath(tmp_path / "mutimp_a" / "helpers") not in sys.path
    finally:
        del sys.mutimp_order  # type: ignore[attr-defined]


@pytest.mark.usefixtures("fresh_modules")
def test_a_namespace_package_is_handled_in_its_folders_inside_the_root_only(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    _write(outside / "mutimp_ns" / "elsewhere.py")  # the namespace package's other portion
    _write(root / "mutimp_ns" / "conftest.py", "import sys\nsys.mutimp_seen = True\n")
    _write(root / "mutimp_ns" / "mod.py", "VALUE = 1\n")
    importer = ProjectImporter(root)
    try:
        with importer.active():
            monkeypatch.syspath_prepend(os.fspath(outside))  # the outside folder comes first in __path__
            assert importer("mutimp_ns.mod").VALUE == 1
            assert sys.mutimp_seen is True  # type: ignore[attr-defined]
            assert os.fspath(outside / "mutimp_ns") not in sys.path
    finally:
        if hasattr(sys, "mutimp_seen"):
            del sys.mutimp_seen  # type: ignore[attr-defined]


def test_an_attribute_is_not_a_module() -> None:
    """``falsifiers.report.HARNESS`` names a constant: the importer raises as import_module does, so
    resolution tries the shorter prefix."""
    importer = ProjectImporter(REPO)
    with importer.active(), pytest.raises(ModuleNotFoundError):
        importer("falsifiers.report.HARNESS")


def test_no_tests_package_at_all_is_a_missing_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(ModuleNotFoundError) as raised:
        ProjectImporter(tmp_path)("tests.harness.mutants_resolution")
    assert raised.value.name == "tests"
    assert str(raised.value) == "No module named 'tests'"


@pytest.mark.parametrize("spec", [
    importlib.machinery.ModuleSpec("tests", None, origin="/elsewhere/tests.py"),  # a plain module
    importlib.machinery.ModuleSpec("tests", None, is_package=True),  # a namespace package: no origin
])
def test_a_tests_module_or_namespace_package_from_elsewhere_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: importlib.machinery.ModuleSpec) -> None:
    if spec.submodule_search_locations is not None:
        spec.submodule_search_locations.append("/elsewhere/tests")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: spec)
    problem = mutant_problem(Mutant("m", "falsifiers.report.HARNESS", "tests.harness.mutants_resolution:PLAIN_DATA"),
                             importer=ProjectImporter(tmp_path))
    where = spec.origin or "/elsewhere/tests"
    assert problem == Problem(NAMESPACE, f"mutant 'm': package 'tests': is found at {where}, outside the project "
                              f"({tmp_path.resolve()}): it is not the project's own, and is not imported", HINT)


# --- every refusal, with its exact message and hint --------------------------------------------------

TARGET_HINT = "a target is the name as its caller looks it up"
SPELLING = "check the spelling; " + TARGET_HINT


@pytest.mark.parametrize(("target", "code", "message", "hint"), [
    ("falsifiers..report", UNRESOLVED, "target 'falsifiers..report': not a dotted name of identifiers",
     "write it as package.module.attribute, e.g. apr.format.reader.parse_header"),
    ("os.system", NAMESPACE,
     "target 'os.system': its first segment 'os' is outside the project's packages (apr., falsifiers., tests.)", HINT),
    ("falsifiers", UNRESOLVED, "target 'falsifiers': names a package, not an attribute of a module",
     "a target is module.attribute, e.g. apr.format.reader.parse_header"),
    ("falsifiers.report.NO_SUCH_NAME", UNRESOLVED,
     "target 'falsifiers.report.NO_SUCH_NAME': falsifiers.report has no attribute 'NO_SUCH_NAME'", TARGET_HINT),
    ("falsifiers.no_such_module.x", UNRESOLVED,
     "target 'falsifiers.no_such_module.x': falsifiers has no attribute 'no_such_module'", SPELLING),
    ("falsifiers.mutation.Problem.nope.x", UNRESOLVED,
     "target 'falsifiers.mutation.Problem.nope.x': falsifiers.mutation.Problem has no attribute 'nope'", SPELLING),
    ("falsifiers.mutation.os.getcwd", NAMESPACE, "target 'falsifiers.mutation.os.getcwd': falsifiers.mutation.os is "
     "module 'os', which is not defined in the project", HINT),
])
def test_target_refusals(target: str, code: str, message: str, hint: str) -> None:
    assert mutant_problem(Mutant("m", target, "falsifiers.mutation:VACUOUS")) == \
        Problem(code, f"mutant 'm': {message}", hint)
    with pytest.raises(SelectionError) as raised:
        resolve_target(target)
    assert (str(raised.value).splitlines()[0], raised.value.hint) == (f"mutant {message}", hint)


@pytest.mark.parametrize(("replacement", "code", "message", "hint"), [
    ("falsifiers.mutation:VACUOUS:x", UNRESOLVED,
     "replacement 'falsifiers.mutation:VACUOUS:x': the part after ':' is not a dotted name",
     "write module:attribute, e.g. tests.format.mutants:skip_header_checksum"),
    ("falsifiers.no_such_module:x", UNRESOLVED, "replacement 'falsifiers.no_such_module:x': no module "
     "falsifiers.no_such_module", "write module:attribute with an importable module of the project"),
    ("falsifiers.mutation:NO_SUCH", UNRESOLVED, "replacement 'falsifiers.mutation:NO_SUCH': falsifiers.mutation has "
     "no attribute 'NO_SUCH'", "define it in the module (usually tests/<area>/mutants.py)"),
    ("falsifiers.mutation:Problem.nope", UNRESOLVED, "replacement 'falsifiers.mutation:Problem.nope': "
     "falsifiers.mutation:Problem has no attribute 'nope'", "define it in the module (usually tests/<area>/mutants.py)"),
    ("falsifiers.mutation:Problem.nope.x", UNRESOLVED, "replacement 'falsifiers.mutation:Problem.nope.x': "
     "falsifiers.mutation.Problem has no attribute 'nope'", "check the spelling"),
    ("os:getcwd", NAMESPACE, "replacement 'os': its first segment 'os' is outside the project's packages (apr., "
     "falsifiers., tests.)", HINT),
    ("falsifiers.mutation:os", NAMESPACE, "replacement 'falsifiers.mutation:os': module 'os' is not defined in the "
     "project", HINT),
    ("falsifiers.mutation.NO_SUCH", UNRESOLVED, "replacement 'falsifiers.mutation.NO_SUCH': falsifiers.mutation has "
     "no attribute 'NO_SUCH'", TARGET_HINT),  # without ':', looked up as a target is
])
def test_replacement_refusals(replacement: str, code: str, message: str, hint: str) -> None:
    assert mutant_problem(Mutant("m", "falsifiers.report.HARNESS", replacement)) == \
        Problem(code, f"mutant 'm': {message}", hint)
    with pytest.raises(SelectionError) as raised:
        resolve_replacement(replacement)
    assert (str(raised.value).splitlines()[0], raised.value.hint) == (f"mutant {message}", hint)


def test_a_dotted_replacement_resolves_like_a_target() -> None:
    assert resolve_replacement("falsifiers.mutation.VACUOUS") == "VACUOUS"
    assert resolve_replacement("falsifiers.mutation:Problem") is Problem


def _importer(outcome: object):  # type: ignore[no-untyped-def]
    """An importer that raises ``outcome`` (an exception) or returns it, for every name."""
    def load(name: str) -> object:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return load


@pytest.mark.parametrize(("outcome", "code", "message", "hint"), [
    (ModuleNotFoundError("No module named 'yaml'", name="yaml"), UNCHECKED,
     "not checked: importing falsifiers.report needs 'yaml', which is not installed here",
     "install 'yaml' (the project's extras bring it: the tests' with pip install -e '.[test]') to resolve it; "
     "`apr contracts verify` checks every mutant it runs"),
    (ModuleNotFoundError("No module named 'numba.core'", name="numba.core"), UNCHECKED,
     "not checked: importing falsifiers.report needs 'numba', which is not installed here",
     "install 'numba' (the project's extras bring it: the tests' with pip install -e '.[test]') to resolve it; "
     "`apr contracts verify` checks every mutant it runs"),
    (ModuleNotFoundError("gone", name="apr.gone"), UNRESOLVED,
     "importing falsifiers.report failed: ModuleNotFoundError: gone", "fix the import in falsifiers.report"),
    (ModuleNotFoundError("nameless"), UNRESOLVED,
     "importing falsifiers.report failed: ModuleNotFoundError: nameless", "fix the import in falsifiers.report"),
    (RuntimeError("boom"), UNRESOLVED, "importing falsifiers.report failed: RuntimeError: boom",
     "fix the import error in falsifiers.report"),
    (SystemExit(3), UNRESOLVED, "importing falsifiers.report failed: SystemExit: 3",
     "fix the import error in falsifiers.report"),
    (os, NAMESPACE, "falsifiers.report is module 'os', not a module of the project", HINT),
    (Path("x"), NAMESPACE, f"falsifiers.report is {describe(Path('x'))}, not a module of the project", HINT),
])
def test_import_failures(outcome: object, code: str, message: str, hint: str) -> None:
    problem = mutant_problem(Mutant("m", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"),
                             importer=_importer(outcome))
    assert problem == Problem(code, f"mutant 'm': target 'falsifiers.report.HARNESS': {message}", hint)


def test_a_module_that_does_not_exist_is_tried_shorter_and_none_at_all_is_unresolved() -> None:
    def nothing(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
    assert mutant_problem(Mutant("m", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"),
                          importer=nothing) == \
        Problem(UNRESOLVED, "mutant 'm': target 'falsifiers.report.HARNESS': no importable module in it",
                "does the module falsifiers.report exist?")


def test_an_interrupt_while_importing_is_not_a_finding() -> None:
    with pytest.raises(KeyboardInterrupt):
        mutant_problem(Mutant("m", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"),
                       importer=_importer(KeyboardInterrupt()))


@pytest.mark.parametrize(("mutant", "problem"), [
    (Mutant("m", artifact="truncate"), None),
    (Mutant("m"), None),
    (Mutant("m", target="falsifiers.report.HARNESS"),
     Problem(UNRESOLVED, "mutant 'm': a code mutant needs both target and replacement", "add the missing key")),
    (Mutant("m", replacement="falsifiers.mutation:VACUOUS"),
     Problem(UNRESOLVED, "mutant 'm': a code mutant needs both target and replacement", "add the missing key")),
    (Mutant("m", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"), None),
])
def test_mutant_problem_of_incomplete_and_artifact_mutants(mutant: Mutant, problem: Problem | None) -> None:
    assert mutant_problem(mutant) == problem


@pytest.mark.parametrize(("mutant", "problem"), [
    (Mutant("m", "os.path", "falsifiers.mutation:VACUOUS"),
     "mutant 'm': target 'os.path' is outside the project's packages (apr., falsifiers., tests.)"),
    (Mutant("m", "falsifiers.report.HARNESS", "os:getcwd"),
     "mutant 'm': replacement 'os:getcwd' is outside the project's packages (apr., falsifiers., tests.)"),
    (Mutant("m", "aprx.y", "os:getcwd"),
     "mutant 'm': target 'aprx.y' is outside the project's packages (apr., falsifiers., tests.)"),
    (Mutant("m", None, "tests:x"), None),
    (Mutant("m", None, "os:getcwd"),  # no target: the replacement is still checked
     "mutant 'm': replacement 'os:getcwd' is outside the project's packages (apr., falsifiers., tests.)"),
    (Mutant("m", "apr.x", "apr:os.y:z"), None),  # the module part ends at the first ':'
    (Mutant("m", "apr.x", None), None),
    (Mutant("m", "falsifiers.os.system", "apr.x:os"), None),  # only the first segment is looked at here
])
def test_namespace_problem(mutant: Mutant, problem: str | None) -> None:
    assert namespace_problem(mutant) == problem


@pytest.mark.parametrize(("name", "ours"), [("apr", True), ("apr.x.y", True), ("falsifiers", True), ("tests.z", True),
                                            ("aprx", False), ("os", False), ("", False), (5, False), (None, False)])
def test_is_project_module_name(name: object, ours: bool) -> None:
    assert is_project_module_name(name) is ours


# --- replacements: the value patched in --------------------------------------------------------------


def test_replacement_problem_names_the_foreign_object_and_where_it_sits() -> None:
    getcwd = describe(os.getcwd)
    assert replacement_problem(os.getcwd) == f"{getcwd} is not defined in the project"
    assert replacement_problem(("a", {"k": [1, os.getcwd]})) == f"{getcwd} (inside the value) is not defined in the project"
    assert replacement_problem([os.getcwd, 1]) == f"{getcwd} (inside the value) is not defined in the project"
    assert replacement_problem({os.getcwd: 1}) == f"{getcwd} (inside the value) is not defined in the project"
    assert replacement_problem(("a", 1, 2.5, None, b"x", range(3), frozenset({1}), {"k": [True]})) is None
    assert replacement_problem(describe) is None and replacement_problem(Problem("c", "m", "h")) is None


def test_a_value_that_holds_itself_is_checked_once() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert replacement_problem(loop) is None
    loop.append(os.getcwd)
    assert replacement_problem(loop) == f"{describe(os.getcwd)} (inside the value) is not defined in the project"


def test_at_most_100000_items_are_checked() -> None:
    """The container counts as one item: 99,999 numbers in a list are 100,000 items, one more is too many."""
    assert replacement_problem(list(range(99_999))) is None
    assert replacement_problem(list(range(100_000))) == "holds more than 100000 items to check"


def test_a_two_part_target_is_an_attribute_of_a_package() -> None:
    import falsifiers.report

    assert resolve_target("falsifiers.report") == (falsifiers, "report")
    assert falsifiers.report.HARNESS == "apr-contracts"


def test_a_replacement_module_that_fails_to_import_is_named_as_the_replacement() -> None:
    def load(name: str) -> object:
        if name == "falsifiers.mutation":
            raise RuntimeError("boom")
        return importlib.import_module(name)
    assert mutant_problem(Mutant("m", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"), importer=load) == \
        Problem(UNRESOLVED, "mutant 'm': replacement 'falsifiers.mutation:VACUOUS': importing falsifiers.mutation "
                "failed: RuntimeError: boom", "fix the import error in falsifiers.mutation")


def test_a_missing_last_name_after_a_longer_walk_names_the_whole_walk() -> None:
    with pytest.raises(SelectionError) as raised:
        resolve_replacement("falsifiers.mutation:ProjectImporter.active.nope")
    assert str(raised.value).splitlines()[0] == (
        "mutant replacement 'falsifiers.mutation:ProjectImporter.active.nope': "
        "falsifiers.mutation:ProjectImporter.active has no attribute 'nope'")
