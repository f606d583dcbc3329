"""The data model of a contract corpus: locations, lint findings, contracts and what they declare.

Every record is a frozen, slotted dataclass (pytest's ``Skip``), every closed set an ``Enum``, so
the pure modules can be tested with plain values and nothing downstream re-parses YAML. These are
the only definitions of these records: the loader and lint build them, the corpus cache stores them
through one generic codec (`falsifiers.corpus`), binding, verdict and report read them.

A lint finding is ``path:line:col: error[code]: message`` plus the remedy (`Finding.render`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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


# --- findings ------------------------------------------------------------------------------------


class Severity(str, enum.Enum):
    """How much a finding matters. Only ``ERROR`` makes lint exit non-zero (``--strict`` adds ``WARNING``)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one place, with the remedy.

    Attributes:
        severity: error, warning or info.
        code: a stable kebab-case rule name, e.g. ``duplicate-key``, ``unknown-key``.
        message: what is wrong, naming the thing the author typed.
        location: where; ``None`` only for problems that have no place (an empty corpus).
        hint: how to fix it.
        related: other places involved (the first occurrence of a duplicate id).
    """

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    hint: str | None = None
    related: tuple[Location, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """The compiler-style text form: ``path:line:col: error[code]: message`` plus fix lines."""
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.severity.value}[{self.code}]: {self.message}"
        for other in self.related:
            text += f"\n  see also: {other}"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of `to_dict` (the plugin caches schema findings by file hash)."""
        loc = data.get("location")
        return cls(
            Severity(data["severity"]), data["code"], data["message"],
            Location(loc["path"], loc.get("line"), loc.get("col")) if loc else None,
            data.get("hint"), tuple(Location(r["path"], r.get("line"), r.get("col")) for r in data.get("related", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "location": self.location.to_dict() if self.location else None,
            "hint": self.hint,
            "related": [loc.to_dict() for loc in self.related],
        }


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
    *artifact* mutant names a built-in mutator of `falsifiers.artifact` and its ``args``.
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

    Built by `falsifiers.lint.lint_paths` (or decoded from the cache) through `of`, which fills in
    the lookup tables once: the first declaration of an id wins (lint reports the others).
    """

    contracts: tuple[Contract, ...]
    findings: tuple[Finding, ...]
    falsifiers: dict[str, Falsifier] = field(default_factory=dict)
    invariants: dict[str, Invariant] = field(default_factory=dict)

    @classmethod
    def of(cls, contracts: Iterable[Contract], findings: Iterable[Finding]) -> Corpus:
        """A corpus of these contracts and findings, with its lookup tables."""
        contracts = tuple(contracts)
        falsifiers: dict[str, Falsifier] = {}
        invariants: dict[str, Invariant] = {}
        for contract in contracts:
            for falsifier in contract.falsifiers:
                falsifiers.setdefault(falsifier.id, falsifier)
            for invariant in contract.invariants:
                invariants.setdefault(invariant.id, invariant)
        return cls(contracts, tuple(findings), falsifiers, invariants)

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
    "Finding",
    "Invariant",
    "Level",
    "Location",
    "Mutant",
    "Severity",
    "Status",
]
