"""The harness's modules import each other without a cycle (issue 18).

A cycle among `falsifiers` modules (``plugin`` and ``session`` importing each other was one) makes
import order matter, hides which module depends on which, and is usually patched over with
function-local imports. The graph here has an edge for every import of a `falsifiers` module that
runs when a module is imported: statements at module level (also inside a module-level ``if`` or
``try``), but not ``if TYPE_CHECKING:`` blocks, which never run, nor imports inside functions,
which are deferred on purpose (each says why, with the start-up cost it saves).
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import falsifiers
from hypothesis import given
from hypothesis import strategies as st

PACKAGE = Path(falsifiers.__file__).parent


def module_imports(tree: ast.Module, package: str = "falsifiers") -> set[str]:
    """The `package` modules a module imports when it is imported (see the module docstring)."""
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == package:  # from falsifiers import binding, verdict
                    found.update(f"{package}.{alias.name}" for alias in node.names)
                elif node.module.startswith(package + "."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith(package + "."))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def import_graph(folder: Path, package: str = "falsifiers") -> dict[str, set[str]]:
    """Module -> the package's modules it imports at import time, for every ``*.py`` in ``folder``."""
    graph = {}
    for path in sorted(folder.glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        graph[name] = module_imports(ast.parse(path.read_text(encoding="utf-8")), package) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, a]``), or None when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_harness_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) >= 15  # the package was found and read
    assert graph["falsifiers.plugin"] >= {"falsifiers.session"}  # edges are found
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_an_import_cycle_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from pkg import b\n")
    (tmp_path / "b.py").write_text("import sys\nif sys.version_info > (3,):\n    from pkg.c import x\n")
    (tmp_path / "c.py").write_text("try:\n    from pkg.a import y\nexcept ImportError:\n    pass\n")
    (tmp_path / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import z\n"
        "def later():\n    from pkg.a import w\n"
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": set()}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    graph["pkg.c"] = set()
    assert find_cycle(graph) is None


@given(st.integers(min_value=2, max_value=8).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))))))
def test_edges_that_only_go_forward_never_cycle_and_one_back_edge_does(drawn: tuple[int, set[tuple[int, int]]]) -> None:
    count, pairs = drawn
    forward = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
    graph: dict[str, set[str]] = {f"m{i}": set() for i in range(count)}
    for a, b in forward:
        graph[f"m{a}"].add(f"m{b}")
    assert find_cycle(graph) is None
    if forward:
        a, b = min(forward)
        graph[f"m{b}"].add(f"m{a}")
        cycle = find_cycle(graph)
        assert cycle is not None and cycle[0] == cycle[-1]
        assert all(after in graph[before] for before, after in itertools.pairwise(cycle))
