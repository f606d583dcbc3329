"""The common case decided from compact data: every falsifier bound, every bound test passed.

The full path builds a record per falsifier, claim, test and outcome (`falsifiers.binding`,
`falsifiers.verdict`), which is what a problem needs: messages that name both sides, a receipt,
replay data. When nothing is wrong there is nothing to say but GO and a table of counts, so the
plugin asks these functions first. Each answers only when nothing is wrong, with exactly what the
full path would give, and ``None`` otherwise; the full path then decides. So a shortcut can skip
building records for a GO, and never change an outcome (`tests/harness/test_harness_shortcut.py`
checks both functions against the full rules on generated runs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from falsifiers.claims import RawClaim
from falsifiers.table import passed_reason, render_table, summary_text

# falsifier id -> (contract, level, requires, pending): `falsifiers.corpus_cache.CorpusIndex.falsifiers`
Declared = Mapping[str, tuple[str, str, tuple[str, ...], "str | None"]]
# contract -> (falsifier id, bound tests that passed) per falsifier in scope, in report order
Corroborated = dict[str, list[tuple[str, int]]]


def quick_bind(declared: Declared, claims: Mapping[str, RawClaim], *, require_all: bool = True,
               unchecked_contracts: Collection[str] = ()) -> dict[str, tuple[str, ...]] | None:
    """`bind_falsifiers(...).tests` when it would find no problem, else ``None``.

    ``None`` when a claim has a non-string or no argument or names an undeclared id, or (with
    ``require_all``) a declared falsifier that is neither pending nor in an unchecked contract has
    no test: exactly the cases in which `falsifiers.binding.bind_falsifiers` reports a problem.
    """
    tests: dict[str, list[str]] = {}
    for nodeid, (ids, bad, _, _) in claims.items():
        if bad or not ids:
            return None
        for ident in ids:
            if ident not in declared:
                return None
            tests.setdefault(ident, []).append(nodeid)
    if require_all:
        for ident, (contract, _, _, pending) in declared.items():
            if ident not in tests and not pending and contract not in unchecked_contracts:
                return None
    return {ident: tuple(sorted(nodeids)) for ident, nodeids in tests.items()}


def all_corroborated(scope: Iterable[tuple[str, Sequence[str]]], bindings: Mapping[str, Sequence[str]],
                     selected: Collection[str], passed: Collection[str]) -> Corroborated | None:
    """Per contract, each falsifier's count of passed tests, when every falsifier in scope is
    CORROBORATED by rule 5 of `falsifiers.verdict`; else ``None``.

    Args:
        scope: ``(contract, falsifier ids)`` for the valid contracts in scope, in report order.
        bindings: falsifier id -> node ids of every collected test that claims it.
        selected: node ids selected to run.
        passed: node ids whose setup, call and teardown all passed (not an xpass).

    ``None`` also when nothing is in scope or an id repeats (the full path decides those).
    """
    table: Corroborated = {}
    seen: set[str] = set()
    for contract, ids in scope:
        rows = []
        for ident in ids:
            if ident in seen:
                return None
            seen.add(ident)
            chosen = [nodeid for nodeid in bindings.get(ident, ()) if nodeid in selected]
            if not chosen or not all(nodeid in passed for nodeid in chosen):
                return None
            rows.append((ident, len(chosen)))
        if rows:
            table[contract] = rows
    return table or None


def render_corroborated(table: Corroborated, *, profile: str, notes: Sequence[str] = (), width: int = 120,
                        color: bool = False, verbose: bool = False) -> str:
    """The GO table `falsifiers.report.render_verdict` prints for the same run, from the counts."""
    folded = {} if verbose else {contract: (len(rows), sum(count for _, count in rows))
                                 for contract, rows in table.items() if len(rows) > 1}
    rows = [{"contract": contract, "id": ident, "outcome": "CORROBORATED", "reason": passed_reason(count),
             "required": True}
            for contract, items in table.items() if contract not in folded for ident, count in items]
    total = sum(len(items) for items in table.values())
    summary = summary_text("GO", {"CORROBORATED": total}, profile)
    return render_table(rows, [], [], notes, summary, "GO", width=width, color=color, verbose=verbose, folded=folded)


__all__ = ["Corroborated", "Declared", "all_corroborated", "quick_bind", "render_corroborated"]
