"""Which token windows make each training and validation batch: pure functions of the data, the
seed and the step.

A batch row is a window of ``seq_length + 1`` consecutive ids (inputs are the first
``seq_length``, targets the last). Training windows are drawn with replacement by a generator
seeded with ``(seed, step)``, so step ``s`` sees the same rows whatever happened before it: a run
is reproducible, a resumed run continues the same stream, and under DDP each rank takes its slice
of the same global batch. Sampling with replacement never runs dry, so there is no exhaustion
placeholder to fall back on (INV-TRAIN-011).

The validation set is fixed by ``batch_size`` and ``seq_length`` alone: consecutive windows from
the start of ``--val-shard`` or, without it, from the held-out tail of ``--dataset``. The val_loss
of epoch k and the ``init_val_loss`` of a run resumed from epoch k are therefore measured on the
same tokens (the resume-continuity invariant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apr.errors import DatasetError

VAL_BATCHES = 16  # held-out batches, aprender's HELD_OUT_BATCHES
VAL_FRACTION_CAP = 0.1  # without --val-shard, hold out at most this share of the corpus


@dataclass(frozen=True, slots=True)
class TokenSplit:
    """Training segments and validation windows (each window ``seq_length + 1`` ids)."""

    train: tuple[np.ndarray, ...]
    val_windows: np.ndarray  # (num_windows, seq_length + 1) int64
    seq_length: int

    @property
    def train_tokens(self) -> int:
        return segment_tokens(self.train)


def segment_tokens(segments: Sequence[np.ndarray]) -> int:
    """`TokenSplit.train_tokens`: the ids of every training segment (a plain function, so mutation
    testing measures it: mutmut 3 skips properties)."""
    return sum(len(s) for s in segments)


def _windows(segments: Sequence[np.ndarray], width: int, limit: int) -> np.ndarray:
    rows = []
    for segment in segments:
        for start in range(0, len(segment) - width + 1, width):
            rows.append(np.asarray(segment[start:start + width], dtype=np.int64))
            if len(rows) == limit:
                return np.stack(rows)
    return np.stack(rows) if rows else np.zeros((0, width), dtype=np.int64)


def split_tokens(
    train_segments: Sequence[np.ndarray],
    val_segments: Sequence[np.ndarray] | None,
    *,
    batch_size: int,
    seq_length: int,
    dataset_name: str = "--dataset",
) -> TokenSplit:
    """Fix the validation windows and what remains for training.

    Raises:
        DatasetError: the corpus (or the val shard) is too small for one window.
    """
    width = seq_length + 1
    limit = VAL_BATCHES * batch_size
    train = [s for s in train_segments if len(s)]
    if val_segments is not None:
        val = _windows(val_segments, width, limit)
        if len(val) == 0:
            raise DatasetError(
                f"--val-shard is too small to yield one window of {width} tokens at seq_length={seq_length}",
                field="--val-shard", hint="tokenize more text into the val shard, or lower --seq-length",
            )
    else:
        total = sum(len(s) for s in train)
        held = min(limit * width, int(total * VAL_FRACTION_CAP) // width * width)
        if held < width:
            raise DatasetError(
                f"{dataset_name} has {total} tokens: too few to hold out 10% as validation windows of "
                f"{width} tokens", field=dataset_name,
                hint="pass a separate --val-shard, tokenize more text, or lower --seq-length",
            )
        tail: list[np.ndarray] = []
        remaining = held
        while remaining:  # cut the held-out tokens off the end of the corpus
            last = train.pop()
            take = min(remaining, len(last))
            tail.insert(0, last[len(last) - take:])
            if take < len(last):
                train.append(last[:len(last) - take])
            remaining -= take
        val = _windows([np.concatenate([np.asarray(t) for t in tail])], width, limit)
    if sum(max(len(s) - width + 1, 0) for s in train) <= 0:
        raise DatasetError(
            f"{dataset_name} leaves no training window of {width} tokens", field=dataset_name,
            hint="tokenize more text, or lower --seq-length",
        )
    return TokenSplit(train=tuple(train), val_windows=val, seq_length=seq_length)


def train_batch(split: TokenSplit, *, seed: int, step: int, batch_size: int) -> np.ndarray:
    """The global batch of step ``step``: (batch_size, seq_length + 1) int64 ids."""
    width = split.seq_length + 1
    starts_per_segment = np.array([max(len(s) - width + 1, 0) for s in split.train], dtype=np.int64)
    cumulative = np.cumsum(starts_per_segment)
    rng = np.random.default_rng([seed, step])
    picks = rng.integers(0, int(cumulative[-1]), size=batch_size)
    rows = np.empty((batch_size, width), dtype=np.int64)
    for row, pick in enumerate(picks):
        segment = int(np.searchsorted(cumulative, pick, side="right"))
        start = int(pick - (cumulative[segment - 1] if segment else 0))
        rows[row] = split.train[segment][start:start + width]
    return rows


def val_batches(split: TokenSplit, *, batch_size: int) -> list[np.ndarray]:
    """The validation windows in batches of ``batch_size`` (the last may be shorter)."""
    windows = split.val_windows
    return [windows[i:i + batch_size] for i in range(0, len(windows), batch_size)]
