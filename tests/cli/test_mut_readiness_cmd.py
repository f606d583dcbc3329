"""`apr readiness` and `apr card`, the command module (apr/cli/readiness_cmd.py), issue 23.

readiness: what the flags hand the gates, the exit code (0 GO, 1 NO-GO) and the text and JSON
reports, with the gate runner replaced by one returning a report built here from known gates (the
gates have their own tests in tests/readiness/). card: the real command on a small checkpoint; its
JSON keys (``output``, ``bytes``, ``metrics_log``, ``training_results_rows``, ``loss_curve``) are
checked against the file written and the metrics log given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apr.cli.main import main
from apr.qa import GateResult
from apr.readiness import ReadinessReport
from tests.readiness.builders import build_checkpoint

SHA = "fedcba9876543210" * 4


class Runner:
    """Stands in for `apr.readiness.run_readiness`: records each call, reports ``gates``."""

    def __init__(self, gates: list[GateResult]) -> None:
        self.gates = gates
        self.calls: list[dict[str, Any]] = []

    def __call__(self, path, options, *, on_gate=None) -> ReadinessReport:
        self.calls.append({"path": path, "options": options, "on_gate": on_gate})
        for gate in self.gates:
            if on_gate is not None:
                on_gate(gate)
        return ReadinessReport(model=str(path), sha256=SHA, gates=list(self.gates))


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.apr"
    path.write_bytes(b"not read: the gates are replaced")
    return path


def _readiness(monkeypatch, capsys, gates: list[GateResult], *argv: str) -> tuple[int, str, str, Runner]:
    import apr.readiness

    runner = Runner(gates)
    monkeypatch.setattr(apr.readiness, "run_readiness", runner)
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    code = main(["readiness", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, runner


OK = GateResult("validate", True, False, "apr validate: VALID")
NO_LICENSE = GateResult("license", False, False, "no license", fix="apr stamp m.apr --license MIT --in-place")
NO_TOKENIZER = GateResult("tokenizer", False, False, "no tokenizer")


def test_the_flags_reach_the_gates(monkeypatch, capsys, model: Path) -> None:
    _, _, _, runner = _readiness(monkeypatch, capsys, [OK], str(model), "--json")
    options = runner.calls[0]["options"]
    assert runner.calls[0]["path"] == str(model)
    assert options.model_card is None and options.require_token is False
    _, _, _, runner = _readiness(monkeypatch, capsys, [OK], str(model), "--model-card", "CARD.md", "--require-token",
                                 "--json")
    options = runner.calls[0]["options"]
    assert options.model_card == "CARD.md" and options.require_token is True


@pytest.mark.parametrize(("gates", "code"), [([OK], 0), ([OK, NO_LICENSE], 1), ([NO_LICENSE, NO_TOKENIZER], 1),
                                             ([], 0)])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_exit_code_is_the_verdict(monkeypatch, capsys, model: Path, gates, code: int, as_json: bool) -> None:
    got, out, err, _ = _readiness(monkeypatch, capsys, gates, str(model), *(["--json"] if as_json else []))
    assert got == code
    if as_json:
        doc = json.loads(out)
        assert doc["schema"] == "apr.readiness/1" and doc["command"] == "readiness" and doc["input"] == str(model)
        assert doc["exit_code"] == code and doc["ok"] is (code == 0) and doc["passed"] is (code == 0)
        assert doc["verdict"] == ("GO" if code == 0 else "NO-GO") and doc["sha256"] == SHA
        assert doc["blockers"] == [g.name for g in gates if not g.passed]
        assert err == ""  # no progress lines under --json
    else:
        assert err.splitlines() == [f"  {g.name} done" for g in gates]


def test_the_text_report_line_by_line(monkeypatch, capsys, model: Path) -> None:
    code, out, _, _ = _readiness(monkeypatch, capsys, [OK, NO_LICENSE, NO_TOKENIZER], str(model))
    assert code == 1
    assert out.splitlines() == [
        f"apr readiness {model} (sha256 {SHA[:12]})",
        f"  PASS {'validate':<22} apr validate: VALID",
        f"  FAIL {'license':<22} no license",
        "         fix: apr stamp m.apr --license MIT --in-place",
        f"  FAIL {'tokenizer':<22} no tokenizer",
        "  verdict: NO-GO (2 blocker(s): license, tokenizer)",
    ]
    code, out, _, _ = _readiness(monkeypatch, capsys, [OK], str(model))
    assert code == 0 and out.splitlines()[-1] == "  verdict: GO"


def test_a_path_with_markup_is_printed_literally(monkeypatch, capsys, tmp_path: Path) -> None:
    model = tmp_path / "m[bold]x[i].apr"
    model.write_bytes(b"x")
    blocker = GateResult("[i]gate", False, False, "m")
    _, out, _, _ = _readiness(monkeypatch, capsys, [blocker], str(model))
    assert out.splitlines()[0] == f"apr readiness {model} (sha256 {SHA[:12]})"
    assert out.splitlines()[-1] == "  verdict: NO-GO (1 blocker(s): [i]gate)"


# --- apr card ------------------------------------------------------------------------------------


def _card(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["card", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _log(run_dir: Path) -> Path:
    """A metrics log with two evaluation rows (steps 0 and 8) and two training rows."""
    from apr.train.metrics_log import MetricRecord, MetricsLogWriter

    run_dir.mkdir()
    path = run_dir / "metrics.jsonl"
    rows = [MetricRecord(0, 0, None, 5.0, None, None, None, 0, 0.1),
            MetricRecord(4, 0, 4.0, None, 1e-3, 1.0, 100.0, 400, 1.0),
            MetricRecord(8, 0, 3.0, None, 1e-3, 1.0, 100.0, 800, 2.0),
            MetricRecord(8, 1, None, 3.5, None, None, None, 800, 2.1)]
    with MetricsLogWriter(path, durable=False) as writer:
        for row in rows:
            writer.write(row)
    return path


def test_card_json_without_a_training_log(tmp_path: Path, capsys) -> None:
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "-o", str(card), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "apr.card/1" and doc["command"] == "card" and doc["input"] == str(checkpoint)
    assert doc["exit_code"] == 0 and doc["ok"] is True
    assert doc["output"] == str(card) and doc["bytes"] == card.stat().st_size
    assert doc["metrics_log"] is None and doc["training_results_rows"] == 0 and doc["loss_curve"] is None
    assert "## Training results" not in card.read_text(encoding="utf-8")


def test_card_json_with_a_run_dir(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    log = _log(tmp_path / "run")
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card), "--json")
    assert code == 0
    doc = json.loads(out)
    png = tmp_path / "CARD-loss.png"
    assert doc["metrics_log"] == str(log) and doc["training_results_rows"] == 2
    assert doc["loss_curve"] == str(png) and png.is_file() and doc["bytes"] == card.stat().st_size
    assert "## Training results" in card.read_text(encoding="utf-8")


def test_card_text_with_and_without_a_curve(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    log = _log(tmp_path / "run")
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card))
    assert code == 0
    assert out.splitlines() == [f"✓ wrote model card → {card}",
                                f"  training results: 2 evaluation(s) from {log}, loss curve {tmp_path / 'CARD-loss.png'}"]
    import apr.readiness.loss_curve

    monkeypatch.setattr(apr.readiness.loss_curve, "has_matplotlib", lambda: False)
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card), "--force")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"✓ wrote model card → {card}"
    assert lines[1].startswith(f"  training results: 2 evaluation(s) from {log} (no loss curve: add it with `")
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card), "--force",
                         "--json")
    assert code == 0 and json.loads(out)["loss_curve"] is None


def test_card_text_without_a_log_is_one_line(tmp_path: Path, capsys) -> None:
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "-o", str(card))
    assert code == 0 and out.splitlines() == [f"✓ wrote model card → {card}"]


def test_card_force_replaces_and_without_it_refuses(tmp_path: Path, capsys) -> None:
    """An existing card is refused (5) unless --force; the curve's PNG follows the same rule."""
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    _log(tmp_path / "run")
    card = tmp_path / "CARD.md"
    card.write_text("old", encoding="utf-8")
    code, _, _ = _card(capsys, str(checkpoint), "-o", str(card))
    assert code == 5 and card.read_text(encoding="utf-8") == "old"
    code, _, _ = _card(capsys, str(checkpoint), "-o", str(card), "-f")
    assert code == 0 and card.read_text(encoding="utf-8") != "old"
    card.unlink()
    (tmp_path / "CARD-loss.png").write_bytes(b"old png")
    code, _, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card))
    assert code == 5 and not card.exists()
    code, _, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card), "--force")
    assert code == 0 and (tmp_path / "CARD-loss.png").read_bytes() != b"old png"


