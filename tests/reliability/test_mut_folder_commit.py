"""`apr.format.folder_commit`: a folder output staged and renamed into place, committed into an
existing folder (previous files of the same command replaced or removed, foreign ones kept, the
manifest last), and every failure in between (the staging folder refused, the block raising an
OSError, a project error or anything else, a collision found at commit time): the output folder is
left exactly as it was and no staging folder remains. A killed writer's commit is rolled forward,
its temporary removed, a legacy swap backup restored, by the next run and only for dead pids
(issue 23)."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import unittest.mock
from pathlib import Path

import pytest

from apr.errors import AprIOError, OutputExistsError
from apr.format import folder_commit
from apr.format.folder_commit import LEGACY_SWAP_COMMAND, apply_commit, folder_output, recover_folder, remove_previous
from apr.format.output_manifest import MANIFEST_NAME, FileRecord, file_record, manifest_bytes, read_manifest, record_tree
from apr.format.outputs import FolderTarget, check_folder_output

CMD = "apr tokenize"
PLAN = ".apr-commit.json"


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative posix path -> bytes); folders as ``name/``."""
    out: dict[str, bytes] = {}
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in dirs:
            out[(rel / name).as_posix() + "/"] = b""
        for name in names:
            out[(rel / name).as_posix()] = (Path(root) / name).read_bytes()
    return out


def _records(folder: Path, names) -> dict[str, FileRecord]:
    return {n: file_record(folder / n) for n in names}


def _previous(out: Path, files: dict[str, bytes], command: str = CMD) -> None:
    out.mkdir()
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    record_tree(out, command)


# --- a new folder -------------------------------------------------------------------------------------


def test_a_new_folder_is_staged_beside_it_and_renamed_with_its_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = check_folder_output(out, command=CMD, force=False)
    with folder_output(target) as staging:
        assert staging.parent == tmp_path
        assert re.fullmatch(rf"\.out\.tmp-{os.getpid()}-[0-9a-f]{{8}}", staging.name)
        assert sorted(os.listdir(staging)) == []
        (staging / "b.json").write_bytes(b"bee")
        (staging / "a.txt").write_bytes(b"ay")
        assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["out"]
    files = _tree(out)
    assert files.pop(MANIFEST_NAME) == manifest_bytes(CMD, _records(out, ["a.txt", "b.json"]))
    assert files == {"a.txt": b"ay", "b.json": b"bee"}


def test_the_files_are_fsynced_and_both_folders_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, bool]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        seen.append((info.st_ino, stat.S_ISDIR(info.st_mode)))
        real(fd)

    out = tmp_path / "out"
    target = check_folder_output(out, command=CMD, force=False)
    monkeypatch.setattr(os, "fsync", spy)
    with folder_output(target) as staging:
        (staging / "a").write_bytes(b"1")
    folders = [ino for ino, is_dir in seen if is_dir]
    assert (os.stat(out / "a").st_ino, False) in seen
    assert os.stat(out).st_ino in folders and os.stat(tmp_path).st_ino in folders


def test_nested_staging_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = check_folder_output(out, command=CMD, force=False)
    with pytest.raises(ValueError) as info, folder_output(target) as staging:
        (staging / "sub").mkdir()
    assert str(info.value) == "folder_output writes flat folders only; got ['sub']"
    with pytest.raises(ValueError) as info, folder_output(target) as staging:
        (staging / "f").write_bytes(b"")
        (staging / "g").write_bytes(b"")
        (staging / "sub").mkdir()
        (staging / "sub" / "x").write_bytes(b"")
    assert str(info.value) == "folder_output writes flat folders only; got ['sub']"
    assert os.listdir(tmp_path) == []


# --- failures leave the folder as it was ---------------------------------------------------------------


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    _previous(out, {"vocab.json": b"old vocab", "merges.txt": b"old merges"})
    (out / "notes.txt").write_bytes(b"foreign")
    return out


