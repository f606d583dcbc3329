"""Bad input to `apr stamp` (FALSIFY-STAMP-009): a clear error, aprender's exit code, nothing
written, the input untouched; plus the text and JSON output of §2.4."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from apr.stamp import rewrite
from stamp_builders import listing, run_cli, write_checkpoint, write_tokenizer_json


def _unchanged(folder: Path, src: str, before: bytes, names: list[str]) -> None:
    assert Path(src).read_bytes() == before
    assert listing(folder) == names


@pytest.fixture
def src(tmp_path):
    return write_checkpoint(tmp_path / "in.apr")


def _tok(tmp_path: Path, kind: str) -> str:
    folder = tmp_path / "tok"
    folder.mkdir()
    if kind == "no-model-vocab":
        (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "merges": []}}))
    elif kind == "non-integer-ids":
        (folder / "vocab.json").write_text(json.dumps({"a": 0, "b": "one"}))
    return str(folder)


@pytest.mark.falsifies("FALSIFY-STAMP-009")
@pytest.mark.parametrize("case,code,needle", [
    ("missing", 3, "file not found"),
    ("directory", 3, "not a file"),
    ("non-apr", 4, "GGUF"),
    ("truncated", 4, "truncated"),
    ("output-is-input", 5, "--in-place"),
    ("output-exists", 5, "already exists. Use --force to overwrite."),
    ("missing-output-folder", 3, "output folder does not exist"),
    ("tokenizer-empty-folder", 5, "neither tokenizer.json nor vocab.json"),
    ("tokenizer-missing-folder", 3, "tokenizer folder does not exist"),
    ("no-model-vocab", 5, "model.vocab"),
    ("non-integer-ids", 5, "not a non-negative integer"),
    ("license-whatever", 5, "SPDX"),
    ("no-destination", 64, "-o OUT or --in-place"),
])
def test_falsify_stamp_009_bad_input(tmp_path, src, case, code, needle):
    out = str(tmp_path / "out.apr")
    target, extra, dest = src, ["--license", "MIT"], ["-o", out]
    if case == "missing":
        target = str(tmp_path / "nope.apr")
    elif case == "directory":
        (tmp_path / "d.apr").mkdir()
        target = str(tmp_path / "d.apr")
    elif case == "non-apr":
        (tmp_path / "m.gguf").write_bytes(b"GGUF" + bytes(200))
        target = str(tmp_path / "m.gguf")
    elif case == "truncated":
        raw = Path(src).read_bytes()
        (tmp_path / "cut.apr").write_bytes(raw[: len(raw) - 40])
        target = str(tmp_path / "cut.apr")
    elif case == "output-is-input":
        dest = ["-o", src]
    elif case == "output-exists":
        Path(out).write_bytes(b"keep me")
    elif case == "missing-output-folder":
        dest = ["-o", str(tmp_path / "no" / "such" / "out.apr")]
    elif case == "tokenizer-empty-folder":
        extra = ["--tokenizer", _tok(tmp_path, "empty")]
    elif case == "tokenizer-missing-folder":
        extra = ["--tokenizer", str(tmp_path / "no-tok")]
    elif case in ("no-model-vocab", "non-integer-ids"):
        extra = ["--tokenizer", _tok(tmp_path, case)]
    elif case == "license-whatever":
        extra = ["--license", "whatever"]
    elif case == "no-destination":
        dest = []
    before_files = listing(tmp_path)
    before = Path(src).read_bytes()
    for as_json in (False, True):
        argv = ["stamp", target, *extra, *dest] + (["--json"] if as_json else [])
        got, stdout, stderr = run_cli(argv)
        assert got == code, (stdout, stderr)
        if as_json and code != 2:
            document = json.loads(stdout)
            assert document["error"]["exit_code"] == code and needle in json.dumps(document["error"])
        elif not as_json:
            assert needle in stderr and "Traceback" not in stderr
        _unchanged(tmp_path, src, before, before_files)
    if case == "output-exists":
        assert Path(out).read_bytes() == b"keep me"


@pytest.mark.falsifies("FALSIFY-STAMP-009")
@pytest.mark.parametrize("mode", ["-o", "--in-place-fallback", "--in-place"])
def test_falsify_stamp_009_full_disk(tmp_path, src, monkeypatch, mode):
    """ENOSPC from the data copy (rewrite) or from the prefix write (in place): exit 7, nothing changed."""
    before, names = Path(src).read_bytes(), listing(tmp_path)

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if mode == "--in-place":
        real, calls = os.pwrite, []

        def pwrite(fd, data, off):  # the first write over the target fails; the roll-back succeeds
            calls.append(off)
            return full() if len(calls) == 1 else real(fd, data, off)

        monkeypatch.setattr(os, "pwrite", pwrite)
        argv = ["stamp", src, "--license", "MIT", "--in-place"]
    else:
        monkeypatch.setattr(rewrite, "copy_range", full)
        argv = ["stamp", src, "--license", "MIT"] + (
            ["-o", str(tmp_path / "out.apr")] if mode == "-o" else ["--description", "x" * 6000, "--in-place"])
    code, _out, err = run_cli(argv)
    assert code == 7, err
    assert "no space left on device" in err.lower() or "No space left" in err
    _unchanged(tmp_path, src, before, names)


def test_text_output_matches_aprender(tmp_path, src):
    code, out, err = run_cli(["stamp", src, "--architecture", "qwen2", "-o", str(tmp_path / "o.apr")])
    assert code == 0, err
    lines = out.splitlines()
    size_in, size_out = os.path.getsize(src), os.path.getsize(tmp_path / "o.apr")
    assert lines[0] == f"✓ Stamped {src} → {tmp_path / 'o.apr'} (2 tensors, {size_in} → {size_out} bytes)"
    assert lines[1:] == [
        "  license:         (unset)", "  data_source:     (unset)", "  data_license:    (unset)",
        "  hf_architecture: (unset)", "  hf_model_type:   (unset)", "  architecture:    qwen2",
    ]
    assert f"Reading {src}" in err


def test_json_output_document(tmp_path, src):
    tok = write_tokenizer_json(tmp_path / "tok")
    code, out, _err = run_cli(["stamp", src, "--license", "mit", "--tokenizer", tok, "--in-place", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["command"] == "stamp" and doc["input"] == doc["output"] == src
    assert doc["mode"] in ("in-place", "rewrite") and doc["stamped"]["license"] == "MIT"
    assert doc["header_flags_bits"] & 0x0200 and doc["tokenizer_vocab_size"] == 9
    for key in ("input_bytes", "output_bytes", "tensor_count", "tensor_bytes_copied", "elapsed_ms"):
        assert isinstance(doc[key], (int, float))


@pytest.mark.falsifies("FALSIFY-STAMP-006")
def test_recover_flag_and_read_only_commands_refuse_pending_journal(tmp_path, src):
    from apr.stamp.journal import Journal, journal_path

    raw = Path(src).read_bytes()
    info = os.stat(src)
    from apr.format.header import parse_header

    data_offset = parse_header(raw[:64]).data_offset
    footer = int.from_bytes(raw[-4:], "little")
    journal = Journal(info.st_dev, info.st_ino, len(raw), raw[:data_offset], footer,
                      b"\xff" * 32 + raw[32:data_offset], footer)
    fd = os.open(journal_path(src), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # as the stamp makes it
    os.write(fd, journal.to_bytes())
    os.close(fd)
    with open(src, "r+b") as handle:  # a half-written prefix, as a kill mid-stamp leaves it
        handle.write(b"\xff" * 32)
    out_dir = tmp_path / "out"
    for command in (["inspect", src], ["validate", src], ["run", src, "hello"], ["qa", src],
                    ["export", src, "-o", str(out_dir)], ["readiness", src],
                    ["card", src, "-o", str(tmp_path / "CARD.md")],
                    ["pretrain", "--dataset", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--init", src]):
        code, _out, err = run_cli(command)
        assert code == 5 and f"apr stamp {src} --recover" in err, (command, err)
    assert not out_dir.exists() and not (tmp_path / "CARD.md").exists() and not (tmp_path / "run").exists()
    code, out, _err = run_cli(["stamp", src, "--recover"])
    assert code == 0 and "rolled back" in out
    assert Path(src).read_bytes() == raw and not os.path.exists(journal_path(src))