def test_card_never_overwrites_its_report(tmp_path: Path, capsys) -> None:
    """-o naming the --report file is refused (the output policy's inputs), with --force too."""
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    report = tmp_path / "report.md"
    report.write_text(json.dumps({"final_val_loss": 2.5}), encoding="utf-8")
    code, _, _ = _card(capsys, str(checkpoint), "--report", str(report), "-o", str(report), "--force")
    assert code == 5 and json.loads(report.read_text(encoding="utf-8")) == {"final_val_loss": 2.5}


def test_card_reads_the_report(tmp_path: Path, capsys) -> None:
    """The report's ``final_val_loss`` becomes a val_loss metric of the card's model-index."""
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"final_val_loss": 2.375}), encoding="utf-8")
    card = tmp_path / "CARD.md"
    code, _, _ = _card(capsys, str(checkpoint), "--report", str(report), "-o", str(card))
    assert code == 0
    text = card.read_text(encoding="utf-8")
    assert "val_loss" in text and "2.375" in text
    code, out, _ = _card(capsys, str(checkpoint), "--report", str(tmp_path / "none.json"), "-o", str(card), "-f",
                         "--json")
    assert code == 3 and json.loads(out)["error"]["message"] == "--report: file not found"


def test_card_of_a_lone_surrogate_escapes_it(tmp_path: Path, capsys) -> None:
    """A lone surrogate in the metadata (valid JSON) is written as a backslash escape; ``bytes`` is
    the size of what was written."""
    from unittest import mock

    from apr.format import load, open_file, save_file

    plain = build_checkpoint(tmp_path / "plain.apr", tokenizer=None)
    with open_file(plain) as reader:
        metadata, flags = dict(reader.metadata), int(reader.flags)
    metadata["name"] = "bad\ud800name"
    raw = json.dumps(metadata, ensure_ascii=True).encode("ascii")  # "\ud800": valid JSON, a lone surrogate
    checkpoint = tmp_path / "m.apr"
    with mock.patch("apr.format.writer.encode_metadata", lambda _metadata: raw):
        save_file(dict(load(plain.read_bytes())), checkpoint, {}, flags=flags, durable=False)
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "-o", str(card), "--json")
    assert code == 0
    data = card.read_bytes()
    assert b"bad\\ud800name" in data and json.loads(out)["bytes"] == len(data)


