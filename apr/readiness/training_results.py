"""The "Training results" section of a model card, from the run's ``metrics.jsonl``.

The Hugging Face Trainer puts a results table in the cards it writes; ours comes from the same
rows the run streamed to ``RUN_DIR/metrics.jsonl`` (`apr.train.metrics_log`), so the table is the
log and nothing else: one row per evaluation (the starting weights, then each epoch) with epoch,
step, training loss, validation loss and perplexity (``exp(val_loss)``), losses to 4 decimals.
Rows past the checkpoint's own ``training.step`` are left out: the card of ``epoch-001.apr`` does
not claim what epoch 2 did. Nothing here imports torch or matplotlib (`apr.readiness.loss_curve`
draws the curve).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apr.train.metrics_log import LOG_NAME, MetricRecord

CURVE_SUFFIX = "-loss.png"
PLOT_HINT = "pip install 'apr-contracts[plot]'"


@dataclass(frozen=True, slots=True)
class TrainingResults:
    """What the card's section shows: the evaluation rows, and the curve if one was drawn."""

    source: str  # the metrics.jsonl read, as given
    rows: tuple[MetricRecord, ...]  # evaluation rows, step order
    curve: str | None = None  # the PNG's file name, beside the card
    curve_missing_reason: str | None = None  # why there is no curve (no matplotlib, nothing to plot)


def find_metrics_log(checkpoint: str | os.PathLike[str], run_dir: str | os.PathLike[str] | None) -> Path | None:
    """Where the checkpoint's training history is: ``RUN_DIR/metrics.jsonl`` when ``--run-dir`` is
    given, else a sidecar ``NAME.metrics.jsonl`` beside ``NAME.apr``, else the run folder of a
    checkpoint still in ``RUN/ckpt/`` (``RUN/metrics.jsonl``); None when there is none."""
    if run_dir is not None:
        return Path(run_dir) / LOG_NAME
    path = Path(checkpoint)
    sidecar = path.with_name(path.name.removesuffix(".apr") + ".metrics.jsonl")
    if sidecar.is_file():
        return sidecar
    if path.parent.name == "ckpt" and (path.parent.parent / LOG_NAME).is_file():
        return path.parent.parent / LOG_NAME
    return None


def checkpoint_step(metadata: Mapping[str, Any]) -> int | None:
    """The optimizer steps a checkpoint's weights have had (``training.step``), if it says."""
    training = metadata.get("training")
    step = training.get("step") if isinstance(training, Mapping) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def evaluation_rows(records: Sequence[MetricRecord], up_to_step: int | None = None) -> tuple[MetricRecord, ...]:
    """The rows the table shows: evaluations at or before ``up_to_step`` (all when None)."""
    return tuple(r for r in records if r.is_evaluation and (up_to_step is None or r.step <= up_to_step))


def perplexity(loss: float) -> float:
    """``exp(loss)``, capped where it would overflow (a loss of 700 nats is not a model)."""
    return math.exp(min(loss, 700.0))


def _cell(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table_lines(rows: Sequence[MetricRecord]) -> list[str]:
    """The Markdown table (pure).

    Example:
        >>> from apr.train.metrics_log import MetricRecord
        >>> row = MetricRecord(step=50, epoch=0, train_loss=5.25, val_loss=4.5, lr=1e-3, grad_norm=None,
        ...                    tokens_per_sec=None, tokens_seen=25600, wall_s=3.0)
        >>> table_lines([row])[-1]
        '| 0 | 50 | 5.2500 | 4.5000 | 90.02 |'
    """
    lines = ["| epoch | step | train loss | validation loss | perplexity |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        epoch = "init" if r.epoch is None else str(r.epoch)
        ppl = perplexity(r.val_loss) if r.val_loss is not None else None
        lines.append(f"| {epoch} | {r.step} | {_cell(r.train_loss)} | {_cell(r.val_loss)} | {_cell(ppl, 2)} |")
    return lines


def section_lines(results: TrainingResults) -> list[str]:
    """The card's "Training results" section: the table, then the curve or how to add it."""
    lines = ["## Training results", ""]
    if results.rows:
        lines += table_lines(results.rows)
    else:
        lines.append("No evaluation was recorded before this checkpoint.")
    lines += ["", f"From `{os.path.basename(results.source)}` (one row per evaluation; perplexity = exp(validation loss)).", ""]
    if results.curve is not None:
        lines += [f"![Training and validation loss against tokens seen]({results.curve})", ""]
    elif results.curve_missing_reason is not None:
        lines += [f"_No loss curve: {results.curve_missing_reason}._", ""]
    return lines


def curve_path(card: str | os.PathLike[str]) -> Path:
    """The PNG beside the card: ``CARD-loss.png`` for ``CARD.md``."""
    path = Path(card)
    return path.with_name(path.name.removesuffix(".md") + CURVE_SUFFIX)


__all__ = ["CURVE_SUFFIX", "PLOT_HINT", "TrainingResults", "checkpoint_step", "curve_path", "evaluation_rows",
           "find_metrics_log", "perplexity", "section_lines", "table_lines"]
