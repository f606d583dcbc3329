"""The `apr qa` gates' decisions at their boundaries, and their JSON documents key by key (issue 23).

Each gate is reached with the smallest input that decides it: a `_Session` with metadata and
tensor names set directly, fake clocks, and the model-facing helpers (`_generate`, exports,
`load_model`) replaced by recorders, so no test here generates text with a real model. Every
threshold is tested just below, at and just above it; every outcome (pass, fail, skip, error) is
checked through `to_dict()` with each key's expected value derived from the input.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path
from typing import Any

import pytest
import apr.qa.gates as qa_gates
from apr.errors import AprError, ConvertError, ValidationError
from apr.qa import QaOptions, run_qa
from apr.qa.gate import (
    GateResult,
    QaReport,
    executed_gates,
    failed_gates,
    qa_passed,
    qa_summary,
    verdict_word,
)
from apr.qa.gates import (
    GATES,
    PARITY_MIN_COSINE,
    _cosine_min,
    _generate,
    _logits,
    _Session,
    _teacher_forced_ids,
    _timed,
    gate_capability_match,
    gate_format_parity,
    gate_golden_output,
    gate_gpu_speedup,
    gate_metadata_plausibility,
    gate_performance_regression,
    gate_tensor_contract,
    gate_throughput,
)
from apr.qa.throughput import UNIT, Clocks, ThroughputSample
from tests.stamp_builders import QWEN2_NAMES, write_checkpoint

GATE_KEYS = ["name", "passed", "skipped", "message", "value", "threshold", "duration_ms"]
REPORT_KEYS = ["input", "sha256", "passed", "verdict", "gates", "gates_executed", "gates_skipped",
               "gates_registered", "summary", "system_info"]


def _session(**kw: Any) -> _Session:
    return _Session(path=kw.pop("path", "m.apr"), options=kw.pop("options", QaOptions()), **kw)


class FakeCounter:
    """``time.perf_counter`` that advances by ``step`` seconds per reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# --- GateResult ------------------------------------------------------------------------------


def test_a_skipped_gate_is_neither_passed_nor_measured_and_says_why() -> None:
    skipped = GateResult.skip("gpu_speedup", "no CUDA")
    assert skipped.to_dict() == {
        "name": "gpu_speedup", "passed": False, "skipped": True, "message": "Skipped: no CUDA",
        "value": None, "threshold": None, "duration_ms": 0.0,
    }
    assert list(skipped.to_dict()) == GATE_KEYS  # no fix, no unit: those keys are absent, not null
    assert (skipped.fix, skipped.unit) == (None, None)


def test_gate_json_has_every_key_with_its_value_and_fix_and_unit_only_when_set() -> None:
    full = GateResult("throughput", True, False, "ok", value=12.5, threshold=10.0, duration_ms=1.23456,
                      fix="apr qa m.apr", unit=UNIT)
    doc = full.to_dict()
    assert list(doc) == GATE_KEYS + ["fix", "unit"]
    assert doc == {"name": "throughput", "passed": True, "skipped": False, "message": "ok", "value": 12.5,
                   "threshold": 10.0, "duration_ms": 1.235, "fix": "apr qa m.apr", "unit": UNIT}
    bare = GateResult("golden_output", False, False, "empty", fix="", unit="").to_dict()
    assert list(bare) == GATE_KEYS and bare["passed"] is False and bare["skipped"] is False
    assert bare["value"] is None and bare["threshold"] is None
    assert GateResult("x", True, False, "m", duration_ms=2.0004).to_dict()["duration_ms"] == 2.0
    assert GateResult("x", True, False, "m", duration_ms=2.0006).to_dict()["duration_ms"] == 2.001


# --- the verdict lattice ---------------------------------------------------------------------

PASS = GateResult("a", True, False, "ok")
FAIL = GateResult("b", False, False, "bad")
SKIP = GateResult.skip("c", "why")
FAIL2 = GateResult("d", False, False, "worse")


