"""``--keep-last K``: how many of a run's checkpoints stay on disk.

A 50-epoch run of a 600M model writes 50 checkpoints of 2.5 GB; resuming needs one. After each
new checkpoint, the run keeps its last K checkpoints (epoch and ``--save-every-steps`` ones alike,
by step) and the epoch checkpoint with the best val_loss, and deletes the others. Only checkpoints
whose training state names this run (``run_id``) are candidates: never a file another run, an
``--init`` source or a person put in the folder. The state JSON goes first, so a deletion cut short
leaves an ``.apr`` that ``--resume`` no longer picks, never a state without its checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from apr.errors import AprError
from apr.train.train_state import read_state_document, state_paths

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Kept:
    """One of the run's checkpoints, as retention sees it."""

    step: int
    is_epoch: bool
    val_loss: float | None
    checkpoint: Path


def choose_kept(entries: list[Kept], keep_last: int) -> set[Path]:
    """The last ``keep_last`` by step (an epoch checkpoint after a step one at the same step), plus
    the epoch checkpoint with the lowest finite val_loss (the earliest on a tie)."""
    ordered = sorted(entries, key=lambda e: (e.step, e.is_epoch))
    # clamped at 0: fewer checkpoints than K keeps them all (a bare negative start would count from
    # the end: 3 checkpoints under K = 4 kept 1); K <= 0 starts at or past the end and keeps none
    kept = {e.checkpoint for e in ordered[max(len(ordered) - keep_last, 0):]}
    scored = [e for e in ordered if e.is_epoch and e.val_loss is not None and math.isfinite(e.val_loss)]
    if scored:
        kept.add(min(scored, key=lambda e: (e.val_loss, e.step)).checkpoint)
    return kept


def run_checkpoints(folder: str | os.PathLike[str], run_id: str) -> list[Kept]:
    """This run's checkpoints in ``folder`` (unreadable states of others are skipped, with a warning)."""
    entries = []
    for json_path in sorted(Path(folder).glob("*.state.json")):
        try:
            document = read_state_document(json_path)
        except AprError as err:
            logger.warning("retention skips %s: %s", json_path, err.message)
            continue
        if document["run_id"] != run_id:
            continue
        entries.append(Kept(step=document["progress"]["step"], is_epoch=document["kind"] == "epoch",
                            val_loss=document.get("val_loss"), checkpoint=json_path.with_name(document["checkpoint"])))
    return entries


def prune_checkpoints(folder: str | os.PathLike[str], *, run_id: str, keep_last: int) -> list[Path]:
    """Delete this run's checkpoints beyond `choose_kept`; returns the ``.apr`` paths removed."""
    entries = run_checkpoints(folder, run_id)
    kept = choose_kept(entries, keep_last)
    removed = []
    for entry in entries:
        if entry.checkpoint in kept:
            continue
        tensors_path, json_path = state_paths(entry.checkpoint)
        sidecar = entry.checkpoint.with_name(entry.checkpoint.name.removesuffix(".apr") + ".metadata.json")
        for path in (json_path, tensors_path, entry.checkpoint, sidecar):  # the commit mark first
            path.unlink(missing_ok=True)
        removed.append(entry.checkpoint)
        logger.info("--keep-last removed %s", entry.checkpoint)
    return removed
