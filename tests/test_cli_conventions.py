"""CLI conventions (issue 17, part 5): did-you-mean, JSON usage errors, the export format from OUT."""

from __future__ import annotations

import json

import pytest

from apr.cli.export_cmd import export_format
from apr.cli.main import main
from apr.errors import UsageError

EXIT_USAGE = 64  # sysexits EX_USAGE, distinct from the UNKNOWN verdict (2); written out, not imported


@pytest.mark.falsifies("FALSIFY-CLI-002")
@pytest.mark.parametrize(("argv", "expected", "usage_of"), [
    (["inspect", "m.apr", "--qualty"], "did you mean --quality?", "apr inspect"),
    (["export", "m.apr", "-o", "x", "--formt", "gguf"], "did you mean --format?", "apr export"),
    (["inspct", "m.apr"], "did you mean 'inspect'?", "apr"),
    (["contracts", "verfy"], "did you mean 'verify'?", "apr contracts"),
    (["contracts", "lint", "--strct"], "did you mean --strict?", "apr contracts lint"),
])
def test_a_typo_gets_the_closest_spelling_and_its_command_usage(argv, expected, usage_of, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == EXIT_USAGE
    assert expected in err and f"usage: {usage_of} " in err and f"fix: run `{usage_of} --help`" in err


@pytest.mark.parametrize("argv", [["inspect", "m.apr", "--zzzzzz"], ["zzzzzz"]])
def test_nothing_close_means_no_suggestion(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.falsifies("FALSIFY-CLI-002")
@pytest.mark.parametrize(("argv", "expected"), [
    (["inspect", "m.apr", "--qualty"], "did you mean --quality?"),
    (["contracts", "verfy"], "did you mean 'verify'?"),
    (["inspct", "m.apr"], "did you mean 'inspect'?"),
])
def test_falsify_cli_002_a_typo_under_json_is_the_envelope_with_the_suggestion(argv, expected, capsys):
    with pytest.raises(SystemExit) as done:
        main([*argv, "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert done.value.code == EXIT_USAGE and captured.err == ""
    assert document["exit_code"] == EXIT_USAGE and document["ok"] is False and expected in document["error"]["message"]


def test_a_usage_error_under_json_is_json_on_stdout(capsys):
    with pytest.raises(SystemExit) as done:
        main(["inspect", "m.apr", "--qualty", "--json"])
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert done.value.code == EXIT_USAGE and captured.err == ""
    assert (error["code"], error["type"], error["exit_code"]) == ("usage", "UsageError", EXIT_USAGE)
    assert "--quality" in error["message"] and error["hint"] == "run `apr inspect --help` for the accepted flags"


@pytest.mark.parametrize(("given", "output", "expected"), [
    (None, "m.gguf", "gguf"),
    (None, "M.GGUF", "gguf"),
    (None, "hf", "safetensors"),
    (None, "out/model-hf", "safetensors"),
    (None, "m.apr", "safetensors"),  # a folder; the output policy judges the name
    ("gguf", "m.gguf", "gguf"),
    ("gguf", "model.bin", "gguf"),
    ("safetensors", "hf", "safetensors"),
])
def test_export_format_follows_the_output_name(given, output, expected):
    assert export_format(given, output) == expected


@pytest.mark.parametrize(("given", "output", "words"), [
    ("safetensors", "m.gguf", "contradicts"),
    (None, "m.safetensors", "writes a model folder"),
    ("safetensors", "m.safetensors", "writes a model folder"),
    (None, "-", "standard output"),
    ("gguf", "-", "standard output"),
])
def test_export_refuses_a_contradiction_and_stdout(given, output, words):
    with pytest.raises(UsageError, match=words) as raised:
        export_format(given, output)
    assert raised.value.exit_code == EXIT_USAGE and raised.value.hint


@pytest.mark.falsifies("FALSIFY-CLI-003")
def test_export_without_format_writes_gguf_for_a_gguf_name(tmp_path, monkeypatch):
    """The reproducer: `apr export m.apr -o m.gguf` wrote a safetensors folder named m.gguf."""
    from tests.reliability import cli_targets as ct

    monkeypatch.chdir(tmp_path)
    tensors, metadata, flags = ct._base_model()
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, metadata, flags)
    assert main(["export", "m.apr", "-o", "m.gguf"]) == 0
    assert (tmp_path / "m.gguf").is_file() and (tmp_path / "m.gguf").read_bytes()[:4] == b"GGUF"
    assert main(["export", "m.apr", "-o", "hf"]) == 0 and (tmp_path / "hf" / "model.safetensors").is_file()


def test_piped_tables_are_never_cut(monkeypatch, capsys):
    """`apr contracts list | less` was cut at 80 columns ("apr-arc…"): off a terminal, full width."""
    from pathlib import Path

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["contracts", "list"]) == 0
    text = capsys.readouterr().out
    names = sorted(p.stem for p in Path("contracts").glob("*.yaml"))
    assert "…" not in text and all(name in text and f"contracts/{name}.yaml" in text for name in names)


@pytest.mark.falsifies("FALSIFY-CLI-003")
def test_falsify_cli_003_a_contradiction_is_refused_before_writing(tmp_path, monkeypatch, capsys):
    from tests.reliability import cli_targets as ct

    monkeypatch.chdir(tmp_path)
    tensors, metadata, flags = ct._base_model()
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, metadata, flags)
    assert main(["export", "m.apr", "--format", "safetensors", "-o", "m.gguf"]) == EXIT_USAGE
    assert "contradicts" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.apr"]
