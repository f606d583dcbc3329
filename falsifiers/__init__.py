"""`falsifiers`: YAML contracts whose promises are checked by tests that ran and could fail.

The public surface is small: lint a corpus, compute a verdict, and the records and errors they
use. The pytest plugin (`falsifiers.plugin`, entry point ``apr_contracts``) is loaded by pytest
itself; this package root deliberately does not import it, nor anything heavy.
"""

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
from falsifiers.records import (
    Contract,
    Corpus,
    Falsifier,
    Finding,
    Invariant,
    Level,
    Location,
    Mutant,
    MutantResult,
    MutantStatus,
    Severity,
    Status,
)
from falsifiers.verdict import Outcome, Verdict, VerdictReport, compute_verdict


def lint_paths(*args, **kwargs):  # type: ignore[no-untyped-def]
    """`falsifiers.lint.lint_paths`, imported on first use (it pulls in the YAML stack)."""
    from falsifiers.lint import lint_paths as _lint_paths

    return _lint_paths(*args, **kwargs)


__all__ = [
    "ArtifactNotFoundError",
    "ArtifactRecord",
    "Bindings",
    "Claim",
    "Contract",
    "ContractError",
    "ContractIOError",
    "ContractNameError",
    "ContractNotFoundError",
    "Corpus",
    "Falsifier",
    "Finding",
    "Invariant",
    "Level",
    "Location",
    "Mutant",
    "MutantResult",
    "MutantStatus",
    "Outcome",
    "ScaffoldExistsError",
    "SelectionError",
    "SettingsError",
    "Severity",
    "Status",
    "Verdict",
    "VerdictReport",
    "VerifyError",
    "bind_falsifiers",
    "compute_verdict",
    "lint_paths",
]