@pytest.mark.parametrize(("gates", "min_executed", "passed", "summary"), [
    ([], 0, True, "All QA gates passed (0 executed, 0 skipped)"),
    ([], 1, False, "Insufficient gate execution: 0 < 1 minimum"),
    ([SKIP], 0, True, "All QA gates passed (0 executed, 1 skipped)"),
    ([SKIP], 1, False, "Insufficient gate execution: 0 < 1 minimum"),  # a skip never counts as run
    ([PASS], 0, True, "All QA gates passed (1 executed, 0 skipped)"),
    ([PASS, SKIP], 1, True, "All QA gates passed (1 executed, 1 skipped)"),  # at the minimum
    ([PASS, SKIP], 2, False, "Insufficient gate execution: 1 < 2 minimum"),  # one below it
    ([PASS, PASS, SKIP], 1, True, "All QA gates passed (2 executed, 1 skipped)"),  # one above it
    ([FAIL], 0, False, "Failed gates: b"),
    ([PASS, FAIL, SKIP], 0, False, "Failed gates: b"),
    ([FAIL, PASS, FAIL2], 0, False, "Failed gates: b, d"),
    ([FAIL], 5, False, "Failed gates: b"),  # a failure is named before too few executions
])
def test_qa_verdict_lattice(gates: list[GateResult], min_executed: int, passed: bool, summary: str) -> None:
    ran = [g for g in gates if not g.skipped]
    assert executed_gates(gates) == ran
    assert failed_gates(gates) == [g for g in ran if not g.passed]
    assert qa_passed(gates, min_executed) is passed
    assert qa_summary(gates, min_executed) == summary
    report = QaReport(model="m.apr", sha256="ab" * 32, gates=list(gates), min_executed=min_executed,
                      system_info={"python": "3"}, registered=("a", "b"))
    assert (report.passed, report.verdict, report.summary) == (passed, "GO" if passed else "NO-GO", summary)
    assert report.executed == ran and report.failed == failed_gates(gates)
    doc = report.to_dict()
    assert list(doc) == REPORT_KEYS
    assert doc == {
        "input": "m.apr", "sha256": "ab" * 32, "passed": passed, "verdict": "GO" if passed else "NO-GO",
        "gates": [g.to_dict() for g in gates], "gates_executed": len(ran), "gates_skipped": len(gates) - len(ran),
        "gates_registered": ["a", "b"], "summary": summary, "system_info": {"python": "3"},
    }
    json.dumps(doc, allow_nan=False)


def test_verdict_words_are_the_json_values_consumers_read() -> None:
    assert (verdict_word(True), verdict_word(False)) == ("GO", "NO-GO")


# --- _Session and _timed ---------------------------------------------------------------------


def test_the_model_is_loaded_once_and_a_load_error_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.run

    calls: list[tuple[str, str]] = []
    model = object()

    def load(path: str, *, device: str = "cpu") -> object:
        calls.append((path, device))
        return model

    monkeypatch.setattr(apr.run, "load_model", load)
    s = _session(path="a.apr", options=QaOptions(device="meta"))
    assert s.loaded() is model and s.loaded() is model
    assert calls == [("a.apr", "meta")]

    def broken(path: str, *, device: str = "cpu") -> object:
        calls.append((path, device))
        raise ConvertError("not a decoder", hint="apr import")

    monkeypatch.setattr(apr.run, "load_model", broken)
    calls.clear()
    s = _session(path="b.apr")
    for _ in range(2):
        with pytest.raises(ConvertError, match="not a decoder"):
            s.loaded()
    assert calls == [("b.apr", "cpu")]  # the failed load is not retried by every gate


def test_timed_turns_a_project_error_into_a_failed_gate_and_measures_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa_gates, "time", types.SimpleNamespace(perf_counter=FakeCounter(0.25)))

    def raises(_s: _Session) -> GateResult:
        raise ValidationError("tokenizer is broken", hint="apr import again")

    doc = _timed("golden_output", raises, _session()).to_dict()
    assert doc == {"name": "golden_output", "passed": False, "skipped": False, "message": "tokenizer is broken",
                   "value": None, "threshold": None, "duration_ms": 250.0, "fix": "apr import again"}
    session = _session()
    got: list[_Session] = []
    ok = _timed("x", lambda s: got.append(s) or GateResult("x", True, False, "fine", value=3.0), session)
    assert got == [session]  # the gate gets the shared session
    assert (ok.passed, ok.value, ok.duration_ms) == (True, 3.0, 250.0)

    def bug(_s: _Session) -> GateResult:
        raise KeyError("a bug, not a verdict")

    with pytest.raises(KeyError):  # only the project's own errors become failed gates
        _timed("x", bug, _session())


def test_run_qa_reports_a_gate_that_raises_and_runs_the_rest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import apr.qa.runner as runner

    path = write_checkpoint(tmp_path / "m.apr")

    def raises(_s: _Session) -> GateResult:
        raise AprError("stage broke", hint="retry")

    monkeypatch.setattr(runner, "GATES", (("first", raises), ("second", lambda s: GateResult("second", True, False, "ok"))))
    seen: list[str] = []
    report = run_qa(path, on_gate=lambda g: seen.append(g.name))
    assert seen == ["first", "second"]
    first, second = report.to_dict()["gates"]
    assert (first["name"], first["passed"], first["skipped"], first["message"], first["fix"]) == (
        "first", False, False, "stage broke", "retry")
    assert second["passed"] is True
    assert report.verdict == "NO-GO" and report.summary == "Failed gates: first"


