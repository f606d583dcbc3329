"""Which files are contracts and how their paths are shown (`falsifiers.corpus`).

The walk is hand-rolled over ``os.scandir`` for speed (the plugin lists the contracts on every run),
so it is checked against the obvious ``Path.rglob`` definition on generated trees.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from falsifiers.corpus import discover, display_path, display_paths
from falsifiers.errors import ContractNotFoundError


def _reference(folder: Path) -> list[Path]:
    """The definition: every .yaml/.yml file below, none under (or named with) a leading dot."""
    return [p for p in sorted(folder.rglob("*"))
            if p.suffix in (".yaml", ".yml") and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


_NAMES = st.sampled_from(["a", "b", "B", "a.yaml", "z.yml", ".hidden", ".h.yaml", "c.yaml", "d.txt", "x-y.yaml"])
_TREES = st.lists(st.lists(_NAMES, min_size=1, max_size=4), max_size=12)


@settings(max_examples=40)
@given(tree=_TREES)
def test_discover_matches_the_rglob_definition(tmp_path_factory: pytest.TempPathFactory, tree: list[list[str]]) -> None:
    root = tmp_path_factory.mktemp("contracts")
    for parts in tree:
        *folders, name = parts
        parent = root.joinpath(*folders)
        if any(p.is_file() for p in [parent, *parent.parents] if p != root and root in p.parents):
            continue  # a file already stands where a folder would go
        parent.mkdir(parents=True, exist_ok=True)
        target = parent / name
        if not target.exists():
            target.write_text("x: 1\n")
    assert discover([root]) == _reference(root)


def test_display_paths_are_relative_to_the_root_and_links_show_their_target(tmp_path: Path) -> None:
    (tmp_path / "contracts" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "contracts" / "a.yaml").write_text("x: 1\n")
    (tmp_path / "contracts" / "sub" / "b.yaml").write_text("x: 1\n")
    (tmp_path / "elsewhere" / "real.yaml").write_text("x: 1\n")
    (tmp_path / "elsewhere" / "inner.yaml").write_text("x: 1\n")
    os.symlink(tmp_path / "elsewhere" / "real.yaml", tmp_path / "contracts" / "linked.yaml")
    os.symlink(tmp_path / "elsewhere", tmp_path / "contracts" / "linked-folder")  # not entered
    files = discover([tmp_path / "contracts"])
    assert [f.name for f in files] == ["a.yaml", "linked.yaml", "b.yaml"]
    assert display_paths(files, tmp_path) == ["contracts/a.yaml", "elsewhere/real.yaml", "contracts/sub/b.yaml"]
    assert display_paths(files, tmp_path / "contracts") == ["a.yaml", "../elsewhere/real.yaml", "sub/b.yaml"]
    assert display_path(files[0], None) == os.fspath(files[0])


def test_a_file_given_directly_is_taken_and_a_missing_path_is_an_error(tmp_path: Path) -> None:
    named = tmp_path / "one.txt"
    named.write_text("x: 1\n")
    assert discover([named, named]) == [named]  # as given, once
    with pytest.raises(ContractNotFoundError, match="no such file or folder") as err:
        discover([tmp_path / "missing"])
    assert err.value.hint and "contracts" in err.value.hint
