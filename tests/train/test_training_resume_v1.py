"""contracts/training-resume-v1.yaml: `apr pretrain --resume` continues the same run.

The runs are tiny (the session's qwen2 of vocab 512, hidden 64; 12 steps of batch 8 x 64 tokens)
and every training forward draws from the three generators (`resume_driver`), so a resume that
forgets any part of the state shows in the losses. Children run with one thread and the
in-process resumes under `torch_threads(1)`: the same arithmetic, so "equal" means bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from apr.train.device import torch_threads

from resume_driver import rng_drawing_forward
from train_fixtures import TINY_RUN

DRIVER = Path(__file__).with_name("resume_driver.py")
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
REQUIRES_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="requires cuda: torch sees no CUDA device")
STEPS, PER_EPOCH, EVERY = 12, 4, 2
FINAL = f"epoch-{STEPS // PER_EPOCH - 1:03d}.apr"


def run_args(dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path, *extra: str) -> list[str]:
    """The run every test here continues: 3 epochs of 4 steps, a step checkpoint every 2 steps."""
    return ["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir), "--tokenizer", str(tokenizer_dir),
            "--config", str(config_path), "--mode", "from-scratch", "--lr", "3e-3", "--warmup-steps", "2",
            *TINY_RUN, "--num-steps", str(STEPS), "--steps-per-epoch", str(PER_EPOCH),
            "--save-every-steps", str(EVERY), "--json", *extra]


def run_in_process(argv: list[str]) -> tuple[int, dict]:
    """`apr ARGV` here (where mutants apply), one thread, the generator-drawing forward; its JSON."""
    from apr.cli.main import main

    buffer = io.StringIO()
    with torch_threads(1), rng_drawing_forward(), contextlib.redirect_stdout(buffer):
        code = main(argv)
    return code, json.loads(buffer.getvalue())


def run_child(argv: list[str]) -> dict:
    result = subprocess.run([sys.executable, str(DRIVER), *argv], capture_output=True, text=True, timeout=300,
                            env=CHILD_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def state_steps(run_dir: Path) -> list[int]:
    steps = []
    for path in (run_dir / "ckpt").glob("*.state.json"):
        with contextlib.suppress(OSError, ValueError):
            steps.append(json.loads(path.read_text())["progress"]["step"])
    return steps


def kill_after(argv: list[str], run_dir: Path, checkpoints: int, delay: float) -> None:
    """Start the run in a child and SIGKILL it ``delay`` seconds after its ``checkpoints``-th checkpoint."""
    child = subprocess.Popen([sys.executable, str(DRIVER), *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=CHILD_ENV)
    deadline = time.monotonic() + 240
    try:
        while child.poll() is None and time.monotonic() < deadline and len(state_steps(run_dir)) < checkpoints:
            time.sleep(0.005)
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def step_view(report: dict, start: int = 0) -> list[tuple]:
    return [(m["step"], m["train_loss"], m["grad_norm"], m["lr"]) for m in report["per_step_metrics"]
            if m["step"] >= start]


def epoch_view(report: dict, start: int) -> list[tuple]:
    """The epochs that closed after step ``start``: every figure but the wall time."""
    return [(e["epoch"], e["train_loss"], e["val_loss"], e["grad_norm_max"], e["tokens_seen"], e["optimizer_state_sha"])
            for e in report["epochs"] if e["tokens_seen"] > start * 8 * 64]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path, val_dir: Path, tokenizer_dir: Path,
              config_path: Path) -> dict:
    """The uninterrupted run, in a child like the killed ones; its report with ``run_dir`` set."""
    run_dir = tmp_path_factory.mktemp("resume-reference") / "run"
    report = run_child(run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir)))
    return {**report, "run_dir": str(run_dir)}


# --- exact resume after a kill at a random moment ------------------------------------------------

@pytest.mark.falsifies("FALSIFY-RESUME-001")
@settings(max_examples=3, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(checkpoints=st.integers(1, STEPS // EVERY - 1), delay=st.floats(0.0, 0.3))
@example(checkpoints=3, delay=0.0)  # resumes mid-epoch (step 6): the open epoch's losses must come back
def test_falsify_resume_001_killed_and_resumed_is_the_same_run(reference: dict, dataset_dir: Path, val_dir: Path,
                                                               tokenizer_dir: Path, config_path: Path,
                                                               checkpoints: int, delay: float) -> None:
    with tempfile.TemporaryDirectory(prefix="resume-kill-") as folder:
        run_dir = Path(folder) / "run"
        argv = run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir))
        kill_after(argv, run_dir, checkpoints, delay)
        code, resumed = run_in_process([*argv, "--resume", str(run_dir)])
        assert code == 0, resumed
        start = resumed["resume"]["step"]
        assert start >= EVERY * min(checkpoints, 1) and start % EVERY == 0
        assert step_view(resumed) == step_view(reference, start)
        assert epoch_view(resumed, start) == epoch_view(reference, start)
        assert (resumed["status"], resumed["val_loss_history"]) == (reference["status"], reference["val_loss_history"])
        assert resumed["steps_recorded"] == STEPS and resumed["tokens_seen"] == reference["tokens_seen"]
        final = (run_dir / "ckpt" / FINAL).read_bytes()
        assert final == (Path(reference["run_dir"]) / "ckpt" / FINAL).read_bytes()
        # the metrics log reads as the uninterrupted run's: no step repeated or lost (issue 24)
        assert log_view(run_dir) == log_view(Path(reference["run_dir"]))


def log_view(run_dir: Path) -> list[tuple]:
    """Every line of RUN_DIR/metrics.jsonl (each must be JSON: the reader's stop at a repeated step
    would hide a duplicated tail) without its clock fields (wall_s, tokens_per_sec)."""
    from apr.train.metrics_log import log_path

    rows = [json.loads(line) for line in log_path(run_dir).read_text(encoding="utf-8").splitlines()]
    return [tuple(row[k] for k in ("step", "epoch", "train_loss", "val_loss", "lr", "grad_norm", "tokens_seen"))
            for row in rows]


@pytest.mark.falsifies("FALSIFY-RESUME-001")
def test_falsify_resume_001_the_log_is_cut_back_to_the_checkpoint(tmp_path: Path, reference: dict, dataset_dir: Path,
                                                                  val_dir: Path, tokenizer_dir: Path,
                                                                  config_path: Path) -> None:
    """A run that logged past its checkpoint (killed late, or resumed from an earlier one with
    --force): the resumed log holds each step once, the uninterrupted run's rows."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference["run_dir"], run_dir)
    steps = [row[0] for row in log_view(run_dir)]
    assert max(steps) == STEPS  # the copied log runs past the checkpoint resumed from
    argv = run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir), "--force")
    code, resumed = run_in_process([*argv, "--resume", str(run_dir / "ckpt" / "step-0000006.apr")])
    assert code == 0, resumed
    assert resumed["resume"]["step"] == 6
    assert log_view(run_dir) == log_view(Path(reference["run_dir"]))


