"""``--report-to tensorboard``: the metric rows as TensorBoard scalars under ``RUN_DIR/tb/``.

Written through PyTorch's own `torch.utils.tensorboard.SummaryWriter` (which needs the
``tensorboard`` package: the ``[tensorboard]`` extra), so two runs can be watched side by side with
``tensorboard --logdir runs/``. The same rows as ``metrics.jsonl``, each at ``global_step`` = the
row's ``step``, under these tags:

* training rows: ``train_loss``, ``lr``, ``grad_norm``, ``tokens_per_sec``, ``tokens_seen``,
  ``wall_s``;
* evaluation rows: ``val_loss`` and ``epoch_train_loss`` (the epoch's mean training loss; a
  separate tag so it never interleaves with the interval means of ``train_loss``).

The run's configuration (the ``--json`` report's head: model, schedule, Chinchilla gate, ``--init``
file and digest, warnings) is a text entry, ``run_config``, at step 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from apr.train.metrics_log import MetricRecord

TB_DIRNAME = "tb"
TRAIN_TAGS: tuple[str, ...] = ("train_loss", "lr", "grad_norm", "tokens_per_sec", "tokens_seen", "wall_s")


def tensorboard_dir(run_dir: str | os.PathLike[str]) -> Path:
    """``RUN_DIR/tb``."""
    return Path(run_dir) / TB_DIRNAME


def scalars_of(record: MetricRecord) -> dict[str, float]:
    """The tags and values one row becomes (pure; nulls are left out).

    Example:
        >>> from apr.train.metrics_log import MetricRecord
        >>> scalars_of(MetricRecord(step=5, epoch=0, train_loss=None, val_loss=2.5, lr=1e-3, grad_norm=None,
        ...                         tokens_per_sec=None, tokens_seen=320, wall_s=1.0))
        {'val_loss': 2.5}
    """
    pairs: tuple[tuple[str, Any], ...]
    if record.is_evaluation:
        pairs = (("val_loss", record.val_loss), ("epoch_train_loss", record.train_loss))
    else:
        pairs = tuple((tag, getattr(record, tag)) for tag in TRAIN_TAGS)
    return {tag: float(value) for tag, value in pairs if value is not None}


class TensorBoardSink:
    """A `MetricsSink` writing event files with ``torch.utils.tensorboard``.

    Raises:
        ImportError: the ``tensorboard`` package is missing (the CLI checks the extra before any
            training work, so a user sees `MissingExtraError` instead).
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, run_config: dict[str, Any] | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=os.fspath(self.log_dir))
        if run_config is not None:
            text = json.dumps(run_config, indent=2, default=str)
            self._writer.add_text("run_config", "```json\n" + text + "\n```", global_step=0)

    def write(self, record: MetricRecord) -> None:
        for tag, value in scalars_of(record).items():
            self._writer.add_scalar(tag, value, global_step=record.step)
        if record.is_evaluation:
            self._writer.flush()  # an evaluation is worth seeing now, not at the next 2-minute flush

    def close(self) -> None:
        self._writer.close()


__all__ = ["TB_DIRNAME", "TRAIN_TAGS", "TensorBoardSink", "scalars_of", "tensorboard_dir"]
