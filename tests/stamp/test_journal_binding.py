"""The in-place stamp journal is bound to its file (issue 14, item 2): FALSIFY-STAMP-013..016.

* 013: a stamp through a symlink (a Hugging Face snapshot) killed at any crash point leaves its
  journal beside the real file; every path to the file sees it, and recovery through any of them
  restores the file.
* 014: a journal applies only to the bytes it was written for: a file copied over the stamped one
  (same inode, same size or not) is refused, nothing written, the journal kept; a journal of the
  old format (no digest) is never applied.
* 015: an entry under a journal's name that its owner could not have written (another owner,
  writable by others, a symlink, a FIFO, a folder, a hard link) is reported and never applied.
* 016: every OSError of `stamp --in-place` and `--recover` is an exit-7 error that says in which
  state it left the file, and that state is true: old, new, or restorable from a kept journal.

Kills are simulated in-process (the crash point raises a BaseException, so nothing after it runs)
except in the reproducers, which SIGKILL a real `apr stamp` as tests/stamp/test_crash_safety.py does.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apr.errors import StampJournalError
from apr.format import open_file
from apr.format.header import parse_header
from apr.stamp import ProvenancePatch, recover_file, stamp_file
from apr.stamp import file as stamp_module
from apr.stamp import journal
from apr.stamp.journal import Journal, has_pending_journal, journal_path, require_no_pending_journal
from stamp_builders import patches, run_cli, write_checkpoint
from tests.stamp.crash_points import IN_PLACE_POINTS, installed

_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
_REPO = Path(__file__).resolve().parents[2]
# After a kill at these points a journal is pending (the target may be old, torn or new).
_PENDING = IN_PLACE_POINTS[1:-1]
_LAYOUTS = ("relative-link", "absolute-link", "link-to-link", "hf-snapshot")
_FOREIGN_UID = 4242


class Killed(BaseException):
    """SIGKILL at a crash point, in-process: no handler runs, nothing after the point happens."""


@contextlib.contextmanager
def killed_at(point: str):
    def crash(name: str) -> None:
        if name == point:
            raise Killed(name)

    with installed(crash):
        yield


def _base(folder: Path, name: str, *, metadata: dict | None = None, tensors: dict | None = None) -> Path:
    """A checkpoint with >= 4 KiB of slack before its data section, so later stamps fit in place.

    (The layout rule grows data_offset by at least 4 KiB when the metadata stops fitting: a long
    description does that, and clearing it again keeps the offset.)
    """
    folder.mkdir(parents=True, exist_ok=True)
    seed = write_checkpoint(folder / f".seed-{name}", metadata=metadata or {"architecture": "qwen2"}, tensors=tensors)
    grown = folder / f".grown-{name}"
    stamp_file(seed, ProvenancePatch(description="x" * 2000), output=grown)
    stamp_file(grown, ProvenancePatch(name="base", description=""), output=folder / name)
    os.unlink(seed)
    os.unlink(grown)
    return folder / name


def _stamped(root: Path, data: bytes, patch: ProvenancePatch) -> bytes:
    """Oracle: what stamping ``data`` with ``patch`` gives, by -o on a copy elsewhere (INV-STAMP-003: same bytes)."""
    folder = Path(tempfile.mkdtemp(dir=root, prefix="oracle-"))
    (folder / "in.apr").write_bytes(data)
    stamp_file(folder / "in.apr", patch, output=folder / "out.apr")
    return (folder / "out.apr").read_bytes()


def _lay_out(root: Path, layout: str) -> tuple[Path, Path]:
    """(the real file, a symlink to it) in different folders."""
    real = _base(root / "blobs", "9f86d081884c7d65")
    links = root / ("snapshots/rev" if layout == "hf-snapshot" else "links")
    links.mkdir(parents=True)
    link = links / "model.apr"
    if layout in ("relative-link", "hf-snapshot"):
        link.symlink_to(os.path.relpath(real, links))
    elif layout == "absolute-link":
        link.symlink_to(real)
    else:  # link-to-link
        (root / "mid").mkdir()
        (root / "mid" / "x.apr").symlink_to(real)
        link.symlink_to(root / "mid" / "x.apr")
    return real, link


def _journal_entries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "stamp-journal" in p.name)


def _description(path: Path) -> str | None:
    with open_file(path) as reader:
        return reader.metadata.get("description")


# --- FALSIFY-STAMP-013: through a link ------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-STAMP-013")
@_SETTINGS
@given(point=st.sampled_from(IN_PLACE_POINTS), layout=st.sampled_from(_LAYOUTS),
       recover_via=st.sampled_from(["link", "real"]), how=st.sampled_from(["recover", "next-stamp"]), patch=patches())
def test_falsify_stamp_013_kill_through_a_link_is_seen_and_recovered_from_every_path(point, layout, recover_via,
                                                                                      how, patch):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        real, link = _lay_out(root, layout)
        old = real.read_bytes()
        new = _stamped(root, old, patch)
        assume(new != old)  # a patch that changes nothing writes nothing: no crash point is reached
        with killed_at(point), pytest.raises(Killed):
            stamp_file(link, patch, in_place=True)
        pending = point in _PENDING
        # Beside the real file, keyed by its inode; nothing beside the link (or the link it goes through).
        expected = [f"blobs/.apr-stamp-journal.{real.stat().st_ino}"] if pending else []
        assert _journal_entries(root) == expected
        for path in (real, link):
            assert has_pending_journal(path) is pending
            if pending:
                with pytest.raises(StampJournalError) as refused:
                    require_no_pending_journal(path)
                assert refused.value.code == "stamp-interrupted"
                assert f"apr stamp {shlex.quote(str(path))} --recover" in refused.value.hint
            else:
                require_no_pending_journal(path)
        via = link if recover_via == "link" else real
        before = new if point == "in-place-after-journal-removed" else old
        if how == "recover":
            assert recover_file(via) == ("rolled-back" if pending else "none")
            expected_bytes = before
        else:
            second = ProvenancePatch(name="second stamp")
            assert stamp_file(via, second, in_place=True).recovered == ("rolled-back" if pending else "none")
            expected_bytes = _stamped(root, before, second)
        assert real.read_bytes() == expected_bytes
        assert link.is_symlink() and link.resolve() == real.resolve()
        assert _journal_entries(root) == []
        for path in (real, link):
            require_no_pending_journal(path)


@pytest.mark.falsifies("FALSIFY-STAMP-013")
def test_falsify_stamp_013_sigkill_through_hf_snapshot_link_reproducer(tmp_path):
    """Issue 14: `apr stamp snapshots/rev/model.apr --in-place` killed mid-write left the blob damaged,
    and reading commands on the blob saw nothing."""
    real, link = _lay_out(tmp_path, "hf-snapshot")
    old = real.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APR_")}
    env.update(PYTHONPATH=os.pathsep.join([str(_REPO), env.get("PYTHONPATH", "")]),
               APR_TEST_CRASHPOINT="in-place-mid-prefix")
    proc = subprocess.run([sys.executable, "-m", "tests.stamp.crash_points", "stamp", str(link), "--license", "MIT",
                           "--in-place"],
                          env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert real.read_bytes() != old  # killed half-way: the blob is torn
    for path in (real, link):
        code, _out, err = run_cli(["validate", str(path)])
        assert code == 5 and f"apr stamp {path} --recover" in err, err
    code, out, err = run_cli(["stamp", str(real), "--recover"])
    assert code == 0 and "rolled back" in out, err
    assert real.read_bytes() == old and _journal_entries(tmp_path) == []
    assert run_cli(["validate", str(link)])[0] == 0


@pytest.mark.falsifies("FALSIFY-STAMP-013")
def test_falsify_stamp_013_fallback_rewrite_through_a_link_replaces_the_real_file(tmp_path):
    """Metadata that no longer fits: the rewrite renames over the real file; the link stays a link to it."""
    real, link = _lay_out(tmp_path, "hf-snapshot")
    patch = ProvenancePatch(description="y" * 9000)
    expected = _stamped(tmp_path, real.read_bytes(), patch)
    result = stamp_file(link, patch, in_place=True)
    assert result.mode == "rewrite"
    assert link.is_symlink() and link.resolve() == real.resolve() and real.read_bytes() == expected
    assert _journal_entries(tmp_path) == [] and not [p for p in tmp_path.rglob("*.tmp-*")]


@pytest.mark.falsifies("FALSIFY-STAMP-013")
def test_falsify_stamp_013_journal_follows_a_rename_in_its_folder(tmp_path):
    """Keyed by inode: `mv m.apr n.apr` after the kill, and n.apr still sees and recovers it."""
    target = _base(tmp_path, "m.apr")
    old = target.read_bytes()
    with killed_at("in-place-mid-prefix"), pytest.raises(Killed):
        stamp_file(target, ProvenancePatch(license="MIT"), in_place=True)
    renamed = tmp_path / "n.apr"
    target.rename(renamed)
    with pytest.raises(StampJournalError):
        require_no_pending_journal(renamed)
    assert recover_file(renamed) == "rolled-back" and renamed.read_bytes() == old


# --- FALSIFY-STAMP-014: bound to the file's bytes --------------------------------------------------


def _replacement(kind: str, root: Path, rng: np.random.Generator) -> Path:
    """Another checkpoint to copy over the stamped one (`cp epoch-002.apr m.apr`)."""
    same = {"architecture": "qwen2", "epoch": 1}
    weights = {"model.embed_tokens.weight": np.ones((4, 8), np.float32)}
    if kind == "other-tensors":  # same metadata, same size, other weights
        meta, tensors = same, {"model.embed_tokens.weight": rng.standard_normal((4, 8)).astype(np.float32)}
    elif kind == "other-metadata":  # same weights, same size, another epoch
        meta, tensors = {"architecture": "qwen2", "epoch": 2}, weights
    else:  # another size
        meta, tensors = same, {"model.embed_tokens.weight": rng.standard_normal((8, 8)).astype(np.float32)}
    return _base(Path(tempfile.mkdtemp(dir=root, prefix="other-")), "epoch-002.apr", metadata=meta, tensors=tensors)


def _is_torn(region: bytes, old: bytes, new: bytes) -> bool:
    """Independent restatement of what a killed write can leave: every byte the old one or the new one."""
    return len(region) == len(old) and all(c in (a, b) for c, a, b in zip(region, old, new, strict=False))


@pytest.mark.falsifies("FALSIFY-STAMP-014")
@_SETTINGS
@given(point=st.sampled_from(_PENDING), kind=st.sampled_from(["other-tensors", "other-metadata", "other-size"]),
       how=st.sampled_from(["recover", "next-stamp", "cli-recover"]), patch=patches(), seed=st.integers(0, 2**32 - 1))
def test_falsify_stamp_014_file_replaced_since_the_kill_is_refused_and_untouched(point, kind, how, patch, seed):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = _base(root / "run", "m.apr", metadata={"architecture": "qwen2", "epoch": 1},
                       tensors={"model.embed_tokens.weight": np.ones((4, 8), np.float32)})
        old = target.read_bytes()
        new = _stamped(root, old, patch)
        assume(new != old)
        with killed_at(point), pytest.raises(Killed):
            stamp_file(target, patch, in_place=True)
        inode, journal_file = target.stat().st_ino, journal_path(target)
        journal_bytes = Path(journal_file).read_bytes()
        replacement = _replacement(kind, root, np.random.default_rng(seed))
        other = replacement.read_bytes()
        length = parse_header(old[:64]).data_offset
        assume(not (len(other) == len(old)
                    and _is_torn(other[:length] + other[-4:], old[:length] + old[-4:], new[:length] + new[-4:])))
        shutil.copyfile(replacement, target)
        assert target.stat().st_ino == inode and target.read_bytes() == other  # cp keeps the inode
        if how == "cli-recover":
            code, out, _err = run_cli(["stamp", str(target), "--recover", "--json"])
            document = json.loads(out)
            assert code == 5 and "error" in document, document
            error = document["error"]
            assert error["code"] == "stamp-journal-mismatch"
            assert f"rm {shlex.quote(journal_file)}" in error["hint"]
        else:
            with pytest.raises(StampJournalError) as refused:
                if how == "recover":
                    recover_file(target)
                else:
                    stamp_file(target, ProvenancePatch(name="next"), in_place=True)
            assert refused.value.code == "stamp-journal-mismatch"
        assert target.read_bytes() == other, "recovery wrote over a file the journal does not belong to"
        assert Path(journal_file).read_bytes() == journal_bytes, "the refused journal must be kept"
        with pytest.raises(StampJournalError):
            require_no_pending_journal(target)


@pytest.mark.falsifies("FALSIFY-STAMP-014")
def test_falsify_stamp_014_cp_epoch_over_leftover_journal_reproducer(tmp_path):
    """Issue 14: after `cp epoch-002.apr m.apr` over a file with a leftover journal, the advised
    `apr stamp m.apr --recover` wrote epoch-001's metadata onto epoch-002's weights, exit 0."""
    rng = np.random.default_rng(1)
    epochs = {n: _base(tmp_path, f"epoch-00{n}.apr", metadata={"architecture": "qwen2", "epoch": n},
                       tensors={"model.embed_tokens.weight": rng.standard_normal((4, 8)).astype(np.float32)})
              for n in (1, 2)}
    target = tmp_path / "m.apr"
    shutil.copyfile(epochs[1], target)
    with killed_at("in-place-after-fsync"), pytest.raises(Killed):
        run_cli(["stamp", str(target), "--description", "one", "--in-place"])
    shutil.copyfile(epochs[2], target)
    code, _out, err = run_cli(["validate", str(target)])
    assert code == 5 and f"apr stamp {target} --recover" in err
    code, _out, err = run_cli(["stamp", str(target), "--recover"])
    assert code == 5 and "does not belong to this file" in err and "Traceback" not in err
    assert target.read_bytes() == epochs[2].read_bytes()
    # The hint's way out: the copy was deliberate, so drop the journal; the file is epoch 2, whole.
    os.unlink(journal_path(target))
    assert run_cli(["validate", str(target)])[0] == 0
    with open_file(target) as reader:
        assert reader.metadata["epoch"] == 2


def _legacy_journal(target: Path) -> bytes:
    """A version-1 journal (magic APRSTAMPJOURNAL1: inode, size, old prefix, old footer, CRC; no digest)."""
    raw = target.read_bytes()
    prefix = raw[: parse_header(raw[:64]).data_offset]
    body = struct.pack("<16sQQQI", b"APRSTAMPJOURNAL1", target.stat().st_ino, len(raw), len(prefix),
                       int.from_bytes(raw[-4:], "little")) + prefix
    return body + zlib.crc32(body).to_bytes(4, "little")


@pytest.mark.falsifies("FALSIFY-STAMP-014")
@pytest.mark.parametrize("command", ["validate", "recover", "in-place", "-o"])
def test_falsify_stamp_014_old_format_journal_is_never_applied(tmp_path, command):
    target = _base(tmp_path, "m.apr")
    legacy = tmp_path / ".m.apr.stamp-journal"
    fd = os.open(legacy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, _legacy_journal(target))
    os.close(fd)
    with open(target, "r+b") as handle:  # half-written, as the kill that left the journal did
        handle.write(b"\xff" * 40)
    before = target.read_bytes()
    argv = {"validate": ["validate", str(target)], "recover": ["stamp", str(target), "--recover"],
            "in-place": ["stamp", str(target), "--license", "MIT", "--in-place"],
            "-o": ["stamp", str(target), "--license", "MIT", "-o", str(tmp_path / "out.apr")]}[command]
    code, out, _err = run_cli([*argv, "--json"])
    error = json.loads(out)["error"]
    assert code == 5 and error["code"] == "stamp-journal-legacy", error
    assert f"mv {legacy} {legacy}.bak && apr validate {target}" in error["hint"]
    assert target.read_bytes() == before and legacy.exists() and not (tmp_path / "out.apr").exists()


# --- FALSIFY-STAMP-015: untrusted journals ---------------------------------------------------------


_KINDS = ("foreign-owner", "group-writable", "world-writable", "symlink", "fifo", "directory", "hard-linked")


@contextlib.contextmanager
def _owned_by_someone_else(path: Path):
    """Make ``path`` another user's: chown as root; otherwise report another owner from lstat/fstat."""
    if os.geteuid() == 0:
        os.lchown(path, _FOREIGN_UID, _FOREIGN_UID)
        yield
        return
    key = os.lstat(path)[stat.ST_INO]
    real_lstat, real_fstat = os.lstat, os.fstat

    def foreign(info: os.stat_result) -> os.stat_result:
        if info.st_ino != key:
            return info
        fields = list(info)
        fields[stat.ST_UID] = _FOREIGN_UID
        return os.stat_result(fields)

    with mock.patch.object(os, "lstat", lambda p, **k: foreign(real_lstat(p, **k))), \
            mock.patch.object(os, "fstat", lambda fd: foreign(real_fstat(fd))):
        yield


