"""`apr.stamp.in_place` (issue 23): the lock, the journaled write of the prefix and footer, the
rollback and the journal's removal, with the on-disk outcome of each failure checked exactly.

The expected new bytes come from an independent oracle: the same patch stamped with ``-o`` into a
copy (INV-STAMP-003: both modes give the same bytes).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
from pathlib import Path
from unittest import mock

import pytest

from apr.errors import AprIOError, StampBusyError, StampVerificationError
from apr.stamp import ProvenancePatch, in_place, journal, stamp_file
from apr.stamp import file as stamp_module
from apr.stamp.source import read_source
from stamp_builders import write_checkpoint

PATCH = ProvenancePatch(license="MIT", name="tiny")


def _setup(tmp_path: Path, name: str = "m.apr"):
    """(target, old bytes, new bytes, an open read-write fd, its Source, the plan)."""
    target = Path(write_checkpoint(tmp_path / name))
    old = target.read_bytes()
    stamp_file(target, PATCH, output=tmp_path / "oracle.apr")
    new = (tmp_path / "oracle.apr").read_bytes()
    os.unlink(tmp_path / "oracle.apr")
    fd = os.open(target, os.O_RDWR)
    source = read_source(str(target), fd)
    plan = stamp_module._plan(source, PATCH)
    assert plan.fits_in_place and len(new) == len(old)
    return target, old, new, fd, source, plan


@pytest.fixture
def setup(tmp_path):
    target, old, new, fd, source, plan = _setup(tmp_path)
    yield target, old, new, fd, source, plan
    os.close(fd)


# --- locked -------------------------------------------------------------------------------------


def test_locked_yields_a_read_write_descriptor_under_an_exclusive_lock_and_closes_it(tmp_path) -> None:
    target = Path(write_checkpoint(tmp_path / "m.apr"))
    with in_place.locked(str(target)) as fd:
        assert os.pread(fd, 4, 0) == target.read_bytes()[:4]
        assert os.pwrite(fd, target.read_bytes()[:4], 0) == 4  # writable
        other = os.open(target, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)  # exclusive: not even a shared lock
        finally:
            os.close(other)
        assert os.get_inheritable(fd) is False
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


def test_locked_refuses_a_file_another_stamp_holds(tmp_path) -> None:
    target = Path(write_checkpoint(tmp_path / "m.apr"))
    holder = os.open(target, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(StampBusyError) as busy, in_place.locked(str(target)):
            pass
    finally:
        os.close(holder)
    assert busy.value.message == "another `apr stamp` is writing this file" and busy.value.path == str(target)
    assert busy.value.hint == "wait for it to finish, then run this stamp again"
    assert busy.value.__cause__ is None and busy.value.__suppress_context__


def test_locked_reports_a_file_it_cannot_open_or_lock(tmp_path) -> None:
    target = Path(write_checkpoint(tmp_path / "m.apr"))
    with mock.patch.object(os, "open", side_effect=PermissionError(errno.EACCES, "Permission denied")), \
            pytest.raises(AprIOError) as failed, in_place.locked(str(target)):
        pass
    assert failed.value.message == "cannot open the file for writing (Permission denied); nothing was written"
    assert failed.value.hint == "check the file's permissions, or stamp a copy with -o"
    with mock.patch.object(fcntl, "flock", side_effect=OSError(errno.ENOLCK, "No locks available")), \
            pytest.raises(AprIOError) as failed, in_place.locked(str(target)):
        pass
    assert failed.value.message == "cannot lock the file (No locks available); nothing was written"
    assert failed.value.hint == "the filesystem refuses locks (some network mounts): stamp a local copy with -o"
    assert failed.value.path == str(target)


# --- _reason ----------------------------------------------------------------------------------------


def test_reason_of_each_kind_of_failure() -> None:
    assert in_place._reason(AprIOError("the message", path="p", hint="h")) == "the message"
    assert in_place._reason(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    assert in_place._reason(OSError(errno.EIO, "Input/output error")) == "Input/output error"
    assert in_place._reason(OSError("bare")) == "bare"
    assert in_place._reason(ValueError("other")) == "other"


# --- patch_in_place: the happy path ------------------------------------------------------------------


def test_patch_in_place_writes_the_plan_under_a_journal_and_removes_it(tmp_path, setup) -> None:
    target, old, new, fd, source, plan = setup
    written: list[tuple[int, int]] = []
    real_pwrite = os.pwrite
    seen_journal: list[bytes] = []

    def pwrite(fd_, data, offset):
        if not written:  # the journal is durable before the first byte of the target is written
            seen_journal.append(Path(journal.journal_path(target)).read_bytes())
        written.append((offset, len(data)))
        return real_pwrite(fd_, data, offset)

    with mock.patch.object(os, "pwrite", pwrite):
        in_place.patch_in_place(fd, source, plan)
    assert target.read_bytes() == new
    length = len(plan.prefix)
    # the prefix in two halves (the crash points rely on it), then the footer: nothing else
    assert written == [(0, length // 2), (length // 2, length - length // 2), (len(old) - 4, 4)]
    info = target.stat()
    (record_bytes,) = seen_journal
    record = journal.Journal.from_bytes(record_bytes, "j")
    assert (record.device, record.inode, record.file_size) == (info.st_dev, info.st_ino, len(old))
    assert (record.old_prefix, record.old_footer) == (old[:length], int.from_bytes(old[-4:], "little"))
    assert (record.new_prefix, record.new_footer) == (new[:length], int.from_bytes(new[-4:], "little"))
    assert os.listdir(tmp_path) == ["m.apr"]


def test_patch_in_place_refuses_a_file_changed_since_it_was_read(tmp_path) -> None:
    for change in ("inode", "size"):
        folder = tmp_path / change
        folder.mkdir()
        target, old, _new, fd, source, plan = _setup(folder)
        try:
            if change == "size":
                os.ftruncate(fd, len(old) + 1)
            else:
                os.close(fd)
                os.rename(target, folder / "aside")  # kept, so the new file cannot reuse its inode number
                target.write_bytes(old)
                fd = os.open(target, os.O_RDWR)
            before = target.read_bytes()
            with pytest.raises(AprIOError) as refused:
                in_place.patch_in_place(fd, source, plan)
        finally:
            os.close(fd)
        assert refused.value.message == "the file changed between reading and writing it"
        assert refused.value.hint == "another program is writing this file; retry when it is done"
        assert refused.value.path == str(target)
        assert target.read_bytes() == before
        assert sorted(os.listdir(folder)) == (["aside", "m.apr"] if change == "inode" else ["m.apr"])


def test_patch_in_place_cannot_stat_the_file(tmp_path, setup) -> None:
    target, old, _new, fd, source, plan = setup
    with mock.patch.object(os, "fstat", side_effect=OSError(errno.EIO, "Input/output error")), \
            pytest.raises(AprIOError) as failed:
        in_place.patch_in_place(fd, source, plan)
    assert failed.value.message == "cannot stat the file (Input/output error); nothing was written"
    assert failed.value.path == str(target) and target.read_bytes() == old


# --- patch_in_place: failures roll back ---------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_failed_write_is_rolled_back_and_said(tmp_path, setup, k) -> None:
    target, old, _new, fd, source, plan = setup
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def pwrite(fd_, data, offset):
        calls["n"] += 1
        if calls["n"] == k:
            real_pwrite(fd_, data[: len(data) // 2], offset)  # part of it landed
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd_, data, offset)

    with mock.patch.object(os, "pwrite", pwrite), pytest.raises(AprIOError) as failed:
        in_place.patch_in_place(fd, source, plan)
    error = failed.value
    assert error.message == "in-place write failed: no space left on device; the file was restored as it was"
    assert error.hint == ("free space or fix the disk, then stamp again; or stamp a copy: "
                          f"apr stamp {target} ... -o OUT")
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC
    assert error.path == str(target)
    assert target.read_bytes() == old and os.listdir(tmp_path) == ["m.apr"]


def test_a_failed_verification_is_rolled_back_and_said(tmp_path, setup) -> None:
    target, old, _new, fd, source, plan = setup
    wrong = StampVerificationError("stamped output failed verification: footer", path=str(target))
    with mock.patch.object(in_place, "verify_stamped", side_effect=wrong), \
            pytest.raises(StampVerificationError) as failed:
        in_place.patch_in_place(fd, source, plan)
    assert failed.value.message == "stamped output failed verification: footer; the file was restored as it was"
    assert failed.value.hint == "check the disk (`dmesg`) and retry, or report a bug"
    assert failed.value.__cause__ is wrong and failed.value.path == str(target)
    assert target.read_bytes() == old and os.listdir(tmp_path) == ["m.apr"]


def test_verification_reads_the_target_through_its_descriptor(tmp_path, setup) -> None:
    target, _old, new, fd, source, plan = setup
    calls: list[tuple] = []
    real_verify = in_place.verify_stamped

    def spy(*args):
        calls.append(args)
        return real_verify(*args)

    with mock.patch.object(in_place, "verify_stamped", spy):
        in_place.patch_in_place(fd, source, plan)
    assert calls == [(str(target), plan, source, fd)] and target.read_bytes() == new


def test_a_failed_fsync_is_rolled_back(tmp_path, setup) -> None:
    target, old, _new, fd, source, plan = setup
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd_):
        if fd_ == fd:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd_)

    with mock.patch.object(os, "fsync", fsync), pytest.raises(AprIOError) as failed:
        in_place.patch_in_place(fd, source, plan)
    assert failed.value.message == "in-place write failed: Input/output error; the file was restored as it was"
    assert target.read_bytes() == old and os.listdir(tmp_path) == ["m.apr"]


def test_a_rollback_that_fails_too_keeps_the_journal(tmp_path, setup) -> None:
    target, _old, _new, fd, source, plan = setup
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def pwrite(fd_, data, offset):
        calls["n"] += 1
        if calls["n"] >= 3:  # the footer write, then every restoring write
            raise OSError(errno.EIO, "Input/output error")
        return real_pwrite(fd_, data, offset)

    with mock.patch.object(os, "pwrite", pwrite), pytest.raises(AprIOError) as failed:
        in_place.patch_in_place(fd, source, plan)
    error = failed.value
    assert error.message == ("in-place write failed (Input/output error), and restoring the old header failed too "
                             "(Input/output error); the journal is kept, so every command refuses the file until it "
                             "is restored")
    assert error.hint == f"fix the disk or permissions, then: apr stamp {shlex.quote(str(target))} --recover"
    assert error.path == str(target)
    assert isinstance(error.__cause__, OSError) and not isinstance(error.__cause__, AprIOError)
    assert journal.has_pending_journal(target)


def test_rollback_names_the_refusal_itself_when_it_has_no_cause(tmp_path) -> None:
    target = Path(write_checkpoint(tmp_path / "m.apr"))
    refusal = journal.StampJournalError("journal refused", path=str(target))
    with mock.patch.object(in_place, "recover", side_effect=refusal), pytest.raises(AprIOError) as failed:
        in_place.rollback(str(target), OSError(errno.ENOSPC, "No space left on device"))
    assert failed.value.message.startswith("in-place write failed (no space left on device), and restoring the old "
                                           "header failed too (journal refused);")


# --- _finish -----------------------------------------------------------------------------------------


def test_finish_removes_the_journal_and_syncs_its_folder(tmp_path) -> None:
    journal_file = tmp_path / ".apr-stamp-journal.5"
    journal_file.write_bytes(b"j")
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    with mock.patch.object(os, "fsync", spy):
        in_place._finish(str(tmp_path / "m.apr"), str(journal_file))
    assert not journal_file.exists() and synced == [str(tmp_path)]


def test_finish_failures_say_the_file_is_the_stamped_one(tmp_path) -> None:
    target = str(tmp_path / "my model.apr")
    journal_file = tmp_path / ".apr-stamp-journal.5"
    journal_file.write_bytes(b"j")
    with mock.patch.object(os, "unlink", side_effect=PermissionError(errno.EACCES, "Permission denied")), \
            pytest.raises(AprIOError) as failed:
        in_place._finish(target, str(journal_file))
    assert failed.value.message == (f"cannot remove the undo journal {journal_file} (Permission denied); the file is "
                                    "the stamped one, but the stamp counts as interrupted")
    assert failed.value.hint == ("fix the folder's permissions, then run: apr stamp 'my model.apr' --recover   "
                                 "(restores the file as it was) and stamp again").replace(
        "'my model.apr'", shlex.quote(target))
    assert journal_file.exists() and failed.value.path == target
    with mock.patch.object(os, "fsync", side_effect=OSError(errno.EIO, "Input/output error")), \
            pytest.raises(AprIOError) as failed:
        in_place._finish(target, str(journal_file))
    assert failed.value.message == ("cannot sync the folder after removing the undo journal (Input/output error); the "
                                    "file is the stamped one; after a power cut the journal may come back and "
                                    "recovery would undo the stamp")
    assert failed.value.hint == "check the disk (dmesg), then stamp again to be sure"
    assert not journal_file.exists()


def test_a_failed_journal_removal_leaves_the_stamped_file_and_a_pending_journal(tmp_path, setup) -> None:
    target, _old, new, fd, source, plan = setup
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if ".apr-stamp-journal." in os.fspath(path) and ".tmp-" not in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_unlink(path, *args, **kwargs)

    with mock.patch.object(os, "unlink", unlink), pytest.raises(AprIOError, match="counts as interrupted"):
        in_place.patch_in_place(fd, source, plan)
    assert target.read_bytes() == new and journal.has_pending_journal(target)


def test_locked_where_the_platform_lacks_o_cloexec(tmp_path, monkeypatch) -> None:
    target = Path(write_checkpoint(tmp_path / "m.apr"))
    real_open = os.open
    opened: list[int] = []

    def spy(p, flags, *args, **kwargs):
        opened.append(flags)
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.delattr(os, "O_CLOEXEC")
    monkeypatch.setattr(os, "open", spy)
    with in_place.locked(str(target)) as fd:
        assert os.pread(fd, 4, 0) == b"APR\0"
    assert opened == [os.O_RDWR]