# --- tensor_contract, metadata_plausibility, capability_match --------------------------------


def test_tensor_contract_passes_a_valid_file_and_names_each_violation(tmp_path: Path) -> None:
    import numpy as np

    good = write_checkpoint(tmp_path / "good.apr")
    result = gate_tensor_contract(_session(path=good))
    from apr.format.validate import validate_file

    report = validate_file(good)
    assert result.to_dict() == {"name": "tensor_contract", "passed": True, "skipped": False, "value": None,
                                "message": f"{len(report.checks)} checks passed on {len(report.tensors)} tensors",
                                "threshold": None, "duration_ms": 0.0}
    bad_tensor = np.array([[1.0, np.nan, 3.0]], dtype=np.float32)
    bad = write_checkpoint(tmp_path / "bad.apr", tensors={QWEN2_NAMES[1]: bad_tensor})
    failed = gate_tensor_contract(_session(path=bad)).to_dict()
    bad_report = validate_file(bad)
    violations = [c for c in bad_report.failed if c.status.name == "FAIL"]
    assert violations
    detail = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in violations)
    assert failed == {"name": "tensor_contract", "passed": False, "skipped": False, "value": None, "threshold": None,
                      "message": f"{len(bad_report.failed)} contract violations: {detail}", "duration_ms": 0.0,
                      "fix": f"apr validate {bad}  (then re-export or retrain the affected tensors)"}


def test_tensor_contract_joins_every_failed_check_and_counts_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.format.validate as validate

    def check(id: str, status: Any) -> Any:
        return types.SimpleNamespace(id=id, name=f"rule {id}", detail=f"detail {id}", status=status)

    failed = [check("F-1", validate.Status.FAIL), check("W-2", validate.Status.WARN), check("F-3", validate.Status.FAIL)]
    monkeypatch.setattr(validate, "validate_file", lambda p: types.SimpleNamespace(passed=False, failed=failed))
    assert gate_tensor_contract(_session(path="m.apr")).message == (
        "3 contract violations: [F-1] rule F-1: detail F-1; [F-3] rule F-3: detail F-3")


PLAUSIBLE = {"architecture": "qwen2", "rope_theta": 1000000.0, "max_position_embeddings": 128, "rms_norm_eps": 1e-6}


def test_metadata_plausibility_passes_real_values_and_fails_with_the_reimport_fix() -> None:
    ok = gate_metadata_plausibility(_session(metadata=dict(PLAUSIBLE)))
    assert ok.to_dict() == {
        "name": "metadata_plausibility", "passed": True, "skipped": False,
        "message": "3 metadata checks passed (arch=qwen2, rope_theta=1000000.0, max_pos=128)",
        "value": None, "threshold": None, "duration_ms": 0.0}
    bad = gate_metadata_plausibility(_session(path="x.apr", metadata={**PLAUSIBLE, "max_position_embeddings": 127,
                                                                        "rms_norm_eps": 0.5}))
    assert (bad.name, bad.passed, bad.skipped) == ("metadata_plausibility", False, False)
    assert bad.message == ("max_position_embeddings=127 — expected within [128, 1048576]; "
                           "rms_norm_eps=0.5 — expected within (0, 0.01]")
    assert bad.fix == ("re-import the model with its config.json (apr import HF_DIR -o x.apr) "
                       "so rope_theta and friends are real")


# One decoder layer as Hugging Face names it (written out here, not read from apr.arch).
_LLAMA_FULL = ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
               *(f"model.layers.0.{s}" for s in (
                   "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                   "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                   "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")))
_QWEN2_FULL = _LLAMA_FULL + tuple(f"model.layers.0.self_attn.{p}_proj.bias" for p in "qkv")
_QWEN3_FULL = _LLAMA_FULL + ("model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight")
_IMPLEMENTED = "the runtime implements llama, mistral, qwen2, qwen3, gemma, gemma2, phi3; run this model with transformers " \
               "(apr inspect, apr validate and apr stamp still work on this file)"


def _refused(arch: str, reason: str) -> str:
    return f"the runtime does not implement architecture {arch!r} exactly: {reason}"


