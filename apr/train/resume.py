"""`apr pretrain --resume RUN_DIR|CKPT`: find the checkpoint to continue, prove it is this run's,
and put the model, AdamW and the loop back where the checkpoint left them.

``--init CKPT`` starts a *new* run from a checkpoint's weights (fresh AdamW, schedule from step 0,
new data order). ``--resume`` continues the *same* run: the command line must describe the run that
was saved, and every difference that would make the continued run another run is refused before
anything is built, all of them in one message: the model config, the dataset and val shard (the
SHA-256 of their shard lists), the world size (unless ``--allow-world-size-change``) and the
schedule-shaping flags (seed, batch, sequence length, steps, lr, warmup, mode, target).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apr.errors import AprFileNotFoundError, OutputExistsError, ResumeError, UsageError
from apr.train.train_state import (
    DataCursor,
    Progress,
    TrainState,
    load_train_state,
    read_state_document,
    restore_optimizer,
    state_paths,
)

if TYPE_CHECKING:  # torch stays out of the plan's import path until the loop needs it
    import torch

    from apr.train.model import CausalLM

logger = logging.getLogger(__name__)

# Flags that shape the trajectory: a resumed run with any of them changed is another run.
RUN_SETTINGS: tuple[str, ...] = (
    "mode", "seed", "batch_size", "seq_length", "num_steps", "steps_per_epoch", "lr_max", "lr_min",
    "warmup_steps", "target_val_loss", "weight_decay", "grad_clip", "patience_epochs",
    "min_epochs_before_early_stop", "init_sha256",
)


def shard_list_sha256(folder: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 of a dataset's shard list (file, token count, sha256 of each, as its manifest says)."""
    if folder is None:
        return None
    from apr.train.shards import read_manifest

    manifest = read_manifest(folder)
    listing = [[s.file, s.num_tokens, s.sha256] for s in manifest.shards]
    return hashlib.sha256(json.dumps([manifest.vocab_size, listing]).encode("utf-8")).hexdigest()


def run_fingerprint(*, model_config: Mapping[str, Any], dataset: str, val_shard: str | None, world_size: int,
                    settings: Mapping[str, Any]) -> dict[str, Any]:
    """What must not change between a run and its resumption, as JSON values."""
    document = {"model_config": dict(model_config), "dataset_sha256": shard_list_sha256(dataset),
                "val_shard_sha256": shard_list_sha256(val_shard), "world_size": world_size,
                "run": {key: settings[key] for key in RUN_SETTINGS}}
    return json.loads(json.dumps(document))  # tuples to lists: compared with what JSON gave back


