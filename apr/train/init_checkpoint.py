"""The ``--init FILE.apr`` gate: every refusal happens before a training step, most before a byte
of tensor data is read (apr-pretrain-from-init-v1, INV-INIT-ARCH-MATCH-001).

Order, each step naming its falsifier in the error:

1. the file exists                                    FALSIFY-APR-PRETRAIN-INIT-003 (exit 3)
2. it starts with the APR v2 magic                    FALSIFY-APR-PRETRAIN-INIT-004
3. its header, index and metadata parse               FALSIFY-APR-PRETRAIN-INIT-005
4. the registry implements the architecture (apr.arch) UnsupportedArchitectureError (exit 5)
   and the claim agrees with tensor names            FALSIFY-INIT-ARCH-MATCH-001 (names only)
5. the metadata gives a full llama/qwen2/qwen3 shape  FALSIFY-APR-PRETRAIN-INIT-005
6. that shape equals the target (``--config``)        FALSIFY-APR-PRETRAIN-INIT-005
7. the metadata's dims agree with the tensors and      FALSIFY-APR-PRETRAIN-INIT-011
   imply at most 10x the values they hold (integers
   only: a num_layers of 10**9 enumerates nothing),
   then every tensor is present with its exact shape
8. only then are weights read (F32 copies), and must be finite.

No silent random init, truncation, reshape or partial load: any problem ends the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apr.arch import REGISTRY, architecture_from_metadata
from apr.errors import (
    EXIT_NOT_FOUND,
    FormatError,
    InitCheckpointError,
    ModelConfigError,
    TokenizerError,
    UnsupportedArchitectureError,
)
from apr.identity import validate_init_arch_matches_tensor_evidence
from apr.tokenizer import TokenizerRecord, has_embedded_tokenizer, record_from_metadata
from apr.train.bounds import check_against_tensors, tensor_shape_problems
from apr.train.config import ModelConfig, config_differences

MISSING = "FALSIFY-APR-PRETRAIN-INIT-003"
BAD_MAGIC = "FALSIFY-APR-PRETRAIN-INIT-004"
BAD_METADATA = "FALSIFY-APR-PRETRAIN-INIT-005"
BAD_TENSORS = "FALSIFY-APR-PRETRAIN-INIT-011"
_FLOAT_DTYPES = ("F32", "F16", "BF16")


@dataclass(frozen=True, slots=True)
class InitCheckpoint:
    """A checked ``--init`` checkpoint: its shape, F32 weights, metadata and tokenizer."""

    path: str
    config: ModelConfig
    tensors: dict[str, np.ndarray] = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    tokenizer: TokenizerRecord | None = field(default=None, repr=False)


def check_init_path(path: str | os.PathLike[str]) -> Path:
    """Steps 1-2: the file exists and starts with ``APR\\0``; nothing else is read."""
    target = Path(path)
    if not target.is_file():
        what = "is a folder, not a file" if target.is_dir() else "does not exist or is unreadable"
        raise InitCheckpointError(
            f"{MISSING}: --init path {what}: {os.fspath(target)}", falsifier=MISSING, exit_code=EXIT_NOT_FOUND,
            path=target, field="--init", hint="pass an epoch checkpoint, e.g. --init RUN/ckpt/epoch-004.apr",
        )
    with target.open("rb") as handle:
        magic = handle.read(4)
    if len(magic) < 4:
        raise InitCheckpointError(
            f"{BAD_MAGIC}: --init file too short to contain APR magic bytes ({len(magic)} bytes)",
            falsifier=BAD_MAGIC, path=target, field="--init", offset=0,
            hint="the file is empty or truncated; re-copy it",
        )
    if magic != b"APR\x00":
        legacy = magic in (b"APRN", b"APR1", b"APR2")
        raise InitCheckpointError(
            f"{BAD_MAGIC}: --init file is not an APR v2 file (magic={list(magic)}, expected [65, 80, 82, 0])",
            falsifier=BAD_MAGIC, path=target, field="--init", offset=0,
            hint=("APR v1 files cannot initialise training; re-export the model as APR v2" if legacy else
                  "convert it first: `apr import` for safetensors/GGUF, or pass an `apr pretrain` checkpoint"),
        )
    return target


def load_init_checkpoint(path: str | os.PathLike[str], *, target: ModelConfig | None = None) -> InitCheckpoint:
    """Run the whole gate and return the checkpoint's weights.

    Args:
        path: the ``--init`` file.
        target: the shape the run asked for (``--config``), if any; must equal the checkpoint's.

    Raises:
        InitCheckpointError: steps 1-3 and 5-8 (the message starts with the FALSIFY id).
        ArchitectureMismatchError: step 4 (FALSIFY-INIT-ARCH-MATCH-001, with the `apr stamp` fix).
    """
    from apr.format import open_file

    file = check_init_path(path)
    try:
        reader = open_file(file)
    except FormatError as err:
        raise InitCheckpointError(
            f"{BAD_METADATA}: --init file has APR magic but an unreadable header, index or metadata: {err.message}",
            falsifier=BAD_METADATA, path=file, field="--init", hint=err.hint or "re-export the checkpoint",
        ) from err
    with reader:
        metadata = dict(reader.metadata)
        names = list(reader.keys())
        # an architecture the runtime does not implement at all is refused first, by the registry
        # (the identity table below would take it for a similar family and suggest a wrong stamp)
        resolution = architecture_from_metadata(metadata, names)
        if resolution.refusal is not None and resolution.architecture not in REGISTRY:
            raise resolution.refusal.error(path=os.fspath(file))
        # INV-INIT-ARCH-MATCH-001: decided on names alone, before any weight is read. A file the
        # registry matches exactly (its claims name one entry and its tensors fit that entry's
        # schema) has passed a stricter test than aprender's name heuristics, which take Phi-3's
        # fused qkv_proj for qwen2 and would refuse a correct phi3 file.
        claim = metadata.get("architecture")
        if not resolution.ok:
            validate_init_arch_matches_tensor_evidence(claim if isinstance(claim, str) else None, names,
                                                       path=os.fspath(file))
        _check_tensor_presence(resolution.architecture, names, file)
        config = _config_from(metadata, names, file)
        if target is not None:
            differences = config_differences(config, target)
            if differences:
                raise InitCheckpointError(
                    f"{BAD_METADATA}: --init architecture does not match --config: {'; '.join(differences)}",
                    falsifier=BAD_METADATA, path=file, field="--config",
                    hint="drop --config (the shape comes from the checkpoint) or pass the matching config.json",
                )
        _check_tensor_index(reader, config, names, file)
        tensors = _read_weights(reader, config, file)
    tokenizer = None
    if has_embedded_tokenizer(metadata):
        try:
            tokenizer = record_from_metadata(metadata)  # its error is rewrapped below, naming the file
        except TokenizerError as err:
            raise InitCheckpointError(
                f"{BAD_METADATA}: --init embedded tokenizer is malformed: {err.message}", falsifier=BAD_METADATA,
                path=file, field=err.field, hint="re-stamp it: apr stamp FILE --tokenizer DIR -o STAMPED.apr",
            ) from err
    return InitCheckpoint(path=os.fspath(file), config=config, tensors=tensors, metadata=metadata, tokenizer=tokenizer)


def _check_tensor_presence(architecture: str, names: list[str], file: Path) -> None:
    """FALSIFY-APR-PRETRAIN-INIT-011 on names: every tensor its registry entry requires, and no other."""
    from apr.arch.schema import schema_problems

    problems = schema_problems(REGISTRY[architecture].schema, names)  # step 4 refused what the registry lacks
    if problems:
        raise InitCheckpointError(
            f"{BAD_TENSORS}: --init tensors do not match the {architecture} architecture: {'; '.join(problems)}",
            falsifier=BAD_TENSORS, path=file, field="tensors",
            hint="the file lost or gained tensors; re-export the checkpoint from its source",
        )


def _config_from(metadata: dict[str, Any], names: list[str], file: Path) -> ModelConfig:
    try:
        return ModelConfig.from_metadata(metadata, names, path=os.fspath(file))
    except UnsupportedArchitectureError:
        raise  # the registry's refusal, naming the architecture: not rewrapped
    except ModelConfigError as err:
        raise InitCheckpointError(
            f"{BAD_METADATA}: --init APR file has missing or invalid architecture metadata "
            f"(hidden_size, num_heads, num_layers, vocab_size, ...): {err.message}",
            falsifier=BAD_METADATA, path=file, field=err.field,
            hint=err.hint or "re-export the checkpoint with its config, or stamp the missing fields",
        ) from err


def _check_tensor_index(reader: Any, config: ModelConfig, names: list[str], file: Path) -> None:
    shapes = {name: tuple(reader.entry(name).shape) for name in names}
    try:  # the metadata's dims against the tensors, in integers, before anything is enumerated
        check_against_tensors(config, shapes)  # its message is rewrapped below, naming the file
    except ModelConfigError as err:
        raise InitCheckpointError(
            f"{BAD_TENSORS}: --init tensors do not match the architecture in its metadata: {err.message}",
            falsifier=BAD_TENSORS, path=file, field=err.field, hint=err.hint,
        ) from err
    problems = tensor_shape_problems(config, shapes)
    problems += [f"{name}: dtype {reader.entry(name).dtype.name} is not F32/F16/BF16 (quantized weights cannot train)"
                 for name, shape in config.parameter_shapes().items()
                 if shapes.get(name) == shape and reader.entry(name).dtype.name not in _FLOAT_DTYPES]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} in all)" if len(problems) > 8 else "")
        raise InitCheckpointError(
            f"{BAD_TENSORS}: --init tensors do not match the architecture in its metadata: {shown}",
            falsifier=BAD_TENSORS, path=file, field="tensors",
            hint="the metadata dims and the tensors disagree; re-export the checkpoint from its source",
        )


def _read_weights(reader: Any, config: ModelConfig, file: Path) -> dict[str, np.ndarray]:
    tensors = {}
    bad = []
    for name in config.parameter_shapes():
        array = reader.get_float32(name).copy()  # F32 (get_float32 casts), writable, off the mmap
        if not np.isfinite(array).all():
            bad.append(name)
        tensors[name] = array
    if bad:
        raise InitCheckpointError(
            f"{BAD_TENSORS}: --init tensors hold NaN or Inf: {', '.join(bad[:8])}", falsifier=BAD_TENSORS,
            path=file, field="tensors", hint="the checkpoint was written from a diverged run; use an earlier epoch",
        )
    return tensors