@pytest.mark.parametrize(("names", "claim", "passed", "message"), [
    (_QWEN2_FULL, None, True, "qwen2 is supported by apr run"),
    (_QWEN2_FULL, "Qwen2ForCausalLM", True, "qwen2 is supported by apr run"),
    (_LLAMA_FULL, "llama", True, "llama is supported by apr run"),
    (_LLAMA_FULL[:2] + _LLAMA_FULL[3:], None, True, "llama is supported by apr run"),  # tied: no lm_head
    (_LLAMA_FULL, "mistral", True, "mistral is supported by apr run"),  # the claim picks among equal schemas
    (_QWEN3_FULL, None, True, "qwen3 is supported by apr run"),
    (_QWEN2_FULL, 7, True, "qwen2 is supported by apr run"),  # a claim that is not a string is no claim
    (_QWEN2_FULL, ["LlamaForCausalLM"], True, "qwen2 is supported by apr run"),  # nor is a list (no lookup)
    # near misses: one tensor short, one tensor foreign, nothing the registry knows
    (_LLAMA_FULL[1:], "llama", False, _refused("llama", "1 missing tensor: model.embed_tokens.weight")),
    (_LLAMA_FULL + ("model.layers.0.mlp.experts.0.up_proj.weight",), "llama", False,
     _refused("llama", "1 unexpected tensor: model.layers.0.mlp.experts.0.up_proj.weight")),
    (("blk.0.attn_q.weight",), "WeirdForCausalLM", False,
     _refused("WeirdForCausalLM", "it is not a model_type the registry knows")),
    (("blk.0.attn_q.weight",), None, False, _refused("unknown", "no architecture is named")),
])
def test_capability_match_decides_on_the_tensors_then_the_claim(names, claim, passed, message) -> None:
    meta = {} if claim is None else {"architecture": claim}
    result = gate_capability_match(_session(tensor_names=list(names), metadata=meta))
    expected = {"name": "capability_match", "passed": passed, "skipped": False, "message": message,
                "value": None, "threshold": None, "duration_ms": 0.0}
    if not passed:
        expected["fix"] = _IMPLEMENTED
    assert result.to_dict() == expected


@pytest.mark.parametrize(("names", "claim", "architecture"), [
    (("transformer.h.0.attn.c_attn.weight",), None, "gpt2"),
    (("blk.0.attn_q.weight",), "GPT2LMHeadModel", "gpt2"),
    (_LLAMA_FULL, "gemma3", "gemma3"),
    # a family the runtime does not implement is refused as such even when the tensors are another
    # family's: "not implemented" comes before "contradicts the tensors"
    (_LLAMA_FULL, "GPT2LMHeadModel", "gpt2"),
])
def test_capability_match_refuses_a_family_the_runtime_does_not_implement(names, claim, architecture) -> None:
    meta = {} if claim is None else {"architecture": claim}
    result = gate_capability_match(_session(tensor_names=list(names), metadata=meta))
    assert (result.passed, result.skipped, result.fix) == (False, False, _IMPLEMENTED)
    assert result.message.startswith(_refused(architecture, "the runtime does not implement it: "))


def test_capability_match_fails_a_contradicting_claim_with_the_in_place_stamp() -> None:
    result = gate_capability_match(_session(path="dir/m.apr", tensor_names=list(QWEN2_NAMES),
                                            metadata={"architecture": "LlamaForCausalLM"}))
    assert (result.name, result.passed, result.skipped) == ("capability_match", False, False)
    assert result.message == ("architecture claim 'LlamaForCausalLM' (llama) contradicts the tensors (qwen2) "
                              "— INV-INIT-ARCH-MATCH-001")
    assert result.fix == ("apr stamp dir/m.apr --architecture qwen2 --hf-architecture Qwen2ForCausalLM "
                          "--hf-model-type qwen2 --in-place")


@pytest.mark.parametrize(("names", "claim"), [
    # tensors of no family apr knows: a claim cannot contradict them, so the resolver's refusal stands
    (("blk.0.attn_q.weight",), "llama"),
    (("layer_a.weight", "layer_b.weight"), "Qwen2ForCausalLM"),
    # a claim that is not a string is no claim, here too (never looked up)
    (("blk.0.attn_q.weight",), ["LlamaForCausalLM"]),
    (_LLAMA_FULL[1:], ["Qwen2ForCausalLM"]),
])
def test_capability_match_passes_the_resolvers_refusal_when_nothing_contradicts(names, claim) -> None:
    from apr.arch import architecture_from_metadata

    refusal = architecture_from_metadata({"architecture": claim}, list(names)).refusal
    assert refusal is not None
    result = gate_capability_match(_session(tensor_names=list(names), metadata={"architecture": claim}))
    assert (result.passed, result.skipped, result.message, result.fix) == (False, False, refusal.message, refusal.hint)
    assert "contradicts" not in result.message


