"""Contract apr-metrics-log-v1: metrics.jsonl, its crash safety, continue_log, TensorBoard, the card."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apr.format import open_file
from apr.train import metrics_log
from apr.train.metrics_log import METRIC_FIELDS, MetricRecord, MetricsLogWriter, parse_lines, read_log
from train_fixtures import TINY_RUN, run_cli

REPO = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment of a child, read when it starts: a mutant applied to this test (and named in
    APR_CONTRACTS_MUTANT) reaches the child, which installs it (tests/train/metrics_kill_child.py)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

# --- strategies ---------------------------------------------------------------------------------

_loss = st.floats(min_value=0.01, max_value=20.0, allow_nan=False)
_maybe_loss = st.none() | _loss


@st.composite
def logs(draw: st.DrawFn, min_size: int = 0) -> list[MetricRecord]:
    """Rows with non-decreasing steps, training and evaluation rows mixed (as a run writes them)."""
    n = draw(st.integers(min_size, 12))
    step, rows = 0, []
    for _ in range(n):
        step += draw(st.integers(0, 5))
        evaluation = draw(st.booleans())
        rows.append(MetricRecord(
            step=step, epoch=draw(st.none() | st.integers(0, 50)), train_loss=draw(_maybe_loss),
            val_loss=draw(_loss) if evaluation else None, lr=draw(st.none() | st.floats(0, 1)),
            grad_norm=None if evaluation else draw(st.floats(0, 100)), tokens_per_sec=None if evaluation else 10.0,
            tokens_seen=step * 512, wall_s=draw(st.floats(0, 1e6))))
    return rows


def _write(path: Path, rows: list[MetricRecord]) -> bytes:
    data = b"".join(r.to_line() for r in rows)
    path.write_bytes(data)
    return data


# --- FALSIFY-METRICS-001: a real SIGKILL leaves valid complete lines -----------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-001")
def test_falsify_metrics_001_sigkill_writer_keeps_every_reported_row(tmp_path: Path) -> None:
    rng = random.Random(24)
    for attempt in range(3):
        log = tmp_path / f"kill-{attempt}.jsonl"
        child = subprocess.Popen([sys.executable, "-m", "tests.train.metrics_kill_child", "writer", str(log)],
                                 cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None
        target, reported = rng.randint(5, 400), 0
        while reported < target:
            line = child.stdout.readline()
            assert line, child.stderr.read().decode() if child.stderr else "the child died"
            reported = int(line)
        time.sleep(rng.random() * 0.02)  # somewhere in the middle of a later write
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()  # type: ignore[union-attr]
        assert child.returncode == -signal.SIGKILL
        reading = read_log(log)
        assert reading.problem is None or "cut short" in reading.problem
        assert len(reading.records) >= reported
        assert [r.step for r in reading.records] == list(range(1, len(reading.records) + 1))


@pytest.mark.falsifies("FALSIFY-METRICS-001")
def test_falsify_metrics_001_sigkilled_pretrain_keeps_its_history(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                                  tokenizer_dir: Path, config_path: Path) -> None:
    run_dir = tmp_path / "killed"
    argv = ["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir), "--tokenizer", str(tokenizer_dir),
            "--config", str(config_path), "--run-dir", str(run_dir), "--mode", "from-scratch", "--lr", "3e-3",
            "--warmup-steps", "2", "--num-steps", "2000", "--steps-per-epoch", "5", "--log-every-steps", "2",
            *TINY_RUN, "--json"]
    child = subprocess.Popen([sys.executable, "-m", "tests.train.metrics_kill_child", "pretrain", *argv],
                             cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = run_dir / "ckpt" / "epoch-001.apr"
    deadline = time.monotonic() + 240
    while not second.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    reading = read_log(run_dir / "metrics.jsonl")
    assert reading.problem is None or "cut short" in reading.problem
    training = {r.step for r in reading.records if not r.is_evaluation}
    evaluations = {r.step for r in reading.records if r.is_evaluation}
    assert {2, 4, 6, 8, 10} <= training  # every interval of the first two epochs
    assert {0, 5} <= evaluations  # the starting weights and epoch 0
    assert len(reading.records) < 2000  # killed mid-run, not finished


# --- FALSIFY-METRICS-002: damage ends the trusted part ----------------------------------------------

_DAMAGE = st.sampled_from(["cut", "garbage", "wrong-type", "step-back", "long"])


@pytest.mark.falsifies("FALSIFY-METRICS-002")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=logs(min_size=1), damage=_DAMAGE, data=st.data())
def test_falsify_metrics_002_damaged_log_read_up_to_the_damage(tmp_path: Path, rows: list[MetricRecord],
                                                                damage: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(rows) - 1), label="damaged row")
    lines = [r.to_line() for r in rows]
    trusted = rows[:at]
    if damage == "cut":  # the last line written, cut at a random byte
        lines = lines[:at + 1]
        lines[at] = lines[at][:data.draw(st.integers(0, len(lines[at]) - 2), label="cut")]
    elif damage == "garbage":
        lines.insert(at, data.draw(st.sampled_from([b"\x00\xff garbage\n", b"{\"step\": 1\n", b"[1, 2]\n", b"\n"])))
    elif damage == "wrong-type":
        document = json.loads(lines[at])
        document[data.draw(st.sampled_from(METRIC_FIELDS))] = "a string"
        lines[at] = (json.dumps(document) + "\n").encode()
    elif damage == "step-back":  # a valid row ahead of the next one, which then goes back
        ahead = MetricRecord(step=rows[at].step + 7, epoch=0, train_loss=1.0, val_loss=None, lr=None, grad_norm=None,
                             tokens_per_sec=None, tokens_seen=0, wall_s=0.0)
        lines.insert(at, ahead.to_line())
        trusted = [*rows[:at], ahead]
        at += 1
    else:
        lines.insert(at, b"1" * 70_000 + b"\n")
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b"".join(lines))
    before = log.read_bytes()
    reading = read_log(log)
    assert list(reading.records) == trusted
    if damage == "cut" and lines[at] == b"":
        assert reading.problem is None  # nothing of the row was written: the file simply ends
    else:
        assert reading.problem is not None and reading.line == at + 1
        assert reading.offset == sum(len(line) for line in lines[:at])
    assert log.read_bytes() == before


def test_a_damaged_log_warns_with_its_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "metrics.jsonl"
    row = MetricRecord(step=1, epoch=0, train_loss=2.0, val_loss=None, lr=0.1, grad_norm=1.0, tokens_per_sec=5.0,
                       tokens_seen=64, wall_s=0.5)
    log.write_bytes(row.to_line() + b"{not json}\n" + row.to_line())
    with caplog.at_level("WARNING"):
        reading = read_log(log)
    assert len(reading.records) == 1
    assert "line 2" in caplog.text and "nothing after" in caplog.text


def test_the_row_text_is_exact() -> None:
    row = MetricRecord(step=10, epoch=1, train_loss=2.5, val_loss=None, lr=0.001, grad_norm=float("nan"),
                       tokens_per_sec=100.0, tokens_seen=640, wall_s=1.25)
    assert row.to_line() == (b'{"step": 10, "epoch": 1, "train_loss": 2.5, "val_loss": null, "lr": 0.001, '
                             b'"grad_norm": null, "tokens_per_sec": 100.0, "tokens_seen": 640, "wall_s": 1.25}\n')
    assert parse_lines([row.to_line()]).records[0].grad_norm is None


# --- FALSIFY-METRICS-003: continue_log ---------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-003")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=logs(), resume_step=st.integers(0, 70), tail=st.sampled_from([b"", b'{"step": 3', b"garbage\n"]))
def test_falsify_metrics_003_continue_log_keeps_exactly_the_rows_up_to_the_step(
        tmp_path: Path, rows: list[MetricRecord], resume_step: int, tail: bytes) -> None:
    log = tmp_path / "metrics.jsonl"
    log.unlink(missing_ok=True)
    data = _write(log, rows)
    log.write_bytes(data + tail)
    inode = log.stat().st_ino
    kept = metrics_log.continue_log(log, resume_step)  # looked up as the resume code will
    expected = [r for r in rows if r.step <= resume_step]
    assert list(kept) == expected
    assert log.read_bytes() == b"".join(r.to_line() for r in expected)
    assert log.stat().st_ino != inode  # a new file renamed over, never the old one rewritten
    with MetricsLogWriter(log, fresh=False) as writer:  # the resumed run appends after them
        writer.write(MetricRecord(step=resume_step + 1, epoch=None, train_loss=1.0, val_loss=None, lr=None,
                                  grad_norm=None, tokens_per_sec=None, tokens_seen=0, wall_s=0.0))
    assert [r.step for r in read_log(log).records] == [*(r.step for r in expected), resume_step + 1]


@pytest.mark.falsifies("FALSIFY-METRICS-003")
def test_falsify_metrics_003_continue_log_of_no_log_creates_nothing(tmp_path: Path) -> None:
    assert metrics_log.continue_log(tmp_path / "metrics.jsonl", 10) == ()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="resume_step"):
        metrics_log.continue_log(tmp_path / "metrics.jsonl", -1)


# --- FALSIFY-METRICS-004: the log is the run ---------------------------------------------------------

def _sidecars(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "ckpt").glob("epoch-*.metadata.json"))]


@pytest.mark.falsifies("FALSIFY-METRICS-004")
def test_falsify_metrics_004_every_step_and_every_evaluation_of_a_short_run(short_run: dict) -> None:
    run_dir = Path(short_run["run_dir"])
    assert short_run["metrics_log"] == str(run_dir / "metrics.jsonl")
    text = (run_dir / "metrics.jsonl").read_bytes()
    assert all(list(json.loads(line)) == list(METRIC_FIELDS) for line in text.splitlines())
    reading = read_log(run_dir / "metrics.jsonl")
    assert reading.problem is None
    evaluations = [r for r in reading.records if r.is_evaluation]
    assert evaluations[0].step == 0 and evaluations[0].val_loss == short_run["init_val_loss"]
    sidecars = _sidecars(run_dir)
    assert [(r.epoch, r.step, r.train_loss, r.val_loss) for r in evaluations[1:]] == [
        (s["epoch"], s["step"], s["train_loss"], s["val_loss"]) for s in sidecars]
    training = [r for r in reading.records if not r.is_evaluation]
    assert [r.step for r in training] == [1, 2, 3, 4]  # 4 steps: default interval 1
    assert [r.lr for r in training] == [m["lr"] for m in short_run["per_step_metrics"]]


@pytest.mark.falsifies("FALSIFY-METRICS-004")
def test_falsify_metrics_004_intervals_and_evaluations(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                      tokenizer_dir: Path, config_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    code, report = run_cli(["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir), "--tokenizer",
                            str(tokenizer_dir), "--config", str(config_path), "--run-dir", str(run_dir), "--mode",
                            "from-scratch", "--lr", "3e-3", "--warmup-steps", "2", "--num-steps", "10",
                            "--steps-per-epoch", "5", "--log-every-steps", "3", *TINY_RUN, "--json"], capsys)
    assert code == 0 and report is not None
    records = read_log(run_dir / "metrics.jsonl").records
    steps = report["per_step_metrics"]
    training = [r for r in records if not r.is_evaluation]
    assert [(r.step, r.epoch) for r in training] == [(3, 0), (6, 1), (9, 1), (10, 1)]  # the last step ends one
    for row, first in zip(training, (0, 3, 6, 9), strict=True):
        window = steps[first:row.step]
        assert row.train_loss == pytest.approx(sum(m["train_loss"] for m in window) / len(window), rel=1e-12)
        assert (row.lr, row.grad_norm, row.tokens_seen) == (steps[row.step - 1]["lr"], steps[row.step - 1]["grad_norm"],
                                                            steps[row.step - 1]["tokens_seen"])
    evaluations = [r for r in records if r.is_evaluation]
    assert [(r.step, r.val_loss) for r in evaluations] == [(0, report["init_val_loss"]),
                                                           *((s["step"], s["val_loss"]) for s in _sidecars(run_dir))]
    assert [r.step for r in records] == sorted(r.step for r in records)
    assert all(b.wall_s >= a.wall_s for a, b in itertools.pairwise(records))
    # a new run into the folder is refused without --force, like its checkpoints
    code, _ = run_cli(["pretrain", "--dataset", str(dataset_dir), "--tokenizer", str(tokenizer_dir), "--config",
                       str(config_path), "--run-dir", str(run_dir), "--num-steps", "1", *TINY_RUN], capsys)
    assert code == 5 and read_log(run_dir / "metrics.jsonl").records == records


# --- FALSIFY-METRICS-010: no checkpoint exists without its evaluation row ----------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-010")
def test_falsify_metrics_010_every_checkpoint_finds_its_row_in_the_log(tmp_path: Path, dataset_dir: Path,
                                                                       val_dir: Path, tokenizer_dir: Path,
                                                                       config_path: Path) -> None:
    """The loop driven event by event as the CLI drives it: after every event (the moments a kill
    can fall between), each epoch checkpoint that exists has its evaluation row in the log already."""
    from apr.train.device import torch_threads
    from apr.train.loop import run_pretrain
    from apr.train.metrics_recorder import MetricsRecorder
    from apr.train.plan import PretrainOptions, plan_pretrain

    run_dir = tmp_path / "run"
    plan = plan_pretrain(PretrainOptions(
        dataset=str(dataset_dir), val_shard=str(val_dir), tokenizer=str(tokenizer_dir), config=str(config_path),
        run_dir=str(run_dir), mode="from-scratch", lr=3e-3, warmup_steps=2, batch_size=8, seq_length=64,
        device="cpu", seed=7, num_steps=5, steps_per_epoch=2))
    run_dir.mkdir()
    log = metrics_log.log_path(run_dir)
    checked: list[str] = []
    with torch_threads(1), MetricsRecorder([MetricsLogWriter(log)], log_every=1, steps_per_epoch=2,
                                           num_steps=5) as recorder:
        for event in run_pretrain(plan):
            # the moment the event arrives, before the CLI records it: a kill can fall here
            rows = read_log(log).records
            for checkpoint in sorted(str(p) for p in (run_dir / "ckpt").glob("epoch-*.apr")):
                with open_file(checkpoint) as reader:
                    training = reader.metadata["training"]
                assert [(r.step, r.epoch, r.val_loss) for r in rows if r.is_evaluation and r.epoch ==
                        training["epoch"]] == [(training["step"], training["epoch"], training["val_loss"])], checkpoint
                checked.append(checkpoint)
            recorder.on_event(event)
    assert sorted(set(checked)) == [str(run_dir / "ckpt" / f"epoch-{k:03d}.apr") for k in range(3)]


# --- FALSIFY-METRICS-005: the card's table is the log ------------------------------------------------

def _table_rows(card: str) -> list[list[str]]:
    section = card.split("## Training results", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def _expected_cells(rows: list[MetricRecord]) -> list[list[str]]:
    def cell(value: float | None, digits: int = 4) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    return [["init" if r.epoch is None else str(r.epoch), str(r.step), cell(r.train_loss), cell(r.val_loss),
             cell(math.exp(r.val_loss), 2)] for r in rows if r.val_loss is not None]


@pytest.mark.falsifies("FALSIFY-METRICS-005")
@settings(max_examples=40, deadline=None)
@given(rows=logs())
def test_falsify_metrics_005_table_rows_are_the_evaluation_rows(rows: list[MetricRecord]) -> None:
    from apr.readiness.training_results import TrainingResults, section_lines

    text = "\n".join(section_lines(TrainingResults(source="metrics.jsonl", rows=tuple(r for r in rows if r.is_evaluation))))
    assert _table_rows(text) == _expected_cells(rows)


@pytest.mark.falsifies("FALSIFY-METRICS-005")
def test_falsify_metrics_005_card_of_an_epoch_stops_at_its_step(tmp_path: Path, short_run: dict, capsys) -> None:
    run_dir = Path(short_run["run_dir"])
    checkpoint = run_dir / "ckpt" / "epoch-001.apr"
    records = list(read_log(run_dir / "metrics.jsonl").records)
    expected = _expected_cells([r for r in records if r.step <= 2])
    assert len(expected) == 3  # init, epoch 0, epoch 1 (epochs 2 and 3 come later)
    for name, extra in (("given", ["--run-dir", str(run_dir)]), ("found", [])):
        card = tmp_path / f"{name}.md"
        code, document = run_cli(["card", str(checkpoint), *extra, "-o", str(card), "--json"], capsys)
        assert code == 0 and document is not None and document["training_results_rows"] == 3
        assert _table_rows(card.read_text()) == expected


def test_card_without_a_log_has_no_section_and_a_missing_run_dir_log_is_exit_3(tmp_path: Path, short_run: dict,
                                                                               capsys) -> None:
    import shutil

    lone = tmp_path / "lone.apr"
    shutil.copyfile(Path(short_run["run_dir"]) / "ckpt" / "epoch-000.apr", lone)
    code, _ = run_cli(["card", str(lone), "-o", str(tmp_path / "c.md")], capsys)
    assert code == 0 and "Training results" not in (tmp_path / "c.md").read_text()
    code, _ = run_cli(["card", str(lone), "--run-dir", str(tmp_path / "nowhere"), "-o", str(tmp_path / "d.md")], capsys)
    assert code == 3 and not (tmp_path / "d.md").exists()


# --- FALSIFY-METRICS-006: TensorBoard reads back the same numbers ------------------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-006")
def test_falsify_metrics_006_tensorboard_events_read_back(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                          tokenizer_dir: Path, config_path: Path, capsys) -> None:
    pytest.importorskip("tensorboard")
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from apr.train.tensorboard_sink import scalars_of

    run_dir = tmp_path / "tb-run"
    code, _ = run_cli(["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir), "--tokenizer",
                       str(tokenizer_dir), "--config", str(config_path), "--run-dir", str(run_dir), "--mode",
                       "from-scratch", "--num-steps", "6", "--steps-per-epoch", "3", "--log-every-steps", "2",
                       "--report-to", "tensorboard", *TINY_RUN, "--json"], capsys)
    assert code == 0
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    expected: dict[str, dict[int, float]] = {}
    for row in read_log(run_dir / "metrics.jsonl").records:
        for tag, value in scalars_of(row).items():
            expected.setdefault(tag, {})[row.step] = float(np.float32(value))
    assert {"train_loss", "val_loss", "lr", "epoch_train_loss"} <= set(expected)
    assert set(accumulator.Tags()["scalars"]) == set(expected)
    for tag, values in expected.items():
        assert {e.step: e.value for e in accumulator.Scalars(tag)} == values, tag
    assert any("run_config" in tag for tag in accumulator.Tags()["tensors"])
    # --force replaces the earlier run's events (and log) instead of mixing two runs in one chart
    code, _ = run_cli(["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir), "--tokenizer",
                       str(tokenizer_dir), "--config", str(config_path), "--run-dir", str(run_dir), "--mode",
                       "from-scratch", "--num-steps", "2", "--steps-per-epoch", "2", "--report-to", "tensorboard",
                       "--force", *TINY_RUN], capsys)
    assert code == 0 and len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1
    assert max(r.step for r in read_log(run_dir / "metrics.jsonl").records) == 2


# --- FALSIFY-METRICS-007: the loss curve --------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-007")
def test_falsify_metrics_007_the_png_shows_both_curves(tmp_path: Path, short_run: dict, capsys) -> None:
    pytest.importorskip("matplotlib")
    import numpy as np
    from matplotlib import colors
    from matplotlib.image import imread

    run_dir = Path(short_run["run_dir"])
    card = tmp_path / "CARD.md"
    code, document = run_cli(["card", str(run_dir / "ckpt" / "epoch-003.apr"), "-o", str(card), "--json"], capsys)
    assert code == 0 and document is not None
    png = tmp_path / "CARD-loss.png"
    assert document["loss_curve"] == str(png) and "](CARD-loss.png)" in card.read_text()
    pixels = imread(str(png))[..., :3]  # (h, w, rgb) floats in [0, 1]
    for name in ("tab:blue", "tab:orange"):
        rgb = np.array(colors.to_rgb(name))
        assert (np.abs(pixels - rgb).max(axis=-1) < 0.02).sum() > 20, name


# --- FALSIFY-METRICS-008: missing extras ---------------------------------------------------------------

@pytest.fixture
def without_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] in ("tensorboard", "matplotlib") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.falsifies("FALSIFY-METRICS-008")
def test_falsify_metrics_008_tensorboard_refused_before_any_work(tmp_path: Path, dataset_dir: Path,
                                                                 tokenizer_dir: Path, config_path: Path,
                                                                 without_extras: None, capsys) -> None:
    run_dir = tmp_path / "never"
    code, document = run_cli(["pretrain", "--dataset", str(dataset_dir), "--tokenizer", str(tokenizer_dir),
                              "--config", str(config_path), "--run-dir", str(run_dir), "--mode", "from-scratch",
                              "--num-steps", "2", "--report-to", "tensorboard", *TINY_RUN, "--json"], capsys)
    assert code == 9 and document is not None
    assert (document["error"]["field"], document["error"]["hint"]) == ("tensorboard", "pip install 'apr-contracts[tensorboard]'")
    assert not run_dir.exists()


@pytest.mark.falsifies("FALSIFY-METRICS-008")
def test_falsify_metrics_008_card_without_matplotlib_keeps_the_table(tmp_path: Path, short_run: dict,
                                                                      without_extras: None, capsys) -> None:
    run_dir = Path(short_run["run_dir"])
    card = tmp_path / "CARD.md"
    code, document = run_cli(["card", str(run_dir / "ckpt" / "epoch-003.apr"), "-o", str(card), "--json"], capsys)
    assert code == 0 and document is not None and document["loss_curve"] is None
    text = card.read_text()
    assert len(_table_rows(text)) == 5 and "pip install 'apr-contracts[plot]'" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CARD.md"]


def test_reading_the_log_and_writing_the_card_never_import_torch(tmp_path: Path, short_run: dict) -> None:
    probe = ("import sys\nfrom apr.cli.main import main\ncode = main(sys.argv[1:])\n"
             "print('torch' in sys.modules, code, file=sys.stderr)")
    run_dir = Path(short_run["run_dir"])
    done = subprocess.run([sys.executable, "-c", probe, "card", str(run_dir / "ckpt" / "epoch-000.apr"), "--run-dir",
                           str(run_dir), "-o", str(tmp_path / "c.md")], capture_output=True, text=True, timeout=120,
                          env=child_env(), cwd=tmp_path)
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr[-2000:]


def test_log_every_steps_must_be_positive(tmp_path: Path, capsys) -> None:
    code, document = run_cli(["pretrain", "--dataset", "d", "--run-dir", str(tmp_path / "r"), "--log-every-steps", "0",
                              "--json"], capsys)
    assert code == 64 and document is not None and document["error"]["field"] == "--log-every-steps"


# --- FALSIFY-METRICS-009: apr publish stages the curve -------------------------------------------------

@pytest.mark.falsifies("FALSIFY-METRICS-009")
def test_falsify_metrics_009_publish_stages_the_png_the_card_links(tmp_path: Path, short_run: dict) -> None:
    from apr.publish.staging import PublishPlan, build_staging

    checkpoint = Path(short_run["run_dir"]) / "ckpt" / "epoch-000.apr"
    (tmp_path / "sub").mkdir()
    png = b"\x89PNG\r\n\x1a\n not really drawn"
    (tmp_path / "CARD-loss.png").write_bytes(png)
    (tmp_path / "sub" / "other.png").write_bytes(png)
    card = tmp_path / "CARD.md"
    card.write_text("---\nlicense: apache-2.0\n---\n# m\n\n![loss](CARD-loss.png)\n![x](sub/other.png)\n"
                    "![y](https://example.org/a.png)\n", encoding="utf-8")
    plan = PublishPlan(repo="o/m", checkpoint=checkpoint, model_card=card, formats=("apr",), quantize="q8_0",
                       staging=tmp_path / "stage")
    files = {f.path for f in build_staging(plan, sha256="0" * 64, verdict="GO")}
    assert files == {"README.md", "m.apr", "CARD-loss.png"}
    assert (tmp_path / "stage" / "CARD-loss.png").read_bytes() == png


def _row(step: int, val_loss: float | None = None) -> MetricRecord:
    return MetricRecord(step=step, epoch=None, train_loss=1.0, val_loss=val_loss, lr=None, grad_norm=None,
                        tokens_per_sec=None, tokens_seen=step, wall_s=float(step))


@pytest.mark.parametrize("rows,resume_step,expect_evaluation,warned", [
    ([_row(0, 2.0), _row(5), _row(10, 1.5)], 10, True, False),  # the epoch checkpoint's row is there
    ([_row(0, 2.0), _row(5), _row(10)], 10, True, True),  # a train row at the step is not an evaluation
    ([_row(0, 2.0), _row(5), _row(9, 1.5)], 10, True, True),  # an evaluation one step early is not it
    ([_row(0, 2.0), _row(5)], 10, True, True),  # the row is missing
    ([_row(0, 2.0), _row(5)], 10, False, False),  # a --save-every-steps checkpoint has no evaluation row
    ([_row(5)], 0, True, False),  # a resume from step 0: nothing to expect
])
def test_continue_log_warns_when_an_epoch_checkpoint_has_no_evaluation_row(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, rows: list[MetricRecord], resume_step: int,
        expect_evaluation: bool, warned: bool) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b"".join(r.to_line() for r in rows))
    with caplog.at_level("WARNING", logger=metrics_log.__name__):
        kept = metrics_log.continue_log(log, resume_step, expect_evaluation=expect_evaluation)
    assert list(kept) == [r for r in rows if r.step <= resume_step]
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if warned:
        last = kept[-1].step if kept else 0
        assert messages == [f"{log}: no evaluation row at step {resume_step} (the row is written before its "
                            f"checkpoint: was the log edited?); the log continues from step {last}"]
    else:
        assert messages == []
