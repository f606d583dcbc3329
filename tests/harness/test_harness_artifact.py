"""Artifact-level runs: `--artifact FILE` binds the verdict to one file's sha256 (INV-HARNESS-014)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.projects import Project, contract_yaml, passing_test

ARTIFACT_TEST = """
import pytest
from pathlib import Path

@pytest.mark.falsifies("FALSIFY-ART-002")
def test_falsify_art_002(apr_artifact):
    assert Path(apr_artifact.path).read_bytes().startswith(b"GOOD"), "the file is not good"
"""

REWRITING_TEST = """
import pytest
from pathlib import Path

@pytest.mark.falsifies("FALSIFY-ART-002")
def test_falsify_art_002(apr_artifact):
    Path(apr_artifact.path).write_bytes(b"GOOD but rewritten during the run")
"""


def _project(project: Project, body: str = ARTIFACT_TEST) -> Project:
    project.contract("art-v1", contract_yaml("ART", [{}, {"level": "artifact"}]))
    project.test("test_art", passing_test("ART") + body)
    return project


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_without_artifact_the_artifact_falsifier_is_undetermined_and_not_required(project: Project) -> None:
    _project(project)
    result = project.run("--contracts-json=verdict.json")
    assert result.ret == 0, result.stdout.str()
    receipt = project.receipt()
    art = next(f for f in receipt["falsifiers"] if f["id"] == "FALSIFY-ART-002")
    assert art["outcome"] == "UNDETERMINED" and art["required"] is False
    assert "no --artifact given" in art["reason"] and art["reason"].startswith("needs --artifact FILE")
    assert project.outcomes()["FALSIFY-ART-001"] == "CORROBORATED"
    assert receipt["verdict"] == "GO" and receipt["artifact"] is None


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_with_a_passing_artifact_only_artifact_falsifiers_run_and_the_digest_is_recorded(project: Project) -> None:
    _project(project)
    good = project.root / "good.apr"
    good.write_bytes(b"GOOD" + bytes(range(256)))
    result = project.run(f"--artifact={good}", "--contracts-json=verdict.json")
    assert result.ret == 0, result.stdout.str()
    receipt = project.receipt()
    assert project.outcomes() == {"FALSIFY-ART-002": "CORROBORATED"}  # only the artifact falsifier is in scope
    assert receipt["verdict"] == "GO" and receipt["scope"] == "artifact"
    assert receipt["artifact"]["sha256"] == _sha256(good)
    assert receipt["artifact"]["size"] == good.stat().st_size and receipt["artifact"]["path"] == str(good)
    assert receipt["artifact"]["changed"] is None
    result.stdout.fnmatch_lines([f"artifact: {good} sha256 {_sha256(good)} ({good.stat().st_size} bytes)"])


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_with_a_failing_artifact_the_verdict_is_no_go(project: Project) -> None:
    _project(project)
    bad = project.root / "bad.apr"
    bad.write_bytes(b"BAD!")
    result = project.run(f"--artifact={bad}", "--contracts-json=verdict.json")
    assert result.ret == 1
    receipt = project.receipt()
    assert receipt["verdict"] == "NO-GO" and receipt["artifact"]["sha256"] == _sha256(bad)
    assert project.outcomes() == {"FALSIFY-ART-002": "REFUTED"}


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_an_artifact_changed_during_the_run_is_never_go(project: Project) -> None:
    _project(project, REWRITING_TEST)
    target = project.root / "model.apr"
    target.write_bytes(b"GOOD original")
    before = _sha256(target)
    result = project.run(f"--artifact={target}", "--contracts-json=verdict.json")
    assert result.ret == 2, result.stdout.str()
    receipt = project.receipt()
    assert receipt["verdict"] == "UNKNOWN"
    assert receipt["artifact"]["sha256"] == before  # the digest the tests were given, not the new one
    assert receipt["artifact"]["changed"].startswith("artifact changed during verification")
    result.stdout.fnmatch_lines(["*artifact changed during verification*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_a_missing_artifact_is_a_usage_error(project: Project) -> None:
    _project(project)
    result = project.run(f"--artifact={project.root / 'nope.apr'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--artifact*no such file*"])


def _apr(*args: str, cwd: Path) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    process = subprocess.run([sys.executable, "-m", "apr.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                             env=env, check=False, timeout=300)
    return process.returncode, json.loads(process.stdout)


@pytest.mark.falsifies("FALSIFY-HARNESS-014")
def test_verify_artifact_agrees_with_apr_readiness_on_real_checkpoints(tmp_path: Path) -> None:
    from apr.readiness import build_card
    from tests.readiness.builders import build_checkpoint, tokenizer_metadata

    root = Path(__file__).resolve().parents[2]
    tok = tokenizer_metadata(tmp_path)
    good = build_checkpoint(tmp_path / "good.apr", tokenizer=tok)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(good), encoding="utf-8")
    bad = build_checkpoint(tmp_path / "bad.apr", tokenizer=tok, nan_tensor=True, overrides={"license": None})
    for path, expected in ((good, "GO"), (bad, "NO-GO")):
        verify_code, verdict = _apr("contracts", "verify", "--artifact", str(path), "--model-card", str(card),
                                    "--json", cwd=root)
        ready_code, readiness = _apr("readiness", str(path), "--model-card", str(card), "--json", cwd=root)
        assert verdict["verdict"] == readiness["verdict"] == expected, (verdict, readiness["blockers"])
        assert verify_code == ready_code == (0 if expected == "GO" else 1)
        assert verdict["artifact"]["sha256"] == readiness["sha256"]
        assert verdict["scope"] == "artifact"
        assert {f["id"] for f in verdict["falsifiers"]} == {f"FALSIFY-READY-ART-00{n}" for n in range(1, 8)}
