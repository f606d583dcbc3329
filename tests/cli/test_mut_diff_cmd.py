"""`apr diff`'s command module (apr/cli/diff_cmd.py), issue 23: ``--atol`` checked (a finite number
>= 0, else the usage code 64), exit 0 same / 1 different like `diff`, and the text report.

The report's lines are checked on a `CheckpointDiff` built here (the comparison itself has its own
tests in tests/format/test_apr_diff_v1.py), so every expected line follows from the fields given;
the exit codes also on real files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apr.cli.main import main
from apr.format import save_file
from apr.format.diff import CheckpointDiff, TensorDiff


def _run(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    code = main(["diff", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _pair(tmp_path: Path, delta: float) -> tuple[Path, Path]:
    base = np.arange(8, dtype=np.float32)
    a, b = tmp_path / "a.apr", tmp_path / "b.apr"
    save_file({"w": base}, a, {"name": "m"}, durable=False)
    save_file({"w": base + np.float32(delta)}, b, {"name": "m"}, durable=False)
    return a, b


@pytest.mark.parametrize(("delta", "atol", "code"), [
    (0.0, "0", 0),        # bit-equal at the default tolerance
    (0.5, "0.5", 0),      # exactly at the tolerance: equal
    (0.5, "0.25", 1),     # above it: different
    (0.5, None, 1),       # the default tolerance is 0
])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_exit_code_follows_the_tolerance(tmp_path: Path, capsys, monkeypatch, delta: float, atol, code: int,
                                             as_json: bool) -> None:
    a, b = _pair(tmp_path, delta)
    argv = [str(a), str(b), *(["--atol", atol] if atol is not None else []), *(["--json"] if as_json else [])]
    got, out, _ = _run(capsys, monkeypatch, *argv)
    assert got == code
    if as_json:
        doc = json.loads(out)
        assert doc["schema"] == "apr.diff/1" and doc["command"] == "diff" and doc["input"] == [str(a), str(b)]
        assert doc["exit_code"] == code and doc["ok"] is (code == 0) and doc["equal"] is (code == 0)
        assert doc["atol"] == (float(atol) if atol is not None else 0.0)
    else:
        assert out.splitlines()[-1].startswith("  same: " if code == 0 else "  different: ")


@pytest.mark.parametrize("atol", ["-1e-12", "-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_negative_or_non_finite_tolerance_is_a_usage_error(tmp_path: Path, capsys, monkeypatch, atol: str,
                                                             as_json: bool) -> None:
    a, b = _pair(tmp_path, 0.0)
    got, out, err = _run(capsys, monkeypatch, str(a), str(b), f"--atol={atol}", *(["--json"] if as_json else []))
    assert got == 64
    if as_json:
        error = json.loads(out)["error"]
        assert error["exit_code"] == 64 and error["field"] == "--atol" and "--atol" in error["message"]
    else:
        assert out == "" and "--atol must be a finite number >= 0" in err


def test_a_missing_side_is_3(tmp_path: Path, capsys, monkeypatch) -> None:
    a, _ = _pair(tmp_path, 0.0)
    got, out, _ = _run(capsys, monkeypatch, str(a), str(tmp_path / "none.apr"), "--json")
    assert got == 3 and json.loads(out)["input"] == [str(a), str(tmp_path / "none.apr")]


def _fake(monkeypatch, result: CheckpointDiff) -> None:
    import apr.format.diff

    monkeypatch.setattr(apr.format.diff, "diff_checkpoints", lambda a, b, *, atol: result)


def test_the_text_report_line_by_line(tmp_path: Path, capsys, monkeypatch) -> None:
    a, b = _pair(tmp_path, 0.0)
    result = CheckpointDiff(
        a=str(a), b=str(b), atol=0.125, formats=("apr", "gguf"),
        metadata={"num_layers": (2, 3), "license": ("MIT", None)},
        flags=(["QUANTIZED", "HAS_VOCAB"], []),
        only_a=["x.weight", "y.weight"], only_b=["z.weight"],
        tensors=[TensorDiff("s", ([2], [3]), ("F32", "F32"), None, None, None),
                 TensorDiff("q", ([4], [4]), ("F32", "Q8_0"), 0.0625, 0.001234, 0.99999),
                 TensorDiff("v", ([4], [4]), ("F16", "F16"), 0.5, 0.25, 0.75),
                 TensorDiff("same", ([4], [4]), ("F32", "F32"), 0.0, 0.0, 1.0)],
    )
    _fake(monkeypatch, result)
    code, out, _ = _run(capsys, monkeypatch, str(a), str(b))
    assert code == 1
    assert out.splitlines() == [
        f"apr diff {a} {b}",
        "  formats: apr -> gguf (metadata: the config keys both sides have; tensors by Hugging Face name)",
        "  metadata license: 'MIT' -> None",
        "  metadata num_layers: 2 -> 3",
        "  flags: QUANTIZED | HAS_VOCAB -> (none)",
        "  - tensor x.weight (only in A)",
        "  - tensor y.weight (only in A)",
        "  + tensor z.weight (only in B)",
        "  tensor s: shape [2] -> [3]",
        "  tensor q: dtype F32 -> Q8_0; max|a-b| 0.0625, rel L2 0.00123, cosine 0.999990",
        "  tensor v: max|a-b| 0.5, rel L2 0.25, cosine 0.750000",
        "  different: 2 metadata key(s), 3 tensor(s) changed, 1 equal within atol 0.125, 3 only on one side",
    ]


def test_flags_gained_and_an_equal_report(tmp_path: Path, capsys, monkeypatch) -> None:
    a, b = _pair(tmp_path, 0.0)
    _fake(monkeypatch, CheckpointDiff(a=str(a), b=str(b), atol=0.0, flags=([], ["SIGNED"])))
    code, out, _ = _run(capsys, monkeypatch, str(a), str(b))
    assert code == 1
    assert out.splitlines()[1] == "  flags: (none) -> SIGNED"
    _fake(monkeypatch, CheckpointDiff(a=str(a), b=str(b), atol=0.0,
                                      tensors=[TensorDiff("w", ([1], [1]), ("F32", "F32"), 0.0, 0.0, 1.0)]))
    code, out, _ = _run(capsys, monkeypatch, str(a), str(b))
    assert code == 0
    assert out.splitlines() == [f"apr diff {a} {b}",
                                "  same: 0 metadata key(s), 0 tensor(s) changed, 1 equal within atol 0.0, "
                                "0 only on one side"]


def test_the_report_in_colour(tmp_path: Path, capsys, monkeypatch) -> None:
    """On a terminal only the first line (the two paths) is bold; values are never highlighted."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    a, b = _pair(tmp_path, 0.5)
    code, out, _ = _run(capsys, monkeypatch, str(a), str(b))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"\x1b[1mapr diff {a} {b}\x1b[0m"
    assert all("\x1b" not in line for line in lines[1:])


def test_flags_on_both_sides_are_joined_alike(tmp_path: Path, capsys, monkeypatch) -> None:
    a, b = _pair(tmp_path, 0.0)
    _fake(monkeypatch, CheckpointDiff(a=str(a), b=str(b), atol=0.0, flags=(["SIGNED"], ["QUANTIZED", "HAS_VOCAB"])))
    code, out, _ = _run(capsys, monkeypatch, str(a), str(b))
    assert code == 1 and out.splitlines()[1] == "  flags: SIGNED -> QUANTIZED | HAS_VOCAB"
