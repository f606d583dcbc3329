"""`apr.stamp.file.stamp_file` and `recover_file` (issue 23): every field of a `StampResult` for
each route (``-o`` rewrite, in place, unchanged, in-place fallback rewrite), the checks made before
anything is written, and the errors each failure becomes (what they say, which exit code).

Expected values come from the input file (its size, its data section, its tensor count), not from
the result under test.
"""

from __future__ import annotations

import errno
import logging
import os
import types
from pathlib import Path

import pytest

import apr.stamp.file as stamp_module
from apr.errors import AprFileNotFoundError, AprIOError, EmptyPatchError, StampJournalError
from apr.format import open_file
from apr.format.atomic import temporary_prefix
from apr.format.header import parse_header
from apr.format.metadata import canonical_metadata
from apr.stamp import ProvenancePatch, recover_file, stamp_file
from stamp_builders import data_section, write_checkpoint

PATCH = ProvenancePatch(license="MIT", name="tiny")
EXPECTED_META = canonical_metadata({"architecture": "LlamaForCausalLM", "license": "MIT", "name": "tiny"})


@pytest.fixture
def src(tmp_path) -> str:
    return write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "LlamaForCausalLM"}, flags=0x0001)


def _data_offset(path: str) -> int:
    return parse_header(Path(path).read_bytes()[:64]).data_offset


