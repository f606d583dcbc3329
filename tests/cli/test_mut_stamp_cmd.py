"""`apr stamp`'s command module (apr/cli/stamp_cmd.py), issue 23: the flag combinations it refuses
(usage, 64) before reading anything, the ``--json`` document's keys and values, `--recover`, and the
text report.

Each expected value is derived from the input file and the flags (sizes from the file system,
flags and metadata read back with `apr.format.open_file`), never from the command's own output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apr.cli.main import main
from apr.format import open_file, save_file
from tests.stamp_builders import write_tokenizer_json

TENSORS = {"a.weight": np.arange(12, dtype=np.float32).reshape(3, 4), "b.weight": np.ones(5, np.float32)}
DATA_BYTES = 64 + 64  # the data section: 48 and 20 payload bytes, each padded to a 64-byte boundary


def _file(path: Path, metadata: dict | None = None) -> Path:
    save_file(TENSORS, path, metadata if metadata is not None else {"name": "old"}, durable=False)
    return path


def _stamp(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    try:
        code = main(["stamp", *argv])
    except SystemExit as exited:  # argparse's own usage errors
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("argv", "field"), [
    ([], "-o"),                                      # neither -o nor --in-place
    (["--in-place", "--force"], "--force"),          # --force is for -o
    (["--in-place", "--allow-damaged"], "--allow-damaged"),
    (["--allow-damaged"], "-o"),                     # no -o: the missing -o is named first
])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_flag_combinations_refused_before_anything_is_read(tmp_path: Path, capsys, monkeypatch, argv, field: str,
                                                           as_json: bool) -> None:
    src = _file(tmp_path / "m.apr")
    before = src.read_bytes()
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--license", "MIT", *argv, *(["--json"] if as_json else []))
    assert code == 64 and src.read_bytes() == before
    if as_json:
        error = json.loads(out)["error"]
        assert error["exit_code"] == 64 and error["field"] == field
        assert (error["message"], error["hint"]) == {
            "-o": ("apr stamp needs -o OUT or --in-place",
                   f"apr stamp {src} ... -o stamped.apr   (or --in-place to stamp the file itself)"),
            "--force": ("--force applies to -o only", "drop --force"),
            "--allow-damaged": ("--allow-damaged applies to -o only",
                                "an in-place stamp never reads tensor data; drop --allow-damaged"),
        }[field]
    else:
        assert out == "" and "Reading" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.apr"]


def test_the_json_document_of_a_stamped_copy(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr", {"name": "old", "description": ""})
    out_path = tmp_path / "out.apr"
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--license", "mit", "--data-source", "the-stack",
                            "--hf-model-type", "qwen2", "-o", str(out_path), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    with open_file(out_path) as reader:
        flags, meta = int(reader.flags), dict(reader.metadata)
    assert meta["license"] == "MIT"  # canonical
    assert doc["schema"] == "apr.stamp/1" and doc["command"] == "stamp" and doc["ok"] is True
    assert doc["exit_code"] == 0 and doc["input"] == str(src) and doc["output"] == str(out_path)
    assert doc["input_bytes"] == src.stat().st_size and doc["output_bytes"] == out_path.stat().st_size
    assert doc["tensor_count"] == 2 and doc["header_flags_bits"] == flags
    assert doc["stamped"] == {"license": "MIT", "data_source": "the-stack", "data_license": None,
                              "hf_architecture": None, "hf_model_type": "qwen2", "architecture": None,
                              "name": "old", "description": None}  # "" is shown as unset
    assert doc["tokenizer_vocab_size"] is None
    assert doc["mode"] == "rewrite" and doc["unchanged"] is False and doc["recovered"] == "none"
    assert doc["tensor_bytes_copied"] == DATA_BYTES and doc["copy_method"] in ("copy_file_range", "sendfile", "read/write")
    assert isinstance(doc["elapsed_ms"], float) and doc["elapsed_ms"] >= 0
    assert doc["elapsed_ms"] == round(doc["elapsed_ms"], 3)
    assert doc["damaged"] is None


def test_in_place_then_unchanged(tmp_path: Path, capsys, monkeypatch) -> None:
    """A second identical in-place stamp writes nothing: mode stays "in-place", ``unchanged`` true."""
    src = _file(tmp_path / "m.apr")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--name", "new", "--in-place", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "in-place" and doc["unchanged"] is False and doc["output"] == str(src)
    assert doc["tensor_bytes_copied"] == 0 and doc["copy_method"] == "none"
    before = src.read_bytes()
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--name", "new", "--in-place", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "in-place" and doc["unchanged"] is True and src.read_bytes() == before


def test_a_tokenizer_is_counted(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    folder = write_tokenizer_json(tmp_path / "tok")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--tokenizer", folder, "-o", str(tmp_path / "o.apr"),
                          "--json")
    assert code == 0
    with open_file(tmp_path / "o.apr") as reader:
        vocabulary = reader.metadata["tokenizer.vocabulary"]
    assert json.loads(out)["tokenizer_vocab_size"] == len(vocabulary) == 9


def test_an_output_inside_the_tokenizer_folder_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    folder = write_tokenizer_json(tmp_path / "tok")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--tokenizer", folder, "-o", folder, "--force", "--json")
    assert code == 5 and json.loads(out)["error"]["exit_code"] == 5
    assert (Path(folder) / "tokenizer.json").is_file()


def test_licenses_are_checked_and_strict_refuses_free_text(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--license", "not-a-license", "-o", str(tmp_path / "a.apr"),
                          "--json")
    assert code == 5 and json.loads(out)["error"]["field"] == "--license" and not (tmp_path / "a.apr").exists()
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--data-license", "CC-BY (captions)", "-o",
                          str(tmp_path / "b.apr"), "--json")
    assert code == 0 and json.loads(out)["stamped"]["data_license"] == "CC-BY (captions)"
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--data-license", "CC-BY (captions)", "--strict", "-o",
                          str(tmp_path / "c.apr"), "--json")
    assert code == 5 and not (tmp_path / "c.apr").exists()
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--data-license", "apache-2.0", "--strict", "-o",
                          str(tmp_path / "d.apr"), "--json")
    assert code == 0 and json.loads(out)["stamped"]["data_license"] == "Apache-2.0"


def test_every_field_flag_reaches_the_file(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    code, _, _ = _stamp(capsys, monkeypatch, str(src), "--license", "Apache-2.0", "--data-source", "ds",
                        "--data-license", "MIT", "--hf-architecture", "Qwen2ForCausalLM", "--hf-model-type", "qwen2",
                        "--architecture", "qwen2", "--name", "n", "--description", "d", "-o", str(tmp_path / "o.apr"))
    assert code == 0
    with open_file(tmp_path / "o.apr") as reader:
        meta = dict(reader.metadata)
    assert {k: meta[k] for k in ("license", "data_source", "data_license", "hf_architecture", "hf_model_type",
                                 "architecture", "name", "description")} == {
        "license": "Apache-2.0", "data_source": "ds", "data_license": "MIT", "hf_architecture": "Qwen2ForCausalLM",
        "hf_model_type": "qwen2", "architecture": "qwen2", "name": "n", "description": "d"}


def test_force_replaces_an_existing_output(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    taken = tmp_path / "o.apr"
    taken.write_bytes(b"old")
    code, _, _ = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(taken))
    assert code == 5 and taken.read_bytes() == b"old"
    code, _, _ = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(taken), "-f")
    assert code == 0 and taken.read_bytes() != b"old"


def test_the_text_report(tmp_path: Path, capsys, monkeypatch) -> None:
    """Every line plain, on a colour terminal too (nothing from the file is markup or highlighted)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    src = _file(tmp_path / "m[i]x.apr")
    out_path = tmp_path / "o.apr"
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--license", "MIT", "--data-source", "[b]ds 42", "--name",
                            "n", "--description", "[i]d 7", "--tokenizer", write_tokenizer_json(tmp_path / "tok"), "-o", str(out_path))
    assert code == 0
    assert out.splitlines() == [
        f"✓ Stamped {src} → {out_path} (2 tensors, {src.stat().st_size} → {out_path.stat().st_size} bytes)",
        f"  {'license:':<16} MIT",
        f"  {'data_source:':<16} [b]ds 42",
        f"  {'data_license:':<16} (unset)",
        f"  {'hf_architecture:':<16} (unset)",
        f"  {'hf_model_type:':<16} (unset)",
        f"  {'architecture:':<16} (unset)",
        f"  {'name:':<16} n",
        f"  {'description:':<16} [i]d 7",
        f"  {'tokenizer:':<16} 9 tokens, 3 merges (HAS_VOCAB)",
    ]
    lines = err.splitlines()
    assert lines[0] == f"Reading {src}"
    assert lines[1].startswith(f"  {DATA_BYTES} tensor bytes copied (") and lines[1].endswith(" ms")
    assert len(lines) == 2