def test_card_never_draws_its_curve_over_the_report(tmp_path: Path, capsys) -> None:
    """The curve's PNG (CARD-loss.png) is an output too: naming the --report file, it is refused
    (5) with --force too, and the report is kept."""
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    _log(tmp_path / "run")
    report = tmp_path / "CARD-loss.png"
    report.write_text(json.dumps({"final_val_loss": 2.5}), encoding="utf-8")
    code, out, _ = _card(capsys, str(checkpoint), "--report", str(report), "--run-dir", str(tmp_path / "run"),
                         "-o", str(tmp_path / "CARD.md"), "--force", "--json")
    assert code == 5 and json.loads(out)["error"]["exit_code"] == 5
    assert json.loads(report.read_text(encoding="utf-8")) == {"final_val_loss": 2.5}


def test_card_prints_a_log_path_with_markup_literally(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    log = _log(tmp_path / "run[i]x")
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run[i]x"), "-o", str(card))
    assert code == 0
    assert out.splitlines()[1] == f"  training results: 2 evaluation(s) from {log}, loss curve {tmp_path / 'CARD-loss.png'}"


@pytest.fixture()
def colour(monkeypatch) -> None:
    """A colour terminal as rich sees one (FORCE_COLOR, 8 colours): styles become ANSI codes."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def test_the_report_in_colour(monkeypatch, capsys, model: Path, colour) -> None:
    code, out, err, _ = _readiness(monkeypatch, capsys, [OK, NO_LICENSE], str(model))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"\x1b[1mapr readiness {model}\x1b[0m (sha256 {SHA[:12]})"
    assert lines[-1] == "  verdict: \x1b[31mNO-GO\x1b[0m (1 blocker(s): license)"
    assert err.splitlines() == ["\x1b[2m  validate done\x1b[0m", "\x1b[2m  license done\x1b[0m"]
    code, out, _, _ = _readiness(monkeypatch, capsys, [OK], str(model))
    assert code == 0 and out.splitlines()[-1] == "  verdict: \x1b[32mGO\x1b[0m"


def test_card_training_line_is_plain_in_colour(tmp_path: Path, capsys, colour) -> None:
    """Numbers and paths in the training line are never highlighted."""
    pytest.importorskip("matplotlib")
    checkpoint = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    log = _log(tmp_path / "run")
    card = tmp_path / "CARD.md"
    code, out, _ = _card(capsys, str(checkpoint), "--run-dir", str(tmp_path / "run"), "-o", str(card))
    assert code == 0
    assert out.splitlines()[1] == f"  training results: 2 evaluation(s) from {log}, loss curve {tmp_path / 'CARD-loss.png'}"
