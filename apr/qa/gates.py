"""The `apr qa` gates, one function each: checkpoint in, `GateResult` out.

Gates that need the model (golden_output, throughput, format_parity) share one `_Session`, which
loads it once. Every gate catches the project's own errors and turns them into a failed gate with
the reason, so one broken stage never hides the others (aprender's "gate runner errors become
FAILED gates").
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from apr.errors import AprError
from apr.qa.gate import GateResult
from apr.qa.throughput import UNIT, Clocks, ThroughputSample, measure_throughput, throughput_result

SUPPORTED_FAMILIES = ("llama", "qwen2", "qwen3")
BAD_OUTPUT_MARKERS = ("\ufffd", "[UNK]", "\x00")
PARITY_STEPS = 64
PARITY_MIN_COSINE = 0.98


@dataclass
class QaOptions:
    prompt: str = "The"
    max_tokens: int = 16
    assert_tps: float = 10.0  # tokens per CPU-second of one thread (apr.qa.throughput): load-independent
    regression_threshold: float = 0.25
    previous_report: dict[str, Any] | None = None
    skip: frozenset[str] = frozenset()
    device: str = "cpu"
    clocks: Clocks = field(default_factory=Clocks)  # where the throughput gate reads time (tests: fake clocks)


@dataclass
class _Session:
    """What the gates learn about one file, computed once."""

    path: str
    options: QaOptions
    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_names: list[str] = field(default_factory=list)
    _loaded: Any = None
    _load_error: AprError | None = None
    throughput: ThroughputSample | None = None  # the throughput gate's measurement, for performance_regression

    def loaded(self) -> Any:
        if self._loaded is None and self._load_error is None:
            from apr.run import load_model

            try:
                self._loaded = load_model(self.path, device=self.options.device)
            except AprError as err:
                self._load_error = err
        if self._load_error is not None:
            raise self._load_error
        return self._loaded


def _timed(name: str, fn: Callable[[_Session], GateResult], session: _Session) -> GateResult:
    start = time.perf_counter()
    try:
        result = fn(session)
    except AprError as err:
        result = GateResult(name, False, False, f"{err.message}", fix=err.hint)
    return replace(result, duration_ms=(time.perf_counter() - start) * 1000)


def gate_tensor_contract(s: _Session) -> GateResult:
    from apr.format.validate import Status, validate_file

    report = validate_file(s.path)
    if report.passed:
        return GateResult("tensor_contract", True, False, f"{len(report.checks)} checks passed on {len(report.tensors)} tensors")
    failed = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in report.failed if c.status is Status.FAIL)
    return GateResult(
        "tensor_contract", False, False, f"{len(report.failed)} contract violations: {failed}",
        fix=f"apr validate {s.path}  (then re-export or retrain the affected tensors)",
    )


def gate_metadata_plausibility(s: _Session) -> GateResult:
    from apr.qa.plausibility import plausibility_violations

    problems = plausibility_violations(s.metadata)
    if problems:
        return GateResult(
            "metadata_plausibility", False, False, "; ".join(problems),
            fix=f"re-import the model with its config.json (apr import HF_DIR -o {s.path}) so rope_theta and friends are real",
        )
    m = s.metadata
    return GateResult(
        "metadata_plausibility", True, False,
        f"3 metadata checks passed (arch={m.get('architecture')}, rope_theta={m.get('rope_theta')}, "
        f"max_pos={m.get('max_position_embeddings')})",
    )


def gate_capability_match(s: _Session) -> GateResult:
    from apr.arch import REGISTRY, architecture_from_metadata  # the registry decides, never a similar family
    from apr.identity import family_from_tensor_names, salvage_command
    from apr.identity.family import normalize_metadata_arch_family

    resolution = architecture_from_metadata(s.metadata, s.tensor_names)
    if resolution.refusal is not None and resolution.architecture not in REGISTRY:  # not implemented at all
        return GateResult("capability_match", False, False, resolution.refusal.message, fix=resolution.refusal.hint)
    if resolution.ok:  # claims name one entry and the tensors fit its schema exactly
        return GateResult("capability_match", True, False, f"{resolution.architecture} is supported by apr run")
    tensor_family = family_from_tensor_names(s.tensor_names)
    claim = s.metadata.get("architecture")
    claimed_family = normalize_metadata_arch_family(claim if isinstance(claim, str) else None)
    if claimed_family and tensor_family != "unknown" and claimed_family != tensor_family:
        return GateResult(
            "capability_match", False, False,
            f"architecture claim {claim!r} ({claimed_family}) contradicts the tensors ({tensor_family}) — INV-INIT-ARCH-MATCH-001",
            fix=salvage_command(tensor_family, s.path, s.path).replace(f" -o {s.path}", " --in-place"),
        )
    assert resolution.refusal is not None
    return GateResult("capability_match", False, False, resolution.refusal.message, fix=resolution.refusal.hint)


def _generate(s: _Session) -> tuple[str, int]:
    """Greedy text from the prompt and its length in tokens."""
    from apr.run import generate_text
    from apr.run.generate import SamplingConfig

    loaded = s.loaded()
    sampling = SamplingConfig(max_tokens=s.options.max_tokens, temperature=0.0)
    text = "".join(generate_text(loaded, s.options.prompt, sampling))
    tokens = len(loaded.tokenizer.encode(text, add_special_tokens=False).ids) if text else 0
    return text, tokens


def gate_golden_output(s: _Session) -> GateResult:
    first, _ = _generate(s)
    second, _ = _generate(s)
    if not first.strip():
        return GateResult("golden_output", False, False, f"greedy generation from {s.options.prompt!r} is empty")
    bad = [repr(m) for m in BAD_OUTPUT_MARKERS if m in first]
    if bad:
        return GateResult("golden_output", False, False, f"output contains {', '.join(bad)}: {first[:80]!r}")
    if first != second:
        return GateResult("golden_output", False, False, f"greedy decoding is not deterministic: {first[:40]!r} vs {second[:40]!r}")
    return GateResult("golden_output", True, False, f"deterministic greedy output: {first[:60]!r}")


def gate_throughput(s: _Session) -> GateResult:
    """Tokens per CPU-second of the generating thread, on one intra-op thread: the same idle and
    under load (apr.qa.throughput). The wall-clock rate is shown, never decided on."""
    s.loaded()  # load outside the measurement
    s.throughput = measure_throughput(lambda: _generate(s)[1], clocks=s.options.clocks)
    return throughput_result(s.throughput, s.options.assert_tps)


def _cosine_min(reference: Any, other: Any) -> float:
    import torch

    ref, oth = reference.double(), other.double()
    cos = torch.nn.functional.cosine_similarity(ref, oth, dim=-1)
    return float(cos.min())


def _teacher_forced_ids(s: _Session) -> list[int]:
    loaded = s.loaded()
    text = "The quick brown fox jumps over the lazy dog. " * 16
    ids = loaded.tokenizer.encode(text, add_special_tokens=False).ids
    limit = min(PARITY_STEPS + 1, loaded.config.max_position_embeddings)
    while len(ids) < limit:
        ids = ids + ids
    return ids[:limit]


def _logits(loaded: Any, ids: list[int]) -> Any:
    import torch

    with torch.no_grad():
        return loaded.model(torch.tensor([ids]))[0].float()


def gate_format_parity(s: _Session) -> GateResult:
    from apr.convert.gguf_export import GgufQuant, export_gguf
    from apr.convert.gguf_import import import_gguf
    from apr.convert.hf_export import export_safetensors
    from apr.convert.hf_import import import_hf
    from apr.run import load_model

    ids = _teacher_forced_ids(s)
    reference = _logits(s.loaded(), ids)
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="apr-qa-parity-") as tmp:
        hf_dir = os.path.join(tmp, "hf")
        export_safetensors(s.path, hf_dir)
        import_hf(hf_dir, os.path.join(tmp, "from-safetensors.apr"))
        scores["safetensors"] = _cosine_min(reference, _logits(load_model(os.path.join(tmp, "from-safetensors.apr")), ids))
        gguf = os.path.join(tmp, "model-f16.gguf")
        export_gguf(s.path, gguf, quantize=GgufQuant.F16, measure_error=False)
        import_gguf(gguf, os.path.join(tmp, "from-gguf.apr"))
        scores["gguf_f16"] = _cosine_min(reference, _logits(load_model(os.path.join(tmp, "from-gguf.apr")), ids))
    worst = min(scores.values())
    detail = ", ".join(f"{k} cosine {v:.5f}" for k, v in scores.items())
    ok = worst >= PARITY_MIN_COSINE and not math.isnan(worst)
    return GateResult(
        "format_parity", ok, False, f"{len(ids) - 1} teacher-forced steps: {detail}", value=worst, threshold=PARITY_MIN_COSINE
    )


def gate_gpu_speedup(s: _Session) -> GateResult:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if not has_cuda:
        return GateResult.skip("gpu_speedup", "no CUDA device on this machine")
    return GateResult.skip("gpu_speedup", "GPU timing is measured by bench/train_throughput.py, not by apr qa yet")


def gate_performance_regression(s: _Session) -> GateResult:
    """Throughput against a previous report's, in the same unit (a wall-clock rate is not comparable)."""
    previous = s.options.previous_report
    if previous is None:
        return GateResult.skip("performance_regression", "no previous report (pass --previous-report FILE)")
    gates = previous.get("gates") if isinstance(previous, dict) else None
    gate = next((g for g in gates if isinstance(g, dict) and g.get("name") == "throughput"), None) \
        if isinstance(gates, list) else None
    before = gate.get("value") if gate is not None else None
    if gate is None or not isinstance(before, (int, float)) or isinstance(before, bool) or not math.isfinite(before) \
            or s.throughput is None or not s.throughput.is_measured:
        return GateResult.skip("performance_regression", "no throughput value to compare")
    if gate.get("unit") != UNIT:
        what = "a wall-clock rate (it has no unit)" if gate.get("unit") is None else f"in {gate.get('unit')!r}"
        return GateResult.skip(
            "performance_regression",
            f"the previous report's throughput is {what}, not in {UNIT!r} as this one; run "
            "`apr qa --json` on the previous checkpoint again for a report to compare with",
        )
    floor = float(before) * (1 - s.options.regression_threshold)
    rate = s.throughput.rate
    ok = rate >= floor
    return GateResult(
        "performance_regression", ok, False,
        f"throughput {rate:.1f} vs previous {float(before):.1f} {UNIT} (floor {floor:.1f})",
        value=rate, threshold=floor, unit=UNIT,
    )


# The registry, in run order (performance_regression after throughput, which measures it).
GATES: tuple[tuple[str, Callable[[_Session], GateResult]], ...] = (
    ("capability_match", gate_capability_match),
    ("tensor_contract", gate_tensor_contract),
    ("metadata_plausibility", gate_metadata_plausibility),
    ("golden_output", gate_golden_output),
    ("throughput", gate_throughput),
    ("format_parity", gate_format_parity),
    ("gpu_speedup", gate_gpu_speedup),
    ("performance_regression", gate_performance_regression),
)
