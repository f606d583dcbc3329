"""Contract apr-cli-v1, FALSIFY-CLI-004: ``-o -`` streams the one file a command writes, and is
refused (exit 64, nothing named ``-`` created) wherever the output is a folder or cannot stream."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from apr.cli.main import main

EXIT_USAGE = 64


class _Stdout(io.TextIOWrapper):
    """A text stdout over a bytes buffer, as the real one is (``sys.stdout.buffer``)."""


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.reliability import cli_targets as ct

    monkeypatch.chdir(tmp_path)
    tensors, metadata, flags = ct._base_model()
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, metadata, flags)
    return tmp_path


def _streamed(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, bytes]:
    raw = io.BytesIO()
    stdout = _Stdout(raw, encoding="utf-8")
    monkeypatch.setattr("sys.stdout", stdout)
    code = main(argv)
    stdout.flush()
    return code, raw.getvalue()


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.falsifies("FALSIFY-CLI-004")
@pytest.mark.parametrize(("argv", "reference"), [
    (["stamp", "m.apr", "--name", "streamed"], "stamped.apr"),
    (["card", "m.apr"], "CARD.md"),
    (["export", "m.apr", "--format", "gguf"], "m.gguf"),
])
def test_falsify_cli_004_dash_streams_the_bytes_the_file_would_hold(argv: list[str], reference: str, folder: Path,
                                                                    monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert main([*argv, "-o", reference]) == 0
    expected = (folder / reference).read_bytes()
    before = _entries(folder)
    code, streamed = _streamed([*argv, "-o", "-"], monkeypatch)
    assert code == 0
    assert streamed == expected and len(streamed) > 0
    assert _entries(folder) == before  # nothing left beside the inputs, no file named -


@pytest.mark.falsifies("FALSIFY-CLI-004")
@pytest.mark.parametrize("argv", [
    ["export", "m.apr", "-o", "-"],  # a safetensors export is a folder
    ["export", "m.apr", "--format", "safetensors", "-o", "-"],
    ["import", "hf", "-o", "-"],
    ["tokenize", "corpus.txt", "--tokenizer", "tok", "-o", "-"],
    ["pretrain", "--dataset", "data", "--run-dir", "-"],
])
def test_falsify_cli_004_dash_is_refused_where_nothing_can_stream(argv: list[str], folder: Path, capsys) -> None:
    if argv[0] == "pretrain":
        pytest.importorskip("torch")
    (folder / "corpus.txt").write_text("some text\n", encoding="utf-8")
    assert main(["export", "m.apr", "-o", "hf"]) == 0  # an import source
    assert main(["export", "m.apr", "-o", "tok"]) == 0  # a tokenizer folder
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "standard output" in err
    assert not os.path.lexists(folder / "-")


def test_dash_with_json_is_a_usage_error(folder: Path, capsys) -> None:
    assert main(["stamp", "m.apr", "--name", "x", "-o", "-", "--json"]) == EXIT_USAGE
    assert '"-o - and --json both write to standard output"' in capsys.readouterr().out
    assert not os.path.lexists(folder / "-")


def test_a_failed_command_streams_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "bad.apr").write_bytes(b"garbage" * 20)
    code, streamed = _streamed(["stamp", "bad.apr", "--name", "x", "-o", "-"], monkeypatch)
    assert code == 4 and streamed == b""


@pytest.mark.parametrize(("argv", "says"), [
    (["stamp", "m.apr", "--name", "streamed"], "→ standard output ("),
    (["card", "m.apr"], "✓ wrote model card → standard output"),
])
def test_messages_name_standard_output_not_the_temporary_file(argv: list[str], says: str, folder: Path,
                                                              monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The file is written to a temporary folder first and deleted after streaming: the messages for
    people (on stderr) say where the bytes went, not a path that no longer exists."""
    code, _ = _streamed([*argv, "-o", "-"], monkeypatch)
    err = capsys.readouterr().err
    assert code == 0 and says in err, err
    assert "apr-stdout-" not in err