# --- the state belongs to its checkpoint ---------------------------------------------------------

def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.falsifies("FALSIFY-RESUME-002")
@pytest.mark.parametrize(("replaced", "donor", "field"), [
    ("step-0000006.apr", "epoch-000.apr", "apr_sha256"),
    ("step-0000006.state.safetensors", "step-0000002.state.safetensors", "tensors_sha256"),
])
def test_falsify_resume_002_a_replaced_file_is_refused(tmp_path: Path, reference: dict, dataset_dir: Path,
                                                       val_dir: Path, tokenizer_dir: Path, config_path: Path,
                                                       replaced: str, donor: str, field: str) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(Path(reference["run_dir"]), run_dir)
    ckpt = run_dir / "ckpt"
    (ckpt / replaced).write_bytes((ckpt / donor).read_bytes())
    before = snapshot(ckpt)
    code, document = run_in_process(run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir",
                                             str(run_dir), "--resume", str(ckpt / "step-0000006.apr"), "--force"))
    assert code == 5
    assert (document["error"]["code"], document["error"]["field"]) == ("resume-refused", field)
    assert snapshot(ckpt) == before


# --- a resume that would continue another run is refused ------------------------------------------

BASE = {"model_config": {"hidden_size": 64, "family": "qwen2"}, "dataset_sha256": "a" * 64,
        "val_shard_sha256": None, "world_size": 1,
        "run": {key: 1 for key in ("mode", "seed", "batch_size", "seq_length", "num_steps", "steps_per_epoch",
                                   "lr_max", "lr_min", "warmup_steps", "target_val_loss", "weight_decay", "grad_clip",
                                   "patience_epochs", "min_epochs_before_early_stop", "init_sha256")}}
