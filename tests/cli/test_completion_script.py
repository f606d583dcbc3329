"""Contract apr-cli-v1, FALSIFY-CLI-005: `apr completion bash` completes every command,
subcommand, flag and flag choice; checked by sourcing the script in bash and pressing Tab."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from apr.cli.main import build_parser, main
from apr.cli.usage import option_strings, subcommand_parsers

bash = shutil.which("bash")
needs_bash = pytest.mark.skipif(bash is None, reason="bash is not installed")


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command path and its parser, found without the generator under test."""
    found = {path: parser}
    for name, child in subcommand_parsers(parser).items():
        found.update(_walk(child, (*path, name)))
    return found


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["completion", "bash"]) == 0
    path = tmp_path_factory.mktemp("completion") / "apr.bash"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return str(path)


def _complete(script: str, words: list[str]) -> list[str]:
    """What bash offers for the last of ``words`` (``apr`` first), through the generated function."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = f'source "{script}"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _apr; printf "%s\\n" "${{COMPREPLY[@]}}"'
    done = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


@needs_bash
@pytest.mark.falsifies("FALSIFY-CLI-005")
def test_falsify_cli_005_every_path_and_flag_completes(script: str) -> None:
    for path, parser in _walk(build_parser(None)).items():
        for child in subcommand_parsers(parser):
            assert child in _complete(script, ["apr", *path, child[:-1]]), (path, child)
        for flag in option_strings(parser):
            assert flag in _complete(script, ["apr", *path, flag]), (path, flag)


@needs_bash
@pytest.mark.falsifies("FALSIFY-CLI-005")
@pytest.mark.parametrize(("words", "expected"), [
    (["apr", "insp"], ["inspect"]),
    (["apr", "contracts", "v"], ["verify"]),
    (["apr", "-v", "contracts", "lint", "--st"], ["--strict"]),
    (["apr", "export", "m.apr", "--format", ""], ["gguf", "safetensors"]),
    (["apr", "export", "m.apr", "--format", "g"], ["gguf"]),
    (["apr", "completion", ""], ["bash", "zsh"]),
])
def test_falsify_cli_005_partial_words(script: str, words: list[str], expected: list[str]) -> None:
    assert sorted(_complete(script, words)) == sorted(expected)


@needs_bash
def test_arguments_complete_file_names(script: str, tmp_path, monkeypatch) -> None:
    (tmp_path / "model.apr").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert _complete(script, ["apr", "inspect", "mod"]) == ["model.apr"]
    assert "model.apr" not in _complete(script, ["apr", ""])  # no file before a command


def test_zsh_loads_the_bash_function(capsys) -> None:
    assert main(["completion", "zsh"]) == 0
    text = capsys.readouterr().out
    assert "bashcompinit" in text and "complete -o filenames -F _apr apr" in text


def test_an_unknown_shell_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["completion", "fish"])
    assert done.value.code == 64 and "invalid choice" in capsys.readouterr().err
