"""FALSIFY-RELIABILITY-008: one output policy for every command that writes (issue 14).

Generated layouts put a command's output in every relation to its input — the same path, through a
symlink, a hard link, the folder holding it, ``.``, a folder inside an input folder, a folder of
foreign files, an existing foreign file, a fresh path — and check, against a snapshot taken before,
that every file that existed is still there byte for byte (the one exception: an existing output
file replaced with ``--force``, which is what ``--force`` asks). Overlaps exit 5 with
``output-is-input`` and write nothing. The issue's reproducers follow as example tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.convert.tiny_hf import build_hf_folder, training_text

# What each command writes when it succeeds into a folder (for collisions planted among foreign files).
EXPORT_FILES = ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
TOKENIZE_FILES = ("manifest.json", "shard-00000.bin")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from apr.convert.gguf_export import export_gguf
    from apr.convert.hf_import import import_hf

    base = tmp_path_factory.mktemp("policy-assets")
    hf = build_hf_folder(base / "hf", "qwen2", hidden=32, layers=1, heads=2, kv_heads=1, inter=64)
    apr = base / "model.apr"
    import_hf(hf, apr)
    gguf = base / "model.gguf"
    export_gguf(apr, gguf)
    text = base / "notes.txt"
    text.write_text(training_text()[:4000], encoding="utf-8")
    return {"hf": hf, "apr": apr, "gguf": gguf, "text": text}


def run_cli(argv: list[str]) -> tuple[int, dict]:
    """`apr ARGV --json` in-process: (exit code, the JSON document)."""
    import io

    from apr.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"])
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else {"stderr": err.getvalue()})


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: files by sha256, symlinks by target, folders as such."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="apr-policy-"))
    try:
        with contextlib.chdir(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the commands and the layouts ------------------------------------------------------------------

# name: (asset the primary input is, is the output a folder, argv builder(input, output))
COMMANDS = {
    "export-safetensors": ("apr", True, lambda i, o: ["export", i, "--format", "safetensors", "-o", o]),
    "export-gguf": ("apr", False, lambda i, o: ["export", i, "--format", "gguf", "-o", o]),
    "stamp-o": ("apr", False, lambda i, o: ["stamp", i, "--license", "MIT", "-o", o]),
    "card": ("apr", False, lambda i, o: ["card", i, "-o", o]),
    "import-gguf": ("gguf", False, lambda i, o: ["import", i, "-o", o]),
    "import-hf": ("hf", False, lambda i, o: ["import", i, "-o", o]),
    "tokenize": ("text", True, lambda i, o: ["tokenize", i, "--tokenizer", "tok", "-o", o]),
}
OVERLAPS = ("equal", "equal-dotted", "symlink", "hardlink", "parent", "dot", "symlinked-parent", "inside")
OTHERS = ("foreign-folder", "foreign-file", "fresh")


def relations(command: str) -> list[str]:
    asset, _is_folder, _argv = COMMANDS[command]
    found = list(OVERLAPS + OTHERS)
    if asset == "hf":
        found.remove("hardlink")  # a folder cannot be hard-linked
    if asset not in ("hf", "text"):
        found.remove("inside")  # only a folder input has an inside (for tokenize: its --tokenizer folder)
    return found


def build_layout(root: Path, assets: dict[str, Path], command: str, relation: str,
                 foreign: list[str]) -> tuple[str, str, Path]:
    """Lay out ``root``; return (input argument, output argument, cwd)."""
    asset, is_folder, _argv = COMMANDS[command]
    inbox = root / "in"
    inbox.mkdir()
    source = assets[asset]
    primary = inbox / source.name
    if source.is_dir():
        shutil.copytree(source, primary)
    else:
        shutil.copyfile(source, primary)
    shutil.copytree(assets["hf"], root / "tok")  # tokenize's --tokenizer folder (a tokenizer.json inside)
    (inbox / "neighbour.bin").write_bytes(os.urandom(64))  # a file beside the input, never the command's
    given_input = f"in/{source.name}"
    cwd = root
    output: str
    if relation == "equal":
        output = given_input
    elif relation == "equal-dotted":
        output = f"./in//{source.name}"
    elif relation == "symlink":
        os.symlink(primary, root / "link")
        output = "link"
    elif relation == "hardlink":
        os.link(primary, root / "hardlink")
        output = "hardlink"
    elif relation == "parent":
        output = "in"
    elif relation == "dot":
        cwd, given_input, output = inbox, source.name, "."
    elif relation == "symlinked-parent":
        os.symlink(inbox, root / "in-link")
        output = "in-link"
    elif relation == "inside":
        folder = given_input if asset == "hf" else "tok"
        output = f"{folder}/out" if is_folder else f"{folder}/out.apr"
    elif relation == "foreign-folder":
        (root / "out").mkdir()
        for name in foreign:
            (root / "out" / name).write_bytes(b"foreign " + name.encode())
        output = "out"
    elif relation == "foreign-file":
        (root / "out").write_bytes(b"a file the user keeps")
        output = "out"
    else:  # fresh
        output = "new"
    return given_input, output, cwd


def expected_outcome(command: str, relation: str, force: bool, foreign: list[str]) -> tuple[int, str | None]:
    """(exit code, error code) the policy demands: from the layout, not from the command's output."""
    _asset, is_folder, _argv = COMMANDS[command]
    if relation in OVERLAPS:
        return 5, "output-is-input"
    if relation == "fresh":
        return 0, None
    if relation == "foreign-file":
        if is_folder:
            return 5, "output-exists"
        return (0, None) if force else (5, "output-exists")
    if not is_folder:
        return 5, "output-exists"  # a folder where a file goes
    written = EXPORT_FILES if command == "export-safetensors" else TOKENIZE_FILES
    if not force or any(name in written for name in foreign):
        return 5, "output-exists"
    return 0, None


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, str, bool, list[str]]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    relation = draw(st.sampled_from(relations(command)))
    force = draw(st.booleans())
    planted = EXPORT_FILES + TOKENIZE_FILES + ("notes.md", "epoch-000.apr", "keep.bin")
    foreign = draw(st.lists(st.sampled_from(planted), min_size=1, max_size=3, unique=True))
    return command, relation, force, foreign


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
@settings(max_examples=60)
@given(layout=layouts())
@example(layout=("tokenize", "foreign-folder", True, ["manifest.json", "keep.bin"]))  # a collision found late
@example(layout=("export-safetensors", "foreign-folder", True, ["epoch-000.apr"]))  # -o runs/ckpt -f
@example(layout=("stamp-o", "hardlink", True, ["keep.bin"]))
def test_falsify_reliability_008_every_command_refuses_or_keeps_foreign_files(assets, layout) -> None:
    command, relation, force, foreign = layout
    with workspace() as root:
        given_input, output, cwd = build_layout(root, assets, command, relation, foreign)
        before = snapshot(root)
        argv = COMMANDS[command][2](given_input, output) + (["--force"] if force else [])
        with contextlib.chdir(cwd):
            code, document = run_cli(argv)
        after = snapshot(root)
        want_code, want_error = expected_outcome(command, relation, force, foreign)
        assert code == want_code, (argv, relation, document)
        if want_error is not None:
            assert document["error"]["code"] == want_error, document
            assert after == before, "a refused command changed the folder"
            return
        replaced = {"out"} if relation == "foreign-file" else set()
        kept = {k: v for k, v in before.items() if k not in replaced}
        assert {k: after.get(k) for k in kept} == kept, "a file the command did not write was changed or lost"


