"""contracts/chinchilla-gate-v1.yaml: D >= 20*N with --init, in its §87 form."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apr.errors import ChinchillaGateError
from apr.train.chinchilla import (
    GateStatus,
    enforce_chinchilla_gate,
    estimate_param_count,
    evaluate_chinchilla_gate,
    suggested_num_steps,
)
from apr.train.config import ModelConfig

from train_fixtures import TINY_RUN, run_cli

QWEN25_05B = ModelConfig(family="qwen2", vocab_size=151936, hidden_size=896, num_layers=24, num_heads=14,
                         num_kv_heads=2, intermediate_size=4864, head_dim=64, max_position_embeddings=32768,
                         rope_theta=1e6, tie_word_embeddings=True)


def epoch0(run: dict) -> str:
    return str(Path(run["run_dir"]) / "ckpt" / "epoch-000.apr")


def gate_argv(tmp_path: Path, dataset_dir: Path, init: str, steps: int, *extra: str) -> list[str]:
    return ["pretrain", "--dataset", str(dataset_dir), "--run-dir", str(tmp_path / "run"), "--init", init,
            "--num-steps", str(steps), *TINY_RUN, "--json", *extra]


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-001")
def test_falsify_chinchilla_001_under_provisioned_rejected(tmp_path: Path, dataset_dir: Path, short_run: dict,
                                                           capsys) -> None:
    code, document = run_cli(gate_argv(tmp_path, dataset_dir, epoch0(short_run), 5), capsys)
    error = document["error"]
    assert code == 5 and error["code"] == "chinchilla-gate"
    assert "[P0-J'] Chinchilla hard gate" in error["message"]
    assert "--num-steps to 4483" in error["message"] and "--num-steps 4483" in error["hint"]
    assert not (tmp_path / "run").exists()


def test_aprender_p2a_reproducer_is_rejected() -> None:
    """§82 P2-A: Qwen-0.5B init, 5000 x 16 x 512 = 41M tokens, ratio < 0.1."""
    verdict = evaluate_chinchilla_gate(QWEN25_05B, num_steps=5000, batch_size=16, seq_length=512,
                                       has_init=True, force=False)
    assert verdict.status is GateStatus.REJECTED and verdict.ratio < 0.1
    with pytest.raises(ChinchillaGateError) as info:
        enforce_chinchilla_gate(verdict)
    assert info.value.suggested_steps == verdict.suggested_steps and info.value.exit_code == 5


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-002")
def test_falsify_chinchilla_002_bypass_warns(tmp_path: Path, dataset_dir: Path, short_run: dict, capsys,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="apr"):
        code, report = run_cli(gate_argv(tmp_path, dataset_dir, epoch0(short_run), 2, "--force-under-provisioned"),
                               capsys)
    assert code == 0 and report["chinchilla"]["status"] == "BYPASSED"
    assert any("[P0-J'] Chinchilla gate BYPASSED" in r.getMessage() for r in caplog.records)
    assert any("BYPASSED" in w for w in report["warnings"])


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-002")
def test_falsify_chinchilla_002_bypass_reaches_stderr(tmp_path: Path, dataset_dir: Path, short_run: dict) -> None:
    import subprocess
    import sys

    argv = gate_argv(tmp_path, dataset_dir, epoch0(short_run), 0, "--force-under-provisioned")
    result = subprocess.run([sys.executable, "-m", "apr.cli.main", *argv], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Chinchilla gate BYPASSED" in result.stderr.replace("\n", " ")


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-003")
def test_falsify_chinchilla_003_no_init_skips(short_run: dict, caplog: pytest.LogCaptureFixture) -> None:
    assert short_run["chinchilla"]["status"] == "SKIPPED" and short_run["chinchilla"]["ratio"] < 1
    assert short_run["warnings"] == []
    verdict = evaluate_chinchilla_gate(QWEN25_05B, num_steps=1, batch_size=1, seq_length=1, has_init=False, force=False)
    enforce_chinchilla_gate(verdict)  # does not raise
    assert verdict.message() == ""


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-004")
@given(layers=st.integers(1, 40), hidden=st.sampled_from([64, 256, 896, 4096]), batch=st.integers(1, 64),
       seq=st.sampled_from([1, 7, 128, 1024, 4096]))
def test_falsify_chinchilla_004_boundary_is_exact(layers: int, hidden: int, batch: int, seq: int) -> None:
    config = QWEN25_05B.with_(num_layers=layers, hidden_size=hidden, head_dim=hidden // 14 // 2 * 2 or 2)
    steps = suggested_num_steps(estimate_param_count(config), batch, seq)
    at = evaluate_chinchilla_gate(config, num_steps=steps, batch_size=batch, seq_length=seq, has_init=True, force=False)
    below = evaluate_chinchilla_gate(config, num_steps=steps - 1, batch_size=batch, seq_length=seq, has_init=True,
                                     force=False)
    assert at.status is GateStatus.PASSED and at.ratio >= 20
    assert below.status is GateStatus.REJECTED and below.ratio < 20


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-004")
def test_falsify_chinchilla_004_boundary_through_the_cli(tmp_path: Path, dataset_dir: Path, short_run: dict,
                                                         capsys) -> None:
    """The suggested count passes the gate (and meets the next check: an occupied --run-dir); one fewer fails."""
    (tmp_path / "run" / "ckpt").mkdir(parents=True)
    (tmp_path / "run" / "ckpt" / "epoch-000.apr").write_bytes(b"occupied")
    _, document = run_cli(gate_argv(tmp_path, dataset_dir, epoch0(short_run), 4483), capsys)
    assert document["error"]["code"] == "output-exists"
    _, document = run_cli(gate_argv(tmp_path, dataset_dir, epoch0(short_run), 4482), capsys)
    assert document["error"]["code"] == "chinchilla-gate"


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-005")
@pytest.mark.parametrize("multiple", [20, 25, 1000])
def test_falsify_chinchilla_005_well_provisioned_is_silent(multiple: int) -> None:
    n = estimate_param_count(QWEN25_05B)
    steps = -(-multiple * n // (16 * 1024))
    verdict = evaluate_chinchilla_gate(QWEN25_05B, num_steps=steps, batch_size=16, seq_length=1024, has_init=True,
                                       force=True)
    assert verdict.status is GateStatus.PASSED and verdict.message() == ""


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-005")
def test_falsify_chinchilla_005_plateau_zone_is_now_rejected() -> None:
    """§87: 15*N (aprender v1.0.0's warning band) is a hard failure; force still bypasses it."""
    n = estimate_param_count(QWEN25_05B)
    steps = 15 * n // (16 * 1024)
    assert evaluate_chinchilla_gate(QWEN25_05B, num_steps=steps, batch_size=16, seq_length=1024, has_init=True,
                                    force=False).status is GateStatus.REJECTED
    assert evaluate_chinchilla_gate(QWEN25_05B, num_steps=steps, batch_size=16, seq_length=1024, has_init=True,
                                    force=True).status is GateStatus.BYPASSED


@pytest.mark.falsifies("FALSIFY-CHINCHILLA-006")
def test_falsify_chinchilla_006_parameter_estimate() -> None:
    n = estimate_param_count(QWEN25_05B)
    assert 494e6 / 2 <= n <= 494e6 * 2
    h, i = 896, 4864
    assert n == 151936 * h + 24 * (4 * h * h + 3 * h * i) + h
    assert estimate_param_count(QWEN25_05B.with_(num_layers=25)) > n
    assert abs(QWEN25_05B.param_count - 494_032_768) < 1e6  # the exact count, for comparison