def _evil_journal(target: Path, root: Path) -> bytes:
    """A well-formed journal that would turn the file into one described 'pwned' (its 'new' state is the file now)."""
    raw = target.read_bytes()
    evil = _stamped(root, raw, ProvenancePatch(description="pwned"))
    length = parse_header(raw[:64]).data_offset
    assert parse_header(evil[:64]).data_offset == length and len(evil) == len(raw)
    info = target.stat()
    return Journal(device=info.st_dev, inode=info.st_ino, file_size=len(raw), old_prefix=evil[:length],
                   old_footer=int.from_bytes(evil[-4:], "little"), new_prefix=raw[:length],
                   new_footer=int.from_bytes(raw[-4:], "little")).to_bytes()


def _plant(kind: str, where: Path, content: bytes, elsewhere: Path) -> contextlib.AbstractContextManager:
    """Put an untrusted entry of ``kind`` at ``where``; return the context that keeps it untrusted."""
    def regular(path: Path, mode: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, content)
        os.close(fd)
        os.chmod(path, mode)

    elsewhere.mkdir(exist_ok=True)
    if kind == "foreign-owner":
        regular(where, 0o600)
        return _owned_by_someone_else(where)
    if kind in ("group-writable", "world-writable"):
        regular(where, 0o620 if kind == "group-writable" else 0o602)
    elif kind == "symlink":  # to a journal that would be trusted on its own
        regular(elsewhere / "journal", 0o600)
        where.symlink_to(elsewhere / "journal")
    elif kind == "fifo":
        os.mkfifo(where, 0o600)
    elif kind == "directory":
        where.mkdir(mode=0o700)
    else:  # hard-linked
        regular(where, 0o600)
        os.link(where, elsewhere / "second-name")
    return contextlib.nullcontext()


