"""FALSIFY-HARNESS-017: a mutant names the project's own objects at every step, or it is an error.

`apr.format.atomic.os.system` starts in the project and walks into the standard library's ``os``:
the first-segment check let it through and ``--mutants`` patched ``os.system`` for the whole process.
A mutant whose names do not resolve was listed as an error while the verdict stayed GO. Here: every
dotted path with a foreign segment inserted anywhere is refused before anything is patched; lint
reports each form; ``--mutants`` makes the verdict NO-GO.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from falsifiers.errors import SelectionError
from falsifiers.mutation import (
    NAMESPACE,
    UNRESOLVED,
    ProjectImporter,
    mutant_problem,
    resolve_target,
)
from falsifiers.mutation import INHERIT_ENV, apply_mutant, install_inherited_mutant
from falsifiers.records import Mutant
from tests.harness.projects import Project, contract_yaml

REPO = Path(__file__).resolve().parents[2]
REPLACEMENT = "falsifiers.mutation:VACUOUS"
# Valid targets of several shapes: a function, a constant, a class attribute, an enum member.
TARGETS = ("falsifiers.mutation.vacuous_reasons", "falsifiers.report.HARNESS", "falsifiers.verdict.compute_verdict",
           "apr.qa.throughput.ThroughputSample.rate", "apr.qa.throughput.meets_threshold",
           "falsifiers.verdict.Verdict.GO", "falsifiers.mutant_runs.plan_runs")
REPLACEMENTS = (REPLACEMENT, "tests.harness.mutants_resolution:PLAIN_DATA", "apr.qa.throughput:UNIT",
                "tests.harness.mutants_resolution:no_invalid_mutants")
# Names a project object may lead to that are not the project's: modules it imports, their
# functions, and the interpreter's own attributes of every object.
FOREIGN = ("os", "sys", "json", "time", "inspect", "contextlib", "importlib", "builtins", "system", "getcwd",
           "__builtins__", "__class__", "__dict__", "__globals__", "__base__", "__module__", "__code__")
WATCHED = {"os.system": (os, "system"), "os.getcwd": (os, "getcwd"), "sys.exit": (sys, "exit"),
           "json.dumps": (json, "dumps")}


def _inserted(dotted: str, position: int, segment: str) -> str:
    parts = dotted.split(".")
    return ".".join(parts[:position] + [segment] + parts[position:])


def _refused_without_a_patch(mutant: Mutant) -> str:
    """The mutant is refused by resolution, and applying it patches nothing; returns the problem's code."""
    before = {name: getattr(owner, attr) for name, (owner, attr) in WATCHED.items()}
    problem = mutant_problem(mutant)
    assert problem is not None, mutant
    with pytest.raises(SelectionError):
        with apply_mutant(mutant):
            pytest.fail(f"{mutant} was applied")
    assert {name: getattr(owner, attr) for name, (owner, attr) in WATCHED.items()} == before
    return problem.code


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
def test_falsify_harness_017_valid_mutants_resolve_and_apply() -> None:
    import falsifiers.report

    for target in TARGETS:
        for replacement in REPLACEMENTS:
            assert mutant_problem(Mutant("ok", target, replacement)) is None, (target, replacement)
    # A target's last name is rebound on its project owner only: the foreign module it held is untouched.
    assert mutant_problem(Mutant("ok", "falsifiers.mutation.os", REPLACEMENT)) is None
    with apply_mutant(Mutant("ok", "falsifiers.report.HARNESS", REPLACEMENT)):
        assert falsifiers.report.HARNESS == "VACUOUS"
    assert falsifiers.report.HARNESS == "apr-contracts"


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
@given(target=st.sampled_from(TARGETS), segment=st.sampled_from(FOREIGN), data=st.data())
def test_falsify_harness_017_a_foreign_segment_anywhere_in_a_target_is_refused(
        target: str, segment: str, data: st.DataObject) -> None:
    # Every position where the segment is imported or walked through (0: it is the package itself).
    position = data.draw(st.integers(0, target.count(".")), label="position")
    code = _refused_without_a_patch(Mutant("m", _inserted(target, position, segment), REPLACEMENT))
    assert code in (NAMESPACE, UNRESOLVED)


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
@given(target=st.sampled_from(TARGETS), segment=st.sampled_from(FOREIGN))
def test_falsify_harness_017_a_foreign_last_name_is_only_rebound_on_the_project_object(target: str, segment: str) -> None:
    """Appended after a valid target, the segment is the name rebound: allowed only on the object the
    valid target names (a project object), never walked into (``apr.train.loop.math`` is this shape)."""
    owner, name = resolve_target(target)
    named = getattr(owner, name)
    try:
        patched_on, rebound = resolve_target(f"{target}.{segment}")
    except SelectionError:
        return
    assert patched_on is named and rebound == segment  # the project object the valid target names, nothing deeper


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
@given(spec=st.sampled_from(REPLACEMENTS), segment=st.sampled_from(FOREIGN), data=st.data())
def test_falsify_harness_017_a_foreign_segment_anywhere_in_a_replacement_is_refused(
        spec: str, segment: str, data: st.DataObject) -> None:
    module, attribute = spec.split(":")
    parts = [*module.split("."), *attribute.split(".")]
    in_module = module.count(".") + 1
    position = data.draw(st.integers(0, len(parts) - 1), label="position")  # followed by a name: walked through
    # Inserted between the module and the attribute, the segment may join either side of the ':'.
    side = data.draw(st.sampled_from(("module", "attribute")), label="side") if position == in_module else \
        "module" if position < in_module else "attribute"
    cut = in_module + (side == "module")
    changed = parts[:position] + [segment] + parts[position:]
    mutated = ".".join(changed[:cut]) + ":" + ".".join(changed[cut:])
    code = _refused_without_a_patch(Mutant("m", "falsifiers.report.HARNESS", mutated))
    assert code in (NAMESPACE, UNRESOLVED)


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
def test_falsify_harness_017_reaching_a_foreign_object_is_a_namespace_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for target, replacement in (
        ("apr.format.atomic.os.system", REPLACEMENT),  # the example
        ("falsifiers.mutation.os.getcwd", REPLACEMENT),
        ("falsifiers.mutation.vacuous_reasons.__globals__.x", REPLACEMENT),  # a function's globals: a dict
        ("falsifiers.report.HARNESS", "falsifiers.mutation:os"),  # a foreign module patched in
        ("falsifiers.report.HARNESS", "falsifiers.mutation:os.getcwd"),
        ("falsifiers.report.HARNESS", "tests.harness.mutants_resolution:FOREIGN_FUNCTION"),  # os.getcwd, imported
        ("falsifiers.report.HARNESS", "tests.harness.mutants_resolution:FOREIGN_INSIDE_DATA"),  # os.getcwd in a tuple
    ):
        assert _refused_without_a_patch(Mutant("m", target, replacement)) == NAMESPACE, (target, replacement)
    monkeypatch.setenv(INHERIT_ENV, json.dumps({"name": "m", "target": "falsifiers.mutation.os.getcwd",
                                                "replacement": REPLACEMENT}))
    with pytest.raises(SelectionError, match="not defined in the project"):
        install_inherited_mutant()  # a child pytest refuses it too
    assert os.getcwd() == str(Path.cwd())


