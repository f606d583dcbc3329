"""Exact values for apr/readiness/card_training.py (issue 23): which rows and points `apr card` takes
from a run's log, where the curve goes, and what the card says when it cannot draw one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apr.errors import OutputExistsError
from apr.readiness import card_training as ct
from apr.readiness import loss_curve
from apr.readiness.training_results import TrainingResults
from apr.train.metrics_log import MetricRecord
from tests.readiness.builders import build_checkpoint


def _row(step, epoch, train, val, tokens):
    return MetricRecord(step=step, epoch=epoch, train_loss=train, val_loss=val, lr=None, grad_norm=None,
                        tokens_per_sec=None, tokens_seen=tokens, wall_s=0.0)


ROWS = [_row(0, None, None, 6.0, 0), _row(1, 0, 5.5, None, 64), _row(2, 0, 5.0, 4.9, 128),
        _row(3, 1, 4.5, None, 192), _row(4, 1, 4.0, 3.9, 256)]


def _run(tmp_path: Path, overrides) -> Path:
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "metrics.jsonl").write_bytes(b"".join(r.to_line() for r in ROWS))
    return build_checkpoint(run / "ckpt" / "epoch-000.apr", overrides=overrides, tokenizer=None)


def test_plan_stops_at_the_checkpoint_step_and_names_the_outputs(tmp_path: Path):
    checkpoint = _run(tmp_path, {"training": {"step": 2}, "name": None})
    card = tmp_path / "out" / "card.md"
    card.parent.mkdir()
    plan = ct.plan_training_results(checkpoint, card, run_dir=None, force=False)
    assert plan is not None
    assert plan.records == tuple(ROWS[:3])
    assert plan.results.rows == (ROWS[0], ROWS[2])
    assert plan.results.source == str(tmp_path / "run" / "metrics.jsonl")
    assert plan.results.curve is None and plan.results.curve_missing_reason is None
    assert plan.curve_path == tmp_path / "out" / "card-loss.png"
    assert plan.title == "epoch-000: loss"


def test_plan_without_a_step_takes_everything_and_the_name(tmp_path: Path):
    checkpoint = _run(tmp_path, {"training": None, "name": "tiny"})
    plan = ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=tmp_path / "run", force=False)
    assert plan is not None
    assert plan.records == tuple(ROWS)
    assert plan.results.rows == (ROWS[0], ROWS[2], ROWS[4])
    assert plan.title == "tiny: loss"


def test_plan_without_a_log_is_none_and_an_existing_png_needs_force(tmp_path: Path):
    lone = build_checkpoint(tmp_path / "lone.apr", tokenizer=None)
    assert ct.plan_training_results(lone, tmp_path / "c.md", run_dir=None, force=False) is None
    checkpoint = _run(tmp_path, None)
    (tmp_path / "c-loss.png").write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=None, force=False)
    (tmp_path / "c-loss.png").unlink()
    (tmp_path / "c.md").write_text("old")
    with pytest.raises(OutputExistsError):
        ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=None, force=False)
    assert ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=None, force=True) is not None
    assert (tmp_path / "c.md").read_text() == "old"


def _plan(tmp_path: Path, records) -> ct.TrainingCardPlan:
    results = TrainingResults(source="metrics.jsonl", rows=(ROWS[0],))
    return ct.TrainingCardPlan(results=results, records=tuple(records), curve_path=tmp_path / "c-loss.png", title="t")


def test_nothing_past_zero_tokens_says_so_and_draws_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(loss_curve, "has_matplotlib", lambda: True)
    monkeypatch.setattr(loss_curve, "write_png", lambda *a, **k: pytest.fail("drew a curve"))
    done = ct.write_training_curve(_plan(tmp_path, [ROWS[0]]))
    assert done == TrainingResults(source="metrics.jsonl", rows=(ROWS[0],),
                                   curve_missing_reason="no loss was logged past zero tokens")


def test_without_matplotlib_the_card_says_how_to_add_it(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(loss_curve, "has_matplotlib", lambda: False)
    monkeypatch.setattr(loss_curve, "write_png", lambda *a, **k: pytest.fail("drew a curve"))
    done = ct.write_training_curve(_plan(tmp_path, ROWS))
    assert done == TrainingResults(
        source="metrics.jsonl", rows=(ROWS[0],),
        curve_missing_reason="add it with `pip install 'apr-contracts[plot]'` and run `apr card` again")


def test_with_matplotlib_the_png_is_written_and_linked(tmp_path: Path, monkeypatch):
    calls = []
    monkeypatch.setattr(loss_curve, "has_matplotlib", lambda: True)
    monkeypatch.setattr(loss_curve, "write_png", lambda records, path, *, title: calls.append((records, path, title)))
    plan = _plan(tmp_path, ROWS[1:2])
    done = ct.write_training_curve(plan)
    assert calls == [(tuple(ROWS[1:2]), tmp_path / "c-loss.png", "t")]
    assert done == TrainingResults(source="metrics.jsonl", rows=(ROWS[0],), curve="c-loss.png")


def test_force_replaces_outputs_but_never_an_input(tmp_path: Path):
    from apr.errors import OutputIsInputError

    checkpoint = _run(tmp_path, None)
    (tmp_path / "c-loss.png").write_bytes(b"old")
    (tmp_path / "c.md").write_text("old")
    assert ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=None, force=True) is not None
    # the PNG may not be one of the command's inputs, nor the card the log it reads, even with --force
    with pytest.raises(OutputIsInputError):
        ct.plan_training_results(checkpoint, tmp_path / "c.md", run_dir=None, force=True,
                                 inputs=(tmp_path / "c-loss.png",))
    with pytest.raises(OutputIsInputError):
        ct.plan_training_results(checkpoint, tmp_path / "run" / "metrics.jsonl", run_dir=None, force=True)
