"""`apr.stamp.journal` and `apr.stamp.journal_site` unit by unit (issue 23): the journal's bytes, its
name, whom it trusts, how it is read, written and removed, and what each refusal says.

A wrong answer here is a damaged or lost file: a journal bound to the wrong file, a corrupt or
untrusted one obeyed, a journal that is not durable outliving the call. Expected values are derived
from the inputs (struct layouts written out independently, the file's own inode and folder), never
read back from the function under test.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import shlex
import stat
import struct
import tempfile
import threading
from pathlib import Path
from unittest import mock

import pytest

from apr.errors import AprIOError, StampJournalError
from apr.format.header import parse_header
from apr.stamp import journal
from apr.stamp.journal import FoundJournal, Journal
from apr.stamp.journal_site import JournalSite, any_journal_entry, locate
from stamp_builders import write_checkpoint

_FIXED_SIZE = 16 + 8 * 4 + 4 + 4 + 32 + 32  # magic, dev, ino, size, length, 2 footers, 2 digests


def _file(tmp_path: Path, name: str = "m.apr") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Path(write_checkpoint(tmp_path / name))


def _record(path: Path, *, inode: int | None = None, size: int | None = None) -> Journal:
    """A journal for ``path``: the old state is the file's prefix and footer, the new one differs in both."""
    raw = path.read_bytes()
    length = parse_header(raw[:64]).data_offset
    info = path.stat()
    new_prefix = raw[:length - 1] + bytes([raw[length - 1] ^ 0xFF])
    return Journal(device=info.st_dev, inode=info.st_ino if inode is None else inode,
                   file_size=len(raw) if size is None else size, old_prefix=raw[:length],
                   old_footer=int.from_bytes(raw[-4:], "little"), new_prefix=new_prefix, new_footer=0x01020304)


def _oracle_bytes(record: Journal) -> bytes:
    """The version-2 layout written out independently of `Journal.to_bytes`."""
    def digest(prefix: bytes, footer: int) -> bytes:
        return hashlib.sha256(prefix + struct.pack("<I", footer)).digest()

    body = (b"APRSTAMPJOURNAL2" + struct.pack("<QQQQ", record.device, record.inode, record.file_size,
                                              len(record.old_prefix))
            + struct.pack("<II", record.old_footer, record.new_footer)
            + digest(record.old_prefix, record.old_footer) + digest(record.new_prefix, record.new_footer)
            + record.old_prefix + record.new_prefix)
    return body + hashlib.sha256(body).digest()