# --- golden_output and _generate -------------------------------------------------------------


def _outputs(monkeypatch: pytest.MonkeyPatch, *texts: str) -> list[int]:
    calls: list[int] = []

    def fake(s: _Session) -> tuple[str, int]:
        assert isinstance(s, _Session)
        calls.append(1)
        return texts[len(calls) - 1], 3

    monkeypatch.setattr(qa_gates, "_generate", fake)
    return calls


@pytest.mark.parametrize(("first", "second", "passed", "message"), [
    ("", "", False, "greedy generation from 'Hi' is empty"),
    ("  \n", "  \n", False, "greedy generation from 'Hi' is empty"),
    ("a\ufffdb", "a\ufffdb", False, "output contains '\ufffd': 'a\ufffdb'"),
    ("x [UNK] y", "x [UNK] y", False, "output contains '[UNK]': 'x [UNK] y'"),
    ("nul\x00", "nul\x00", False, "output contains '\\x00': 'nul\\x00'"),
    ("\ufffd[UNK]", "other", False, "output contains '\ufffd', '[UNK]': '\ufffd[UNK]'"),  # markers before determinism
    ("[UNK", "[UNK", True, "deterministic greedy output: '[UNK'"),  # near miss: not the marker
    ("abc", "abd", False, "greedy decoding is not deterministic: 'abc' vs 'abd'"),
    ("fine text", "fine text", True, "deterministic greedy output: 'fine text'"),
])
def test_golden_output_rules_in_order(monkeypatch: pytest.MonkeyPatch, first: str, second: str, passed: bool,
                                      message: str) -> None:
    calls = _outputs(monkeypatch, first, second)
    result = gate_golden_output(_session(options=QaOptions(prompt="Hi")))
    assert len(calls) == 2  # generated twice, to compare
    assert result.to_dict() == {"name": "golden_output", "passed": passed, "skipped": False, "message": message,
                                "value": None, "threshold": None, "duration_ms": 0.0}


def test_golden_output_messages_are_cut_to_their_length(monkeypatch: pytest.MonkeyPatch) -> None:
    long_a, long_b = "a" * 100, "a" * 99 + "b"
    _outputs(monkeypatch, long_a, long_b)
    assert gate_golden_output(_session()).message == f"greedy decoding is not deterministic: {'a' * 40!r} vs {'a' * 40!r}"
    _outputs(monkeypatch, long_a, long_a)
    assert gate_golden_output(_session()).message == f"deterministic greedy output: {'a' * 60!r}"
    marked = "\ufffd" + "b" * 100
    _outputs(monkeypatch, marked, "")
    assert gate_golden_output(_session()).message == f"output contains {chr(0xFFFD)!r}: {marked[:80]!r}"


class FakeTokenizer:
    def __init__(self, ids: list[int] | None = None) -> None:
        self.ids, self.seen = ids, []

    def encode(self, text: str, add_special_tokens: bool = True) -> Any:
        self.seen.append((text, add_special_tokens))
        return types.SimpleNamespace(ids=self.ids if self.ids is not None else list(range(len(text.split()))))


def test_generate_is_greedy_with_the_options_budget_and_counts_tokens_without_specials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.run

    tokenizer = FakeTokenizer()
    loaded = types.SimpleNamespace(tokenizer=tokenizer)
    seen: list[Any] = []

    def fake_generate_text(model: Any, prompt: str, sampling: Any) -> Any:
        seen.append((model, prompt, sampling.max_tokens, sampling.temperature))
        yield from ["one ", "two ", "three"]

    monkeypatch.setattr(apr.run, "generate_text", fake_generate_text)
    s = _session(options=QaOptions(prompt="Once", max_tokens=7), _loaded=loaded)
    assert _generate(s) == ("one two three", 3)
    assert seen == [(loaded, "Once", 7, 0.0)]
    assert tokenizer.seen == [("one two three", False)]
    monkeypatch.setattr(apr.run, "generate_text", lambda *a: iter(()))
    tokenizer.seen.clear()
    assert _generate(s) == ("", 0) and tokenizer.seen == []  # nothing generated: nothing to count


# --- throughput ------------------------------------------------------------------------------


class TickClocks:
    def __init__(self, cpu_step: float) -> None:
        self.cpu_now = self.wall_now = 0.0
        self.cpu_step = cpu_step

    def cpu(self) -> float:
        self.cpu_now += self.cpu_step
        return self.cpu_now

    def wall(self) -> float:
        self.wall_now += 1.0
        return self.wall_now