def _fake_clock(monkeypatch, *times: float) -> None:
    ticks = iter(times)
    monkeypatch.setattr(stamp_module, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


def test_rewrite_result_field_by_field(tmp_path, src, monkeypatch) -> None:
    _fake_clock(monkeypatch, 10.0, 10.25)
    out = str(tmp_path / "out.apr")
    before = Path(src).read_bytes()
    result = stamp_file(src, PATCH, output=out)
    data = data_section(src)
    assert result.input == src and result.output == out
    assert result.mode == "rewrite"
    assert result.tensor_count == 2
    assert result.input_bytes == len(before)
    assert result.output_bytes == os.path.getsize(out) == _data_offset(out) + len(data) + 4
    assert result.tensor_bytes_copied == len(data)
    assert result.flags == 0x0001 | 0x0400
    assert result.metadata == EXPECTED_META
    assert result.copy_method in ("copy_file_range", "sendfile", "read/write")
    assert result.recovered == "none"
    assert result.damaged is None
    assert result.elapsed_ms == pytest.approx(250.0)
    assert Path(src).read_bytes() == before
    with open_file(out) as reader:
        assert dict(reader.metadata) == result.metadata


def test_in_place_result_field_by_field(src, monkeypatch) -> None:
    _fake_clock(monkeypatch, 3.0, 3.5)
    size = os.path.getsize(src)
    data = data_section(src)
    result = stamp_file(src, PATCH, in_place=True)
    assert result.input == result.output == src
    assert result.mode == "in-place"
    assert result.tensor_count == 2
    assert result.input_bytes == size == result.output_bytes == os.path.getsize(src)
    assert result.tensor_bytes_copied == 0
    assert result.copy_method == "none" and result.recovered == "none" and result.damaged is None
    assert result.flags == 0x0401
    assert result.metadata == EXPECTED_META
    assert result.elapsed_ms == pytest.approx(500.0)
    assert data_section(src) == data


def test_the_same_stamp_twice_is_unchanged(src) -> None:
    stamp_file(src, PATCH, in_place=True)
    raw = Path(src).read_bytes()
    again = stamp_file(src, PATCH, in_place=True)
    assert again.mode == "unchanged"
    assert again.input == again.output == src and again.recovered == "none"
    assert again.tensor_bytes_copied == 0 and again.copy_method == "none"
    assert again.output_bytes == again.input_bytes == len(raw)
    assert Path(src).read_bytes() == raw


def test_an_in_place_stamp_that_does_not_fit_rewrites(src, caplog) -> None:
    data = data_section(src)
    old_offset = _data_offset(src)
    with caplog.at_level(logging.INFO, logger="apr.stamp.file"):
        result = stamp_file(src, ProvenancePatch(description="d" * 6000), in_place=True)
    assert [r.getMessage() for r in caplog.records if r.name == "apr.stamp.file"] == [
        f"{src}: the new metadata does not fit before the data section; rewriting the file"]
    assert result.mode == "rewrite" and result.recovered == "none"
    assert result.output == src
    assert _data_offset(src) > old_offset
    assert result.tensor_bytes_copied == len(data)
    assert result.copy_method in ("copy_file_range", "sendfile", "read/write")
    assert result.output_bytes == os.path.getsize(src)
    assert data_section(src) == data


def test_in_place_through_a_symlink_stamps_the_real_file(tmp_path, src) -> None:
    link = tmp_path / "link.apr"
    link.symlink_to(src)
    result = stamp_file(str(link), ProvenancePatch(description="d" * 6000), in_place=True)
    assert result.mode == "rewrite"
    assert link.is_symlink()
    with open_file(src) as reader:
        assert reader.metadata["description"] == "d" * 6000


@pytest.mark.parametrize("in_place", [False, True])
def test_in_place_removes_stray_temporaries_of_a_killed_rewrite(tmp_path, src, in_place) -> None:
    stray = tmp_path / (temporary_prefix(src) + "999999-x")
    stray.write_bytes(b"half a file")
    if in_place:
        stamp_file(src, PATCH, in_place=True)
    else:
        assert recover_file(src) == "none"
    assert not stray.exists()


@pytest.mark.parametrize(("error", "reason"), [
    (OSError(errno.EACCES, "Permission denied"), "Permission denied"),
    (OSError("no errno"), "no errno"),  # no strerror: the error itself
])
def test_a_stray_that_cannot_be_removed_does_not_stop_the_stamp(src, monkeypatch, caplog, error, reason) -> None:
    def refuse(_path):
        raise error

    monkeypatch.setattr(stamp_module, "remove_stale_temporaries", refuse)
    with caplog.at_level(logging.WARNING, logger="apr.stamp.file"):
        assert stamp_file(src, PATCH, in_place=True).mode == "in-place"
        assert recover_file(src) == "none"
    real = os.path.realpath(src)
    assert [r.getMessage() for r in caplog.records if r.name == "apr.stamp.file"] == [
        f"{real}: could not remove stray temporaries: {reason}"] * 2


def test_in_place_reads_through_the_locked_descriptor(src, monkeypatch) -> None:
    real_read, seen = stamp_module.read_source, []

    def read_source(path, fd=None):
        seen.append((path, fd))
        assert fd is not None and os.fstat(fd).st_ino == os.stat(path).st_ino
        return real_read(path, fd)

    monkeypatch.setattr(stamp_module, "read_source", read_source)
    assert stamp_file(src, PATCH, in_place=True).mode == "in-place"
    assert len(seen) == 1 and seen[0][0] == src


# --- refusals before anything is written ----------------------------------------------------------


def test_an_empty_patch_is_refused(tmp_path, src) -> None:
    before = Path(src).read_bytes()
    with pytest.raises(EmptyPatchError) as info:
        stamp_file(src, ProvenancePatch(), output=str(tmp_path / "out.apr"))
    error = info.value
    assert error.exit_code == 5 and error.path == src
    assert error.message == (
        "apr stamp: at least one of --license, --data-source, --data-license, --hf-architecture, "
        "--hf-model-type, --architecture, --tokenizer, --name, --description must be specified — "
        "refusing to rewrite without changes")
    assert error.hint == "add the field to set, e.g. --license Apache-2.0"
    assert Path(src).read_bytes() == before and not (tmp_path / "out.apr").exists()


@pytest.mark.parametrize(("output", "in_place"), [(None, False), ("out.apr", True)])
def test_exactly_one_destination(tmp_path, src, output, in_place) -> None:
    with pytest.raises(ValueError, match=r"^give exactly one of output= and in_place=True$"):
        stamp_file(src, PATCH, output=str(tmp_path / output) if output else None, in_place=in_place)


@pytest.mark.parametrize("in_place", [False, True])
def test_a_missing_input(tmp_path, in_place) -> None:
    missing = str(tmp_path / "nope.apr")
    with pytest.raises(AprFileNotFoundError) as info:
        if in_place:
            stamp_file(missing, PATCH, in_place=True)
        else:
            stamp_file(missing, PATCH, output=str(tmp_path / "o.apr"))
    assert info.value.exit_code == 3 and info.value.path == missing
    assert info.value.message == "file not found" and info.value.hint == "check the path"
    with pytest.raises(AprFileNotFoundError):
        recover_file(missing)


def test_a_folder_is_not_a_file(tmp_path) -> None:
    folder = tmp_path / "d.apr"
    folder.mkdir()
    for call in (lambda: stamp_file(str(folder), PATCH, in_place=True), lambda: recover_file(str(folder))):
        with pytest.raises(AprFileNotFoundError) as info:
            call()
        assert info.value.message == "not a file (a folder or device)" and info.value.path == str(folder)
        assert info.value.hint == "pass the path of an .apr file, not a folder" and info.value.exit_code == 3


def test_a_stat_that_fails_otherwise_is_an_io_error(src, monkeypatch) -> None:
    real = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path) == src:
            raise OSError(errno.EIO, "Input/output error")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(stamp_module.os, "stat", stat)
    with pytest.raises(AprIOError) as info:
        stamp_file(src, PATCH, in_place=True)
    assert info.value.exit_code == 7 and info.value.path == src
    assert info.value.message == "cannot stat the file (Input/output error); nothing was written"


def test_output_is_the_input(src) -> None:
    from apr.errors import AprError

    with pytest.raises(AprError) as info:
        stamp_file(src, PATCH, output=src)
    assert info.value.exit_code == 5
    assert f"apr stamp {src} ... --in-place" in (info.value.hint or "")