def test_the_text_report_without_name_in_place(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr", {})
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--license", "MIT", "--in-place")
    assert code == 0
    assert len(out.splitlines()) == 7  # the stamped line and the six shown fields: no name, description, tokenizer
    assert err.splitlines()[1].startswith("  header and metadata rewritten in place; ")
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--license", "MIT", "--in-place")
    assert code == 0 and err.splitlines()[1].startswith("  already stamped with these values; nothing written; ")


def test_a_damaged_input_salvaged_says_so(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m.apr")
    data = bytearray(src.read_bytes())
    data[-20] ^= 0xFF
    src.write_bytes(bytes(data))
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(tmp_path / "a.apr"), "--json")
    assert code == 5 and not (tmp_path / "a.apr").exists()
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(tmp_path / "b.apr"),
                          "--allow-damaged", "--json")
    assert code == 0
    damaged = json.loads(out)["damaged"]
    assert damaged["path"] == str(src) and damaged["tensors_carried_over"] == 2
    assert damaged["footer_stored"] != damaged["footer_computed"]
    code, out, err = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(tmp_path / "c.apr"),
                            "--allow-damaged")
    assert code == 0
    assert err.splitlines()[-1].startswith(f"warning: {src}: damaged input stamped (--allow-damaged): all 2 tensors")
    assert err.splitlines()[-1].endswith("; the output's footer keeps the mismatch")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_recover_with_nothing_to_recover(tmp_path: Path, capsys, monkeypatch, as_json: bool) -> None:
    src = _file(tmp_path / "m.apr")
    before = src.read_bytes()
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--recover", *(["--json"] if as_json else []))
    assert code == 0 and src.read_bytes() == before
    if as_json:
        doc = json.loads(out)
        assert doc["recovered"] == "none" and doc["command"] == "stamp" and doc["input"] == str(src)
        assert doc["exit_code"] == 0
    else:
        assert out == f"✓ {src}: nothing to recover\n"


