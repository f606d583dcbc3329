"""Deliberate faults for contracts/harness-v1.yaml: each must turn its falsifier's tests red.

Each replacement wraps the real function and breaks exactly the promise its falsifier checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from falsifiers import binding, loader, session, verdict

_real_judge = verdict.judge_falsifier
_real_bind = binding.bind_falsifiers
_real_syntax = loader._syntax_finding
_real_evidence = session.failure_evidence
_real_compute = verdict.compute_verdict
_real_results_of = session.results_of


def judge_skip_as_pass(*args: Any, **kwargs: Any) -> tuple[verdict.Outcome, str]:
    """A skipped test counts as a pass (pytest's and pv's default)."""
    outcome, reason = _real_judge(*args, **kwargs)
    if outcome is verdict.Outcome.UNDETERMINED and reason.startswith("skipped"):
        return verdict.Outcome.CORROBORATED, "passed (a skip)"
    return outcome, reason


def bind_without_problems(*args: Any, **kwargs: Any) -> binding.Bindings:
    """Bindings are never checked: no collection error for a missing test or an unknown id."""
    return dataclasses.replace(_real_bind(*args, **kwargs), problems=())


def results_all_passed(phases_by_test: Any) -> Any:
    """Every bound test that ran counts as passed, whatever happened to it."""
    return {nodeid: dataclasses.replace(result, status=verdict.TestStatus.PASSED)
            for nodeid, result in _real_results_of(phases_by_test).items()}


def bind_ignoring_unknown(falsifiers: Any, claims: Any, **kwargs: Any) -> Any:
    """Claimed ids that no contract declares are dropped before binding, so nothing reports them."""
    known = [dataclasses.replace(c, ids=tuple(i for i in c.ids if i in falsifiers) or c.ids) for c in claims]
    return _real_bind(falsifiers, known, **kwargs)


def syntax_finding_at_top(err: Any, path: str, text: str) -> Any:
    """A YAML syntax error is reported at line 1 of the file, not where it is."""
    finding = _real_syntax(err, path, text)
    return dataclasses.replace(finding, location=loader.Location(path, 1, 1))


def no_suggestion(word: str, choices: Any) -> None:
    """Unknown keys get no did-you-mean."""
    return None


def no_findings(*args: Any, **kwargs: Any) -> list[Any]:
    """A lint rule that never fires."""
    return []


def health_check_as_failure(item: Any, call: Any, report: Any) -> dict[str, Any]:
    """A Hypothesis health check is taken for a failed test."""
    return {**_real_evidence(item, call, report), "health_check": False}


def invalid_contract_spreads(falsifiers: Any, *args: Any, invalid: Any = (), **kwargs: Any) -> verdict.VerdictReport:
    """One malformed contract makes every falsifier UNDETERMINED."""
    report = _real_compute(falsifiers, *args, invalid=invalid, **kwargs)
    if not invalid:
        return report
    spread = tuple(dataclasses.replace(o, outcome=verdict.Outcome.UNDETERMINED, reason="its contract file has errors")
                   for o in report.falsifiers)
    return dataclasses.replace(report, falsifiers=spread)


# The scaffold's bound test starts green instead of red: a new contract could reach GO with no evidence.
GREEN_SCAFFOLD_TEST = '''\
"""Evidence for {contract} (drafted by `apr contracts new {name}`)."""

import pytest


@pytest.mark.falsifies("{fal}")
def {function}() -> None:
    # {inv}
    pass
'''


def everything_is_a_function(text: Any) -> str:
    """classify_test that takes every pv `test:` value for a test function name (prose binds)."""
    return "function"


def no_environment() -> dict[str, Any]:
    """The receipt names no versions."""
    return {}


def unchanged(before: Any, after: Any) -> None:
    """The artifact's digest is never re-checked."""
    return None


def nothing_vacuous(results: Any) -> dict[str, str]:
    """Surviving mutants change nothing."""
    return {}


__all__ = [name for name in dir() if not name.startswith("_") and name not in
           ("annotations", "dataclasses", "Any", "binding", "lint", "loader", "mutation", "session", "verdict")]


def configure_without_guard(config: Any) -> None:
    """The plugin's pytest_configure without its no-contracts-folder guard: it engages in every project."""
    import pytest

    from falsifiers import plugin
    from falsifiers.errors import ContractError
    from falsifiers.session import ContractsSession
    from falsifiers.settings import load_settings

    config.addinivalue_line("markers", plugin.MARKER_HELP)
    try:
        settings = load_settings(plugin._pyproject(config), root=config.rootpath)
        profile = settings.resolve_profile(config.getoption("apr_contracts_profile"))
        session = ContractsSession(config, settings, profile)
    except ContractError as err:
        raise pytest.UsageError(str(err)) from err
    config.stash[plugin.STATE_KEY] = session
    config.pluginmanager.register(session, "apr-contracts-session")


@pytest.hookimpl(optionalhook=True)
def testnodedown_ignored(self: Any, node: Any, error: Any) -> None:
    """The xdist controller never merges what its workers collected (bindings, selection, problems)."""
    return None
