"""`apr.format.output_manifest` rule by rule (issue 23): what a folder output's ``.apr-output.json``
records (each file's size and sha256, sorted, no times: the exact bytes are interface), which of its
entries a reader trusts (a planted or damaged manifest gives nothing, an entry that could leave the
folder is dropped), and when a listed file still counts as the command's own (`is_ours`: only while
it is exactly what was recorded, so a rerun never deletes what the command did not write).
Expected digests come from `hashlib` on the bytes the test wrote, never from the module.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from apr.format import output_manifest as om
from apr.format.output_manifest import (
    MANIFEST_NAME,
    FileRecord,
    file_record,
    is_internal,
    is_ours,
    is_within,
    manifest_bytes,
    read_manifest,
    record_tree,
    safe_name,
    walk,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(folder: Path, document: object) -> None:
    (folder / MANIFEST_NAME).write_text(json.dumps(document), encoding="utf-8")


GOOD = {"format": "apr-output/1", "command": "apr export", "files": {"a.bin": {"size": 3, "sha256": "ab"}}}


# --- names and constants --------------------------------------------------------------------------


def test_the_names_on_disk_are_interface():
    assert (om.MANIFEST_NAME, om.MANIFEST_FORMAT) == (".apr-output.json", "apr-output/1")
    assert (om.IN_FOLDER_TMP, om.IN_FOLDER_COMMIT) == (".apr-output.tmp-", ".apr-output.commit-")


def test_is_within_compares_whole_parts():
    assert is_within(Path("/a"), Path("/a")) is True
    assert is_within(Path("/a/b/c"), Path("/a")) is True
    assert is_within(Path("/ab"), Path("/a")) is False  # a common prefix is not containment
    assert is_within(Path("/a"), Path("/a/b")) is False


@pytest.mark.parametrize("name", ["a", "a.bin", "sub/a.bin", "deep/er/x", "..a", "a..", ".hidden", "é/ß.bin"])
def test_safe_names_are_kept_as_given(name):
    assert safe_name(name) == name


@pytest.mark.parametrize("name", [
    "", ".", "..", "/a", "//a", "/", "a/..", "../a", "a/../b", "./a", "a/.", "a/./b", "a//b", "a/", "a\\b", "\\",
    "a\x00b", None, 5, b"a", ["a"],
])
def test_unsafe_names_are_dropped(name):
    assert safe_name(name) is None


def test_is_internal_names_only_the_policys_own_files():
    assert is_internal(".apr-output.json") and is_internal(".apr-output.tmp-12-x") and is_internal(".apr-output.")
    assert is_internal(".apr-output.commit-9")
    for name in (".apr-output", "apr-output.json", "x.apr-output.json", "sub/.apr-output.json", "a.json"):
        assert not is_internal(name), name


# --- file_record ----------------------------------------------------------------------------------


def test_file_record_is_size_and_sha256(tmp_path: Path):
    for data in (b"", b"x", bytes(range(256)) * 5):
        (tmp_path / "f").write_bytes(data)
        assert file_record(tmp_path / "f") == FileRecord(len(data), _sha(data))
        assert file_record(str(tmp_path / "f")) == FileRecord(len(data), _sha(data))


def test_file_record_adds_up_every_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Read in chunks of `_HASH_CHUNK` bytes: a file of several chunks counts and hashes all of them."""
    monkeypatch.setattr(om, "_HASH_CHUNK", 7)
    data = bytes(range(50))
    (tmp_path / "f").write_bytes(data)
    assert file_record(tmp_path / "f") == FileRecord(50, _sha(data))


def test_file_record_fsyncs_only_when_asked_and_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "f").write_bytes(b"abc")
    synced: list[int] = []
    closed: list[int] = []
    real_close = os.close
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    monkeypatch.setattr(os, "close", lambda fd: (closed.append(fd), real_close(fd)))
    assert file_record(tmp_path / "f") == FileRecord(3, _sha(b"abc")) and synced == [] and len(closed) == 1
    assert file_record(tmp_path / "f", sync=True) == FileRecord(3, _sha(b"abc"))
    assert synced == [closed[1]]


def test_file_record_of_a_missing_file_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        file_record(tmp_path / "missing")


# --- manifest_bytes: the exact document -----------------------------------------------------------


def test_manifest_bytes_are_exact_sorted_and_utf8():
    files = {"z.bin": FileRecord(2, "ff"), "a/é.bin": FileRecord(0, "00")}
    expected = ('{\n "format": "apr-output/1",\n "command": "apr export --format safetensors",\n "files": {\n'
                '  "a/é.bin": {\n   "size": 0,\n   "sha256": "00"\n  },\n'
                '  "z.bin": {\n   "size": 2,\n   "sha256": "ff"\n  }\n }\n}\n').encode()
    assert manifest_bytes("apr export --format safetensors", files) == expected
    assert manifest_bytes("c", {}) == b'{\n "format": "apr-output/1",\n "command": "c",\n "files": {}\n}\n'


