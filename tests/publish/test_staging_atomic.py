"""A failed `apr publish` staging keeps the previous staging folder as it was and leaves no
temporary folder (`.STAGE.tmp-PID`) or set-aside one (`.STAGE.old-PID`) behind."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from apr.cli.main import main
from apr.readiness import build_card
from tests.readiness.builders import build_checkpoint

pytest.importorskip("torch")  # readiness runs the model (the train extra)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture()
def staged(tmp_path: Path, tok_meta, capsys) -> tuple[list[str], Path, dict[str, bytes]]:
    good = build_checkpoint(tmp_path / "good.apr", tokenizer=tok_meta)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(good), encoding="utf-8")
    stage = tmp_path / "stage"
    argv = ["publish", "paiml/albor-370m-v1", str(good), "--model-card", str(card), "--staging", str(stage),
            "--dry-run", "--formats", "apr", "--json"]
    assert main(argv) == 0, capsys.readouterr()
    capsys.readouterr()
    return argv, stage, _snapshot(stage)


def _no_strays(stage: Path) -> None:
    assert sorted(p.name for p in stage.parent.iterdir() if p.name.startswith(f".{stage.name}.")) == []


@pytest.mark.parametrize("where", ["copy", "marker-fsync", "swap"])
def test_failed_staging_keeps_the_previous_one(staged, where: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    argv, stage, before = staged
    if where == "copy":  # the checkpoint's copy fails half way (disk full)
        def full(source: Path, target: Path) -> None:
            target.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(target))

        monkeypatch.setattr("apr.publish.staging._copy", full)
    elif where == "marker-fsync":  # the marker's fsync fails (a failing disk)
        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fsync", broken)
    else:  # the final rename of the new folder fails: the earlier staging is put back
        real = os.replace

        def refuse(src, dst, *args, **kwargs):
            if Path(dst) == stage:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", refuse)
    code = main(argv)
    doc = json.loads(capsys.readouterr().out)
    assert code != 0 and doc["ok"] is False
    monkeypatch.undo()
    assert _snapshot(stage) == before
    _no_strays(stage)
    assert main(argv) == 0  # and the next publish stages again
    _no_strays(stage)
