"""`apr readiness`'s seven gates, rule by rule, and its JSON document key by key (issue 23).

Each gate is called on its own with the smallest input that decides it; what a gate delegates
(the quality score, `apr qa`, `apr run`, the exports) is replaced by a recorder that returns a
chosen answer, so the boundaries (score 90, hf_identity 20/20, provenance 25/25) are tested just
below, at and just above, and the paths that are hard to reach with a real file (a gate that
raises, an unreadable model card, `--require-token` with and without HF_TOKEN) run in milliseconds.
The full pipeline on a real checkpoint is tests/test_publish_readiness_v1.py.
"""

from __future__ import annotations

import hashlib
import os
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import apr.readiness.gates as rg
from apr.errors import AprError, AprFileNotFoundError, ConvertError, MissingTokenizerError
from apr.qa.gate import GateResult, QaReport
from apr.readiness import ReadinessOptions, ReadinessReport, run_readiness
from apr.readiness.card import CardFacts
from tests.readiness.builders import build_checkpoint
from tests.stamp_builders import write_checkpoint

GATE_KEYS = ["name", "passed", "skipped", "message", "value", "threshold", "duration_ms"]
NO_CARD = ReadinessOptions(model_card=None)


def _doc(name: str, passed: bool, message: str, **extra: Any) -> dict[str, Any]:
    """The expected `to_dict()` of a gate that ran (no fake clock: duration 0)."""
    return {"name": name, "passed": passed, "skipped": False, "message": message, "value": None, "threshold": None,
            "duration_ms": 0.0, **extra}


class FakeCounter:
    def __init__(self, step: float) -> None:
        self.now, self.step = 10.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# --- the report ------------------------------------------------------------------------------

OK = GateResult("validate", True, False, "fine")
BAD = GateResult("quality", False, False, "low", fix="apr stamp")
SKIP = GateResult.skip("hf_token", "not required")
BAD2 = GateResult("export", False, False, "broke")


@pytest.mark.parametrize(("gates", "verdict", "blockers"), [
    ([], "GO", []),
    ([OK], "GO", []),
    ([SKIP], "GO", []),  # a skipped gate is no blocker
    ([OK, SKIP], "GO", []),
    ([BAD], "NO-GO", ["quality"]),
    ([OK, BAD, SKIP], "NO-GO", ["quality"]),
    ([BAD2, OK, BAD], "NO-GO", ["export", "quality"]),  # in run order
])
def test_readiness_verdict_and_json_document(gates: list[GateResult], verdict: str, blockers: list[str]) -> None:
    report = ReadinessReport(model="m.apr", sha256="cd" * 32, gates=list(gates))
    assert report.verdict == verdict and [g.name for g in report.failed] == blockers
    doc = report.to_dict()
    assert list(doc) == ["input", "sha256", "verdict", "passed", "gates", "blockers"]
    assert doc == {"input": "m.apr", "sha256": "cd" * 32, "verdict": verdict, "passed": verdict == "GO",
                   "gates": [g.to_dict() for g in gates], "blockers": blockers}


# --- run_readiness ---------------------------------------------------------------------------


def test_run_readiness_refuses_a_missing_path_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as missing:
        run_readiness(tmp_path / "nope.apr", NO_CARD)
    assert missing.value.message == "file not found" and missing.value.path == str(tmp_path / "nope.apr")
    with pytest.raises(AprFileNotFoundError) as folder:
        run_readiness(tmp_path, NO_CARD)
    assert folder.value.message == "not a file" and folder.value.path == str(tmp_path)


def test_a_file_that_cannot_be_opened_is_one_failed_validate_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.format import open_file

    junk = tmp_path / "junk.apr"
    junk.write_bytes(b"not an apr file at all" * 4)
    with pytest.raises(AprError) as why:  # the oracle: what opening it says
        with open_file(str(junk), verify_checksum=False):
            pass
    monkeypatch.setattr(rg, "GATES", (("never", lambda *a: pytest.fail("no gate runs on an unopenable file")),))
    seen: list[GateResult] = []
    report = run_readiness(junk, NO_CARD, on_gate=seen.append)
    assert report.sha256 == hashlib.sha256(junk.read_bytes()).hexdigest() and report.model == str(junk)
    fix = {"fix": why.value.hint} if why.value.hint else {}
    assert report.to_dict()["gates"] == [_doc("validate", False, f"cannot open: {why.value.message}", **fix)]
    assert report.verdict == "NO-GO" and seen == []