@pytest.mark.parametrize(("threshold", "passed"), [(63.0, True), (64.0, True), (65.0, False)])
def test_throughput_gate_decides_on_tokens_per_cpu_second_at_the_threshold(
        monkeypatch: pytest.MonkeyPatch, threshold: float, passed: bool) -> None:
    loads: list[int] = []
    clocks = TickClocks(1 / 16)  # each reading advances 1/16 CPU-second: 4 tokens per reading pair -> 64/s
    def generate(session: _Session) -> tuple[str, int]:
        assert session is s
        return "text", 4

    monkeypatch.setattr(qa_gates, "_generate", generate)
    s = _session(options=QaOptions(assert_tps=threshold, clocks=Clocks(cpu=clocks.cpu, wall=clocks.wall)),
                 _loaded=types.SimpleNamespace())
    monkeypatch.setattr(_Session, "loaded", lambda self: loads.append(1) or self._loaded)
    doc = gate_throughput(s).to_dict()
    assert loads, "the model is loaded before the measurement"
    assert s.throughput is not None and s.throughput.rate == 64.0
    assert (doc["name"], doc["passed"], doc["skipped"], doc["value"], doc["threshold"], doc["unit"]) == (
        "throughput", passed, False, 64.0, threshold, UNIT)


# --- format_parity ---------------------------------------------------------------------------


def test_cosine_min_is_the_worst_row() -> None:
    torch = pytest.importorskip("torch")
    ref = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    other = torch.tensor([[2.0, 0.0], [1.0, 1.0], [3.0, 4.0]])  # cosines 1, 1/sqrt(2), 1
    assert _cosine_min(ref, other) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert _cosine_min(ref, -ref) == pytest.approx(-1.0, abs=1e-12)
    assert isinstance(_cosine_min(ref, ref), float)
    batch = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2): cosines along the last axis are 4/5 and 24/25
    assert _cosine_min(batch, torch.tensor([[[2.0, 1.0], [4.0, 3.0]]])) == pytest.approx(0.8, abs=1e-12)


def test_logits_are_the_first_batch_row_in_float32() -> None:
    torch = pytest.importorskip("torch")
    seen: list[Any] = []

    def model(batch: Any) -> Any:
        seen.append((batch.tolist(), torch.is_grad_enabled()))
        return torch.arange(12, dtype=torch.float64).reshape(2, 3, 2)

    out = _logits(types.SimpleNamespace(model=model), [5, 6, 7])
    assert seen == [([[5, 6, 7]], False)]  # one sequence, no gradient
    assert out.dtype == torch.float32 and out.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


@pytest.mark.parametrize(("ids", "max_pos", "expected"), [
    (list(range(100)), 2048, list(range(65))),  # 64 steps + the first token
    (list(range(100)), 10, list(range(10))),  # a short context bounds it
    ([7, 8, 9], 2048, ([7, 8, 9] * 32)[:65]),  # a short encoding repeats to fill the steps
    ([7, 8, 9], 65, ([7, 8, 9] * 32)[:65]),
    ([7, 8, 9], 66, ([7, 8, 9] * 32)[:65]),
    ([7, 8, 9], 64, ([7, 8, 9] * 32)[:64]),
])
def test_teacher_forced_ids_fill_64_steps_within_the_context(ids: list[int], max_pos: int, expected: list[int]) -> None:
    tokenizer = FakeTokenizer(ids)
    loaded = types.SimpleNamespace(tokenizer=tokenizer, config=types.SimpleNamespace(max_position_embeddings=max_pos))
    assert _teacher_forced_ids(_session(_loaded=loaded)) == expected
    assert tokenizer.seen == [("The quick brown fox jumps over the lazy dog. " * 16, False)]


