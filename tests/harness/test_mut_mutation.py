"""falsifiers.mutation in-process (issue 23): how a declared mutant is found, patched in and out,
inherited by a child, and how a child run's outcome becomes killed / survived / not-run / error.

No child pytest here: each rule is a plain function, called directly with expected values written
from the rule itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import falsifiers
import falsifiers.report
from falsifiers import mutation
from falsifiers.artifact import ArtifactRecord
from falsifiers.artifact import MUTATORS
from falsifiers.errors import ContractError, SelectionError, SettingsError
from falsifiers.mutation import (
    INHERIT_ENV,
    MutantResult,
    MutantStatus,
    Patch,
    apply_mutant,
    find_mutant,
    install_inherited_mutant,
    invalid_mutant_reasons,
    judge_mutant,
    mutant_summary,
    patch_in,
    patch_out,
    quiet_hypothesis,
    resolve_mutant,
    vacuous_reasons,
)
from falsifiers.records import Corpus, Falsifier, Location, Mutant

# falsifiers.report.HARNESS ("apr-contracts") becomes falsifiers.mutation.VACUOUS ("VACUOUS").
TARGET, REPLACEMENT = "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS"
CODE = Mutant("rename", TARGET, REPLACEMENT)
ROOT = os.fspath(Path(falsifiers.__file__).resolve().parent.parent)  # the folder `falsifiers` is imported from
NAMESPACES_HINT = "targets and replacements must start with one of apr., falsifiers., tests."


@pytest.fixture(autouse=True)
def _no_inherited_mutant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INHERIT_ENV, raising=False)


def falsifier(ident: str, contract: str = "c-v1", mutants: tuple[Mutant, ...] = ()) -> Falsifier:
    return Falsifier(ident, contract, ("INV-X-001",), "r", "p", "f", Location("c.yaml", 1, 1), mutants=mutants)


def result(ident: str, status: MutantStatus, name: str = "m", contract: str = "c-v1", detail: str = "") -> MutantResult:
    return MutantResult(ident, contract, name, "code", status, detail)


# --- the record -----------------------------------------------------------------------------------


def test_mutant_result_to_dict_key_by_key() -> None:
    row = MutantResult("FALSIFY-A-001", "a-v1", "flip", "artifact", MutantStatus.NOT_RUN, "skipped", 1.23456).to_dict()
    assert list(row) == ["falsifier", "contract", "name", "kind", "status", "detail", "seconds"]
    assert row == {"falsifier": "FALSIFY-A-001", "contract": "a-v1", "name": "flip", "kind": "artifact",
                   "status": "not-run", "detail": "skipped", "seconds": 1.235}
    assert MutantResult("F", "c", "n", "code", MutantStatus.KILLED, seconds=0.0004).to_dict()["seconds"] == 0.0
    assert MutantResult("F", "c", "n", "code", MutantStatus.KILLED).to_dict()["detail"] == ""


def test_status_values_are_the_receipt_strings() -> None:
    assert [s.value for s in MutantStatus] == ["killed", "survived", "not-run", "error", "invalid"]


# --- judging a child run --------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "reason", "expected"), [
    ("REFUTED", "test_x failed", (MutantStatus.KILLED, "test_x failed")),
    ("REFUTED", "", (MutantStatus.KILLED, "")),
    ("CORROBORATED", "passed", (MutantStatus.SURVIVED, "every bound test passed with the fault in")),
    ("CORROBORATED", "", (MutantStatus.SURVIVED, "every bound test passed with the fault in")),
    ("UNDETERMINED", "skipped: no cuda", (MutantStatus.NOT_RUN, "skipped: no cuda")),
    ("UNDETERMINED", "", (MutantStatus.NOT_RUN, "")),
    (None, "", (MutantStatus.ERROR, "the run ended without a verdict")),
    (None, "crashed: signal 9", (MutantStatus.ERROR, "crashed: signal 9")),
    # near misses: only the exact outcome names count; anything else is an error, never a kill
    ("refuted", "", (MutantStatus.ERROR, "the run ended without a verdict")),
    ("REFUTED ", "x", (MutantStatus.ERROR, "x")),
    ("corroborated", "", (MutantStatus.ERROR, "the run ended without a verdict")),
    ("UNKNOWN", "", (MutantStatus.ERROR, "the run ended without a verdict")),
    ("", "", (MutantStatus.ERROR, "the run ended without a verdict")),
])
def test_judge_mutant_table(outcome: str | None, reason: str, expected: tuple[MutantStatus, str]) -> None:
    assert judge_mutant(outcome, reason) == expected


def test_vacuous_reasons_only_for_survivors_first_one_per_falsifier() -> None:
    results = [result("F-1", MutantStatus.KILLED, "a"), result("F-1", MutantStatus.SURVIVED, "b"),
               result("F-1", MutantStatus.SURVIVED, "c"), result("F-2", MutantStatus.INVALID, "d"),
               result("F-3", MutantStatus.NOT_RUN, "e"), result("F-4", MutantStatus.ERROR, "f"),
               result("F-5", MutantStatus.SURVIVED, "g")]
    assert vacuous_reasons(results) == {
        "F-1": "VACUOUS: mutant 'b' survived (its tests pass with the fault in; they cannot fail for it)",
        "F-5": "VACUOUS: mutant 'g' survived (its tests pass with the fault in; they cannot fail for it)",
    }
    assert vacuous_reasons([]) == {}


def test_invalid_mutant_reasons_only_for_invalid_first_one_per_falsifier() -> None:
    results = [result("F-1", MutantStatus.SURVIVED, "a"), result("F-1", MutantStatus.INVALID, "b", detail="no x"),
               result("F-1", MutantStatus.INVALID, "c", detail="no y"), result("F-2", MutantStatus.ERROR, "d"),
               result("F-3", MutantStatus.INVALID, "e", detail="outside")]
    tail = " (the declared fault cannot be applied; fix the mutant in the contract, see `apr contracts lint`)"
    assert invalid_mutant_reasons(results) == {"F-1": "INVALID MUTANT: no x" + tail,
                                               "F-3": "INVALID MUTANT: outside" + tail}
    assert invalid_mutant_reasons([]) == {}


def test_mutant_summary_counts_key_by_key() -> None:
    m1, m2, m3 = Mutant("a", TARGET, REPLACEMENT), Mutant("b", TARGET, REPLACEMENT), Mutant("c", artifact="x")
    falsifiers_ = [falsifier("F-1", "one", (m1, m2, m3)), falsifier("F-2", "one", (m1,)), falsifier("F-3", "one"),
                   falsifier("F-4", "two", (m1, m2)), falsifier("F-5", "one")]
    results = [result("F-1", MutantStatus.KILLED, "a", "one"), result("F-1", MutantStatus.KILLED, "b", "one"),
               result("F-1", MutantStatus.NOT_RUN, "c", "one"), result("F-2", MutantStatus.SURVIVED, "a", "one"),
               result("F-4", MutantStatus.ERROR, "a", "two"), result("F-4", MutantStatus.INVALID, "b", "two"),
               result("F-9", MutantStatus.KILLED, "z", "one")]  # not in scope: counted nowhere
    summary = mutant_summary(falsifiers_, results)
    assert list(summary) == ["one", "two"]
    assert list(summary["one"]) == ["declared", "killed", "survived", "not_run", "error", "invalid", "falsifiers",
                                    "without_mutant", "with_killed_mutant"]
    assert summary["one"] == {"declared": 4, "killed": 2, "survived": 1, "not_run": 1, "error": 0, "invalid": 0,
                              "falsifiers": 4, "without_mutant": 2, "with_killed_mutant": 1}
    assert summary["two"] == {"declared": 2, "killed": 0, "survived": 0, "not_run": 0, "error": 1, "invalid": 1,
                              "falsifiers": 1, "without_mutant": 0, "with_killed_mutant": 0}
    assert mutant_summary([], results) == {}


# --- finding a declared mutant --------------------------------------------------------------------


def test_find_mutant_by_falsifier_and_name() -> None:
    first, second, twin = Mutant("a", TARGET, REPLACEMENT), Mutant("b", artifact="truncate"), Mutant("b", TARGET, "x")
    table = {"F-1": falsifier("F-1", mutants=(first, second, twin)), "F-2": falsifier("F-2")}
    assert find_mutant(table, "F-1:a") == (table["F-1"], first)
    assert find_mutant(table, "F-1:b") == (table["F-1"], second)  # the first of that name
    with pytest.raises(SelectionError) as err:
        find_mutant(table, "F-9:a")
    assert str(err.value).splitlines()[0] == "--apply-mutant F-9:a: no contract declares 'F-9'"
    assert err.value.hint == "write FALSIFIER:MUTANT, e.g. FALSIFY-APR-FORMAT-004:skip-header-checksum"
    with pytest.raises(SelectionError) as err:
        find_mutant(table, "F-1:c")
    assert str(err.value).splitlines()[0] == "--apply-mutant F-1:c: F-1 declares no mutant 'c'"
    assert err.value.hint == "its mutants: a, b, b"
    with pytest.raises(SelectionError) as err:
        find_mutant(table, "F-2")  # no colon: the name is empty
    assert str(err.value).splitlines()[0] == "--apply-mutant F-2: F-2 declares no mutant ''"
    assert err.value.hint == "its mutants: none"


def _corpus(*mutants: Mutant) -> Corpus:
    return Corpus((), (), {"F-1": falsifier("F-1", mutants=mutants)})


def test_resolve_mutant_checks_artifact_mutators_and_code_names_now() -> None:
    art = Mutant("cut", artifact="truncate")
    assert "truncate" in MUTATORS
    assert resolve_mutant(_corpus(art), "F-1:cut") == (falsifier("F-1", mutants=(art,)), art)
    assert resolve_mutant(_corpus(CODE), "F-1:rename")[1] == CODE
    with pytest.raises(SelectionError) as err:
        resolve_mutant(_corpus(Mutant("cut", artifact="truncat")), "F-1:cut")
    assert str(err.value).splitlines()[0] == "--apply-mutant F-1:cut: no artifact mutator 'truncat'"
    assert err.value.hint == "built-in mutators: " + ", ".join(sorted(MUTATORS))
    with pytest.raises(SelectionError) as err:
        resolve_mutant(_corpus(Mutant("evil", "os.system", REPLACEMENT)), "F-1:evil")
    assert str(err.value).splitlines()[0] == mutation.namespace_problem(Mutant("evil", "os.system", REPLACEMENT))
    with pytest.raises(SelectionError, match="has no attribute 'NOPE'"):
        resolve_mutant(_corpus(Mutant("m", "falsifiers.report.NOPE", REPLACEMENT)), "F-1:m")
    with pytest.raises(SelectionError, match="has no attribute 'NOPE'"):
        resolve_mutant(_corpus(Mutant("m", TARGET, "falsifiers.mutation:NOPE")), "F-1:m")


# --- patching in and out --------------------------------------------------------------------------


def test_patch_in_sets_the_replacement_and_announces_it_patch_out_undoes_both() -> None:
    patch = patch_in(CODE)
    try:
        assert falsifiers.report.HARNESS == "VACUOUS"
        assert patch == Patch(falsifiers.report, "HARNESS", "apr-contracts", None)
        assert json.loads(os.environ[INHERIT_ENV]) == {"name": "rename", "target": TARGET,
                                                       "replacement": REPLACEMENT, "paths": [ROOT]}
    finally:
        patch_out(patch)
    assert falsifiers.report.HARNESS == "apr-contracts"
    assert INHERIT_ENV not in os.environ


def test_patch_out_puts_back_the_variable_a_parent_mutant_had_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INHERIT_ENV, "outer")
    patch = patch_in(CODE)
    assert patch is not None and patch.inherited == "outer"
    assert json.loads(os.environ[INHERIT_ENV])["name"] == "rename"
    patch_out(patch)
    assert os.environ[INHERIT_ENV] == "outer"
    assert falsifiers.report.HARNESS == "apr-contracts"


def test_an_artifact_mutant_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INHERIT_ENV, "outer")
    assert patch_in(Mutant("cut", artifact="truncate", target="os.system")) is None
    assert os.environ[INHERIT_ENV] == "outer"
    patch_out(None)
    assert os.environ[INHERIT_ENV] == "outer"
    with apply_mutant(Mutant("cut", artifact="truncate")):
        assert falsifiers.report.HARNESS == "apr-contracts"
        assert os.environ[INHERIT_ENV] == "outer"


@pytest.mark.parametrize("mutant", [Mutant("evil", "os.system", REPLACEMENT), Mutant("evil", TARGET, "builtins:print")])
def test_a_foreign_name_is_refused_before_anything_is_patched(mutant: Mutant) -> None:
    with pytest.raises(SelectionError) as err:
        patch_in(mutant)
    assert str(err.value).splitlines()[0] == mutation.namespace_problem(mutant)
    assert err.value.hint == NAMESPACES_HINT
    assert falsifiers.report.HARNESS == "apr-contracts" and INHERIT_ENV not in os.environ


@pytest.mark.parametrize("mutant", [Mutant("half", None, REPLACEMENT), Mutant("half", TARGET, None)])
def test_a_code_mutant_needs_both_target_and_replacement(mutant: Mutant) -> None:
    with pytest.raises(AssertionError):
        patch_in(mutant)
    with pytest.raises(AssertionError):
        resolve_mutant(_corpus(mutant), "F-1:half")
    assert falsifiers.report.HARNESS == "apr-contracts" and INHERIT_ENV not in os.environ


def test_patch_out_copes_with_the_variable_gone() -> None:
    patch = patch_in(CODE)
    del os.environ[INHERIT_ENV]  # the block removed it itself
    patch_out(patch)
    assert INHERIT_ENV not in os.environ and falsifiers.report.HARNESS == "apr-contracts"


def test_the_announced_paths_come_from_both_target_and_replacement() -> None:
    # `apr` is a namespace package (no __file__): only the other side names a folder
    for mutant in (Mutant("m", TARGET, "apr.cli.exit_codes:GO"), Mutant("m", "apr.cli.exit_codes.GO", REPLACEMENT)):
        patch = patch_in(mutant)
        try:
            assert json.loads(os.environ[INHERIT_ENV])["paths"] == [ROOT]
        finally:
            patch_out(patch)
    assert falsifiers.report.HARNESS == "apr-contracts"


def test_a_classmethod_is_restored_as_the_descriptor_itself() -> None:
    descriptor = ArtifactRecord.__dict__["from_dict"]
    assert isinstance(descriptor, classmethod)
    patch = patch_in(Mutant("m", "falsifiers.artifact.ArtifactRecord.from_dict", "falsifiers.mutation:judge_mutant"))
    try:
        assert ArtifactRecord.from_dict is judge_mutant
    finally:
        patch_out(patch)
    assert ArtifactRecord.__dict__["from_dict"] is descriptor


def test_an_inherited_method_is_patched_on_the_subclass_and_restored() -> None:
    assert "to_dict" not in SettingsError.__dict__
    patch = patch_in(Mutant("m", "falsifiers.errors.SettingsError.to_dict", "falsifiers.mutation:judge_mutant"))
    try:
        assert SettingsError.to_dict is judge_mutant
        assert patch is not None and patch.original is ContractError.to_dict
    finally:
        patch_out(patch)
        assert SettingsError.to_dict is ContractError.to_dict
        if "to_dict" in SettingsError.__dict__:
            delattr(SettingsError, "to_dict")


def test_apply_mutant_restores_even_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with apply_mutant(CODE):
            assert falsifiers.report.HARNESS == "VACUOUS"
            assert json.loads(os.environ[INHERIT_ENV])["target"] == TARGET
            raise RuntimeError("boom")
    assert falsifiers.report.HARNESS == "apr-contracts"
    assert INHERIT_ENV not in os.environ


def test_import_roots_one_folder_per_top_package_in_order() -> None:
    roots = mutation._import_roots
    assert roots(TARGET, REPLACEMENT) == [ROOT]  # both from the same folder: listed once
    assert roots("falsifiers.x:y") == [ROOT]  # the module part before ':' names the package
    assert roots("no_such_package_here.x") == []
    assert roots("tests:x") == [ROOT]  # a module without a dot
    assert roots("tests.harness.projects:contract_yaml") == [ROOT]  # the top package, not `tests.harness`
    assert getattr(sys.modules["tests.harness"], "__file__", None) is None  # (a namespace package: no folder)
    assert roots("apr.cli.exit_codes:GO") == []  # `apr` is a namespace package too
    assert roots("pytest.x", TARGET) == [os.fspath(Path(pytest.__file__).resolve().parent.parent), ROOT]


# --- a child started under a mutant ---------------------------------------------------------------


def _inherit(monkeypatch: pytest.MonkeyPatch, spec: object) -> Mutant | None:
    monkeypatch.setattr(falsifiers.report, "HARNESS", falsifiers.report.HARNESS)  # undone after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv(INHERIT_ENV, spec if isinstance(spec, str) else json.dumps(spec))
    return install_inherited_mutant()


def test_no_inherited_mutant_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert install_inherited_mutant() is None
    monkeypatch.setenv(INHERIT_ENV, "")
    assert install_inherited_mutant() is None


def test_an_inherited_mutant_is_patched_in_and_its_paths_appended(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    one, two = os.fspath(tmp_path / "one"), os.fspath(tmp_path / "two")
    before = list(sys.path)
    got = _inherit(monkeypatch, {"name": 7, "target": TARGET, "replacement": REPLACEMENT, "paths": [one, two]})
    assert got == Mutant("7", TARGET, REPLACEMENT)
    assert falsifiers.report.HARNESS == "VACUOUS"
    assert sys.path == before + [one, two]  # after the child's own entries
    install_inherited_mutant()  # the same variable again: nothing is added twice
    assert sys.path == before + [one, two]


def test_an_inherited_mutant_needs_no_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    before = list(sys.path)
    assert _inherit(monkeypatch, {"name": "m", "target": TARGET, "replacement": REPLACEMENT}) == \
        Mutant("m", TARGET, REPLACEMENT)
    assert sys.path == before and falsifiers.report.HARNESS == "VACUOUS"


@pytest.mark.parametrize("raw", ["{not json", json.dumps({"target": TARGET, "replacement": REPLACEMENT}),
                                 json.dumps([1, 2]), json.dumps({"name": "m", "target": TARGET,
                                                                 "replacement": REPLACEMENT, "paths": 5})])
def test_a_malformed_inherited_mutant_is_a_selection_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    with pytest.raises(SelectionError) as err:
        _inherit(monkeypatch, raw)
    assert str(err.value).startswith(f"{INHERIT_ENV} is not a mutant this harness wrote: ")
    assert err.value.hint == f"unset {INHERIT_ENV}"
    assert falsifiers.report.HARNESS == "apr-contracts"


def test_a_foreign_inherited_mutant_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = {"name": "evil", "target": "os.system", "replacement": "builtins:print", "paths": ["/elsewhere"]}
    with pytest.raises(SelectionError) as err:
        _inherit(monkeypatch, evil)
    expected = mutation.namespace_problem(Mutant("evil", "os.system", "builtins:print"))
    assert str(err.value).splitlines()[0] == f"{INHERIT_ENV}: {expected}"
    assert err.value.hint == f"unset {INHERIT_ENV}"
    assert "/elsewhere" not in sys.path


# --- Hypothesis in a mutant's run -----------------------------------------------------------------


def test_quiet_hypothesis_loads_a_derandomized_profile_and_gives_back_the_previous_one() -> None:
    from hypothesis import Phase, settings

    previous = settings._current_profile
    restore = quiet_hypothesis()
    try:
        assert settings._current_profile == "apr-contracts-mutant"
        assert settings.default.derandomize is True
        assert settings.default.database is None
        assert tuple(settings.default.phases) == (Phase.explicit, Phase.reuse, Phase.generate)
    finally:
        restore()
    assert settings._current_profile == previous


def test_quiet_hypothesis_overrides_a_random_profile_with_a_database() -> None:
    from hypothesis import settings
    from hypothesis.database import InMemoryExampleDatabase

    previous = settings._current_profile
    settings.register_profile("test-mut-random", derandomize=False, database=InMemoryExampleDatabase())
    settings.register_profile("apr-contracts-mutant", derandomize=False, database=InMemoryExampleDatabase())  # stale
    settings.load_profile("test-mut-random")
    try:
        restore = quiet_hypothesis()
        assert settings._current_profile == "apr-contracts-mutant"
        assert settings.default.derandomize is True and settings.default.database is None
        restore()
        assert settings._current_profile == "test-mut-random"
        assert settings.default.derandomize is False
    finally:
        settings.load_profile(previous)


def test_quiet_hypothesis_restores_the_default_profile_when_none_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis import settings

    previous = settings._current_profile
    try:
        monkeypatch.setattr(settings, "_current_profile", None)
        restore = quiet_hypothesis()
        restore()
        assert settings._current_profile == "default"
    finally:
        monkeypatch.undo()
        settings.load_profile(previous)


def test_quiet_hypothesis_without_hypothesis_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from hypothesis import settings

    previous = settings._current_profile
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    restore = quiet_hypothesis()
    assert settings._current_profile == previous
    assert restore() is None
    assert settings._current_profile == previous