def test_every_gate_runs_in_order_with_the_file_metadata_and_a_raising_gate_fails_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_checkpoint(tmp_path / "m.apr", metadata={"architecture": "qwen2", "license": "MIT"})
    meta, _ = _file_metadata(path)
    options = ReadinessOptions(model_card="CARD.md", require_token=True, qa_skip=frozenset({"golden_output"}))
    calls: list[tuple[str, str, ReadinessOptions, dict[str, Any]]] = []

    def passing(name: str):
        def gate(p: str, o: ReadinessOptions, m: dict[str, Any]) -> GateResult:
            calls.append((name, p, o, m))
            return GateResult(name, True, False, "ok")
        return gate

    def raising(p: str, o: ReadinessOptions, m: dict[str, Any]) -> GateResult:
        calls.append(("middle", p, o, m))
        raise ConvertError("cannot convert", hint="apr import again")

    monkeypatch.setattr(rg, "GATES", (("first", passing("first")), ("middle", raising), ("last", passing("last"))))
    monkeypatch.setattr(rg, "time", types.SimpleNamespace(perf_counter=FakeCounter(0.5)))
    seen: list[str] = []
    report = run_readiness(Path(path), options, on_gate=lambda g: seen.append(g.name))
    assert [c[0] for c in calls] == ["first", "middle", "last"] and seen == ["first", "middle", "last"]
    assert all(c[1] == path and c[2] is options and c[3] == meta for c in calls)  # a str path, the file's metadata
    assert report.to_dict()["gates"] == [
        {**_doc("first", True, "ok"), "duration_ms": 500.0},
        {**_doc("middle", False, "cannot convert", fix="apr import again"), "duration_ms": 500.0},
        {**_doc("last", True, "ok"), "duration_ms": 500.0},
    ]
    assert report.to_dict()["blockers"] == ["middle"] and report.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert run_readiness(path, options).verdict == "NO-GO"  # without on_gate, too

    def bug(p: str, o: ReadinessOptions, m: dict[str, Any]) -> GateResult:
        raise KeyError("a bug")

    monkeypatch.setattr(rg, "GATES", (("bug", bug),))
    with pytest.raises(KeyError):  # only the project's errors become failed gates
        run_readiness(path, options)


