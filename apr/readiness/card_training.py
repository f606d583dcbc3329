"""`apr card`'s training part: find the run's log, check the outputs, draw the curve if it can.

Everything is checked before anything is written (the log is found and read, the PNG's path passes
the output policy); then the PNG is written first, so the card never links a file that is not there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from apr.readiness.training_results import (
    PLOT_HINT,
    TrainingResults,
    checkpoint_step,
    curve_path,
    evaluation_rows,
    find_metrics_log,
)
from apr.train.metrics_log import MetricRecord, read_log



@dataclass(frozen=True, slots=True)
class TrainingCardPlan:
    """The rows the card shows and the curve it may draw."""

    results: TrainingResults
    records: tuple[MetricRecord, ...]  # every trusted row up to the checkpoint's step (for the curve)
    curve_path: Path
    title: str


def plan_training_results(checkpoint: str | os.PathLike[str], card: str | os.PathLike[str], *,
                          run_dir: str | os.PathLike[str] | None, force: bool,
                          inputs: Sequence[str | os.PathLike[str] | None] = ()) -> TrainingCardPlan | None:
    """Read the checkpoint's training history; None when it has none and ``run_dir`` was not given.

    Raises:
        AprFileNotFoundError: ``run_dir`` given but holds no ``metrics.jsonl`` (exit 3).
        OutputExistsError, OutputIsInputError: the curve's PNG exists without ``force``, or is an input.
    """
    from apr.format import open_file
    from apr.format.outputs import check_file_output

    log = find_metrics_log(checkpoint, run_dir)
    if log is None:
        return None
    with open_file(checkpoint) as reader:
        metadata = dict(reader.metadata)
    up_to = checkpoint_step(metadata)
    everything = read_log(log).records
    records = tuple(r for r in everything if up_to is None or r.step <= up_to)  # the curve's
    png = curve_path(card)
    check_file_output(card, force=force, inputs=(log,))  # the card never replaces the log it reads
    check_file_output(png, force=force, inputs=(*inputs, log))
    name = metadata.get("name") or Path(checkpoint).name.removesuffix(".apr")
    results = TrainingResults(source=os.fspath(log), rows=evaluation_rows(everything, up_to))
    return TrainingCardPlan(results=results, records=records, curve_path=png, title=f"{name}: loss")


def write_training_curve(plan: TrainingCardPlan) -> TrainingResults:
    """Draw the PNG when matplotlib is there and there is something to draw; say why not otherwise."""
    from apr.readiness.loss_curve import curve_points, has_matplotlib, write_png

    if not any(curve_points(plan.records)):
        return replace(plan.results, curve_missing_reason="no loss was logged past zero tokens")
    if not has_matplotlib():
        return replace(plan.results, curve_missing_reason=f"add it with `{PLOT_HINT}` and run `apr card` again")
    write_png(plan.records, plan.curve_path, title=plan.title)
    return replace(plan.results, curve=plan.curve_path.name)


__all__ = ["TrainingCardPlan", "plan_training_results", "write_training_curve"]
