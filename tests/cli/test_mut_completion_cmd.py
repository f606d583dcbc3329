"""`apr completion`'s generator on its own (issue 23: the module had no mutation figure): the words
it collects from a parser, the zsh wrapper, and the bash function's behaviour where
tests/cli/test_completion_script.py does not look (flag choices, file names, state between two
Tab presses, the `complete` registration). Each test builds its script itself, so mutmut sees
which test reaches the generator."""

from __future__ import annotations

import argparse
import io
import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from apr.cli.completion_cmd import CommandWords, command_tree, completion_script
from apr.cli.main import build_parser, main
from apr.cli.usage import subcommand_parsers

bash = shutil.which("bash")
needs_bash = pytest.mark.skipif(bash is None, reason="bash is not installed")


def _small_parser() -> argparse.ArgumentParser:
    """A command line with every kind of word: subcommands, two positionals with choices, a flag
    with choices (one holding a quote), a flag without, and a plain positional."""
    root = argparse.ArgumentParser(prog="apr")
    root.add_argument("-v", action="store_true")
    sub = root.add_subparsers(dest="command")
    pick = sub.add_parser("pick")
    pick.add_argument("first", choices=("one", "two"))
    pick.add_argument("second", choices=(3, 4))
    pick.add_argument("--mode", choices=("it's", "plain"))
    pick.add_argument("--name")
    files = sub.add_parser("files")
    files.add_argument("path")
    return root


def test_command_tree_collects_every_kind_of_word() -> None:
    tree = command_tree(_small_parser())
    assert tree == {
        "": CommandWords(["pick", "files"], ["--help", "-h", "-v"], {}),
        "pick": CommandWords(["one", "two", "3", "4"], ["--help", "--mode", "--name", "-h"],
                             {"--mode": ["it's", "plain"]}),
        "files": CommandWords([], ["--help", "-h"], {}),
    }


def _script(parser: argparse.ArgumentParser, shell: str = "bash") -> str:
    return completion_script(parser, shell)


def _complete_all(script: str, tmp_path: Path, *word_lists: list[str]) -> list[list[str]]:
    """What bash offers for each of ``word_lists`` in turn, one bash process (state carries over
    from one Tab press to the next, as in a real shell)."""
    path = tmp_path / "apr.bash"
    path.write_text(script, encoding="utf-8")
    program = [f'source "{path}"']
    for words in word_lists:
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        program.append(f'COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMPREPLY=(); _apr; '
                       'printf "%s\\n" "${COMPREPLY[@]}"; echo "--"')
    done = subprocess.run([bash, "--norc", "-c", "; ".join(program)], capture_output=True, text=True,
                          timeout=60, check=True, cwd=tmp_path)
    answers = done.stdout.split("--\n")[:-1]
    return [a.split() for a in answers]


@needs_bash
def test_flag_choices_and_positional_choices_complete(tmp_path: Path) -> None:
    got = _complete_all(_script(_small_parser()), tmp_path,
                        ["apr", "pick", "--mode", ""], ["apr", "pick", "--mode", "p"], ["apr", "pick", ""],
                        ["apr", "-v", "pick", "--m"])
    assert [sorted(g) for g in got] == [["its", "plain"], ["plain"], ["3", "4", "one", "two"], ["--mode"]]


@needs_bash
def test_a_path_without_subcommands_completes_file_names(tmp_path: Path) -> None:
    (tmp_path / "model.apr").write_bytes(b"")
    got = _complete_all(_script(_small_parser()), tmp_path, ["apr", "files", "mod"], ["apr", ""])
    assert got == [["model.apr"], ["pick", "files"]]


@needs_bash
def test_one_tab_press_leaves_nothing_for_the_next(tmp_path: Path) -> None:
    """The function's variables are local: the choices offered after ``--mode`` must not be offered
    again at the next Tab press in the same shell."""
    got = _complete_all(_script(_small_parser()), tmp_path,
                        ["apr", "pick", "--mode", ""], ["apr", "fi"], ["apr", "files", "--"])
    assert got == [["its", "plain"], ["files"], ["--help"]]


@needs_bash
def test_the_script_registers_the_function_for_apr(tmp_path: Path) -> None:
    script = _script(_small_parser())
    assert script.endswith("\ncomplete -o filenames -F _apr apr\n")
    path = tmp_path / "apr.bash"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run([bash, "--norc", "-c", f'source "{path}"; complete -p apr'], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "complete -o filenames -F _apr apr"


def test_the_zsh_script_is_the_bash_function_behind_bashcompinit() -> None:
    parser = _small_parser()
    bash_lines = _script(parser, "bash").split("\n")
    zsh_lines = _script(parser, "zsh").split("\n")
    assert bash_lines[0].startswith("# bash completion for apr")
    assert zsh_lines[0].startswith("# zsh completion for apr")
    assert zsh_lines[1:3] == ["autoload -U +X compinit && compinit", "autoload -U +X bashcompinit && bashcompinit"]
    assert zsh_lines[3:] == bash_lines[1:]


def test_apr_completion_prints_the_script_of_its_own_parser() -> None:
    for shell in ("bash", "zsh"):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["completion", shell]) == 0
        assert buffer.getvalue() == completion_script(build_parser(None), shell)


def test_every_command_and_argument_has_its_help_line() -> None:
    """`apr --help` lists each command with its line (argparse leaves a command without help out of
    the list), and each flag and argument says what it is for."""
    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
        yield path, parser
        for name, child in subcommand_parsers(parser).items():
            yield from walk(child, (*path, name))

    for path, parser in walk(build_parser(None)):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {c.dest: c.help for c in action._choices_actions}
                assert set(listed) == set(action.choices), path
                assert all(listed.values()), path
            else:
                assert action.help, (path, action.dest)


def test_apr_completion_help_says_how_to_install_it(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["completion", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "~/.local/share/bash-completion/completions/apr" in text
    assert '"$(apr completion zsh)"' in text and "~/.zshrc" in text
