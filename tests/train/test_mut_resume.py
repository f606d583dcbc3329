"""`--resume` bookkeeping (apr/train/resume.py), in-process on real training states (issue 23).

Each state here is written by `write_train_state` beside a placeholder ``.apr`` (its SHA-256 is all
`load_train_state` checks; no model is read), so every refusal of `resolve_resume` (another run,
another world size, later checkpoints) and every value of the run's fingerprint is checked in
milliseconds, without the reference run the contract tests train in a child.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

from apr.errors import OutputExistsError, ResumeError
from apr.train.resume import (
    RUN_SETTINGS,
    data_cursor_of,
    find_resume_state,
    fingerprint_differences,
    on_resume,
    resolve_resume,
    run_fingerprint,
    shard_list_sha256,
)
from apr.train.shards import write_dataset
from apr.train.train_state import DataCursor, Progress, write_train_state

SETTINGS = {key: index for index, key in enumerate(RUN_SETTINGS)}
FINGERPRINT = {"model_config": {"hidden_size": 8, "family": "qwen2"}, "dataset_sha256": "a" * 64,
               "val_shard_sha256": None, "world_size": 1, "run": dict(SETTINGS)}


def tiny_optimizer() -> torch.optim.Optimizer:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    return optimizer


def save_state(folder: Path, stem: str, *, step: int, kind: str, run_id: str = "run-a",
               fingerprint: dict | None = None) -> Path:
    """``stem.apr`` (placeholder bytes) and its real training state; returns the ``.state.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{stem}.apr"
    checkpoint.write_bytes(f"weights of {stem}".encode())
    return write_train_state(checkpoint, apr_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                             run_id=run_id, kind=kind, progress=Progress(step=step, epoch=step // 4),
                             cursor=DataCursor(seed=11, position=step), optimizer=tiny_optimizer(),
                             fingerprint=FINGERPRINT if fingerprint is None else fingerprint, val_loss=None)


def asked(**changes: object) -> dict:
    document = json.loads(json.dumps(FINGERPRINT))
    for key, value in changes.items():
        if key in document:
            document[key] = value
        else:
            document["run"][key] = value
    return document


def resolve(target: Path, run_dir: Path, fingerprint: dict | None = None, *, force: bool = False,
            allow: bool = False):
    return resolve_resume(str(target), fingerprint=FINGERPRINT if fingerprint is None else fingerprint,
                          run_dir=str(run_dir), force=force, allow_world_size_change=allow)


# --- the fingerprint --------------------------------------------------------------------------------

def test_shard_list_sha256_is_the_digest_of_the_manifests_listing(tmp_path: Path) -> None:
    """The stored canonical value: SHA-256 of the JSON ``[vocab_size, [[file, num_tokens, sha256], ...]]``
    as the manifest lists them; the EOS id and the sources are not part of it."""
    assert shard_list_sha256(None) is None
    write_dataset(tmp_path / "d", list(range(10)), vocab_size=300, eos_token_id=0, shard_tokens=4,
                  sources=[{"file": "a.txt"}])
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    listing = [[s["file"], s["num_tokens"], s["sha256"]] for s in manifest["shards"]]
    assert [row[:2] for row in listing] == [["shard-00000.bin", 4], ["shard-00001.bin", 4], ["shard-00002.bin", 2]]
    expected = hashlib.sha256(json.dumps([300, listing]).encode("utf-8")).hexdigest()
    assert shard_list_sha256(tmp_path / "d") == shard_list_sha256(str(tmp_path / "d")) == expected
    manifest["eos_token_id"], manifest["sources"] = 5, []
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    assert shard_list_sha256(tmp_path / "d") == expected


def test_run_fingerprint_key_by_key(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", [1, 2, 3], vocab_size=50, eos_token_id=None, shard_tokens=8)
    write_dataset(tmp_path / "v", [4, 5], vocab_size=50, eos_token_id=None, shard_tokens=8)
    settings = {**SETTINGS, "mode": "from-scratch", "lr_max": 3e-3, "unrelated": "not part of the run"}
    document = run_fingerprint(model_config={"hidden_size": 8, "rope": (1, 2)}, dataset=str(tmp_path / "d"),
                               val_shard=str(tmp_path / "v"), world_size=2, settings=settings)
    assert document == {"model_config": {"hidden_size": 8, "rope": [1, 2]},
                        "dataset_sha256": shard_list_sha256(tmp_path / "d"),
                        "val_shard_sha256": shard_list_sha256(tmp_path / "v"), "world_size": 2,
                        "run": {key: settings[key] for key in RUN_SETTINGS}}
    assert list(document["run"]) == list(RUN_SETTINGS)
    assert run_fingerprint(model_config={}, dataset=str(tmp_path / "d"), val_shard=None, world_size=1,
                           settings=settings)["val_shard_sha256"] is None


def test_run_settings_are_the_schedule_shaping_flags() -> None:
    assert RUN_SETTINGS == ("mode", "seed", "batch_size", "seq_length", "num_steps", "steps_per_epoch", "lr_max",
                            "lr_min", "warmup_steps", "target_val_loss", "weight_decay", "grad_clip",
                            "patience_epochs", "min_epochs_before_early_stop", "init_sha256")


def test_a_state_with_no_fingerprint_differs_in_everything() -> None:
    """A saved fingerprint without its sections (an older or hand-made state) is compared, not a crash."""
    lines = fingerprint_differences({}, FINGERPRINT)
    assert lines == ["model config family: None != 'qwen2'", "model config hidden_size: None != 8",
                     "--dataset shard list: sha256 None != aaaaaaaaaaaa...", "world size: None != 1",
                     *(f"{key}: None != {value!r}" for key, value in SETTINGS.items())]


# --- which state --resume names -------------------------------------------------------------------

def test_a_folder_without_ckpt_is_searched_itself(tmp_path: Path) -> None:
    save_state(tmp_path, "step-0000002", step=2, kind="step")
    latest = save_state(tmp_path, "step-0000010", step=10, kind="step")  # "1" < "2": not the last by name
    assert find_resume_state(tmp_path) == latest
    (tmp_path / "ckpt").mkdir()
    ckpt_latest = save_state(tmp_path / "ckpt", "step-0000001", step=1, kind="step")
    assert find_resume_state(tmp_path) == ckpt_latest  # a ckpt/ subfolder is the run's


@pytest.mark.parametrize("progress", [{"step": "6"}, {"step": 6.0}, {}, [6], None])
def test_a_state_without_an_integer_step_is_refused(tmp_path: Path, progress: object) -> None:
    save_state(tmp_path, "epoch-000", step=4, kind="epoch")
    bad = tmp_path / "epoch-001.state.json"
    document = json.loads((tmp_path / "epoch-000.state.json").read_text())
    bad.write_text(json.dumps({**document, "checkpoint": "epoch-001.apr", "progress": progress}))
    with pytest.raises(ResumeError) as info:
        find_resume_state(tmp_path)
    assert info.value.message == "the training state has no integer progress.step"
    assert (info.value.field, info.value.path, info.value.exit_code) == ("progress.step", "epoch-001.apr", 5)


# --- resolve_resume -------------------------------------------------------------------------------

def test_the_same_run_resumes_from_its_state(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "ckpt"
    save_state(ckpt, "step-0000002", step=2, kind="step")
    save_state(ckpt, "epoch-000", step=4, kind="epoch")
    save_state(ckpt, "step-0000004", step=4, kind="step")
    state = resolve(tmp_path / "run", tmp_path / "run")
    assert (state.checkpoint, state.kind, state.progress.step, state.run_id) == (ckpt / "epoch-000.apr", "epoch", 4,
                                                                                 "run-a")
    assert data_cursor_of(state) == DataCursor(seed=11, position=4) == state.cursor


def test_another_world_size_alone_points_at_the_flag(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_state(run / "ckpt", "epoch-000", step=4, kind="epoch")
    with pytest.raises(ResumeError) as info:
        resolve(run, run, asked(world_size=2))
    assert info.value.message == ("cannot resume: the run asked for is not the run saved in epoch-000.apr: "
                                  "world size: 1 != 2")
    assert info.value.differences == ("world size: 1 != 2",)
    assert info.value.hint == ("pass --allow-world-size-change: the global batch is the same, so the run continues "
                               "within DDP's float tolerance (not bit for bit)")
    assert (info.value.path, info.value.field, info.value.exit_code) == (str(run / "ckpt" / "epoch-000.apr"),
                                                                        "--resume", 5)
    assert resolve(run, run, asked(world_size=2), allow=True).progress.step == 4


def test_every_difference_is_listed_and_the_hint_is_init(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_state(run / "ckpt", "epoch-000", step=4, kind="epoch")
    checkpoint = run / "ckpt" / "epoch-000.apr"
    with pytest.raises(ResumeError) as info:
        resolve(run, run, asked(world_size=2, seed=99))
    assert info.value.message == ("cannot resume: the run asked for is not the run saved in epoch-000.apr: "
                                  "world size: 1 != 2; seed: 1 != 99")
    assert info.value.differences == ("world size: 1 != 2", "seed: 1 != 99")
    assert info.value.hint == ("run the original command again with --resume, or start a new run from these "
                               f"weights: --init {checkpoint}")
    with pytest.raises(ResumeError) as info:  # allowed, the world size drops out; the seed still refuses
        resolve(run, run, asked(world_size=2, seed=99), allow=True)
    assert info.value.differences == ("seed: 1 != 99",) and info.value.hint.startswith("run the original command")
    with pytest.raises(ResumeError) as info:  # allowing it changes nothing when the world size is the same
        resolve(run, run, asked(seed=99), allow=True)
    assert info.value.differences == ("seed: 1 != 99",)


def test_later_checkpoints_of_the_run_are_refused_without_force(tmp_path: Path) -> None:
    """Resuming from step 2 would rewrite the run's checkpoints after it; another run's later
    checkpoints, and the run's own earlier ones, are not in the way."""
    run = tmp_path / "run"
    ckpt = run / "ckpt"
    start = save_state(ckpt, "step-0000002", step=2, kind="step")
    save_state(ckpt, "epoch-000", step=2, kind="epoch")  # same step, epoch ranks after step: later
    save_state(ckpt, "step-0000001", step=1, kind="step")
    save_state(ckpt, "zz-other", step=9, kind="epoch", run_id="run-b")
    with pytest.raises(OutputExistsError) as info:
        resolve(start, run)
    assert info.value.message == ("the run folder holds 1 checkpoint(s) after the one resumed from (epoch-000.apr), "
                                  "which continuing would overwrite")
    assert info.value.hint == f"--resume {run} continues from the latest; or pass --force"
    assert (info.value.path, info.value.field, info.value.exit_code) == (str(run), "--resume", 5)
    assert resolve(start, run, force=True).checkpoint == ckpt / "step-0000002.apr"
    assert resolve(ckpt / "epoch-000.apr", run).kind == "epoch"  # the latest of the run: nothing after it


def test_the_refusal_names_at_most_three_later_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt = run / "ckpt"
    start = save_state(ckpt, "step-0000002", step=2, kind="step")
    for step in (4, 6, 8):
        save_state(ckpt, f"step-{step:07d}", step=step, kind="step")
    with pytest.raises(OutputExistsError) as info:
        resolve(start, run)
    assert info.value.message == ("the run folder holds 3 checkpoint(s) after the one resumed from (step-0000004.apr, "
                                  "step-0000006.apr, step-0000008.apr), which continuing would overwrite")
    save_state(ckpt, "step-0000010", step=10, kind="step")
    with pytest.raises(OutputExistsError) as info:
        resolve(start, run)
    assert info.value.message == ("the run folder holds 4 checkpoint(s) after the one resumed from (step-0000004.apr, "
                                  "step-0000006.apr, step-0000008.apr, ...), which continuing would overwrite")


def test_resume_logs_where_it_starts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="apr.train.resume"):
        on_resume("runs/a", 12)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, "resuming runs/a at step 12")]


def test_restore_training_puts_back_weights_adamw_progress_and_cursor(tmp_path: Path) -> None:
    """A real checkpoint of a one-layer model: a fresh model and optimizer (other seed, other lr)
    come back equal to the saved ones, with the saved loop progress and data cursor."""
    from apr.train.checkpoint import checkpoint_metadata, model_tensors, optimizer_state_sha, write_checkpoint
    from apr.train.config import ModelConfig
    from apr.train.model import CausalLM
    from apr.train.resume import restore_training
    from apr.train.train_state import load_train_state

    config = ModelConfig("qwen2", vocab_size=10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1,
                         intermediate_size=6, head_dim=2)
    torch.manual_seed(0)
    trained = CausalLM(config)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-2)
    trained(torch.tensor([[1, 2, 3]])).float().sum().backward()
    optimizer.step()
    checkpoint = tmp_path / "epoch-000.apr"
    write_checkpoint(checkpoint, model_tensors(trained), *checkpoint_metadata(config, None))
    progress = Progress(step=4, epoch=1, tokens_seen=96, history=[2.0], best=2.0, checkpoints=["epoch-000.apr"])
    json_path = write_train_state(checkpoint, apr_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                                  run_id="run-a", kind="epoch", progress=progress, cursor=DataCursor(11, 4),
                                  optimizer=optimizer, fingerprint=FINGERPRINT, val_loss=2.0)
    torch.manual_seed(1)
    fresh = CausalLM(config)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=5.0)
    restored, cursor = restore_training(load_train_state(json_path), fresh, fresh_optimizer)
    assert restored == progress and cursor == DataCursor(11, 4)
    for (name, saved), (_, loaded) in zip(trained.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(saved, loaded), name
    assert optimizer_state_sha(fresh_optimizer) == optimizer_state_sha(optimizer)
    assert fresh_optimizer.param_groups[0]["lr"] == 1e-2


def test_each_refusal_of_find_resume_state_exactly(tmp_path: Path) -> None:
    """Message, path, ``field`` (the JSON envelope's) and hint of each thing ``--resume`` cannot name."""
    from apr.errors import AprFileNotFoundError, UsageError

    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(tmp_path / "missing")
    assert (info.value.message, info.value.path, info.value.field, info.value.hint) == (
        "--resume names nothing that exists", str(tmp_path / "missing"), "--resume",
        "pass the run folder (--run-dir of the run) or one of its checkpoints")
    (tmp_path / "run" / "ckpt").mkdir(parents=True)
    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(tmp_path / "run")
    assert (info.value.message, info.value.path, info.value.field, info.value.hint) == (
        "no resumable checkpoint: no *.state.json in the folder", str(tmp_path / "run" / "ckpt"), "--resume",
        "checkpoints without training state start a new run: --init FOLDER/ckpt/epoch-NNN.apr")
    bare = tmp_path / "bare.apr"
    bare.write_bytes(b"x")
    with pytest.raises(AprFileNotFoundError) as info:
        find_resume_state(bare)
    assert (info.value.message, info.value.path, info.value.field, info.value.exit_code) == (
        "bare.apr has no training state beside it (bare.state.json)", str(bare), "--resume", 3)
    (tmp_path / "bare.state.json").mkdir()  # a folder where the state should be: not a state
    with pytest.raises(AprFileNotFoundError):
        find_resume_state(bare)
    other = tmp_path / "notes.json"
    other.write_text("{}")
    with pytest.raises(UsageError) as info:
        find_resume_state(other)
    assert (info.value.message, info.value.path, info.value.field, info.value.exit_code) == (
        "--resume takes a run folder, a checkpoint .apr or its .state.json", str(other), "--resume", 64)


def test_a_saved_digest_that_is_not_a_string_is_shown_as_is() -> None:
    saved = {**FINGERPRINT, "dataset_sha256": 5}
    assert fingerprint_differences(saved, FINGERPRINT) == ["--dataset shard list: sha256 5 != aaaaaaaaaaaa..."]
