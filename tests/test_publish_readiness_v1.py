"""Falsifiers of contracts/publish-readiness-v1.yaml: plant a publishing defect, expect NO-GO
naming its gate and fix; apply the printed fix, expect GO."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from apr.cli.main import main
from apr.readiness import ReadinessOptions, build_card, run_readiness
from tests.readiness.builders import build_checkpoint


def _card(path: Path, card: Path, *, license_override: str | None = None) -> Path:
    text = build_card(path)
    if license_override is not None:
        text = text.replace("license: apache-2.0", f"license: {license_override}")
    card.write_text(text, encoding="utf-8")
    return card


def _readiness(path: Path, card: Path | None):
    return run_readiness(path, ReadinessOptions(model_card=str(card) if card else None))


def _gate(report, name):
    return next(g for g in report.gates if g.name == name)


def _run_fix(command: str) -> None:
    argv = shlex.split(command)
    assert argv[0] == "apr"
    assert main(argv[1:]) == 0, command


@pytest.fixture()
def good(tmp_path: Path, tok_meta) -> Path:
    return build_checkpoint(tmp_path / "model.apr", tokenizer=tok_meta)


@pytest.mark.falsifies("FALSIFY-READY-007")
def test_falsify_ready_007_complete_checkpoint_is_go_and_bound_to_its_digest(good: Path, tmp_path: Path, capsys) -> None:
    from apr.qa import file_sha256

    card = _card(good, tmp_path / "CARD.md")
    code = main(["readiness", str(good), "--model-card", str(card), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verdict"] == "GO", doc["blockers"]
    assert doc["sha256"] == file_sha256(str(good))
    assert {g["name"] for g in doc["gates"]} == {"validate", "quality", "qa", "model_card", "hf_token", "smoke_run", "export"}
    hf_token = next(g for g in doc["gates"] if g["name"] == "hf_token")
    assert hf_token["skipped"] and not hf_token["passed"]  # skipped is reported, never counted as passed
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF
    good.write_bytes(bytes(data))
    assert file_sha256(str(good)) != doc["sha256"]
    again = _readiness(good, card)
    assert again.sha256 != doc["sha256"] and again.verdict == "NO-GO"  # the flipped byte breaks the footer CRC
    assert "validate" in [g.name for g in again.failed]


@pytest.mark.falsifies("FALSIFY-READY-001")
def test_falsify_ready_001_no_license_then_card_license_mismatch(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, overrides={"license": None})
    card = tmp_path / "CARD.md"
    report = _readiness(path, _card(path, card))
    quality = _gate(report, "quality")
    assert report.verdict == "NO-GO" and not quality.passed
    assert "license" in quality.message and "--license" in (quality.fix or "")
    _run_fix(f"apr stamp {path} --license Apache-2.0 --in-place")
    mismatched = _card(path, card, license_override="mit")
    report = _readiness(path, mismatched)
    assert [g.name for g in report.failed] == ["model_card"]
    assert "differs" in _gate(report, "model_card").message
    assert "apr card" in (_gate(report, "model_card").fix or "")
    assert _readiness(path, _card(path, card)).verdict == "GO"


@pytest.mark.falsifies("FALSIFY-READY-002")
def test_falsify_ready_002_missing_hf_identity(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, overrides={"hf_architecture": None, "hf_model_type": None})
    card = _card(path, tmp_path / "CARD.md")
    report = _readiness(path, card)
    assert [g.name for g in report.failed] == ["quality"]
    fix = _gate(report, "quality").fix or ""
    assert "--hf-architecture Qwen2ForCausalLM" in fix and "--hf-model-type qwen2" in fix
    for command in fix.split(" && "):
        _run_fix(command)
    assert _readiness(path, card).verdict == "GO"


@pytest.mark.falsifies("FALSIFY-READY-003")
def test_falsify_ready_003_no_embedded_tokenizer(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None, overrides={"vocab_size": len(tok_meta["tokenizer.vocabulary"])})
    card = _card(path, tmp_path / "CARD.md")
    report = _readiness(path, card)
    failed = [g.name for g in report.failed]
    assert report.verdict == "NO-GO" and "smoke_run" in failed and "qa" in failed
    assert "PMAT-172" in _gate(report, "smoke_run").message
    assert "--tokenizer" in (_gate(report, "smoke_run").fix or "")
    fixed = build_checkpoint(tmp_path / "fixed.apr", tokenizer=tok_meta)
    assert _readiness(fixed, _card(fixed, tmp_path / "CARD2.md")).verdict == "GO"


@pytest.mark.falsifies("FALSIFY-READY-004")
def test_falsify_ready_004_nan_tensor(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, nan_tensor=True)
    report = _readiness(path, _card(path, tmp_path / "CARD.md"))
    validate = _gate(report, "validate")
    assert not validate.passed and "NaN" in validate.message
    assert "apr validate" in (validate.fix or "")
    export = _gate(report, "export")  # the q4_k export refuses the NaN instead of writing arbitrary numbers
    assert not export.passed and "non-finite" in export.message and "apr validate" in (export.fix or "")
    fixed = build_checkpoint(tmp_path / "fixed.apr", tokenizer=tok_meta)
    assert _readiness(fixed, _card(fixed, tmp_path / "CARD2.md")).verdict == "GO"


@pytest.mark.falsifies("FALSIFY-READY-005")
def test_falsify_ready_005_qwen2_rope_theta_10000(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, overrides={"rope_theta": 10000.0})
    report = _readiness(path, _card(path, tmp_path / "CARD.md"))
    assert [g.name for g in report.failed] == ["qa"]
    assert "metadata_plausibility" in _gate(report, "qa").message and "Bug 210" in _gate(report, "qa").message
    fixed = build_checkpoint(tmp_path / "fixed.apr", tokenizer=tok_meta)
    assert _readiness(fixed, _card(fixed, tmp_path / "CARD2.md")).verdict == "GO"


@pytest.mark.falsifies("FALSIFY-READY-006")
def test_falsify_ready_006_architecture_claim_contradicts_tensors(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, overrides={"architecture": "LlamaForCausalLM"})
    card = _card(path, tmp_path / "CARD.md")
    report = _readiness(path, card)
    # the runtime refuses conflicting claims too, so the smoke run and the export fail with qa:
    # every blocker names the one stamp that makes the claims agree with the tensors
    assert [g.name for g in report.failed] == ["qa", "smoke_run", "export"]
    for gate in report.failed:
        assert f"apr stamp {path} --architecture qwen2 --hf-architecture Qwen2ForCausalLM --hf-model-type qwen2 " \
               "--in-place" in (gate.fix or ""), gate.name
        assert "the tensors are qwen2" in gate.message or "contradicts the tensors (qwen2)" in gate.message
    qa = _gate(report, "qa")
    assert "capability_match" in qa.message and "qwen2" in qa.message
    fix = qa.fix or ""
    _run_fix(fix.split(" ; ")[0])
    assert _readiness(path, card).verdict == "GO"


def test_readiness_cli_prints_each_blocker_with_its_fix(tmp_path: Path, tok_meta, capsys) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta, overrides={"license": None})
    code = main(["readiness", str(path)])
    text = capsys.readouterr().out
    assert code == 1
    assert "NO-GO" in text and "fix: apr card" in text and "--license" in text


def test_qa_json_has_a_verdict_key_aprender_never_wrote(tmp_path: Path, tok_meta, capsys) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta)
    assert main(["qa", str(path), "--json", "--skip-format-parity"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "GO" and doc["passed"] is True
    skipped = {g["name"] for g in doc["gates"] if g["skipped"]}
    assert "format_parity" in skipped
    assert doc["gates_executed"] + doc["gates_skipped"] == len(doc["gates"]) == 8


def test_the_card_says_when_the_data_license_is_free_text(tmp_path: Path, tok_meta) -> None:
    """The seed's `--data-license "Apache-2.0 / permissive-aggregate"` is stored verbatim; the card
    says it is not SPDX, and the file stays publishable (aprender gives it its points)."""
    free = build_checkpoint(tmp_path / "free.apr", tokenizer=tok_meta,
                            overrides={"data_license": "Apache-2.0 / permissive-aggregate"})
    text = build_card(free)
    assert ("> Note: data_license 'Apache-2.0 / permissive-aggregate' is free text, not an SPDX expression"
            in text)
    assert _readiness(free, _card(free, tmp_path / "CARD.md")).verdict == "GO"
    plain = build_checkpoint(tmp_path / "plain.apr", tokenizer=tok_meta)
    assert "> Note:" not in build_card(plain)
