"""`apr inspect`'s command module (apr/cli/inspect_cmd.py), issue 23: the inspect document's keys and
values (aprender's InspectResult plus header, provenance and tensor table), the quality block, and
the text report.

`inspect_document` is checked on a stand-in reader whose header, metadata and entries are given
here (any flag bit can be set), so each expected key follows from the reader's fields; the command
itself on real files, its numbers compared with what `apr.format.open_file` and
`apr.identity.quality.score_quality` say about the same file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from apr.cli.inspect_cmd import _human_size, inspect_document
from apr.cli.main import main
from apr.format import open_file, save_file
from apr.identity.explain import attainable_score, explain_quality, license_notes
from apr.identity.quality import score_quality

BITS = {"lz4_compressed": 0x0001, "zstd_compressed": 0x0002, "encrypted": 0x0004, "signed": 0x0008,
        "sharded": 0x0010, "quantized": 0x0020, "has_vocab": 0x0200}


def _reader(metadata: dict, flags: int = 0, path: str | None = "m.apr") -> SimpleNamespace:
    header = SimpleNamespace(version=(2, 1), tensor_count=2, flags=flags, metadata_offset=64, metadata_size=300,
                             tensor_index_offset=384, data_offset=512, checksum=0xABC)
    entries = [SimpleNamespace(name="a", dtype=SimpleNamespace(label="F32"), shape=(2, 3), offset=0, size=24),
               SimpleNamespace(name="b", dtype=SimpleNamespace(label="Q8_0"), shape=(32,), offset=64, size=34)]
    return SimpleNamespace(path=path, header=header, metadata=metadata, file_size=4096, is_checksum_valid=False,
                           entries=entries, keys=lambda: ["a", "b"])


@pytest.mark.parametrize("flag", list(BITS))
def test_each_flag_is_its_own_bit(flag: str) -> None:
    doc = inspect_document(_reader({}, flags=BITS[flag] | 0x0400), quality=False, explain=False)
    assert doc["flags"] == {name: name == flag for name in BITS}
    assert doc["flags_bits"] == BITS[flag] | 0x0400 and doc["header"]["flags"] == BITS[flag] | 0x0400


def test_the_document_of_a_sparse_file() -> None:
    """Keys aprender always writes are null when unset ("" counts as unset); the rest are left out;
    architecture is "unknown" when unset; param_count only when non-zero."""
    doc = inspect_document(_reader({"license": "", "param_count": 0, "name": "", "vocab_size": ""}),
                           quality=False, explain=False)
    assert doc == {
        "input": "m.apr", "valid": True, "format": "APR v2", "version": "2.1", "tensor_count": 2, "bytes": 4096,
        "checksum_valid": False,
        "flags": dict.fromkeys(BITS, False), "flags_bits": 0,
        "metadata": {"license": None, "data_source": None, "data_license": None, "architecture": "unknown",
                     "hf_architecture": None, "hf_model_type": None},
        "provenance": {"license": None, "data_source": None, "data_license": None},
        "header": {"flags": 0, "tensor_count": 2, "metadata_offset": 64, "metadata_size": 300,
                   "tensor_index_offset": 384, "data_offset": 512, "checksum": "0x00000abc"},
        "tensors": [{"name": "a", "dtype": "F32", "shape": [2, 3], "offset": 0, "size": 24},
                    {"name": "b", "dtype": "Q8_0", "shape": [32], "offset": 64, "size": 34}],
    }


FULL = {"model_type": "qwen2", "name": "n", "description": "d", "author": "a", "license": "MIT",
        "data_source": "ds", "data_license": "CC0-1.0", "source": "hf://x", "original_format": "safetensors",
        "created_at": "2026-01-01", "architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM",
        "hf_model_type": "qwen2", "param_count": 1234, "vocab_size": 120, "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64, "max_position_embeddings": 128,
        "rope_theta": 10000.0, "chat_template": "{{x}}", "chat_format": "chatml", "special_tokens": {"eos": 1},
        "source_metadata": {"k": "v"}, "unlisted": "not shown"}


def test_the_document_of_a_full_file() -> None:
    doc = inspect_document(_reader(dict(FULL)), quality=False, explain=False)
    for key in ("architecture", "num_layers", "num_heads", "hidden_size", "vocab_size"):
        assert doc[key] == FULL[key]
    assert doc["metadata"] == {k: v for k, v in FULL.items() if k != "unlisted"}
    assert list(doc["metadata"]) == [k for k in FULL if k != "unlisted"]  # aprender's order
    assert doc["provenance"] == {"license": "MIT", "data_source": "ds", "data_license": "CC0-1.0"}
    assert "quality" not in doc


@pytest.mark.parametrize("explain", [False, True])
def test_the_quality_block(explain: bool) -> None:
    metadata = {"license": "MIT", "data_license": "some free text"}
    doc = inspect_document(_reader(dict(metadata), flags=0x0200), quality=True, explain=explain)
    score = score_quality(checksum_valid=False, metadata=metadata, flags=0x0200)
    expected = score.to_dict()
    if explain:
        expected["explain"] = [a.to_dict() for a in explain_quality(score, path="m.apr",
                                                                    tensor_names=["a", "b"])]
        expected["attainable_score"] = attainable_score(score)
        expected["notes"] = license_notes(metadata)
        assert expected["notes"]  # the free-text data license gets a note
    assert doc["quality"] == expected


def test_explain_without_a_path_names_file() -> None:
    doc = inspect_document(_reader({}, path=None), quality=True, explain=True)
    commands = [a["command"] for a in doc["quality"]["explain"] if a["command"]]
    assert commands and all(" FILE " in c for c in commands)


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
                                          (1024 ** 2 - 1, "1024.0 KiB"), (1024 ** 2, "1.0 MiB"), (1024 ** 3, "1.0 GiB"),
                                          (5 * 1024 ** 4, "5.0 TiB"), (1024 ** 5, "1024.0 TiB")])
def test_human_sizes(n: int, text: str) -> None:
    assert _human_size(n) == text


# --- the command on real files --------------------------------------------------------------------


def _file(path: Path, metadata: dict, flags: int = 0) -> Path:
    tensors = {"x.weight": np.ones((2, 3), np.float32), "y.weight": np.arange(4, dtype=np.float32),
               "z.bias": np.arange(3, dtype=np.float16)}
    save_file(tensors, path, metadata, flags, durable=False)
    return path


def _inspect(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    code = main(["inspect", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _rows(out: str) -> dict[str, str]:
    """The text report's "label  value" rows (label and value split at the first run of 2+ spaces)."""
    rows = {}
    for line in out.splitlines():
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) == 2:
            rows[parts[0]] = parts[1]
    return rows


