"""falsifiers.lint._cycles visits each node and edge a bounded number of times (issue 23).

A mutant that breaks the depth-first search's colouring loops for ever, its stack growing until
the process dies (mutmut records a segfault, not a kill). Counting the lookups turns that endless
loop into a failed assertion: the walk is linear in nodes plus edges.
"""

from __future__ import annotations

from typing import Any

import pytest

from falsifiers import lint


class CountingGraph(dict[str, list[str]]):
    """A graph that fails the test when walked more than ``limit`` times instead of looping."""

    def __init__(self, edges: dict[str, list[str]], limit: int) -> None:
        super().__init__(edges)
        self.limit = limit
        self.lookups = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.lookups += 1
        assert self.lookups <= self.limit, f"more than {self.limit} edge lookups: the walk does not end"
        return super().get(key, default)


@pytest.mark.parametrize(("edges", "cycles"), [
    ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
    ({"a": ["a"]}, [["a"]]),
    ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, []),
    ({"a": ["b"], "b": ["c"], "c": ["b"]}, [["b", "c"]]),
    ({"a": ["b", "c"], "b": ["a"], "c": ["a"]}, [["a", "b"], ["a", "c"]]),
    ({"a": ["b"], "b": ["c"], "c": []}, []),
])
def test_the_walk_is_linear_in_nodes_and_edges(edges: dict[str, list[str]], cycles: list[list[str]]) -> None:
    # each node is entered once and resumed once per edge: nodes + edges lookups
    limit = len(edges) + sum(len(e) for e in edges.values())
    graph = CountingGraph(edges, limit)
    assert lint._cycles(graph) == cycles
    assert graph.lookups == limit
