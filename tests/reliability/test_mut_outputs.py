"""`apr.format.outputs` rule by rule: an output that is its input (the same path, a symlink, a hard
link), contains it or lies inside it; ``-``; an existing file or folder with and without
``--force``; a missing parent; a folder's previous output of the same command against foreign
files, folders and another command's manifest; collisions at commit time. Each refusal's class,
exit code, the path and flag it names and the fix it offers are asserted; nothing is written
(issue 23)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, OutputExistsError, OutputIsInputError, UsageError
from apr.format.output_manifest import MANIFEST_NAME, file_record, record_tree
from apr.format.outputs import (
    FolderTarget,
    check_file_output,
    check_folder_output,
    describe_foreign,
    refuse_overlap,
    refuse_stdout,
)

SAME = "write to another path; the command never replaces what it reads"
CMD = "apr export --format safetensors"
FORCE_HINT = ("pass --force to replace the files this command wrote (others are never touched), "
              "or choose another output folder")


def _ident(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


# --- standard output -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["-", Path("-")])
def test_stdout_is_refused_with_the_flag_named(spelling) -> None:
    with pytest.raises(UsageError) as info:
        refuse_stdout(spelling, flag="--run-dir")
    assert info.value.exit_code == 64 and info.value.field == "--run-dir"
    assert info.value.message == ("--run-dir - (standard output) is not possible here: this output is a folder "
                                  "or a file renamed into place")
    assert info.value.hint == ("give a path: a file for a single file (apr stamp, card, export --format gguf "
                               "stream with -o -), a folder otherwise")
    with pytest.raises(UsageError) as info:
        refuse_stdout(spelling)
    assert info.value.field == "-o" and info.value.message.startswith("-o - (standard output)")
    with pytest.raises(UsageError) as info:
        refuse_overlap("-", [])
    assert info.value.field == "-o"
    with pytest.raises(UsageError) as info:
        refuse_overlap("-", [], flag="--into")
    assert info.value.field == "--into"


def test_other_spellings_are_not_stdout(tmp_path: Path) -> None:
    for name in ("--", "./-", "-x", str(tmp_path / "-")):
        refuse_stdout(name)


# --- an output is never its own input --------------------------------------------------------------


def test_the_input_itself_as_given(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(src, [src], flag="--out")
    err = info.value
    assert err.exit_code == 5 and err.path == str(src) and err.field == "--out" and err.hint == SAME
    assert err.message == f"--out {str(src)!r} is the input {str(src)!r} itself"


def test_the_input_through_a_symlink_and_a_hard_link(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    link = tmp_path / "link.apr"
    link.symlink_to(src)
    hard = tmp_path / "hard.apr"
    os.link(src, hard)
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(link, [src], same_hint="use --in-place")
    assert info.value.message == f"-o {str(link)!r} is the input {str(src)!r} itself (through a symlink)"
    assert info.value.hint == "use --in-place" and info.value.path == str(link)
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(hard, [src])
    assert info.value.message == f"-o {str(hard)!r} is the input {str(src)!r} itself (a hard link to it)"
    assert info.value.hint == SAME


def test_a_missing_input_that_is_the_output_path(tmp_path: Path) -> None:
    out = tmp_path / "absent.apr"
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(out, [out], same_hint="other hint")
    assert info.value.message == f"-o {str(out)!r} is the input {str(out)!r} itself"
    assert info.value.hint == "other hint" and info.value.field == "-o" and info.value.path == str(out)


def test_unrelated_missing_paths_and_none_inputs_pass(tmp_path: Path) -> None:
    refuse_overlap(tmp_path / "a.out", [tmp_path / "b.in", None])
    refuse_overlap(tmp_path / "a.out", [None])
    refuse_overlap(tmp_path / "a.out", [])


def test_a_none_input_does_not_hide_the_next_one(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    with pytest.raises(OutputIsInputError):
        refuse_overlap(src, [None, tmp_path / "other", src])


def test_an_output_containing_the_input(tmp_path: Path) -> None:
    src = tmp_path / "models" / "m.apr"
    src.parent.mkdir()
    src.write_bytes(b"x")
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(tmp_path / "models", [src], flag="-o")
    err = info.value
    assert err.message == f"-o {str(tmp_path / 'models')!r} contains the input {str(src)!r}"
    assert err.hint == f"choose an output that does not hold the input, e.g. a new folder: -o {src.parent / 'm-out'}"
    assert err.path == str(tmp_path / "models") and err.field == "-o"


def test_an_output_inside_the_input_folder(tmp_path: Path) -> None:
    src = tmp_path / "hf"
    src.mkdir()
    out = src / "sub" / "out.apr"
    with pytest.raises(OutputIsInputError) as info:
        refuse_overlap(out, [src], flag="--to")
    err = info.value
    assert err.message == f"--to {str(out)!r} lies inside the input folder {str(src)!r}"
    assert err.hint == f"write beside it instead, e.g. --to {tmp_path / 'out.apr'}"
    assert err.path == str(out) and err.field == "--to"


def test_an_output_inside_the_input_folder_through_a_symlinked_parent(tmp_path: Path) -> None:
    src = tmp_path / "hf"
    src.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(src, target_is_directory=True)
    with pytest.raises(OutputIsInputError, match="lies inside the input folder"):
        refuse_overlap(alias / "out.apr", [src])


def test_a_sibling_with_a_common_prefix_is_not_inside(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    refuse_overlap(tmp_path / "model-out", [tmp_path / "model"])
    refuse_overlap(tmp_path / "model", [tmp_path / "model-out"])


# --- file outputs -----------------------------------------------------------------------------------


def test_check_file_output_returns_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_file_output("new.apr", force=False) == tmp_path / "new.apr"
    (tmp_path / "new.apr").write_bytes(b"x")
    assert check_file_output("new.apr", force=True) == tmp_path / "new.apr"


def test_an_existing_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out.apr"
    out.write_bytes(b"x")
    with pytest.raises(OutputExistsError) as info:
        check_file_output(out, force=False, flag="--output")
    err = info.value
    assert err.exit_code == 5 and err.path == str(out) and err.field == "--output"
    assert err.message == f"Output file '{out}' already exists. Use --force to overwrite."
    assert err.hint == "pass --force to replace it, or choose another path"
    assert check_file_output(out, force=True) == out and out.read_bytes() == b"x"
    with pytest.raises(OutputExistsError) as info:
        check_file_output(out, force=False)
    assert info.value.field == "-o"


def test_a_dangling_symlink_is_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "out.apr"
    out.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError, match="already exists"):
        check_file_output(out, force=False)


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_is_never_a_file_output(tmp_path: Path, force: bool) -> None:
    out = tmp_path / "dir"
    out.mkdir()
    with pytest.raises(OutputExistsError) as info:
        check_file_output(out, force=force, flag="-o")
    assert info.value.message == f"Output '{out}' is a folder."
    assert info.value.hint == f"give the path of the file to create, e.g. -o {out / 'out'}"
    assert info.value.field == "-o" and info.value.path == str(out)


def test_a_missing_parent_folder(tmp_path: Path) -> None:
    out = tmp_path / "no" / "out.apr"
    with pytest.raises(AprFileNotFoundError) as info:
        check_file_output(out, force=True, flag="-o")
    err = info.value
    assert err.exit_code == 3 and err.path == str(out) and err.field == "-o"
    assert err.message == f"output folder does not exist: {tmp_path / 'no'}"
    assert err.hint == f"create it first: mkdir -p {tmp_path / 'no'}"
    assert check_file_output(out, force=False, parent_must_exist=False) == out
    assert not (tmp_path / "no").exists()


def test_check_file_output_passes_flag_and_hint_to_the_overlap_check(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    with pytest.raises(OutputIsInputError) as info:
        check_file_output(src, force=True, inputs=[src], flag="-O", same_hint="use --in-place")
    assert info.value.field == "-O" and info.value.hint == "use --in-place"
    assert info.value.message.startswith("-O ")


# --- folder outputs ---------------------------------------------------------------------------------


def _previous_output(folder: Path, command: str = CMD, files: dict[str, bytes] | None = None) -> None:
    folder.mkdir(exist_ok=True)
    for name, data in (files if files is not None else {"model.safetensors": b"weights", "config.json": b"{}"}).items():
        (folder / name).write_bytes(data)
    record_tree(folder, command)


def test_a_new_folder(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    target = check_folder_output(tmp_path / "out", command=CMD, force=False, inputs=[src, None])
    assert target == FolderTarget(tmp_path / "out", CMD, existed=False, input_ids=frozenset({_ident(src)}))
    assert not (tmp_path / "out").exists()


def test_input_ids_skip_inputs_that_do_not_exist(tmp_path: Path) -> None:
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    target = check_folder_output(tmp_path / "out", command=CMD, force=False, inputs=[tmp_path / "gone", src])
    assert target.input_ids == frozenset({_ident(src)})


def test_a_folder_output_that_is_its_input(tmp_path: Path) -> None:
    src = tmp_path / "hf"
    src.mkdir()
    with pytest.raises(OutputIsInputError) as info:
        check_folder_output(src / "out", command=CMD, force=True, inputs=[None, src], flag="--dir")
    assert info.value.field == "--dir"


def test_a_folder_output_whose_parent_is_missing(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        check_folder_output(tmp_path / "no" / "out", command=CMD, force=True, flag="--dir")
    err = info.value
    assert err.exit_code == 3 and err.field == "--dir" and err.path == str(tmp_path / "no" / "out")
    assert err.message == f"output folder does not exist: {tmp_path / 'no'}"
    assert err.hint == f"create it first: mkdir -p {tmp_path / 'no'}"


@pytest.mark.parametrize("force", [False, True])
def test_a_file_where_the_folder_goes(tmp_path: Path, force: bool) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"x")
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=force, flag="-o")
    assert info.value.message == f"output exists and is a file: {out}" and info.value.path == str(out)
    assert info.value.field == "-o" and info.value.hint == "choose another path for the output folder"
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=force)
    assert info.value.field == "-o"


@pytest.mark.parametrize("force", [False, True])
def test_another_commands_output_is_refused(tmp_path: Path, force: bool) -> None:
    out = tmp_path / "out"
    _previous_output(out, "apr tokenize")
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=force, flag="-o")
    assert info.value.message == f"the output folder holds the output of `apr tokenize`, not of `{CMD}`"
    assert info.value.field == "-o" and info.value.path == str(out)
    assert info.value.hint == "choose another output folder (one command per folder, so neither overwrites the other)"


def test_without_force_an_empty_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=False, flag="-o")
    assert info.value.message == "output folder already exists" and info.value.hint == FORCE_HINT
    assert info.value.field == "-o" and info.value.exit_code == 5 and info.value.path == str(out)


def test_without_force_a_folder_holding_only_a_manifest_is_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_output(out, CMD, {})
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=False)
    assert info.value.message == "output folder already exists"


def test_without_force_a_previous_output_is_named_as_such(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_output(out)
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=False)
    assert info.value.message == f"output folder holds a previous `{CMD}` output" and info.value.hint == FORCE_HINT


def test_without_force_foreign_files_are_listed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("b", "a"):
        (out / name).write_bytes(b"mine")
    with pytest.raises(OutputExistsError) as info:
        check_folder_output(out, command=CMD, force=False)
    assert info.value.message == f"output folder is not empty and was not written by `{CMD}`: 2 entries ('a', 'b')"


def test_with_force_previous_files_and_foreign_ones_are_told_apart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_output(out)
    (out / "config.json").write_bytes(b'{"changed": 1}')  # edited since: now foreign
    (out / "notes.txt").write_bytes(b"mine")
    (out / "empty").mkdir()
    (out / "full").mkdir()
    (out / "full" / "inside").write_bytes(b"x")
    (out / ".apr-output.tmp-1-x" / "sub").mkdir(parents=True)  # in-folder staging: internal, not foreign
    target = check_folder_output(out, command=CMD, force=True)
    assert target.path == out and target.command == CMD and target.existed is True
    assert target.previous == {"model.safetensors": file_record(out / "model.safetensors")}
    assert target.foreign == ("config.json", "full/inside", "notes.txt", "empty")
    assert target.input_ids == frozenset()


def test_with_force_a_listed_file_that_is_gone_is_not_previous(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_output(out)
    (out / "config.json").unlink()
    target = check_folder_output(out, command=CMD, force=True)
    assert sorted(target.previous) == ["model.safetensors"] and target.foreign == ()


# --- collisions -------------------------------------------------------------------------------------


def test_refuse_collisions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_output(out)
    (out / "notes.txt").write_bytes(b"mine")
    (out / "sub").mkdir()
    src = tmp_path / "m.apr"
    src.write_bytes(b"x")
    os.link(src, out / "input-link")
    target = check_folder_output(out, command=CMD, force=True, inputs=[src])
    target.refuse_collisions(["model.safetensors", "config.json", "new.json"])  # ours, or not there
    with pytest.raises(OutputExistsError) as info:
        target.refuse_collisions(["new.json", "notes.txt"])
    assert info.value.message == f"the output folder holds 'notes.txt', which {CMD} did not write; it is never replaced"
    assert info.value.path == str(out / "notes.txt")
    assert info.value.hint == "move that file away, or choose another output folder"
    with pytest.raises(OutputExistsError) as info:
        target.refuse_collisions(["sub"])
    assert info.value.message == f"the output folder holds a folder named 'sub', where {CMD} writes a file"
    assert info.value.hint == "move it away, or choose another output folder" and info.value.path == str(out / "sub")
    with pytest.raises(OutputIsInputError) as info:
        target.refuse_collisions(["input-link"])
    assert info.value.message == "'input-link' in the output folder is an input of this command"
    assert info.value.path == str(out / "input-link") and info.value.hint == "choose another output folder"


def test_a_symlink_to_a_folder_is_a_foreign_file_not_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    target = FolderTarget(out, CMD, existed=True)
    with pytest.raises(OutputExistsError, match="which apr export --format safetensors did not write"):
        target.refuse_collisions(["link"])


# --- describing what is refused ---------------------------------------------------------------------


def test_describe_foreign() -> None:
    assert describe_foreign(("a",)) == "1 entry ('a')"
    assert describe_foreign(("a", "b")) == "2 entries ('a', 'b')"
    assert describe_foreign(tuple("abcde")) == "5 entries ('a', 'b', 'c', 'd', 'e')"
    assert describe_foreign(tuple("abcdef")) == "6 entries ('a', 'b', 'c', 'd', 'e', ...)"
    assert MANIFEST_NAME == ".apr-output.json"