@pytest.fixture()
def parity(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """format_parity with the exports and loads recorded, not done; `cosines` sets what each copy scores."""
    import apr.convert.gguf_export as gguf_export
    import apr.convert.gguf_import as gguf_import
    import apr.convert.hf_export as hf_export
    import apr.convert.hf_import as hf_import
    import apr.run

    state: dict[str, Any] = {"calls": [], "cosines": [1.0, 1.0]}
    calls = state["calls"]
    def export_safetensors(src: str, dst: str) -> None:
        assert Path(dst).parent.name.startswith("apr-qa-parity-")  # in a temporary folder of ours
        calls.append(("st", src, Path(dst).name))

    monkeypatch.setattr(hf_export, "export_safetensors", export_safetensors)
    def tmp_name(p: str) -> str:  # every intermediate file lies in the temporary folder
        assert Path(p).parent.name.startswith("apr-qa-parity-"), p
        return Path(p).name

    def teacher_forced_ids(s: _Session) -> list[int]:
        assert isinstance(s, _Session)
        return list(range(65))

    def logits(loaded: Any, ids: list[int]) -> Any:
        assert ids == list(range(65))  # every copy is scored on the same teacher-forced ids
        return loaded

    monkeypatch.setattr(hf_import, "import_hf", lambda src, dst: calls.append(("hf", tmp_name(src), tmp_name(dst))))
    monkeypatch.setattr(gguf_export, "export_gguf", lambda src, dst, *, quantize, measure_error: calls.append(
        ("gguf", src, tmp_name(dst), quantize, measure_error)))
    monkeypatch.setattr(gguf_import, "import_gguf", lambda src, dst: calls.append(("ig", tmp_name(src), tmp_name(dst))))
    monkeypatch.setattr(apr.run, "load_model", lambda p: calls.append(("load", tmp_name(p))) or Path(p).name)
    monkeypatch.setattr(qa_gates, "_teacher_forced_ids", teacher_forced_ids)
    monkeypatch.setattr(qa_gates, "_logits", logits)
    scores = iter(())

    def cosine(reference: Any, other: Any) -> float:
        calls.append(("cos", reference, other))
        return next(scores)

    def reset(cosines: list[float]) -> None:
        nonlocal scores
        scores = iter(cosines)
        calls.clear()

    state["reset"] = reset
    monkeypatch.setattr(qa_gates, "_cosine_min", cosine)
    return state


def _parity(state: dict[str, Any], st_cos: float, gguf_cos: float) -> dict[str, Any]:
    state["reset"]([st_cos, gguf_cos])
    return gate_format_parity(_session(path="m.apr", _loaded="ref")).to_dict()


def test_format_parity_exports_both_ways_and_compares_with_the_original(parity: dict[str, Any]) -> None:
    from apr.convert.gguf_export import GgufQuant

    doc = _parity(parity, 0.999, 0.99)
    assert parity["calls"] == [
        ("st", "m.apr", "hf"), ("hf", "hf", "from-safetensors.apr"), ("load", "from-safetensors.apr"),
        ("cos", "ref", "from-safetensors.apr"),
        ("gguf", "m.apr", "model-f16.gguf", GgufQuant.F16, False), ("ig", "model-f16.gguf", "from-gguf.apr"),
        ("load", "from-gguf.apr"), ("cos", "ref", "from-gguf.apr"),
    ]
    assert doc == {"name": "format_parity", "passed": True, "skipped": False, "value": 0.99,
                   "threshold": PARITY_MIN_COSINE, "duration_ms": 0.0,
                   "message": "64 teacher-forced steps: safetensors cosine 0.99900, gguf_f16 cosine 0.99000"}


@pytest.mark.parametrize("worse_is_gguf", [False, True])
@pytest.mark.parametrize(("worst", "passed"), [
    (math.nextafter(0.98, 0.0), False), (0.98, True), (math.nextafter(0.98, 1.0), True),  # below, at, above
    (1.0, True), (0.5, False), (float("nan"), False),
])
def test_format_parity_threshold_is_098_on_the_worse_copy(parity: dict[str, Any], worst: float, passed: bool,
                                                          worse_is_gguf: bool) -> None:
    if math.isnan(worst):
        doc = _parity(parity, worst, worst)
    else:
        doc = _parity(parity, 1.0, worst) if worse_is_gguf else _parity(parity, worst, 1.0)
    assert doc["passed"] is passed and doc["threshold"] == 0.98
    assert doc["value"] == worst or (math.isnan(worst) and math.isnan(doc["value"]))


# --- gpu_speedup -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cuda", "message"), [
    (False, "Skipped: no CUDA device on this machine"),
    (True, "Skipped: GPU timing is measured by bench/train_throughput.py, not by apr qa yet"),
])
def test_gpu_speedup_is_always_a_skip_with_its_reason(monkeypatch: pytest.MonkeyPatch, cuda: bool, message: str) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert gate_gpu_speedup(_session()).to_dict() == {
        "name": "gpu_speedup", "passed": False, "skipped": True, "message": message, "value": None,
        "threshold": None, "duration_ms": 0.0}


def test_gpu_speedup_without_torch_is_the_no_cuda_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert gate_gpu_speedup(_session()).message == "Skipped: no CUDA device on this machine"


# --- performance_regression ------------------------------------------------------------------

MEASURED = ThroughputSample(tokens=75, cpu_seconds=1.0, wall_seconds=9.0)  # 75 tokens per CPU-second