# One falsifier per form of a broken mutant, and the lint code each must get.
FORMS = (
    ({"target": "apr.no_such_module.x", "replacement": REPLACEMENT}, UNRESOLVED),
    ({"target": "falsifiers.report.NO_SUCH_NAME", "replacement": REPLACEMENT}, UNRESOLVED),
    ({"target": "falsifiers..report", "replacement": REPLACEMENT}, UNRESOLVED),
    ({"target": "falsifiers.report.HARNESS", "replacement": "falsifiers.no_such_module:x"}, UNRESOLVED),
    ({"target": "falsifiers.report.HARNESS", "replacement": "falsifiers.mutation:NO_SUCH_NAME"}, UNRESOLVED),
    ({"target": "falsifiers.mutation.os.getcwd", "replacement": REPLACEMENT}, NAMESPACE),
    ({"target": "falsifiers.report.HARNESS", "replacement": "falsifiers.mutation:os.getcwd"}, NAMESPACE),
    ({"target": "falsifiers.report.HARNESS", "replacement": "tests.harness.mutants_resolution:FOREIGN_FUNCTION"},
     NAMESPACE),
    ({"target": "os.system", "replacement": REPLACEMENT}, NAMESPACE),
    ({"target": "falsifiers.report.HARNESS", "replacement": "tests.harness.mutants_resolution:PLAIN_DATA"}, None),
)


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
def test_falsify_harness_017_lint_reports_every_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from apr.cli.main import main
    from falsifiers.lint import lint_paths

    contract = tmp_path / "forms-v1.yaml"
    contract.write_text(contract_yaml("FORMS", [{"mutants": [{"name": f"form-{n}", **form}]}
                                                for n, (form, _) in enumerate(FORMS, start=1)]), encoding="utf-8")
    corpus = lint_paths([contract], relative_to=tmp_path, resolve_mutants=REPO)
    for n, (_, code) in enumerate(FORMS, start=1):
        found = {f.code for f in corpus.findings if f"FALSIFY-FORMS-{n:03d}:" in f.message and f.is_error}
        assert found == ({code} if code else set()), (n, found)
    assert not corpus.contract("forms-v1").is_valid
    plain = lint_paths([contract], relative_to=tmp_path)  # without resolving: only the first segment is checked
    assert {f.code for f in plain.findings if f.is_error} == {NAMESPACE, "bad-value"}  # 'os.', and the schema's 'a..b'
    monkeypatch.chdir(REPO)
    assert main(["contracts", "lint", str(contract)]) == 5  # `apr contracts lint` resolves
    assert "FALSIFY-FORMS-006: mutant 'form-6': target 'falsifiers.mutation.os.getcwd'" in capsys.readouterr().out


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
def test_falsify_harness_017_every_mutant_in_the_repository_resolves() -> None:
    from falsifiers.lint import lint_paths

    corpus = lint_paths([REPO / "contracts"], relative_to=REPO, resolve_mutants=REPO)
    assert [f.render() for f in corpus.findings if f.code in (NAMESPACE, UNRESOLVED)] == []
    declared = [m for f in corpus.falsifiers.values() for m in f.mutants if m.target]
    assert len(declared) > 100


