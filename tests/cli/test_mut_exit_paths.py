"""Every documented exit code of the file-reading commands, each in text and ``--json`` mode (issue
23: "every exit code of every command asserted at least once, in text and --json mode").

In text mode a failure says so on stderr and leaves stdout empty; in ``--json`` mode stdout is one
JSON document: an ``error`` document whose ``exit_code`` is the code returned for 3/4/5/64, or,
for a command that judges a file (validate, qa, readiness), a report whose ``verdict`` and
``passed`` agree with the code (`apr validate`'s INVALID is 5, qa's and readiness' NO-GO is 1). The codes are aprender's (3 not found,
4 invalid format, 5 validation or refused overwrite), sysexits' 64 for usage, written out here.
(`apr diff`, `apr pretrain` and `apr publish` have their own exit-code tests beside their contracts.)
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from apr.cli.main import main
from tests.readiness.builders import build_checkpoint


def _files(tmp: Path) -> dict[str, Path]:
    garbage = tmp / "garbage.apr"
    garbage.write_bytes(b"APR\x00" + b"\x01" * 200)
    taken = tmp / "taken.out"
    taken.write_bytes(b"not ours to overwrite")
    return {"good": build_checkpoint(tmp / "m.apr", tokenizer=None), "garbage": garbage,
            "missing": tmp / "missing.apr", "taken": taken, "out": tmp / "new"}


Argv = Callable[[dict[str, Path]], list[str]]
CASES: list[tuple[str, Argv, int]] = [
    ("inspect ok", lambda f: ["inspect", str(f["good"])], 0),
    ("inspect missing", lambda f: ["inspect", str(f["missing"])], 3),
    ("inspect garbage", lambda f: ["inspect", str(f["garbage"])], 4),
    ("validate ok", lambda f: ["validate", str(f["good"])], 0),  # a report, verdict VALID
    ("validate missing", lambda f: ["validate", str(f["missing"])], 3),
    ("validate garbage", lambda f: ["validate", str(f["garbage"])], 5),  # a failed validation report
    ("stamp ok", lambda f: ["stamp", str(f["good"]), "--license", "MIT", "-o", str(f["out"]) + ".apr"], 0),
    ("stamp missing", lambda f: ["stamp", str(f["missing"]), "--license", "MIT", "-o", str(f["out"]) + ".apr"], 3),
    ("stamp garbage", lambda f: ["stamp", str(f["garbage"]), "--license", "MIT", "-o", str(f["out"]) + ".apr"], 4),
    ("stamp over a file", lambda f: ["stamp", str(f["good"]), "--license", "MIT", "-o", str(f["taken"])], 5),
    ("stamp without -o", lambda f: ["stamp", str(f["good"]), "--license", "MIT"], 64),
    ("export ok", lambda f: ["export", str(f["good"]), "-o", str(f["out"]) + ".gguf"], 0),
    ("export missing", lambda f: ["export", str(f["missing"]), "-o", str(f["out"]) + ".gguf"], 3),
    ("export garbage", lambda f: ["export", str(f["garbage"]), "-o", str(f["out"]) + ".gguf"], 4),
    ("export over a file", lambda f: ["export", str(f["good"]), "-o", str(f["taken"]), "--format", "gguf"], 5),
    ("export to stdout", lambda f: ["export", str(f["good"]), "-o", "-"], 64),
    ("import missing", lambda f: ["import", str(f["missing"]), "-o", str(f["out"]) + ".apr"], 3),
    ("import garbage", lambda f: ["import", str(f["garbage"]), "-o", str(f["out"]) + ".apr"], 5),
    ("card ok", lambda f: ["card", str(f["good"]), "-o", str(f["out"]) + ".md"], 0),
    ("card missing", lambda f: ["card", str(f["missing"]), "-o", str(f["out"]) + ".md"], 3),
    ("card garbage", lambda f: ["card", str(f["garbage"]), "-o", str(f["out"]) + ".md"], 4),
    ("card over a file", lambda f: ["card", str(f["good"]), "-o", str(f["taken"])], 5),
    ("run missing", lambda f: ["run", str(f["missing"]), "hello"], 3),
    ("run garbage", lambda f: ["run", str(f["garbage"]), "hello"], 4),
    ("qa missing", lambda f: ["qa", str(f["missing"])], 3),
    ("qa garbage", lambda f: ["qa", str(f["garbage"])], 1),  # NO-GO: a file that cannot be opened fails its gates
    ("readiness missing", lambda f: ["readiness", str(f["missing"])], 3),
    ("readiness garbage", lambda f: ["readiness", str(f["garbage"])], 1),
    ("contracts show unknown", lambda f: ["contracts", "show", "NO-SUCH-CONTRACT-1"], 3),
    ("a mistyped command", lambda f: ["inspekt", str(f["good"])], 64),
]


# The cases whose output is a report with a verdict, not an error document.
VERDICTS = {"validate ok": "VALID", "validate garbage": "INVALID", "qa garbage": "NO-GO", "readiness garbage": "NO-GO"}
def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exited:  # usage errors leave through argparse
            code = exited.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("name", "argv", "code"), [pytest.param(*case, id=case[0]) for case in CASES])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_each_command_exits_with_its_documented_code(tmp_path: Path, name: str, argv: Argv, code: int,
                                                     as_json: bool) -> None:
    files = _files(tmp_path)
    taken = files["taken"].read_bytes()
    got, out, err = _run(argv(files) + (["--json"] if as_json else []))
    assert got == code
    assert type(got) is int
    if as_json:
        document = json.loads(out)  # exactly one document: json.loads refuses anything after it
        if name in VERDICTS:
            assert "error" not in document
            assert document["verdict"] == VERDICTS[name] and document["passed"] is (code == 0)
        elif code >= 3:
            assert document["error"]["exit_code"] == code
        else:
            assert isinstance(document, dict) and "error" not in document
    elif name in VERDICTS:
        assert VERDICTS[name] in out
    elif code >= 3:
        assert out == ""  # a failure writes nothing a pipe would take for a result
        assert err.strip() != ""
    elif code == 0:
        assert out.strip() != "" or err.strip() != ""
    assert files["taken"].read_bytes() == taken  # never overwritten by a refused command
