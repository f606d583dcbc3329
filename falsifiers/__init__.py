"""`falsifiers`: YAML contracts whose promises are checked by tests that ran and could fail.

The public surface is small: lint a corpus, compute a verdict, and the records and errors they
use. The pytest plugin (`falsifiers.plugin`, entry point ``apr_contracts``) is loaded by pytest
itself; this package root deliberately does not import it, nor anything heavy.

Every name below is imported on first use (PEP 562): pytest imports this package for the plugin
in every run, and most runs need only some of these modules (a frozen dataclass costs ~1.5 ms to
create; a run without mutants or lint findings never needs theirs).
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
    "Finding": "falsifiers.findings",
    "Severity": "falsifiers.findings",
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
    from falsifiers.findings import Finding, Severity
    from falsifiers.lint import lint_paths
    from falsifiers.mutation import MutantResult, MutantStatus
    from falsifiers.records import Contract, Corpus, Falsifier, Invariant, Level, Location, Mutant, Status
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
