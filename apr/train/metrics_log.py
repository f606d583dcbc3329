"""``RUN_DIR/metrics.jsonl``: the training history, one JSON object a line, safe to read while the
run is alive and after it was killed.

Why a line log and not a JSON document rewritten each time: a run that lasts days must leave its
history behind at every moment. Each row is appended with one ``write(2)`` on a descriptor opened
``O_APPEND`` and is in the kernel when the call returns, so a SIGKILL (or an OOM kill) at any
moment leaves every complete line intact; at worst the last line is cut short, and the reader
stops there. Nothing here imports torch: `apr card` reads the log on a machine without it.

Fields (`METRIC_FIELDS`): the ``--json`` report's ``per_step_metrics`` names, plus ``epoch``,
``val_loss`` and ``wall_s``:

* ``step``: optimizer steps completed (1 after the first step): the ``training.step`` of a
  checkpoint written at that point, so a resume from it keeps rows with ``step <= its step``
  (`continue_log`). The report's ``per_step_metrics`` counts from 0 (its ``step`` is the index).
* ``epoch``: the index of the epoch the row belongs to (``epoch-NNN.apr``); null on the row of the
  starting weights.
* ``train_loss``: a training row's mean over the steps since the previous training row; an
  evaluation row's mean over its epoch (the sidecar's ``train_loss``); null on the starting row.
* ``val_loss``: null on a training row, set on an evaluation row (the only way to tell them apart).
* ``lr``, ``grad_norm``, ``tokens_per_sec``: the last step's learning rate and clipped-before
  gradient norm and the interval's throughput (null on evaluation rows, except ``lr``).
* ``tokens_seen``, ``wall_s``: tokens trained on so far and seconds since the run started.

Reading is defensive (`read_log`): the first line that is cut short, is not a JSON object of
these fields with these types, or goes back in ``step``, ends the trusted part; a warning names
it, and nothing after it is returned. The file is never rewritten in place: `continue_log` writes
a new file beside it and renames it over (`apr.format.atomic`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apr.errors import AprFileNotFoundError, AprIOError

logger = logging.getLogger(__name__)

LOG_NAME = "metrics.jsonl"
METRIC_FIELDS: tuple[str, ...] = (
    "step", "epoch", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec", "tokens_seen", "wall_s",
)
MAX_LINE_BYTES = 64 * 1024  # a real row is ~250 bytes; a longer "line" is garbage, not a row
_INTS = ("step", "tokens_seen")
_OPTIONAL_INTS = ("epoch",)
_OPTIONAL_FLOATS = ("train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec")


def is_evaluation_row(val_loss: float | None) -> bool:
    """`MetricRecord.is_evaluation` (a plain function, so mutation testing measures it)."""
    return val_loss is not None


@dataclass(frozen=True, slots=True)
class MetricRecord:
    """One row of ``metrics.jsonl`` (see the module docstring for what each field means)."""

    step: int
    epoch: int | None
    train_loss: float | None
    val_loss: float | None
    lr: float | None
    grad_norm: float | None
    tokens_per_sec: float | None
    tokens_seen: int
    wall_s: float

    @property
    def is_evaluation(self) -> bool:
        """An evaluation row (after an epoch, or of the starting weights) carries ``val_loss``."""
        return is_evaluation_row(self.val_loss)

    def to_line(self) -> bytes:
        """The row as one JSON line, keys in `METRIC_FIELDS` order; NaN and Inf become null (JSON
        has neither, and a guard aborts the run on them anyway)."""
        document = {key: _finite_or_none(value) for key, value in asdict(self).items()}
        return (json.dumps(document, allow_nan=False, separators=(", ", ": ")) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class LogReading:
    """What `read_log` trusted, and why it stopped early if it did."""

    records: tuple[MetricRecord, ...]
    problem: str | None = None  # None: every line was a complete, valid row
    line: int | None = None  # 1-based line of the problem
    offset: int | None = None  # byte offset where the untrusted part starts
    kept_lines: tuple[bytes, ...] = field(default=(), repr=False)  # the trusted lines, byte for byte


class RowError(ValueError):
    """A line that is not a valid row (internal to reading: a damaged line ends the trusted part)."""


def record_from_mapping(document: Any) -> MetricRecord:
    """Check one parsed line and build its record.

    Raises:
        RowError: not an object with exactly `METRIC_FIELDS`, or a value of the wrong type.
    """
    if not isinstance(document, dict):
        raise RowError(f"a row must be a JSON object, got {type(document).__name__}")
    keys = set(document)
    if keys != set(METRIC_FIELDS):
        missing, extra = sorted(set(METRIC_FIELDS) - keys), sorted(keys - set(METRIC_FIELDS))
        raise RowError(f"fields differ from {', '.join(METRIC_FIELDS)}"
                       + (f"; missing {', '.join(missing)}" if missing else "")
                       + (f"; unexpected {', '.join(extra)}" if extra else ""))
    for key in _INTS:
        if not _is_int(document[key]) or document[key] < 0:
            raise RowError(f"{key} must be an integer >= 0, got {document[key]!r}")
    for key in _OPTIONAL_INTS:
        if document[key] is not None and (not _is_int(document[key]) or document[key] < 0):
            raise RowError(f"{key} must be null or an integer >= 0, got {document[key]!r}")
    for key in _OPTIONAL_FLOATS:
        if document[key] is not None and not _is_number(document[key]):
            raise RowError(f"{key} must be null or a number, got {document[key]!r}")
    if not _is_number(document["wall_s"]) or document["wall_s"] < 0:
        raise RowError(f"wall_s must be a number >= 0, got {document['wall_s']!r}")
    return MetricRecord(**{key: document[key] for key in METRIC_FIELDS})


def parse_lines(lines: Iterable[bytes]) -> LogReading:
    """Trust lines up to the first damaged one (pure: the reader's rules on bytes).

    A line is trusted when it ends in a newline, is at most `MAX_LINE_BYTES`, parses as UTF-8
    JSON into a valid row, and its ``step`` is not below the previous row's.
    """
    records: list[MetricRecord] = []
    kept: list[bytes] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        try:
            if not line.endswith(b"\n"):
                raise RowError("the line is cut short (no newline: the run was stopped while writing it)")
            if len(line) > MAX_LINE_BYTES:
                raise RowError(f"the line is {len(line):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit of a row")
            try:
                document = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as err:
                raise RowError(f"not a JSON line ({type(err).__name__})") from None
            record = record_from_mapping(document)
            if records and record.step < records[-1].step:
                raise RowError(f"step {record.step} goes back from {records[-1].step} (rows of another run?)")
        except RowError as err:
            return LogReading(tuple(records), problem=str(err), line=number, offset=offset, kept_lines=tuple(kept))
        records.append(record)
        kept.append(line)
        offset += len(line)
    return LogReading(tuple(records), kept_lines=tuple(kept))


def read_log(path: str | os.PathLike[str]) -> LogReading:
    """Read ``metrics.jsonl`` up to its last complete valid line (a warning names any damage).

    Raises:
        AprFileNotFoundError: no such file.
        AprIOError: it cannot be read.
    """
    target = Path(path)
    try:
        with open(target, "rb") as handle:
            reading = parse_lines(_bounded_lines(handle))
    except FileNotFoundError as err:
        raise AprFileNotFoundError("metrics log not found", path=target,
                                   hint="train with `apr pretrain --run-dir DIR` (it writes DIR/metrics.jsonl)") from err
    except OSError as err:
        raise AprIOError(f"cannot read the metrics log: {err.strerror or err}", path=target) from err
    if reading.problem is not None:
        logger.warning("%s: line %d (byte %d): %s; using the %d row(s) before it and nothing after",
                       target, reading.line, reading.offset, reading.problem, len(reading.records))
    return reading


def _bounded_lines(handle: Any) -> Iterator[bytes]:
    """Lines of a binary file, none read past `MAX_LINE_BYTES` + 1 (a giant "line" is not loaded)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        yield line


class MetricsLogWriter:
    """Appends rows to ``metrics.jsonl``: one ``os.write`` per row on an ``O_APPEND`` descriptor.

    ``fresh=True`` (a new run) first replaces whatever file is there with an empty one, atomically;
    ``fresh=False`` continues the file (after `continue_log`, on resume). The row is in the kernel
    when `write` returns (no user-space buffer to lose on SIGKILL); ``durable=True`` also fsyncs
    each evaluation row, so the rows a checkpoint is paired with survive a power loss too.
    """

    def __init__(self, path: str | os.PathLike[str], *, fresh: bool = True, durable: bool = True) -> None:
        from apr.format.atomic import atomic_write

        self.path = Path(path)
        self.durable = durable
        try:
            if fresh:
                with atomic_write(self.path):
                    pass  # an empty file: an earlier run's rows never mix with this one's
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as err:
            raise AprIOError(f"cannot open the metrics log: {err.strerror or err}", path=self.path) from err

    def write(self, record: MetricRecord) -> None:
        """Append one row (and fsync it when it is an evaluation row and the writer is durable)."""
        if self._fd is None:
            raise ValueError("the metrics log is closed")
        data = record.to_line()
        try:
            written = 0
            while written < len(data):  # a short write (disk nearly full) continues where it stopped
                written += os.write(self._fd, data[written:])
            if self.durable and record.is_evaluation:
                os.fsync(self._fd)
        except OSError as err:
            raise AprIOError(f"cannot append to the metrics log: {err.strerror or err}", path=self.path,
                             hint="free disk space; the rows already written stay valid") from err

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            os.close(fd)

    def __enter__(self) -> MetricsLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def continue_log(path: str | os.PathLike[str], resume_step: int, *,
                 expect_evaluation: bool = True) -> tuple[MetricRecord, ...]:
    """Prepare ``metrics.jsonl`` for a run resumed from a checkpoint taken after ``resume_step`` steps.

    Keeps the trusted rows with ``step <= resume_step`` (a damaged tail and the rows of steps the
    resumed run will train again are dropped), written byte for byte to a new file that replaces
    the old one atomically: the file is never rewritten in place, so a crash here leaves the old
    log. Then `MetricsLogWriter(path, fresh=False)` appends the resumed run's rows, none repeated
    and none lost.

    Args:
        path: the run's ``metrics.jsonl``; a missing file is nothing to continue (returns ``()``).
        resume_step: the checkpoint's ``training.step`` (optimizer steps completed).
        expect_evaluation: the checkpoint is an epoch checkpoint, paired with an evaluation row at
            ``resume_step`` (a mid-epoch ``--save-every-steps`` checkpoint has none): warn when it is missing.

    Returns:
        The rows kept, oldest first (the last one's ``wall_s`` and ``tokens_seen`` are where the
        resumed run continues from).

    Example:
        >>> continue_log("runs/a/metrics.jsonl", 200)  # doctest: +SKIP
    """
    from apr.format.atomic import atomic_write

    if isinstance(resume_step, bool) or not isinstance(resume_step, int) or resume_step < 0:
        raise ValueError(f"resume_step must be an integer >= 0, got {resume_step!r}")
    target = Path(path)
    if not target.exists():
        return ()
    reading = read_log(target)
    keep = [i for i, record in enumerate(reading.records) if record.step <= resume_step]
    kept = tuple(reading.records[i] for i in keep)
    if expect_evaluation and resume_step > 0 and not any(r.is_evaluation and r.step == resume_step for r in kept):
        logger.warning("%s: no evaluation row at step %d (the row is written before its checkpoint: was the log edited?); "
                       "the log continues from step %d", target, resume_step, kept[-1].step if kept else 0)
    with atomic_write(target) as handle:
        for i in keep:
            handle.write(reading.kept_lines[i])
    return kept


def check_log_targets(run_dir: str | os.PathLike[str], *, force: bool, tensorboard: bool = False) -> list[Path]:
    """A new run never appends to an earlier run's history: an existing ``metrics.jsonl`` (or, with
    TensorBoard, event files in ``RUN_DIR/tb/``) is refused unless ``force``, as checkpoints are.
    A check only (every rank makes it): with ``force`` the log is replaced atomically when the
    writer opens, and the caller (rank 0) removes the earlier event files returned here, the ones
    ``torch.utils.tensorboard`` names ``events.out.tfevents.*``; nothing else is touched.

    Returns:
        The earlier event files a forced run replaces.

    Raises:
        OutputExistsError: an earlier run's log or events without ``force`` (exit 5).
    """
    from apr.errors import OutputExistsError

    folder = Path(run_dir)
    events = sorted((folder / "tb").glob("events.out.tfevents.*")) if tensorboard else []
    existing = [p for p in (log_path(folder),) if p.exists()] + events
    if existing and not force:
        raise OutputExistsError(
            f"--run-dir already holds an earlier run's metrics ({existing[0].name})", path=os.fspath(folder),
            field="--run-dir", hint="pick a new --run-dir, or pass --force to replace them")
    return events


def log_path(run_dir: str | os.PathLike[str]) -> Path:
    """``RUN_DIR/metrics.jsonl``."""
    return Path(run_dir) / LOG_NAME


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = [
    "LOG_NAME", "METRIC_FIELDS", "LogReading", "MetricRecord", "MetricsLogWriter", "check_log_targets",
    "continue_log", "log_path", "parse_lines", "read_log", "record_from_mapping",
]