CHANGES = [
    (("model_config", "hidden_size"), 32, "model config hidden_size: 64 != 32"),
    (("model_config", "family"), "llama", "model config family: 'qwen2' != 'llama'"),
    (("dataset_sha256",), "b" * 64, "--dataset shard list: sha256 aaaaaaaaaaaa... != bbbbbbbbbbbb..."),
    (("val_shard_sha256",), "c" * 64, "--val-shard shard list: sha256 None != cccccccccccc..."),
    (("world_size",), 2, "world size: 1 != 2"),
    (("run", "seed"), 8, "seed: 1 != 8"),
    (("run", "num_steps"), 24, "num_steps: 1 != 24"),
    (("run", "init_sha256"), "d", "init_sha256: 1 != 'd'"),
]


def changed(keys: tuple[str, ...], value: object) -> dict:
    document = json.loads(json.dumps(BASE))
    target = document
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return document


@pytest.mark.falsifies("FALSIFY-RESUME-003")
@pytest.mark.parametrize(("keys", "value", "line"), CHANGES)
def test_falsify_resume_003_each_difference_alone(keys: tuple[str, ...], value: object, line: str) -> None:
    from apr.train.resume import fingerprint_differences

    assert fingerprint_differences(BASE, BASE) == []
    assert fingerprint_differences(BASE, changed(keys, value)) == [line]


@pytest.mark.falsifies("FALSIFY-RESUME-003")
def test_falsify_resume_003_differences_in_pairs() -> None:
    from apr.train.resume import fingerprint_differences

    for i, (keys_a, value_a, line_a) in enumerate(CHANGES):
        for keys_b, value_b, line_b in CHANGES[i + 1:]:
            asked = changed(keys_a, value_a)
            target = asked
            for key in keys_b[:-1]:
                target = target[key]
            target[keys_b[-1]] = value_b
            assert sorted(fingerprint_differences(BASE, asked)) == sorted([line_a, line_b])
    missing = {**BASE, "model_config": {"hidden_size": 64}}  # a field only one side has
    assert fingerprint_differences(BASE, missing) == ["model config family: 'qwen2' != None"]


def plan_options(dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path, run_dir: Path,
                 **changes: object):
    from apr.train.plan import PretrainOptions

    values = dict(dataset=str(dataset_dir), val_shard=str(val_dir), tokenizer=str(tokenizer_dir),
                  config=str(config_path), run_dir=str(run_dir), mode="from-scratch", lr=3e-3, warmup_steps=2,
                  batch_size=8, seq_length=64, device="cpu", seed=7, num_steps=STEPS, steps_per_epoch=PER_EPOCH,
                  save_every_steps=EVERY, resume=str(run_dir))
    values.update(changes)
    return PretrainOptions(**values)  # type: ignore[arg-type]


