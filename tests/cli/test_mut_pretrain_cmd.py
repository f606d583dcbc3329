"""`apr pretrain`'s command module (apr/cli/pretrain_cmd.py), issue 23: its flags and their
defaults, the checks made before any work (``--log-every-steps``, the TensorBoard extra, the run
folder against every input), the ``--json`` report's keys and values, the text summary, what rank 0
alone writes, and the recorder's sinks.

Everything runs in-process (`apr.cli.main.main`) on a tiny qwen2 (tests/train/train_fixtures.py)
for two or three steps; expected values come from the flags given and from the tiny config, never
from the report under test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from apr.cli import pretrain_cmd
from apr.cli.main import build_parser, main
from tests.train.train_fixtures import STDLIB, TINY_CONFIG, TINY_RUN, TRAIN_FILES, train_bpe

BASE = ["pretrain", "--dataset", "d", "--run-dir", "r"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tokenizer, token shards of three stdlib modules and the tiny config (no training)."""
    root = tmp_path_factory.mktemp("pretrain-cmd")
    files = [STDLIB / name for name in TRAIN_FILES[:3]]
    tokenizer = train_bpe(files, root / "tokenizer")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tokenize", *map(str, files), "--tokenizer", str(tokenizer), "-o", str(root / "data")]) == 0
    config = root / "config.json"
    config.write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    return {"root": root, "data": root / "data", "tokenizer": tokenizer, "config": config}


def scratch_argv(ws: dict[str, Path], run_dir: Path, *flags: str) -> list[str]:
    return ["pretrain", "--dataset", str(ws["data"]), "--tokenizer", str(ws["tokenizer"]), "--config",
            str(ws["config"]), "--run-dir", str(run_dir), "--mode", "from-scratch", *TINY_RUN, *flags]


