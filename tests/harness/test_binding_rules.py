"""Binding falsifiers to tests, rule by rule (issue 23): each problem's code, where it is reported, and its text.

The problem code and the node id it is reported under are interface (the plugin turns each problem
into "ERROR collecting <nodeid>", xdist compares them as text); the messages are what a user reads to
fix the link, so they are pinned whole.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from falsifiers.binding import BindingProblem, Claim, bind_falsifiers, nearest_id
from falsifiers.records import Falsifier, Invariant, Location


def falsifier(ident: str, contract: str = "b-v1", *, invariants: tuple[str, ...] = ("INV-B-001",),
              line: int = 7, **extra) -> Falsifier:
    return Falsifier(ident, contract, invariants, "r", "p", "f", Location(f"contracts/{contract}.yaml", line, 5),
                     **extra)


def invariant(ident: str) -> Invariant:
    return Invariant(ident, "s", "b-v1", Location("contracts/b-v1.yaml", 2, 5))


def declared(*falsifiers: Falsifier) -> dict[str, Falsifier]:
    return {f.id: f for f in falsifiers}


# --- where a claim's problem is reported: the test's file, from any node id ------------------------------


@pytest.mark.parametrize(("nodeid", "test_file"), [
    ("tests/t.py::test_a", "tests/t.py"),
    ("tests/t.py::TestCase::test_a", "tests/t.py"),
    ("tests/t.py::test_a[a b]", "tests/t.py"),  # a parametrize id with a space
    ("tests/t.py::TestCase::test_a[x::y]", "tests/t.py"),
    ("tests/t.py", "tests/t.py"),
])
def test_a_claim_problem_is_reported_under_the_test_file(nodeid: str, test_file: str) -> None:
    claims = [Claim(nodeid, (), Location("tests/t.py", 4)),
              Claim(nodeid, ("FALSIFY-NOPE-999",), Location("tests/t.py", 4)),
              Claim(nodeid, (), Location("tests/t.py", 4), bad_args=("1",))]
    problems = bind_falsifiers({}, claims).problems
    assert sorted(p.code for p in problems) == ["bad-mark", "bad-mark", "unknown-id"]
    assert {p.nodeid for p in problems} == {test_file}


# --- each problem, alone, with its whole text -----------------------------------------------------------------


def test_a_mark_argument_that_is_not_a_string() -> None:
    claim = Claim("tests/t.py::test_a", (), Location("tests/t.py", 12), bad_args=("42", "None"))
    assert bind_falsifiers({}, [claim]).problems == (
        BindingProblem("bad-mark", "tests/t.py",
                       "tests/t.py:12: tests/t.py::test_a has @pytest.mark.falsifies(42); falsifier ids are strings\n"
                       "  fix: write @pytest.mark.falsifies(\"FALSIFY-…-NNN\")"),
        BindingProblem("bad-mark", "tests/t.py",
                       "tests/t.py:12: tests/t.py::test_a has @pytest.mark.falsifies(None); falsifier ids are strings\n"
                       "  fix: write @pytest.mark.falsifies(\"FALSIFY-…-NNN\")"),
    )


def test_a_mark_with_no_id() -> None:
    claim = Claim("tests/t.py::test_a", (), Location("tests/t.py", 12))
    assert bind_falsifiers({}, [claim]).problems == (
        BindingProblem("bad-mark", "tests/t.py",
                       "tests/t.py:12: tests/t.py::test_a has @pytest.mark.falsifies() with no id\n"
                       "  fix: name the falsifier(s) it checks: @pytest.mark.falsifies(\"FALSIFY-…-NNN\")"),
    )


def test_a_bad_argument_beside_good_ids_is_reported_and_the_ids_still_bind() -> None:
    f = falsifier("FALSIFY-B-001")
    claim = Claim("tests/t.py::test_a", (f.id,), Location("tests/t.py", 3), bad_args=("7",))
    bindings = bind_falsifiers(declared(f), [claim])
    assert bindings.tests == {f.id: ("tests/t.py::test_a",)}
    assert [p.code for p in bindings.problems] == ["bad-mark"]
    assert "with no id" not in bindings.problems[0].message  # only non-string args: not an empty mark
    only_bad = bind_falsifiers(declared(f), [Claim("tests/t.py::b", (), Location("tests/t.py", 3), bad_args=("7",))],
                               require_all=False)
    assert [p.message.split("; ")[0] for p in only_bad.problems] == [
        "tests/t.py:3: tests/t.py::b has @pytest.mark.falsifies(7)"]


def test_an_unknown_id_close_to_a_declared_one() -> None:
    f = falsifier("FALSIFY-B-001", line=21)
    claim = Claim("tests/t.py::test_a", ("FALSIFY-B-01",), Location("tests/t.py", 5))
    bindings = bind_falsifiers(declared(f), [claim], require_all=False)
    assert bindings.tests == {}
    assert bindings.problems == (BindingProblem(
        "unknown-id", "tests/t.py",
        "tests/t.py:5: tests/t.py::test_a claims falsifier FALSIFY-B-01, which no contract declares\n"
        "  did you mean FALSIFY-B-001? (declared at contracts/b-v1.yaml:21:5)\n"
        "  fix: use @pytest.mark.falsifies(\"FALSIFY-B-001\")"),)


def test_an_unknown_id_like_nothing_declared() -> None:
    claim = Claim("tests/t.py::test_a", ("FALSIFY-ZZZ-777",), Location("tests/t.py", 5))
    for known in ({}, declared(falsifier("INV-Q"))):
        assert bind_falsifiers(known, [claim], require_all=False).problems == (BindingProblem(
            "unknown-id", "tests/t.py",
            "tests/t.py:5: tests/t.py::test_a claims falsifier FALSIFY-ZZZ-777, which no contract declares\n"
            "  fix: declare FALSIFY-ZZZ-777 in a contract under contracts/, or correct the id"),)


def test_an_invariant_id_claimed_names_its_falsifiers() -> None:
    attackers = [falsifier("FALSIFY-B-003", invariants=("INV-B-001",)), falsifier("FALSIFY-B-002", invariants=(
        "INV-B-009", "INV-B-001")), falsifier("FALSIFY-B-001", invariants=("INV-B-009",))]
    invariants = {i: invariant(i) for i in ("INV-B-001", "INV-B-009", "INV-B-404")}
    claims = [Claim("tests/t.py::a", ("INV-B-001",), Location("tests/t.py", 5)),
              Claim("tests/t.py::b", ("INV-B-404",), Location("tests/t.py", 9))]
    messages = [p.message for p in bind_falsifiers(declared(*attackers), claims, invariants=invariants,
                                                   require_all=False).problems]
    assert messages == [
        "tests/t.py:5: tests/t.py::a claims falsifier INV-B-001, which no contract declares\n"
        "  fix: INV-B-001 is an invariant; claim its falsifier instead: FALSIFY-B-002, FALSIFY-B-003",
        "tests/t.py:9: tests/t.py::b claims falsifier INV-B-404, which no contract declares\n"
        "  fix: INV-B-404 is an invariant; claim its falsifier instead: (none declared yet)",
    ]
    # an id that is not a declared invariant gets the nearest-falsifier hint instead
    plain = bind_falsifiers(declared(*attackers), claims[:1], invariants={}, require_all=False).problems
    assert "is an invariant" not in plain[0].message


def test_a_declared_falsifier_no_test_claims() -> None:
    f = falsifier("FALSIFY-B-004", "b-v1", line=30)
    assert bind_falsifiers(declared(f), []).problems == (BindingProblem(
        "unbound", "contracts/b-v1.yaml",
        "contracts/b-v1.yaml:30:5: falsifier FALSIFY-B-004 (contract b-v1) has no test: "
        "no collected test carries @pytest.mark.falsifies(\"FALSIFY-B-004\")\n"
        "  fix: add the mark to the test that checks it, or declare `pending: \"why\"` "
        "in the contract until that test exists"),)


# --- which declared falsifiers must be bound ------------------------------------------------------------------


def test_every_declared_falsifier_must_be_bound_unless_pending_unchecked_or_narrowed() -> None:
    bound, lost = falsifier("FALSIFY-B-001"), falsifier("FALSIFY-B-002")
    later = falsifier("FALSIFY-B-003", pending="needs data")
    salvaged = falsifier("FALSIFY-C-001", "c-v1")
    known = declared(bound, lost, later, salvaged)
    claims = [Claim("tests/t.py::a", (bound.id,), Location("tests/t.py", 1))]
    unbound = lambda b: [p.message.split(" (contract")[0].split(": falsifier ")[1] for p in b.problems]  # noqa: E731
    assert unbound(bind_falsifiers(known, claims)) == ["FALSIFY-B-002", "FALSIFY-C-001"]
    assert unbound(bind_falsifiers(known, claims, unchecked_contracts=frozenset({"c-v1"}))) == ["FALSIFY-B-002"]
    assert bind_falsifiers(known, claims, require_all=False).problems == ()


# --- what binds, and the order of everything ---------------------------------------------------------------------


def test_bindings_list_each_falsifiers_tests_sorted_and_problems_in_a_stable_order() -> None:
    one, two = falsifier("FALSIFY-B-001"), falsifier("FALSIFY-B-002")
    claims = [Claim("tests/z.py::t", (one.id, two.id), Location("tests/z.py", 1)),
              Claim("tests/a.py::t", (one.id,), Location("tests/a.py", 1)),
              Claim("tests/z.py::u", ("FALSIFY-X-100",), Location("tests/z.py", 8)),
              Claim("tests/a.py::u", ("FALSIFY-X-200",), Location("tests/a.py", 8)),
              Claim("tests/m.py::v", (), Location("tests/m.py", 2))]
    extra = falsifier("FALSIFY-A-009", "a-v1")
    bindings = bind_falsifiers(declared(two, one, extra), claims)
    assert bindings.tests == {one.id: ("tests/a.py::t", "tests/z.py::t"), two.id: ("tests/z.py::t",)}
    assert [(p.code, p.nodeid) for p in bindings.problems] == [
        ("bad-mark", "tests/m.py"), ("unbound", "contracts/a-v1.yaml"),
        ("unknown-id", "tests/a.py"), ("unknown-id", "tests/z.py")]
    # same code and file: ordered by message
    twice = bind_falsifiers({}, [Claim("tests/a.py::t", ("FALSIFY-Y-2", "FALSIFY-Y-1"), Location("tests/a.py", 1))])
    assert [p.message.split(" claims falsifier ")[1][:11] for p in twice.problems] == ["FALSIFY-Y-1", "FALSIFY-Y-2"]


# --- nearest_id: difflib's ratio, at least 0.6 -------------------------------------------------------------------


@pytest.mark.parametrize(("ident", "candidate", "match"), [
    # difflib's ratio is 2*M/T, M the characters matched in order (here the shared prefix "ABC")
    ("ABC", "ABCDE", True),  # 6/8 = 0.75
    ("ABC", "ABCDEF", True),  # 6/9 = 0.667
    ("ABC", "ABCDEFG", True),  # 6/10 = 0.6 exactly: kept (ratio >= cutoff)
    ("ABC", "ABCDEFGH", False),  # 6/11 = 0.545
    ("ABC", "XYZ", False),  # 0
])
def test_nearest_id_threshold(ident: str, candidate: str, match: bool) -> None:
    assert nearest_id(ident, [candidate]) == (candidate if match else None)
    assert nearest_id(ident, {candidate: object()}) == (candidate if match else None)


def test_nearest_id_at_exactly_the_cutoff_is_kept() -> None:
    # 2*3/10 = 0.6 exactly (difflib compares ratio >= cutoff)
    assert nearest_id("ABC", ["ABCDEFG"]) == "ABCDEFG"
    assert nearest_id("ABC", ["ABCDEFGH"]) is None  # 0.545
    assert nearest_id("ABC", []) is None


@given(st.lists(st.text("AB-01", min_size=1, max_size=6), unique=True, min_size=1, max_size=6),
       st.text("AB-01", min_size=1, max_size=6))
@example(["FALSIFY-B-002", "FALSIFY-B-001", "FALSIFY-B-010"], "FALSIFY-B-001").via("the exact id is the best")
def test_nearest_id_is_the_best_scoring_candidate(candidates: list[str], ident: str) -> None:
    import difflib

    scores = {c: difflib.SequenceMatcher(None, c, ident).ratio() for c in candidates}  # (candidate, word)
    best = nearest_id(ident, candidates)
    assert best == nearest_id(ident, dict.fromkeys(candidates))  # a mapping is read by its keys
    if best is None:
        assert all(s < 0.6 for s in scores.values())
    else:
        assert scores[best] == max(scores.values()) >= 0.6