@pytest.mark.falsifies("FALSIFY-RESUME-003")
def test_falsify_resume_003_the_plan_refuses_another_run(tmp_path: Path, reference: dict, dataset_dir: Path,
                                                         val_dir: Path, tokenizer_dir: Path, config_path: Path) -> None:
    from apr.errors import ResumeError
    from apr.train.plan import plan_pretrain

    run_dir = tmp_path / "run"
    shutil.copytree(Path(reference["run_dir"]), run_dir)
    options = plan_options(dataset_dir, val_dir, tokenizer_dir, config_path, run_dir)
    plan = plan_pretrain(options)  # the same run: accepted
    assert plan.resume is not None and plan.resume.progress.step == STEPS and plan.resume.kind == "epoch"
    bigger = tmp_path / "config.json"
    bigger.write_text(json.dumps({**json.loads(config_path.read_text()), "intermediate_size": 192}))
    cases = [
        ({"config": str(bigger)}, ["model config intermediate_size: 128 != 192"]),
        ({"seed": 8}, ["seed: 7 != 8"]),
        ({"dataset": str(val_dir)}, None),  # another shard list
    ]
    for changes, lines in cases:
        with pytest.raises(ResumeError) as info:
            plan_pretrain(plan_options(dataset_dir, val_dir, tokenizer_dir, config_path, run_dir, **changes))
        assert info.value.exit_code == 5 and info.value.field == "--resume"
        if lines is None:
            assert [d.split(":")[0] for d in info.value.differences] == ["--dataset shard list"]
        else:
            assert list(info.value.differences) == lines
        assert "--init" in info.value.hint
    with pytest.raises(ResumeError) as info:
        plan_pretrain(options, world_size=2)
    assert info.value.differences == ("world size: 1 != 2",) and "--allow-world-size-change" in info.value.hint
    allowed = plan_pretrain(plan_options(dataset_dir, val_dir, tokenizer_dir, config_path, run_dir,
                                         allow_world_size_change=True), world_size=2)
    assert allowed.resume is not None


# --- retention ---------------------------------------------------------------------------------

def kept(step: int, is_epoch: bool, val: float | None = None):
    from apr.train.retention import Kept

    return Kept(step=step, is_epoch=is_epoch, val_loss=val, checkpoint=Path(f"{'epoch' if is_epoch else 'step'}-{step}"))


@pytest.mark.falsifies("FALSIFY-RESUME-004")
@pytest.mark.parametrize(("keep_last", "expected"), [
    (1, {"epoch-4", "epoch-8"}),  # the last, and the best (epoch-4)
    (2, {"step-6", "epoch-8", "epoch-4"}),
    (3, {"epoch-4", "step-6", "epoch-8"}),  # the best is among the last: nothing extra
    (4, {"step-2", "epoch-4", "step-6", "epoch-8"}),
    (9, {"step-2", "epoch-4", "step-6", "epoch-8"}),
])
def test_falsify_resume_004_choose_kept_table(keep_last: int, expected: set[str]) -> None:
    from apr.train.retention import choose_kept

    entries = [kept(6, False), kept(2, False), kept(8, True, 3.0), kept(4, True, 2.5)]
    assert {p.name for p in choose_kept(entries, keep_last)} == expected


@pytest.mark.falsifies("FALSIFY-RESUME-004")
def test_falsify_resume_004_best_ties_and_non_finite() -> None:
    from apr.train.retention import choose_kept

    tie = [kept(4, True, 2.0), kept(8, True, 2.0), kept(12, True, 5.0)]
    assert {p.name for p in choose_kept(tie, 1)} == {"epoch-4", "epoch-12"}  # the earliest of equals
    nan = [kept(4, True, float("nan")), kept(8, True, None), kept(12, True, 9.0), kept(13, False)]
    assert {p.name for p in choose_kept(nan, 1)} == {"epoch-12", "step-13"}
    assert choose_kept([], 3) == set()


@pytest.mark.falsifies("FALSIFY-RESUME-004")
def test_falsify_resume_004_keep_last_in_a_shared_folder(tmp_path: Path, reference: dict, dataset_dir: Path,
                                                         val_dir: Path, tokenizer_dir: Path, config_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.train.loop as loop

    run_dir = tmp_path / "run"
    ckpt = run_dir / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "notes.txt").write_text("mine")
    source = Path(reference["run_dir"]) / "ckpt"
    for name in ("epoch-000.apr", "epoch-000.state.json", "epoch-000.state.safetensors"):  # another run's
        shutil.copy(source / name, ckpt / name.replace("epoch-000", "other-000"))
    other_state = json.loads((ckpt / "other-000.state.json").read_text())
    (ckpt / "other-000.state.json").write_text(json.dumps({**other_state, "checkpoint": "other-000.apr"}))
    strangers = snapshot(ckpt)
    values = iter([6.0, 3.0, 4.0, 5.0])  # init, then epochs 0..2: the best is epoch 0
    monkeypatch.setattr(loop, "evaluate", lambda *a, **kw: next(values))
    argv = run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir), "--force",
                    "--keep-last", "2")
    argv[argv.index("--save-every-steps") + 1] = "1"
    code, report = run_in_process(argv)
    assert code == 0, report
    ours = sorted(set(p.name for p in ckpt.iterdir()) - set(strangers))
    assert ours == sorted(f"{stem}.{ext}" for stem in ("epoch-000", "epoch-002") for ext in
                          ("apr", "metadata.json", "state.json", "state.safetensors")) + [
        "step-0000011.apr", "step-0000011.state.json", "step-0000011.state.safetensors"]
    assert {name: value for name, value in snapshot(ckpt).items() if name in strangers} == strangers