def _place(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def _corrupt_reason(data: bytes) -> str:
    with pytest.raises(StampJournalError) as refused:
        Journal.from_bytes(data, "/j/.apr-stamp-journal.7")
    error = refused.value
    assert error.code == "stamp-journal-corrupt" and error.path == "/j/.apr-stamp-journal.7"
    assert error.hint == ("restore the file it belongs to from a copy or its source, then delete the journal: "
                          "rm /j/.apr-stamp-journal.7")
    prefix = "the in-place stamp journal is unreadable ("
    assert error.message.startswith(prefix) and error.message.endswith("); it was not applied")
    return error.message[len(prefix):-len("); it was not applied")]


def _resign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


# --- the bytes ------------------------------------------------------------------------------------


def test_state_digest_is_sha256_of_prefix_then_little_endian_footer() -> None:
    assert journal.state_digest(b"abc", 0x0A0B0C0D) == hashlib.sha256(b"abc\x0d\x0c\x0b\x0a").digest()
    assert journal.state_digest(b"", 0) == hashlib.sha256(bytes(4)).digest()


def test_to_bytes_is_the_documented_layout_and_round_trips(tmp_path) -> None:
    record = _record(_file(tmp_path))
    data = record.to_bytes()
    assert data == _oracle_bytes(record)
    assert len(data) == _FIXED_SIZE + 2 * len(record.old_prefix) + 32
    assert record.old_digest == journal.state_digest(record.old_prefix, record.old_footer)
    assert record.new_digest == journal.state_digest(record.new_prefix, record.new_footer)
    assert Journal.from_bytes(data, "j") == record


def test_the_prefix_must_keep_its_length_and_fit_with_the_footer() -> None:
    Journal(device=1, inode=2, file_size=6, old_prefix=b"ab", old_footer=0, new_prefix=b"cd", new_footer=0)
    with pytest.raises(ValueError, match=r"^the prefix and footer do not fit in the file size$"):
        Journal(device=1, inode=2, file_size=5, old_prefix=b"ab", old_footer=0, new_prefix=b"cd", new_footer=0)
    with pytest.raises(ValueError, match=r"^an in-place stamp keeps the prefix length \(data_offset\)$"):
        Journal(device=1, inode=2, file_size=99, old_prefix=b"ab", old_footer=0, new_prefix=b"c", new_footer=0)


def test_from_bytes_refuses_each_kind_of_damage(tmp_path) -> None:
    record = _record(_file(tmp_path))
    good = record.to_bytes()
    length = len(record.old_prefix)
    # one byte short of the smallest possible journal; the smallest itself gets past the length check
    assert _corrupt_reason(good[: _FIXED_SIZE + 31]) == "too short"
    assert _corrupt_reason(good[: _FIXED_SIZE + 32]) == f"{_FIXED_SIZE + 32} bytes for a {length}-byte prefix"
    assert _corrupt_reason(b"APRSTAMPJOURNAL1" + good[16:]) == (
        "magic b'APRSTAMPJOURNAL1', expected b'APRSTAMPJOURNAL2'")
    assert _corrupt_reason(good + b"\0") == f"{len(good) + 1} bytes for a {length}-byte prefix"
    flipped = bytearray(good)
    flipped[_FIXED_SIZE + 3] ^= 1  # inside the old prefix: the trailer no longer matches
    assert _corrupt_reason(bytes(flipped)) == "checksum mismatch"
    flipped = bytearray(good)
    flipped[-1] ^= 1  # the trailer itself
    assert _corrupt_reason(bytes(flipped)) == "checksum mismatch"
    # well signed, but the old digest is not the old state's
    body = bytearray(good[:-32])
    body[56] ^= 1
    assert _corrupt_reason(_resign(bytes(body))) == "a state does not match its digest"
    body = bytearray(good[:-32])
    body[88] ^= 1  # the new digest
    assert _corrupt_reason(_resign(bytes(body))) == "a state does not match its digest"
    # well signed, digests right, but a file size the prefix and footer cannot fit in
    small = bytearray(good[:-32])
    struct.pack_into("<Q", small, 32, length + 3)
    assert _corrupt_reason(_resign(bytes(small))) == "the prefix and footer do not fit in the file size"


def test_from_bytes_accepts_only_an_apr_prefix_ending_at_data_offset(tmp_path) -> None:
    record = _record(_file(tmp_path))
    length = len(record.old_prefix)
    # The old state is what recovery writes back: it must be a whole APR prefix.
    not_apr = Journal(device=1, inode=2, file_size=length + 4, old_prefix=b"X" * length, old_footer=0,
                      new_prefix=record.new_prefix, new_footer=0)
    why = "its old prefix is not an APR v2 header, metadata and index ending at data_offset"
    assert _corrupt_reason(not_apr.to_bytes()) == why
    # a real header, cut one byte before its data_offset (and one longer): refused both
    cut = record.old_prefix[:-1]
    shorter = Journal(device=1, inode=2, file_size=length + 4, old_prefix=cut, old_footer=0, new_prefix=cut,
                      new_footer=0)
    assert _corrupt_reason(shorter.to_bytes()) == why
    longer = record.old_prefix + b"\0"
    assert _corrupt_reason(Journal(device=1, inode=2, file_size=length + 5, old_prefix=longer, old_footer=0,
                                   new_prefix=longer, new_footer=0).to_bytes()) == why
    parsed = Journal.from_bytes(record.to_bytes(), "j")
    assert (parsed.device, parsed.inode, parsed.file_size) == (record.device, record.inode, record.file_size)
    assert (parsed.old_prefix, parsed.new_prefix) == (record.old_prefix, record.new_prefix)
    assert (parsed.old_footer, parsed.new_footer) == (record.old_footer, record.new_footer)


# --- errors ---------------------------------------------------------------------------------------


def test_os_failure_names_the_reason_the_state_and_the_fix() -> None:
    full = journal.os_failure(OSError(errno.ENOSPC, "No space left on device"), "cannot write", "m.apr", "free space",
                              state="the file was not changed")
    assert isinstance(full, AprIOError) and full.code == "io-error" and full.path == "m.apr"
    assert full.message == "cannot write (no space left on device); the file was not changed"
    assert full.hint == "free space"
    bare = journal.os_failure(OSError(errno.EIO, "Input/output error"), "cannot read", "m.apr")
    assert bare.message == "cannot read (Input/output error)" and bare.hint is None
    nameless = journal.os_failure(OSError("plain"), "cannot read", "m.apr")
    assert nameless.message == "cannot read (plain)"


# --- where it lives -------------------------------------------------------------------------------


def test_journal_path_is_beside_the_real_file_keyed_by_its_inode(tmp_path) -> None:
    real = _file(tmp_path / "blobs")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "model.apr"
    link.symlink_to(real)
    expected = str(tmp_path / "blobs" / f".apr-stamp-journal.{real.stat().st_ino}")
    assert journal.journal_path(real) == expected == journal.journal_path(link)


def test_locate_and_the_site_of_a_link(tmp_path) -> None:
    real = _file(tmp_path / "blobs")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "model.apr"
    link.symlink_to(os.path.relpath(real, link.parent))
    info = real.stat()
    site = locate(str(link))
    assert site == JournalSite(target=str(link), real=str(real), device=info.st_dev, inode=info.st_ino,
                               size=info.st_size, owner=info.st_uid)
    assert site.folder == str(tmp_path / "blobs")
    assert site.path == str(tmp_path / "blobs" / f".apr-stamp-journal.{info.st_ino}")
    assert site.legacy_paths == (str(tmp_path / "links" / ".model.apr.stamp-journal"),
                                 str(tmp_path / "blobs" / ".m.apr.stamp-journal"))
    assert locate(real).legacy_paths == (str(tmp_path / "blobs" / ".m.apr.stamp-journal"),)  # one name, once
    assert site.same_file(real.stat()) and site.same_file(link.stat())
    other = _file(tmp_path / "blobs", "other.apr")
    assert not site.same_file(other.stat())
    moved = os.stat_result((*tuple(info)[:2], info.st_dev + 1, *tuple(info)[3:]))  # same inode, other device
    assert not site.same_file(moved)
    with pytest.raises(FileNotFoundError):
        locate(tmp_path / "missing.apr")


def test_any_journal_entry_says_true_when_a_name_cannot_be_looked_at(tmp_path) -> None:
    target = _file(tmp_path)
    site = locate(target)
    real_lstat = os.lstat

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == site.path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_lstat(path, *args, **kwargs)

    assert any_journal_entry(target) is False
    with mock.patch.object(os, "lstat", refusing):
        assert any_journal_entry(target) is True
    legacy = Path(site.legacy_paths[-1])
    legacy.write_bytes(b"")
    assert any_journal_entry(target) is True


# --- trust ----------------------------------------------------------------------------------------


def _stat(mode: int, uid: int = 1000, nlink: int = 1) -> os.stat_result:
    return os.stat_result((mode, 7, 1, nlink, uid, uid, 100, 0, 0, 0))


@pytest.mark.parametrize(("entry", "owner", "euid", "reason"), [
    (_stat(stat.S_IFREG | 0o600), 1000, 1000, None),
    (_stat(stat.S_IFREG | 0o644), 1000, 1001, None),  # others may read it, not write it
    (_stat(stat.S_IFREG | 0o700, uid=0), 1000, 1001, None),  # root's
    (_stat(stat.S_IFREG | 0o600, uid=1001), 1000, 1001, None),  # the user running the command
    (_stat(stat.S_IFLNK | 0o777), 1000, 1000, "it is a symbolic link"),
    (_stat(stat.S_IFIFO | 0o600), 1000, 1000, "it is not a regular file"),
    (_stat(stat.S_IFDIR | 0o700), 1000, 1000, "it is not a regular file"),
    (_stat(stat.S_IFREG | 0o600, uid=4242), 1000, 1001,
     "it is owned by uid 4242, not by the file's owner (uid 1000), root or you (uid 1001)"),
    (_stat(stat.S_IFREG | 0o600, uid=4242), 1000, 1000, "it is owned by uid 4242, not by the file's owner (uid 1000) or root"),
    (_stat(stat.S_IFREG | 0o600, uid=4242), 1000, 0, "it is owned by uid 4242, not by the file's owner (uid 1000) or root"),
    (_stat(stat.S_IFREG | 0o620), 1000, 1000, "others can write it (mode 0620)"),
    (_stat(stat.S_IFREG | 0o602), 1000, 1000, "others can write it (mode 0602)"),
    (_stat(stat.S_IFREG | 0o4622), 1000, 1000, "others can write it (mode 4622)"),
    (_stat(stat.S_IFREG | 0o600, nlink=2), 1000, 1000, "it has 2 hard links"),
    (_stat(stat.S_IFREG | 0o600, nlink=0), 1000, 1000, "it has 0 hard links"),
])
def test_distrust_reason_names_the_first_rule_broken(entry, owner, euid, reason) -> None:
    assert journal.distrust_reason(entry, owner, euid) == reason


def _site(target: Path) -> JournalSite:
    return locate(target)


def test_find_journals_lists_every_name_with_its_version_and_verdict(tmp_path) -> None:
    target = _file(tmp_path)
    site = _site(target)
    assert journal.find_journals(site) == []
    _place(site.path, b"x")
    _place(site.legacy_paths[0], b"y", 0o622)
    found = journal.find_journals(site)
    assert [(f.path, f.legacy, f.distrust) for f in found] == [
        (site.path, False, None), (site.legacy_paths[0], True, "others can write it (mode 0622)")]
    assert [f.info.st_ino for f in found] == [os.lstat(site.path).st_ino, os.lstat(site.legacy_paths[0]).st_ino]


def test_find_journals_reports_a_name_it_cannot_look_at(tmp_path) -> None:
    target = _file(tmp_path)
    site = _site(target)
    real_lstat = os.lstat

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == site.path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_lstat(path, *args, **kwargs)

    with mock.patch.object(os, "lstat", refusing), pytest.raises(AprIOError) as failed:
        journal.find_journals(site)
    assert failed.value.path == str(target)
    assert failed.value.message == (f"cannot look for the stamp journal {site.path} (Permission denied); "
                                    "nothing was written")
    assert isinstance(failed.value.__cause__, PermissionError)


def _found(path: str, mode: int, uid: int, distrust: str | None, legacy: bool = False) -> FoundJournal:
    return FoundJournal(path, legacy, distrust, _stat(mode, uid=uid))


def test_report_untrusted_warns_with_the_entry_the_reason_and_the_rm(tmp_path, caplog) -> None:
    site = _site(_file(tmp_path))
    entry = _found("/x/a b", stat.S_IFREG | 0o622, os.geteuid(), "others can write it (mode 0622)")
    with caplog.at_level(logging.WARNING, logger="apr.stamp.journal"):
        journal.report_untrusted(site, entry)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("apr.stamp.journal", logging.WARNING,
         f"{site.target}: ignoring /x/a b: others can write it (mode 0622), so it is not trusted; it was not "
         "applied (delete it if you do not know who made it: rm '/x/a b')")]