@pytest.mark.falsifies("FALSIFY-HARNESS-017")
def test_falsify_harness_017_a_mutant_that_cannot_be_applied_makes_the_verdict_no_go(project: Project) -> None:
    project.contract("bad-v1", contract_yaml("BAD", [
        {"mutants": [{"name": "through-os", "target": "falsifiers.mutation.os.getcwd", "replacement": REPLACEMENT}]},
        {"mutants": [{"name": "no-such-name", "target": "falsifiers.report.NO_SUCH_NAME", "replacement": REPLACEMENT}]},
    ]))
    project.test("test_bad", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-BAD-001")
        def test_falsify_bad_001():
            assert True

        @pytest.mark.falsifies("FALSIFY-BAD-002")
        def test_falsify_bad_002():
            assert True
    """)
    getcwd = os.getcwd
    result = project.run("--mutants", "--contracts-json=verdict.json")
    assert os.getcwd is getcwd
    assert result.ret == 1, result.stdout.str()
    receipt = project.receipt()
    assert receipt["verdict"] == "NO-GO"
    rows = {f["id"]: f for f in receipt["falsifiers"]}
    assert {rows[i]["outcome"] for i in ("FALSIFY-BAD-001", "FALSIFY-BAD-002")} == {"REFUTED"}
    assert rows["FALSIFY-BAD-001"]["reason"].startswith("INVALID MUTANT: mutant 'through-os': target")
    assert "has no attribute 'NO_SUCH_NAME'" in rows["FALSIFY-BAD-002"]["reason"]
    assert [m["status"] for m in receipt["mutants"]["results"]] == ["invalid", "invalid"]
    assert receipt["mutants"]["contracts"]["bad-v1"]["invalid"] == 2
    result.stdout.fnmatch_lines(["*mutants: bad-v1: 0/2 killed, 2 invalid*", "*invalid: FALSIFY-BAD-001:through-os*"])


def test_the_importer_refuses_a_tests_package_from_elsewhere(tmp_path: Path) -> None:
    """Outside pytest, lint imports `tests` only from the project root: here it is this repository's, so
    for a project in ``tmp_path`` it is someone else's and is refused (never executed)."""
    importer = ProjectImporter(tmp_path)
    with importer.active():
        problem = mutant_problem(Mutant("m", "falsifiers.report.HARNESS",
                                        "tests.harness.mutants_resolution:PLAIN_DATA"), importer=importer)
    assert problem is not None and problem.code == NAMESPACE and "outside the project" in problem.message