# --- several processes ---------------------------------------------------------------------------

def torchrun(argv: list[str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(DRIVER), *argv], capture_output=True, text=True, timeout=300, env=CHILD_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.falsifies("FALSIFY-RESUME-005")
def test_falsify_resume_005_two_gloo_processes_resume_exactly(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                              tokenizer_dir: Path, config_path: Path) -> None:
    def argv(run_dir: Path, *extra: str) -> list[str]:
        args = run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir), *extra)
        args[args.index("--num-steps") + 1] = "6"
        return args

    full = torchrun(argv(tmp_path / "full"))
    assert full["world_size"] == 2
    for target in ("two", "one"):  # the run as it stood after step 2 (a mid-epoch checkpoint)
        shutil.copytree(tmp_path / "full", tmp_path / target)
        for later in (tmp_path / target / "ckpt").glob("epoch-*"):
            later.unlink()
    two = torchrun(argv(tmp_path / "two", "--resume", str(tmp_path / "two" / "ckpt" / "step-0000002.apr")))
    assert two["resume"]["step"] == 2 and step_view(two) == step_view(full, 2)
    assert (tmp_path / "two/ckpt/epoch-001.apr").read_bytes() == (tmp_path / "full/ckpt/epoch-001.apr").read_bytes()
    code, one = run_in_process(argv(tmp_path / "one", "--resume", str(tmp_path / "one" / "ckpt" / "step-0000002.apr"),
                                    "--allow-world-size-change"))
    assert code == 0 and one["world_size"] == 1
    for a, b in zip(step_view(one), step_view(full, 2), strict=True):
        assert a[0] == b[0] and abs(a[1] - b[1]) <= 1e-4, (a, b)


# --- the CUDA path -----------------------------------------------------------------------------

@REQUIRES_CUDA
@pytest.mark.falsifies("FALSIFY-RESUME-006")
def test_falsify_resume_006_cuda_resume_within_tolerance(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                         tokenizer_dir: Path, config_path: Path) -> None:
    import numpy as np

    from apr.format import load_file

    def argv(run_dir: Path, *extra: str) -> list[str]:
        args = run_args(dataset_dir, val_dir, tokenizer_dir, config_path, "--run-dir", str(run_dir), *extra)
        args[args.index("--device") + 1] = "cuda"
        args[args.index("--num-steps") + 1] = "8"
        args[args.index("--save-every-steps") + 1] = "4"
        args[args.index("--steps-per-epoch") + 1] = "8"
        return args

    code, full = run_in_process(argv(tmp_path / "full"))
    assert code == 0 and full["device"].startswith("cuda")
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    for later in (tmp_path / "resumed" / "ckpt").glob("epoch-000.*"):
        later.unlink()
    code, resumed = run_in_process(argv(tmp_path / "resumed", "--resume", str(tmp_path / "resumed")))
    assert code == 0 and resumed["resume"]["step"] == 4
    for a, b in zip(step_view(resumed), step_view(full, 4), strict=True):
        assert a[0] == b[0] and abs(a[1] - b[1]) <= 1e-2, (a, b)
    ours, theirs = load_file(tmp_path / "resumed/ckpt/epoch-000.apr"), load_file(tmp_path / "full/ckpt/epoch-000.apr")
    for name, tensor in theirs.items():
        assert np.all(np.isfinite(ours[name])) and np.max(np.abs(ours[name] - tensor)) <= 1e-2, name