def _snapshot(path: Path) -> tuple:
    info = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    return info.st_ino, stat.S_IFMT(info.st_mode), content


@pytest.mark.falsifies("FALSIFY-STAMP-015")
@_SETTINGS
@given(kind=st.sampled_from(_KINDS), where=st.sampled_from(["key", "legacy-real", "legacy-link"]),
       command=st.sampled_from(["in-place", "recover", "validate", "inspect", "-o"]),
       via=st.sampled_from(["real", "link"]))
def test_falsify_stamp_015_planted_journal_is_reported_never_applied(kind, where, command, via):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        real, link = _lay_out(root, "relative-link")
        target = link if via == "link" else real
        old = real.read_bytes()
        honest = _stamped(root, old, ProvenancePatch(license="MIT"))
        argv = {"in-place": ["stamp", str(target), "--license", "MIT", "--in-place"],
                "recover": ["stamp", str(target), "--recover"], "validate": ["validate", str(target)],
                "inspect": ["inspect", str(target)],
                "-o": ["stamp", str(target), "--license", "MIT", "-o", str(root / "out.apr")]}[command]
        baseline = run_cli(argv)[:2] if command in ("validate", "inspect") else None
        planted = {"key": Path(journal_path(real)), "legacy-real": real.parent / f".{real.name}.stamp-journal",
                   "legacy-link": link.parent / f".{link.name}.stamp-journal"}[where]
        content = _evil_journal(real, root) if where == "key" else _legacy_journal(real)
        with _plant(kind, planted, content, root / "elsewhere"):
            before = _snapshot(planted)
            code, out, err = run_cli(argv if baseline is not None else [*argv, "--json"])
            assert "Traceback" not in err
            if command in ("in-place", "recover") and where == "key":
                # The stamp needs that name for its own journal: refused, nothing written.
                document = json.loads(out)
                assert code == 5 and "error" in document, document
                error = document["error"]
                assert error["code"] == "stamp-journal-untrusted", error
                assert str(planted) in error["message"] and real.read_bytes() == old
            else:
                # Reported (a warning) — except a version-1 name beside a link, which the real path cannot know of.
                visible = not (where == "legacy-link" and via == "real")
                assert ("".join(str(planted).split()) in "".join(err.split())) is visible, err
                if baseline is not None:
                    assert (code, out) == baseline, "an ignored journal changed what the reader reports"
                elif command == "recover":
                    assert code == 0 and json.loads(out)["recovered"] == "none"
                else:
                    assert code == 0, out
                expected = honest if command == "in-place" else old
                assert real.read_bytes() == expected
                if command == "-o":
                    assert (root / "out.apr").read_bytes() == honest
            assert _snapshot(planted) == before, "the planted entry must be left as it was"
        assert _description(real) != "pwned"


