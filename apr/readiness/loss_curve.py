"""The loss-curve PNG beside a model card (the optional ``[plot]`` extra: matplotlib).

Training loss (each logged interval) and validation loss (each evaluation) against tokens seen, on
a log-scaled x axis, as nanoGPT-style runs are usually compared across sizes. Drawn with the Agg
canvas on a `matplotlib.figure.Figure` (no pyplot, no global state, no display needed) into
memory, then written atomically, so a failure never leaves half a PNG where a good one was.
"""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Sequence

from apr.train.metrics_log import MetricRecord


def has_matplotlib() -> bool:
    """Whether the ``[plot]`` extra is installed (found, not imported: cheap)."""
    return importlib.util.find_spec("matplotlib") is not None


def curve_points(records: Sequence[MetricRecord]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train, val) points ``(tokens_seen, loss)`` a log x axis can show (tokens_seen > 0; pure).

    Example:
        >>> from apr.train.metrics_log import MetricRecord
        >>> rows = [MetricRecord(0, None, None, 6.0, None, None, None, 0, 0.1),
        ...         MetricRecord(10, 0, 5.0, None, 1e-3, 0.5, 100.0, 640, 1.0),
        ...         MetricRecord(10, 0, 5.1, 4.9, 1e-3, None, None, 640, 1.2)]
        >>> curve_points(rows)
        ([(640, 5.0)], [(640, 4.9)])
    """
    train = [(r.tokens_seen, r.train_loss) for r in records
             if not r.is_evaluation and r.train_loss is not None and r.tokens_seen > 0]
    val = [(r.tokens_seen, r.val_loss) for r in records if r.is_evaluation and r.tokens_seen > 0]
    return train, val  # type: ignore[return-value]


def render_png(records: Sequence[MetricRecord], *, title: str) -> bytes:
    """The PNG's bytes (needs matplotlib).

    Raises:
        ValueError: nothing to plot (no row past zero tokens).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train, val = curve_points(records)
    if not train and not val:
        raise ValueError("no training or validation loss past zero tokens to plot")
    figure = Figure(figsize=(7.0, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if train:
        axes.plot([x for x, _ in train], [y for _, y in train], label="training loss", color="tab:blue", linewidth=1.2)
    if val:
        axes.plot([x for x, _ in val], [y for _, y in val], label="validation loss", color="tab:orange",
                  marker="o", linewidth=1.5)
    axes.set_xscale("log")
    axes.set_xlabel("tokens seen")
    axes.set_ylabel("loss (nats per token)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi="figure")  # 700 x 420 whatever the user's savefig.dpi
    return buffer.getvalue()


def write_png(records: Sequence[MetricRecord], path: str | os.PathLike[str], *, title: str) -> None:
    """`render_png`, written atomically to ``path``."""
    from apr.format.atomic import atomic_write

    data = render_png(records, title=title)
    with atomic_write(path) as handle:
        handle.write(data)


__all__ = ["curve_points", "has_matplotlib", "render_png", "write_png"]
