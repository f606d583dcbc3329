"""Declared mutants (issue 9): a falsifier whose tests cannot fail is VACUOUS, never evidence (INV-HARNESS-015)."""

from __future__ import annotations

import pytest

from falsifiers.errors import SelectionError
from falsifiers.mutation import apply_mutant, namespace_problem
from falsifiers.records import Mutant
from tests.harness.projects import Project, contract_yaml

# The fault: falsifiers.report.HARNESS (a string the harness names itself by) becomes "VACUOUS".
FAULT = {"name": "rename-harness", "target": "falsifiers.report.HARNESS", "replacement": "falsifiers.mutation:VACUOUS"}

TESTS = """
import pytest
import falsifiers.report

@pytest.mark.falsifies("FALSIFY-MUT-001")
def test_falsify_mut_001_strong():
    assert falsifiers.report.HARNESS == "apr-contracts"

@pytest.mark.falsifies("FALSIFY-MUT-002")
def test_falsify_mut_002_weak():
    falsifiers.report.HARNESS  # reads the value, asserts nothing

@pytest.mark.falsifies("FALSIFY-MUT-003")
def test_falsify_mut_003_no_mutant():
    assert falsifiers.report.HARNESS
"""


def _project(project: Project) -> Project:
    project.contract("mut-v1", contract_yaml("MUT", [{"mutants": [FAULT]}, {"mutants": [FAULT]}, {}]))
    project.test("test_mut", TESTS)
    return project


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_weak_test_survives_its_mutant_and_the_verdict_is_not_go(project: Project) -> None:
    _project(project)
    assert project.run("--contracts-json=plain.json").ret == 0  # without --mutants the weak test reads as evidence
    result = project.run("--mutants", "--contracts-json=verdict.json")
    assert result.ret == 2, result.stdout.str()
    receipt = project.receipt()
    assert receipt["verdict"] == "UNKNOWN"
    by_id = {f["id"]: f for f in receipt["falsifiers"]}
    assert by_id["FALSIFY-MUT-001"]["outcome"] == "CORROBORATED"
    assert by_id["FALSIFY-MUT-002"]["outcome"] == "UNDETERMINED" and by_id["FALSIFY-MUT-002"]["vacuous"]
    assert by_id["FALSIFY-MUT-002"]["reason"].startswith("VACUOUS: mutant 'rename-harness' survived")
    assert by_id["FALSIFY-MUT-003"]["outcome"] == "CORROBORATED" and by_id["FALSIFY-MUT-003"]["mutants"] == []
    status = {(m["falsifier"], m["name"]): m["status"] for m in receipt["mutants"]["results"]}
    assert status == {("FALSIFY-MUT-001", "rename-harness"): "killed", ("FALSIFY-MUT-002", "rename-harness"): "survived"}
    row = receipt["mutants"]["contracts"]["mut-v1"]
    assert (row["killed"], row["declared"], row["survived"], row["without_mutant"]) == (1, 2, 1, 1)
    result.stdout.fnmatch_lines(["*mutants: mut-v1: 1/2 killed, 1 survived*", "*survived: FALSIFY-MUT-002:rename-harness*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_apply_mutant_runs_one_falsifier_with_the_fault_in(project: Project) -> None:
    _project(project)
    result = project.run("--apply-mutant=FALSIFY-MUT-001:rename-harness", "--contracts-json=verdict.json")
    assert result.ret == 1
    assert project.outcomes() == {"FALSIFY-MUT-001": "REFUTED"}
    bad = project.run("--apply-mutant=FALSIFY-MUT-001:no-such-mutant")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*declares no mutant 'no-such-mutant'*", "*its mutants: rename-harness*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_mutant_is_restored_and_foreign_names_are_refused() -> None:
    import falsifiers.report

    with apply_mutant(Mutant("m", FAULT["target"], FAULT["replacement"])):
        assert falsifiers.report.HARNESS == "VACUOUS"
    assert falsifiers.report.HARNESS == "apr-contracts"
    evil = Mutant("evil", "os.system", "builtins:print")
    assert "outside the project's packages" in (namespace_problem(evil) or "")
    with pytest.raises(SelectionError):
        with apply_mutant(evil):
            pass


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_a_child_pytest_started_under_a_mutant_inherits_it(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from falsifiers.mutation import INHERIT_ENV, install_inherited_mutant

    monkeypatch.delenv(INHERIT_ENV, raising=False)
    project.contract("kid-v1", contract_yaml("KID"))
    project.test("test_kid", """
        import pytest
        import falsifiers.report

        @pytest.mark.falsifies("FALSIFY-KID-001")
        def test_falsify_kid_001():
            assert falsifiers.report.HARNESS == "apr-contracts"
    """)
    assert project.run_subprocess().ret == 0
    with apply_mutant(Mutant("m", FAULT["target"], FAULT["replacement"])):
        spec = json.loads(os.environ[INHERIT_ENV])
        assert (spec["target"], spec["replacement"]) == (FAULT["target"], FAULT["replacement"])
        assert project.run_subprocess().ret == 1  # the child patched the fault in itself
    assert INHERIT_ENV not in os.environ  # restored with the patch
    assert project.run_subprocess().ret == 0
    monkeypatch.setenv(INHERIT_ENV, json.dumps({"name": "evil", "target": "os.system",
                                                "replacement": "builtins:print"}))
    with pytest.raises(SelectionError, match="outside the project's packages"):
        install_inherited_mutant()
    monkeypatch.setenv(INHERIT_ENV, "{not json")
    with pytest.raises(SelectionError, match="not a mutant this harness wrote"):
        install_inherited_mutant()


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_lint_warns_on_a_falsifier_without_mutant_and_refuses_foreign_targets(project: Project) -> None:
    from falsifiers.lint import lint_paths

    project.contract("lint-v1", contract_yaml("LINT", [
        {}, {"mutants": [{"name": "evil", "target": "os.system", "replacement": "tests.m:f"}]},
        {"mutants": [{"name": "art", "artifact": "truncat"}]}]))
    corpus = lint_paths([project.root / "contracts"], relative_to=project.root)
    codes = {(f.code, f.severity.value) for f in corpus.findings}
    assert ("no-mutant", "warning") in codes
    assert ("mutant-namespace", "error") in codes
    unknown = next(f for f in corpus.findings if f.code == "unknown-mutator")
    assert "did you mean 'truncate'" in (unknown.hint or "")


ARTIFACT_TESTS = """
import pytest
from pathlib import Path

@pytest.mark.falsifies("FALSIFY-ARTM-001")
def test_falsify_artm_001(apr_artifact):
    assert Path(apr_artifact.path).stat().st_size == 64
"""


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_artifact_mutant_gives_the_tests_a_faulty_copy_and_leaves_the_file(project: Project) -> None:
    project.contract("artm-v1", contract_yaml("ARTM", [
        {"level": "artifact", "mutants": [{"name": "cut", "artifact": "truncate", "args": {"keep": 0.5}}]}]))
    project.test("test_artm", ARTIFACT_TESTS)
    target = project.root / "model.apr"
    target.write_bytes(bytes(64))
    result = project.run(f"--artifact={target}", "--mutants", "--contracts-json=verdict.json")
    assert result.ret == 0, result.stdout.str()
    receipt = project.receipt()
    assert [m["status"] for m in receipt["mutants"]["results"]] == ["killed"]
    assert target.read_bytes() == bytes(64) and receipt["artifact"]["changed"] is None


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_mutant_runs_are_planned_for_corroborated_falsifiers_fastest_test_first() -> None:
    from falsifiers.mutant_runs import child_command, plan_runs
    from falsifiers.mutation import MutantStatus
    from falsifiers.records import Falsifier, Location

    mutant = Mutant("m", FAULT["target"], FAULT["replacement"])
    good = Falsifier("FALSIFY-A-001", "a", ("INV-A-001",), "r", "p", "f", Location("a.yaml"), mutants=(mutant,))
    skipped = Falsifier("FALSIFY-A-002", "a", ("INV-A-002",), "r", "p", "f", Location("a.yaml"), mutants=(mutant,))
    runs, not_run = plan_runs([good, skipped], {"FALSIFY-A-001": "CORROBORATED", "FALSIFY-A-002": "UNDETERMINED"},
                              {"FALSIFY-A-001": ["t.py::slow", "t.py::fast"]}, {"t.py::slow": 9.0, "t.py::fast": 0.1})
    assert [r.nodeids for r in runs] == [("t.py::fast", "t.py::slow")]
    assert [(r.falsifier, r.status) for r in not_run] == [("FALSIFY-A-002", MutantStatus.NOT_RUN)]
    command = child_command(runs[0], __import__("pathlib").Path("r.json"), profile="cpu")
    assert "--apply-mutant=FALSIFY-A-001:m" in command and "-x" in command
    assert command.index("t.py::fast") < command.index("t.py::slow")
    assert runs[0].estimate == pytest.approx(9.1)  # the child's upper bound: longest runs start first


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_a_mutant_unchecked_for_a_missing_package_is_invalid_only_when_its_falsifier_was_corroborated() -> None:
    """numba's mutants in a run without numba: FALSIFY-EXPORT-013 is UNDETERMINED (requires numba), so
    its mutants are not run rather than INVALID (which would make the verdict NO-GO); a mutant that
    cannot be resolved for its corroborated falsifier stays INVALID, and a real resolution error
    stays INVALID whatever the outcome."""
    from falsifiers.mutant_runs import plan_runs
    from falsifiers.mutation import UNCHECKED, UNRESOLVED, MutantStatus, Problem
    from falsifiers.records import Falsifier, Location

    lacking, wrong = Mutant("lacking", FAULT["target"], FAULT["replacement"]), Mutant("wrong", "apr.x", "tests.m:f")
    falsifiers = [Falsifier(f"FALSIFY-A-00{i}", "a", (f"INV-A-00{i}",), "r", "p", "f", Location("a.yaml"),
                            mutants=(lacking, wrong)) for i in (1, 2)]

    def check(mutant: Mutant) -> Problem:
        return Problem(UNCHECKED if mutant.name == "lacking" else UNRESOLVED, f"mutant {mutant.name!r}: x", "h")

    runs, not_run = plan_runs(falsifiers, {"FALSIFY-A-001": "CORROBORATED", "FALSIFY-A-002": "UNDETERMINED"},
                              {"FALSIFY-A-001": ["t.py::t"]}, check=check)
    assert runs == []
    assert [(r.falsifier, r.name, r.status) for r in not_run] == [
        ("FALSIFY-A-001", "lacking", MutantStatus.INVALID), ("FALSIFY-A-001", "wrong", MutantStatus.INVALID),
        ("FALSIFY-A-002", "lacking", MutantStatus.NOT_RUN), ("FALSIFY-A-002", "wrong", MutantStatus.INVALID)]


def test_mutant_children_share_the_cpus_for_numeric_threads() -> None:
    from falsifiers.mutant_runs import thread_env

    assert thread_env({"A": "1"}, jobs=2, cpus=8)["OMP_NUM_THREADS"] == "4"
    assert thread_env({}, jobs=4, cpus=2)["MKL_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in thread_env({}, jobs=1, cpus=8)  # one at a time: the library's default
    assert thread_env({"OMP_NUM_THREADS": "3"}, jobs=2, cpus=8)["OMP_NUM_THREADS"] == "3"  # the user's choice


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_an_in_process_mutant_run_leaves_hypothesis_settings_as_it_found_them(project: Project) -> None:
    from hypothesis import Phase, settings

    before = settings.default.phases
    _project(project)
    project.run("--apply-mutant=FALSIFY-MUT-001:rename-harness")
    assert settings.default.phases == before and Phase.shrink in settings.default.phases


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_a_mutant_run_draws_the_same_examples_whatever_the_profile(project: Project,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill must not hang on a lucky draw: under a mutant the examples are derandomized, and so
    the same on a laptop (randomized profile) as in CI; the database and shrinking are off."""
    project.test("test_draws", """
import os
import pytest
from hypothesis import Phase, given, settings, strategies as st

@pytest.mark.falsifies("FALSIFY-MUT-001")
@given(st.integers())
def test_falsify_mut_001_records(n):
    current = settings()
    assert current.derandomize and current.database is None and Phase.shrink not in current.phases
    with open(os.environ["DRAWS"], "a") as out:
        out.write(f"{n}\\n")
""")
    _project(project)
    draws = []
    for run in range(2):
        path = project.root / f"draws{run}.txt"
        monkeypatch.setenv("DRAWS", str(path))
        project.run("--apply-mutant=FALSIFY-MUT-001:rename-harness", "-k", "records").assert_outcomes(passed=1)
        draws.append(path.read_text().split())
    assert draws[0] and draws[0] == draws[1]


# --- the zygote: mutant children forked from a warm parent ----------------------------------------

ZYGOTE_TESTS = """
import os, time
import falsifiers.report

def test_patch():
    falsifiers.report.HARNESS = "patched in a child"
    assert os.environ.get("APR_ZYGOTE_PROBE") == "set"

def test_pristine():
    assert falsifiers.report.HARNESS == "apr-contracts"

def test_hang():
    time.sleep(600)
"""


@pytest.fixture
def zygote(tmp_path):
    import os

    from falsifiers.mutant_runs import Zygote, supported

    if not supported(os.environ):
        pytest.skip("the zygote needs fork (Linux); elsewhere mutants start fresh interpreters")
    (tmp_path / "test_z.py").write_text(ZYGOTE_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {"APR_ZYGOTE_PROBE": "set"}
    warm = Zygote.start(cwd=tmp_path, env=env)
    assert warm is not None
    yield warm
    warm.close()
    assert warm.process.returncode == 0  # closing its input ends it cleanly


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_a_zygote_child_is_a_pytest_run_whose_changes_die_with_it(zygote, tmp_path) -> None:
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:apr_contracts"]
    assert zygote.run(["test_z.py::test_patch", *args], log=tmp_path / "1.log", timeout=120) == (0, False)
    assert "1 passed" in (tmp_path / "1.log").read_text()
    # the previous child patched the module in its own memory only
    assert zygote.run(["test_z.py::test_pristine", *args], log=tmp_path / "2.log", timeout=120) == (0, False)
    assert zygote.run(["test_z.py::test_missing", *args], log=tmp_path / "3.log", timeout=120)[0] == 4


def test_a_hanging_zygote_child_is_killed_at_its_timeout(zygote, tmp_path) -> None:
    import time

    start = time.monotonic()
    code, timed_out = zygote.run(["test_z.py::test_hang", "-q", "-p", "no:cacheprovider"], log=tmp_path / "h.log",
                                 timeout=3)
    # Well before the hang's own 600 s: the kill landed (a loaded machine once took 30 s to get there).
    assert timed_out and code != 0 and time.monotonic() - start < 300
    assert zygote.run(["test_z.py::test_pristine", "-q"], log=tmp_path / "4.log", timeout=120) == (0, False)


def test_a_zygote_that_dies_or_garbles_its_answer_reads_as_none(tmp_path) -> None:
    import subprocess
    import sys

    from falsifiers.mutant_runs import Zygote

    for script in ("import sys; sys.stdin.readline(); print('a library said hello')",
                   "import sys; sys.stdin.readline()"):
        fake = Zygote(subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True))
        assert fake.run(["-q"], log=tmp_path / "x.log", timeout=5) is None  # the caller then starts python
        fake.close()


def test_mutant_runs_without_the_zygote_give_the_same_results(project: Project, monkeypatch) -> None:
    from falsifiers.mutant_runs import DISABLE_ENV

    monkeypatch.setenv(DISABLE_ENV, "0")
    _project(project)
    project.run("--mutants", "--contracts-json=verdict.json")
    statuses = {(m["falsifier"], m["status"]) for m in project.receipt()["mutants"]["results"]}
    assert statuses == {("FALSIFY-MUT-001", "killed"), ("FALSIFY-MUT-002", "survived")}
