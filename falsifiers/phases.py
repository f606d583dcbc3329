"""A bound test's pytest reports (setup, call, teardown) -> what happened to it, as one `TestResult`.

The plugin stores each bound test's reports as they arrive and reads them here once the session
ends: a failed phase refutes (unless its evidence says a Hypothesis health check fired), a skip,
an xfail or an xpass is never a pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.verdict import TestResult

EVIDENCE_ATTR = "apr_contracts_evidence"  # on failed reports; plain data, so xdist carries it


def total_duration(phases: dict[str, Any]) -> float:
    """Seconds a test took, its phases together (a report without a duration counts 0)."""
    return sum(float(getattr(report, "duration", 0.0) or 0.0) for report in phases.values())


def _skip_reason(report: Any) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return ""


def results_of(phases_by_test: dict[str, dict[str, Any]]) -> dict[str, TestResult]:
    """What happened to each bound test; a test whose three phases passed is decided at once."""
    from falsifiers.verdict import TestResult, TestStatus

    results = {}
    for nodeid, phases in phases_by_test.items():
        if passed_cleanly(phases):
            duration = phases["setup"].duration + phases["call"].duration + phases["teardown"].duration
            results[nodeid] = TestResult(nodeid, TestStatus.PASSED, duration, "call")
        else:
            results[nodeid] = result_of(nodeid, phases)
    return results


def passed_cleanly(phases: dict[str, Any]) -> bool:
    """Setup, call and teardown all reported and passed, and not an xpass: `result_of` says PASSED."""
    call = phases.get("call")
    return (call is not None and call.outcome == "passed" and len(phases) == 3
            and phases["setup"].outcome == "passed" and phases["teardown"].outcome == "passed"
            and not hasattr(call, "wasxfail"))


def result_of(nodeid: str, phases: dict[str, Any]) -> TestResult:
    """What happened to one bound test, from its setup/call/teardown reports."""
    from falsifiers.verdict import TestResult, TestStatus

    duration = total_duration(phases)
    for when in ("setup", "call", "teardown"):
        phase = phases.get(when)
        if phase is None or phase.outcome != "failed":
            continue
        evidence = getattr(phase, EVIDENCE_ATTR, None) or {}
        status = TestStatus.HEALTH_CHECK if evidence.get("health_check") else TestStatus.FAILED
        return TestResult(nodeid, status, duration, when, evidence.get("reason", "") or "failed",
                          evidence.get("seed"), evidence.get("reproduce"), evidence.get("example"))
    for when in ("setup", "call"):
        phase = phases.get(when)
        if phase is not None and phase.outcome == "skipped":
            wasxfail = getattr(phase, "wasxfail", None)
            if wasxfail is not None:
                return TestResult(nodeid, TestStatus.XFAILED, duration, when, wasxfail or "xfail")
            return TestResult(nodeid, TestStatus.SKIPPED, duration, when, _skip_reason(phase))
    call = phases.get("call")
    if call is not None and call.outcome == "passed":
        wasxfail = getattr(call, "wasxfail", None)
        if wasxfail is not None:
            return TestResult(nodeid, TestStatus.XPASSED, duration, "call", wasxfail or "xpass")
        return TestResult(nodeid, TestStatus.PASSED, duration, "call")
    return TestResult(nodeid, TestStatus.SKIPPED, duration, "setup", "did not reach the test body")


__all__ = ["EVIDENCE_ATTR", "passed_cleanly", "result_of", "results_of", "total_duration"]
