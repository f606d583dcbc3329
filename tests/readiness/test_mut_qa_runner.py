"""`apr.qa.runner` (the library side of `apr qa`): the threshold checks at their boundaries, the
refusals before any gate runs, an unreadable file as one failed gate, skipping and the per-gate
callback, and the report's bookkeeping (issue 23: mutation score of apr/qa/runner.py).

Gate order and names are the registry's (`apr.qa.gates.GATES`), written out here; the file's
SHA-256 is checked against `hashlib` over the bytes read here.
"""

from __future__ import annotations

import hashlib
import math
import platform
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, UsageError
from apr.qa.gates import QaOptions
from apr.qa.runner import check_thresholds, file_sha256, run_qa
from tests.readiness.builders import build_checkpoint

GATE_NAMES = ("capability_match", "tensor_contract", "metadata_plausibility", "golden_output", "throughput",
              "format_parity", "gpu_speedup", "performance_regression")
ALL = frozenset(GATE_NAMES)


# --- check_thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize("tps", [0, 0.0, 5e-324, 10, 10.5, 1e300])
def test_finite_non_negative_throughput_thresholds_are_accepted(tps) -> None:
    check_thresholds(QaOptions(assert_tps=tps))


@pytest.mark.parametrize("tps", [-1e-9, -1, math.nan, math.inf, -math.inf, True, False, "10", None])
def test_other_throughput_thresholds_are_refused_naming_the_flag(tps) -> None:
    with pytest.raises(UsageError) as why:
        check_thresholds(QaOptions(assert_tps=tps))
    assert why.value.field == "--assert-tps" and why.value.hint == "e.g. --assert-tps 10"
    assert why.value.message == (f"--assert-tps {tps!r}: the throughput threshold must be a finite number >= 0 "
                                 "(tokens/cpu-second, load-independent)")
    assert why.value.exit_code == 64


@pytest.mark.parametrize("ratio", [0, 0.0, 0.25, math.nextafter(1.0, 0.0)])
def test_regression_fractions_in_zero_to_one_are_accepted(ratio) -> None:
    check_thresholds(QaOptions(regression_threshold=ratio))


@pytest.mark.parametrize("ratio", [1, 1.0, -1e-9, 2, math.nan, math.inf, True, False, "0.2", None])
def test_other_regression_fractions_are_refused(ratio) -> None:
    with pytest.raises(UsageError) as why:
        check_thresholds(QaOptions(regression_threshold=ratio))
    assert why.value.field == "regression_threshold"
    assert why.value.message == f"regression threshold {ratio!r}: must be a fraction in [0, 1)"
    assert why.value.hint == "e.g. 0.25 (a drop of more than 25% fails)"


