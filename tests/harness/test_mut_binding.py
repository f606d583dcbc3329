"""falsifiers.binding's collection half in-process (issue 23): reading a test's marks into a claim,
claims into records, and which artifact-level falsifiers a run given a file is about.

Items are small fakes with pytest's ``iter_markers``/``location``/``fixturenames``; expected values are
written from the docstrings (ids in mark order without repeats, non-string arguments reported by
their repr, a 1-based line).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from falsifiers.binding import FIXTURE, MARK, Claim, artifact_falsifiers, read_claim, to_claims
from falsifiers.records import Falsifier, Level, Location


def _item(marks: list[tuple[str, tuple[Any, ...]]], line: int | None = 9, nodeid: str = "tests/t.py::t",
          fixtures: tuple[str, ...] | None = None) -> Any:
    made = [SimpleNamespace(name=name, args=args) for name, args in marks]
    item = SimpleNamespace(nodeid=nodeid, location=("tests/t.py", line, "t"),
                           iter_markers=lambda name=None: iter([m for m in made if name is None or m.name == name]))
    if fixtures is not None:
        item.fixturenames = fixtures
    return item


def test_the_mark_is_falsifies_and_the_fixture_apr_artifact() -> None:
    assert (MARK, FIXTURE) == ("falsifies", "apr_artifact")


def test_read_claim_collects_ids_in_order_once_and_reports_other_arguments() -> None:
    item = _item([(MARK, ("A", "B")), ("parametrize", ("x", [1])), (MARK, (["C", "A"],)), (MARK, (("D",),)),
                  (MARK, (42, None)), ("slow", ("E",))])
    assert read_claim(item) == (("A", "B", "C", "D"), ("42", "None"), "tests/t.py", 10)


def test_read_claim_of_an_unmarked_test_and_a_test_without_a_line() -> None:
    assert read_claim(_item([("slow", ("A",))])) is None
    assert read_claim(_item([(MARK, ("A",))], line=None)) == (("A",), (), "tests/t.py", None)
    assert read_claim(_item([(MARK, ())], line=0)) == ((), (), "tests/t.py", 1)


def test_to_claims_keeps_every_field() -> None:
    claims = {"tests/t.py::a": (("A", "B"), ("42",), "tests/t.py", 10), "tests/u.py::b": ((), (), "tests/u.py", None)}
    assert to_claims(claims) == [Claim("tests/t.py::a", ("A", "B"), Location("tests/t.py", 10), ("42",)),
                                 Claim("tests/u.py::b", (), Location("tests/u.py", None), ())]


def _declared(ident: str, level: Level) -> Falsifier:
    return Falsifier(ident, "c-v1", ("INV-C-001",), "r", "p", "f", Location("c.yaml", 1, 1), level=level)


def test_artifact_falsifiers_are_the_artifact_level_ones_whose_test_takes_the_fixture() -> None:
    declared = {f.id: f for f in (_declared("ART-1", Level.ARTIFACT), _declared("ART-2", Level.ARTIFACT),
                                  _declared("ALG-1", Level.ALGORITHM))}
    items = [_item([], nodeid="t::uses", fixtures=(FIXTURE, "tmp_path")),
             _item([], nodeid="t::own_file", fixtures=("tmp_path",)),  # builds its own file
             _item([], nodeid="t::no_fixtures"),  # an item without fixturenames
             _item([], nodeid="t::unclaimed", fixtures=(FIXTURE,))]
    claims = {"t::uses": (("ART-1", "ALG-1", "UNKNOWN"), (), "t.py", 1), "t::own_file": (("ART-2",), (), "t.py", 2),
              "t::no_fixtures": (("ART-2",), (), "t.py", 3)}
    assert artifact_falsifiers(items, claims, declared) == {"ART-1"}
    assert artifact_falsifiers([], claims, declared) == set()
