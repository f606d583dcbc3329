"""`apr validate`'s command module (apr/cli/validate_cmd.py), issue 23: exit 0 for a valid file, 5
for an invalid one, ``--strict`` handed to the checks, and the text report line by line.

The expected lines are built from `apr.format.validate.validate_file`'s own report on the same file
(the library, called directly), so the test pins what the command prints, not what the checks find.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apr.cli.main import main
from apr.format import save_file
from apr.format.validate import validate_file


def _file(path: Path, *, zero: bool = False) -> Path:
    rng = np.random.default_rng(1)
    tensors = {"a.weight": rng.standard_normal((4, 8)).astype(np.float32),
               "b.weight": np.zeros(16, np.float32) if zero else rng.standard_normal(16).astype(np.float32)}
    save_file(tensors, path, {"name": "t"}, durable=False)
    return path


def _damaged(path: Path) -> Path:
    """A valid file with its last tensor byte flipped: the footer CRC no longer matches."""
    _file(path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _validate(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _expected_lines(path: Path, *, strict: bool = False) -> list[str]:
    report = validate_file(str(path), strict=strict)
    doc = report.to_dict()
    lines = [str(path)]
    lines += [f"  {c.status.value:4} [{c.id:>2}] {c.name}: {c.detail}" for c in report.checks]
    lines.append(f"  {doc['verdict']}: {doc['checks_ran']} of {doc['total_checks']} checks ran, {doc['failed']} failed")
    return lines


def test_a_valid_file_in_text(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _file(tmp_path / "m.apr")
    code, out, err = _validate(capsys, monkeypatch, str(path))
    assert code == 0
    assert out.splitlines() == _expected_lines(path)
    assert out.splitlines()[-1].startswith("  VALID: 18 of 18 checks ran, 0 failed")
    assert "error" not in err


def test_an_invalid_file_in_text_names_each_failed_check_on_stderr(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _damaged(tmp_path / "m.apr")
    report = validate_file(str(path))
    failed = [c for c in report.checks if c.status.value == "FAIL"]
    assert failed  # the damage is one the checks see
    code, out, err = _validate(capsys, monkeypatch, str(path))
    assert code == 5
    assert out.splitlines() == _expected_lines(path)
    assert out.splitlines()[-1].startswith("  INVALID: ")
    expected = "error: validation failed — " + "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in failed)
    assert err.strip().endswith(expected)


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 5)])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_strict_fails_an_all_zero_tensor(tmp_path: Path, capsys, monkeypatch, strict: bool, code: int,
                                         as_json: bool) -> None:
    """An all-zero tensor warns (exit 0) and fails under --strict (exit 5)."""
    path = _file(tmp_path / "m.apr", zero=True)
    argv = [str(path), *(["--strict"] if strict else []), *(["--json"] if as_json else [])]
    got, out, err = _validate(capsys, monkeypatch, *argv)
    assert got == code
    if as_json:
        doc = json.loads(out)
        assert doc["schema"] == "apr.validate/1" and doc["command"] == "validate" and doc["input"] == str(path)
        assert doc["exit_code"] == code and doc["ok"] is (code == 0) and doc["strict"] is strict
        assert doc["content_all_zero_tensors"] == ["b.weight"]
        assert doc["verdict"] == ("VALID" if code == 0 else "INVALID")
        assert err == ""
    else:
        assert out.splitlines() == _expected_lines(path, strict=strict)
        status = {line.split("]")[0].split()[-1].lstrip("["): line.split()[0] for line in out.splitlines()[1:-1]}
        assert status["17"] == ("FAIL" if strict else "WARN")


def test_a_path_and_detail_with_markup_are_printed_literally(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _file(tmp_path / "m[bold]x[i].apr")
    code, out, _ = _validate(capsys, monkeypatch, str(path))
    assert code == 0 and out.splitlines() == _expected_lines(path)


@pytest.fixture()
def colour(monkeypatch) -> None:
    """A colour terminal as rich sees one (FORCE_COLOR, 8 colours): styles become ANSI codes."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def test_the_report_in_colour(tmp_path: Path, capsys, monkeypatch, colour) -> None:
    """The path bold; PASS green, WARN yellow, FAIL red, SKIP dim; the verdict green or red; the
    error head bold red; everything else plain."""
    path = _file(tmp_path / "m.apr", zero=True)
    code, out, _ = _validate(capsys, monkeypatch, str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"\x1b[1m{path}\x1b[0m"
    assert lines[1].startswith("  \x1b[32mPASS\x1b[0m [ 1] ")
    assert lines[17].startswith("  \x1b[33mWARN\x1b[0m [17] ")
    assert lines[-1] == "  \x1b[32mVALID\x1b[0m: 18 of 18 checks ran, 0 failed"
    damaged = _damaged(tmp_path / "d.apr")
    report = validate_file(str(damaged))
    code, out, err = _validate(capsys, monkeypatch, str(damaged))
    assert code == 5
    lines = out.splitlines()
    for line, check in zip(lines[1:-1], report.checks, strict=True):
        colour_code = {"PASS": "32", "FAIL": "31", "WARN": "33", "SKIP": "2"}[check.status.value]
        assert line == f"  \x1b[{colour_code}m{check.status.value:4}\x1b[0m [{check.id:>2}] {check.name}: {check.detail}"
    assert lines[-1].startswith("  \x1b[31mINVALID\x1b[0m: ")
    failed = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in report.checks if c.status.value == "FAIL")
    assert err.endswith(f"\x1b[1;31merror: validation failed — {failed}\x1b[0m\n")  # after the transient bar


def test_every_failed_check_is_named_on_stderr_joined_by_semicolons(tmp_path: Path, capsys, monkeypatch) -> None:
    """A NaN (check 16) and, under --strict, an all-zero tensor (check 17): two failures, one line."""
    path = tmp_path / "m.apr"
    save_file({"a.weight": np.array([np.nan, 1.0, 2.0], np.float32), "b.weight": np.zeros(4, np.float32)}, path,
              {"name": "t"}, durable=False)
    report = validate_file(str(path), strict=True)
    failed = [c for c in report.checks if c.status.value == "FAIL"]
    assert [c.id for c in failed] == [16, 17]
    code, _, err = _validate(capsys, monkeypatch, str(path), "--strict")
    assert code == 5
    assert err.strip() == ("error: validation failed — " + f"[16] {failed[0].name}: {failed[0].detail}; "
                           f"[17] {failed[1].name}: {failed[1].detail}")


def test_skipped_checks_are_dim_in_colour(tmp_path: Path, capsys, monkeypatch, colour) -> None:
    """A file that fails its magic check skips what depends on it: each SKIP dim."""
    path = tmp_path / "garbage.apr"
    path.write_bytes(b"XXXX" + bytes(200))
    report = validate_file(str(path))
    skipped = [c for c in report.checks if c.status.value == "SKIP"]
    assert skipped
    code, out, _ = _validate(capsys, monkeypatch, str(path))
    assert code == 5
    for check in skipped:
        assert f"  \x1b[2mSKIP\x1b[0m [{check.id:>2}] {check.name}: {check.detail}" in out.splitlines()