@pytest.mark.falsifies("FALSIFY-STAMP-015")
@_SETTINGS
@given(kind=st.sampled_from([stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFDIR, stat.S_IFSOCK, stat.S_IFCHR]),
       perm=st.integers(0, 0o7777), uid=st.sampled_from([0, 1000, 1001, 4242]), owner=st.sampled_from([0, 1000, 1001]),
       euid=st.sampled_from([0, 1000, 1001]), nlink=st.integers(1, 3))
def test_falsify_stamp_015_trust_rule(kind, perm, uid, owner, euid, nlink):
    entry = os.stat_result((kind | perm, 7, 1, nlink, uid, uid, 100, 0, 0, 0))
    trusted = (kind == stat.S_IFREG and nlink == 1 and uid in (owner, 0, euid)
               and not perm & (stat.S_IWGRP | stat.S_IWOTH))
    reason = journal.distrust_reason(entry, owner, euid)
    assert (reason is None) == trusted, reason


@pytest.mark.falsifies("FALSIFY-STAMP-015")
def test_falsify_stamp_015_planted_journal_reproducer(tmp_path):
    """Issue 14: a journal planted by anyone who can write the folder made the owner's next
    `--in-place` stamp write arbitrary bytes (a new description; a zeroed embedding), and
    `validate` said VALID."""
    target = _base(tmp_path, "m.apr", tensors={"model.embed_tokens.weight": np.full((4, 8), 3.0, np.float32)})
    old = target.read_bytes()
    key = Path(journal_path(target))
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, _evil_journal(target, tmp_path))
    os.close(fd)
    # The old format's attack: a "prefix" running past data_offset over the embedding, zeroed, with a
    # footer that makes the result VALID.
    data_offset = parse_header(old[:64]).data_offset
    zeroed = old[:data_offset] + bytes(len(old) - data_offset - 4)
    body = struct.pack("<16sQQQI", b"APRSTAMPJOURNAL1", target.stat().st_ino, len(old), len(zeroed),
                       zlib.crc32(zeroed)) + zeroed
    legacy = tmp_path / ".m.apr.stamp-journal"
    legacy.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    with _owned_by_someone_else(key), _owned_by_someone_else(legacy):
        code, _out, err = run_cli(["stamp", str(target), "--license", "MIT", "--in-place"])
        assert code == 5 and "not trusted" in err and "Traceback" not in err
        assert target.read_bytes() == old
        code, out, err = run_cli(["validate", str(target)])
        assert code == 0 and "VALID" in out and "ignoring" in err
        os.unlink(key)  # the owner follows the hint; the legacy plant is still there, and still ignored
        code, _out, err = run_cli(["stamp", str(target), "--license", "MIT", "--in-place"])
        assert code == 0 and "ignoring" in err
    assert target.read_bytes() == _stamped(tmp_path, old, ProvenancePatch(license="MIT"))
    with open_file(target) as reader:
        assert reader.metadata.get("description") != "pwned"
        assert np.all(reader.get_tensor("model.embed_tokens.weight") == 3.0)