def test_recover_texts(tmp_path: Path, capsys, monkeypatch) -> None:
    """Each outcome of the recovery in words (the outcomes themselves: tests/stamp/)."""
    import apr.stamp

    monkeypatch.setenv("FORCE_COLOR", "1")  # plain on a colour terminal too: the path is never highlighted
    monkeypatch.setenv("TERM", "xterm")
    src = _file(tmp_path / "m.apr")
    for outcome, text in (("rolled-back", "interrupted stamp rolled back; the file is as before it"),
                          ("stale", "removed a stale journal; the file was not touched")):
        monkeypatch.setattr(apr.stamp, "recover_file", lambda path, outcome=outcome: outcome)
        code, out, _ = _stamp(capsys, monkeypatch, str(src), "--recover")
        assert code == 0 and out == f"✓ {src}: {text}\n"


def test_the_json_keys_exactly(tmp_path: Path, capsys, monkeypatch) -> None:
    """The envelope's keys then the stamp's, and nothing else (docs/json.md)."""
    src = _file(tmp_path / "m.apr")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--name", "n", "-o", str(tmp_path / "o.apr"), "--json")
    assert code == 0
    assert list(json.loads(out)) == [
        "schema", "command", "input", "ok", "exit_code", "output", "input_bytes", "output_bytes", "tensor_count",
        "stamped", "tokenizer_vocab_size", "header_flags_bits", "mode", "unchanged", "copy_method",
        "tensor_bytes_copied", "recovered", "elapsed_ms", "damaged"]


def test_recover_prints_a_path_with_markup_literally(tmp_path: Path, capsys, monkeypatch) -> None:
    src = _file(tmp_path / "m[i]x.apr")
    code, out, _ = _stamp(capsys, monkeypatch, str(src), "--recover")
    assert code == 0 and out == f"✓ {src}: nothing to recover\n"


def test_the_damaged_input_warning_prints_its_path_literally(tmp_path: Path, capsys, monkeypatch) -> None:
    """On a colour terminal too: the path is data, never markup, and no number in the line is highlighted."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    src = _file(tmp_path / "m[i]x.apr")
    data = bytearray(src.read_bytes())
    data[-20] ^= 0xFF
    src.write_bytes(bytes(data))
    code, _, err = _stamp(capsys, monkeypatch, str(src), "--name", "x", "-o", str(tmp_path / "c.apr"), "--allow-damaged")
    assert code == 0
    warning = err.splitlines()[-1]
    assert warning.startswith(f"warning: {src}: damaged input stamped (--allow-damaged): all 2 tensors")
    assert warning.endswith("; the output's footer keeps the mismatch") and "\x1b" not in warning
