"""`apr readiness`: the seven publish gates of aprender's readiness script (§8), as one verdict.

Each gate names the command that removes its blocker. aprender's script read a ``verdict`` key
its `apr qa` never wrote, so its qa gate could never pass; here the qa gate reads the verdict
of `apr.qa.run_qa` itself.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from apr.errors import AprError, AprFileNotFoundError
from apr.qa.gate import GateResult, failed_gates, verdict_word


@dataclass
class ReadinessReport:
    model: str
    sha256: str
    gates: list[GateResult] = field(default_factory=list)

    @property
    def failed(self) -> list[GateResult]:
        return failed_gates(self.gates)

    @property
    def verdict(self) -> str:
        return verdict_word(not self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.model,
            "sha256": self.sha256,
            "verdict": self.verdict,
            "passed": not self.failed,
            "gates": [g.to_dict() for g in self.gates],
            "blockers": [g.name for g in self.failed],
        }


@dataclass(frozen=True)
class ReadinessOptions:
    model_card: str | None
    require_token: bool = False
    qa_skip: frozenset[str] = frozenset()


def _gate_validate(path: str, _o: ReadinessOptions, _m: dict[str, Any]) -> GateResult:
    from apr.format.validate import Status, validate_file

    report = validate_file(path)
    if report.passed:
        return GateResult("validate", True, False, "apr validate: VALID")
    failed = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in report.failed if c.status is Status.FAIL)
    return GateResult("validate", False, False, f"apr validate: INVALID — {failed}", fix=f"apr validate {path}")


def _gate_quality(path: str, _o: ReadinessOptions, meta: dict[str, Any]) -> GateResult:
    from apr.format import open_file
    from apr.identity.explain import explain_quality
    from apr.identity.quality import score_quality

    with open_file(path, verify_checksum=False) as reader:
        score = score_quality(checksum_valid=reader.is_checksum_valid, metadata=reader.metadata, flags=reader.flags)
        advice = explain_quality(score, path=path, tensor_names=reader.keys())
    b = score.breakdown
    problems = []
    if not score.ship_ready:
        problems.append(f"score {score.score} < 90")
    if b["hf_identity"] < 20:
        problems.append(f"hf_identity {b['hf_identity']}/20")
    if b["provenance"] < 25:
        problems.append(f"provenance {b['provenance']}/25")
    if not problems:
        return GateResult("quality", True, False, f"score {score.score}/100, hf_identity 20/20, provenance 25/25",
                          value=score.score, threshold=90)
    fixes = " && ".join(a.command for a in advice if a.command)
    return GateResult("quality", False, False, "; ".join(problems) + " — missing: " + ", ".join(a.what for a in advice),
                      value=score.score, threshold=90, fix=fixes or None)


def _gate_qa(path: str, options: ReadinessOptions, _m: dict[str, Any]) -> GateResult:
    from apr.qa import QaOptions, run_qa

    report = run_qa(path, QaOptions(skip=options.qa_skip))
    if report.passed:
        return GateResult("qa", True, False, f"apr qa verdict GO: {report.summary}")
    fixes = [g.fix for g in report.failed if g.fix]
    return GateResult("qa", False, False, f"apr qa verdict {report.verdict}: " + "; ".join(
        f"{g.name}: {g.message}" for g in report.failed), fix=" ; ".join(fixes) or f"apr qa {path}")


def _gate_model_card(path: str, options: ReadinessOptions, meta: dict[str, Any]) -> GateResult:
    from apr.readiness.card import card_problems, read_card

    fix = f"apr card {path} -o {options.model_card or 'MODEL_CARD.md'} --force"
    if not options.model_card:
        return GateResult("model_card", False, False, "no model card given (--model-card CARD.md)", fix=fix)
    try:
        facts = read_card(options.model_card)
    except AprError as err:
        return GateResult("model_card", False, False, err.message, fix=fix)
    problems = card_problems(facts, meta.get("license"))
    if problems:
        return GateResult("model_card", False, False, "; ".join(problems), fix=fix)
    return GateResult("model_card", True, False, f"license {facts.license}, library {facts.library_name}, "
                      f"{len(facts.metrics)} metric(s)")


def _gate_hf_token(_p: str, options: ReadinessOptions, _m: dict[str, Any]) -> GateResult:
    if not options.require_token:
        return GateResult.skip("hf_token", "not required (pass --require-token to check HF_TOKEN)")
    token = os.environ.get("HF_TOKEN", "")
    if token:
        return GateResult("hf_token", True, False, f"HF_TOKEN set (length={len(token)})")
    return GateResult("hf_token", False, False, "HF_TOKEN is not set", fix="export HF_TOKEN=<your token>")


def _gate_smoke_run(path: str, _o: ReadinessOptions, _m: dict[str, Any]) -> GateResult:
    from apr.run import generate_text, load_model
    from apr.run.generate import SamplingConfig

    try:
        loaded = load_model(path)
        text = "".join(generate_text(loaded, "The", SamplingConfig(max_tokens=16)))
    except AprError as err:
        return GateResult("smoke_run", False, False, err.message, fix=err.hint)
    if not any(ch.isalpha() for ch in text):
        return GateResult("smoke_run", False, False, f"apr run produced no text: {text!r}")
    return GateResult("smoke_run", True, False, f"apr run: {text[:60]!r}")


def _gate_export(path: str, _o: ReadinessOptions, _m: dict[str, Any]) -> GateResult:
    from apr.convert.gguf_export import GgufQuant, export_gguf
    from apr.convert.hf_export import export_safetensors

    with tempfile.TemporaryDirectory(prefix="apr-readiness-") as tmp:
        try:
            export_gguf(path, os.path.join(tmp, "model-q4_k.gguf"), quantize=GgufQuant.Q4_K, measure_error=False)
            export_safetensors(path, os.path.join(tmp, "hf"))
        except AprError as err:
            return GateResult("export", False, False, f"export failed: {err.message}", fix=err.hint)
    return GateResult("export", True, False, "GGUF q4_k and safetensors exports succeeded")


GATES: tuple[tuple[str, Callable[[str, ReadinessOptions, dict[str, Any]], GateResult]], ...] = (
    ("validate", _gate_validate),
    ("quality", _gate_quality),
    ("qa", _gate_qa),
    ("model_card", _gate_model_card),
    ("hf_token", _gate_hf_token),
    ("smoke_run", _gate_smoke_run),
    ("export", _gate_export),
)


def run_readiness(
    path: str | os.PathLike[str], options: ReadinessOptions, *, on_gate: Callable[[GateResult], None] | None = None
) -> ReadinessReport:
    """All seven gates on ``path``; a gate that errors becomes a failed gate with the reason."""
    from apr.format import open_file
    from apr.qa import file_sha256

    target = os.fspath(path)
    if not os.path.isfile(target):
        raise AprFileNotFoundError("file not found" if not os.path.exists(target) else "not a file", path=target)
    report = ReadinessReport(model=target, sha256=file_sha256(target))
    try:
        with open_file(target, verify_checksum=False) as reader:
            meta = dict(reader.metadata)
    except AprError as err:
        report.gates.append(GateResult("validate", False, False, f"cannot open: {err.message}", fix=err.hint))
        return report
    for name, gate in GATES:
        start = time.perf_counter()
        try:
            result = gate(target, options, meta)
        except AprError as err:
            result = GateResult(name, False, False, err.message, fix=err.hint)
        result = replace(result, duration_ms=(time.perf_counter() - start) * 1000)
        report.gates.append(result)
        if on_gate:
            on_gate(result)
    return report
