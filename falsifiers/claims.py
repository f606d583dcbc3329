"""What collected tests claim: their ``@pytest.mark.falsifies`` ids, read once at collection.

`read_claim` reads a test's marks into a `RawClaim` (the ids, the arguments that are not ids, and
where the test is); `to_claims` turns them into the `Claim` records `falsifiers.binding.bind_falsifiers`
takes, which every run binds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from falsifiers.records import Falsifier, Level

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.binding import Claim

MARK = "falsifies"
FIXTURE = "apr_artifact"  # the fixture through which a test receives the --artifact file

# (claimed ids in mark order without repeats, reprs of non-string mark arguments, test file, 1-based line)
RawClaim = tuple[tuple[str, ...], tuple[str, ...], str, "int | None"]


def read_claim(item: Any) -> RawClaim | None:
    """The falsifier ids a collected test claims (its own marks, then its class's and module's)."""
    marks = list(item.iter_markers(name=MARK))
    if not marks:
        return None
    ids: list[str] = []
    bad: list[str] = []
    for mark in marks:
        for arg in mark.args:
            values = arg if isinstance(arg, list | tuple) else [arg]
            for value in values:
                (ids.append(value) if isinstance(value, str) else bad.append(repr(value)))
    path, lineno, _ = item.location
    return tuple(dict.fromkeys(ids)), tuple(bad), path, lineno + 1 if lineno is not None else None


def to_claims(claims: Mapping[str, RawClaim]) -> list[Claim]:
    """The records `falsifiers.binding.bind_falsifiers` takes, one per claiming test."""
    from falsifiers.binding import Claim
    from falsifiers.records import Location

    return [Claim(nodeid, ids, Location(path, line), bad) for nodeid, (ids, bad, path, line) in claims.items()]


def artifact_falsifiers(items: Iterable[Any], claims: Mapping[str, RawClaim],
                        declared: Mapping[str, Falsifier]) -> set[str]:
    """Artifact-level falsifiers with a bound test that takes the ``apr_artifact`` fixture.

    Only these are about a *given* file; other ``level: artifact`` falsifiers build their own files.
    """
    found: set[str] = set()
    for item in items:
        claim = claims.get(item.nodeid)
        if claim is None or FIXTURE not in getattr(item, "fixturenames", ()):
            continue
        for ident in claim[0]:
            known = declared.get(ident)
            if known is not None and known.level is Level.ARTIFACT:
                found.add(ident)
    return found


__all__ = ["FIXTURE", "MARK", "RawClaim", "artifact_falsifiers", "read_claim", "to_claims"]
