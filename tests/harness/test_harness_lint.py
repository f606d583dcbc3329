"""Rules across the corpus, and pv compatibility (FALSIFY-HARNESS-005, -009, -013)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from falsifiers.errors import ContractNotFoundError
from falsifiers.lint import lint_paths
from tests.harness.projects import DATA, contract_yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "reference"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def errors(corpus, code: str) -> list:
    return [f for f in corpus.findings if f.code == code and f.is_error]


@pytest.mark.falsifies("FALSIFY-HARNESS-005")
def test_id_colliding_across_files_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a-v1", contract_yaml("SAME"))
    write(tmp_path, "b-v1", contract_yaml("SAME"))
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    collisions = errors(corpus, "duplicate-id")
    assert [f.message.split(" is declared")[0] for f in collisions] == ["invariant id INV-SAME-001",
                                                                        "falsifier id FALSIFY-SAME-001"]
    falsifier = collisions[1]
    assert str(falsifier.location) == "b-v1.yaml:13:9"
    assert "here and at a-v1.yaml:13:9" in falsifier.message
    assert [str(r) for r in falsifier.related] == ["a-v1.yaml:13:9"]


def test_falsifier_naming_a_missing_invariant_and_an_unattacked_invariant(tmp_path: Path) -> None:
    text = contract_yaml("LINK").replace("invariant: INV-LINK-001", "invariant: INV-LINK-01")
    write(tmp_path, "link-v1", text)
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    (unknown,) = errors(corpus, "unknown-invariant")
    assert "did you mean INV-LINK-001?" in unknown.message
    (unattacked,) = errors(corpus, "unfalsified-invariant")
    assert str(unattacked.location) == "link-v1.yaml:10:9"


@pytest.mark.falsifies("FALSIFY-HARNESS-013")
def test_dependency_cycle_and_unknown_dependency(tmp_path: Path) -> None:
    write(tmp_path, "one-v1", contract_yaml("ONE", depends_on=("two-v1",)))
    write(tmp_path, "two-v1", contract_yaml("TWO", depends_on=("one-v1", "tree-v1")))
    write(tmp_path, "three-v1", contract_yaml("THREE"))
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    (cycle,) = errors(corpus, "dependency-cycle")
    assert cycle.message == "depends_on forms a cycle: one-v1 -> two-v1 -> one-v1"
    (unknown,) = errors(corpus, "unknown-dependency")
    assert unknown.hint == "did you mean 'three-v1'?"
    assert str(unknown.location) == "two-v1.yaml:6:24"


@pytest.mark.falsifies("FALSIFY-HARNESS-013")
def test_version_must_match_the_newest_changelog_entry(tmp_path: Path) -> None:
    text = contract_yaml("VER").replace("  version: 1.0.0", "  version: 1.1.0", 1)
    write(tmp_path, "ver-v1", text)
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    (finding,) = errors(corpus, "version-changelog")
    assert finding.message == "metadata.version is 1.1.0 but the newest changelog entry is 1.0.0"
    assert str(finding.location) == "ver-v1.yaml:3:12"


def test_discharged_contract_cannot_be_pending(tmp_path: Path) -> None:
    write(tmp_path, "dis-v1", contract_yaml("DIS", [{"pending": "later"}], status="DISCHARGED"))
    assert errors(lint_paths([tmp_path]), "discharged-pending")


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    write(tmp_path, "bad-v1", "metadata: [unclosed\n")
    write(tmp_path, "good-v1", contract_yaml("GOOD"))
    write(tmp_path, "typo-v1", contract_yaml("TYPO").replace("if_fails", "if_fail"))
    corpus = lint_paths([tmp_path], relative_to=tmp_path)
    validity = {c.name: c.is_valid for c in corpus.contracts}
    assert validity == {"bad-v1": False, "good-v1": True, "typo-v1": False}
    assert {f.location.path for f in corpus.findings if f.is_error} == {"bad-v1.yaml", "typo-v1.yaml"}


def test_missing_path_is_a_caller_error(tmp_path: Path) -> None:
    with pytest.raises(ContractNotFoundError) as info:
        lint_paths([tmp_path / "nope"])
    assert isinstance(info.value, FileNotFoundError) and info.value.exit_code == 3


def test_repository_contracts_lint_clean() -> None:
    """Smoke test over the real contracts/ folder (the one test that reads it)."""
    corpus = lint_paths([REPO / "contracts"], relative_to=REPO)
    assert [f.render() for f in corpus.findings if f.is_error] == []
    assert corpus.contract("harness-v1") is not None


# --- compat -------------------------------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-HARNESS-009")
def test_pv_samples_lint_in_compat_mode_with_precise_findings(tmp_path: Path) -> None:
    samples = tmp_path / "pv"
    shutil.copytree(DATA / "pv", samples)
    # Two of pv's real defects, staged: the same ids in two files (as active-learning-v1 and
    # alibi-kernel-v1 share FALSIFY-AL-001..005), and a falsifier without `if_fails`.
    shutil.copy(samples / "softmax-kernel-v1.yaml", samples / "softmax-copy-v1.yaml")
    corpus = lint_paths([samples], compat_mode=True, relative_to=tmp_path)
    by_code: dict[str, list] = {}
    for finding in corpus.findings:
        assert finding.location is None or finding.location.line is not None or finding.code in {
            "file-too-large", "unreadable"}
        by_code.setdefault(finding.code, []).append(finding)
    assert {"prose-test", "duplicate-id", "missing-key", "unknown-key", "no-invariant", "binding-dangling"} <= set(by_code)
    duplicate = by_code["duplicate-id"][0]
    assert (duplicate.location.path == "pv/softmax-kernel-v1.yaml" and duplicate.related[0].path == "pv/softmax-copy-v1.yaml") \
        or duplicate.location.path == "pv/softmax-copy-v1.yaml"
    missing = [f for f in by_code["missing-key"] if f.message.endswith("`if_fails`")]
    assert missing and all(f.location.path == "pv/tensor-layout-v1.yaml" for f in missing)
    prose = by_code["prose-test"][0]
    assert "binds nothing" in prose.message and "@pytest.mark.falsifies" in prose.hint
    assert all(f.severity.value != "error" for f in by_code["unknown-key"])  # warnings in compat mode
    (dangling,) = by_code["binding-dangling"]
    assert "softmax_loader_validation" in dangling.message and dangling.location.line == 13


# Not bound to FALSIFY-HARNESS-009: the samples live outside the repository (../shared), so a clone
# without them would turn the falsifier UNDETERMINED. The bound test above uses copies in data/pv;
# this one widens the check to every reference sample wherever they are present (CI has them).
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the reference samples are not beside this clone ({SHARED})")
@pytest.mark.parametrize("folder", ["pv-contracts-sample", "aprender-contracts"])
def test_every_reference_sample_lints_in_compat_mode(folder: str) -> None:
    corpus = lint_paths([SHARED / folder], compat_mode=True, relative_to=SHARED)
    assert len(corpus.contracts) >= 8
    assert all(f.location is not None for f in corpus.findings)
    # Strict mode reads them too — as a list of errors, not a crash.
    strict = lint_paths([SHARED / folder], relative_to=SHARED)
    assert strict.has_errors