def test_manifest_bytes_read_back_to_the_same_records(tmp_path: Path):
    files = {"b": FileRecord(5, "x" * 64), "a/c": FileRecord(7, "y" * 64)}
    (tmp_path / MANIFEST_NAME).write_bytes(manifest_bytes("apr tokenize", files))
    assert read_manifest(tmp_path) == ("apr tokenize", files)
    assert read_manifest(str(tmp_path)) == ("apr tokenize", files)


# --- read_manifest: data from the disk -------------------------------------------------------------


def test_a_missing_manifest_is_nothing(tmp_path: Path):
    assert read_manifest(tmp_path) == (None, {})
    assert read_manifest(tmp_path / "no-such-folder") == (None, {})


def test_a_manifest_that_is_not_a_regular_file_is_nothing(tmp_path: Path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    _manifest(real, GOOD)
    assert read_manifest(real)[0] == "apr export"
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).symlink_to(real / MANIFEST_NAME)  # a link to a valid manifest: not trusted
    assert read_manifest(out) == (None, {})
    (out / MANIFEST_NAME).unlink()
    (out / MANIFEST_NAME).mkdir()
    assert read_manifest(out) == (None, {})


def test_the_size_bound_is_16_mib(tmp_path: Path):
    """A manifest of exactly 16 MiB is read; one byte more is refused unread."""
    assert om._MAX_MANIFEST_BYTES == 16 * 1024 * 1024
    text = json.dumps(GOOD).encode("utf-8")
    (tmp_path / MANIFEST_NAME).write_bytes(text + b" " * (16 * 1024 * 1024 - len(text)))
    assert read_manifest(tmp_path) == ("apr export", {"a.bin": FileRecord(3, "ab")})
    with open(tmp_path / MANIFEST_NAME, "ab") as handle:
        handle.write(b" ")
    assert read_manifest(tmp_path) == (None, {})


@pytest.mark.parametrize("raw", [
    b"\xff\xfe not utf-8", b"{not json", b"", b"[" * 100_000 + b"]" * 100_000, b"NaN x",
])
def test_unreadable_bytes_are_nothing(tmp_path: Path, raw: bytes):
    (tmp_path / MANIFEST_NAME).write_bytes(raw)
    assert read_manifest(tmp_path) == (None, {})


def test_a_manifest_in_utf8_with_a_non_ascii_name(tmp_path: Path):
    document = {"format": "apr-output/1", "command": "apr é", "files": {"é.bin": {"size": 1, "sha256": "s"}}}
    (tmp_path / MANIFEST_NAME).write_bytes(json.dumps(document, ensure_ascii=False).encode("utf-8"))
    assert read_manifest(tmp_path) == ("apr é", {"é.bin": FileRecord(1, "s")})


@pytest.mark.parametrize("document", [
    [GOOD], "apr-output/1", None,
    {**GOOD, "format": "apr-output/2"}, {k: v for k, v in GOOD.items() if k != "format"},
    {**GOOD, "command": 5}, {**GOOD, "command": None}, {k: v for k, v in GOOD.items() if k != "command"},
    {**GOOD, "files": [["a.bin", {"size": 3, "sha256": "ab"}]]}, {**GOOD, "files": None},
    {k: v for k, v in GOOD.items() if k != "files"},
])
def test_a_document_of_the_wrong_shape_is_nothing(tmp_path: Path, document):
    _manifest(tmp_path, document)
    assert read_manifest(tmp_path) == (None, {})


def test_an_empty_file_list_is_a_command_with_no_files(tmp_path: Path):
    _manifest(tmp_path, {**GOOD, "files": {}})
    assert read_manifest(tmp_path) == ("apr export", {})


def test_each_bad_entry_is_dropped_and_the_good_ones_kept(tmp_path: Path):
    files = {
        "ok.bin": {"size": 3, "sha256": "ab"},
        "zero.bin": {"size": 0, "sha256": "e3"},  # size 0: the smallest valid size
        "extra.bin": {"size": 1, "sha256": "cd", "mtime": 5},  # unknown keys are ignored
        "../escape.bin": {"size": 3, "sha256": "ab"},
        "/abs.bin": {"size": 3, "sha256": "ab"},
        ".": {"size": 3, "sha256": "ab"},
        "not-a-dict": [3, "ab"],
        "negative": {"size": -1, "sha256": "ab"},
        "bool-size": {"size": True, "sha256": "ab"},
        "float-size": {"size": 3.0, "sha256": "ab"},
        "text-size": {"size": "3", "sha256": "ab"},
        "no-size": {"sha256": "ab"},
        "no-sha": {"size": 3},
        "int-sha": {"size": 3, "sha256": 5},
        "null-sha": {"size": 3, "sha256": None},
    }
    _manifest(tmp_path, {**GOOD, "files": files})
    assert read_manifest(tmp_path) == ("apr export", {"ok.bin": FileRecord(3, "ab"), "zero.bin": FileRecord(0, "e3"),
                                                      "extra.bin": FileRecord(1, "cd")})


# --- is_ours: still exactly what was recorded -------------------------------------------------------