def test_json_of_a_real_file(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _file(tmp_path / "m.apr", {"license": "MIT", "name": "n"})
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--json")
    assert code == 0
    doc = json.loads(out)
    with open_file(path) as reader:
        header, size = reader.header, reader.file_size
    assert doc["schema"] == "apr.inspect/1" and doc["command"] == "inspect" and doc["input"] == str(path)
    assert doc["exit_code"] == 0 and doc["ok"] is True and doc["bytes"] == size == path.stat().st_size
    assert doc["header"]["data_offset"] == header.data_offset and doc["checksum_valid"] is True
    assert [t["name"] for t in doc["tensors"]] == ["x.weight", "y.weight", "z.bias"]
    assert "quality" not in doc and "_show_tensors" not in doc


@pytest.mark.parametrize(("flags", "quality", "explain"), [([], False, False), (["--quality"], True, False),
                                                           (["--explain"], True, True),
                                                           (["--quality", "--explain"], True, True)])
def test_quality_and_explain_flags(tmp_path: Path, capsys, monkeypatch, flags, quality: bool, explain: bool) -> None:
    """--explain implies --quality."""
    path = _file(tmp_path / "m.apr", {"license": "MIT"})
    _, out, _ = _inspect(capsys, monkeypatch, str(path), *flags, "--json")
    doc = json.loads(out)
    assert ("quality" in doc) is quality
    assert ("explain" in doc.get("quality", {})) is explain


def test_a_damaged_header_is_inspected_with_its_checksum_invalid(tmp_path: Path, capsys, monkeypatch) -> None:
    """inspect opens without checking the header CRC and reports it (bytes 40..44 hold it)."""
    path = _file(tmp_path / "m.apr", {})
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--json")
    assert code == 0 and json.loads(out)["checksum_valid"] is False
    code, out, _ = _inspect(capsys, monkeypatch, str(path))
    assert code == 0 and _rows(out)["Checksum"] == "INVALID"


def test_the_text_report(tmp_path: Path, capsys, monkeypatch) -> None:
    meta = {"license": "MIT", "data_source": "ds", "architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM",
            "hf_model_type": "qwen2", "param_count": 1234, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
            "num_kv_heads": 1, "intermediate_size": 64, "vocab_size": 120, "max_position_embeddings": 128,
            "rope_theta": 10000.0}
    path = _file(tmp_path / "m.apr", meta, flags=0x0020 | 0x0200)
    code, out, _ = _inspect(capsys, monkeypatch, str(path))
    assert code == 0
    with open_file(path) as reader:
        off, size = reader.header.data_offset, reader.file_size
    lines = out.splitlines()
    assert lines[0] == str(path)
    rows = _rows(out)
    assert rows["Format"] == "APR v2" and rows["Version"] == "2.0" and rows["Tensors"] == "3"
    assert rows["Size"] == f"{_human_size(size)} ({size} bytes)" and rows["Checksum"] == "VALID"
    assert rows["Data Offset"] == f"0x{off:x} ({off})" and rows["Flags"] == "QUANTIZED | HAS_VOCAB"
    assert "  Architecture:" in lines and "  Provenance:" in lines
    assert {k: rows[k] for k in ("Family:", "HF Class:", "HF model_type:", "Parameters:", "Hidden Size", "Layers",
                                 "Attention Heads", "KV Heads", "Intermediate Size", "Vocab Size", "Max Position",
                                 "RoPE Theta")} == {
        "Family:": "qwen2", "HF Class:": "Qwen2ForCausalLM", "HF model_type:": "qwen2", "Parameters:": "1234",
        "Hidden Size": "32", "Layers": "1", "Attention Heads": "2", "KV Heads": "1", "Intermediate Size": "64",
        "Vocab Size": "120", "Max Position": "128", "RoPE Theta": "10000.0"}
    assert "    license: MIT" in lines and "    data_source: ds" in lines and "    data_license: (missing)" in lines
    assert "  Tensors: 1 F16, 2 F32" in lines
    assert not any("Quality" in line for line in lines)
    assert not any(line.strip().startswith("name") for line in lines)  # no tensor table without --tensors


def test_the_text_report_of_a_bare_file(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _file(tmp_path / "m[bold].apr", {})
    code, out, _ = _inspect(capsys, monkeypatch, str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == str(path)  # printed literally
    assert _rows(out)["Flags"] == "(none)"
    assert _rows(out)["Family:"] == "unknown"  # the document's "unknown"; no other architecture row
    assert not any(k in _rows(out) for k in ("HF Class:", "Layers", "Parameters:"))
    assert "    license: (missing)" in lines


def test_the_tensor_table(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _file(tmp_path / "m.apr", {})
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--tensors")
    assert code == 0
    with open_file(path) as reader:
        entries = list(reader.entries)
    lines = [re.split(r"\s{2,}|\s(?=\[)|(?<=\])\s", line.strip()) for line in out.splitlines()]
    table = lines[lines.index(["name", "dtype", "shape", "offset", "bytes"]) + 1:]
    assert [row[0] for row in table] == [e.name for e in entries]
    for row, e in zip(table, entries, strict=True):
        assert " ".join(row).split() == [e.name, e.dtype.label, *str(list(e.shape)).split(), str(e.offset), str(e.size)]


def test_the_quality_text(tmp_path: Path, capsys, monkeypatch) -> None:
    meta = {"license": "MIT", "data_license": "free text here"}
    path = _file(tmp_path / "m.apr", meta)
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--explain")
    assert code == 0
    with open_file(path) as reader:
        flags = int(reader.flags)
        score = score_quality(checksum_valid=reader.is_checksum_valid, metadata=dict(reader.metadata), flags=flags)
        advice = explain_quality(score, path=str(path), tensor_names=reader.keys())
    q = score.to_dict()
    b = q["breakdown"]
    lines = out.splitlines()
    start = lines.index("  Quality (0-100):")
    expected = [
        "  Quality (0-100):",
        f"    Score: {q['score']} / 100",
        f"    Ship-ready (≥90 per AC-SHIP2-007): {'YES' if q['ship_ready'] else 'NO'}",
        "    Breakdown:",
        f"      physics:     {b['physics']} / 20",
        f"      structural:  {b['structural']} / 20",
        f"      provenance:  {b['provenance']} / 25",
        f"      hf_identity: {b['hf_identity']} / 20",
        f"      tokenizer:   {b['tokenizer']} / 15",
        f"    Missing points (reachable by stamping: {attainable_score(score)} / 100):",
    ]
    for a in advice:
        expected.append(f"      -{a.points:>2} {a.part}: {a.what}")
        expected.append(f"          fix: {a.command}" if a.command else f"          note: {a.note}")
    expected += [f"    Note: {note}" for note in license_notes(meta)]
    assert lines[start:start + len(expected)] == expected
    assert any(a.command is None for a in advice) and any(a.command for a in advice)  # both kinds shown
    assert lines[start + len(expected)].startswith("  Tensors: ")


def test_a_file_that_earns_every_point_says_so(tmp_path: Path, capsys, monkeypatch) -> None:
    import apr.identity.explain

    path = _file(tmp_path / "m.apr", {})
    monkeypatch.setattr(apr.identity.explain, "explain_quality", lambda *a, **k: [])
    monkeypatch.setattr(apr.identity.explain, "license_notes", lambda meta: [])
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--explain")
    assert code == 0
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("    Missing points"))
    assert lines[i + 1] == "      none — the file earns every point" and lines[i + 2].startswith("  Tensors: ")


def test_a_file_without_tensors(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "empty.apr"
    save_file({}, path, {}, durable=False)
    code, out, _ = _inspect(capsys, monkeypatch, str(path))
    assert code == 0 and "  Tensors: none" in out.splitlines()


def test_the_report_in_colour(tmp_path: Path, capsys, monkeypatch) -> None:
    """On a terminal: the path bold, an invalid checksum red; values from the file plain."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    path = _file(tmp_path / "m.apr", {"license": "MIT", "num_layers": 3})
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, _ = _inspect(capsys, monkeypatch, str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"\x1b[1m{path}\x1b[0m"
    assert any(re.fullmatch(r"  Checksum\s+\x1b\[31mINVALID\s*\x1b\[0m", line) for line in lines)
    assert any(re.fullmatch(r"    Layers\s+3\s*", line) for line in lines)
    assert "    license: MIT" in lines


def test_the_tables_have_no_header_row_and_no_edge_padding(tmp_path: Path, capsys, monkeypatch) -> None:
    """The summary and architecture tables start right under their title (no empty header row); the
    tensor table's header starts at the first column (no padding at the table's edge)."""
    path = _file(tmp_path / "m.apr", {"num_layers": 3})
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--tensors")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["Format", "APR", "v2"] and lines[1].startswith("  Format ")
    assert lines[lines.index("  Architecture:") + 1].split() == ["Family:", "unknown"]
    header = next(line for line in lines if line.lstrip().startswith("name"))
    assert header.split() == ["name", "dtype", "shape", "offset", "bytes"] and header.startswith("name ")
    assert lines[lines.index(header) + 1].startswith("x.weight ")


@pytest.mark.parametrize(("points", "ready"), [(89, "NO"), (90, "YES")])
def test_ship_ready_in_words_at_the_threshold(tmp_path: Path, capsys, monkeypatch, points: int, ready: str) -> None:
    """AC-SHIP2-007's line says YES at 90 points and NO just below (the score itself: tests/identity)."""
    import apr.identity.quality
    from apr.identity.quality import QualityScore

    parts = {"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 20, "tokenizer": points - 85}
    monkeypatch.setattr(apr.identity.quality, "score_quality", lambda **kw: QualityScore(parts, ()))
    path = _file(tmp_path / "m.apr", {})
    code, out, _ = _inspect(capsys, monkeypatch, str(path), "--quality")
    assert code == 0
    lines = out.splitlines()
    assert lines[lines.index("  Quality (0-100):") + 1:][:2] == [
        f"    Score: {points} / 100", f"    Ship-ready (≥90 per AC-SHIP2-007): {ready}"]