def apr(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    return code, buffer.getvalue()


def error_of(argv: list[str]) -> dict[str, Any]:
    code, text = apr([*argv, "--json"])
    document = json.loads(text)["error"]
    assert document["exit_code"] == code
    return document


@pytest.fixture(scope="module")
def json_run(workspace: dict[str, Path]) -> dict[str, Any]:
    """Two steps, one per epoch, warmup 3, lr 1e-3: the --json report, and the run folder."""
    run_dir = workspace["root"] / "json-run"
    code, text = apr(scratch_argv(workspace, run_dir, "--num-steps", "2", "--steps-per-epoch", "1",
                                  "--warmup-steps", "3", "--lr", "1e-3", "--json"))
    assert code == 0, text
    return {"report": json.loads(text), "run_dir": run_dir}


# --- the parser -------------------------------------------------------------------------------

def test_defaults_of_every_flag() -> None:
    args = build_parser().parse_args(BASE)
    expected = {
        "dataset": "d", "run_dir": "r", "tokenizer": None, "mode": "finetune", "lr": None, "num_steps": 1000,
        "warmup_steps": None, "batch_size": 16, "seq_length": 1024, "steps_per_epoch": 100, "seed": 42,
        "target_val_loss": None, "device": "auto", "init": None, "resume": None, "save_every_steps": None,
        "keep_last": None, "allow_world_size_change": False, "force_under_provisioned": False, "val_shard": None,
        "config": None, "compile": False, "force": False, "log_every_steps": None, "report_to": "none",
        "json": False,
    }
    assert {key: getattr(args, key) for key in expected} == expected
    assert args.handler is pretrain_cmd.run
    assert args.reads_checkpoints == ("init",) and args.needs_extras == ("train",)


def test_every_flag_parses_to_its_type() -> None:
    args = build_parser().parse_args([
        *BASE, "--tokenizer", "t", "--mode", "from-scratch", "--lr", "0.5", "--num-steps", "7", "--warmup-steps", "2",
        "--batch-size", "3", "--seq-length", "9", "--steps-per-epoch", "4", "--seed", "11", "--target-val-loss",
        "1.5", "--device", "cpu", "--init", "i.apr", "--resume", "rd", "--save-every-steps", "5", "--keep-last",
        "6", "--allow-world-size-change", "--force-under-provisioned", "--val-shard", "v", "--config", "c.json",
        "--compile", "-f", "--log-every-steps", "8", "--report-to", "tensorboard", "--json",
    ])
    expected = {
        "tokenizer": "t", "mode": "from-scratch", "lr": 0.5, "num_steps": 7, "warmup_steps": 2, "batch_size": 3,
        "seq_length": 9, "steps_per_epoch": 4, "seed": 11, "target_val_loss": 1.5, "device": "cpu", "init": "i.apr",
        "resume": "rd", "save_every_steps": 5, "keep_last": 6, "allow_world_size_change": True,
        "force_under_provisioned": True, "val_shard": "v", "config": "c.json", "compile": True, "force": True,
        "log_every_steps": 8, "report_to": "tensorboard", "json": True,
    }
    got = {key: getattr(args, key) for key in expected}
    assert got == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize("argv", [
    ["pretrain", "--run-dir", "r"],                     # --dataset is required
    ["pretrain", "--dataset", "d"],                     # --run-dir is required
    [*BASE, "--mode", "pretrain"],                      # not one of the two modes
    [*BASE, "--report-to", "wandb"],                    # not one of the two sinks
    [*BASE, "--num-steps", "1.5"],                      # an int flag
])
def test_usage_errors_exit_64_before_any_work(argv: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 64
    assert list(tmp_path.iterdir()) == []


def test_options_carry_every_flag() -> None:
    from apr.train.plan import PretrainOptions

    args = argparse.Namespace(
        dataset="d", run_dir="r", tokenizer="t", mode="from-scratch", lr=0.25, num_steps=7, warmup_steps=2,
        batch_size=3, seq_length=9, steps_per_epoch=4, seed=11, target_val_loss=1.5, device="cpu", init="i.apr",
        force_under_provisioned=True, val_shard="v", config="c.json", force=True, compile=True, resume="rd",
        save_every_steps=5, keep_last=6, allow_world_size_change=True)
    assert pretrain_cmd.options_from_args(args) == PretrainOptions(
        dataset="d", run_dir="r", tokenizer="t", mode="from-scratch", lr=0.25, num_steps=7, warmup_steps=2,
        batch_size=3, seq_length=9, steps_per_epoch=4, seed=11, target_val_loss=1.5, device="cpu", init="i.apr",
        force_under_provisioned=True, val_shard="v", config="c.json", force=True, compile=True, resume="rd",
        save_every_steps=5, keep_last=6, allow_world_size_change=True)


# --- checks before any work -------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-3"])
def test_log_every_steps_below_one_is_a_usage_error(value: str, tmp_path: Path) -> None:
    error = error_of([*BASE[:2], str(tmp_path / "d"), "--run-dir", str(tmp_path / "r"), "--log-every-steps", value])
    assert (error["exit_code"], error["field"], error["type"]) == (64, "--log-every-steps", "UsageError")
    assert error["message"] == f"--log-every-steps must be >= 1, got {value}"
    assert error["hint"] == "pass a positive number of steps, or leave it out for the default"
    assert not (tmp_path / "r").exists()


def test_log_every_steps_one_passes_the_check() -> None:
    args = build_parser().parse_args([*BASE, "--log-every-steps", "1"])
    pretrain_cmd.check_reporting_flags(args)  # no exception: 1 is a positive count


def test_tensorboard_is_checked_for_its_extra_only_when_asked(monkeypatch) -> None:
    from apr.cli import extras

    asked: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(extras, "require_extras", lambda command, names: asked.append((command, names)))
    pretrain_cmd.check_reporting_flags(build_parser().parse_args(BASE))
    assert asked == []
    pretrain_cmd.check_reporting_flags(build_parser().parse_args([*BASE, "--report-to", "tensorboard"]))
    assert asked == [("pretrain --report-to tensorboard", ("tensorboard",))]


def test_a_missing_tensorboard_is_exit_9_before_the_overlap_check(tmp_path: Path, monkeypatch) -> None:
    from apr.cli import extras

    monkeypatch.setattr(extras, "missing_extras", lambda names: [n for n in names if n == "tensorboard"])
    run_dir = tmp_path / "run"
    # the dataset inside RUN_DIR/ckpt would be refused (exit 5); the extra is checked first
    error = error_of(["pretrain", "--dataset", str(run_dir / "ckpt"), "--run-dir", str(run_dir),
                      "--report-to", "tensorboard"])
    assert (error["exit_code"], error["field"]) == (9, "tensorboard")
    assert not run_dir.exists()


def test_bad_log_every_steps_is_refused_before_the_overlap_check(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    error = error_of(["pretrain", "--dataset", str(run_dir / "ckpt"), "--run-dir", str(run_dir),
                      "--log-every-steps", "0"])
    assert error["exit_code"] == 64


@pytest.mark.parametrize("flag", ["--dataset", "--val-shard", "--tokenizer", "--init", "--config"])
def test_each_input_inside_the_checkpoint_folder_is_refused(flag: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ckpt = run_dir / "ckpt"
    ckpt.mkdir(parents=True)
    inside = ckpt / "input.bin"
    inside.write_bytes(b"read by the run")
    given = {"--dataset": str(tmp_path / "data")}
    given[flag] = str(inside)
    argv = ["pretrain", "--run-dir", str(run_dir), "-f"] + [part for k, v in given.items() for part in (k, v)]
    error = error_of(argv)
    assert (error["exit_code"], error["code"], error["field"]) == (5, "output-is-input", "--run-dir")
    assert sorted(p.name for p in run_dir.rglob("*")) == ["ckpt", "input.bin"]


def test_an_init_folder_is_left_to_the_plan_not_the_overlap_check(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    folder = run_dir / "ckpt" / "epoch-000.apr"
    folder.mkdir(parents=True)
    args = build_parser().parse_args(["pretrain", "--dataset", str(tmp_path / "d"), "--run-dir", str(run_dir),
                                      "--init", str(folder)])
    pretrain_cmd.refuse_run_dir_overlap(args)  # not an overlap: the plan refuses a folder as --init
    (tmp_path / "init.apr").write_bytes(b"x")
    args.init = str(run_dir / "ckpt" / "x.apr")
    (run_dir / "ckpt" / "x.apr").write_bytes(b"x")
    from apr.errors import OutputIsInputError

    with pytest.raises(OutputIsInputError):
        pretrain_cmd.refuse_run_dir_overlap(args)


# --- the --json report ------------------------------------------------------------------------

# One test states the whole report: mutmut credits a module fixture's run to the first test that
# uses it, so every assertion on this run's report sits in the test that runs it.
REPORT_KEYS = [
    "schema", "command", "input", "ok", "exit_code", "run_dir", "mode", "world_size", "model", "init", "chinchilla",
    "warnings", "schedule", "target_val_loss", "init_val_loss", "optimizer_fresh", "device", "param_count", "resume",
    "status", "detail", "final_val_loss", "best_val_loss", "epochs_completed", "steps_recorded", "tokens_seen",
    "wall_seconds", "val_loss_history", "checkpoints", "per_step_metrics", "metrics_log", "epochs",
]


def test_the_json_report_states_every_key(workspace: dict[str, Path]) -> None:
    run_dir = workspace["root"] / "report-run"
    code, text = apr(scratch_argv(workspace, run_dir, "--num-steps", "2", "--steps-per-epoch", "1",
                                  "--warmup-steps", "3", "--lr", "1e-3", "--json"))
    assert code == 0, text
    report = json.loads(text)
    assert list(report) == REPORT_KEYS  # no key missing, renamed or added, in the published order
    # the head: the flags and the tiny config
    assert (report["schema"], report["command"], report["ok"], report["exit_code"]) == ("apr.pretrain/1", "pretrain",
                                                                                      True, 0)
    assert report["input"] == str(workspace["data"])
    assert (report["run_dir"], report["mode"], report["world_size"]) == (str(run_dir), "from-scratch", 1)
    assert report["model"] == {"architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM",
                               "hidden_size": TINY_CONFIG["hidden_size"],
                               "num_layers": TINY_CONFIG["num_hidden_layers"], "vocab_size": TINY_CONFIG["vocab_size"]}
    assert report["init"] is None
    assert report["chinchilla"]["status"] == "SKIPPED"  # no --init: the gate does not apply
    assert report["warnings"] == []
    schedule = report["schedule"]
    assert list(schedule) == ["lr_max", "lr_min", "warmup_steps", "total_steps"]
    assert (schedule["lr_max"], schedule["warmup_steps"], schedule["total_steps"]) == (1e-3, 3, 2)
    assert 0 < schedule["lr_min"] < schedule["lr_max"]
    assert report["target_val_loss"] == 3.0  # from-scratch's default
    # the starting point
    assert report["optimizer_fresh"] == {"state_entries": 0, "scheduler_step": 0}
    assert report["device"] == "cpu" and report["resume"] is None
    # tied embeddings 512*64; per layer q 64*64+64, k and v 64*32+32 each, o 64*64, MLP 3*64*128, two
    # norms 2*64; the final norm 64: 32768 + 2*37120 + 64
    assert report["param_count"] == 107072
    assert isinstance(report["init_val_loss"], float)
    # every step and epoch
    steps = report["per_step_metrics"]
    assert [s["step"] for s in steps] == [0, 1]
    assert list(steps[0]) == ["step", "train_loss", "grad_norm", "lr", "tokens_per_sec", "wall_ms", "tokens_seen",
                              "gpu_util_pct"]
    tokens_per_step = 8 * 64  # --batch-size 8 --seq-length 64
    assert [s["tokens_seen"] for s in steps] == [tokens_per_step, 2 * tokens_per_step]
    epochs = report["epochs"]
    ckpt = run_dir / "ckpt"
    assert [(e["epoch"], e["checkpoint"]) for e in epochs] == [(0, str(ckpt / "epoch-000.apr")),
                                                               (1, str(ckpt / "epoch-001.apr"))]
    assert list(epochs[0]) == ["epoch", "train_loss", "val_loss", "grad_norm_max", "tokens_seen", "wall_seconds",
                               "optimizer_state_sha", "checkpoint"]
    assert report["metrics_log"] == str(run_dir / "metrics.jsonl")
    assert (report["status"], report["detail"]) == ("OK", "completed 2 steps")
    assert (report["epochs_completed"], report["steps_recorded"]) == (2, 2)
    assert report["tokens_seen"] == 2 * tokens_per_step
    assert report["checkpoints"] == [str(ckpt / "epoch-000.apr"), str(ckpt / "epoch-001.apr")]
    assert report["val_loss_history"] == [e["val_loss"] for e in epochs]
    assert report["final_val_loss"] == epochs[-1]["val_loss"]
    # the metrics log: default_log_every(2) is 1: the evaluation before any step (step 0), then a row
    # after each of the two steps (steps completed: 1, 2), each followed by its epoch's evaluation row
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(row["step"], row["val_loss"] is None) for row in rows] == [(0, False), (1, True), (1, False), (2, True),
                                                                        (2, False)]
    assert rows[0]["val_loss"] == report["init_val_loss"]


def test_run_hands_the_process_context_through(workspace: dict[str, Path], monkeypatch) -> None:
    """What a torchrun process of rank 0 in a world of 2 does, without a process group: the plan is
    made for the world size, the loop gets the process's context, all ranks meet at the barrier
    before rank 0 writes, and the context is shut down."""
    import torch
    import torch.distributed

    from apr.train import ddp, loop, plan

    ctx = ddp.DistContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(ddp, "init_distributed", lambda spec: calls.append(("init", spec)) or ctx)
    monkeypatch.setattr(ddp, "shutdown", lambda c: calls.append(("shutdown", c)))
    real_plan = plan.plan_pretrain
    monkeypatch.setattr(plan, "plan_pretrain",
                        lambda options, world_size=1: calls.append(("plan", world_size)) or real_plan(
                            options, world_size=world_size))

    def no_training(p: Any, ctx: Any = None) -> Any:
        calls.append(("loop", ctx))
        return iter(())

    monkeypatch.setattr(loop, "run_pretrain", no_training)
    monkeypatch.setattr(torch.distributed, "barrier", lambda: calls.append(("barrier", None)))
    run_dir = workspace["root"] / "world-of-2"
    args = build_parser().parse_args(scratch_argv(workspace, run_dir, "--num-steps", "2", "--json"))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert pretrain_cmd.run(args) == 0
    assert calls == [("init", "cpu"), ("plan", 2), ("barrier", None), ("loop", ctx), ("shutdown", ctx)]
    report = json.loads(out.getvalue())
    assert report["world_size"] == 2 and report["per_step_metrics"] == [] and report["epochs"] == []


def test_as_dict_turns_tuples_into_lists() -> None:
    from apr.train.loop import Finished

    finished = Finished(status="OK", detail="d", init_val_loss=1.0, final_val_loss=0.5, best_val_loss=0.5,
                        epochs_completed=1, steps_recorded=1, tokens_seen=1, wall_seconds=0.1,
                        val_loss_history=(0.5,), checkpoints=("a.apr",))
    document = pretrain_cmd._as_dict(finished)
    assert document["val_loss_history"] == [0.5] and type(document["val_loss_history"]) is list
    assert document["checkpoints"] == ["a.apr"] and type(document["checkpoints"]) is list
    assert document["status"] == "OK" and document["epochs_completed"] == 1


def test_an_init_run_reports_the_file_and_its_digest(json_run: dict[str, Any], workspace: dict[str, Path]) -> None:
    init = json_run["run_dir"] / "ckpt" / "epoch-001.apr"
    run_dir = workspace["root"] / "init-run"
    code, text = apr(["pretrain", "--dataset", str(workspace["data"]), "--run-dir", str(run_dir), "--init", str(init),
                      "--num-steps", "0", "--force-under-provisioned", *TINY_RUN, "--json"])
    assert code == 0, text
    report = json.loads(text)
    assert report["init"] == {"path": str(init), "sha256": hashlib.sha256(init.read_bytes()).hexdigest()}
    assert report["mode"] == "finetune" and report["per_step_metrics"] == []
    assert report["chinchilla"]["status"] == "BYPASSED" and report["warnings"]
    assert report["init_val_loss"] == pytest.approx(json_run["report"]["epochs"][-1]["val_loss"], abs=1e-9)


def test_the_text_summary_names_the_run(workspace: dict[str, Path], capsys) -> None:
    run_dir = workspace["root"] / "text-run[bold]"  # printed as given: no rich markup in the line
    capsys.readouterr()
    assert main(scratch_argv(workspace, run_dir, "--num-steps", "1", "--steps-per-epoch", "1")) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("OK: completed 1 steps; init val_loss ")
    assert line.endswith(f"1 epoch(s), checkpoints in {run_dir}/ckpt")
    state = json.loads((run_dir / "ckpt" / "epoch-000.metadata.json").read_text())
    assert state  # a checkpoint was written
    numbers = [part.split()[-1] for part in line.split(";")[1].split(",")[:2]]
    assert all(len(n.split(".")[1]) == 4 for n in numbers)  # :.4f


def test_only_rank_0_writes(workspace: dict[str, Path], monkeypatch, capsys) -> None:
    """A process of rank 1 (RANK=1) trains but writes no checkpoint, no metrics log and no report."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")
    run_dir = workspace["root"] / "rank1-run"
    capsys.readouterr()
    assert main(scratch_argv(workspace, run_dir, "--num-steps", "1", "--steps-per-epoch", "1", "--json")) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert not (run_dir / "metrics.jsonl").exists()
    assert not list(run_dir.rglob("*.apr"))


def test_other_ranks_record_nothing() -> None:
    with pretrain_cmd._NoRecorder() as recorder:
        assert recorder.on_event(object()) is None


def test_a_rerun_without_force_is_refused_by_the_earlier_log(workspace: dict[str, Path]) -> None:
    run_dir = workspace["root"] / "refused-run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("{}\n")
    error = error_of(scratch_argv(workspace, run_dir, "--num-steps", "1"))
    assert (error["exit_code"], error["field"]) == (5, "--run-dir")
    assert (run_dir / "metrics.jsonl").read_text() == "{}\n"


# --- the recorder's sinks ---------------------------------------------------------------------

class FakeSink:
    made: ClassVar[list[FakeSink]] = []

    def __init__(self, log_dir: Any, *, run_config: dict[str, Any] | None = None) -> None:
        self.log_dir, self.run_config, self.rows, self.closed = Path(log_dir), run_config, [], False
        FakeSink.made.append(self)

    def write(self, record: Any) -> None:
        self.rows.append(record)

    def close(self) -> None:
        self.closed = True


def test_tensorboard_replaces_only_the_earlier_event_files(workspace: dict[str, Path], monkeypatch) -> None:
    from apr.cli import extras
    from apr.train import tensorboard_sink

    monkeypatch.setattr(extras, "missing_extras", lambda names: [])
    monkeypatch.setattr(tensorboard_sink, "TensorBoardSink", FakeSink)
    FakeSink.made = []
    run_dir = workspace["root"] / "tb-run"
    tb = run_dir / "tb"
    tb.mkdir(parents=True)
    (tb / "events.out.tfevents.1.host").write_bytes(b"old")
    (tb / "notes.txt").write_text("the user's")
    code, text = apr(scratch_argv(workspace, run_dir, "--num-steps", "2", "--steps-per-epoch", "2",
                                  "--log-every-steps", "2", "--report-to", "tensorboard", "-f", "--json"))
    assert code == 0, text
    assert sorted(p.name for p in tb.iterdir()) == ["notes.txt"]
    [sink] = FakeSink.made
    assert sink.log_dir == tb and sink.closed
    assert sink.run_config is not None and sink.run_config["run_dir"] == str(run_dir)
    assert sink.run_config["command"] == "pretrain"
    # --log-every-steps 2 over 2 steps: the evaluation before any step, the step row after step 2 and
    # the evaluation after it; no row after step 1 (the default, 1, would write one)
    assert [r.step for r in sink.rows] == [0, 2, 2]


def test_without_force_the_earlier_event_files_are_refused(workspace: dict[str, Path], monkeypatch) -> None:
    from apr.cli import extras

    monkeypatch.setattr(extras, "missing_extras", lambda names: [])
    run_dir = workspace["root"] / "tb-refused"
    (run_dir / "tb").mkdir(parents=True)
    (run_dir / "tb" / "events.out.tfevents.1.host").write_bytes(b"old")
    error = error_of(scratch_argv(workspace, run_dir, "--num-steps", "1", "--report-to", "tensorboard"))
    assert (error["exit_code"], error["field"]) == (5, "--run-dir")
    assert (run_dir / "tb" / "events.out.tfevents.1.host").read_bytes() == b"old"


def test_a_failing_tensorboard_sink_closes_the_log(workspace: dict[str, Path], monkeypatch) -> None:
    from apr.cli import extras
    from apr.train import metrics_log, tensorboard_sink

    closed: list[bool] = []
    real_close = metrics_log.MetricsLogWriter.close
    monkeypatch.setattr(metrics_log.MetricsLogWriter, "close",
                        lambda self: closed.append(True) or real_close(self))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ImportError("no tensorboard here")

    monkeypatch.setattr(extras, "missing_extras", lambda names: [])
    monkeypatch.setattr(tensorboard_sink, "TensorBoardSink", broken)
    run_dir = workspace["root"] / "tb-broken"
    with pytest.raises(ImportError):
        pretrain_cmd.run(build_parser().parse_args(scratch_argv(workspace, run_dir, "--num-steps", "1",
                                                                "--report-to", "tensorboard")))
    assert closed == [True]


def test_resume_continues_the_log_and_reports_where_it_starts(workspace: dict[str, Path], caplog) -> None:
    run_dir = workspace["root"] / "resumed"
    flags = ("--num-steps", "2", "--steps-per-epoch", "1", "--json")
    code, text = apr(scratch_argv(workspace, run_dir, *flags))
    assert code == 0, text
    first = json.loads(text)
    for later in (run_dir / "ckpt").glob("epoch-001.*"):
        later.unlink()
    # the kept rows' clock moved 1000 s on, and epoch 0's evaluation row (step 1) taken out of the log
    log = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    kept = [dict(row, wall_s=row["wall_s"] + 1000.0) for row in rows
            if row["step"] == 0 or (row["step"] == 1 and row["val_loss"] is None)]
    log.write_text("".join(json.dumps(row) + "\n" for row in kept))
    caplog.set_level("WARNING")
    code, text = apr(scratch_argv(workspace, run_dir, *flags, "--resume", str(run_dir)))
    assert code == 0, text
    report = json.loads(text)
    ckpt = run_dir / "ckpt" / "epoch-000.apr"
    assert set(report["resume"]) == {"checkpoint", "step", "val_loss"}
    assert (report["resume"]["checkpoint"], report["resume"]["step"]) == (str(ckpt), 1)
    # the checkpoint's weights evaluated again: its epoch's val_loss
    assert report["resume"]["val_loss"] == pytest.approx(first["epochs"][0]["val_loss"], abs=1e-9)
    assert report["init_val_loss"] == first["init_val_loss"]  # the run's own start, not the resume's
    assert report["optimizer_fresh"]["scheduler_step"] == 1
    assert [s["step"] for s in report["per_step_metrics"]] == [1]
    # an epoch checkpoint without its evaluation row in the log: warned, and the log continued
    assert any("no evaluation row at step 1" in r.getMessage() for r in caplog.records)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(row["step"], row["val_loss"] is None) for row in rows] == [(0, False), (1, True), (2, True), (2, False)]
    assert rows[:2] == kept  # the kept rows untouched, step 2's appended once
    assert all(row["wall_s"] > kept[-1]["wall_s"] for row in rows[2:])  # the resumed rows continue its clock


# --- the progress bar -------------------------------------------------------------------------

def test_the_bar_is_shown_only_on_rank_0_with_steps_to_run() -> None:
    from rich.console import Console

    console = Console(file=io.StringIO())
    assert isinstance(pretrain_cmd._progress(console, enabled=True, total=3), pretrain_cmd._Bar)
    assert isinstance(pretrain_cmd._progress(console, enabled=False, total=3), pretrain_cmd._NoBar)
    assert isinstance(pretrain_cmd._progress(console, enabled=True, total=0), pretrain_cmd._NoBar)
    one = pretrain_cmd._progress(console, enabled=True, total=1)
    assert isinstance(one, pretrain_cmd._Bar) and one._progress.console is console
    assert (one._progress.tasks[0].total, one._progress.tasks[0].completed) == (1, 0)  # a new run starts at 0
    with pretrain_cmd._NoBar() as bar:
        assert bar.advance(object()) is None


def test_the_bar_counts_from_the_resumed_step() -> None:
    from rich.console import Console

    from apr.train.loop import StepMetrics

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    bar = pretrain_cmd._progress(console, enabled=True, total=5, completed=2)
    with bar:
        bar.advance(StepMetrics(step=2, train_loss=1.25, grad_norm=1.0, lr=1e-3, tokens_per_sec=100.0, wall_ms=1.0,
                                tokens_seen=1))
        task = bar._progress.tasks[0]
        assert (task.total, task.completed) == (5, 3)
        assert (task.fields["loss"], task.fields["lr"], task.fields["tps"]) == (1.25, 1e-3, 100.0)



# --- the recorder, on its own -----------------------------------------------------------------

def fake_plan(run_dir: Path, *, num_steps: int = 1000, steps_per_epoch: int = 25, resume_step: int | None = None,
              kind: str = "epoch") -> Any:
    from types import SimpleNamespace

    resume = None if resume_step is None else SimpleNamespace(progress=SimpleNamespace(step=resume_step), kind=kind)
    options = SimpleNamespace(run_dir=str(run_dir), num_steps=num_steps, steps_per_epoch=steps_per_epoch)
    return SimpleNamespace(options=options, resume=resume)


def recorder_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args([*BASE, *flags])


def write_log(path: Path, steps: list[tuple[int, bool]]) -> list[dict[str, Any]]:
    """Rows at the given (step, is_evaluation), ``wall_s`` 10, 20, 30, ... seconds."""
    rows = [{"step": step, "epoch": 0, "train_loss": None if evaluation else 1.0, "val_loss": 2.0 if evaluation else None,
             "lr": None, "grad_norm": None, "tokens_per_sec": None, "tokens_seen": step, "wall_s": 10.0 * (i + 1)}
            for i, (step, evaluation) in enumerate(steps)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def test_a_new_runs_recorder(tmp_path: Path) -> None:
    from apr.train.metrics_log import MetricsLogWriter

    run_dir = tmp_path / "a" / "run"  # made, with its parents
    (tmp_path / "a").mkdir()
    recorder = pretrain_cmd._recorder(recorder_args(), fake_plan(run_dir), {}, [])
    with recorder:
        assert (recorder.log_every, recorder.steps_per_epoch, recorder.num_steps, recorder.start_step) == (10, 25,
                                                                                                         1000, 0)
        assert recorder.wall_s() < 1.0  # a new run's clock starts at 0
        [sink] = recorder.sinks
        assert isinstance(sink, MetricsLogWriter) and sink.path == run_dir / "metrics.jsonl"
    assert run_dir.is_dir()
    given = pretrain_cmd._recorder(recorder_args("--log-every-steps", "7"), fake_plan(run_dir, num_steps=5), {}, [])
    with given:
        assert (given.log_every, given.num_steps) == (7, 5)


def test_a_forced_new_run_starts_a_fresh_log(tmp_path: Path) -> None:
    log = tmp_path / "run" / "metrics.jsonl"
    write_log(log, [(0, True), (1, False)])
    with pretrain_cmd._recorder(recorder_args(), fake_plan(tmp_path / "run"), {}, []):
        pass
    assert log.read_text() == ""  # the earlier run's rows are not continued


@pytest.mark.parametrize(("kind", "warned"), [("epoch", True), ("step", False)])
def test_a_resumed_runs_recorder_continues_its_log(tmp_path: Path, caplog, kind: str, warned: bool) -> None:
    log = tmp_path / "run" / "metrics.jsonl"
    rows = write_log(log, [(0, True), (1, False), (2, False), (3, False), (4, False)])  # no evaluation at step 3
    caplog.set_level("WARNING")
    recorder = pretrain_cmd._recorder(recorder_args(), fake_plan(tmp_path / "run", resume_step=3, kind=kind), {}, [])
    with recorder:
        assert recorder.start_step == 3
        assert 40.0 <= recorder.wall_s() < 41.0  # continues from the last kept row's wall_s (step 3: 40 s)
    assert [json.loads(line) for line in log.read_text().splitlines()] == rows[:4]
    # an epoch checkpoint expects its evaluation row; a mid-epoch (step) checkpoint has none
    assert any("no evaluation row at step 3" in r.getMessage() for r in caplog.records) is warned


def test_a_resumed_run_without_a_log_starts_its_clock_at_0(tmp_path: Path) -> None:
    recorder = pretrain_cmd._recorder(recorder_args(), fake_plan(tmp_path / "run", resume_step=3), {}, [])
    with recorder:
        assert recorder.start_step == 3 and recorder.wall_s() < 1.0