# --- FALSIFY-STAMP-016: OSErrors ----------------------------------------------------------------


# Each call the stamp makes that can fail, with a realistic errno (read-only folder, full disk, EIO).
_FAULTS = {
    (os, "open"): errno.EACCES, (os, "read"): errno.EIO, (os, "write"): errno.ENOSPC, (os, "pread"): errno.EIO,
    (os, "pwrite"): errno.ENOSPC, (os, "fsync"): errno.EIO, (os, "replace"): errno.EROFS, (os, "unlink"): errno.EROFS,
    (os, "fstat"): errno.EIO, (os, "stat"): errno.EIO, (os, "lstat"): errno.EIO, (os, "listdir"): errno.EACCES,
    (tempfile, "mkstemp"): errno.EROFS, (fcntl, "flock"): errno.ENOLCK,
}
# What the error says about the file, and what that must mean.
_CLAIMS = {
    "the file was not changed": "unchanged", "nothing was written": "unchanged",
    "the file was restored": "old", "the file is the stamped one": "new",
    "it may still be half-written; the journal is kept": "pending", "the journal is kept": "pending",
}


@contextlib.contextmanager
def _faults(fail_at: tuple[object, str, int] | None, counts: Counter):
    """While `stamp_file`/`recover_file` run, count calls of every _FAULTS function; fail the k-th call of one."""
    armed = [False]
    originals = {key: getattr(*key) for key in _FAULTS}

    def wrapper(key, real):
        def call(*args, **kwargs):
            if armed[0]:
                counts[key] += 1
                if fail_at is not None and (fail_at[0], fail_at[1]) == key and counts[key] == fail_at[2]:
                    raise OSError(_FAULTS[key], os.strerror(_FAULTS[key]))
            return real(*args, **kwargs)
        return call

    def arm(real):
        def run(*args, **kwargs):
            armed[0] = True
            try:
                return real(*args, **kwargs)
            finally:
                armed[0] = False
        return run

    with contextlib.ExitStack() as stack:
        for key, real in originals.items():
            stack.enter_context(mock.patch.object(key[0], key[1], wrapper(key, real)))
        stack.enter_context(mock.patch.object(stamp_module, "stamp_file", arm(stamp_module.stamp_file)))
        stack.enter_context(mock.patch.object(stamp_module, "recover_file", arm(stamp_module.recover_file)))
        yield