def test_gates_run_on_a_file_whose_header_checksum_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened without verifying the header checksum: the validate and quality gates report it, with
    their fixes, instead of one "cannot open" gate hiding the other six."""
    path = write_checkpoint(tmp_path / "m.apr", metadata={"architecture": "qwen2"})
    data = bytearray(Path(path).read_bytes())
    data[40] ^= 0xFF  # the stored header checksum
    Path(path).write_bytes(bytes(data))
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(rg, "GATES", (("probe", lambda p, o, m: seen.append(m) or GateResult("probe", True, False, "")),))
    report = run_readiness(path, NO_CARD)
    assert [g.name for g in report.gates] == ["probe"] and seen[0]["architecture"] == "qwen2"


def test_the_seven_gates_in_their_order() -> None:
    assert rg.GATES == (
        ("validate", rg._gate_validate), ("quality", rg._gate_quality), ("qa", rg._gate_qa),
        ("model_card", rg._gate_model_card), ("hf_token", rg._gate_hf_token), ("smoke_run", rg._gate_smoke_run),
        ("export", rg._gate_export),
    )


# --- validate --------------------------------------------------------------------------------


def test_validate_gate_passes_a_valid_file_and_lists_failed_checks(tmp_path: Path) -> None:
    from apr.format.validate import Status, validate_file

    good = write_checkpoint(tmp_path / "good.apr")
    assert rg._gate_validate(good, NO_CARD, {}).to_dict() == _doc("validate", True, "apr validate: VALID")
    nan = np.array([[1.0, np.nan]], dtype=np.float32)
    bad = write_checkpoint(tmp_path / "bad.apr", tensors={"model.layers.0.self_attn.q_proj.weight": nan})
    failed = [c for c in validate_file(bad).failed if c.status is Status.FAIL]
    assert failed
    detail = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in failed)
    assert rg._gate_validate(bad, NO_CARD, {}).to_dict() == _doc(
        "validate", False, f"apr validate: INVALID — {detail}", fix=f"apr validate {bad}")


def test_validate_gate_lists_every_failed_check_and_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.format.validate as validate

    def check(id: str, status: Any) -> Any:
        return types.SimpleNamespace(id=id, name=f"rule {id}", detail=f"detail {id}", status=status)

    failed = [check("F-1", validate.Status.FAIL), check("W-2", validate.Status.WARN), check("F-3", validate.Status.FAIL)]
    monkeypatch.setattr(validate, "validate_file", lambda p: types.SimpleNamespace(passed=False, failed=failed))
    assert rg._gate_validate("m.apr", NO_CARD, {}).to_dict() == _doc(
        "validate", False, "apr validate: INVALID — [F-1] rule F-1: detail F-1; [F-3] rule F-3: detail F-3",
        fix="apr validate m.apr")


# --- quality ---------------------------------------------------------------------------------


def _quality(monkeypatch: pytest.MonkeyPatch, path: str, breakdown: dict[str, int], advice: list[Any]) -> dict[str, Any]:
    import apr.identity.explain as explain
    import apr.identity.quality as quality

    seen: dict[str, Any] = {}

    def score(*, checksum_valid: bool, metadata: Any, flags: int) -> Any:
        seen["score"] = (checksum_valid, dict(metadata), flags)
        return quality.QualityScore(breakdown=dict(breakdown), missing=())

    def explain_quality(s: Any, *, path: str, tensor_names: Any) -> list[Any]:
        seen["explain"] = (path, list(tensor_names))
        return advice

    monkeypatch.setattr(quality, "score_quality", score)
    monkeypatch.setattr(explain, "explain_quality", explain_quality)
    doc = rg._gate_quality(path, NO_CARD, {}).to_dict()
    doc["_seen"] = seen
    return doc


def _file_metadata(path: str) -> tuple[dict[str, Any], int]:
    """The oracle: the metadata and flags as the reader sees them (the writer adds its own keys)."""
    from apr.format import open_file

    with open_file(path, verify_checksum=False) as reader:
        return dict(reader.metadata), int(reader.flags)


def _breakdown(total: int, hf: int = 20, prov: int = 25) -> dict[str, int]:
    return {"hf_identity": hf, "provenance": prov, "physics": total - hf - prov}


@pytest.mark.parametrize(("breakdown", "problems"), [
    (_breakdown(89), ["score 89 < 90"]),
    (_breakdown(90), []),
    (_breakdown(91), []),
    (_breakdown(95, hf=19), ["hf_identity 19/20"]),
    (_breakdown(95, hf=21), []),
    (_breakdown(95, prov=24), ["provenance 24/25"]),
    (_breakdown(95, prov=26), []),
    (_breakdown(60, hf=0, prov=0), ["score 60 < 90", "hf_identity 0/20", "provenance 0/25"]),
])
def test_quality_gate_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakdown: dict[str, int],
                                 problems: list[str]) -> None:
    from apr.identity.explain import Advice

    path = write_checkpoint(tmp_path / "m.apr", metadata={"architecture": "qwen2", "license": "MIT"})
    meta, flags = _file_metadata(path)
    advice = [Advice("provenance", 5, "license", "apr stamp m.apr --license MIT"),
              Advice("physics", 5, "weights", None),
              Advice("hf_identity", 5, "hf class", "apr stamp m.apr --hf-architecture X")]
    doc = _quality(monkeypatch, path, breakdown, advice)
    seen = doc.pop("_seen")
    total = sum(breakdown.values())
    assert seen["score"][1:] == (meta, flags) and seen["explain"][0] == path
    assert sorted(seen["explain"][1]) == sorted(["model.layers.0.self_attn.q_proj.bias",
                                                 "model.layers.0.self_attn.q_proj.weight"])
    assert isinstance(seen["score"][0], bool)
    if not problems:
        assert doc == {**_doc("quality", True, f"score {total}/100, hf_identity 20/20, provenance 25/25"),
                       "value": total, "threshold": 90}
    else:
        assert doc == {**_doc("quality", False, "; ".join(problems) + " — missing: license, weights, hf class"),
                       "value": total, "threshold": 90,
                       "fix": "apr stamp m.apr --license MIT && apr stamp m.apr --hf-architecture X"}


def test_quality_gate_without_a_stamp_command_has_no_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.identity.explain import Advice

    path = write_checkpoint(tmp_path / "m.apr")
    doc = _quality(monkeypatch, path, _breakdown(50), [Advice("physics", 40, "finite weights", None)])
    doc.pop("_seen")
    assert doc == {**_doc("quality", False, "score 50 < 90 — missing: finite weights"), "value": 50, "threshold": 90}


def test_quality_gate_reads_the_checksum_validity_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_checkpoint(tmp_path / "m.apr")
    assert _quality(monkeypatch, path, _breakdown(95), [])["_seen"]["score"][0] is True
    data = bytearray(Path(path).read_bytes())
    data[40] ^= 0xFF  # the stored header checksum: no longer the header's CRC
    Path(path).write_bytes(bytes(data))
    assert _quality(monkeypatch, path, _breakdown(95), [])["_seen"]["score"][0] is False


# --- qa --------------------------------------------------------------------------------------


def _qa(monkeypatch: pytest.MonkeyPatch, gates: list[GateResult], options: ReadinessOptions) -> tuple[dict[str, Any], list[Any]]:
    import apr.qa

    calls: list[Any] = []

    def run_qa(path: str, qa_options: Any) -> QaReport:
        calls.append((path, qa_options))
        return QaReport(model=path, sha256="0" * 64, gates=list(gates))

    monkeypatch.setattr(apr.qa, "run_qa", run_qa)
    return rg._gate_qa("m.apr", options, {}).to_dict(), calls


def test_qa_gate_reads_the_qa_verdict_and_passes_the_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    skip = frozenset({"format_parity", "throughput"})
    doc, calls = _qa(monkeypatch, [GateResult("throughput", True, False, "fast"), GateResult.skip("gpu_speedup", "no")],
                     ReadinessOptions(model_card=None, qa_skip=skip))
    assert doc == _doc("qa", True, "apr qa verdict GO: All QA gates passed (1 executed, 1 skipped)")
    assert [c[0] for c in calls] == ["m.apr"] and calls[0][1].skip == skip


def test_qa_gate_names_each_failed_qa_gate_and_joins_their_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    gates = [GateResult("capability_match", False, False, "claim contradicts", fix="apr stamp A"),
             GateResult("golden_output", False, False, "empty"),
             GateResult("tensor_contract", True, False, "ok"),
             GateResult("metadata_plausibility", False, False, "rope", fix="apr import B")]
    doc, _ = _qa(monkeypatch, gates, NO_CARD)
    assert doc == _doc("qa", False, "apr qa verdict NO-GO: capability_match: claim contradicts; golden_output: empty; "
                       "metadata_plausibility: rope", fix="apr stamp A ; apr import B")
    doc, _ = _qa(monkeypatch, [GateResult("golden_output", False, False, "empty")], NO_CARD)
    assert doc == _doc("qa", False, "apr qa verdict NO-GO: golden_output: empty", fix="apr qa m.apr")


# --- model_card ------------------------------------------------------------------------------


def test_model_card_gate_without_a_card(tmp_path: Path) -> None:
    for card in (None, ""):
        doc = rg._gate_model_card("m.apr", ReadinessOptions(model_card=card), {"license": "MIT"}).to_dict()
        assert doc == _doc("model_card", False, "no model card given (--model-card CARD.md)",
                           fix="apr card m.apr -o MODEL_CARD.md --force")


def test_an_unreadable_model_card_fails_the_gate_with_the_reason(tmp_path: Path) -> None:
    from apr.readiness.card import read_card

    missing = str(tmp_path / "NOPE.md")
    doc = rg._gate_model_card("m.apr", ReadinessOptions(model_card=missing), {"license": "MIT"}).to_dict()
    assert doc == _doc("model_card", False, "model card not found", fix=f"apr card m.apr -o {missing} --force")
    garbled = tmp_path / "BAD.md"
    garbled.write_text("---\nlicense: [unclosed\n---\ntext\n", encoding="utf-8")
    with pytest.raises(AprError) as why:  # the oracle: the card reader's own complaint
        read_card(garbled)
    doc = rg._gate_model_card("m.apr", ReadinessOptions(model_card=str(garbled)), {"license": "MIT"}).to_dict()
    assert doc == _doc("model_card", False, why.value.message, fix=f"apr card m.apr -o {garbled} --force")
    assert why.value.message.startswith("model card cannot be parsed")


@pytest.mark.parametrize(("facts", "license", "passed", "message"), [
    (CardFacts("mit", "apr", (("loss", 1.5),)), "MIT", True, "license mit, library apr, 1 metric(s)"),
    (CardFacts("apache-2.0", "apr", (("loss", 1.5), ("acc", 0.5))), "Apache-2.0", True,
     "license apache-2.0, library apr, 2 metric(s)"),
    (CardFacts("mit", "apr", (("loss", 1.5),)), "Apache-2.0", False,
     "the card's license 'mit' differs from the checkpoint's 'Apache-2.0'"),
    (CardFacts("mit", "apr", (("loss", 1.5),)), None, False, "the checkpoint has no license to match the card's"),
    (CardFacts(None, None, ()), "MIT", False,
     "the card has no `license:`; the card has no `library_name:`; the card's `model-index` has no metrics"),
])
def test_model_card_gate_matches_the_card_with_the_checkpoint(monkeypatch: pytest.MonkeyPatch, facts: CardFacts,
                                                              license: str | None, passed: bool, message: str) -> None:
    import apr.readiness.card as card

    read: list[str] = []
    monkeypatch.setattr(card, "read_card", lambda p: read.append(p) or facts)
    meta = {"license": license} if license else {}
    doc = rg._gate_model_card("m.apr", ReadinessOptions(model_card="C.md"), meta).to_dict()
    fix = {} if passed else {"fix": "apr card m.apr -o C.md --force"}
    assert doc == _doc("model_card", passed, message, **fix) and read == ["C.md"]


def test_model_card_gate_passes_the_card_apr_writes(tmp_path: Path, tok_meta: dict[str, Any]) -> None:
    from apr.format import open_file
    from apr.readiness import build_card

    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(path), encoding="utf-8")
    with open_file(str(path), verify_checksum=False) as reader:
        meta = dict(reader.metadata)
    doc = rg._gate_model_card(str(path), ReadinessOptions(model_card=str(card)), meta).to_dict()
    assert doc["passed"] is True and doc["message"].startswith("license apache-2.0, library apr, ")
    assert "fix" not in doc


# --- hf_token (--require-token) --------------------------------------------------------------


def test_hf_token_is_skipped_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    assert rg._gate_hf_token("m.apr", NO_CARD, {}).to_dict() == {
        "name": "hf_token", "passed": False, "skipped": True, "value": None, "threshold": None, "duration_ms": 0.0,
        "message": "Skipped: not required (pass --require-token to check HF_TOKEN)"}


@pytest.mark.parametrize(("token", "passed", "message"), [
    (None, False, "HF_TOKEN is not set"),
    ("", False, "HF_TOKEN is not set"),  # set but empty: no token
    ("x", True, "HF_TOKEN set (length=1)"),
    ("hf_abcdefgh", True, "HF_TOKEN set (length=11)"),
])
def test_require_token_checks_hf_token(monkeypatch: pytest.MonkeyPatch, token: str | None, passed: bool,
                                       message: str) -> None:
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    doc = rg._gate_hf_token("m.apr", ReadinessOptions(model_card=None, require_token=True), {}).to_dict()
    fix = {} if passed else {"fix": "export HF_TOKEN=<your token>"}
    assert doc == _doc("hf_token", passed, message, **fix)
    assert "hf_abcdefgh" not in str(doc)  # the token itself never reaches the report


def test_require_token_through_run_readiness_turns_the_skip_into_a_blocker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_checkpoint(tmp_path / "m.apr")
    monkeypatch.setattr(rg, "GATES", (("hf_token", rg._gate_hf_token),))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert run_readiness(path, NO_CARD).verdict == "GO"
    required = run_readiness(path, ReadinessOptions(model_card=None, require_token=True))
    assert required.verdict == "NO-GO" and required.to_dict()["blockers"] == ["hf_token"]


# --- smoke_run -------------------------------------------------------------------------------


def _smoke(monkeypatch: pytest.MonkeyPatch, text: str | None = None, error: AprError | None = None) -> tuple[dict, list]:
    import apr.run

    calls: list[Any] = []

    def load(path: str) -> Any:
        calls.append(("load", path))
        if error is not None:
            raise error
        return "model"

    def generate(loaded: Any, prompt: str, sampling: Any) -> Any:
        calls.append(("generate", loaded, prompt, sampling.max_tokens))
        yield from (text or "")

    monkeypatch.setattr(apr.run, "load_model", load)
    monkeypatch.setattr(apr.run, "generate_text", generate)
    return rg._gate_smoke_run("m.apr", NO_CARD, {}).to_dict(), calls


@pytest.mark.parametrize(("text", "passed", "message"), [
    ("", False, "apr run produced no text: ''"),
    ("123 !?", False, "apr run produced no text: '123 !?'"),
    ("1 a", True, "apr run: '1 a'"),  # one letter is text
    ("é", True, "apr run: 'é'"),
    ("x" * 70, True, f"apr run: {'x' * 60!r}"),
])
def test_smoke_run_needs_a_letter_from_16_greedy_tokens(monkeypatch: pytest.MonkeyPatch, text: str, passed: bool,
                                                      message: str) -> None:
    doc, calls = _smoke(monkeypatch, text)
    assert doc == _doc("smoke_run", passed, message)
    assert calls == [("load", "m.apr"), ("generate", "model", "The", 16)]


def test_smoke_run_reports_a_load_error_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    doc, _ = _smoke(monkeypatch, error=MissingTokenizerError("no tokenizer (PMAT-172)", hint="apr import --tokenizer"))
    assert doc == _doc("smoke_run", False, "no tokenizer (PMAT-172)", fix="apr import --tokenizer")


# --- export ----------------------------------------------------------------------------------


def _export(monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> tuple[dict, list]:
    import apr.convert.gguf_export as gguf_export
    import apr.convert.hf_export as hf_export

    calls: list[Any] = []

    def gguf(src: str, dst: str, *, quantize: Any, measure_error: bool) -> None:
        calls.append(("gguf", src, os.path.basename(dst), quantize, measure_error))
        assert os.path.basename(os.path.dirname(dst)).startswith("apr-readiness-")  # a temporary folder of ours
        if fail == "gguf":
            raise ConvertError("non-finite weights", hint="apr validate m.apr")

    def st(src: str, dst: str) -> None:
        calls.append(("st", src, os.path.basename(dst)))
        if fail == "st":
            raise ConvertError("no room", hint=None)

    monkeypatch.setattr(gguf_export, "export_gguf", gguf)
    monkeypatch.setattr(hf_export, "export_safetensors", st)
    return rg._gate_export("m.apr", NO_CARD, {}).to_dict(), calls


def test_export_gate_writes_q4_k_gguf_and_safetensors(monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.convert.gguf_export import GgufQuant

    doc, calls = _export(monkeypatch)
    assert doc == _doc("export", True, "GGUF q4_k and safetensors exports succeeded")
    assert calls == [("gguf", "m.apr", "model-q4_k.gguf", GgufQuant.Q4_K, False), ("st", "m.apr", "hf")]
    doc, calls = _export(monkeypatch, fail="gguf")
    assert doc == _doc("export", False, "export failed: non-finite weights", fix="apr validate m.apr")
    assert len(calls) == 1
    doc, _ = _export(monkeypatch, fail="st")
    assert doc == _doc("export", False, "export failed: no room")
