"""`apr export` in-process (issue 23: the module had no mutation figure): the format chosen from
``--format`` and OUT's name, what the command hands the exporter, what its JSON and text say about
the exporter's report, and real exports whose JSON agrees with the files on disk."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.stamp_builders import run_cli as _run
from tests.stamp_builders import stderr_lines as _lines
from apr.cli.export_cmd import export_format, stream_name
from apr.convert.gguf_export import GgufQuant
from apr.convert.hf_export import ExportReport
from apr.errors import UsageError
from apr.format.footer_check import Damage
from tests.readiness.builders import build_checkpoint


@pytest.fixture()
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return build_checkpoint(tmp_path / "m.apr", tokenizer=None)


# --- the format -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "output", "expected"), [
    (None, "m.gguf", "gguf"),
    (None, "M.GGUF", "gguf"),
    (None, "out", "safetensors"),
    (None, "out.d/model", "safetensors"),
    ("gguf", "m.gguf", "gguf"),
    ("gguf", "folder", "gguf"),  # the output policy refuses a folder later, not this
    ("safetensors", "folder", "safetensors"),
])
def test_the_format_follows_the_flag_or_outs_name(given: str | None, output: str, expected: str) -> None:
    assert export_format(given, output) == expected


@pytest.mark.parametrize(("given", "output", "field"), [
    (None, "-", "--output"),
    ("gguf", "-", "--output"),
    (None, "m.safetensors", "--output"),
    ("safetensors", "m.SAFETENSORS", "--output"),
    ("safetensors", "m.gguf", "--format"),
    ("safetensors", "m.GGUF", "--format"),
])
def test_contradictions_are_usage_errors_naming_the_flag(given: str | None, output: str, field: str) -> None:
    with pytest.raises(UsageError) as refused:
        export_format(given, output)
    assert refused.value.field == field and refused.value.exit_code == 64
    assert refused.value.hint


def test_a_single_safetensors_name_is_refused_with_the_folder_to_name_instead() -> None:
    with pytest.raises(UsageError) as refused:
        export_format(None, "out/m.safetensors")
    assert refused.value.hint == "name the folder: -o out/m"


def test_only_a_gguf_export_streams() -> None:
    assert stream_name(argparse.Namespace(format="gguf")) == "model.gguf"
    assert export_format("gguf", stream_name(argparse.Namespace(format="gguf"))) == "gguf"
    for given in (None, "safetensors"):
        with pytest.raises(UsageError) as refused:
            stream_name(argparse.Namespace(format=given))
        assert refused.value.field == "--output" and refused.value.hint


# --- what the command hands the exporter and says about its report -------------------------------------

class _Exporter:
    """Stands in for an exporter: records its call, returns ``report``."""

    def __init__(self, report: ExportReport) -> None:
        self.report = report
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> ExportReport:
        self.calls.append((args, kwargs))
        return self.report


DAMAGE = Damage(path="m.apr", footer_stored=0x11, footer_computed=0x22, tensors=3)
FULL = ExportReport(path="m.gguf", format="gguf", tensor_count=3, file_size=12345, quantize="q4_k",
                    fallbacks=("a: rows of 5: F16", "b: rows of 5: F16", "c: odd: F32"),
                    quant_error={"Q6_K": 0.001, "Q4_K": 0.0123}, damaged=DAMAGE)
PLAIN = ExportReport(path="out", format="safetensors", tensor_count=7, file_size=999)


def test_gguf_is_handed_the_flags(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = _Exporter(PLAIN)
    monkeypatch.setattr("apr.convert.gguf_export.export_gguf", exporter)
    assert _run(["export", "m.apr", "-o", "m.gguf", "--quantize", "Q8_0", "--force", "--allow-damaged"])[0] == 0
    assert _run(["export", "m.apr", "-o", "n.gguf", "--json"])[0] == 0
    (args1, kw1), (args2, kw2) = exporter.calls
    assert args1 == ("m.apr", "m.gguf") and args2 == ("m.apr", "n.gguf")
    assert kw1["quantize"] is GgufQuant.Q8_0 and kw2["quantize"] is GgufQuant.F32
    assert kw1["force"] is True and kw2["force"] is False
    assert kw1["allow_damaged"] is True and kw2["allow_damaged"] is False
    assert callable(kw1["progress"]) and kw2["progress"] is None  # no bar under --json


def test_safetensors_is_handed_the_flags(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = _Exporter(PLAIN)
    monkeypatch.setattr("apr.convert.hf_export.export_safetensors", exporter)
    assert _run(["export", "m.apr", "-o", "out", "--force", "--allow-damaged"])[0] == 0
    assert _run(["export", "m.apr", "--format", "safetensors", "-o", "out2", "--json"])[0] == 0
    (args1, kw1), (args2, kw2) = exporter.calls
    assert args1 == ("m.apr", "out") and args2 == ("m.apr", "out2")
    assert kw1["force"] is True and kw2["force"] is False
    assert kw1["allow_damaged"] is True and kw2["allow_damaged"] is False
    assert callable(kw1["progress"]) and kw2["progress"] is None


def test_safetensors_refuses_quantize_before_exporting(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = _Exporter(PLAIN)
    monkeypatch.setattr("apr.convert.hf_export.export_safetensors", exporter)
    code, stdout, _ = _run(["export", "m.apr", "-o", "out", "--quantize", "q8_0", "--json"])
    assert code == 64 and exporter.calls == []
    error = json.loads(stdout)["error"]
    assert error["field"] == "--quantize" and error["hint"]


def test_the_text_report_says_everything_the_exporter_reported(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.gguf_export.export_gguf", _Exporter(FULL))
    code, stdout, stderr = _run(["export", "m.apr", "-o", "m.gguf"])
    assert code == 0
    assert stdout == ("m.gguf: gguf, 3 tensors, 12,345 bytes, q4_k\n"
                      "  Q4_K: worst relative RMSE 1.2300%\n"
                      "  Q6_K: worst relative RMSE 0.1000%\n")
    assert _lines(stderr) == ["note: 2 tensors fell back (rows of 5: F16), e.g. a",
                              "note: 1 tensor fell back (odd: F32), e.g. c",
                              f"warning: m.apr: damaged input exported (--allow-damaged): {DAMAGE.carried_over}"]


def test_an_intact_unquantized_export_says_one_line(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.hf_export.export_safetensors", _Exporter(PLAIN))
    code, stdout, stderr = _run(["export", "m.apr", "-o", "out"])
    assert (code, stdout, _lines(stderr)) == (0, "out: safetensors, 7 tensors, 999 bytes\n", [])


def test_the_json_report_uses_the_shared_names(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.gguf_export.export_gguf", _Exporter(FULL))
    code, stdout, stderr = _run(["export", "m.apr", "-o", "m.gguf", "--json"])
    assert code == 0 and stderr == ""
    document = json.loads(stdout)
    assert document["schema"] == "apr.export/1" and document["input"] == "m.apr"
    assert document["output"] == "m.gguf" and document["bytes"] == 12345
    assert "path" not in document and "file_size" not in document
    assert document["format"] == "gguf" and document["tensor_count"] == 3 and document["quantize"] == "q4_k"
    assert document["quant_error"] == {"Q6_K": 0.001, "Q4_K": 0.0123}
    assert document["fallbacks"] == list(FULL.fallbacks)
    assert document["damaged"] == DAMAGE.to_dict()


# --- real exports -------------------------------------------------------------------------------------

def test_a_real_gguf_export_reports_the_file_it_wrote(model: Path) -> None:
    from apr.format import open_file

    code, stdout, _ = _run(["export", "m.apr", "-o", "m.gguf", "--json"])
    assert code == 0
    document = json.loads(stdout)
    assert document["format"] == "gguf" and Path(document["output"]) == model.parent / "m.gguf"
    assert document["bytes"] == os.path.getsize("m.gguf")
    with open_file(model) as reader:
        assert document["tensor_count"] == len(list(reader.keys()))
    assert Path("m.gguf").read_bytes()[:4] == b"GGUF"


def test_a_real_export_over_a_foreign_file_is_refused(model: Path) -> None:
    Path("taken.gguf").write_bytes(b"someone else's")
    code, stdout, _ = _run(["export", "m.apr", "-o", "taken.gguf", "--json"])
    assert code == 5 and json.loads(stdout)["error"]["exit_code"] == 5
    assert Path("taken.gguf").read_bytes() == b"someone else's"


def test_names_from_the_file_are_printed_literally(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths and tensor names come from the user's files: a ``[bold]`` in one is text, not markup."""
    damage = Damage(path="d[bold].apr", footer_stored=1, footer_computed=2, tensors=1)
    report = ExportReport(path="o[bold].gguf", format="gguf", tensor_count=1, file_size=5, quantize="q[red]",
                          fallbacks=("t[bold]: odd: F32",), quant_error={"Q[bold]": 0.5}, damaged=damage)
    monkeypatch.setattr("apr.convert.gguf_export.export_gguf", _Exporter(report))
    code, stdout, stderr = _run(["export", "m.apr", "-o", "m.gguf"])
    assert code == 0
    assert stdout == "o[bold].gguf: gguf, 1 tensors, 5 bytes, q[red]\n  Q[bold]: worst relative RMSE 50.0000%\n"
    assert _lines(stderr) == ["note: 1 tensor fell back (odd: F32), e.g. t[bold]",
                              f"warning: d[bold].apr: damaged input exported (--allow-damaged): {damage.carried_over}"]


