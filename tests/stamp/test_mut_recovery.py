"""`apr.stamp.recovery` (issue 23): a journal is applied only to the file, and the bytes, it was
written for, and the on-disk outcome of each path is exact.

Each test builds a target, a journal for it (its old state is the file as it is, its new state
every byte flipped), puts the file in one state (old, new, torn, foreign) and checks what recovery
writes (the file's bytes), what it says (the result or the error's code, message and hint) and
what becomes of the journal (removed, or kept byte for byte).
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.errors import AprIOError, StampJournalError
from apr.format.header import parse_header
from apr.stamp import journal, recovery
from apr.stamp.journal import Journal
from apr.stamp.journal_site import locate
from apr.stamp.recovery import FOREIGN, NEW, OLD, TORN, classify
from stamp_builders import write_checkpoint


def _target(tmp_path: Path, name: str = "m.apr") -> tuple[Path, Journal]:
    """A checkpoint and a journal of a stamp that flips every byte of its prefix and footer."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = Path(write_checkpoint(tmp_path / name))
    raw = path.read_bytes()
    length = parse_header(raw[:64]).data_offset
    info = path.stat()
    old_footer = int.from_bytes(raw[-4:], "little")
    record = Journal(device=info.st_dev, inode=info.st_ino, file_size=len(raw), old_prefix=raw[:length],
                     old_footer=old_footer, new_prefix=bytes(b ^ 0xFF for b in raw[:length]),
                     new_footer=old_footer ^ 0xFFFFFFFF)
    return path, record