def fingerprint_differences(saved: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """``["model config hidden_size: 64 != 32", ...]``: every way the asked run is not the saved one."""
    differences = []
    saved_config, asked_config = saved.get("model_config", {}), asked["model_config"]
    for key in sorted(set(saved_config) | set(asked_config)):
        if saved_config.get(key) != asked_config.get(key):
            differences.append(f"model config {key}: {saved_config.get(key)!r} != {asked_config.get(key)!r}")
    for key, flag in (("dataset_sha256", "--dataset"), ("val_shard_sha256", "--val-shard")):
        if saved.get(key) != asked[key]:
            differences.append(f"{flag} shard list: sha256 {_short(saved.get(key))} != {_short(asked[key])}")
    if saved.get("world_size") != asked["world_size"]:
        differences.append(f"world size: {saved.get('world_size')!r} != {asked['world_size']!r}")
    saved_run = saved.get("run", {})
    for key in RUN_SETTINGS:
        if saved_run.get(key) != asked["run"][key]:
            differences.append(f"{key}: {saved_run.get(key)!r} != {asked['run'][key]!r}")
    return differences


def _short(sha: Any) -> str:
    return f"{sha[:12]}..." if isinstance(sha, str) else repr(sha)


def find_resume_state(target: str | os.PathLike[str]) -> Path:
    """The ``.state.json`` that ``--resume TARGET`` names.

    ``TARGET`` is a run folder (its ``ckpt/`` or itself: the checkpoint with the highest step, an
    epoch checkpoint before a step checkpoint of the same step), a checkpoint ``X.apr`` (its
    ``X.state.json``) or the ``X.state.json`` itself.

    Raises:
        AprFileNotFoundError: nothing there, or no training state beside it.
        UsageError: a file that is neither a checkpoint nor a training state.
    """
    path = Path(target)
    if not path.exists():
        raise AprFileNotFoundError("--resume names nothing that exists", path=path, field="--resume",
                                   hint="pass the run folder (--run-dir of the run) or one of its checkpoints")
    if path.is_dir():
        folder = path / "ckpt" if (path / "ckpt").is_dir() else path
        candidates = sorted(folder.glob("*.state.json"))
        if not candidates:
            raise AprFileNotFoundError(
                "no resumable checkpoint: no *.state.json in the folder", path=folder, field="--resume",
                hint="checkpoints without training state start a new run: --init FOLDER/ckpt/epoch-NNN.apr")
        ranked = [(_rank(read_state_document(c)), c) for c in candidates]
        return max(ranked)[1]
    if path.name.endswith(".state.json"):
        return path
    if path.suffix == ".apr":
        json_path = state_paths(path)[1]
        if not json_path.is_file():
            raise AprFileNotFoundError(
                f"{path.name} has no training state beside it ({json_path.name})", path=path, field="--resume",
                hint=f"--init {path} starts a new run from its weights (fresh optimizer, schedule from step 0)")
        return json_path
    raise UsageError("--resume takes a run folder, a checkpoint .apr or its .state.json", path=path,
                     field="--resume")


def _rank(document: Mapping[str, Any]) -> tuple[int, bool]:
    progress = document["progress"]
    step = progress.get("step") if isinstance(progress, dict) else None
    if not isinstance(step, int):
        raise ResumeError("the training state has no integer progress.step", path=document.get("checkpoint"),
                          field="progress.step")
    return step, document["kind"] == "epoch"


def resolve_resume(target: str, *, fingerprint: Mapping[str, Any], run_dir: str, force: bool,
                   allow_world_size_change: bool) -> TrainState:
    """Find, load and check the state to resume from (nothing is built or written).

    Raises:
        AprFileNotFoundError, UsageError: see `find_resume_state`.
        ResumeError: the state does not belong to its checkpoint, or the run differs (every difference listed).
        OutputExistsError: the run folder holds later checkpoints of the run, which continuing would overwrite.
    """
    state = load_train_state(find_resume_state(target))
    differences = fingerprint_differences(state.fingerprint, fingerprint)
    if allow_world_size_change:
        differences = [d for d in differences if not d.startswith("world size:")]
    if differences:
        only_world = all(d.startswith("world size:") for d in differences)
        hint = ("pass --allow-world-size-change: the global batch is the same, so the run continues within "
                "DDP's float tolerance (not bit for bit)") if only_world else (
                "run the original command again with --resume, or start a new run from these weights: "
                f"--init {state.checkpoint}")
        raise ResumeError(f"cannot resume: the run asked for is not the run saved in {state.checkpoint.name}: "
                          + "; ".join(differences), path=state.checkpoint, field="--resume", hint=hint,
                          differences=tuple(differences))
    _refuse_later_checkpoints(state, run_dir, force)
    return state


def _refuse_later_checkpoints(state: TrainState, run_dir: str, force: bool) -> None:
    """Continuing from step k rewrites the run's checkpoints after k: refused without --force."""
    from apr.train.checkpoint import checkpoint_dir

    later = []
    for json_path in sorted(checkpoint_dir(run_dir).glob("*.state.json")):
        document = read_state_document(json_path)
        if document["run_id"] == state.run_id and _rank(document) > (state.progress.step, state.kind == "epoch"):
            later.append(document["checkpoint"])
    if later and not force:
        raise OutputExistsError(
            f"the run folder holds {len(later)} checkpoint(s) after the one resumed from ({', '.join(later[:3])}"
            f"{', ...' if len(later) > 3 else ''}), which continuing would overwrite", path=run_dir,
            field="--resume", hint=f"--resume {run_dir} continues from the latest; or pass --force")


def data_cursor_of(state: TrainState) -> DataCursor:
    """Where the saved run's data stream stood."""
    return state.cursor


def restore_training(state: TrainState, model: CausalLM, optimizer: torch.optim.Optimizer) -> tuple[Progress, DataCursor]:
    """Weights from the checkpoint, AdamW from the state; returns the loop's progress and data cursor.

    The generators are restored separately (`apr.train.train_state.restore_rng`), last, right
    before the first step, so nothing drawn while building the model moves them.
    """
    import numpy as np

    from apr.format import open_file
    from apr.train.loop import load_weights

    with open_file(state.checkpoint) as reader:  # copies: the map is read-only and closes here
        load_weights(model, {name: np.array(reader.get_tensor(name)) for name in reader.keys()})
    restore_optimizer(optimizer, state.document["optimizer"], state.tensors)
    progress = Progress.from_json(state.document["progress"])
    return progress, data_cursor_of(state)


def on_resume(run_dir: str, step: int) -> None:
    """Called once on rank 0 before the first step of a resumed run, with the step it resumes at.

    Logs the resumption. RUN_DIR/metrics.jsonl is cut back to ``step`` and continued by the CLI's
    recorder before the loop starts (`apr.train.metrics_log.continue_log`), so the log reads as one
    uninterrupted run.
    """
    logger.info("resuming %s at step %d", run_dir, step)