def _regression(previous: Any, sample: ThroughputSample | None = MEASURED, ratio: float = 0.25) -> dict[str, Any]:
    s = _session(options=QaOptions(previous_report=previous, regression_threshold=ratio), throughput=sample)
    return gate_performance_regression(s).to_dict()


def _prev(value: Any, unit: Any = UNIT, **extra: Any) -> dict[str, Any]:
    gate = {"name": "throughput", "value": value, **extra}
    if unit is not None:
        gate["unit"] = unit
    return {"gates": [gate]}


NO_VALUE = "Skipped: no throughput value to compare"


@pytest.mark.parametrize(("previous", "sample", "message"), [
    (None, MEASURED, "Skipped: no previous report (pass --previous-report FILE)"),
    ([1, 2], MEASURED, NO_VALUE),  # not a JSON object
    ({"gates": "throughput"}, MEASURED, NO_VALUE),
    ({}, MEASURED, NO_VALUE),
    ({"gates": [{"name": "golden_output", "value": 1.0, "unit": UNIT}]}, MEASURED, NO_VALUE),
    ({"gates": [{"name": "throughput", "unit": UNIT}]}, MEASURED, NO_VALUE),
    (_prev(True), MEASURED, NO_VALUE),  # a boolean is not a rate
    (_prev("100"), MEASURED, NO_VALUE),
    (_prev(float("nan")), MEASURED, NO_VALUE),
    (_prev(float("inf")), MEASURED, NO_VALUE),
    (_prev(100.0), None, NO_VALUE),  # this run did not measure throughput (gate skipped)
    (_prev(100.0), ThroughputSample(tokens=5, cpu_seconds=0.0, wall_seconds=1.0), NO_VALUE),  # clock did not move
    (_prev(100.0, unit=None), MEASURED,
     "Skipped: the previous report's throughput is a wall-clock rate (it has no unit), not in "
     "'tokens/cpu-second' as this one; run `apr qa --json` on the previous checkpoint again for a report to "
     "compare with"),
    (_prev(100.0, unit="tokens/second"), MEASURED,
     "Skipped: the previous report's throughput is in 'tokens/second', not in 'tokens/cpu-second' as this one; "
     "run `apr qa --json` on the previous checkpoint again for a report to compare with"),
])
def test_performance_regression_skips_when_there_is_nothing_comparable(previous: Any, sample: Any, message: str) -> None:
    assert _regression(previous, sample) == {"name": "performance_regression", "passed": False, "skipped": True,
                                             "message": message, "value": None, "threshold": None, "duration_ms": 0.0}


@pytest.mark.parametrize(("cpu_seconds", "passed"), [
    (math.nextafter(1.0, 2.0), False),  # just under the floor of 75
    (1.0, True),  # at the floor
    (math.nextafter(1.0, 0.0), True),  # just over it
])
def test_performance_regression_floor_is_a_quarter_below_the_previous_rate(cpu_seconds: float, passed: bool) -> None:
    sample = ThroughputSample(tokens=75, cpu_seconds=cpu_seconds, wall_seconds=1.0)
    doc = _regression(_prev(100), sample)  # an int rate from the previous report is a rate too
    rate = 75 / cpu_seconds
    assert doc == {"name": "performance_regression", "passed": passed, "skipped": False,
                   "message": f"throughput {rate:.1f} vs previous 100.0 {UNIT} (floor 75.0)",
                   "value": rate, "threshold": 75.0, "duration_ms": 0.0, "unit": UNIT}


def test_performance_regression_reads_the_first_throughput_gate_and_its_own_ratio() -> None:
    previous = {"gates": ["not a gate", {"name": "golden_output", "value": 1e9, "unit": UNIT},
                          {"name": "throughput", "value": 150.0, "unit": UNIT},
                          {"name": "throughput", "value": 1.0, "unit": UNIT}]}
    doc = _regression(previous, ratio=0.5)
    assert (doc["passed"], doc["skipped"], doc["threshold"], doc["value"]) == (True, False, 75.0, 75.0)
    assert _regression(previous, ratio=0.4)["passed"] is False  # floor 90 > 75


# --- the registry ----------------------------------------------------------------------------


def test_gates_run_in_the_documented_order() -> None:
    assert GATES == (
        ("capability_match", gate_capability_match),
        ("tensor_contract", gate_tensor_contract),
        ("metadata_plausibility", gate_metadata_plausibility),
        ("golden_output", gate_golden_output),
        ("throughput", gate_throughput),
        ("format_parity", gate_format_parity),
        ("gpu_speedup", gate_gpu_speedup),
        ("performance_regression", gate_performance_regression),
    )
