"""Deliberate faults for contract apr-metrics-log-v1: each must turn its falsifier's tests red."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from apr.readiness import loss_curve as _loss_curve
from apr.readiness import training_results as _results
from apr.train import metrics_log as _log
from apr.train import loop as _loop
from apr.train import metrics_recorder as _recorder
from apr.train.metrics_log import LogReading, MetricRecord, MetricsLogWriter, RowError, record_from_mapping

_real_continue = _log.continue_log
_real_table = _results.table_lines
_real_epoch_row = _recorder.MetricsRecorder._epoch_row
_real_points = _loss_curve.curve_points
_real_saver_epoch = _loop._Saver.epoch


class BufferedLogWriter(MetricsLogWriter):
    """Rows held in memory and written only on close: a SIGKILL loses the whole history."""

    def write(self, record: MetricRecord) -> None:
        self.__dict__.setdefault("held", []).append(record)

    def close(self) -> None:
        for record in self.__dict__.pop("held", []):
            super().write(record)
        super().close()


def parse_lines_skipping(lines: Iterable[bytes]) -> LogReading:
    """A reader that skips a damaged line and trusts what follows it."""
    records, kept = [], []
    for line in lines:
        try:
            record = record_from_mapping(json.loads(line.decode("utf-8")))
        except (RowError, ValueError, UnicodeDecodeError):
            continue
        records.append(record)
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    return LogReading(tuple(records), kept_lines=tuple(kept))


def continue_log_exclusive(path: Any, resume_step: int) -> tuple[MetricRecord, ...]:
    """continue_log that drops the rows of the resume step itself (a lost evaluation)."""
    return _real_continue(path, max(0, resume_step - 1))


def evaluation_rows_unbounded(records: Sequence[MetricRecord], up_to_step: int | None = None) -> tuple[MetricRecord, ...]:
    """The card's rows without the checkpoint's step bound: a card claims later epochs."""
    return tuple(r for r in records if r.is_evaluation)


def table_without_first_row(rows: Sequence[MetricRecord]) -> list[str]:
    """The table with its first evaluation dropped."""
    return _real_table(rows[1:])


def epoch_row_step_index(self: Any, event: Any) -> MetricRecord:
    """Evaluation rows stamped with the last step's index, not the steps completed (off by one
    against the checkpoint's training.step: a resume would repeat or lose a row)."""
    row = _real_epoch_row(self, event)
    return replace(row, step=row.step - 1)


def scalars_without_val(record: MetricRecord) -> dict[str, float]:
    """TensorBoard scalars without the validation loss."""
    from apr.train.tensorboard_sink import TRAIN_TAGS

    pairs = ((tag, getattr(record, tag)) for tag in TRAIN_TAGS) if not record.is_evaluation else ()
    return {tag: float(value) for tag, value in pairs if value is not None}


def no_images(card: Any) -> list[Any]:
    """apr publish's image finder that finds nothing."""
    return []


def points_without_val(records: Sequence[MetricRecord]) -> tuple[list[Any], list[Any]]:
    """The curve's points without the validation curve."""
    train, _ = _real_points(records)
    return train, []


def no_flag_checks(args: Any) -> None:
    """check_reporting_flags that checks nothing."""
    return None


def checkpoint_then_report(self: Any, event: Any, path: Any, progress: Any, cursor: Any, *, step: int,
                           lr: float) -> Iterator[Any]:
    """The epoch's checkpoint written before the event that writes its evaluation row: a kill in
    between leaves a checkpoint a resume starts from whose row is nowhere in metrics.jsonl."""
    steps = _real_saver_epoch(self, event, path, progress, cursor, step=step, lr=lr)
    first = next(steps)
    for _ in steps:  # the checkpoint, its state and sidecar, written with the event held back
        pass
    yield first