def test_the_format_flag_decides_over_outs_name(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf, folder = _Exporter(FULL), _Exporter(PLAIN)
    monkeypatch.setattr("apr.convert.gguf_export.export_gguf", gguf)
    monkeypatch.setattr("apr.convert.hf_export.export_safetensors", folder)
    assert _run(["export", "m.apr", "--format", "gguf", "-o", "model.bin"])[0] == 0
    assert [c[0] for c in gguf.calls] == [("m.apr", "model.bin")] and folder.calls == []
    code, stdout, _ = _run(["export", "m.apr", "--format", "safetensors", "-o", "m.gguf", "--json"])
    assert code == 64 and json.loads(stdout)["error"]["field"] == "--format"
    assert len(gguf.calls) == 1 and folder.calls == []


def test_the_quantize_refusal_names_the_flag(model: Path) -> None:
    code, stdout, _ = _run(["export", "m.apr", "-o", "out", "--quantize", "q8_0", "--json"])
    assert code == 64 and "--quantize" in json.loads(stdout)["error"]["message"]


def test_the_dash_refusal_says_standard_output() -> None:
    with pytest.raises(UsageError) as refused:
        export_format("gguf", "-")
    assert "standard output" in refused.value.message


def test_the_refusals_name_what_was_given() -> None:
    with pytest.raises(UsageError) as single:
        export_format(None, "out/m.safetensors")
    assert "'out/m.safetensors'" in single.value.message
    with pytest.raises(UsageError) as contradiction:
        export_format("safetensors", "m.gguf")
    assert "--format safetensors" in contradiction.value.message and "'m.gguf'" in contradiction.value.message
