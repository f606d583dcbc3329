"""`falsifiers`: YAML contracts whose promises are checked by tests that ran and could fail.

The public surface is small: lint a corpus, compute a verdict, and the records and errors they
use (the names below). Where everything lives, one concept per module:

=====================  ==================================================================================
module                 what lives there
=====================  ==================================================================================
``records``            the data model: `Location`, `Finding`/`Severity`, `Contract`, `Invariant`,
                       `Falsifier`, `Mutant`, `Corpus` (each defined once)
``errors``             every error the package raises on purpose (`ContractError` and its kinds)
``settings``           ``[tool.apr-contracts]`` in pyproject.toml and the verdict profiles
``loader``             YAML bytes to a `Document` (plain data with ``line:col`` positions), safely
``schema``             the JSON-schema check of a document, findings at ``file:line:col``; `did_you_mean`
``compat``             reading aprender's ``pv`` contract styles (``--compat``)
``lint``               one file to records (`load_contract`), then the rules across the corpus (`lint_paths`)
``corpus``             finding contract files, and the linted corpus cached through one generic codec
``binding``            the claims tests make (``@pytest.mark.falsifies``) bound to declared falsifiers
``verdict``            test results to one outcome per falsifier to GO / NO-GO / UNKNOWN (the rules)
``report``             the one table renderer, the verdict receipt and the lint document (JSON)
``artifact``           the ``--artifact`` file's digest, and the faulty copies artifact mutants make
``mutation``           declared mutants: safe resolution, patching in (``--apply-mutant``), judging runs
``mutant_runs``        ``--mutants``: planning and running the child pytests, the zygote, progress
``session``            one pytest session: its `Scope`, bindings, reports to test results, the verdict
``plugin``             the pytest hooks, options and the ``apr_artifact`` fixture
``entry``              the ``pytest11`` entry point: registers the plugin only in a project that opts in
``runner``             ``apr contracts verify``: the pytest command and its receipt
``scaffold``           ``apr contracts new``: a contract and its failing test
``contract_diff``      ``apr contracts diff``: what changed between two versions of the contracts
=====================  ==================================================================================

The imports between these modules form no cycle (``tests/harness/test_harness_imports.py``).

Every name below is imported on first use (PEP 562): pytest imports this package for its entry
point in every run of every project that has apr-contracts installed, and importing all of them
would import PyYAML and jsonschema (~40 ms, python -X importtime, 2026-12-06) into runs that need
none of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ArtifactRecord": "falsifiers.artifact",
    "Bindings": "falsifiers.binding",
    "Claim": "falsifiers.binding",
    "bind_falsifiers": "falsifiers.binding",
    "ArtifactNotFoundError": "falsifiers.errors",
    "ContractError": "falsifiers.errors",
    "ContractIOError": "falsifiers.errors",
    "ContractNameError": "falsifiers.errors",
    "ContractNotFoundError": "falsifiers.errors",
    "ScaffoldExistsError": "falsifiers.errors",
    "SelectionError": "falsifiers.errors",
    "SettingsError": "falsifiers.errors",
    "VerifyError": "falsifiers.errors",
    "Finding": "falsifiers.records",
    "Severity": "falsifiers.records",
    "lint_paths": "falsifiers.lint",
    "MutantResult": "falsifiers.mutation",
    "MutantStatus": "falsifiers.mutation",
    "Contract": "falsifiers.records",
    "Corpus": "falsifiers.records",
    "Falsifier": "falsifiers.records",
    "Invariant": "falsifiers.records",
    "Level": "falsifiers.records",
    "Location": "falsifiers.records",
    "Mutant": "falsifiers.records",
    "Status": "falsifiers.records",
    "Outcome": "falsifiers.verdict",
    "Verdict": "falsifiers.verdict",
    "VerdictReport": "falsifiers.verdict",
    "compute_verdict": "falsifiers.verdict",
}

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.artifact import ArtifactRecord
    from falsifiers.binding import Bindings, Claim, bind_falsifiers
    from falsifiers.errors import (
        ArtifactNotFoundError,
        ContractError,
        ContractIOError,
        ContractNameError,
        ContractNotFoundError,
        ScaffoldExistsError,
        SelectionError,
        SettingsError,
        VerifyError,
    )
    from falsifiers.lint import lint_paths
    from falsifiers.mutation import MutantResult, MutantStatus
    from falsifiers.records import (
        Contract,
        Corpus,
        Falsifier,
        Finding,
        Invariant,
        Level,
        Location,
        Mutant,
        Severity,
        Status,
    )
    from falsifiers.verdict import Outcome, Verdict, VerdictReport, compute_verdict


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'falsifiers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
