"""apr/readiness/loss_curve.py's drawing (issue 23): `render_png` and `write_png`, with matplotlib
(the ``[plot]`` extra). What a reader of the card sees is checked on the image itself (a PNG of the
documented size that decodes, the two curves' colours present, the background where no curve is);
what the image cannot show exactly (which series carries which label, style and points; the axes'
scale, labels and title) is read from the figure the function drew, recorded as it is made. No
byte-exact PNG: matplotlib's encoder is not this project's interface.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from apr.readiness import loss_curve
from apr.train.metrics_log import MetricRecord

matplotlib = pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from matplotlib import colors  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDTH, HEIGHT = 700, 420  # figsize (7.0, 4.2) inches at 100 dpi


def _row(step: int, train: float | None, val: float | None, tokens: int) -> MetricRecord:
    return MetricRecord(step=step, epoch=0, train_loss=train, val_loss=val, lr=None, grad_norm=None,
                        tokens_per_sec=None, tokens_seen=tokens, wall_s=0.0)


# training rows at 100, 1000, 10000 tokens; evaluations at 1000 and 10000; one row at zero tokens
# (not drawable on a log axis) that must not appear anywhere
ROWS = [_row(0, None, 6.0, 0), _row(1, 5.0, None, 100), _row(2, 4.0, None, 1000), _row(2, None, 4.5, 1000),
        _row(3, 3.0, None, 10000), _row(3, None, 3.5, 10000)]
TRAIN_ONLY = [r for r in ROWS if not r.is_evaluation]
VAL_ONLY = [r for r in ROWS if r.is_evaluation]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every Figure `render_png` makes, recorded (the function imports Figure when it runs)."""
    import matplotlib.figure

    made: list = []

    class Recorded(matplotlib.figure.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(matplotlib.figure, "Figure", Recorded)
    return made


def _image(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _near(pixels: np.ndarray, name: str) -> np.ndarray:
    return np.abs(pixels - np.array(colors.to_rgb(name))).max(axis=-1) < 0.02


def test_the_png_has_the_documented_size_and_decodes():
    data = loss_curve.render_png(ROWS, title="run")
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)


def test_both_curves_are_drawn_in_their_colours_on_a_white_background():
    pixels = _image(loss_curve.render_png(ROWS, title="run"))
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    blue, orange = _near(pixels, "tab:blue"), _near(pixels, "tab:orange")
    assert blue.sum() > 20 and orange.sum() > 20
    # the corners are the figure's white background: no curve, no grid reaches them
    for corner in (pixels[:5, :5], pixels[:5, -5:], pixels[-5:, :5], pixels[-5:, -5:]):
        assert np.all(corner == 1.0)


@pytest.mark.parametrize(("rows", "present", "absent"), [(TRAIN_ONLY, "tab:blue", "tab:orange"),
                                                         (VAL_ONLY, "tab:orange", "tab:blue")])
def test_one_curve_alone_is_drawn_and_the_other_is_not(rows, present, absent):
    pixels = _image(loss_curve.render_png(rows, title="run"))
    assert _near(pixels, present).sum() > 20
    assert _near(pixels, absent).sum() == 0


def test_the_figure_holds_exactly_the_points_labels_and_styles(drawn):
    loss_curve.render_png(ROWS, title="the run's title")
    assert len(drawn) == 1
    figure = drawn[0]
    assert tuple(figure.get_size_inches()) == (7.0, 4.2) and figure.dpi == 100
    assert isinstance(figure.canvas, FigureCanvasAgg)  # the Agg canvas, no pyplot
    (axes,) = figure.axes
    train, val = axes.get_lines()
    assert (train.get_label(), train.get_color(), train.get_linewidth(), train.get_marker()) == \
        ("training loss", "tab:blue", 1.2, "None")
    assert list(train.get_xdata()) == [100, 1000, 10000] and list(train.get_ydata()) == [5.0, 4.0, 3.0]
    assert (val.get_label(), val.get_color(), val.get_linewidth(), val.get_marker()) == \
        ("validation loss", "tab:orange", 1.5, "o")
    assert list(val.get_xdata()) == [1000, 10000] and list(val.get_ydata()) == [4.5, 3.5]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "linear"
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == \
        ("tokens seen", "loss (nats per token)", "the run's title")
    legend = axes.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["training loss", "validation loss"]


def test_the_grid_is_on_for_major_and_minor_ticks_and_faint(drawn):
    loss_curve.render_png(ROWS, title="t")
    axes = drawn[0].axes[0]
    # the log x axis has minor ticks (2..9 x each decade), the linear y axis major ones only
    for ticks in (axes.xaxis.get_major_ticks(), axes.xaxis.get_minor_ticks(), axes.yaxis.get_major_ticks()):
        lines = [tick.gridline for tick in ticks]
        assert lines and all(line.get_visible() and line.get_alpha() == 0.3 for line in lines)


def test_a_single_series_draws_one_line(drawn):
    loss_curve.render_png(TRAIN_ONLY, title="t")
    loss_curve.render_png(VAL_ONLY, title="t")
    assert [[line.get_label() for line in f.axes[0].get_lines()] for f in drawn] == \
        [["training loss"], ["validation loss"]]


def test_the_layout_is_tight(drawn):
    """tight_layout ran: running it again moves nothing (the default margins would move)."""
    loss_curve.render_png(ROWS, title="t")
    figure = drawn[0]
    before = figure.axes[0].get_position().bounds
    figure.tight_layout()
    assert figure.axes[0].get_position().bounds == pytest.approx(before, abs=1e-9)
    params = figure.subplotpars
    assert (params.left, params.bottom, params.right, params.top) != pytest.approx((0.125, 0.11, 0.9, 0.88))


def test_a_png_whatever_the_users_savefig_format():
    """savefig is told PNG: a matplotlibrc asking for SVG by default does not change the file."""
    with matplotlib.rc_context({"savefig.format": "svg"}):
        data = loss_curve.render_png(ROWS, title="t")
    assert data.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("rows", [[], [_row(0, 6.0, None, 0), _row(0, None, 6.0, 0)], [_row(1, None, None, 64)]])
def test_nothing_past_zero_tokens_is_refused(rows, drawn):
    with pytest.raises(ValueError) as info:
        loss_curve.render_png(rows, title="t")
    assert str(info.value) == "no training or validation loss past zero tokens to plot"
    assert drawn == []


def test_write_png_writes_the_rendered_png_atomically(tmp_path: Path, drawn):
    target = tmp_path / "card-loss.png"
    target.write_bytes(b"an older curve")
    loss_curve.write_png(ROWS, target, title="written")
    data = target.read_bytes()
    # compared by digest: pytest's diff of two different 36 kB PNGs takes minutes
    expected = loss_curve.render_png(ROWS, title="written")
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert drawn[0].axes[0].get_title() == "written"
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    assert sorted(os.listdir(tmp_path)) == ["card-loss.png"]  # no temporary left beside it


def test_write_png_with_nothing_to_draw_leaves_the_old_file(tmp_path: Path):
    target = tmp_path / "card-loss.png"
    target.write_bytes(b"an older curve")
    with pytest.raises(ValueError):
        loss_curve.write_png([_row(0, 6.0, None, 0)], target, title="t")
    assert target.read_bytes() == b"an older curve"
    assert sorted(os.listdir(tmp_path)) == ["card-loss.png"]
    loss_curve.write_png(ROWS, str(tmp_path / "as-a-string.png"), title="t")
    assert (tmp_path / "as-a-string.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_size_and_style_do_not_depend_on_the_users_matplotlibrc(drawn):
    """The size and the line widths are set explicitly: a matplotlibrc with another figure or
    savefig dpi, figure size or line width gives the same 700 x 420 PNG and the same lines."""
    rc = {"figure.dpi": 150, "savefig.dpi": 200, "lines.linewidth": 3.0, "figure.figsize": (3.0, 2.0)}
    with matplotlib.rc_context(rc):
        data = loss_curve.render_png(ROWS, title="t")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (WIDTH, HEIGHT)
    train, val = drawn[0].axes[0].get_lines()
    assert (train.get_linewidth(), val.get_linewidth(), val.get_marker()) == (1.2, 1.5, "o")
    assert drawn[0].dpi == 100


def test_drawing_the_curve_warns_about_nothing(tmp_path: Path):
    """`apr card` prints what it did; a matplotlib warning (a grid switched off while styled, a
    layout that cannot be tightened) would be noise on its stderr, so drawing must raise none."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_curve.write_png(ROWS, tmp_path / "c.png", title="t")
        loss_curve.render_png(VAL_ONLY, title="t")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_SIGNATURE)
