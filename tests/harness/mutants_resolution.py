"""Deliberate faults for FALSIFY-HARNESS-017: mutant names that reach outside the project, or do not
resolve, are let through somewhere on the way (resolution, lint, the planner, the verdict).

Also the fixtures of the resolution tests: project attributes that hold foreign objects, which a
replacement must never hand to the project.
"""

from __future__ import annotations

import os
from typing import Any

from falsifiers.records import Finding
from falsifiers.mutation import Problem
from falsifiers.mutation import MutantResult
from falsifiers.records import Mutant

# Foreign objects held by a project module (a replacement naming them must be refused).
FOREIGN_FUNCTION = os.getcwd
FOREIGN_INSIDE_DATA = ("a", {"key": [1, os.getcwd]})
PLAIN_DATA = ("a", {"key": [1, 2.5, None, frozenset({b"x"})]})


def every_object_is_the_projects(value: Any) -> bool:
    """Resolution checks only the first segment (the behaviour before issue 14): any object may be walked through."""
    return True


def lint_without_resolution(contracts: Any, root: Any) -> list[Finding]:
    """`apr contracts lint` resolves nothing: a mutant that does not resolve passes lint."""
    del contracts, root
    return []


def no_invalid_mutants(results: list[MutantResult]) -> dict[str, str]:
    """An invalid mutant is listed while the verdict stays GO (the behaviour before issue 14)."""
    del results
    return {}


def no_problem(mutant: Mutant, **_: Any) -> Problem | None:
    """The planner runs every mutant without resolving it first: a broken one ends as an error, not invalid."""
    del mutant
    return None


__all__ = ["FOREIGN_FUNCTION", "FOREIGN_INSIDE_DATA", "PLAIN_DATA", "every_object_is_the_projects",
           "lint_without_resolution", "no_invalid_mutants", "no_problem"]
