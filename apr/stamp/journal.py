"""The undo journal of `apr stamp --in-place`: its bytes, where it lives, whom it trusts.

Protocol (each step durable before the next; the target is only ever written in step 3):

1. the journal — the target's device, inode and size, the old and the new prefix and footer, a
   SHA-256 digest of each state, and a SHA-256 of all that — is written to a temporary beside the
   real file, fsynced, renamed to its final name, and the folder is fsynced. A journal under its
   final name is therefore always complete;
2. (the stamp checks the target still has the journal's inode and size);
3. the new prefix and footer are written over the target with ``pwrite``, and the target fsynced;
4. the target is re-read and verified; on failure the journal is applied (rolled back);
5. the journal is unlinked and the folder fsynced. The stamp has now happened.

**Bound to the file, not to a name.** The journal is keyed by the file's identity: it sits in the
folder of the *resolved* path (beside the real file, never beside a symlink to it, so a Hugging
Face snapshot link and its blob share one journal) and is named after the file's inode,
``.apr-stamp-journal.<inode>``; the device is the folder's own (a file lies on its folder's
filesystem). The journal records ``st_dev`` too, but a device number may change across a reboot
(LVM, NVMe, btrfs renumber them), so recovery does not rely on it: it relies on the digests (see
`apr.stamp.recovery`), which bind the journal to the file's current *bytes*.

**Trusted only when its owner could have written the file anyway.** A journal is applied (or makes
readers refuse the file) only if it is a regular file with one link, not a symlink, writable by
its owner alone, and owned by the file's owner, by root, or by the user running the command. Any
other entry under a journal's name — planted by someone who can write the folder — is ignored and
reported (a warning), never applied (`distrust_reason`).

**Old journals.** Version 1 (magic ``APRSTAMPJOURNAL1``, ``.<name>.stamp-journal`` beside the path
given) carries no digest, so nothing can show it belongs to the file's current bytes: it is never
applied; readers and stamps refuse the file with a message saying how to check it by hand.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shlex
import stat
import struct
import tempfile
from dataclasses import dataclass, replace

from apr.errors import AprError, AprIOError, StampJournalError
from apr.stamp.journal_site import JournalSite, locate

logger = logging.getLogger(__name__)

MAGIC = b"APRSTAMPJOURNAL2"
LEGACY_MAGIC = b"APRSTAMPJOURNAL1"
# magic, device, inode, file size, prefix length, old footer, new footer, old digest, new digest
_FIXED = struct.Struct("<16sQQQQII32s32s")
_TRAILER = 32  # SHA-256 of everything before it
_FOOTER = 4


def state_digest(prefix: bytes, footer: int) -> bytes:
    """SHA-256 of a file state as the journal sees it: the prefix, then the 4-byte footer (LE)."""
    return hashlib.sha256(prefix + footer.to_bytes(_FOOTER, "little")).digest()


@dataclass(frozen=True, slots=True)
class Journal:
    """Both states of the bytes an in-place stamp writes: ``[0, len(prefix))`` and the footer.

    The old state is what recovery writes back; the new one lets recovery tell a torn write of this
    stamp (every byte old or new) from a file that was replaced since (refused).
    """

    device: int
    inode: int
    file_size: int
    old_prefix: bytes
    old_footer: int
    new_prefix: bytes
    new_footer: int

    def __post_init__(self) -> None:
        if len(self.old_prefix) != len(self.new_prefix):
            raise ValueError("an in-place stamp keeps the prefix length (data_offset)")
        if len(self.old_prefix) + _FOOTER > self.file_size:
            raise ValueError("the prefix and footer do not fit in the file size")

    @property
    def old_digest(self) -> bytes:
        return state_digest(self.old_prefix, self.old_footer)

    @property
    def new_digest(self) -> bytes:
        return state_digest(self.new_prefix, self.new_footer)

    def to_bytes(self) -> bytes:
        body = _FIXED.pack(MAGIC, self.device, self.inode, self.file_size, len(self.old_prefix), self.old_footer,
                           self.new_footer, self.old_digest, self.new_digest) + self.old_prefix + self.new_prefix
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Journal:
        """Parse and check a journal (``path`` is the journal's, for the message).

        Raises:
            StampJournalError: ``stamp-journal-corrupt`` — wrong magic, length or digest.
        """
        def corrupt(why: str) -> StampJournalError:
            return StampJournalError(
                f"the in-place stamp journal is unreadable ({why}); it was not applied", path=path,
                code="stamp-journal-corrupt",
                hint=f"restore the file it belongs to from a copy or its source, then delete the journal: "
                     f"rm {shlex.quote(path)}",
            )

        if len(data) < _FIXED.size + _TRAILER:
            raise corrupt("too short")
        magic, device, inode, size, length, old_footer, new_footer, old_digest, new_digest = _FIXED.unpack_from(data)
        if magic != MAGIC:
            raise corrupt(f"magic {magic!r}, expected {MAGIC!r}")
        if len(data) != _FIXED.size + 2 * length + _TRAILER:
            raise corrupt(f"{len(data)} bytes for a {length}-byte prefix")
        if hashlib.sha256(data[:-_TRAILER]).digest() != data[-_TRAILER:]:
            raise corrupt("checksum mismatch")
        old_prefix = data[_FIXED.size : _FIXED.size + length]
        new_prefix = data[_FIXED.size + length : _FIXED.size + 2 * length]
        try:
            journal = cls(device=device, inode=inode, file_size=size, old_prefix=old_prefix, old_footer=old_footer,
                          new_prefix=new_prefix, new_footer=new_footer)
        except ValueError as err:
            raise corrupt(str(err)) from None
        if journal.old_digest != old_digest or journal.new_digest != new_digest:
            raise corrupt("a state does not match its digest")
        from apr.format.header import parse_header  # lazy: readers import this module at start-up

        try:  # the state recovery writes back must be a whole APR prefix: header to data_offset
            ends = parse_header(old_prefix[:64], verify_checksum=False).data_offset == length
        except AprError:
            ends = False
        if not ends:
            raise corrupt("its old prefix is not an APR v2 header, metadata and index ending at data_offset")
        return journal


# --- errors ---------------------------------------------------------------------------------------


def os_failure(err: OSError, what: str, path: str, hint: str | None = None, *, state: str | None = None) -> AprIOError:
    """An `AprIOError` for ``err``: what failed (with the OS's reason), in which state the file is, how to go on.

    Example:
        >>> str(os_failure(OSError(30, "Read-only file system"), "cannot write the journal", "m.apr",
        ...                "remount it read-write", state="the file was not changed"))
        'm.apr: cannot write the journal (Read-only file system); the file was not changed\\n  fix: remount it read-write'
    """
    reason = "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    return AprIOError(f"{what} ({reason})" + (f"; {state}" if state else ""), path=path, hint=hint)


# --- where a file's journal lives ----------------------------------------------------------------


def journal_path(target: str | os.PathLike[str]) -> str:
    """The journal name of the file ``target`` resolves to (``<real folder>/.apr-stamp-journal.<inode>``)."""
    return locate(target).path


# --- trust ---------------------------------------------------------------------------------------


def distrust_reason(entry: os.stat_result, owner: int, euid: int) -> str | None:
    """Why ``entry`` (the ``lstat`` of what lies under a journal's name) must not be applied; None if trusted.

    Trusted means: a regular file with a single link, writable by its owner only, and owned by the
    target's owner (``owner``), by root, or by ``euid`` (the user running the command, who needs write access
    to the target to apply it and so could write those bytes anyway). Anything else may have been
    planted by whoever can write the folder, and applying it would write their bytes with the
    owner's authority.

    Example:
        >>> import os
        >>> mine = os.stat_result((0o100600, 1, 1, 1, 1000, 1000, 10, 0, 0, 0))
        >>> distrust_reason(mine, owner=1000, euid=1000) is None
        True
    """
    mode = entry.st_mode
    if stat.S_ISLNK(mode):
        return "it is a symbolic link"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if entry.st_uid not in (owner, 0, euid):
        trusted = [f"the file's owner (uid {owner})", "root"]
        if euid not in (owner, 0):
            trusted.append(f"you (uid {euid})")
        return f"it is owned by uid {entry.st_uid}, not by {', '.join(trusted[:-1])} or {trusted[-1]}"
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others can write it (mode {stat.S_IMODE(mode):04o})"
    if entry.st_nlink != 1:
        return f"it has {entry.st_nlink} hard links"
    return None


@dataclass(frozen=True, slots=True)
class FoundJournal:
    """An entry under a journal's name: where, which version, and why it is not trusted (None: trusted)."""

    path: str
    legacy: bool
    distrust: str | None
    info: os.stat_result


def find_journals(site: JournalSite) -> list[FoundJournal]:
    """Every entry under one of ``site``'s journal names, judged by `distrust_reason` (``lstat``: nothing opened)."""
    found = []
    for path, legacy in ((site.path, False), *((p, True) for p in site.legacy_paths)):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise os_failure(err, f"cannot look for the stamp journal {path}", site.target,
                             state="nothing was written") from err
        found.append(FoundJournal(path, legacy, distrust_reason(info, site.owner, os.geteuid()), info))
    return found


def report_untrusted(site: JournalSite, entry: FoundJournal) -> None:
    """Say, once, that ``entry`` was ignored (a warning: the command goes on without it)."""
    logger.warning("%s: ignoring %s: %s, so it is not trusted; it was not applied (delete it if you do not "
                   "know who made it: rm %s)", site.target, entry.path, entry.distrust, shlex.quote(entry.path))


def untrusted_error(site: JournalSite, entry: FoundJournal) -> StampJournalError:
    """The refusal when an untrusted entry holds the journal's name a stamp or recovery needs."""
    hint = f"if you do not know who made it, delete it (rm {shlex.quote(entry.path)}) and run the command again"
    if stat.S_ISREG(entry.info.st_mode) and entry.info.st_uid not in (site.owner, 0, os.geteuid()):
        hint += (f"; if uid {entry.info.st_uid} was stamping this file, only they can recover it: "
                 f"apr stamp {shlex.quote(site.target)} --recover")
    return StampJournalError(
        f"an entry under this file's stamp-journal name, {entry.path}, is not trusted ({entry.distrust}); "
        "it was not applied and nothing was written", path=site.target, code="stamp-journal-untrusted", hint=hint,
    )


def legacy_error(site: JournalSite, entry: FoundJournal) -> StampJournalError:
    """The refusal for a version-1 journal: it cannot be checked against the file, so it is never applied."""
    quoted, target = shlex.quote(entry.path), shlex.quote(site.target)
    return StampJournalError(
        f"an interrupted in-place `apr stamp` left a journal in the old format ({entry.path}); it records no "
        "digest of the file, so nothing shows it still belongs to this file's bytes, and it is not applied; "
        "the file may be half-written", path=site.target, code="stamp-journal-legacy",
        hint=f"check the file without it: mv {quoted} {quoted}.bak && apr validate {target}; if VALID, delete "
             f"{quoted}.bak; if not, restore {target} from a copy or its source",
    )


def read_journal(entry: FoundJournal, site: JournalSite) -> Journal:
    """Open a trusted journal without following links or blocking on a FIFO, judge it again, parse it.

    Raises:
        StampJournalError: it was swapped for an untrusted entry meanwhile, or it is corrupt.
        AprIOError: the OS refused the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    failed = f"cannot read the stamp journal {entry.path}"
    retry = f"fix the disk or the journal's permissions, then: apr stamp {shlex.quote(site.target)} --recover"
    try:
        fd = os.open(entry.path, flags)
    except OSError as err:
        raise os_failure(err, failed, site.target, retry, state="nothing was written, the journal is kept") from err
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (entry.info.st_dev, entry.info.st_ino):
            raise untrusted_error(site, replace(entry, distrust="it was replaced while being opened"))
        reason = distrust_reason(info, site.owner, os.geteuid())
        if reason is not None:
            raise untrusted_error(site, replace(entry, distrust=reason))
        # A journal holds two prefixes, each shorter than the file: read no more than that allows.
        budget = _FIXED.size + 2 * site.size + _TRAILER + 1
        chunks = []
        while budget > 0 and (chunk := os.read(fd, min(budget, 1 << 24))):
            chunks.append(chunk)
            budget -= len(chunk)
    except OSError as err:
        if isinstance(err, AprIOError):
            raise
        raise os_failure(err, failed, site.target, retry, state="nothing was written, the journal is kept") from err
    finally:
        os.close(fd)
    return Journal.from_bytes(b"".join(chunks), entry.path)


def require_no_pending_journal(target: str | os.PathLike[str]) -> None:
    """For commands that read a file: refuse it while an in-place stamp of it is interrupted.

    ``target`` is resolved, so a stamp through a symlink is seen from the real path and from every
    link to it. Untrusted entries are reported and ignored (they cannot make a reader refuse).

    Raises:
        StampJournalError: ``stamp-interrupted`` with the command that restores the file, or
            ``stamp-journal-legacy`` for a version-1 journal.
    """
    try:
        site = locate(target)
    except OSError:
        return  # missing or unreadable: the command itself reports that
    for entry in find_journals(site):
        if entry.distrust is not None:
            report_untrusted(site, entry)
        elif entry.legacy:
            raise legacy_error(site, entry)
        else:
            raise StampJournalError(
                "an in-place `apr stamp` of this file was interrupted; it may be half-written",
                path=os.fspath(target),
                hint=f"apr stamp {shlex.quote(os.fspath(target))} --recover   (restores the file as it was before "
                     "that stamp)",
            )


def has_pending_journal(target: str | os.PathLike[str]) -> bool:
    """True when a trusted journal of an interrupted in-place stamp of ``target`` is pending."""
    try:
        site = locate(target)
    except OSError:
        return False
    return any(entry.distrust is None for entry in find_journals(site))


# --- writing and removing ----------------------------------------------------------------------


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_journal(target: str, journal: Journal) -> str:
    """Step 1: make the journal durable under its final name (beside the real file); return that name.

    Raises:
        AprIOError: the OS refused (read-only folder, disk full, EIO); no journal is left and the
            target was not written.
    """
    try:
        site = locate(target)
    except OSError as err:
        raise os_failure(err, "cannot look at the file", target, state="the file was not changed") from err
    if site.inode != journal.inode:
        raise AprIOError("the file was replaced while it was being stamped; nothing was written", path=target,
                         hint="another program is writing this path; retry when it is done")
    final, folder = site.path, site.folder
    hint = (f"an in-place stamp writes its undo journal beside the file, in {folder}: make that folder writable "
            f"or free space there, or stamp a copy instead: apr stamp {shlex.quote(target)} ... -o OUT")
    # Not atomic_write: the journal's rename must be undone when the folder fsync after it fails (a
    # journal that is not durable must not outlive the call), and its strays are removed only when
    # owned by us (`_remove_stray_temporaries`, `distrust_reason`), not by atomic's pid rule.
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(final) + ".tmp-", dir=folder)
    except OSError as err:
        raise os_failure(err, "cannot write the stamp journal", target, hint, state="the file was not changed") from err
    renamed = False
    try:
        try:
            _write_all(fd, journal.to_bytes())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        renamed = True
        fsync_dir(folder)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(final if renamed else tmp)
        if isinstance(err, OSError):
            raise os_failure(err, "cannot write the stamp journal", target, hint,
                             state="the file was not changed") from err
        raise
    return final


def _remove_stray_temporaries(target: str) -> None:
    """Remove journal temporaries a killed stamp of ``target`` left (only trusted ones: regular, ours)."""
    try:
        site = locate(target)
        names = os.listdir(site.folder)
    except OSError:
        return
    prefix = os.path.basename(site.path) + ".tmp-"
    for name in names:
        if name.startswith(prefix):
            path = os.path.join(site.folder, name)
            with contextlib.suppress(OSError):
                if distrust_reason(os.lstat(path), site.owner, os.geteuid()) is None:
                    os.unlink(path)


__all__ = [
    "FoundJournal",
    "Journal",
    "JournalSite",
    "distrust_reason",
    "find_journals",
    "has_pending_journal",
    "journal_path",
    "locate",
    "os_failure",
    "read_journal",
    "require_no_pending_journal",
    "state_digest",
    "write_journal",
]
