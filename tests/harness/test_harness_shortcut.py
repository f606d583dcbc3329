"""The shortcut decides only a plain GO, and exactly as the full rules would (FALSIFY-HARNESS-016).

The pure functions are compared with the full rules on generated runs; the plugin end to end with a
run that takes the full path (``--contracts-json``). Functions are looked up on the module at call
time, so a declared mutant reaches them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from falsifiers import shortcut
from falsifiers.binding import bind_falsifiers
from falsifiers.claims import RawClaim, to_claims
from falsifiers.corpus_cache import CorpusIndex
from falsifiers.mutation import INHERIT_ENV
from falsifiers.records import Contract, Corpus, Falsifier, Invariant, Location
from falsifiers.report import render_verdict
from falsifiers.settings import BUILTIN_PROFILES
from falsifiers.verdict import Outcome, TestResult, TestStatus, Verdict, compute_verdict
from tests.harness.projects import Project, contract_yaml

CONTRACTS = ("a-v1", "b-v1", "c-v1")
NOTE = "scope: contracts with tests among the given paths (run without paths for the full verdict)"


def corpus_of(falsifiers: list[Falsifier], invalid: frozenset[str] = frozenset()) -> Corpus:
    """A corpus holding ``falsifiers`` in their contracts, one invariant each."""
    contracts = []
    for name in CONTRACTS:
        mine = tuple(f for f in falsifiers if f.contract == name)
        invariants = tuple(Invariant(f.invariants[0], "s", name, f.location) for f in mine)
        contracts.append(Contract(name, f"contracts/{name}.yaml", "0" * 64, "1.0.0", None, "", (), invariants, mine,
                                  name not in invalid, Location(f"contracts/{name}.yaml")))
    return Corpus(tuple(contracts), (), {f.id: f for f in falsifiers},
                  {i.id: i for c in contracts for i in c.invariants})


@st.composite
def falsifier_lists(draw: st.DrawFn, max_size: int = 6) -> list[Falsifier]:
    count = draw(st.integers(1, max_size))
    return [Falsifier(f"FALSIFY-S-{k:03d}", draw(st.sampled_from(CONTRACTS)), (f"INV-S-{k:03d}",), "r", "p", "f",
                      Location("contracts/x.yaml", 10 + k, 5), pending=draw(st.sampled_from([None, None, "later"])))
            for k in range(count)]


@st.composite
def claim_sets(draw: st.DrawFn, falsifiers: list[Falsifier]) -> dict[str, RawClaim]:
    """Most falsifiers claimed by a test or two; some claims naming unknown ids, invariants or nothing."""
    pool = [f.id for f in falsifiers] + ["FALSIFY-S-999", falsifiers[0].invariants[0]]
    claims: dict[str, RawClaim] = {}
    for f in falsifiers:
        for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
            extra = draw(st.lists(st.sampled_from(pool), max_size=2)) if draw(st.integers(0, 2)) == 0 else []
            bad = ("42",) if draw(st.integers(0, 15)) == 0 else ()
            claims[f"tests/test_s.py::t{len(claims)}"] = (tuple(dict.fromkeys([f.id, *extra])), bad,
                                                         "tests/test_s.py", len(claims) + 1)
    if draw(st.integers(0, 5)) == 0:
        claims[f"tests/test_s.py::t{len(claims)}"] = ((), (), "tests/test_s.py", len(claims) + 1)
    return claims


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
@given(st.data(), st.booleans(), st.frozensets(st.sampled_from(CONTRACTS), max_size=1))
def test_quick_bind_agrees_with_the_full_binding(data: st.DataObject, require_all: bool,
                                                 invalid: frozenset[str]) -> None:
    falsifiers = data.draw(falsifier_lists())
    claims = data.draw(claim_sets(falsifiers))
    corpus = corpus_of(falsifiers, invalid)
    index = CorpusIndex.of(corpus)
    cached = CorpusIndex.from_json(index.to_json(), index.corpus_json())  # what a warm run reads
    assert (cached.contracts, cached.falsifiers, cached.has_errors) == (index.contracts, index.falsifiers, bool(invalid))
    assert cached.corpus == corpus  # its records are the corpus it was made from
    quick = shortcut.quick_bind(cached.falsifiers, claims, require_all=require_all, unchecked_contracts=invalid)
    full = bind_falsifiers(corpus.falsifiers, to_claims(claims), invariants=corpus.invariants,
                           require_all=require_all, unchecked_contracts=invalid)
    assert (quick is None) == bool(full.problems), full.problems
    if quick is not None:
        assert quick == full.tests


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
def test_quick_bind_defers_whenever_a_claim_or_a_falsifier_is_wrong() -> None:
    """Each kind of problem alone, next to a claim that is fine: the full rules must decide."""
    a1, a2 = (Falsifier(f"FALSIFY-A-00{n}", "a-v1", (f"INV-A-00{n}",), "r", "p", "f", Location("contracts/a-v1.yaml", n))
              for n in (1, 2))
    later = Falsifier("FALSIFY-A-003", "a-v1", ("INV-A-003",), "r", "p", "f", Location("contracts/a-v1.yaml", 3),
                      pending="later")
    declared = CorpusIndex.of(corpus_of([a1, a2, later])).falsifiers
    fine = {"t.py::one": ((a1.id,), (), "t.py", 1), "t.py::two": ((a2.id,), (), "t.py", 2)}
    assert shortcut.quick_bind(declared, fine) == {a1.id: ("t.py::one",), a2.id: ("t.py::two",)}
    wrong = {
        "unknown id beside a known one": ((a1.id, "FALSIFY-A-009"), (), "t.py", 3),
        "an invariant's id": (("INV-A-001",), (), "t.py", 3),
        "a non-string argument": ((a1.id,), ("42",), "t.py", 3),
        "no argument": ((), (), "t.py", 3),
    }
    for why, claim in wrong.items():
        assert shortcut.quick_bind(declared, {**fine, "t.py::three": claim}) is None, why
    unbound = {"t.py::one": fine["t.py::one"]}
    assert shortcut.quick_bind(declared, unbound) is None  # FALSIFY-A-002 has no test
    assert shortcut.quick_bind(declared, unbound, require_all=False) == {a1.id: ("t.py::one",)}
    assert shortcut.quick_bind(declared, unbound, unchecked_contracts={"a-v1"}) == {a1.id: ("t.py::one",)}


STATUS = st.sampled_from([TestStatus.PASSED] * 6 + list(TestStatus) + [None])  # None: did not run


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
@given(st.data(), st.sampled_from(sorted(BUILTIN_PROFILES)), st.booleans())
def test_all_corroborated_agrees_with_the_full_verdict(data: st.DataObject, profile_name: str, paths: bool) -> None:
    profile = BUILTIN_PROFILES[profile_name]
    falsifiers = data.draw(falsifier_lists())
    bindings: dict[str, tuple[str, ...]] = {}
    selected: set[str] = set()
    results: dict[str, TestResult] = {}
    for f in falsifiers:
        nodeids = tuple(f"t.py::{f.id}_{k}" for k in range(data.draw(st.sampled_from([0, 1, 1, 2, 3]))))
        if nodeids:
            bindings[f.id] = nodeids
        for nodeid in nodeids:
            if data.draw(st.integers(0, 9)) == 0:
                continue  # deselected
            selected.add(nodeid)
            status = data.draw(STATUS)
            if status is not None:
                results[nodeid] = TestResult(nodeid, status, 0.01)
    corpus = corpus_of(falsifiers)
    in_order = [f for c in corpus.contracts for f in c.falsifiers]
    notes = [NOTE] if paths else []
    full = compute_verdict(in_order, bindings, selected, results, profile, notes=notes)
    scope = [(name, ids) for name, _, ids in CorpusIndex.of(corpus).contracts]
    passed = {n for n, r in results.items() if r.status is TestStatus.PASSED}
    quick = shortcut.all_corroborated(scope, bindings, selected, passed)
    all_held = all(o.outcome is Outcome.CORROBORATED for o in full.falsifiers)
    assert (quick is not None) == all_held, [(o.falsifier.id, o.outcome, o.reason) for o in full.falsifiers]
    if quick is not None:
        assert full.verdict is Verdict.GO
        for verbose in (False, True):
            assert shortcut.render_corroborated(quick, profile=profile.name, notes=notes, verbose=verbose, width=100) \
                == render_verdict(full, verbose=verbose, width=100)


def _contracts_section(text: str) -> str:
    """The table under the ``contracts`` header, without the line naming a receipt."""
    section = text.split(" contracts ", 1)[1].split("\n", 1)[1].split("===", 1)[0]
    return "\n".join(line for line in section.splitlines() if not line.startswith("contracts receipt written"))


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_warm_go_run_prints_the_full_rules_table_without_building_records(project: Project, verbose: bool) -> None:
    project.contract("two-v1", contract_yaml("TWO", [{}, {}]))
    project.contract("one-v1", contract_yaml("ONE"))
    project.test("test_go", """
        import sys
        import pytest

        @pytest.mark.falsifies("FALSIFY-TWO-001", "FALSIFY-ONE-001")
        def test_falsify_two_001():
            assert 1 + 1 == 2

        @pytest.mark.falsifies("FALSIFY-TWO-002")
        @pytest.mark.parametrize("n", [1, 2])
        def test_falsify_two_002(n):
            assert n > 0
    """)
    (project.root / "conftest.py").write_text(
        "import sys\n\ndef pytest_unconfigure(config):\n"
        "    built = sorted(m for m in ('falsifiers.records', 'falsifiers.verdict', 'falsifiers.binding') if m in sys.modules)\n"
        "    print('harness records built:', built or 'none')\n")
    pyproject = project.root / "pyproject.toml"  # these projects run without pytest's cache; this one needs it
    pyproject.write_text(pyproject.read_text().replace("-p no:cacheprovider ", ""))
    flags = ["-v"] if verbose else []
    project.run_subprocess(*flags)  # lints the contracts into pytest's cache (building records)
    shortcut_run = project.run_subprocess(*flags)  # warm
    full_run = project.run_subprocess(*flags, "--contracts-json=verdict.json")
    assert shortcut_run.ret == full_run.ret == 0
    assert project.receipt()["verdict"] == "GO"
    assert _contracts_section(shortcut_run.stdout.str()) == _contracts_section(full_run.stdout.str())
    assert "verdict: GO (3 corroborated" in shortcut_run.stdout.str()
    full_run.stdout.fnmatch_lines(["harness records built: *falsifiers.verdict*"])
    if not os.environ.get(INHERIT_ENV):  # under a mutant the child imports tests.harness.mutants, and its records
        shortcut_run.stdout.fnmatch_lines(["harness records built: none"])


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
def test_a_failing_or_unbound_test_still_goes_the_full_way(project: Project) -> None:
    project.contract("red-v1", contract_yaml("RED", [{}, {}]))
    project.test("test_red", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-RED-001")
        def test_falsify_red_001():
            assert 1 + 1 == 3

        @pytest.mark.falsifies("FALSIFY-RED-002")
        def test_falsify_red_002():
            pass
    """)
    result = project.run()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FALSIFY-RED-001*REFUTED*", "*verdict: NO-GO*"])
    project.test("test_red", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-RED-001", "FALSIFY-RED-01")
        def test_falsify_red_001():
            pass
    """)
    result = project.run()
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*claims falsifier FALSIFY-RED-01, which no contract declares*",
                                 "*falsifier FALSIFY-RED-002 (contract red-v1) has no test*"])