def test_a_staging_folder_that_cannot_be_made(existing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(existing.parent)
    target = check_folder_output(existing, command=CMD, force=True)

    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(AprIOError) as info, folder_output(target):
        pytest.fail("the block must not run")
    err = info.value
    assert err.path == str(existing) and err.exit_code == 7 and err.errno == errno.ENOSPC
    assert err.message.startswith(f"cannot create a folder in {existing.parent}: ")
    assert _tree(existing.parent) == before


def test_an_os_error_in_the_block_is_an_io_error_and_nothing_is_replaced(existing: Path) -> None:
    before = _tree(existing.parent)
    target = check_folder_output(existing, command=CMD, force=True)
    with pytest.raises(AprIOError) as info, folder_output(target) as staging:
        (staging / "vocab.json").write_bytes(b"new vocab")
        raise OSError(errno.EIO, "Input/output error")
    err = info.value
    assert err.path == str(existing) and err.message.startswith("cannot write: ")
    assert err.message.endswith("; nothing was replaced") and isinstance(err.__cause__, OSError)
    assert _tree(existing.parent) == before


@pytest.mark.parametrize("error", [OutputExistsError("planted", path="/x"), ValueError("bad"), KeyboardInterrupt()])
def test_any_other_error_passes_through_and_nothing_is_replaced(existing: Path, error: BaseException) -> None:
    before = _tree(existing.parent)
    target = check_folder_output(existing, command=CMD, force=True)
    with pytest.raises(type(error)) as info, folder_output(target) as staging:
        (staging / "vocab.json").write_bytes(b"new vocab")
        raise error
    assert info.value is error
    assert _tree(existing.parent) == before


def test_a_collision_found_at_commit_time_replaces_nothing(existing: Path) -> None:
    before = _tree(existing.parent)
    target = check_folder_output(existing, command=CMD, force=True)
    with pytest.raises(OutputExistsError) as info, folder_output(target) as staging:
        (staging / "vocab.json").write_bytes(b"new vocab")
        (staging / "notes.txt").write_bytes(b"would replace a foreign file")
    assert "notes.txt" in info.value.message
    assert _tree(existing.parent) == before


# --- a commit into an existing folder -------------------------------------------------------------------


def test_a_commit_replaces_ours_removes_our_obsolete_files_and_keeps_foreign_ones(existing: Path) -> None:
    (existing / "merges.txt").write_bytes(b"old merges")  # unchanged: still ours
    target = check_folder_output(existing, command=CMD, force=True)
    assert sorted(target.previous) == ["merges.txt", "vocab.json"] and target.foreign == ("notes.txt",)
    with folder_output(target) as staging:
        assert staging.parent == existing.parent
        (staging / "vocab.json").write_bytes(b"new vocab")
        (staging / "tokenizer.json").write_bytes(b"new tokenizer")
    files = _tree(existing)
    assert files.pop(MANIFEST_NAME) == manifest_bytes(CMD, _records(existing, ["tokenizer.json", "vocab.json"]))
    assert files == {"vocab.json": b"new vocab", "tokenizer.json": b"new tokenizer", "notes.txt": b"foreign"}
    assert sorted(os.listdir(existing.parent)) == ["out"]


def test_an_obsolete_file_changed_since_is_foreign_and_kept(existing: Path) -> None:
    (existing / "merges.txt").write_bytes(b"edited by hand")
    target = check_folder_output(existing, command=CMD, force=True)
    with folder_output(target) as staging:
        (staging / "vocab.json").write_bytes(b"new vocab")
    assert (existing / "merges.txt").read_bytes() == b"edited by hand"
    assert read_manifest(existing) == (CMD, _records(existing, ["vocab.json"]))


def test_the_staging_goes_inside_a_mount_point(existing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_commit, "_same_device", lambda a, b: False)
    target = check_folder_output(existing, command=CMD, force=True)
    with folder_output(target) as staging:
        assert staging.parent == existing
        assert re.fullmatch(rf"\.apr-output\.tmp-{os.getpid()}-[0-9a-f]{{8}}", staging.name)
        (staging / "vocab.json").write_bytes(b"new vocab")
    assert sorted(os.listdir(existing)) == [MANIFEST_NAME, "notes.txt", "vocab.json"]
    assert (existing / "vocab.json").read_bytes() == b"new vocab"


def test_same_device_is_assumed_when_it_cannot_be_told(tmp_path: Path) -> None:
    assert folder_commit._same_device(tmp_path, tmp_path.parent) is (os.stat(tmp_path).st_dev == os.stat(tmp_path.parent).st_dev)
    assert folder_commit._same_device(tmp_path / "gone", tmp_path) is True
    assert folder_commit._same_device(Path("/proc/self"), Path("/")) is False


# --- apply_commit -------------------------------------------------------------------------------------


def _committed(tmp_path: Path, files: dict[str, bytes], plan) -> Path:
    committed = tmp_path / ".out.commit-1-abc"
    committed.mkdir()
    for name, data in files.items():
        (committed / name).write_bytes(data)
    if plan is not None:
        (committed / PLAN).write_text(plan if isinstance(plan, str) else json.dumps(plan), encoding="utf-8")
    return committed


def test_apply_commit_follows_its_plan_and_moves_the_manifest_in_last(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old", "kept": b"changed later", "x": b"old x"})
    old, kept = file_record(out / "old"), file_record(out / "kept")
    (out / "kept").write_bytes(b"edited since")
    outside = tmp_path / "outside"
    outside.write_bytes(b"never")
    manifest = manifest_bytes(CMD, {"x": file_record(out / "x")})
    committed = _committed(tmp_path, {"x": b"new x", MANIFEST_NAME: manifest, ".apr-output.tmp-9": b""}, {
        "remove": {"../outside": {"size": 5, "sha256": file_record(outside).sha256}, "bad": 3,
                   "old": {"size": old.size, "sha256": old.sha256}, "kept": {"size": kept.size, "sha256": kept.sha256},
                   "nosize": {}}})
    order: list[str] = []
    real = os.replace

    def spy(src, dst):
        order.append(Path(dst).name)
        real(src, dst)

    with unittest.mock.patch.object(os, "replace", spy):
        apply_commit(committed, out)
    assert order == ["x", MANIFEST_NAME]
    assert _tree(out) == {"x": b"new x", "kept": b"edited since", MANIFEST_NAME: manifest}
    assert outside.read_bytes() == b"never" and not committed.exists()


@pytest.mark.parametrize("plan", [None, "not json", json.dumps(["remove"]), json.dumps({"remove": ["old"]}),
                                  json.dumps({"remove": {"old": {"size": "x"}}})])
def test_apply_commit_without_a_usable_plan_still_moves_the_files(tmp_path: Path, plan) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    committed = _committed(tmp_path, {"new": b"new"}, plan)
    if plan is not None and "size" in plan:
        with pytest.raises(ValueError):
            apply_commit(committed, out)
        return
    apply_commit(committed, out)
    assert (out / "new").read_bytes() == b"new" and (out / "old").read_bytes() == b"old"
    assert not committed.exists()


def test_a_plan_entry_without_a_size_removes_nothing(tmp_path: Path) -> None:
    """A plan is data from the disk: an entry must give both size and sha256 to match a file."""
    out = tmp_path / "out"
    _previous(out, {"one": b"x", "empty": b""})
    one, empty = file_record(out / "one"), file_record(out / "empty")
    apply_commit(_committed(tmp_path, {}, {"remove": {"one": {"sha256": one.sha256}, "empty": {"size": 0}}}), out)
    assert (out / "one").read_bytes() == b"x" and (out / "empty").read_bytes() == b""
    apply_commit(_committed(tmp_path, {}, {"remove": {"one": {"size": 1, "sha256": one.sha256},
                                                      "empty": {"size": 0, "sha256": empty.sha256}}}), out)
    assert not (out / "one").exists() and not (out / "empty").exists()


def test_apply_commit_without_a_manifest_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    manifest = (out / MANIFEST_NAME).read_bytes()
    apply_commit(_committed(tmp_path, {"new": b"new"}, {"remove": {}}), out)
    assert (out / MANIFEST_NAME).read_bytes() == manifest and (out / "new").read_bytes() == b"new"


def _refuse_rmdir(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every folder removal fail (a busy mount, a read-only parent); return what was asked."""
    asked: list[str] = []

    def refuse(path, *args, **kwargs):
        asked.append(os.fspath(path))
        raise OSError(errno.EBUSY, "Device or resource busy", path)

    monkeypatch.setattr(os, "rmdir", refuse)
    return asked


def test_a_commit_folder_that_cannot_be_removed_does_not_undo_the_commit(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    committed = _committed(tmp_path, {"new": b"new"}, {"remove": {}})
    asked = _refuse_rmdir(monkeypatch)
    apply_commit(committed, out)  # the files are in: a leftover folder is the next run's to remove
    assert asked and (out / "new").read_bytes() == b"new"


def test_folders_that_cannot_be_fsynced_still_get_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def no_folder_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd)

    monkeypatch.setattr(os, "fsync", no_folder_fsync)
    out = tmp_path / "out"
    with folder_output(check_folder_output(out, command=CMD, force=False)) as staging:
        (staging / "a").write_bytes(b"1")
    with folder_output(check_folder_output(out, command=CMD, force=True)) as staging:
        (staging / "a").write_bytes(b"2")
    assert (out / "a").read_bytes() == b"2" and sorted(os.listdir(tmp_path)) == ["out"]


# --- recover_folder -----------------------------------------------------------------------------------


def test_a_dead_writers_commit_is_completed(tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    old = file_record(out / "old")
    committed = tmp_path / f".out.commit-{dead_pid}-abcd"
    committed.mkdir()
    (committed / "new").write_bytes(b"new")
    manifest = manifest_bytes(CMD, {"new": file_record(committed / "new")})
    (committed / MANIFEST_NAME).write_bytes(manifest)
    (committed / PLAN).write_text(json.dumps({"remove": {"old": {"size": old.size, "sha256": old.sha256}}}))
    recover_folder(out)
    assert _tree(out) == {"new": b"new", MANIFEST_NAME: manifest}
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_dead_writers_commit_of_a_missing_folder_becomes_the_folder(tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "out"
    committed = tmp_path / f".out.commit-{dead_pid}-abcd"
    committed.mkdir()
    (committed / "new").write_bytes(b"new")
    (committed / PLAN).write_text("{}")
    recover_folder(out)
    assert _tree(out) == {"new": b"new"} and sorted(os.listdir(tmp_path)) == ["out"]
    committed.mkdir()  # a commit without a plan
    (committed / "again").write_bytes(b"x")
    os.rename(out, tmp_path / "moved")
    recover_folder(out)
    assert _tree(out) == {"again": b"x"}


def test_a_live_writers_commit_and_temporary_are_left_alone(tmp_path: Path, live_pid: int) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    for name in (f".out.commit-{live_pid}-a", f".out.tmp-{live_pid}-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "new").write_bytes(b"new")
    (out / f".apr-output.tmp-{live_pid}-c").mkdir()
    (out / f".apr-output.commit-{live_pid}-d").mkdir()
    before = _tree(tmp_path)
    recover_folder(out)
    assert _tree(tmp_path) == before


def test_a_dead_writers_temporaries_are_removed_beside_and_inside(tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    (tmp_path / f".out.tmp-{dead_pid}-b").mkdir()
    (tmp_path / f".out.tmp-{dead_pid}-b" / "half").write_bytes(b"x")
    (out / f".apr-output.tmp-{dead_pid}-c").mkdir()
    (out / f".apr-output.tmp-{dead_pid}-c" / "half").write_bytes(b"x")
    (out / ".apr-output.tmp-notapid").mkdir()
    recover_folder(out)
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, ".apr-output.tmp-notapid", "old"]


def test_a_dead_writers_in_folder_commit_is_completed(tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    committed = out / f".apr-output.commit-{dead_pid}-e"
    committed.mkdir()
    (committed / "new").write_bytes(b"new")
    recover_folder(out)
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "new", "old"] and (out / "new").read_bytes() == b"new"


def test_a_legacy_backup_is_restored_with_a_manifest_or_removed(tmp_path: Path, dead_pid: int, live_pid: int) -> None:
    out = tmp_path / "out"
    backup = tmp_path / f".out.old-{dead_pid}"
    backup.mkdir()
    (backup / "model.safetensors").write_bytes(b"weights")
    live = tmp_path / f".out.old-{live_pid}"
    live.mkdir()
    recover_folder(out)
    assert read_manifest(out) == (LEGACY_SWAP_COMMAND, _records(out, ["model.safetensors"]))
    assert sorted(os.listdir(tmp_path)) == [live.name, "out"]
    backup.mkdir()
    (backup / "stale").write_bytes(b"x")
    recover_folder(out)  # the folder is there: the backup goes
    assert sorted(os.listdir(tmp_path)) == [live.name, "out"] and "stale" not in os.listdir(out)


def test_a_restored_backup_keeps_its_own_manifest(tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "out"
    backup = tmp_path / f".out.old-{dead_pid}"
    _previous(backup, {"vocab.json": b"v"}, command=CMD)
    manifest = (backup / MANIFEST_NAME).read_bytes()
    recover_folder(out)
    assert (out / MANIFEST_NAME).read_bytes() == manifest


def test_leftovers_that_cannot_be_removed_do_not_stop_recovery(tmp_path: Path, dead_pid: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _previous(out, {"old": b"old"})
    (tmp_path / f".out.old-{dead_pid}").mkdir()
    (out / f".apr-output.tmp-{dead_pid}-c").mkdir()
    asked = _refuse_rmdir(monkeypatch)
    recover_folder(out)
    assert len(asked) == 2 and (out / "old").read_bytes() == b"old"


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), ValueError("bad name")])
def test_a_restored_backup_whose_manifest_cannot_be_written_is_still_restored(tmp_path: Path, dead_pid: int, error,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    backup = tmp_path / f".out.old-{dead_pid}"
    backup.mkdir()
    (backup / "model.safetensors").write_bytes(b"weights")

    def fail(folder, command):
        raise error

    monkeypatch.setattr(folder_commit, "record_tree", fail)
    recover_folder(out)
    assert _tree(out) == {"model.safetensors": b"weights"} and sorted(os.listdir(tmp_path)) == ["out"]


def test_recover_a_folder_whose_parent_is_missing(tmp_path: Path) -> None:
    recover_folder(tmp_path / "no" / "out")
    assert os.listdir(tmp_path) == []


# --- remove_previous ----------------------------------------------------------------------------------


def test_remove_previous_removes_ours_and_the_folders_it_empties(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous(out, {"a/b/c.txt": b"c", "a/d.txt": b"d", "e/f.txt": b"f", "g.txt": b"g", "h/i.txt": b"i"})
    (out / "g.txt").write_bytes(b"changed")
    (out / "h" / "foreign").write_bytes(b"mine")
    (out / "e" / "f.txt").unlink()
    (out / "e" / "f.txt").write_bytes(b"f")  # the same bytes again: still ours
    target = check_folder_output(out, command=CMD, force=True)
    assert remove_previous(target) == ["a/b/c.txt", "a/d.txt", "e/f.txt", "h/i.txt"]
    assert _tree(out) == {"g.txt": b"changed", "h/": b"", "h/foreign": b"mine",
                          MANIFEST_NAME: _tree(out)[MANIFEST_NAME]}


def test_remove_previous_skips_what_changed_after_the_check(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous(out, {"a.txt": b"a", "b.txt": b"b"})
    target = check_folder_output(out, command=CMD, force=True)
    (out / "a.txt").write_bytes(b"edited in between")
    assert remove_previous(target) == ["b.txt"] and (out / "a.txt").read_bytes() == b"edited in between"


def test_remove_previous_of_nothing(tmp_path: Path) -> None:
    assert remove_previous(FolderTarget(tmp_path, CMD, existed=True)) == []