def _scenario(root: Path, name: str) -> tuple[Path, list[str], bytes, bytes, bytes]:
    """(target, argv, bytes before, old bytes, new bytes) for: a clean stamp; a recovery of a torn file;
    a stamp of a torn file (recovers first)."""
    target = _base(root, "m.apr")
    old = target.read_bytes()
    new = _stamped(root, old, ProvenancePatch(license="MIT"))
    if name != "stamp":
        with killed_at("in-place-mid-prefix"), pytest.raises(Killed):
            stamp_file(target, ProvenancePatch(description="killed half-way " * 8), in_place=True)
    argv = ["stamp", str(target), "--recover"] if name == "recover" else ["stamp", str(target), "--license", "MIT",
                                                                          "--in-place"]
    return target, argv, target.read_bytes(), old, (old if name == "recover" else new)


@pytest.mark.falsifies("FALSIFY-STAMP-016")
@pytest.mark.parametrize("name", ["stamp", "recover", "stamp-pending"])
def test_falsify_stamp_016_every_os_error_is_clean_and_true_about_the_file(tmp_path, name):
    """Fail each OS call of the command in turn (the k-th `pwrite`, `fsync`, `replace`, `unlink`, ...)."""
    counts: Counter = Counter()
    template = tmp_path / "template"
    target, argv, before, old, new = _scenario(template, name)
    with _faults(None, counts):
        assert run_cli(argv)[0] == 0
    assert target.read_bytes() == new
    sites = [(key[0], key[1], k) for key, n in sorted(counts.items(), key=lambda kv: kv[0][1]) for k in range(1, n + 1)]
    assert len(sites) > 30, counts
    problems, failing = [], 0
    for module, function, k in sites:
        work = tmp_path / f"{function}-{k}"
        target, argv, before, old, new = _scenario(work, name)
        with _faults((module, function, k), Counter()):
            code, out, err = run_cli([*argv, "--json"])
        where = f"{function} call {k}"
        if "Traceback" in err:
            problems.append(f"{where}: traceback")
            continue
        pending = has_pending_journal(target)
        now = target.read_bytes()
        if code == 0:
            if now != new or pending:
                problems.append(f"{where}: exit 0 but the file is not the finished result")
            continue
        failing += 1
        error = json.loads(out).get("error", {})
        message = error.get("message", "")
        claims = [meaning for text, meaning in _CLAIMS.items() if text in message]
        if code != 7 or error.get("code") != "io-error" or error.get("path") != str(target) or not claims:
            problems.append(f"{where}: exit {code}, {error}: not an I/O error naming the file and its state")
            continue
        # A stamp of a torn file recovers it first (and says so); "not changed" is then about the stamp.
        unchanged = now == before or (name == "stamp-pending" and now == old and "rolled back first" in " ".join(err.split()))  # rich wraps long paths
        truth = {"unchanged": unchanged, "old": now == old, "new": now == new, "pending": pending}
        false = [claim for claim in claims if not truth[claim]]
        if false:
            state = "old" if now == old else "new" if now == new else "torn" if now == before else "other"
            problems.append(f"{where}: says {false}, but the file is {state} and a journal is "
                            f"{'pending' if pending else 'absent'}: {message}")
            continue
        if pending:  # a later recovery (the fault gone) restores the file
            code, _out, err = run_cli(["stamp", str(target), "--recover"])
            if code != 0 or target.read_bytes() != old:
                problems.append(f"{where}: the kept journal does not restore the file: {err}")
        if target.read_bytes() not in (old, new):
            problems.append(f"{where}: the file ends neither old nor new")
    assert not problems, "\n".join(problems)
    assert failing >= 15, f"only {failing} of {len(sites)} injected faults made the command fail"


def test_a_reader_loads_the_journal_module_only_when_an_entry_is_there(tmp_path) -> None:
    """`any_journal_entry` is the cheap look (lstat only) every reading command takes first; it must
    see every entry the full check would judge, and nothing where there is none."""
    import os

    from apr.stamp.journal_site import any_journal_entry, locate

    target = tmp_path / "m.apr"
    target.write_bytes(b"APR\0")
    assert any_journal_entry(target) is False
    site = locate(target)
    for name in (site.path, *site.legacy_paths):
        with open(name, "wb"):
            pass
        assert any_journal_entry(target) is True, name
        os.unlink(name)
    os.mkdir(site.path)  # any kind of entry: the full check judges it (and distrusts a folder)
    assert any_journal_entry(target) is True
    assert any_journal_entry(tmp_path / "missing.apr") is True  # the full path reports what is wrong
