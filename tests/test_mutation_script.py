"""scripts/mutation.sh --changed: the modules a change owes a mutation pass (issue 23).

Run against a scratch git repository holding a copy of the script, so the selection is stated by
example: modified, added and untracked sources under apr/ and falsifiers/ are chosen, a deleted one
and anything outside those folders are not, and a bad revision is refused with a fix.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mutation.sh"

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                reason="needs git and bash")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
                    *args], cwd=repo, check=True, capture_output=True)


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo / "scripts" / "mutation.sh"), *args], cwd=repo, text=True,
                          capture_output=True, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts" / "mutation.sh")
    for name in ("apr/format/kept.py", "apr/stamp/edited.py", "apr/gone.py", "falsifiers/verdict.py",
                 "tests/test_x.py", "docs/notes.py"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n", encoding="utf-8")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def test_changed_lists_modified_added_and_untracked_modules_only(repo: Path) -> None:
    (repo / "apr/stamp/edited.py").write_text("x = 2\n", encoding="utf-8")        # modified, not staged
    (repo / "falsifiers/verdict.py").write_text("x = 3\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "committed change")                       # modified, committed
    (repo / "apr/new_module.py").write_text("y = 1\n", encoding="utf-8")          # untracked
    (repo / "apr/staged.py").write_text("z = 1\n", encoding="utf-8")
    git(repo, "add", "apr/staged.py")                                         # added, staged
    (repo / "apr/gone.py").unlink()                                           # deleted: nothing to mutate
    (repo / "tests/test_x.py").write_text("x = 4\n", encoding="utf-8")            # not a module of apr/
    (repo / "docs/notes.py").write_text("x = 5\n", encoding="utf-8")
    (repo / "apr/readme.txt").write_text("not python\n", encoding="utf-8")

    result = run(repo, "--changed", "HEAD~1", "--list")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "apr/new_module.py", "apr/staged.py", "apr/stamp/edited.py", "falsifiers/verdict.py"]


def test_changed_against_the_same_tree_has_nothing_to_run(repo: Path) -> None:
    result = run(repo, "--changed", "HEAD", "--list")

    assert result.returncode == 0
    assert result.stdout == ""
    assert "no module under apr/ or falsifiers/ differs from HEAD: nothing to run" in result.stderr


def test_changed_adds_to_the_modules_named(repo: Path) -> None:
    (repo / "apr/stamp/edited.py").write_text("x = 2\n", encoding="utf-8")

    result = run(repo, "--changed=HEAD", "--list", "apr/format/kept.py", "apr/stamp/edited.py")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["apr/format/kept.py", "apr/stamp/edited.py"]  # each once


@pytest.mark.parametrize(("args", "message"), [
    (("--changed", "no-such-branch", "--list"), "error: --changed no-such-branch: not a revision of this repository"),
    (("--changed",), "error: --changed needs a revision (e.g. --changed origin/main)"),
])
def test_a_bad_revision_is_refused_with_a_fix(repo: Path, args: tuple[str, ...], message: str) -> None:
    result = run(repo, *args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr.splitlines()[0]
    if "not a revision" in message:
        assert "fix: name a branch, tag or commit" in result.stderr


def test_list_without_changed_prints_the_core(repo: Path) -> None:
    result = run(repo, "--list")

    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 53
    assert "apr/format/writer.py" in result.stdout.splitlines()