def _state(record: Journal, raw: bytes, state: str) -> bytes:
    """``raw`` with its prefix and footer in ``state``."""
    length = len(record.old_prefix)
    old = record.old_prefix + record.old_footer.to_bytes(4, "little")
    new = record.new_prefix + record.new_footer.to_bytes(4, "little")
    regions = {"old": old, "new": new,
               "torn": new[: length // 2] + old[length // 2 : length] + new[length:],  # new header, old tail, new footer
               "torn-footer": old[:length] + new[length : length + 2] + old[length + 2 :]}[state]
    return regions[:length] + raw[length:-4] + regions[length:]


def _journaled(tmp_path: Path, state: str, name: str = "m.apr") -> tuple[Path, Journal, bytes, str]:
    """(target in ``state``, its journal, the old bytes, the journal's path), the journal written as a stamp does."""
    path, record = _target(tmp_path, name)
    old = path.read_bytes()
    final = journal.write_journal(str(path), record)
    with open(path, "r+b") as handle:
        handle.write(_state(record, old, state))
    return path, record, old, final


# --- classify ---------------------------------------------------------------------------------------


def test_classify_each_state() -> None:
    record = Journal(device=0, inode=1, file_size=20, old_prefix=b"abcd", old_footer=0x11223344,
                     new_prefix=b"wxyz", new_footer=0x55667788)
    assert classify(record, b"abcd", 0x11223344) == OLD
    assert classify(record, b"wxyz", 0x55667788) == NEW
    assert classify(record, b"wbyd", 0x11223344) == TORN  # prefix torn, footer old
    assert classify(record, b"abcd", 0x55663344) == TORN  # footer torn byte-wise (little-endian)
    assert classify(record, b"wxyz", 0x11223344) == TORN  # prefix written, footer not yet
    assert classify(record, b"abcd", 0x55667788) == TORN
    # one byte that is neither: foreign, however many others match
    assert classify(record, b"abcQ", 0x11223344) == FOREIGN
    assert classify(record, b"wxyz", 0x55667789) == FOREIGN
    assert classify(record, b"abcd", 0x44332211) == FOREIGN  # the old footer's bytes, big-endian
    assert classify(record, b"abc", 0x11223344) == FOREIGN  # another length
    assert classify(record, b"abcde", 0x11223344) == FOREIGN
    assert (OLD, NEW, TORN, FOREIGN) == ("old", "new", "torn", "foreign")


@given(old=st.binary(min_size=1, max_size=24), data=st.data())
@example(old=b"\x00", data=None)
def test_classify_torn_is_every_byte_old_or_new(old: bytes, data) -> None:
    """Property: torn iff each byte of prefix and footer equals the old or the new byte at its place."""
    if data is None:
        new, mix, old_footer, new_footer, current_footer = b"\x01", [True], 0, 1, 1
    else:
        new = data.draw(st.binary(min_size=len(old), max_size=len(old)))
        mix = data.draw(st.lists(st.booleans(), min_size=len(old), max_size=len(old)))
        old_footer, new_footer = data.draw(st.integers(0, 2**32 - 1)), data.draw(st.integers(0, 2**32 - 1))
        current_footer = data.draw(st.sampled_from([old_footer, new_footer]))
    record = Journal(device=0, inode=1, file_size=len(old) + 4, old_prefix=old, old_footer=old_footer,
                     new_prefix=new, new_footer=new_footer)
    current = bytes(n if pick else o for o, n, pick in zip(old, new, mix, strict=True))
    state = classify(record, current, current_footer)
    if current == old and current_footer == old_footer:
        assert state == OLD
    elif current == new and current_footer == new_footer:
        assert state == NEW
    else:
        assert state == TORN
    differs = [i for i in range(len(old)) if old[i] != new[i]]
    if differs:  # a byte that is neither old nor new there makes it foreign
        i = differs[0]
        outsider = next(b for b in range(256) if b not in (old[i], new[i]))
        assert classify(record, current[:i] + bytes([outsider]) + current[i + 1 :], current_footer) == FOREIGN


# --- write_at ---------------------------------------------------------------------------------------


def test_write_at_writes_at_the_offset_and_refuses_a_short_write(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDWR)
    try:
        recovery.write_at(fd, b"ab", 3)
        assert path.read_bytes() == b"012ab56789"
        with mock.patch.object(os, "pwrite", lambda fd, data, offset: len(data) - 1), \
                pytest.raises(OSError) as short:
            recovery.write_at(fd, b"xyz", 0)
        assert short.value.errno == errno.ENOSPC and short.value.strerror == "short write (no space left on device?)"
    finally:
        os.close(fd)


# --- recover: the states ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["new", "torn", "torn-footer"])
def test_recover_writes_the_old_state_back_and_removes_the_journal(tmp_path, state) -> None:
    path, _record, old, final = _journaled(tmp_path, state)
    assert path.read_bytes() != old
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync_spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    with mock.patch.object(os, "fsync", fsync_spy):
        assert recovery.recover(path) == "rolled-back"
    assert path.read_bytes() == old
    assert not os.path.lexists(final) and os.listdir(tmp_path) == ["m.apr"]
    assert synced == [str(path), str(tmp_path)]  # the file's bytes, then the folder without the journal
    assert recovery.recover(path) == "none"


def test_recover_of_the_old_state_writes_nothing(tmp_path) -> None:
    path, _record, old, final = _journaled(tmp_path, "old")
    with mock.patch.object(os, "pwrite", side_effect=AssertionError("wrote")):
        assert recovery.recover(path) == "rolled-back"
    assert path.read_bytes() == old and not os.path.lexists(final)


def test_recover_through_a_link_restores_the_real_file(tmp_path) -> None:
    path, _record, old, final = _journaled(tmp_path / "blobs", "torn")
    link = tmp_path / "model.apr"
    link.symlink_to(path)
    assert recovery.recover(str(link)) == "rolled-back"
    assert path.read_bytes() == old and not os.path.lexists(final) and link.is_symlink()


def test_recover_without_a_file_or_a_journal(tmp_path) -> None:
    assert recovery.recover(tmp_path / "missing.apr") == "none"
    path, _record = _target(tmp_path)
    before = path.read_bytes()
    assert recovery.recover(path) == "none" and path.read_bytes() == before


def test_recover_reports_a_file_it_cannot_look_at(tmp_path) -> None:
    path, _record = _target(tmp_path)
    with mock.patch.object(os, "stat", side_effect=PermissionError(errno.EACCES, "Permission denied")), \
            pytest.raises(AprIOError) as failed:
        recovery.recover(path)
    assert failed.value.message == "cannot look at the file to recover it (Permission denied); nothing was written"
    assert failed.value.path == str(path)


def test_recover_removes_stray_journal_temporaries(tmp_path) -> None:
    path, _record = _target(tmp_path)
    stray = tmp_path / (os.path.basename(journal.journal_path(path)) + ".tmp-x1")
    stray.write_bytes(b"half a journal")
    os.chmod(stray, 0o600)
    assert recovery.recover(path) == "none"
    assert os.listdir(tmp_path) == ["m.apr"]


# --- recover: refusals (nothing written, journal kept) ----------------------------------------------


def _refused(path: Path, final: str, before: bytes) -> StampJournalError:
    journal_bytes = Path(final).read_bytes()
    with pytest.raises(StampJournalError) as refused:
        recovery.recover(path)
    assert path.read_bytes() == before, "recovery wrote over a file the journal does not belong to"
    assert Path(final).read_bytes() == journal_bytes, "a refused journal must be kept"
    return refused.value


def _mismatch_text(path: Path, final: str, why: str) -> tuple[str, str]:
    return (f"the stamp journal {final} does not belong to this file as it is now ({why}): it was replaced or "
            "changed since the interrupted stamp (for example copied over); the journal was not applied, nothing "
            "was written, and the journal is kept",
            f"if this file is the one you want (you copied it in on purpose), delete the old journal and check the "
            f"file: rm {shlex.quote(final)} && apr validate {shlex.quote(str(path))}; otherwise restore "
            f"{shlex.quote(str(path))} from the copy it was stamped from")


def test_recover_refuses_foreign_bytes(tmp_path) -> None:
    path, record, _old, final = _journaled(tmp_path, "new", "my model.apr")
    raw = bytearray(path.read_bytes())
    raw[5] = (~record.old_prefix[5] & 0xFF) ^ 0x01  # neither the old nor the new byte
    path.write_bytes(bytes(raw))
    error = _refused(path, final, bytes(raw))
    assert error.code == "stamp-journal-mismatch" and error.path == str(path)
    assert (error.message, error.hint) == _mismatch_text(
        path, final, "its header and footer match neither the file before that stamp nor after it")


def test_recover_refuses_a_journal_of_another_inode_or_size(tmp_path) -> None:
    path, record = _target(tmp_path)
    before = path.read_bytes()
    site = locate(path)
    fd = os.open(site.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, Journal(device=record.device, inode=record.inode + 1, file_size=record.file_size,
                         old_prefix=record.old_prefix, old_footer=record.old_footer, new_prefix=record.new_prefix,
                         new_footer=record.new_footer).to_bytes())
    os.close(fd)
    error = _refused(path, site.path, before)
    assert (error.code, error.message) == ("stamp-journal-mismatch", _mismatch_text(
        path, site.path, f"it was written for inode {record.inode + 1}; this file is inode {record.inode}")[0])
    os.unlink(site.path)
    fd = os.open(site.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, Journal(device=record.device, inode=record.inode, file_size=record.file_size + 1,
                         old_prefix=record.old_prefix, old_footer=record.old_footer, new_prefix=record.new_prefix,
                         new_footer=record.new_footer).to_bytes())
    os.close(fd)
    error = _refused(path, site.path, before)
    assert (error.code, error.message) == ("stamp-journal-mismatch", _mismatch_text(
        path, site.path, f"the stamped file had {record.file_size + 1} bytes; this one has {record.file_size}")[0])


def test_recover_on_another_device_number_logs_and_lets_the_digests_decide(tmp_path, caplog) -> None:
    path, record = _target(tmp_path)
    old = path.read_bytes()
    site = locate(path)
    moved = Journal(device=record.device + 7, inode=record.inode, file_size=record.file_size,
                    old_prefix=record.old_prefix, old_footer=record.old_footer, new_prefix=record.new_prefix,
                    new_footer=record.new_footer)
    fd = os.open(site.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, moved.to_bytes())
    os.close(fd)
    with open(path, "r+b") as handle:
        handle.write(_state(record, old, "torn"))
    with caplog.at_level(logging.INFO, logger="apr.stamp.recovery"):
        assert recovery.recover(path) == "rolled-back"
    assert path.read_bytes() == old and not os.path.lexists(site.path)
    assert [r.getMessage() for r in caplog.records if r.name == "apr.stamp.recovery"] == [
        f"{path}: the journal was written on device {record.device + 7}, the file is now on device {record.device} "
        "(renumbered after a reboot?); its digests decide"]
    caplog.clear()
    same, _record, _old, _final = _journaled(tmp_path / "same", "torn")
    with caplog.at_level(logging.INFO, logger="apr.stamp.recovery"):
        assert recovery.recover(same) == "rolled-back"
    assert [r for r in caplog.records if r.name == "apr.stamp.recovery"] == []


def test_recover_refuses_an_untrusted_journal_and_ignores_an_untrusted_legacy_one(tmp_path, caplog) -> None:
    path, _record, old, final = _journaled(tmp_path, "torn")
    torn = path.read_bytes()
    os.chmod(final, 0o620)
    error = _refused(path, final, torn)
    assert error.code == "stamp-journal-untrusted"
    os.chmod(final, 0o600)
    site = locate(path)
    legacy = site.legacy_paths[0]
    fd = os.open(legacy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"APRSTAMPJOURNAL1")
    os.close(fd)
    os.chmod(legacy, 0o606)
    with caplog.at_level(logging.WARNING, logger="apr.stamp.journal"):
        assert recovery.recover(path) == "rolled-back"  # the planted version-1 name is only reported
    assert path.read_bytes() == old and os.path.exists(legacy)
    assert any(f"ignoring {legacy}" in r.getMessage() for r in caplog.records)


def test_recover_refuses_a_trusted_legacy_journal(tmp_path) -> None:
    path, _record, _old, final = _journaled(tmp_path, "torn")
    torn = path.read_bytes()
    os.unlink(final)
    legacy = locate(path).legacy_paths[0]
    fd = os.open(legacy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"APRSTAMPJOURNAL1")
    os.close(fd)
    error = _refused(path, legacy, torn)
    assert error.code == "stamp-journal-legacy"


def test_recover_refuses_a_trusted_legacy_journal_beside_a_current_one(tmp_path) -> None:
    path, _record, _old, final = _journaled(tmp_path, "torn")
    torn = path.read_bytes()
    legacy = locate(path).legacy_paths[0]
    fd = os.open(legacy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"APRSTAMPJOURNAL1")
    os.close(fd)
    error = _refused(path, final, torn)
    assert error.code == "stamp-journal-legacy" and os.path.exists(legacy)


# --- _restore and recover: OS failures -----------------------------------------------------------------


def _retry(path: Path) -> str:
    return f"fix the disk or the file's permissions, then: apr stamp {shlex.quote(str(path))} --recover"


def test_restore_cannot_open_the_file(tmp_path) -> None:
    path, record, _old, final = _journaled(tmp_path, "torn", "my model.apr")
    site = locate(path)
    with mock.patch.object(os, "open", side_effect=PermissionError(errno.EACCES, "Permission denied")), \
            pytest.raises(AprIOError) as failed:
        recovery._restore(site, record, final)
    assert failed.value.message == ("cannot open the file to restore it (Permission denied); nothing was written, "
                                    "the journal is kept")
    assert failed.value.hint == _retry(path) and failed.value.path == str(path)


def test_restore_opens_the_real_file_read_write(tmp_path) -> None:
    path, record, old, final = _journaled(tmp_path, "torn")
    site = locate(path)
    real_open = os.open
    flags_seen: list[int] = []

    def spy(p, flags, *args, **kwargs):
        flags_seen.append(flags)
        return real_open(p, flags, *args, **kwargs)

    with mock.patch.object(os, "open", spy):
        recovery._restore(site, record, final)
    assert flags_seen[0] & os.O_ACCMODE == os.O_RDWR and flags_seen[0] & os.O_CLOEXEC
    assert path.read_bytes() == old


def test_restore_refuses_a_file_replaced_since_it_was_located(tmp_path) -> None:
    path, record, _old, final = _journaled(tmp_path, "torn")
    torn = path.read_bytes()
    site = locate(path)
    os.rename(path, tmp_path / "aside")  # kept, so the new file cannot reuse its inode number
    path.write_bytes(torn)  # same bytes, another inode
    with pytest.raises(AprIOError) as failed:
        recovery._restore(site, record, final)
    assert failed.value.message == "the file was replaced while it was being recovered; nothing was written"
    assert failed.value.hint == f"retry: apr stamp {path} --recover" and failed.value.path == str(path)
    assert path.read_bytes() == torn


def test_restore_read_failures(tmp_path) -> None:
    path, record, _old, final = _journaled(tmp_path, "torn")
    torn = path.read_bytes()
    site = locate(path)
    with mock.patch.object(os, "pread", side_effect=OSError(errno.EIO, "Input/output error")), \
            pytest.raises(AprIOError) as failed:
        recovery._restore(site, record, final)
    assert failed.value.message == ("cannot read the file to recover it (Input/output error); nothing was written, "
                                    "the journal is kept")
    assert failed.value.hint == _retry(path)
    # a file shorter than the journal says: the reader's own error, unchanged
    longer = Journal(device=record.device, inode=record.inode, file_size=record.file_size + 10,
                     old_prefix=record.old_prefix, old_footer=record.old_footer, new_prefix=record.new_prefix,
                     new_footer=record.new_footer)
    with pytest.raises(AprIOError) as failed:
        recovery._restore(site, longer, final)
    assert failed.value.message == f"file shrank while being read (at byte {record.file_size + 6})"
    assert failed.value.path == str(path) and path.read_bytes() == torn
    with open(path, "r+b") as handle:  # shorter than the prefix itself
        handle.truncate(10)
    with pytest.raises(AprIOError) as failed:
        recovery._restore(site, record, final)
    assert failed.value.message == "file shrank while being read (at byte 10)" and failed.value.path == str(path)


def test_restore_reads_the_prefix_and_the_footer_where_the_journal_says(tmp_path) -> None:
    path, record, old, final = _journaled(tmp_path, "new")
    site = locate(path)
    real_pread = os.pread
    reads: list[tuple[int, int]] = []

    def spy(fd, n, offset):
        reads.append((n, offset))
        return real_pread(fd, n, offset)

    with mock.patch.object(os, "pread", spy):
        recovery._restore(site, record, final)
    assert reads == [(len(record.old_prefix), 0), (4, record.file_size - 4)]
    assert path.read_bytes() == old


@pytest.mark.parametrize("fail", ["pwrite-prefix", "pwrite-footer", "fsync"])
def test_restore_write_failure_keeps_the_journal_and_says_so(tmp_path, fail) -> None:
    path, _record, old, final = _journaled(tmp_path, "torn")
    journal_bytes = Path(final).read_bytes()
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def pwrite(fd, data, offset):
        calls["n"] += 1
        if (fail, calls["n"]) in (("pwrite-prefix", 1), ("pwrite-footer", 2)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    fsync = mock.patch.object(os, "fsync", side_effect=OSError(errno.EIO, "Input/output error")) if fail == "fsync" \
        else mock.patch.object(os, "fsync", os.fsync)
    with mock.patch.object(os, "pwrite", pwrite), fsync, pytest.raises(AprIOError) as failed:
        recovery.recover(path)
    reason = "Input/output error" if fail == "fsync" else "no space left on device"
    assert failed.value.message == f"restoring the file failed ({reason}); it may still be half-written; the journal is kept"
    assert failed.value.hint == _retry(path)
    assert Path(final).read_bytes() == journal_bytes
    assert recovery.recover(path) == "rolled-back" and path.read_bytes() == old  # the kept journal finishes it


def test_restore_closes_the_file(tmp_path) -> None:
    path, record, _old, final = _journaled(tmp_path, "torn")
    site = locate(path)
    real_open, real_close = os.open, os.close
    opened, closed = [], []

    def open_spy(p, *args, **kwargs):
        fd = real_open(p, *args, **kwargs)
        opened.append(fd)
        return fd

    def close_spy(fd):
        closed.append(fd)
        real_close(fd)

    with mock.patch.object(os, "open", open_spy), mock.patch.object(os, "close", close_spy):
        recovery._restore(site, record, final)
    assert opened and closed == opened


def test_recover_cannot_remove_the_journal(tmp_path) -> None:
    path, _record, old, final = _journaled(tmp_path, "torn", "my model.apr")
    with mock.patch.object(os, "unlink", side_effect=PermissionError(errno.EACCES, "Permission denied")), \
            pytest.raises(AprIOError) as failed:
        recovery.recover(path)
    assert failed.value.message == f"cannot remove the journal {final} (Permission denied); the file was restored"
    assert failed.value.hint == (f"fix the folder's permissions, then run again: apr stamp {shlex.quote(str(path))} "
                                 "--recover   (or delete the journal: the file is already restored)")
    assert path.read_bytes() == old and os.path.exists(final)
    assert recovery.recover(path) == "rolled-back" and not os.path.exists(final)  # recovering again is harmless


def test_recover_cannot_sync_the_folder(tmp_path) -> None:
    path, _record, old, final = _journaled(tmp_path, "torn")
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the folder's, after the unlink
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    with mock.patch.object(os, "fsync", fsync), pytest.raises(AprIOError) as failed:
        recovery.recover(path)
    assert failed.value.message == ("cannot sync the folder after removing the journal (Input/output error); the file "
                                    "was restored; after a power cut the journal may come back, and recovering again "
                                    "is harmless")
    assert failed.value.hint == "check the disk (dmesg)"
    assert path.read_bytes() == old and not os.path.exists(final)


def test_restore_where_the_platform_lacks_o_cloexec(tmp_path, monkeypatch) -> None:
    path, record, old, final = _journaled(tmp_path, "torn")
    site = locate(path)
    real_open = os.open
    opened: list[int] = []

    def spy(p, flags, *args, **kwargs):
        opened.append(flags)
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.delattr(os, "O_CLOEXEC")
    monkeypatch.setattr(os, "open", spy)
    recovery._restore(site, record, final)
    assert opened == [os.O_RDWR] and path.read_bytes() == old
