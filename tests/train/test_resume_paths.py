"""`--resume TARGET`: which training state it names, and the refusals before any state is read
(exit 3 nothing there, 64 not a checkpoint, 5 a malformed state), plus the state records' JSON
round trips (apr/train/resume.py, apr/train/train_state.py)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from apr.errors import AprFileNotFoundError, ResumeError, UsageError
from apr.train.resume import find_resume_state
from apr.train.train_state import (
    STATE_FORMAT,
    STATE_VERSION,
    DataCursor,
    Progress,
    capture_rng,
    load_train_state,
    optimizer_to_state,
    restore_optimizer,
    restore_rng,
    state_paths,
)


def write_state(folder: Path, stem: str, step: int, kind: str, **changes: object) -> Path:
    document = {"format": STATE_FORMAT, "version": STATE_VERSION, "checkpoint": f"{stem}.apr", "apr_sha256": "0",
                "tensors_sha256": "0", "run_id": "r", "kind": kind, "progress": Progress(step=step).to_json(),
                "data_cursor": DataCursor(7, step).to_json(), "optimizer": {}, "rng": {}, "fingerprint": {}}
    document.update(changes)
    path = folder / f"{stem}.state.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_a_run_folder_names_its_latest_state(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "ckpt"
    write_state(ckpt, "step-0000006", 6, "step")
    write_state(ckpt, "epoch-000", 4, "epoch")
    write_state(ckpt, "step-0000008", 8, "step")
    latest = write_state(ckpt, "epoch-001", 8, "epoch")  # same step: the epoch checkpoint wins
    assert find_resume_state(tmp_path / "run") == latest
    assert find_resume_state(ckpt) == latest  # the ckpt folder itself
    assert find_resume_state(ckpt / "step-0000006.state.json") == ckpt / "step-0000006.state.json"
    (ckpt / "step-0000006.apr").write_bytes(b"x")
    assert find_resume_state(ckpt / "step-0000006.apr") == ckpt / "step-0000006.state.json"


def test_what_resume_refuses_to_name(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(tmp_path / "missing")
    assert info.value.exit_code == 3 and info.value.field == "--resume"
    (tmp_path / "empty" / "ckpt").mkdir(parents=True)
    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(tmp_path / "empty")
    assert "no *.state.json" in info.value.message and "--init" in info.value.hint
    bare = tmp_path / "bare.apr"
    bare.write_bytes(b"APR\0")
    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(bare)
    assert info.value.message == "bare.apr has no training state beside it (bare.state.json)"
    assert info.value.hint == f"--init {bare} starts a new run from its weights (fresh optimizer, schedule from step 0)"
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(UsageError) as info:
        find_resume_state(other)
    assert info.value.exit_code == 64


@pytest.mark.parametrize(("changes", "text"), [
    ({"format": "other"}, "not an 'apr-train-state' document"),
    ({"version": 2}, "training state version 2; this trainer reads 1"),
    ({"checkpoint": "../elsewhere.apr"}, "the training state names checkpoint '../elsewhere.apr', not a .apr beside it"),
    ({"checkpoint": "x.bin"}, "the training state names checkpoint 'x.bin', not a .apr beside it"),
])
def test_a_malformed_state_is_refused(tmp_path: Path, changes: dict, text: str) -> None:
    path = write_state(tmp_path, "epoch-000", 4, "epoch", **changes)
    with pytest.raises(ResumeError) as info:
        load_train_state(path)
    assert info.value.message == text and info.value.exit_code == 5


def test_a_state_missing_a_field_or_its_files(tmp_path: Path) -> None:
    path = write_state(tmp_path, "epoch-000", 4, "epoch")
    document = json.loads(path.read_text())
    del document["rng"]
    path.write_text(json.dumps(document))
    with pytest.raises(ResumeError) as info:
        load_train_state(path)
    assert info.value.field == "rng"
    path = write_state(tmp_path, "epoch-001", 8, "epoch")
    with pytest.raises(AprFileNotFoundError) as info:
        load_train_state(path)
    assert info.value.path == str(tmp_path / "epoch-001.apr")
    path.write_text("{not json")
    with pytest.raises(ResumeError) as info:
        load_train_state(path)
    assert "cannot be read" in info.value.message


def test_progress_round_trips_through_json() -> None:
    fresh = Progress()
    assert fresh.to_json()["best"] is None and Progress.from_json(fresh.to_json()) == fresh
    full = Progress(step=9, epoch=2, tokens_seen=4608, epoch_losses=[0.1, 1 / 3], grad_norm_max=0.5,
                    history=[5.0, 4.25], best=4.25, patience=1, checkpoints=["a.apr"], init_val_loss=6.2,
                    stop_status="EARLY_STOP", stop_detail="why")
    assert Progress.from_json(json.loads(json.dumps(full.to_json()))) == full
    assert Progress(init_val_loss=math.nan).to_json()["init_val_loss"] is None
    assert state_paths("d/epoch-003.apr") == (Path("d/epoch-003.state.safetensors"), Path("d/epoch-003.state.json"))


def test_generators_come_back_where_they_were() -> None:
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's legacy state
    record, tensors = capture_rng()
    record = json.loads(json.dumps(record))
    expected = (random.random(), float(np.random.standard_normal()), float(torch.rand(())))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng(record, tensors)
    assert (random.random(), float(np.random.standard_normal()), float(torch.rand(()))) == expected


def test_adamw_state_round_trips() -> None:
    from apr.train.checkpoint import optimizer_state_sha
    from apr.train.device import make_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    optimizer = make_optimizer(model, lr=1e-2, weight_decay=0.1, device=torch.device("cpu"))
    for _ in range(2):
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    record, tensors = optimizer_to_state(optimizer)
    record = json.loads(json.dumps(record))
    fresh = make_optimizer(model, lr=5.0, weight_decay=0.0, device=torch.device("cpu"))
    restore_optimizer(fresh, record, tensors)
    assert optimizer_state_sha(fresh) == optimizer_state_sha(optimizer)
    assert [g["betas"] for g in fresh.param_groups] == [(0.9, 0.95)] * 2
    assert [g["weight_decay"] for g in fresh.param_groups] == [0.1, 0.0]