# --- the reproducers ------------------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_export_into_cwd_holding_the_input(assets, tmp_path, monkeypatch) -> None:
    """`apr export model.apr -o . -f` emptied the folder, the input included."""
    shutil.copyfile(assets["apr"], tmp_path / "model.apr")
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, document = run_cli(["export", "model.apr", "-o", ".", "-f"])
    assert code == 5 and document["error"]["code"] == "output-is-input"
    assert "contains the input" in document["error"]["message"]
    assert snapshot(tmp_path) == before


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_export_beside_other_checkpoints_keeps_them(assets, tmp_path) -> None:
    """`-o runs/ckpt -f` deleted the other checkpoints there: now it writes beside them, a rerun
    replaces only its own files, and a foreign file where it writes is refused."""
    ckpt = tmp_path / "runs" / "ckpt"
    ckpt.mkdir(parents=True)
    for name in ("epoch-000.apr", "epoch-001.apr"):
        shutil.copyfile(assets["apr"], ckpt / name)
    theirs = snapshot(ckpt)
    model = os.fspath(assets["apr"])
    code, document = run_cli(["export", model, "-o", os.fspath(ckpt)])
    assert code == 5 and "not written by" in document["error"]["message"]
    assert run_cli(["export", model, "-o", os.fspath(ckpt), "-f"])[0] == 0
    assert {k: v for k, v in snapshot(ckpt).items() if k in theirs} == theirs
    assert set(os.listdir(ckpt)) == {*theirs, *EXPORT_FILES, ".apr-output.json"}
    code, document = run_cli(["export", model, "-o", os.fspath(ckpt)])
    assert code == 5 and "previous `apr export --format safetensors` output" in document["error"]["message"]
    (ckpt / "tokenizer.json").unlink()
    (ckpt / "tokenizer.json").write_text("the user's own tokenizer")  # no longer the export's file
    code, document = run_cli(["export", model, "-o", os.fspath(ckpt), "-f"])
    assert code == 5 and "'tokenizer.json', which apr export" in document["error"]["message"]
    assert (ckpt / "tokenizer.json").read_text() == "the user's own tokenizer"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_a_rerun_removes_only_its_own_stale_files(assets, tmp_path) -> None:
    """A file an earlier export wrote that this one does not is removed; a foreign one stays."""
    from apr.format.outputs import check_folder_output, folder_output, read_manifest

    out = tmp_path / "out"
    target = check_folder_output(out, command="apr tokenize", force=False)
    with folder_output(target) as staging:
        (staging / "shard-00000.bin").write_bytes(b"a")
        (staging / "shard-00001.bin").write_bytes(b"b")
    (out / "mine.txt").write_text("foreign")
    target = check_folder_output(out, command="apr tokenize", force=True)
    assert target.foreign == ("mine.txt",) and sorted(target.previous) == ["shard-00000.bin", "shard-00001.bin"]
    with folder_output(target) as staging:
        (staging / "shard-00000.bin").write_bytes(b"c")
    assert sorted(os.listdir(out)) == [".apr-output.json", "mine.txt", "shard-00000.bin"]
    assert (out / "shard-00000.bin").read_bytes() == b"c" and (out / "mine.txt").read_text() == "foreign"
    assert read_manifest(out)[1]["shard-00000.bin"].sha256 == hashlib.sha256(b"c").hexdigest()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_a_killed_commit_is_completed_by_the_next_run(tmp_path, monkeypatch) -> None:
    """A kill after the commit point leaves a committed folder; the next run rolls it forward."""
    import apr.format.outputs as outputs

    out = tmp_path / "out"
    with outputs.folder_output(outputs.check_folder_output(out, command="apr tokenize", force=False)) as staging:
        for name in ("a.bin", "b.bin", "c.bin"):
            (staging / name).write_bytes(b"old " + name.encode())
    real_replace, moved = os.replace, []

    def dies_after_one(src, dst):  # the writer "dies" after moving one file in
        if ".commit-" in os.fspath(src) and moved:
            raise KeyboardInterrupt
        moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        with outputs.folder_output(outputs.check_folder_output(out, command="apr tokenize", force=True)) as staging:
            for name in ("a.bin", "b.bin"):
                (staging / name).write_bytes(b"new " + name.encode())
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    (committed,) = [p for p in tmp_path.iterdir() if ".commit-" in p.name]
    dead = committed.with_name(f".out.commit-{2**22 + 1}-x")  # as if its writer were gone
    committed.rename(dead)
    outputs.check_folder_output(out, command="apr tokenize", force=True)  # the next run recovers first
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert sorted(os.listdir(out)) == [".apr-output.json", "a.bin", "b.bin"]  # c.bin: the old run's, removed
    assert [(out / n).read_bytes() for n in ("a.bin", "b.bin")] == [b"new a.bin", b"new b.bin"]


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_conversions_onto_their_own_input(assets, tmp_path) -> None:
    """`import m.gguf -o m.gguf -f`, `import hf -o hf/model.safetensors -f` and
    `export m.apr --format gguf -o m.apr -f` replaced their own input."""
    gguf, apr, hf = tmp_path / "m.gguf", tmp_path / "m.apr", tmp_path / "hf"
    shutil.copyfile(assets["gguf"], gguf)
    shutil.copyfile(assets["apr"], apr)
    shutil.copytree(assets["hf"], hf)
    before = snapshot(tmp_path)
    for argv in (["import", os.fspath(gguf), "-o", os.fspath(gguf), "-f"],
                 ["import", os.fspath(hf), "-o", os.fspath(hf / "model.safetensors"), "-f"],
                 ["import", os.fspath(hf / "model.safetensors"), "-o", os.fspath(hf / "config.json"), "-f"],
                 ["export", os.fspath(apr), "--format", "gguf", "-o", os.fspath(apr), "-f"]):
        code, document = run_cli(argv)
        assert (code, document["error"]["code"]) == (5, "output-is-input"), argv
    assert snapshot(tmp_path) == before


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_demo_refuses_a_foreign_folder(tmp_path, monkeypatch) -> None:
    """`apr demo -o .` deleted data/ and runs/ and overwrote config.json, without --force."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    (tmp_path / "config.json").write_text('{"mine": 1}')
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, document = run_cli(["demo", "-o", "."])
    assert code == 5 and document["error"]["code"] == "output-exists"
    assert "not a previous `apr demo` folder" in document["error"]["message"]
    assert snapshot(tmp_path) == before


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_demo_reclaims_only_a_previous_demos_files(tmp_path) -> None:
    from apr.cli.demo_cmd import DEMO_COMMAND, claim_folder
    from apr.errors import OutputExistsError
    from apr.format.outputs import record_tree

    root = tmp_path / "demo-out"
    assert claim_folder(root) == []  # a new folder
    (root / "runs" / "scratch").mkdir(parents=True)
    (root / "runs" / "scratch" / "epoch-000.apr").write_bytes(b"ckpt")
    (root / "config.json").write_text("{}")
    record_tree(root, DEMO_COMMAND)  # what the demo does after each step
    assert claim_folder(root) == ["config.json", "runs/scratch/epoch-000.apr"]
    assert sorted(os.listdir(root)) == [".apr-output.json"]
    (root / "notes.md").write_text("the user's")
    with pytest.raises(OutputExistsError, match=r"notes\.md"):
        claim_folder(root)
    assert (root / "notes.md").read_text() == "the user's"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_pretrain_refuses_a_run_dir_holding_its_init(tmp_path) -> None:
    """`--init runs/a/ckpt/epoch-002.apr --run-dir runs/a --force` would overwrite its starting point."""
    ckpt = tmp_path / "runs" / "a" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "epoch-002.apr").write_bytes(b"weights")
    before = snapshot(tmp_path)
    code, document = run_cli(["pretrain", "--dataset", os.fspath(tmp_path / "data"), "--run-dir",
                              os.fspath(tmp_path / "runs" / "a"), "--init", os.fspath(ckpt / "epoch-002.apr"), "-f"])
    assert (code, document["error"]["code"]) == (5, "output-is-input")
    assert snapshot(tmp_path) == before


@pytest.mark.falsifies("FALSIFY-RELIABILITY-008")
def test_falsify_reliability_008_manifest_cannot_reach_outside(tmp_path) -> None:
    """A planted manifest naming ../victim or an absolute path never makes a command delete it."""
    from apr.format.outputs import MANIFEST_NAME, check_folder_output, file_record, remove_previous

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    record = file_record(victim)
    entry = {"size": record.size, "sha256": record.sha256}
    (out / MANIFEST_NAME).write_text(json.dumps({"format": "apr-output/1", "command": "apr demo", "files": {
        "../victim.txt": entry, os.fspath(victim): entry, "link/victim.txt": entry}}))
    target = check_folder_output(out, command="apr demo", force=True)
    assert target.previous == {} and remove_previous(target) == []
    assert victim.read_text() == "keep"
