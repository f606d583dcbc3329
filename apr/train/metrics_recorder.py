"""Turn the training loop's events into metric rows and hand them to the run's sinks.

The loop already yields what happens (`apr.train.loop`: `InitEvaluated`, one `StepMetrics` per
step, `EpochEnd`, `Finished`); `MetricsRecorder` folds them into `MetricRecord` rows, one every
``log_every`` steps and one after every evaluation, and gives each to every sink (the
``metrics.jsonl`` writer, and TensorBoard with ``--report-to tensorboard``). Keeping this out of the
loop keeps the loop the one visible place where training happens (nanoGPT), and the rows testable
from plain event records. Only rank 0 builds a recorder under torchrun.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from apr.train.metrics_log import MetricRecord

AUTO_LOG_EVERY_CAP = 100


class MetricsSink(Protocol):
    """Where rows go: `MetricsLogWriter`, `TensorBoardSink`."""

    def write(self, record: MetricRecord) -> None: ...

    def close(self) -> None: ...


def default_log_every(num_steps: int) -> int:
    """``--log-every-steps`` when not given: about a hundred rows for a short run, and a row every
    `AUTO_LOG_EVERY_CAP` steps for a long one (~250 bytes a row: 10k rows per million steps).

    Example:
        >>> default_log_every(150), default_log_every(1000), default_log_every(10**6)
        (1, 10, 100)
    """
    return max(1, min(AUTO_LOG_EVERY_CAP, num_steps // 100))


class MetricsRecorder:
    """Events in, rows out (see the module docstring).

    Args:
        sinks: each receives every row, in order.
        log_every: a training row every N optimizer steps (the last step of the run always ends an
            interval, so its losses are never dropped).
        steps_per_epoch: for the ``epoch`` of training rows.
        num_steps: the run's last step (see ``log_every``).
        start_step: steps already done (a resumed run): its starting-weights evaluation repeats the
            row the log already has at that step, so it is not written again.
        wall_offset: ``wall_s`` already spent (a resumed run continues the clock of its log).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, sinks: Sequence[MetricsSink], *, log_every: int, steps_per_epoch: int, num_steps: int,
                 start_step: int = 0, wall_offset: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.sinks = tuple(sinks)
        self.log_every = log_every
        self.steps_per_epoch = steps_per_epoch
        self.num_steps = num_steps
        self.start_step = start_step
        self._clock = clock
        self._started = clock() - wall_offset
        self._losses: list[float] = []
        self._tokens = 0.0
        self._seconds = 0.0
        self._last: Any = None  # the last StepMetrics

    def wall_s(self) -> float:
        return max(0.0, self._clock() - self._started)

    def on_event(self, event: Any) -> None:
        """Fold one loop event (dispatch on its type; `Finished` and unknown events write nothing)."""
        from apr.train.loop import EpochEnd, InitEvaluated, StepMetrics

        if isinstance(event, StepMetrics):
            self._on_step(event)
        elif isinstance(event, EpochEnd):
            self._emit(self._epoch_row(event))
        elif isinstance(event, InitEvaluated) and self.start_step == 0:
            self._emit(MetricRecord(step=0, epoch=None, train_loss=None, val_loss=event.val_loss, lr=None,
                                    grad_norm=None, tokens_per_sec=None, tokens_seen=0, wall_s=self.wall_s()))

    def _on_step(self, event: Any) -> None:
        self._losses.append(event.train_loss)
        self._tokens += event.tokens_per_sec * event.wall_ms / 1000.0
        self._seconds += event.wall_ms / 1000.0
        self._last = event
        done = event.step + 1  # steps completed
        if done % self.log_every == 0 or done == self.num_steps:
            self._emit(MetricRecord(
                step=done, epoch=event.step // self.steps_per_epoch,
                train_loss=sum(self._losses) / len(self._losses), val_loss=None, lr=event.lr,
                grad_norm=event.grad_norm, tokens_per_sec=self._tokens / self._seconds if self._seconds > 0 else 0.0,
                tokens_seen=event.tokens_seen, wall_s=self.wall_s()))
            self._losses, self._tokens, self._seconds = [], 0.0, 0.0

    def _epoch_row(self, event: Any) -> MetricRecord:
        last = self._last
        return MetricRecord(step=last.step + 1 if last is not None else self.start_step, epoch=event.epoch,
                            train_loss=event.train_loss, val_loss=event.val_loss,
                            lr=last.lr if last is not None else None, grad_norm=None, tokens_per_sec=None,
                            tokens_seen=event.tokens_seen, wall_s=self.wall_s())

    def _emit(self, record: MetricRecord) -> None:
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        """Close every sink (each is closed even when another fails)."""
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:  # noqa: BLE001 - re-raised below, after the others closed
                errors.append(err)
        if errors:
            raise errors[0]

    def __enter__(self) -> MetricsRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MetricsRecorder", "MetricsSink", "default_log_every"]