def test_untrusted_error_tells_who_can_recover_only_for_another_users_regular_file(tmp_path) -> None:
    target = _file(tmp_path, "my model.apr")
    site = _site(target)
    base_hint = "if you do not know who made it, delete it (rm '/x/j 1') and run the command again"
    foreign = journal.untrusted_error(site, _found("/x/j 1", stat.S_IFREG | 0o600, 4242, "why"))
    assert isinstance(foreign, StampJournalError) and foreign.code == "stamp-journal-untrusted"
    assert foreign.path == str(target)
    assert foreign.message == ("an entry under this file's stamp-journal name, /x/j 1, is not trusted (why); it was "
                               "not applied and nothing was written")
    assert foreign.hint == (base_hint + f"; if uid 4242 was stamping this file, only they can recover it: "
                            f"apr stamp {shlex.quote(str(target))} --recover")
    for mode, uid in ((stat.S_IFREG | 0o622, os.geteuid()), (stat.S_IFLNK | 0o777, 4242),
                      (stat.S_IFREG | 0o600, 0), (stat.S_IFREG | 0o600, site.owner)):
        assert journal.untrusted_error(site, _found("/x/j 1", mode, uid, "why")).hint == base_hint
    # owner, root and the user running the command are told apart (none of them 0 by accident)
    owned = dataclasses.replace(site, owner=1000)
    with mock.patch.object(os, "geteuid", return_value=4321):
        for uid, extended in ((0, False), (1000, False), (4321, False), (1, True), (4242, True)):
            hint = journal.untrusted_error(owned, _found("/x/j 1", stat.S_IFREG | 0o600, uid, "why")).hint
            assert hint.startswith(base_hint) and (hint != base_hint) is extended, uid


