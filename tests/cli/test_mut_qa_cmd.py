"""`apr qa`'s command module (apr/cli/qa_cmd.py), issue 23: what its flags hand the QA runner, the
exit code (0 GO, 1 NO-GO) and ``--json`` document it derives from the report, and the text report.

The runner is replaced by one that returns a report built here from known gates (the gates and
the verdict rule have their own tests in tests/qa/), so each expected value is derived from the
gates given, not read back from the command's output. Like the real runner, the stand-in calls
``on_gate`` once per gate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apr.cli.main import main
from apr.qa import GateResult, QaReport

SHA = "0123456789abcdef" * 4
GATES = ("capability_match", "tensor_contract", "metadata_plausibility", "golden_output", "throughput",
         "format_parity", "gpu_speedup", "performance_regression")


class Runner:
    """Stands in for `apr.qa.run_qa`: records each call, reports ``gates``."""

    def __init__(self, gates: list[GateResult]) -> None:
        self.gates = gates
        self.calls: list[dict[str, Any]] = []

    def __call__(self, path, options, *, min_executed: int = 0, on_gate=None) -> QaReport:
        self.calls.append({"path": path, "options": options, "min_executed": min_executed, "on_gate": on_gate})
        for gate in self.gates:
            if on_gate is not None:
                on_gate(gate)
        return QaReport(model=str(path), sha256=SHA, gates=list(self.gates), min_executed=min_executed)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.apr"
    path.write_bytes(b"not read: the runner is replaced")
    return path


def _qa(monkeypatch, capsys, gates: list[GateResult], *argv: str) -> tuple[int, str, str, Runner]:
    import apr.qa

    runner = Runner(gates)
    monkeypatch.setattr(apr.qa, "run_qa", runner)
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    code = main(["qa", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, runner


PASS = GateResult("capability_match", True, False, "ok")
FAIL = GateResult("throughput", False, False, "3.0 < 10.0", value=3.0, threshold=10.0, fix="apr qa --assert-tps 1")
SKIP = GateResult.skip("gpu_speedup", "no GPU")


def test_defaults_reach_the_runner(monkeypatch, capsys, model: Path) -> None:
    """Without flags: nothing skipped, prompt "The", 10 tokens per CPU-second, no previous report,
    no minimum of executed gates (the documented defaults)."""
    code, _, _, runner = _qa(monkeypatch, capsys, [PASS], str(model), "--json")
    assert code == 0
    (call,) = runner.calls
    assert call["path"] == str(model) and call["min_executed"] == 0
    options = call["options"]
    assert options.skip == frozenset() and options.prompt == "The" and options.assert_tps == 10.0
    assert options.previous_report is None


@pytest.mark.parametrize("gate", GATES)
def test_each_skip_flag_skips_exactly_its_gate(monkeypatch, capsys, model: Path, gate: str) -> None:
    """``--skip-NAME`` (NAME with dashes) puts exactly that gate in ``skip``."""
    _, _, _, runner = _qa(monkeypatch, capsys, [PASS], str(model), f"--skip-{gate.replace('_', '-')}", "--json")
    assert runner.calls[0]["options"].skip == frozenset({gate})


def test_every_skip_flag_together(monkeypatch, capsys, model: Path) -> None:
    argv = [f"--skip-{g.replace('_', '-')}" for g in GATES]
    _, _, _, runner = _qa(monkeypatch, capsys, [PASS], str(model), *argv, "--json")
    assert runner.calls[0]["options"].skip == frozenset(GATES)


def test_given_values_reach_the_runner(monkeypatch, capsys, model: Path, tmp_path: Path) -> None:
    previous = {"gates": [{"name": "throughput", "value": 12.5}], "verdict": "GO"}
    report = tmp_path / "previous.json"
    report.write_text(json.dumps(previous), encoding="utf-8")
    _, _, _, runner = _qa(monkeypatch, capsys, [PASS], str(model), "--prompt", "Once upon", "--assert-tps", "2.5",
                          "--min-executed", "3", "--previous-report", str(report), "--json")
    (call,) = runner.calls
    assert call["min_executed"] == 3
    options = call["options"]
    assert options.prompt == "Once upon" and options.assert_tps == 2.5 and options.previous_report == previous


def test_an_unusable_previous_report_is_a_usage_error_naming_the_flag(monkeypatch, capsys, model: Path,
                                                                      tmp_path: Path) -> None:
    """The report's shape is checked (`previous_qa_report_problem`): 'gates' not a list is refused
    with the usage code 64 before any gate runs."""
    report = tmp_path / "previous.json"
    report.write_text(json.dumps({"gates": "throughput"}), encoding="utf-8")
    code, out, _, runner = _qa(monkeypatch, capsys, [PASS], str(model), "--previous-report", str(report), "--json")
    assert code == 64 and runner.calls == []
    error = json.loads(out)["error"]
    assert error["exit_code"] == 64 and error["message"] == "--previous-report: 'gates' must be a list, got a string"
    assert error["hint"] == "pass a JSON file to --previous-report"


@pytest.mark.parametrize(("gates", "min_executed", "code"), [
    ([PASS], 0, 0),
    ([PASS, SKIP], 1, 0),  # exactly the minimum ran
    ([PASS, SKIP], 2, 1),  # one gate short of the minimum: the skipped one does not count
    ([PASS, FAIL], 0, 1),
    ([SKIP], 0, 0),
])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_exit_code_is_the_reports_verdict(monkeypatch, capsys, model: Path, gates, min_executed: int,
                                              code: int, as_json: bool) -> None:
    argv = [str(model), "--min-executed", str(min_executed)] + (["--json"] if as_json else [])
    got, out, err, _ = _qa(monkeypatch, capsys, gates, *argv)
    assert got == code
    verdict = "GO" if code == 0 else "NO-GO"
    if as_json:
        doc = json.loads(out)
        assert doc["schema"] == "apr.qa/1" and doc["command"] == "qa" and doc["input"] == str(model)
        assert doc["exit_code"] == code and doc["ok"] is (code == 0)
        assert doc["verdict"] == verdict and doc["passed"] is (code == 0) and doc["sha256"] == SHA
        assert [g["name"] for g in doc["gates"]] == [g.name for g in gates]
        assert err == ""  # no progress lines under --json
    else:
        lines = out.splitlines()
        assert lines[-1].startswith(f"  verdict: {verdict} — ")
        assert err.splitlines() == [f"  {g.name} done" for g in gates]  # the progress, one line a gate


def test_the_text_report_line_by_line(monkeypatch, capsys, model: Path) -> None:
    """Header with the first 12 hex digits of the digest; one line per gate (status, the name padded
    to 22, the message); the fix only under a gate that ran and failed; the verdict with the summary."""
    passed_with_fix = GateResult("tensor_contract", True, False, "fine", fix="never shown: it passed")
    skipped_with_fix = GateResult("golden_output", False, True, "Skipped: no tokenizer", fix="never shown: skipped")
    failed_without_fix = GateResult("format_parity", False, False, "differs")
    gates = [PASS, passed_with_fix, SKIP, skipped_with_fix, FAIL, failed_without_fix]
    code, out, _, _ = _qa(monkeypatch, capsys, gates, str(model))
    assert code == 1
    assert out.splitlines() == [
        f"apr qa {model} (sha256 {SHA[:12]})",
        f"  PASS {'capability_match':<22} ok",
        f"  PASS {'tensor_contract':<22} fine",
        f"  SKIP {'gpu_speedup':<22} Skipped: no GPU",
        f"  SKIP {'golden_output':<22} Skipped: no tokenizer",
        f"  FAIL {'throughput':<22} 3.0 < 10.0",
        "         fix: apr qa --assert-tps 1",
        f"  FAIL {'format_parity':<22} differs",
        "  verdict: NO-GO — Failed gates: throughput, format_parity",
    ]


def test_text_from_the_file_is_printed_literally(monkeypatch, capsys, tmp_path: Path) -> None:
    """A path, message or fix holding rich markup is data: printed as written."""
    model = tmp_path / "m[bold].apr"
    model.write_bytes(b"x")
    gates = [GateResult("gate", True, False, "[bold]message[/]"),
             GateResult("other", False, False, "[i]failed", fix="[u]fix[/u]")]
    code, out, _, _ = _qa(monkeypatch, capsys, gates, str(model))
    assert code == 1
    assert out.splitlines() == [
        f"apr qa {model} (sha256 {SHA[:12]})",
        f"  PASS {'gate':<22} [bold]message[/]",
        f"  FAIL {'other':<22} [i]failed",
        "         fix: [u]fix[/u]",
        "  verdict: NO-GO — Failed gates: other",
    ]


def test_a_go_report_in_text(monkeypatch, capsys, model: Path) -> None:
    code, out, _, _ = _qa(monkeypatch, capsys, [PASS, SKIP], str(model))
    assert code == 0
    assert out.splitlines()[-1] == "  verdict: GO — All QA gates passed (1 executed, 1 skipped)"


@pytest.fixture()
def colour(monkeypatch) -> None:
    """A colour terminal as rich sees one (FORCE_COLOR, 8 colours): styles become ANSI codes."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def test_the_report_in_colour(monkeypatch, capsys, model: Path, colour) -> None:
    """On a terminal: the header bold, PASS green, SKIP dim, FAIL red, the verdict red or green, the
    progress dim; messages and fixes plain (never highlighted: "3.0 < 10.0" keeps no codes)."""
    code, out, err, _ = _qa(monkeypatch, capsys, [PASS, SKIP, FAIL], str(model))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"\x1b[1mapr qa {model}\x1b[0m (sha256 {SHA[:12]})"
    assert lines[1] == f"  \x1b[32mPASS\x1b[0m {'capability_match':<22} ok"
    assert lines[2] == f"  \x1b[2mSKIP\x1b[0m {'gpu_speedup':<22} Skipped: no GPU"
    assert lines[3] == f"  \x1b[31mFAIL\x1b[0m {'throughput':<22} 3.0 < 10.0"
    assert lines[4] == "         fix: apr qa --assert-tps 1"
    assert lines[5] == "  verdict: \x1b[31mNO-GO\x1b[0m — Failed gates: throughput"
    assert err.splitlines() == [f"\x1b[2m  {g.name} done\x1b[0m" for g in (PASS, SKIP, FAIL)]
    code, out, _, _ = _qa(monkeypatch, capsys, [PASS], str(model))
    assert code == 0 and out.splitlines()[-1] == "  verdict: \x1b[32mGO\x1b[0m — All QA gates passed (1 executed, 0 skipped)"
