"""Exact values for apr/readiness/training_results.py and the pure part of loss_curve.py (issue 23):
the card's "Training results" section, where its log is found, and which rows and points it shows.
The Markdown a card holds and the paths it names are interface, so each test states them exactly.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from apr.readiness import loss_curve
from apr.readiness import training_results as tr
from apr.train.metrics_log import MetricRecord


def _row(step, epoch, train, val, tokens=0):
    return MetricRecord(step=step, epoch=epoch, train_loss=train, val_loss=val, lr=None, grad_norm=None,
                        tokens_per_sec=None, tokens_seen=tokens, wall_s=0.0)


def test_constants():
    assert tr.CURVE_SUFFIX == "-loss.png"
    assert tr.PLOT_HINT == "pip install 'apr-contracts[plot]'"


def test_find_metrics_log_prefers_run_dir_then_sidecar_then_run_folder(tmp_path: Path):
    ckpt = tmp_path / "run" / "ckpt"
    ckpt.mkdir(parents=True)
    checkpoint = ckpt / "epoch-001.apr"
    # nothing anywhere: None
    assert tr.find_metrics_log(checkpoint, None) is None
    # the run folder of a checkpoint in RUN/ckpt/
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    assert tr.find_metrics_log(checkpoint, None) == tmp_path / "run" / "metrics.jsonl"
    # a sidecar wins over the run folder
    (ckpt / "epoch-001.metrics.jsonl").write_text("")
    assert tr.find_metrics_log(checkpoint, None) == ckpt / "epoch-001.metrics.jsonl"
    # --run-dir wins over both, whether or not its log exists
    assert tr.find_metrics_log(checkpoint, tmp_path / "other") == tmp_path / "other" / "metrics.jsonl"
    assert tr.find_metrics_log(str(checkpoint), str(tmp_path)) == tmp_path / "metrics.jsonl"


def test_find_metrics_log_needs_a_ckpt_folder_and_files(tmp_path: Path):
    (tmp_path / "run" / "other").mkdir(parents=True)
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    assert tr.find_metrics_log(tmp_path / "run" / "other" / "m.apr", None) is None
    # a folder named like the sidecar or the log is not a log
    (tmp_path / "m.metrics.jsonl").mkdir()
    assert tr.find_metrics_log(tmp_path / "m.apr", None) is None
    (tmp_path / "r" / "ckpt").mkdir(parents=True)
    (tmp_path / "r" / "metrics.jsonl").mkdir()
    assert tr.find_metrics_log(tmp_path / "r" / "ckpt" / "e.apr", None) is None


@pytest.mark.parametrize(("metadata", "step"), [
    ({"training": {"step": 5}}, 5), ({"training": {"step": 0}}, 0), ({"training": {"step": True}}, None),
    ({"training": {"step": "5"}}, None), ({"training": {"step": 5.0}}, None), ({"training": [("step", 5)]}, None),
    ({"training": {}}, None), ({}, None),
])
def test_checkpoint_step(metadata, step):
    assert tr.checkpoint_step(metadata) == step


def test_evaluation_rows_stop_at_the_step():
    rows = [_row(0, None, None, 6.0), _row(5, 0, 5.5, None), _row(10, 0, 5.0, 4.9), _row(20, 1, 4.0, 3.9)]
    assert tr.evaluation_rows(rows) == (rows[0], rows[2], rows[3])
    assert tr.evaluation_rows(rows, 10) == (rows[0], rows[2])
    assert tr.evaluation_rows(rows, 9) == (rows[0],)
    assert tr.evaluation_rows(rows, 0) == (rows[0],)


def test_perplexity():
    assert tr.perplexity(1.0) == math.exp(1.0)
    assert tr.perplexity(0.0) == 1.0
    assert tr.perplexity(700.0) == math.exp(700.0)
    assert tr.perplexity(800.0) == math.exp(700.0)


def test_table_lines_exact():
    rows = [_row(0, None, None, 2.0), _row(50, 0, 5.25, 4.5), _row(60, 1, 1.0, None)]
    assert tr.table_lines(rows) == [
        "| epoch | step | train loss | validation loss | perplexity |",
        "|---:|---:|---:|---:|---:|",
        f"| init | 0 | — | 2.0000 | {math.exp(2.0):.2f} |",
        "| 0 | 50 | 5.2500 | 4.5000 | 90.02 |",
        "| 1 | 60 | 1.0000 | — | — |",
    ]
    assert tr.table_lines([]) == ["| epoch | step | train loss | validation loss | perplexity |",
                                  "|---:|---:|---:|---:|---:|"]


def test_section_lines_exact():
    row = _row(50, 0, 5.25, 4.5)
    table = tr.table_lines([row])
    source = "From `metrics.jsonl` (one row per evaluation; perplexity = exp(validation loss))."
    with_curve = tr.TrainingResults(source="/run/metrics.jsonl", rows=(row,), curve="card-loss.png",
                                    curve_missing_reason="ignored")
    assert tr.section_lines(with_curve) == [
        "## Training results", "", *table, "", source, "",
        "![Training and validation loss against tokens seen](card-loss.png)", ""]
    missing = tr.TrainingResults(source="/run/metrics.jsonl", rows=(), curve_missing_reason="no matplotlib")
    assert tr.section_lines(missing) == [
        "## Training results", "", "No evaluation was recorded before this checkpoint.", "", source, "",
        "_No loss curve: no matplotlib._", ""]
    bare = tr.TrainingResults(source="metrics.jsonl", rows=(row,))
    assert tr.section_lines(bare) == ["## Training results", "", *table, "", source, ""]


def test_training_results_defaults():
    results = tr.TrainingResults(source="s", rows=())
    assert results.curve is None
    assert results.curve_missing_reason is None


def test_curve_path():
    assert tr.curve_path("out/card.md") == Path("out/card-loss.png")
    assert tr.curve_path(Path("card.txt")) == Path("card.txt-loss.png")


def test_curve_points_keep_positive_tokens_and_split_train_and_val():
    rows = [_row(0, None, None, 6.0, tokens=0), _row(1, 0, 5.5, None, tokens=64), _row(2, 0, None, None, tokens=128),
            _row(3, 0, 5.0, 4.9, tokens=192), _row(4, 0, 4.5, None, tokens=0), _row(5, 1, 4.0, None, tokens=1)]
    assert loss_curve.curve_points(rows) == ([(64, 5.5), (1, 4.0)], [(192, 4.9)])
    assert loss_curve.curve_points([]) == ([], [])


def test_has_matplotlib_is_whether_it_is_found():
    assert loss_curve.has_matplotlib() is (importlib.util.find_spec("matplotlib") is not None)


def test_curve_points_keep_a_validation_row_at_one_token():
    assert loss_curve.curve_points([_row(1, 0, None, 4.0, tokens=1)]) == ([], [(1, 4.0)])


def test_has_matplotlib_asks_for_matplotlib_by_its_name(monkeypatch):
    asked = []

    def find_spec(name, *args, **kwargs):
        asked.append(name)
        return object() if name == "matplotlib" else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert loss_curve.has_matplotlib() is True
    assert asked == ["matplotlib"]
