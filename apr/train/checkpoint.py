"""Per-epoch checkpoints that carry their identity by construction (the producer-side §86 fix).

Every checkpoint is an APR v2 file of F32 tensors under Hugging Face names (a tied head left out)
whose metadata says what it is: the family slug, the Hugging Face class and model_type, every
dimension, rope_theta, the embedded tokenizer (with the HAS_VOCAB flag) and the provenance of the
checkpoint it was initialised from. Nothing time-dependent goes into the APR file, so the same
weights give the same bytes (FALSIFY-APR-PRETRAIN-INIT-010); wall time lives in the sidecar
``.metadata.json`` only.

Layout (training-loop-pretrain-v1 ``per_epoch_artifacts``)::

    {run_dir}/ckpt/epoch-{NNN}.apr           + epoch-{NNN}.metadata.json
    {run_dir}/ckpt/init.apr                  + init.metadata.json   (``--num-steps 0`` only)
    {run_dir}/ckpt/step-{SSSSSSS}.apr        (``--save-every-steps``, no metadata.json)

Every epoch and step checkpoint also has its training state beside it
(``.state.safetensors`` + ``.state.json``, `apr.train.train_state`) for ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from apr.format import Flags, save_file
from apr.format.atomic import atomic_write
from apr.tokenizer import TokenizerRecord, record_to_metadata
from apr.train.config import ModelConfig

CKPT_DIRNAME = "ckpt"
# Provenance and description keys a checkpoint inherits from its --init (apr-provenance-v1).
INHERITED_KEYS: tuple[str, ...] = (
    "license", "data_source", "data_license", "name", "description", "author", "source",
    "original_format", "source_metadata",
)
# The sidecar fields training-loop-pretrain-v1 requires, in its order.
EPOCH_FIELDS: tuple[str, ...] = (
    "epoch", "train_loss", "val_loss", "train_ppl", "val_ppl", "optimizer_state_sha",
    "wall_seconds", "tokens_seen", "grad_norm_max",
)


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / CKPT_DIRNAME


def epoch_checkpoint_path(run_dir: str | os.PathLike[str], epoch: int) -> Path:
    return checkpoint_dir(run_dir) / f"epoch-{epoch:03d}.apr"


def step_checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    """A mid-epoch checkpoint (``--save-every-steps``) after ``step`` optimizer steps."""
    return checkpoint_dir(run_dir) / f"step-{step:07d}.apr"


def init_checkpoint_path(run_dir: str | os.PathLike[str]) -> Path:
    return checkpoint_dir(run_dir) / "init.apr"


def sidecar_path(checkpoint: str | os.PathLike[str]) -> Path:
    path = Path(checkpoint)
    return path.with_name(path.name.removesuffix(".apr") + ".metadata.json")


def checkpoint_metadata(
    config: ModelConfig,
    tokenizer: TokenizerRecord | None,
    *,
    inherited: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """The metadata and header flags of a checkpoint (pure).

    Args:
        config: the model's shape; its identity fields are always written.
        tokenizer: embedded when given (and HAS_VOCAB set).
        inherited: the ``--init`` checkpoint's metadata; `INHERITED_KEYS` are carried over.
        training: deterministic facts about the run (epoch, step, val_loss, seed, init sha256).

    Returns:
        ``(metadata, flags)`` for `apr.format.save_file`.
    """
    inherited = inherited or {}
    metadata: dict[str, Any] = {
        "model_type": config.hf_model_type,
        "name": inherited.get("name") or f"{config.family}-pretrain",
        "license": inherited.get("license"),
        "data_source": inherited.get("data_source"),
        "data_license": inherited.get("data_license"),
    }
    for key in INHERITED_KEYS:
        if key not in metadata and inherited.get(key) is not None:
            metadata[key] = inherited[key]
    metadata.update(config.to_metadata())
    flags = int(Flags.LAYOUT_ROW_MAJOR)
    if tokenizer is not None:
        metadata.update(record_to_metadata(tokenizer))
        flags |= int(Flags.HAS_VOCAB)
    if training:
        metadata["training"] = dict(training)
    return metadata, flags


def model_tensors(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters as F32 numpy arrays under Hugging Face names (tied head left out)."""
    hf_state_dict = getattr(model, "hf_state_dict", None)  # CausalLM's; a bare module has plain names
    state = hf_state_dict() if hf_state_dict is not None else model.state_dict()
    return {name: tensor.detach().to("cpu", torch.float32).contiguous().numpy().copy() for name, tensor in state.items()}


def write_checkpoint(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any], flags: int
) -> None:
    """Write one checkpoint atomically (through `apr.format.save_file`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata, flags)


def write_sidecar(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Write an epoch's ``.metadata.json`` atomically (non-finite floats as null)."""
    clean = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
             for key, value in record.items()}
    with atomic_write(path) as handle:
        handle.write((json.dumps(clean, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def optimizer_state_sha(optimizer: torch.optim.Optimizer) -> str:
    """SHA-256 over the optimizer's tensors in a fixed order (the resumption-audit field)."""
    digest = hashlib.sha256()
    state = optimizer.state_dict()["state"]
    for index in sorted(state):
        for key in sorted(state[index]):
            value = state[index][key]
            digest.update(f"{index}.{key}".encode())
            if torch.is_tensor(value):
                digest.update(value.detach().to("cpu").contiguous().numpy().tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


