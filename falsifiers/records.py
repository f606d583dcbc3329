"""Typed records shared by the loader, lint, binding, verdict and report modules.

Every record is a frozen, slotted dataclass (pytest's ``Skip``), every closed set an ``Enum``, so
the pure modules can be tested with plain values and nothing downstream re-parses YAML.

Only what every plugin run builds lives here: lint findings are in `falsifiers.findings` and mutant
results in `falsifiers.mutation`, so a run without them never creates their classes (a frozen
dataclass costs about 1.5 ms to create on import, paid by every pytest run with contracts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.findings import Finding

# --- where and how bad ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a file: ``path:line:col``, both 1-based (what editors and compilers print)."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        return f"{self.path}:{self.line}" + (f":{self.col}" if self.col is not None else "")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "col": self.col}


# --- contracts ------------------------------------------------------------------------------------


class Status(str, enum.Enum):
    """aprender's contract lifecycle (``metadata.status``)."""

    PROPOSED = "PROPOSED"
    PARTIAL_ALGORITHM_LEVEL = "PARTIAL_ALGORITHM_LEVEL"
    FUNCTIONAL = "FUNCTIONAL"
    DISCHARGED = "DISCHARGED"


class Level(str, enum.Enum):
    """What a falsifier's evidence is about: a pure rule, a real file, or a live run (GPU, network)."""

    ALGORITHM = "algorithm"
    ARTIFACT = "artifact"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Mutant:
    """A fault that must turn a falsifier's tests red (run by ``--mutants``; see `falsifiers.mutation`).

    A *code* mutant names ``target`` (``apr.format.reader.parse_header``: the attribute as its
    caller looks it up) and ``replacement`` (``tests.format.mutants:skip_header_checksum``: an
    attribute of a module of the project's own ``apr``, ``falsifiers`` or ``tests`` packages); an
    *artifact* mutant names a built-in mutator of `falsifiers.artifact_mutants` and its ``args``.
    """

    name: str
    target: str | None = None
    replacement: str | None = None
    artifact: str | None = None
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return "artifact" if self.artifact else "code"


@dataclass(frozen=True, slots=True)
class Invariant:
    """A promise: ``INV-…`` id and the statement a falsifier attacks."""

    id: str
    statement: str
    contract: str
    location: Location


@dataclass(frozen=True, slots=True)
class Falsifier:
    """A prediction that would refute one or more invariants if it failed.

    ``pending`` holds the reason a declared falsifier has no test yet; such a falsifier is never
    corroborated, but its missing test is not a collection error.
    """

    id: str
    contract: str
    invariants: tuple[str, ...]
    rule: str
    prediction: str
    if_fails: str
    location: Location
    level: Level = Level.ALGORITHM
    requires: tuple[str, ...] = ()
    pending: str | None = None
    mutants: tuple[Mutant, ...] = ()


@dataclass(frozen=True, slots=True)
class Contract:
    """One contract file, as far as it could be read.

    ``is_valid`` is false when the file had any error finding; its falsifiers (possibly salvaged
    from raw text) are still listed so tests that claim them are not reported as claiming unknown
    ids, but none of them can be corroborated.
    """

    name: str
    path: str
    sha256: str
    version: str | None
    status: Status | None
    description: str
    depends_on: tuple[str, ...]
    invariants: tuple[Invariant, ...]
    falsifiers: tuple[Falsifier, ...]
    is_valid: bool
    location: Location
    references: tuple[str, ...] = ()
    equations: tuple[str, ...] = ()
    style: str = "canonical"  # canonical | pv | ship-gate | binding-registry (compat mode)


@dataclass(frozen=True, slots=True)
class Corpus:
    """Every contract found under the given paths, plus every finding about them.

    Built by `falsifiers.lint.lint_paths`; the lookup tables are derived fields, filled in once.
    """

    contracts: tuple[Contract, ...]
    findings: tuple[Finding, ...]
    falsifiers: dict[str, Falsifier] = field(default_factory=dict)
    invariants: dict[str, Invariant] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return any(f.is_error for f in self.findings)

    def contract(self, name: str) -> Contract | None:
        for contract in self.contracts:
            if contract.name == name:
                return contract
        return None


__all__ = [
    "Contract",
    "Corpus",
    "Falsifier",
    "Invariant",
    "Level",
    "Location",
    "Mutant",
    "Status",
]
