"""The Chinchilla gate at its thresholds, against the rule as documented (docs/training.md,
contracts/chinchilla-gate-v1.yaml): N = V*H + L*(4*H^2 + 3*H*I) + H; D = steps x batch x seq;
with --init, D < 20*N is REJECTED (BYPASSED with --force-under-provisioned), D >= 20*N PASSED;
without --init SKIPPED; the suggested --num-steps is ceil(20*N / (batch*seq)).

Expected values are computed here from those formulas (or written out by hand), never read back
from the gate: each threshold is tried one token below, at and above it, in every mode.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.errors import ChinchillaGateError
from apr.train import chinchilla
from apr.train.chinchilla import (
    ChinchillaVerdict,
    GateStatus,
    chinchilla_ratio,
    enforce_chinchilla_gate,
    estimate_param_count,
    evaluate_chinchilla_gate,
    suggested_num_steps,
)
from apr.train.config import ModelConfig

from train_fixtures import TINY_RUN, run_cli

TWENTY = 20  # Hoffmann et al. 2022, as docs/training.md and the contract state it

TINY = ModelConfig(family="qwen2", vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                   intermediate_size=128, head_dim=16)
TINY_N = 512 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128) + 64  # = 114_752, "a 115k-parameter model" in the docs


def documented_n(vocab: int, hidden: int, layers: int, inter: int) -> int:
    return vocab * hidden + layers * (4 * hidden**2 + 3 * hidden * inter) + hidden


def expected_status(tokens: int, params: int, *, has_init: bool, force: bool) -> str:
    if not has_init:
        return "SKIPPED"
    if Fraction(tokens, params) >= TWENTY:  # rational comparison: no float in the oracle
        return "PASSED"
    return "BYPASSED" if force else "REJECTED"


def test_threshold_is_twenty_tokens_per_parameter() -> None:
    assert chinchilla.TOKENS_PER_PARAM == TWENTY


def test_status_values_are_the_reported_strings() -> None:
    assert [s.value for s in GateStatus] == ["PASSED", "BYPASSED", "REJECTED", "SKIPPED"]


# --- N ---------------------------------------------------------------------------------------------


def test_tiny_estimate_is_written_out() -> None:
    assert TINY_N == 114_752 and estimate_param_count(TINY) == TINY_N


@pytest.mark.parametrize(("field", "value"), [("vocab_size", 1000), ("hidden_size", 96), ("num_layers", 5),
                                              ("intermediate_size", 300)])
def test_each_term_of_the_estimate(field: str, value: int) -> None:
    config = TINY.with_(**{field: value})
    assert estimate_param_count(config) == documented_n(config.vocab_size, config.hidden_size, config.num_layers,
                                                        config.intermediate_size)


@pytest.mark.parametrize("changes", [{"num_kv_heads": 4}, {"num_heads": 8, "num_kv_heads": 1}, {"head_dim": 32},
                                     {"tie_word_embeddings": False}, {"family": "llama"}, {"family": "qwen3"}])
def test_the_estimate_ignores_gqa_head_dim_tying_and_family(changes: dict) -> None:
    assert estimate_param_count(TINY.with_(**changes)) == TINY_N


# --- D against 20 N: one token below, at, and above, in every mode -------------------------------


@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("has_init", [True, False])
@pytest.mark.parametrize("force", [False, True])
def test_one_token_below_at_and_above_the_threshold(delta: int, has_init: bool, force: bool) -> None:
    steps = TWENTY * TINY_N + delta  # batch 1 x seq 1: D is exactly the step count
    verdict = evaluate_chinchilla_gate(TINY, num_steps=steps, batch_size=1, seq_length=1, has_init=has_init,
                                       force=force)
    assert verdict.status.value == expected_status(steps, TINY_N, has_init=has_init, force=force)
    assert (verdict.params, verdict.tokens, verdict.suggested_steps) == (TINY_N, steps, TWENTY * TINY_N)


@pytest.mark.parametrize(("batch", "seq"), [(8, 64), (3, 7), (1, 4096), (16, 1024)])
@pytest.mark.parametrize("step_delta", [-1, 0, 1])
def test_the_suggested_step_count_is_the_first_that_passes(batch: int, seq: int, step_delta: int) -> None:
    first = math.ceil(Fraction(TWENTY * TINY_N, batch * seq))
    verdict = evaluate_chinchilla_gate(TINY, num_steps=first + step_delta, batch_size=batch, seq_length=seq,
                                       has_init=True, force=False)
    assert verdict.suggested_steps == first
    assert verdict.tokens == (first + step_delta) * batch * seq
    assert verdict.status is (GateStatus.REJECTED if step_delta < 0 else GateStatus.PASSED)


def test_the_tiny_run_of_the_docs() -> None:
    """8 x 64 per step: 20 x 114752 / 512 = 4482.5, so 4483 steps pass and 4482 do not."""
    assert suggested_num_steps(TINY_N, 8, 64) == 4483
    at = evaluate_chinchilla_gate(TINY, num_steps=4483, batch_size=8, seq_length=64, has_init=True, force=False)
    below = evaluate_chinchilla_gate(TINY, num_steps=4482, batch_size=8, seq_length=64, has_init=True, force=False)
    assert at.status is GateStatus.PASSED and below.status is GateStatus.REJECTED


@pytest.mark.parametrize(("params", "batch", "seq", "expected"), [
    (100, 1, 1, 2000), (100, 7, 1, 286), (100, 1000, 1, 2), (100, 2000, 1, 1), (100, 4000, 1, 1),
    (100, 8, 250, 1), (3, 1, 61, 1), (3, 1, 59, 2), (0, 8, 64, 0),
])
def test_suggested_steps_exact(params: int, batch: int, seq: int, expected: int) -> None:
    assert suggested_num_steps(params, batch, seq) == expected


@given(params=st.integers(1, 10**12), batch=st.integers(1, 4096), seq=st.integers(1, 1 << 16))
@example(params=1, batch=20, seq=1)  # divides exactly: 1 step
@example(params=1, batch=21, seq=1)  # one token more per step: still 1
@example(params=1, batch=19, seq=1)  # one token short: 2 steps
def test_suggested_steps_is_the_ceiling(params: int, batch: int, seq: int) -> None:
    steps = suggested_num_steps(params, batch, seq)
    assert steps * batch * seq >= TWENTY * params > (steps - 1) * batch * seq


@given(vocab=st.integers(1, 200_000), hidden=st.integers(1, 8192), layers=st.integers(1, 128),
       inter=st.integers(1, 30_000), batch=st.integers(1, 512), seq=st.integers(1, 8192),
       step_delta=st.integers(-2, 2), has_init=st.booleans(), force=st.booleans())
@example(vocab=1, hidden=1, layers=1, inter=1, batch=1, seq=1, step_delta=-1, has_init=True, force=False)
@example(vocab=1, hidden=1, layers=1, inter=1, batch=1, seq=1, step_delta=0, has_init=True, force=False)
@example(vocab=1, hidden=1, layers=1, inter=1, batch=1, seq=1, step_delta=-1, has_init=True, force=True)
@example(vocab=1, hidden=1, layers=1, inter=1, batch=1, seq=1, step_delta=-1, has_init=False, force=False)
def test_status_follows_the_documented_rule(vocab: int, hidden: int, layers: int, inter: int, batch: int, seq: int,
                                             step_delta: int, has_init: bool, force: bool) -> None:
    hidden = hidden // 2 * 2 or 2
    config = TINY.with_(vocab_size=vocab, hidden_size=hidden, num_layers=layers, intermediate_size=inter,
                        num_heads=1, num_kv_heads=1, head_dim=hidden)
    n = documented_n(vocab, hidden, layers, inter)
    steps = max(0, math.ceil(Fraction(TWENTY * n, batch * seq)) + step_delta)
    verdict = evaluate_chinchilla_gate(config, num_steps=steps, batch_size=batch, seq_length=seq, has_init=has_init,
                                       force=force)
    assert verdict.status.value == expected_status(steps * batch * seq, n, has_init=has_init, force=force)
    assert (verdict.params, verdict.tokens) == (n, steps * batch * seq)


# --- the ratio and the report ---------------------------------------------------------------------


@pytest.mark.parametrize(("tokens", "params", "expected"), [
    (40, 2, 20.0), (39, 2, 19.5), (1, 4, 0.25), (0, 5, 0.0), (5, 0, math.inf), (0, 0, math.inf),
])
def test_ratio(tokens: int, params: int, expected: float) -> None:
    assert chinchilla_ratio(tokens, params) == expected
    assert ChinchillaVerdict(GateStatus.PASSED, params=params, tokens=tokens, suggested_steps=0).ratio == expected


@pytest.mark.parametrize(("has_init", "force", "delta", "status"), [
    (True, False, -1, "REJECTED"), (True, True, -1, "BYPASSED"), (True, False, 0, "PASSED"), (False, False, -1, "SKIPPED"),
])
def test_json_report_key_by_key(has_init: bool, force: bool, delta: int, status: str) -> None:
    steps = 4483 + delta
    verdict = evaluate_chinchilla_gate(TINY, num_steps=steps, batch_size=8, seq_length=64, has_init=has_init,
                                       force=force)
    assert verdict.to_json() == {
        "status": status, "N": TINY_N, "D": steps * 512, "ratio": steps * 512 / TINY_N, "threshold": 20,
        "suggested_num_steps": 4483,
    }


# D = 1_050_001 is 1.050001M (shown "1.1M"), N = 2_250_001 is 2.250001M (shown "2.3M"): both just past a
# rounding edge, so a wrong divisor or a product shows. D/N = 0.46667 (shown "0.467").
D_EDGE, N_EDGE = 1_050_001, 2_250_001


def test_rejection_message_states_the_numbers() -> None:
    verdict = ChinchillaVerdict(GateStatus.REJECTED, params=N_EDGE, tokens=D_EDGE, suggested_steps=45_000_020)
    text = verdict.message()
    assert text.startswith("[P0-J'] Chinchilla hard gate")
    for part in ("D = 1050001 (1.1M)", "0.467x", "N = 2250001 (2.3M)", "D >= 20*N", "REJECTED",
                 "--num-steps to 45000020"):
        assert part in text, part


def test_bypass_message_states_the_numbers() -> None:
    verdict = ChinchillaVerdict(GateStatus.BYPASSED, params=N_EDGE, tokens=D_EDGE, suggested_steps=45_000_020)
    text = verdict.message()
    assert text.startswith("[P0-J'] Chinchilla gate BYPASSED via --force-under-provisioned")
    for part in ("D = 1050001 (1.1M)", "0.467x", "N = 2250001 (2.3M)", "under 20x", "--num-steps 45000020"):
        assert part in text, part


@pytest.mark.parametrize("status", [GateStatus.PASSED, GateStatus.SKIPPED])
def test_passed_and_skipped_say_nothing(status: GateStatus) -> None:
    assert ChinchillaVerdict(status, params=N_EDGE, tokens=D_EDGE, suggested_steps=1).message() == ""


# --- enforcement ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [GateStatus.PASSED, GateStatus.BYPASSED, GateStatus.SKIPPED])
def test_only_a_rejection_raises(status: GateStatus) -> None:
    enforce_chinchilla_gate(ChinchillaVerdict(status, params=TINY_N, tokens=1, suggested_steps=4483))


def test_rejection_error_carries_its_facts() -> None:
    verdict = evaluate_chinchilla_gate(TINY, num_steps=4482, batch_size=8, seq_length=64, has_init=True, force=False)
    with pytest.raises(ChinchillaGateError) as info:
        enforce_chinchilla_gate(verdict)
    error = info.value
    assert error.ratio == 4482 * 512 / TINY_N and error.suggested_steps == 4483
    assert error.field == "--num-steps" and error.exit_code == 5 and error.code == "chinchilla-gate"
    assert error.message.startswith("[P0-J'] Chinchilla hard gate") and "--num-steps to 4483" in error.message
    assert "--num-steps 4483" in error.hint and "--force-under-provisioned" in error.hint
    document = error.to_dict()
    assert document["field"] == "--num-steps" and document["exit_code"] == 5 and document["code"] == "chinchilla-gate"


def test_rejection_through_the_cli_in_text_mode(tmp_path: Path, dataset_dir: Path, short_run: dict, capsys) -> None:
    """Exit 5 without --json too: the error and its fix on stderr, nothing on stdout, no run folder."""
    init = str(Path(short_run["run_dir"]) / "ckpt" / "epoch-000.apr")
    code, _ = run_cli(["pretrain", "--dataset", str(dataset_dir), "--run-dir", str(tmp_path / "run"), "--init", init,
                       "--num-steps", "4482", *TINY_RUN], None)
    captured = capsys.readouterr()
    assert code == 5
    assert "[P0-J'] Chinchilla hard gate" in captured.err and "--num-steps 4483" in captured.err
    assert captured.out == "" and not (tmp_path / "run").exists()