def test_output_exists_needs_force(tmp_path, src) -> None:
    out = tmp_path / "out.apr"
    out.write_bytes(b"keep")
    from apr.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        stamp_file(src, PATCH, output=str(out))
    assert out.read_bytes() == b"keep"
    assert stamp_file(src, PATCH, output=str(out), force=True).mode == "rewrite"
    with open_file(str(out)) as reader:
        assert reader.metadata["license"] == "MIT"


def test_with_output_a_pending_journal_is_refused(tmp_path, src) -> None:
    from apr.stamp.journal import journal_path

    Path(journal_path(src)).write_bytes(b"not a journal")
    os.chmod(journal_path(src), 0o600)
    with pytest.raises(StampJournalError):
        stamp_file(src, PATCH, output=str(tmp_path / "o.apr"))
    assert not (tmp_path / "o.apr").exists()


def test_a_damaged_input_with_allow_damaged(tmp_path, src) -> None:
    raw = bytearray(Path(src).read_bytes())
    raw[-5] ^= 0xFF  # one data byte: the footer no longer matches
    Path(src).write_bytes(bytes(raw))
    out = str(tmp_path / "o.apr")
    from apr.errors import DamagedInputError

    with pytest.raises(DamagedInputError):
        stamp_file(src, PATCH, output=out)
    result = stamp_file(src, PATCH, output=out, allow_damaged=True)
    assert result.damaged is not None and result.mode == "rewrite"


# --- OS failures inside an in-place stamp: the file is unchanged, and the error says so -----------


def test_a_read_failure_in_place_says_the_file_was_not_changed(src, monkeypatch) -> None:
    before = Path(src).read_bytes()

    def fail(_path, _fd=None):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stamp_module, "read_source", fail)
    with pytest.raises(AprIOError) as info:
        stamp_file(src, PATCH, in_place=True)
    assert info.value.exit_code == 7 and info.value.path == src
    assert info.value.message == "cannot read the file (Input/output error); the file was not changed"
    assert Path(src).read_bytes() == before


@pytest.mark.parametrize("error_path", ["elsewhere.apr", None])
def test_an_io_error_from_the_reader_keeps_its_words_and_hint(src, monkeypatch, error_path) -> None:
    def fail(_path, _fd=None):
        raise AprIOError("short read", path=error_path, hint="check the disk")

    monkeypatch.setattr(stamp_module, "read_source", fail)
    with pytest.raises(AprIOError) as info:
        stamp_file(src, PATCH, in_place=True)
    assert info.value.message == "short read; the file was not changed"
    assert info.value.path == (error_path or src)
    assert info.value.hint == "check the disk"


def test_a_raw_os_error_elsewhere_in_place_is_not_written(src, monkeypatch) -> None:
    before = Path(src).read_bytes()

    def fail(_path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stamp_module, "recover", fail)
    with pytest.raises(AprIOError) as info:
        stamp_file(src, PATCH, in_place=True)
    assert info.value.message == "in-place stamp failed (no space left on device); the file was not changed"
    assert info.value.path == src
    assert Path(src).read_bytes() == before


def test_an_apr_error_in_place_passes_through(src, monkeypatch) -> None:
    error = StampJournalError("journal is corrupt", path=src)

    def fail(_path):
        raise error

    monkeypatch.setattr(stamp_module, "recover", fail)
    with pytest.raises(StampJournalError) as info:
        stamp_file(src, PATCH, in_place=True)
    assert info.value is error
    with pytest.raises(StampJournalError) as info:
        recover_file(src)
    assert info.value is error


def test_a_raw_os_error_in_recovery(src, monkeypatch) -> None:
    def fail(_path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stamp_module, "recover", fail)
    with pytest.raises(AprIOError) as info:
        recover_file(src)
    assert info.value.message == "recovery failed (Input/output error); nothing was written"
    assert info.value.path == src and info.value.exit_code == 7


def test_recover_reports_the_outcome(src, monkeypatch, caplog) -> None:
    monkeypatch.setattr(stamp_module, "recover", lambda _path: "rolled-back")
    assert recover_file(Path(src)) == "rolled-back"
    with caplog.at_level(logging.WARNING, logger="apr.stamp.file"):
        result = stamp_file(Path(src), PATCH, in_place=True)
    assert result.recovered == "rolled-back" and result.input == src
    assert [r.getMessage() for r in caplog.records if r.name == "apr.stamp.file"] == [
        f"{src}: an interrupted in-place stamp was rolled back first; the file was as before it"]
    assert stamp_file(src, PATCH, in_place=True).recovered == "rolled-back"  # the unchanged route too


def test_no_warning_without_a_roll_back(src, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="apr.stamp.file"):
        stamp_file(src, PATCH, in_place=True)
    assert [r for r in caplog.records if r.name == "apr.stamp.file"] == []
