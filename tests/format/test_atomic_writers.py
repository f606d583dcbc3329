"""A failure mid-write (the write or the fsync raising) leaves the previous file byte-identical and
no temporary beside it, for every writer that once hand-rolled its rename: the GGUF export (now
through `apr.format.atomic.atomic_path`), and the harness's JSON receipt and contract scaffold
(which keep their own temporary-fsync-rename because `falsifiers` does not import `apr`)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from apr.errors import AprIOError
from apr.format.atomic import atomic_path


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every fsync raise EIO (as a failing disk does); return the list of fds it was asked for."""
    asked: list[int] = []

    def broken(fd: int) -> None:
        asked.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    return asked


def test_atomic_path_replaces_only_on_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")
    with atomic_path(target) as tmp:
        assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".out.bin.tmp-")
        Path(tmp).write_bytes(b"new")
        assert target.read_bytes() == b"previous"  # nothing visible before the block completes
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]
    asked = _fail_fsync(monkeypatch)
    with pytest.raises(AprIOError, match="cannot write"), atomic_path(target) as tmp:
        Path(tmp).write_bytes(b"half")
    assert asked, "atomic_path never fsynced the file"
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_atomic_path_keeps_the_old_file_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match="stop"), atomic_path(target) as tmp:
        Path(tmp).write_bytes(b"half")
        raise ValueError("stop")
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["out.bin"]


@pytest.fixture(scope="module")
def small_apr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder

    root = tmp_path_factory.mktemp("gguf-src")
    import_hf(build_hf_folder(root / "hf", "qwen2"), root / "m.apr")
    return root / "m.apr"


def test_gguf_export_failure_mid_write_keeps_the_previous_file(tmp_path: Path, small_apr: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import gguf

    from apr.convert.gguf_export import export_gguf

    out = tmp_path / "out"
    out.mkdir()
    target = out / "m.gguf"
    export_gguf(small_apr, target)
    previous = target.read_bytes()
    real = gguf.GGUFWriter.write_tensor_data
    calls = {"n": 0}

    def disk_full_on_the_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", disk_full_on_the_third)
    with pytest.raises(AprIOError, match="ENOSPC") as caught:
        export_gguf(small_apr, target, force=True)
    assert caught.value.path == os.fspath(target)  # named as the output, not its temporary
    assert target.read_bytes() == previous and os.listdir(out) == ["m.gguf"]
    monkeypatch.undo()
    asked = _fail_fsync(monkeypatch)  # the GGUF writer once renamed without any fsync
    with pytest.raises(AprIOError):
        export_gguf(small_apr, target, force=True)
    assert asked and target.read_bytes() == previous and os.listdir(out) == ["m.gguf"]


def test_receipt_write_failure_keeps_the_previous_receipt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers.session import _write_json

    target = tmp_path / "receipts" / "r.json"
    _write_json(os.fspath(target), {"verdict": "GO"})
    assert json.loads(target.read_text()) == {"verdict": "GO"}
    asked = _fail_fsync(monkeypatch)
    with pytest.raises(OSError):
        _write_json(os.fspath(target), {"verdict": "NO-GO"})
    assert asked and json.loads(target.read_text()) == {"verdict": "GO"}
    assert os.listdir(target.parent) == ["r.json"]


def _scaffold(tmp_path: Path, text: str):
    from falsifiers.scaffold import Scaffold

    return Scaffold("demo-v1", tmp_path / "contracts" / "demo-v1.yaml", tmp_path / "tests" / "test_demo_v1.py",
                    "INV-DEMO-001", "FALSIFY-DEMO-001", f"contract {text}\n", f"test {text}\n")


@pytest.mark.parametrize("failing", ["contract", "test"])
def test_scaffold_failure_mid_write_leaves_neither_file_nor_temporary(tmp_path: Path, failing: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers.errors import ContractIOError
    from falsifiers.scaffold import write_scaffold

    scaffold = _scaffold(tmp_path, "one")
    real = os.replace

    def refuse(src, dst, *args, **kwargs):
        if Path(dst).name == (scaffold.contract_path if failing == "contract" else scaffold.test_path).name:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ContractIOError, match=r"Read-only file system \(EROFS\); nothing was written"):
        write_scaffold(scaffold)
    assert os.listdir(tmp_path / "contracts") == [] and os.listdir(tmp_path / "tests") == []
    monkeypatch.undo()
    write_scaffold(scaffold)  # a rerun writes both
    assert scaffold.contract_path.read_text() == "contract one\n" and scaffold.test_path.read_text() == "test one\n"


def test_scaffold_overwrite_failure_keeps_both_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers.errors import ContractIOError
    from falsifiers.scaffold import write_scaffold

    write_scaffold(_scaffold(tmp_path, "one"))
    asked = _fail_fsync(monkeypatch)
    with pytest.raises(ContractIOError, match="Input/output error"):
        write_scaffold(_scaffold(tmp_path, "two"))
    assert asked
    assert (tmp_path / "contracts" / "demo-v1.yaml").read_text() == "contract one\n"
    assert (tmp_path / "tests" / "test_demo_v1.py").read_text() == "test one\n"
    assert os.listdir(tmp_path / "contracts") == ["demo-v1.yaml"] and os.listdir(tmp_path / "tests") == ["test_demo_v1.py"]


def test_scaffold_text_that_cannot_be_written_leaks_no_temporary(tmp_path: Path) -> None:
    """Not only an OSError: a text the encoder refuses (a lone surrogate) once left its temporary."""
    from falsifiers.scaffold import write_scaffold

    with pytest.raises(UnicodeEncodeError):
        write_scaffold(_scaffold(tmp_path, "\udc80"))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