# --- file_sha256 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "chunk"), [(0, 4), (1, 4), (4, 4), (9, 4), (100_000, 8 * 1024 * 1024)])
def test_file_sha256_over_any_chunking(tmp_path: Path, size: int, chunk: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_sha256(str(path), chunk) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()


# --- run_qa: refusals -----------------------------------------------------------------------------


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as why:
        run_qa(tmp_path / "nope.apr")
    assert why.value.message == "file not found" and why.value.path == str(tmp_path / "nope.apr")


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as why:
        run_qa(tmp_path)
    assert why.value.message == "not a file" and why.value.path == str(tmp_path)


def test_an_unknown_gate_to_skip_is_refused_listing_the_gates(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(b"x")
    with pytest.raises(UsageError) as why:
        run_qa(path, QaOptions(skip=frozenset({"zeta", "alpha", "throughput"})))
    assert why.value.message == "unknown gate(s) to skip: alpha, zeta"
    assert why.value.hint == "gates: " + ", ".join(GATE_NAMES)


def test_thresholds_are_checked_before_any_gate(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(b"x")
    with pytest.raises(UsageError, match="--assert-tps"):
        run_qa(path, QaOptions(assert_tps=-1.0))


# --- run_qa: reports ------------------------------------------------------------------------------


def test_an_unreadable_file_is_one_failed_gate_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "garbage.apr"
    data = b"APR\x00" + b"\x01" * 200
    path.write_bytes(data)
    seen = []
    report = run_qa(path, min_executed=3, on_gate=seen.append)
    assert report.model == str(path) and report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.min_executed == 3 and report.registered == GATE_NAMES
    (gate,) = report.gates
    assert gate.name == "tensor_contract" and gate.passed is False and gate.skipped is False
    assert gate.message.startswith("file cannot be opened: ")
    assert report.verdict == "NO-GO"
    assert seen == []  # the callback hears gates that ran, not the refusal


def test_every_gate_skipped_is_reported_in_order_through_the_callback(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    seen = []
    report = run_qa(str(path), QaOptions(skip=ALL), on_gate=seen.append)
    assert [g.name for g in report.gates] == list(GATE_NAMES)
    assert seen == report.gates
    assert all(g.skipped and not g.passed for g in report.gates)
    assert [g.message for g in report.gates] == [
        f"Skipped: Skipped by --skip-{name.replace('_', '-')}" for name in GATE_NAMES]
    assert report.system_info == {"python": platform.python_version(), "machine": platform.machine(),
                                  "cpu": platform.processor()}


def test_the_unskipped_gates_run_on_the_files_metadata(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None, overrides={"rope_theta": 10000.0})
    keep = {"metadata_plausibility", "capability_match"}
    report = run_qa(path, QaOptions(skip=ALL - keep))
    ran = {g.name: g for g in report.gates if not g.skipped}
    assert set(ran) == keep
    # the qwen2 file with a llama rope_theta is Bug 210: the metadata reached the gate
    assert ran["metadata_plausibility"].passed is False and "Bug 210" in ran["metadata_plausibility"].message
    assert ran["capability_match"].passed is True


def test_default_options_are_used_when_none_are_given(tmp_path: Path, monkeypatch) -> None:
    import apr.qa.runner as runner

    checked = []
    monkeypatch.setattr(runner, "check_thresholds", lambda options: checked.append(options))
    path = tmp_path / "garbage.apr"
    path.write_bytes(b"APR\x00" + b"\x01" * 200)
    run_qa(path)
    assert checked == [QaOptions(clocks=checked[0].clocks)]


def test_a_bug_while_opening_is_not_hidden_as_a_failed_gate(tmp_path: Path, monkeypatch) -> None:
    import apr.format as fmt

    def broken(*args, **kwargs):
        raise RuntimeError("reader bug")

    monkeypatch.setattr(fmt, "open_file", broken)
    path = tmp_path / "m.apr"
    path.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="reader bug"):
        run_qa(path)


def test_a_header_checksum_mismatch_does_not_stop_the_gates(tmp_path: Path) -> None:
    # the header CRC (bytes 40..44, reference/formats.md) is the tensor_contract gate's business: the
    # runner opens the file without verifying it, so the other gates still read the metadata
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None, overrides={"rope_theta": 10000.0})
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01
    path.write_bytes(bytes(data))
    report = run_qa(path, QaOptions(skip=ALL - {"metadata_plausibility"}))
    assert len(report.gates) == len(GATE_NAMES)
    (ran,) = [g for g in report.gates if not g.skipped]
    assert ran.name == "metadata_plausibility" and "Bug 210" in ran.message


def test_min_executed_defaults_to_zero(tmp_path: Path) -> None:
    path = tmp_path / "garbage.apr"
    path.write_bytes(b"APR\x00" + b"\x01" * 200)
    assert run_qa(path).min_executed == 0


def test_the_gates_see_the_files_tensor_names(tmp_path: Path) -> None:
    # a llama claim on qwen2 tensors (q_proj has a bias): only the tensor names tell them apart
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None, overrides={
        "architecture": "llama", "hf_architecture": "LlamaForCausalLM", "hf_model_type": "llama", "model_type": "llama"})
    report = run_qa(path, QaOptions(skip=ALL - {"capability_match"}))
    (ran,) = [g for g in report.gates if not g.skipped]
    assert ran.passed is False
    assert ran.message == ("architecture claim 'llama' (llama) contradicts the tensors (qwen2) — "
                           "INV-INIT-ARCH-MATCH-001")


def test_an_unreadable_file_carries_the_readers_hint_as_the_fix(tmp_path: Path) -> None:
    from apr.errors import AprError
    from apr.format import open_file

    path = tmp_path / "garbage.apr"
    path.write_bytes(b"APR\x00" + b"\x01" * 200)
    with pytest.raises(AprError) as why:  # the oracle: the reader's own complaint about this file
        open_file(path, verify_checksum=False)
    assert why.value.hint
    (gate,) = run_qa(path).gates
    assert gate.message == f"file cannot be opened: {why.value.message}"
    assert gate.fix == why.value.hint


def test_a_gate_that_raises_a_documented_error_fails_under_its_own_name(tmp_path: Path, monkeypatch) -> None:
    import apr.qa.runner as runner
    from apr.errors import ValidationError

    def refusing(session):
        raise ValidationError("the gate refused", hint="do this")

    monkeypatch.setattr(runner, "GATES", (("throughput", refusing),))
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    (gate,) = run_qa(path, QaOptions()).gates
    assert (gate.name, gate.passed, gate.skipped, gate.message, gate.fix) == (
        "throughput", False, False, "the gate refused", "do this")
