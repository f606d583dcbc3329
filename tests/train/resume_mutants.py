"""Deliberate faults for training-resume-v1: each must turn its falsifier's tests red."""

from __future__ import annotations

import os
from typing import Any


def restore_nothing(*args: Any, **kwargs: Any) -> None:
    """A restore step (AdamW, the generators) that restores nothing."""
    return


def cursor_from_the_start(state: Any) -> Any:
    """data_cursor_of that forgets where the data stream stood."""
    from apr.train.train_state import DataCursor

    return DataCursor(state.cursor.seed, 0)


@classmethod  # type: ignore[misc]
def progress_without_epoch_losses(cls: Any, document: Any) -> Any:
    """Progress.from_json that drops the open epoch's train losses."""
    values = dict(document)
    values["epoch_losses"] = []
    values["best"] = float("inf") if values.get("best") is None else values["best"]
    return cls(**values)


def trust_the_pair(document: Any, checkpoint: Any, tensors_path: Any, blob: bytes) -> str:
    """verify_pair that checks nothing."""
    return document["apr_sha256"]


def no_shard_hash(folder: Any) -> None:
    """shard_list_sha256 that hashes nothing: every dataset looks the same."""
    return None


def no_differences(saved: Any, asked: Any) -> list[str]:
    """fingerprint_differences that finds none."""
    return []


def last_only(entries: Any, keep_last: int) -> set:
    """choose_kept without the best epoch."""
    ordered = sorted(entries, key=lambda e: (e.step, e.is_epoch))
    return {e.checkpoint for e in ordered[len(ordered) - keep_last:]}


def log_left_as_is(path: Any, resume_step: int, *, expect_evaluation: bool = True) -> tuple[Any, ...]:
    from apr.train.metrics_log import read_log

    return tuple(read_log(path).records) if os.path.exists(path) else ()
