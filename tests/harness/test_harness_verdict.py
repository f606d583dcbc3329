"""The pure rules: binding both ways, and the verdict lattice (FALSIFY-HARNESS-002, -006)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from falsifiers.binding import Claim, bind_falsifiers
from falsifiers.records import Falsifier, Location
from falsifiers.settings import BUILTIN_PROFILES, Profile
from falsifiers.verdict import Outcome, TestResult, TestStatus, Verdict, compute_verdict


def falsifier(n: int, **extra) -> Falsifier:
    return Falsifier(f"FALSIFY-T-{n:03d}", "t-v1", (f"INV-T-{n:03d}",), "r", "p", "f",
                     Location("contracts/t-v1.yaml", 10 + n, 9), **extra)


@pytest.mark.falsifies("FALSIFY-HARNESS-002")
def test_binding_reports_both_directions() -> None:
    declared = {f.id: f for f in (falsifier(1), falsifier(2), falsifier(3, pending="later"))}
    claims = [Claim("tests/t.py::a", ("FALSIFY-T-001", "FALSIFY-T-01"), Location("tests/t.py", 5)),
              Claim("tests/t.py::b", (), Location("tests/t.py", 9), bad_args=("42",))]
    bindings = bind_falsifiers(declared, claims)
    assert bindings.tests == {"FALSIFY-T-001": ("tests/t.py::a",)}
    messages = {p.code: p.message for p in bindings.problems}
    assert messages["unknown-id"].startswith("tests/t.py:5: tests/t.py::a claims falsifier FALSIFY-T-01,")
    assert "did you mean FALSIFY-T-001? (declared at contracts/t-v1.yaml:11:9)" in messages["unknown-id"]
    assert messages["unbound"].startswith("contracts/t-v1.yaml:12:9: falsifier FALSIFY-T-002")
    assert "@pytest.mark.falsifies(42)" in messages["bad-mark"]
    assert not any("FALSIFY-T-003" in p.message for p in bindings.problems)  # pending needs no test
    narrowed = bind_falsifiers(declared, claims[:1], require_all=False)
    assert [p.code for p in narrowed.problems] == ["unknown-id"]


STATUSES = st.sampled_from(list(TestStatus))


@pytest.mark.falsifies("FALSIFY-HARNESS-006")
@given(st.lists(st.lists(STATUSES, max_size=3), min_size=1, max_size=5), st.sampled_from(sorted(BUILTIN_PROFILES)))
def test_verdict_lattice(per_falsifier: list[list[TestStatus]], profile_name: str) -> None:
    profile = BUILTIN_PROFILES[profile_name]
    falsifiers, bindings, results = [], {}, {}
    for n, statuses in enumerate(per_falsifier, start=1):
        f = falsifier(n)
        falsifiers.append(f)
        bindings[f.id] = [f"t.py::t{n}_{k}" for k in range(len(statuses))]
        for k, status in enumerate(statuses):
            results[f"t.py::t{n}_{k}"] = TestResult(f"t.py::t{n}_{k}", status)
    report = compute_verdict(falsifiers, bindings, set(results), results, profile)
    for item, statuses in zip(report.falsifiers, per_falsifier, strict=True):
        if TestStatus.FAILED in statuses:
            assert item.outcome is Outcome.REFUTED
        elif statuses and all(s is TestStatus.PASSED for s in statuses):
            assert item.outcome is Outcome.CORROBORATED
        else:  # nothing ran, or a skip / xfail / xpass / health check: never a pass
            assert item.outcome is Outcome.UNDETERMINED and item.required
    outcomes = {o.outcome for o in report.falsifiers}
    if Outcome.REFUTED in outcomes:
        assert (report.verdict, report.exit_code) == (Verdict.NO_GO, 1)
    elif Outcome.UNDETERMINED in outcomes:
        assert (report.verdict, report.exit_code) == (Verdict.UNKNOWN, 2)
    else:
        assert (report.verdict, report.exit_code) == (Verdict.GO, 0)


@pytest.mark.falsifies("FALSIFY-HARNESS-001")
def test_profile_tolerance_is_explicit_and_narrow() -> None:
    cuda = falsifier(1, requires=("cuda",))
    pending = falsifier(2, pending="needs a GPU run")
    plain = falsifier(3)
    results = {"t::c": TestResult("t::c", TestStatus.SKIPPED, reason="no CUDA"),
               "t::p": TestResult("t::p", TestStatus.PASSED)}
    bindings = {cuda.id: ["t::c"], plain.id: ["t::p"]}
    cpu = compute_verdict([cuda, pending, plain], bindings, set(results), results, BUILTIN_PROFILES["cpu"])
    assert cpu.verdict is Verdict.GO
    reasons = {o.falsifier.id: o.reason for o in cpu.falsifiers}
    assert reasons[cuda.id] == "requires cuda; not required by profile cpu (skipped: no CUDA)"
    assert reasons[pending.id] == "pending: needs a GPU run; tolerated by profile cpu"
    for name in ("gpu", "release"):
        assert compute_verdict([cuda, plain], bindings, set(results), results,
                               BUILTIN_PROFILES[name]).verdict is Verdict.UNKNOWN
    assert compute_verdict([pending], {}, set(), {}, BUILTIN_PROFILES["release"]).verdict is Verdict.UNKNOWN
    assert compute_verdict([], {}, set(), {}, Profile("cpu")).verdict is Verdict.UNKNOWN  # nothing checked


def test_setup_failure_refutes_and_partial_runs_do_not_corroborate() -> None:
    f = falsifier(1)
    results = {"t::a": TestResult("t::a", TestStatus.PASSED),
               "t::b": TestResult("t::b", TestStatus.FAILED, phase="setup", reason="OSError: gone")}
    report = compute_verdict([f], {f.id: ["t::a", "t::b"]}, {"t::a", "t::b"}, results, Profile("cpu"))
    assert report.falsifiers[0].outcome is Outcome.REFUTED
    assert report.falsifiers[0].reason == "t::b failed (in setup): OSError: gone"
    partial = compute_verdict([f], {f.id: ["t::a", "t::c"]}, {"t::a", "t::c"}, results, Profile("cpu"))
    assert partial.falsifiers[0].reason == "1 of 2 bound tests did not run"


def test_the_table_folds_only_contracts_whose_falsifiers_all_held() -> None:
    from falsifiers.report import receipt, render_receipt, render_verdict

    held = [Falsifier(f"FALSIFY-A-00{n}", "a-v1", (f"INV-A-00{n}",), "r", "p", "f", Location("a.yaml")) for n in (1, 2)]
    mixed = [falsifier(1), falsifier(2)]
    nodeids = {f.id: [f"t.py::{f.id}"] for f in held + mixed}
    results = {n[0]: TestResult(n[0], TestStatus.PASSED) for n in nodeids.values()}
    results["t.py::FALSIFY-T-002"] = TestResult("t.py::FALSIFY-T-002", TestStatus.FAILED, reason="boom")
    report = compute_verdict(held + mixed, nodeids, results, results, Profile("cpu"))
    rows = [line.split()[:3] for line in render_verdict(report, width=200).splitlines()[2:6]]
    assert rows[0] == ["a-v1", "all", "2"]  # folded: every falsifier of a-v1 held
    assert [r[1] for r in rows[1:3]] == ["FALSIFY-T-001", "FALSIFY-T-002"]  # t-v1 has a refutation: each row shown
    verbose = render_verdict(report, width=200, verbose=True)
    assert "FALSIFY-A-001" in verbose and "FALSIFY-A-002" in verbose and "all 2" not in verbose
    # The table rebuilt from the receipt (what `apr contracts verify` prints) is the same table.
    document = receipt(report, [], scope="full", exit_code=1, pytest_exit=1)
    for wide in (False, True):
        assert render_receipt(document, width=200, verbose=wide) == render_verdict(report, width=200, verbose=wide)
