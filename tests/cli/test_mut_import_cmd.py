"""`apr import` in-process (issue 23: the module had no mutation figure): which importer a source
goes to, what the command hands it, what its JSON and text say about the importer's report, the
dequantization note, and real imports whose JSON agrees with the file written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.stamp_builders import run_cli as _run
from tests.stamp_builders import stderr_lines as _lines
from apr.cli.import_cmd import dequantized_line
from apr.convert.hf_import import ImportReport
from apr.convert.targets import parse_import_quant


class _Importer:
    """Stands in for an importer: records its call, returns ``report``."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> ImportReport:
        self.calls.append((args, kwargs))
        return self.report


DEQUANTIZED = {"tensors": 2, "types": {"Q5_0": 1, "Q4_1": 1}, "stored_as": "F32", "source_bytes": 1000,
               "stored_bytes": 2500}
FULL = ImportReport(path="m.apr", source_format="gguf", tensor_count=4, file_size=1234567, param_count=9876543,
                    architecture="llama", hf_architecture="LlamaForCausalLM", has_vocab=True, quantize="q8",
                    tied_embeddings=False, fallbacks=("a: rows of 5: F16", "b: rows of 5: F16"),
                    dequantized=DEQUANTIZED)
BARE = ImportReport(path="m.apr", source_format="safetensors", tensor_count=1, file_size=10, param_count=5,
                    architecture=None, hf_architecture=None, has_vocab=False, quantize=None, tied_embeddings=True)


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_gguf_source_goes_to_the_gguf_importer_with_the_flags(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf, hf = _Importer(BARE), _Importer(BARE)
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", gguf)
    monkeypatch.setattr("apr.convert.hf_import.import_hf", hf)
    assert _run(["import", "m.gguf", "-o", "a.apr", "--quantize", "int8", "--force"])[0] == 0
    assert _run(["import", "M.GGUF", "-o", "b.apr", "--json"])[0] == 0  # the suffix in any case
    assert hf.calls == []
    (args1, kw1), (args2, kw2) = gguf.calls
    assert args1 == (Path("m.gguf"), "a.apr") and args2 == (Path("M.GGUF"), "b.apr")
    assert kw1["quantize"] == parse_import_quant("q8") and kw2["quantize"] is None
    assert kw1["force"] is True and kw2["force"] is False
    assert callable(kw1["progress"]) and kw2["progress"] is None  # no bar under --json


def test_a_gguf_source_refuses_another_tokenizer(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _Importer(BARE)
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", gguf)
    code, stdout, _ = _run(["import", "m.gguf", "-o", "a.apr", "--tokenizer", "tok", "--json"])
    assert code == 64 and gguf.calls == []
    error = json.loads(stdout)["error"]
    assert error["field"] == "--tokenizer" and error["hint"] == "drop --tokenizer for .gguf sources"


def test_a_folder_goes_to_the_hf_importer_with_the_flags(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf, hf = _Importer(BARE), _Importer(BARE)
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", gguf)
    monkeypatch.setattr("apr.convert.hf_import.import_hf", hf)
    assert _run(["import", "hf", "-o", "a.apr", "--quantize", "q4_k", "--tokenizer", "tok",
                 "--allow-no-config", "--force"])[0] == 0
    assert _run(["import", "w.safetensors", "-o", "b.apr", "--json"])[0] == 0
    assert gguf.calls == []
    (args1, kw1), (args2, kw2) = hf.calls
    assert args1 == (Path("hf"), "a.apr") and args2 == (Path("w.safetensors"), "b.apr")
    assert kw1["quantize"] == parse_import_quant("q4_k") and kw2["quantize"] is None
    assert kw1["tokenizer"] == "tok" and kw2["tokenizer"] is None
    assert kw1["allow_no_config"] is True and kw2["allow_no_config"] is False
    assert kw1["force"] is True and kw2["force"] is False
    assert callable(kw1["progress"]) and kw2["progress"] is None


def test_a_bad_quantize_is_refused_before_importing(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = _Importer(BARE)
    monkeypatch.setattr("apr.convert.hf_import.import_hf", hf)
    code, stdout, _ = _run(["import", "hf", "-o", "a.apr", "--quantize", "q3", "--json"])
    assert code == 64 and hf.calls == []
    assert json.loads(stdout)["error"]["field"] == "--quantize"


def test_the_text_report_says_everything_the_importer_reported(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", _Importer(FULL))
    code, stdout, stderr = _run(["import", "m.gguf", "-o", "m.apr"])
    assert code == 0
    assert stdout == ("m.apr: 4 tensors, 9,876,543 parameters, 1,234,567 bytes (llama, "
                      "hf_architecture='LlamaForCausalLM', tokenizer embedded)\n")
    assert _lines(stderr) == [f"note: {dequantized_line(DEQUANTIZED)}",
                              "note: 2 tensors fell back (rows of 5: F16), e.g. a"]


def test_a_bare_report_says_what_is_missing(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.hf_import.import_hf", _Importer(BARE))
    code, stdout, stderr = _run(["import", "hf", "-o", "m.apr"])
    assert code == 0
    assert stdout == ("m.apr: 1 tensors, 5 parameters, 10 bytes (unknown family, hf_architecture=None, "
                      "tokenizer MISSING)\n")
    assert _lines(stderr) == []


def test_the_json_report_uses_the_shared_names(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", _Importer(FULL))
    code, stdout, stderr = _run(["import", "m.gguf", "-o", "m.apr", "--json"])
    assert code == 0 and _lines(stderr) == []
    document = json.loads(stdout)
    assert document["schema"] == "apr.import/1" and document["input"] == "m.gguf"
    assert document["output"] == "m.apr" and document["bytes"] == 1234567
    assert "path" not in document and "file_size" not in document
    assert document["tensor_count"] == 4 and document["param_count"] == 9876543
    assert document["dequantized"] == DEQUANTIZED and document["fallbacks"] == list(FULL.fallbacks)


def test_the_dequantization_line_states_the_growth() -> None:
    assert dequantized_line(DEQUANTIZED) == (
        "dequantized 2 tensors (Q4_1 x1, Q5_0 x1) to F32: 1,000 bytes in the GGUF became 2,500 bytes (2.5x); "
        "ggml types APR holds raw (F32, F16, BF16, Q4_K, Q6_K) stay raw")
    assert "(infx)" in dequantized_line({**DEQUANTIZED, "source_bytes": 0})


# --- real imports -------------------------------------------------------------------------------------

def test_a_real_hf_import_reports_the_file_it_wrote(here: Path) -> None:
    from apr.format import open_file
    from tests.convert.tiny_hf import build_hf_folder, train_tokenizer

    train_tokenizer(here / "tok")
    folder = build_hf_folder(here / "hf", "qwen2", tokenizer_from=here / "tok")
    code, stdout, _ = _run(["import", str(folder), "-o", "m.apr", "--json"])
    assert code == 0
    document = json.loads(stdout)
    assert Path(document["output"]).resolve() == here / "m.apr"
    assert document["bytes"] == os.path.getsize(here / "m.apr")
    assert document["architecture"] == "qwen2" and document["has_vocab"] is True
    with open_file(here / "m.apr") as reader:
        assert document["tensor_count"] == len(list(reader.keys()))


def test_a_real_gguf_import_with_an_upper_case_suffix(here: Path) -> None:
    from tests.readiness.builders import build_checkpoint

    build_checkpoint(here / "m.apr", tokenizer=None)
    assert _run(["export", "m.apr", "-o", "m.gguf"])[0] == 0
    os.rename("m.gguf", "M.GGUF")
    code, stdout, _ = _run(["import", "M.GGUF", "-o", "back.apr", "--json"])
    assert code == 0
    document = json.loads(stdout)
    assert document["source_format"] == "gguf"
    assert document["bytes"] == os.path.getsize(here / "back.apr")


def test_names_from_the_files_are_printed_literally(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths, architecture and tensor names come from the user's files: a ``[bold]`` is text, not markup."""
    report = ImportReport(path="o[bold].apr", source_format="gguf", tensor_count=1, file_size=10, param_count=5,
                          architecture="ll[bold]ama", hf_architecture="X[red]", has_vocab=True, quantize=None,
                          tied_embeddings=False, fallbacks=("t[bold]: odd: F32",),
                          dequantized={**DEQUANTIZED, "stored_as": "F[bold]32"})
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", _Importer(report))
    code, stdout, stderr = _run(["import", "m.gguf", "-o", "m.apr"])
    assert code == 0
    assert stdout == "o[bold].apr: 1 tensors, 5 parameters, 10 bytes (ll[bold]ama, hf_architecture='X[red]', " \
                     "tokenizer embedded)\n"
    assert _lines(stderr) == [f"note: {dequantized_line(report.dequantized)}",
                              "note: 1 tensor fell back (odd: F32), e.g. t[bold]"]
    assert "F[bold]32" in _lines(stderr)[0]


def test_the_tokenizer_refusal_says_what_it_refuses(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.convert.gguf_import.import_gguf", _Importer(BARE))
    code, stdout, _ = _run(["import", "m.gguf", "-o", "a.apr", "--tokenizer", "tok", "--json"])
    assert code == 64 and "--tokenizer" in json.loads(stdout)["error"]["message"]