def test_legacy_error_says_it_is_never_applied_and_how_to_check_by_hand(tmp_path) -> None:
    target = _file(tmp_path, "my model.apr")
    site = _site(target)
    error = journal.legacy_error(site, _found("/x/.my model.apr.stamp-journal", stat.S_IFREG | 0o600, 0, None, True))
    assert error.code == "stamp-journal-legacy" and error.path == str(target)
    assert error.message == (
        "an interrupted in-place `apr stamp` left a journal in the old format (/x/.my model.apr.stamp-journal); it "
        "records no digest of the file, so nothing shows it still belongs to this file's bytes, and it is not "
        "applied; the file may be half-written")
    quoted, file = "'/x/.my model.apr.stamp-journal'", shlex.quote(str(target))
    assert error.hint == (f"check the file without it: mv {quoted} {quoted}.bak && apr validate {file}; if VALID, "
                          f"delete {quoted}.bak; if not, restore {file} from a copy or its source")


# --- reading --------------------------------------------------------------------------------------


def _planted(tmp_path: Path, data: bytes | None = None) -> tuple[JournalSite, FoundJournal, Journal]:
    target = _file(tmp_path)
    record = _record(target)
    site = _site(target)
    _place(site.path, record.to_bytes() if data is None else data)
    (entry,) = journal.find_journals(site)
    return site, entry, record


def test_read_journal_opens_without_following_blocking_or_leaking(tmp_path) -> None:
    site, entry, record = _planted(tmp_path)
    opened: list[int] = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        if os.fspath(path) == site.path:
            opened.append(flags)
        return real_open(path, flags, *args, **kwargs)

    with mock.patch.object(os, "open", spy):
        assert journal.read_journal(entry, site) == record
    (flags,) = opened
    assert flags & os.O_ACCMODE == os.O_RDONLY
    for flag in (os.O_NOFOLLOW, os.O_NONBLOCK, os.O_CLOEXEC):
        assert flags & flag, flag


def test_read_journal_refuses_a_symlink_put_in_its_place(tmp_path) -> None:
    site, _entry, _rec = _planted(tmp_path)
    honest = tmp_path / "honest"
    os.rename(site.path, honest)
    os.symlink(honest, site.path)
    swapped = FoundJournal(site.path, False, None, os.lstat(site.path))
    with pytest.raises(AprIOError) as failed:  # O_NOFOLLOW: ELOOP, not the bytes behind the link
        journal.read_journal(swapped, site)
    assert failed.value.message.startswith(f"cannot read the stamp journal {site.path} (")
    assert failed.value.message.endswith("); nothing was written, the journal is kept")
    assert failed.value.hint == (f"fix the disk or the journal's permissions, then: apr stamp "
                                 f"{shlex.quote(site.target)} --recover")
    assert failed.value.path == site.target


