"""`apr publish`'s command module (apr/cli/publish_cmd.py), issue 23: the plan its flags make, the
order readiness -> staging -> upload, the exit code (0 GO, 1 NO-GO with nothing staged), the
``--json`` document's keys and the text report.

The readiness gates, the staging builder and the Hub are replaced by recording stand-ins (each has
its own tests: tests/readiness/, tests/publish/test_publish_v1.py with real exports), so every
expected value follows from what the stand-ins were given and returned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apr.cli.main import main
from apr.publish.staging import StagedFile
from apr.publish.upload import UploadResult
from apr.qa import GateResult
from apr.readiness import ReadinessReport

SHA = "00112233445566778899aabbccddeeff" * 2
REPO = "paiml/tiny-v1"
FILES = [StagedFile("README.md", 1234), StagedFile("tiny-v1.apr", 1234567)]
OK = GateResult("validate", True, False, "apr validate: VALID")
BLOCKER = GateResult("license", False, False, "no license", fix="apr stamp m.apr --license MIT --in-place")


class Recorder:
    def __init__(self, gates: list[GateResult], token: str | None) -> None:
        self.gates, self.token = gates, token
        self.readiness: list[dict[str, Any]] = []
        self.staged: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.token_asked = 0

    def run_readiness(self, path, options, *, on_gate=None) -> ReadinessReport:
        self.readiness.append({"path": path, "options": options})
        for gate in self.gates:
            if on_gate is not None:
                on_gate(gate)
        return ReadinessReport(model=str(path), sha256=SHA, gates=list(self.gates))

    def build_staging(self, plan, *, sha256: str, verdict: str) -> list[StagedFile]:
        self.staged.append({"plan": plan, "sha256": sha256, "verdict": verdict})
        return list(FILES)

    def hub_token(self) -> str | None:
        self.token_asked += 1
        return self.token

    def upload_staging(self, staging, repo, **kwargs: Any) -> UploadResult:
        self.uploads.append({"staging": staging, "repo": repo, **kwargs})
        return UploadResult(repo=repo, revision=kwargs["revision"], commit_url=f"https://huggingface.co/{repo}/commit/c0ffee")


@pytest.fixture()
def files(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    checkpoint, card = tmp_path / "m.apr", tmp_path / "CARD.md"
    checkpoint.write_bytes(b"not read: readiness and staging are replaced")
    card.write_text("---\nlicense: mit\n---\n# m\n", encoding="utf-8")
    return checkpoint, card


def _publish(monkeypatch, capsys, gates: list[GateResult], token: str | None, *argv: str) -> tuple[int, str, str, Recorder]:
    import apr.publish.staging
    import apr.publish.upload
    import apr.readiness

    rec = Recorder(gates, token)
    monkeypatch.setattr(apr.readiness, "run_readiness", rec.run_readiness)
    monkeypatch.setattr(apr.publish.staging, "build_staging", rec.build_staging)
    monkeypatch.setattr(apr.publish.upload, "hub_token", rec.hub_token)
    monkeypatch.setattr(apr.publish.upload, "upload_staging", rec.upload_staging)
    capsys.readouterr()
    code = main(["publish", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, rec


def test_the_default_plan(monkeypatch, capsys, files, tmp_path: Path) -> None:
    """Defaults: all three formats, a q8_0 GGUF, staging in NAME.publish; readiness reads the card."""
    checkpoint, card = files
    code, out, _, rec = _publish(monkeypatch, capsys, [OK], None, REPO, str(checkpoint), "--model-card", str(card),
                                 "--json")
    assert code == 0 and json.loads(out)["staging"] == "tiny-v1.publish"
    plan = rec.staged[0]["plan"]
    assert plan.repo == REPO and plan.formats == ("apr", "safetensors", "gguf") and plan.quantize == "q8_0"
    assert plan.staging == Path("tiny-v1.publish")
    assert rec.readiness[0]["path"] == plan.checkpoint and rec.readiness[0]["options"].model_card == str(card)
    assert rec.staged[0]["sha256"] == SHA and rec.staged[0]["verdict"] == "GO"


def test_the_given_plan(monkeypatch, capsys, files, tmp_path: Path) -> None:
    checkpoint, card = files
    _, _, _, rec = _publish(monkeypatch, capsys, [OK], None, REPO, str(checkpoint), "--model-card", str(card),
                            "--formats", "gguf", "--quantize", "q4_k", "--staging", str(tmp_path / "out"), "--json")
    plan = rec.staged[0]["plan"]
    assert plan.formats == ("gguf",) and plan.quantize == "q4_k" and plan.staging == tmp_path / "out"


@pytest.mark.parametrize("dry_run", [False, True])
def test_no_go_stages_and_uploads_nothing(monkeypatch, capsys, files, dry_run: bool) -> None:
    checkpoint, card = files
    argv = [REPO, str(checkpoint), "--model-card", str(card), "--json", *(["--dry-run"] if dry_run else [])]
    code, out, err, rec = _publish(monkeypatch, capsys, [OK, BLOCKER], "hf_token", *argv)
    assert code == 1 and rec.staged == [] and rec.uploads == [] and rec.token_asked == 0
    doc = json.loads(out)
    assert doc["schema"] == "apr.publish/1" and doc["command"] == "publish" and doc["input"] == str(checkpoint)
    assert doc["exit_code"] == 1 and doc["ok"] is False
    assert doc["repo"] == REPO and doc["sha256"] == SHA and doc["verdict"] == "NO-GO"
    assert doc["readiness"]["blockers"] == ["license"] and doc["readiness"]["verdict"] == "NO-GO"
    assert doc["staging"] is None and doc["files"] == [] and doc["uploaded"] is False and doc["commit"] is None
    assert doc["dry_run"] is dry_run
    assert err == ""  # no progress lines under --json


def test_no_go_in_text(monkeypatch, capsys, files) -> None:
    checkpoint, card = files
    code, out, err, rec = _publish(monkeypatch, capsys, [OK, BLOCKER], "hf_token", REPO, str(checkpoint),
                                   "--model-card", str(card))
    assert code == 1 and rec.staged == [] and rec.uploads == []
    assert out.splitlines() == [
        f"apr publish {REPO}: readiness NO-GO, nothing staged or uploaded",
        f"  PASS {'validate':<22} apr validate: VALID",
        f"  FAIL {'license':<22} no license",
        "         fix: apr stamp m.apr --license MIT --in-place",
    ]
    assert err.splitlines() == ["  validate done", "  license done"]


@pytest.mark.parametrize(("revision", "private"), [(None, False), ("v1", True)])
def test_go_with_a_token_makes_one_commit(monkeypatch, capsys, files, tmp_path: Path, revision, private: bool) -> None:
    checkpoint, card = files
    argv = [REPO, str(checkpoint), "--model-card", str(card), "--staging", str(tmp_path / "s"),
            "--commit-message", "first", "--json", *(["--revision", revision] if revision else []),
            *(["--private"] if private else [])]
    code, out, _, rec = _publish(monkeypatch, capsys, [OK], "hf_token", *argv)
    assert code == 0
    (upload,) = rec.uploads
    assert upload == {"staging": tmp_path / "s", "repo": REPO, "token": "hf_token", "revision": revision,
                      "private": private, "commit_message": "first"}
    doc = json.loads(out)
    assert doc["exit_code"] == 0 and doc["ok"] is True and doc["verdict"] == "GO" and doc["dry_run"] is False
    assert doc["uploaded"] is True and doc["staging"] == str(tmp_path / "s")
    assert doc["files"] == [f.to_dict() for f in FILES]
    assert doc["commit"] == {"repo": REPO, "revision": revision, "commit_url": f"https://huggingface.co/{REPO}/commit/c0ffee"}


@pytest.mark.parametrize(("token", "dry_run"), [(None, False), ("hf_token", True)])
def test_go_without_a_token_or_dry_run_uploads_nothing(monkeypatch, capsys, files, tmp_path: Path, token,
                                                       dry_run: bool) -> None:
    checkpoint, card = files
    argv = [REPO, str(checkpoint), "--model-card", str(card), "--staging", str(tmp_path / "s"), "--json",
            *(["--dry-run"] if dry_run else [])]
    code, out, _, rec = _publish(monkeypatch, capsys, [OK], token, *argv)
    assert code == 0 and rec.uploads == [] and len(rec.staged) == 1
    assert rec.token_asked == (0 if dry_run else 1)  # --dry-run never looks for a token
    doc = json.loads(out)
    assert doc["uploaded"] is False and doc["commit"] is None and doc["dry_run"] is dry_run
    assert doc["staging"] == str(tmp_path / "s") and doc["files"] == [f.to_dict() for f in FILES]


def _staged_lines(staging: Path) -> list[str]:
    return [f"✓ readiness GO; staged 2 files in {staging} (sha256 {SHA[:12]})",
            f"    {'README.md':<40} {'1,234':>14} bytes",
            f"    {'tiny-v1.apr':<40} {'1,234,567':>14} bytes"]


def test_go_uploaded_in_text(monkeypatch, capsys, files, tmp_path: Path) -> None:
    checkpoint, card = files
    code, out, err, _ = _publish(monkeypatch, capsys, [OK], "hf_token", REPO, str(checkpoint), "--model-card",
                                 str(card), "--staging", str(tmp_path / "s"))
    assert code == 0
    assert out.splitlines() == [*_staged_lines(tmp_path / "s"),
                                f"✓ committed to https://huggingface.co/{REPO}: https://huggingface.co/{REPO}/commit/c0ffee"]
    assert err.splitlines() == ["  validate done"]


def test_not_uploaded_in_text_says_why_and_what_it_would_commit(monkeypatch, capsys, files, tmp_path: Path) -> None:
    checkpoint, card = files
    staging = tmp_path / "s"
    code, out, _, _ = _publish(monkeypatch, capsys, [OK], None, REPO, str(checkpoint), "--model-card", str(card),
                               "--staging", str(staging))
    assert code == 0
    assert out.splitlines() == [*_staged_lines(staging),
                                "  not uploaded (no Hugging Face token (set HF_TOKEN or run `hf auth login`)); the "
                                f"commit would be: create_repo({REPO!r}, exist_ok=True), then upload_folder({str(staging)!r})"]
    code, out, _, _ = _publish(monkeypatch, capsys, [OK], "hf_token", REPO, str(checkpoint), "--model-card", str(card),
                               "--staging", str(staging), "--dry-run", "--private", "--revision", "v2")
    assert code == 0
    assert out.splitlines()[-1] == (f"  not uploaded (--dry-run); the commit would be: create_repo({REPO!r}, "
                                    f"exist_ok=True, private=True), then upload_folder({str(staging)!r}, revision='v2')")


def test_the_report_in_colour(monkeypatch, capsys, files) -> None:
    """On a terminal: the NO-GO head bold, the progress dim."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    checkpoint, card = files
    code, out, err, _ = _publish(monkeypatch, capsys, [OK, BLOCKER], None, REPO, str(checkpoint), "--model-card",
                                 str(card))
    assert code == 1
    assert out.splitlines()[0] == f"\x1b[1mapr publish {REPO}\x1b[0m: readiness NO-GO, nothing staged or uploaded"
    assert err.splitlines() == ["\x1b[2m  validate done\x1b[0m", "\x1b[2m  license done\x1b[0m"]


def test_a_go_document_names_the_checkpoint_as_its_input(monkeypatch, capsys, files) -> None:
    checkpoint, card = files
    code, out, _, _ = _publish(monkeypatch, capsys, [OK], None, REPO, str(checkpoint), "--model-card", str(card),
                               "--json")
    doc = json.loads(out)
    assert code == 0 and doc["input"] == str(checkpoint) and doc["schema"] == "apr.publish/1"