def test_is_ours_only_for_the_exact_recorded_file(tmp_path: Path):
    data = b"the output"
    (tmp_path / "f.bin").write_bytes(data)
    record = FileRecord(len(data), _sha(data))
    assert is_ours(tmp_path, "f.bin", record) is True
    assert is_ours(tmp_path, "f.bin", FileRecord(len(data) + 1, _sha(data))) is False  # size differs
    assert is_ours(tmp_path, "f.bin", FileRecord(len(data), _sha(b"the outpuT"))) is False  # same size, other bytes
    assert is_ours(tmp_path, "missing.bin", record) is False


def test_a_folder_or_a_link_is_never_ours(tmp_path: Path):
    data = b"the output"
    record = FileRecord(len(data), _sha(data))
    (tmp_path / "real.bin").write_bytes(data)
    (tmp_path / "link.bin").symlink_to(tmp_path / "real.bin")  # the same bytes through a link
    assert is_ours(tmp_path, "link.bin", record) is False
    (tmp_path / "dir").mkdir()
    assert is_ours(tmp_path, "dir", FileRecord(os.lstat(tmp_path / "dir").st_size, _sha(b""))) is False


def test_a_file_reached_through_a_linked_folder_is_not_ours(tmp_path: Path):
    """``sub`` is a link to a folder outside: ``sub/f.bin`` is a regular file of the recorded size and
    digest, but it lies outside the output folder, so a rerun must not remove it."""
    data = b"outside"
    outside, out = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    (outside / "f.bin").write_bytes(data)
    (out / "sub").symlink_to(outside)
    assert is_ours(out, "sub/f.bin", FileRecord(len(data), _sha(data))) is False
    # the same layout with a real folder is ours
    (out / "real").mkdir()
    (out / "real" / "f.bin").write_bytes(data)
    assert is_ours(out, "real/f.bin", FileRecord(len(data), _sha(data))) is True


def test_an_output_folder_reached_through_a_link_still_owns_its_files(tmp_path: Path):
    data = b"x"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f").write_bytes(data)
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    assert is_ours(tmp_path / "alias", "f", FileRecord(1, _sha(data))) is True


def test_a_file_that_cannot_be_read_is_not_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = b"x"
    (tmp_path / "f").write_bytes(data)

    def unreadable(path, *, sync=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(om, "file_record", unreadable)
    assert is_ours(tmp_path, "f", FileRecord(1, _sha(data))) is False


# --- walk and record_tree -----------------------------------------------------------------------------


def test_walk_lists_files_and_folders_sorted_and_never_follows_links(tmp_path: Path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "hidden.bin").write_bytes(b"h")
    out = tmp_path / "out"
    (out / "b" / "c").mkdir(parents=True)
    (out / "empty").mkdir()
    (out / "z.bin").write_bytes(b"z")
    (out / "b" / "y.bin").write_bytes(b"y")
    (out / "b" / "c" / "x.bin").write_bytes(b"x")
    (out / "a-link").symlink_to(outside)  # a link to a folder: listed as a file, not entered
    (out / "f-link").symlink_to(out / "z.bin")
    assert walk(out) == (["a-link", "b/c/x.bin", "b/y.bin", "f-link", "z.bin"], ["b", "b/c", "empty"])
    assert walk(tmp_path / "empty-dir-missing") == ([], [])


def test_record_tree_records_every_regular_file_but_links_and_its_own(tmp_path: Path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.bin").write_bytes(b"aaa")
    (out / "sub" / "b.bin").write_bytes(b"")
    (out / "link.bin").symlink_to(out / "a.bin")
    (out / ".apr-output.tmp-1-x").write_bytes(b"staging")
    (out / MANIFEST_NAME).write_bytes(b"an older manifest")
    expected = {"a.bin": FileRecord(3, _sha(b"aaa")), "sub/b.bin": FileRecord(0, _sha(b""))}
    assert record_tree(out, "apr tokenize") == expected
    assert (out / MANIFEST_NAME).read_bytes() == manifest_bytes("apr tokenize", expected)
    assert read_manifest(out) == ("apr tokenize", expected)
    assert sorted(os.listdir(out)) == sorted([".apr-output.tmp-1-x", MANIFEST_NAME, "a.bin", "link.bin", "sub"])


def test_record_tree_of_an_empty_folder(tmp_path: Path):
    assert record_tree(str(tmp_path), "apr x") == {}
    assert read_manifest(tmp_path) == ("apr x", {})


def test_a_bad_entry_before_good_ones_does_not_stop_the_reading(tmp_path: Path):
    """Each entry is judged on its own: an unsafe name or a malformed record early in the list drops
    only itself, never the entries after it."""
    files = {"../escape": {"size": 1, "sha256": "aa"}, "first.bin": {"size": 1, "sha256": "bb"},
             "bad-record": "nope", "second.bin": {"size": 2, "sha256": "cc"},
             "bad-size": {"size": -1, "sha256": "dd"}, "third.bin": {"size": 3, "sha256": "ee"}}
    _manifest(tmp_path, {**GOOD, "files": files})
    assert read_manifest(tmp_path) == ("apr export", {"first.bin": FileRecord(1, "bb"),
                                                      "second.bin": FileRecord(2, "cc"),
                                                      "third.bin": FileRecord(3, "ee")})