def test_read_journal_does_not_block_on_a_fifo(tmp_path) -> None:
    target = _file(tmp_path)
    site = _site(target)
    os.mkfifo(site.path, 0o600)
    entry = FoundJournal(site.path, False, None, os.lstat(site.path))  # as if it had been trusted
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            journal.read_journal(entry, site)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    blocked = reader.is_alive()
    if blocked:  # unblock the reader so the thread ends
        os.close(os.open(site.path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert not blocked, "opening a FIFO under the journal's name blocked"
    (err,) = outcome
    assert isinstance(err, StampJournalError) and err.code == "stamp-journal-untrusted"
    assert "is not trusted (it is not a regular file)" in err.message


def test_read_journal_refuses_an_entry_replaced_or_changed_since_it_was_judged(tmp_path) -> None:
    site, entry, _rec = _planted(tmp_path)
    os.rename(site.path, tmp_path / "aside")
    _place(site.path, (tmp_path / "aside").read_bytes())  # same bytes, another inode
    with pytest.raises(StampJournalError) as refused:
        journal.read_journal(entry, site)
    assert refused.value.code == "stamp-journal-untrusted"
    assert refused.value.message == (f"an entry under this file's stamp-journal name, {site.path}, is not trusted "
                                     "(it was replaced while being opened); it was not applied and nothing was "
                                     "written")
    (fresh,) = journal.find_journals(site)
    os.chmod(site.path, 0o660)  # made group-writable after it was judged
    with pytest.raises(StampJournalError) as refused:
        journal.read_journal(fresh, site)
    assert "is not trusted (others can write it (mode 0660))" in refused.value.message


def test_read_journal_compares_device_too(tmp_path) -> None:
    site, entry, _rec = _planted(tmp_path)
    info = entry.info
    elsewhere = os.stat_result((*tuple(info)[:2], info.st_dev + 1, *tuple(info)[3:]))
    with pytest.raises(StampJournalError, match="it was replaced while being opened"):
        journal.read_journal(FoundJournal(entry.path, False, None, elsewhere), site)


def test_read_journal_reads_no_more_than_two_prefixes_allow(tmp_path) -> None:
    target = _file(tmp_path)
    site = _site(target)
    budget = _FIXED_SIZE + 2 * site.size + 32 + 1
    header = struct.pack("<16sQQQQII32s32s", b"APRSTAMPJOURNAL2", 0, 0, 0, 5, 0, 0, bytes(32), bytes(32))
    _place(site.path, header + bytes(budget * 2))
    (entry,) = journal.find_journals(site)
    real_read = os.read
    asked: list[int] = []

    def trickle(fd, n):  # one byte at a time: the budget is counted exactly, not per chunk
        asked.append(n)
        return real_read(fd, min(n, 1))

    with mock.patch.object(os, "read", trickle), pytest.raises(StampJournalError) as refused:
        journal.read_journal(entry, site)
    assert refused.value.message == (f"the in-place stamp journal is unreadable ({budget} bytes for a 5-byte prefix); "
                                     "it was not applied")
    assert refused.value.path == site.path
    assert asked[0] == budget and asked[-1] == 1 and len(asked) == budget


def test_read_journal_asks_for_at_most_16_mib_at_a_time(tmp_path) -> None:
    target = tmp_path / "big.apr"
    with open(target, "wb") as handle:
        handle.truncate(9 << 20)  # sparse: a 9 MiB file allows a journal over 16 MiB
    site = _site(target)
    _place(site.path, b"tiny")
    (entry,) = journal.find_journals(site)
    real_read = os.read
    asked: list[int] = []

    def spy(fd, n):
        asked.append(n)
        return real_read(fd, n)

    with mock.patch.object(os, "read", spy), pytest.raises(StampJournalError, match=r"\(too short\)"):
        journal.read_journal(entry, site)
    assert asked == [1 << 24, 1 << 24]  # the 4 bytes, then the end of the file


def test_read_journal_turns_an_os_failure_into_an_io_error_that_keeps_the_journal(tmp_path) -> None:
    site, entry, _rec = _planted(tmp_path)
    before = Path(site.path).read_bytes()
    with mock.patch.object(os, "read", side_effect=OSError(errno.EIO, "Input/output error")), \
            pytest.raises(AprIOError) as failed:
        journal.read_journal(entry, site)
    assert failed.value.message == (f"cannot read the stamp journal {site.path} (Input/output error); nothing was "
                                    "written, the journal is kept")
    assert failed.value.hint == (f"fix the disk or the journal's permissions, then: apr stamp "
                                 f"{shlex.quote(site.target)} --recover")
    assert isinstance(failed.value.__cause__, OSError) and not isinstance(failed.value.__cause__, AprIOError)
    assert Path(site.path).read_bytes() == before
    with mock.patch.object(os, "fstat", side_effect=OSError(errno.EIO, "Input/output error")), \
            pytest.raises(AprIOError, match="cannot read the stamp journal"):
        journal.read_journal(entry, site)
    gone = FoundJournal(str(tmp_path / "missing"), False, None, entry.info)
    with pytest.raises(AprIOError) as failed:
        journal.read_journal(gone, site)
    assert failed.value.message == (f"cannot read the stamp journal {tmp_path / 'missing'} (No such file or "
                                    "directory); nothing was written, the journal is kept")


def test_read_journal_closes_what_it_opens(tmp_path) -> None:
    site, entry, _rec = _planted(tmp_path)
    closed: list[int] = []
    real_close, real_open = os.close, os.open
    opened: list[int] = []

    def open_spy(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if os.fspath(path) == site.path:
            opened.append(fd)
        return fd

    def close_spy(fd):
        closed.append(fd)
        real_close(fd)

    with mock.patch.object(os, "open", open_spy), mock.patch.object(os, "close", close_spy):
        journal.read_journal(entry, site)
    assert opened and opened[0] in closed


# --- readers ---------------------------------------------------------------------------------------


def test_require_no_pending_journal_refuses_a_trusted_journal_naming_the_path_given(tmp_path) -> None:
    real = _file(tmp_path / "blobs")
    (tmp_path / "a link").mkdir()
    link = tmp_path / "a link" / "m.apr"
    link.symlink_to(real)
    _place(journal.journal_path(real), b"anything")
    assert journal.has_pending_journal(link) is True
    with pytest.raises(StampJournalError) as refused:
        journal.require_no_pending_journal(link)
    error = refused.value
    assert error.code == "stamp-interrupted" and error.path == str(link)
    assert error.message == "an in-place `apr stamp` of this file was interrupted; it may be half-written"
    assert error.hint == (f"apr stamp {shlex.quote(str(link))} --recover   (restores the file as it was before "
                          "that stamp)")


def test_require_no_pending_journal_reports_untrusted_then_judges_the_rest(tmp_path, caplog) -> None:
    target = _file(tmp_path)
    site = _site(target)
    journal.require_no_pending_journal(tmp_path / "missing.apr")  # the command itself reports a missing file
    assert journal.has_pending_journal(tmp_path / "missing.apr") is False
    _place(site.path, b"planted", 0o666)
    with caplog.at_level(logging.WARNING, logger="apr.stamp.journal"):
        journal.require_no_pending_journal(target)
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [f"ignoring {site.path}"]
    assert journal.has_pending_journal(target) is False
    _place(site.legacy_paths[0], b"v1")  # a trusted version-1 journal after the untrusted one
    with pytest.raises(StampJournalError) as refused:
        journal.require_no_pending_journal(target)
    assert refused.value.code == "stamp-journal-legacy"
    assert journal.has_pending_journal(target) is True


def test_require_no_pending_journal_passes_a_file_with_nothing_pending(tmp_path, caplog) -> None:
    target = _file(tmp_path)
    with caplog.at_level(logging.WARNING):
        journal.require_no_pending_journal(target)
    assert caplog.records == [] and journal.has_pending_journal(target) is False


# --- writing and removing --------------------------------------------------------------------------


def test_write_journal_makes_it_durable_beside_the_real_file(tmp_path) -> None:
    real = _file(tmp_path / "blobs")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "m.apr"
    link.symlink_to(real)
    record = _record(real)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync_spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    real_write = os.write

    def short_write(fd, data):  # the OS may write less than asked: every byte must still land
        return real_write(fd, bytes(data[:7]))

    with mock.patch.object(os, "fsync", fsync_spy), mock.patch.object(os, "write", short_write):
        final = journal.write_journal(str(link), record)
    assert final == str(tmp_path / "blobs" / f".apr-stamp-journal.{real.stat().st_ino}")
    assert Path(final).read_bytes() == _oracle_bytes(record)
    assert stat.S_IMODE(os.lstat(final).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "blobs")) == sorted(["m.apr", os.path.basename(final)])
    assert os.listdir(tmp_path / "links") == ["m.apr"]
    # the temporary's bytes, then (after the rename) the folder that holds the name
    assert synced[-1] == str(tmp_path / "blobs") and synced[-2].startswith(final + ".tmp-")


def test_write_journal_refuses_a_recof_another_inode(tmp_path) -> None:
    target = _file(tmp_path)
    record = _record(target, inode=target.stat().st_ino + 1)
    with pytest.raises(AprIOError) as refused:
        journal.write_journal(str(target), record)
    assert refused.value.message == "the file was replaced while it was being stamped; nothing was written"
    assert refused.value.hint == "another program is writing this path; retry when it is done"
    assert refused.value.path == str(target) and os.listdir(tmp_path) == ["m.apr"]


def test_write_journal_of_a_missing_file(tmp_path) -> None:
    target = _file(tmp_path)
    record = _record(target)
    missing = str(tmp_path / "gone.apr")
    with pytest.raises(AprIOError) as failed:
        journal.write_journal(missing, record)
    assert failed.value.message == "cannot look at the file (No such file or directory); the file was not changed"
    assert failed.value.path == missing and isinstance(failed.value.__cause__, FileNotFoundError)


def _hint(target: Path) -> str:
    return (f"an in-place stamp writes its undo journal beside the file, in {target.parent}: make that folder "
            f"writable or free space there, or stamp a copy instead: apr stamp {shlex.quote(str(target))} ... -o OUT")


@pytest.mark.parametrize(("where", "err"), [
    ("mkstemp", errno.EROFS), ("write", errno.ENOSPC), ("fsync-file", errno.EIO), ("replace", errno.EROFS),
    ("fsync-folder", errno.EIO),
])
def test_write_journal_leaves_nothing_when_a_step_fails(tmp_path, where, err) -> None:
    target = _file(tmp_path, "my model.apr")
    record = _record(target)
    before = target.read_bytes()
    failure = OSError(err, os.strerror(err))
    real_fsync, real_open = os.fsync, os.open
    folder_fds: set[int] = set()

    def open_spy(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if os.fspath(path) == str(tmp_path):
            folder_fds.add(fd)
        return fd

    def fsync(fd):
        is_folder = fd in folder_fds
        if (where == "fsync-file" and not is_folder) or (where == "fsync-folder" and is_folder):
            raise failure
        real_fsync(fd)

    patches = {"mkstemp": mock.patch.object(tempfile, "mkstemp", side_effect=failure),
               "write": mock.patch.object(os, "write", side_effect=failure),
               "fsync-file": mock.patch.object(os, "fsync", fsync),
               "fsync-folder": mock.patch.object(os, "fsync", fsync),
               "replace": mock.patch.object(os, "replace", side_effect=failure)}
    with mock.patch.object(os, "open", open_spy), patches[where], pytest.raises(AprIOError) as failed:
        journal.write_journal(str(target), record)
    reason = "no space left on device" if err == errno.ENOSPC else os.strerror(err)
    assert failed.value.message == f"cannot write the stamp journal ({reason}); the file was not changed"
    assert failed.value.hint == _hint(target) and failed.value.path == str(target)
    assert failed.value.__cause__ is failure
    assert os.listdir(tmp_path) == ["my model.apr"] and target.read_bytes() == before


@pytest.mark.parametrize("where", ["write", "fsync-folder"])
def test_write_journal_interrupted_leaves_nothing_and_reraises(tmp_path, where) -> None:
    target = _file(tmp_path)
    record = _record(target)
    real_fsync, real_open = os.fsync, os.open
    folder_fds: set[int] = set()

    def open_spy(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if os.fspath(path) == str(tmp_path):
            folder_fds.add(fd)
        return fd

    def fsync(fd):
        if fd in folder_fds:
            raise KeyboardInterrupt
        real_fsync(fd)

    patch = (mock.patch.object(os, "write", side_effect=KeyboardInterrupt) if where == "write"
             else mock.patch.object(os, "fsync", fsync))
    with mock.patch.object(os, "open", open_spy), patch, pytest.raises(KeyboardInterrupt):
        journal.write_journal(str(target), record)
    assert os.listdir(tmp_path) == ["m.apr"]


def test_write_journal_names_its_temporary_after_the_journal_in_its_folder(tmp_path) -> None:
    target = _file(tmp_path)
    record = _record(target)
    real_mkstemp = tempfile.mkstemp
    calls: list[dict] = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_mkstemp(*args, **kwargs)

    with mock.patch.object(tempfile, "mkstemp", spy):
        final = journal.write_journal(str(target), record)
    assert calls == [{"prefix": os.path.basename(final) + ".tmp-", "dir": str(tmp_path)}]


def test_fsync_dir_syncs_the_folder_and_closes_it(tmp_path) -> None:
    real_fsync, real_close = os.fsync, os.close
    seen: list[tuple[str, int]] = []

    def fsync_spy(fd):
        seen.append(("fsync", fd))
        real_fsync(fd)

    def close_spy(fd):
        seen.append(("close", fd))
        real_close(fd)

    with mock.patch.object(os, "fsync", fsync_spy), mock.patch.object(os, "close", close_spy):
        journal.fsync_dir(str(tmp_path))
    assert len(seen) == 2 and seen[0][0] == "fsync" and seen[1] == ("close", seen[0][1])
    with mock.patch.object(os, "fsync", side_effect=OSError(errno.EIO, "x")), \
            mock.patch.object(os, "close", close_spy), pytest.raises(OSError):
        journal.fsync_dir(str(tmp_path))
    assert seen[-1][0] == "close"


def test_remove_stray_temporaries_removes_only_our_trusted_temporaries(tmp_path) -> None:
    target = _file(tmp_path)
    name = os.path.basename(journal.journal_path(target))
    ours = tmp_path / f"{name}.tmp-abc123"
    _place(ours, b"half")
    kept = {
        tmp_path / f"{name}.tmp-planted": 0o622,  # writable by others: not trusted, not ours to delete
        tmp_path / f"{name}.tmpx": 0o600,  # not the temporary prefix
        tmp_path / f".apr-stamp-journal.{target.stat().st_ino + 1}.tmp-a": 0o600,  # another file's
        tmp_path / f"x{name}.tmp-a": 0o600,
    }
    for path, mode in kept.items():
        _place(path, b"keep", mode)
    os.mkdir(tmp_path / f"{name}.tmp-folder")
    journal._remove_stray_temporaries(str(target))
    assert not ours.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["m.apr", f"{name}.tmp-folder", *(p.name for p in kept)])
    journal._remove_stray_temporaries(str(tmp_path / "missing.apr"))  # nothing to do, no error
    with mock.patch.object(os, "listdir", side_effect=PermissionError(errno.EACCES, "x")):
        journal._remove_stray_temporaries(str(target))


def test_remove_stray_temporaries_goes_on_after_one_it_cannot_remove(tmp_path) -> None:
    target = _file(tmp_path)
    name = os.path.basename(journal.journal_path(target))
    first, second = tmp_path / f"{name}.tmp-1", tmp_path / f"{name}.tmp-2"
    _place(first, b"a")
    _place(second, b"b")
    real_unlink = os.unlink
    tried: list[str] = []

    def unlink(path, *args, **kwargs):
        tried.append(os.path.basename(path))
        if len(tried) == 1:
            raise PermissionError(errno.EACCES, "x")
        real_unlink(path, *args, **kwargs)

    with mock.patch.object(os, "unlink", unlink):
        journal._remove_stray_temporaries(str(target))
    assert sorted(tried) == sorted([first.name, second.name])
    assert len([p for p in (first, second) if p.exists()]) == 1


def test_read_journal_where_the_platform_lacks_the_optional_flags(tmp_path, monkeypatch) -> None:
    """Without O_NOFOLLOW, O_NONBLOCK or O_CLOEXEC (not every platform has them) it opens read-only, nothing more."""
    site, entry, record = _planted(tmp_path)
    real_open = os.open
    opened: list[int] = []

    def spy(path, flags, *args, **kwargs):
        opened.append(flags)
        return real_open(path, flags, *args, **kwargs)

    for name in ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC"):
        monkeypatch.delattr(os, name)
    monkeypatch.setattr(os, "open", spy)
    assert journal.read_journal(entry, site) == record
    assert opened == [os.O_RDONLY]


@pytest.mark.parametrize("by", ["owner", "you"])
def test_read_journal_trusts_a_journal_of_the_files_owner_or_of_you(tmp_path, by) -> None:
    """Judged again after opening, with the file's owner and the euid (neither of them root here)."""
    site, entry, record = _planted(tmp_path)
    site = dataclasses.replace(site, owner=4242)
    real_fstat = os.fstat
    uid = 4242 if by == "owner" else 1111

    def fstat(fd):
        fields = list(real_fstat(fd))
        fields[stat.ST_UID] = uid
        return os.stat_result(fields)

    with mock.patch.object(os, "fstat", fstat), mock.patch.object(os, "geteuid", return_value=1111):
        assert journal.read_journal(entry, site) == record
    with mock.patch.object(os, "fstat", fstat), mock.patch.object(os, "geteuid", return_value=2222), \
            pytest.raises(StampJournalError) as refused:
        journal.read_journal(entry, dataclasses.replace(site, owner=3333))
    assert f"it is owned by uid {uid}" in refused.value.message


def test_write_journal_reports_the_failure_even_when_its_cleanup_fails(tmp_path) -> None:
    target = _file(tmp_path)
    with mock.patch.object(os, "replace", side_effect=OSError(errno.EROFS, "Read-only file system")), \
            mock.patch.object(os, "unlink", side_effect=OSError(errno.EROFS, "Read-only file system")), \
            pytest.raises(AprIOError) as failed:
        journal.write_journal(str(target), _record(target))
    assert failed.value.message == "cannot write the stamp journal (Read-only file system); the file was not changed"


def _uid_as(uid: int, real):
    """``os.stat``/``os.lstat`` reporting ``uid`` as the owner (to judge trust as a non-root user would)."""
    def call(path, *args, **kwargs):
        fields = list(real(path, *args, **kwargs))
        fields[stat.ST_UID] = uid
        return os.stat_result(fields)
    return call


@pytest.mark.parametrize("by", ["owner", "you"])
def test_find_journals_trusts_the_files_owner_and_you(tmp_path, by) -> None:
    target = _file(tmp_path)
    site = dataclasses.replace(_site(target), owner=4242)
    _place(site.path, b"x")
    with mock.patch.object(os, "lstat", _uid_as(4242 if by == "owner" else 1111, os.lstat)), \
            mock.patch.object(os, "geteuid", return_value=1111):
        assert [f.distrust for f in journal.find_journals(site)] == [None]
        # another owner: only "you" still trusts it
        other = [f.distrust is None for f in journal.find_journals(dataclasses.replace(site, owner=3333))]
        assert other == [by == "you"]


@pytest.mark.parametrize("by", ["owner", "you"])
def test_remove_stray_temporaries_removes_the_owners_and_yours(tmp_path, by) -> None:
    target = _file(tmp_path)
    stray = tmp_path / (os.path.basename(journal.journal_path(target)) + ".tmp-1")
    _place(stray, b"half")
    with mock.patch.object(os, "stat", _uid_as(4242, os.stat)), \
            mock.patch.object(os, "lstat", _uid_as(4242 if by == "owner" else 1111, os.lstat)), \
            mock.patch.object(os, "geteuid", return_value=1111):
        journal._remove_stray_temporaries(str(target))
    assert not stray.exists()
