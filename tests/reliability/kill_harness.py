"""Crash-consistency harness: SIGKILL writers at random moments and check that nothing was lost.

A *zygote* process imports `apr` (CLI, converters, torch for checkpoints) once and forks one
child per run, so a trial costs a fork rather than an interpreter start and the kill lands inside
the command's real work. A trial:

1. snapshots the inputs (SHA-256) and the current output, if any (sometimes removed first);
2. starts the command in a forked child and SIGKILLs it after a uniform random delay in
   ``[0, 1.1 x the median duration of six uninterrupted runs]``;
3. checks: inputs byte-identical; the output absent, or the previous output unchanged, or
   exactly the output an uninterrupted run writes (byte-identical, and valid);
4. runs the command again to completion (the "next run"): it must succeed, leave a valid output
   and leave no stray temporary (``*.tmp-*``, ``*.old-*``, a stamp journal) in the folder.

``--in-place`` stamps are checked the same way with the input as the output: after the kill the
file is the old bytes, the new bytes, or recoverable from its journal by the next run.

Used by ``tests/reliability/test_kill_consistency.py`` (>= 20 trials per command) and
``bench/kill_campaign.py`` (>= 200). Run ``python -m tests.reliability.kill_harness --zygote`` only
through `Zygote`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRAY_MARKS = (".tmp-", ".old-", "stamp-journal")


# --- the zygote ---------------------------------------------------------------------------------


def _zygote_main() -> None:  # runs in the zygote process
    from tests.reliability.mutants import install_from_env

    install_from_env()  # the mutation check runs these tests with a fault patched in
    import apr.cli.main as cli_main
    import apr.convert.gguf_export  # pre-import: children start warm
    import apr.convert.gguf_import
    import apr.convert.hf_export
    import apr.convert.hf_import
    import apr.stamp  # noqa: F401
    import ml_dtypes  # noqa: F401 - apr imports it only for BF16 work now (~1 s): warm, or it fills the kill window
    import apr.train.checkpoint as checkpoint
    import numpy as np

    for module in ("apr.cli.stamp_cmd", "apr.cli.import_cmd", "apr.cli.export_cmd", "apr.cli.output",
                   "rich.logging", "rich.console"):
        __import__(module)

    # Made before any fork, so a child spends its whole life writing (where the kills must land).
    weights = {seed: {f"model.layers.{i}.mlp.up_proj.weight":
                      np.random.default_rng(seed).standard_normal((256, 256)).astype(np.float32) for i in range(8)}
               for seed in (0, 1)}

    def write_checkpoint(path: str, seed: int) -> int:
        tensors = weights[seed]
        checkpoint.write_checkpoint(path, tensors, {"architecture": "llama", "seed": seed}, 0x0400)
        checkpoint.write_sidecar(checkpoint.sidecar_path(path), {"epoch": 1, "seed": seed, "val_loss": float("nan")})
        return 0

    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # child
            code = 70
            try:
                os.chdir(request["cwd"])
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                if "argv" in request:
                    code = cli_main.main(request["argv"])
                else:
                    code = write_checkpoint(request["checkpoint"], request["seed"])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - a traceback is a bug: report it as code 99
                code = 99
            finally:
                os._exit(code)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        result = {"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


class Zygote:
    """A warm process that forks one child per command; `run` kills it after ``kill_after`` s."""

    def __init__(self) -> None:
        from tests.reliability.mutants import child_env

        env = dict(child_env(), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.kill_harness", "--zygote"],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout
        if not json.loads(self.proc.stdout.readline() or "{}").get("ready"):
            raise RuntimeError("the kill-harness zygote did not start")

    def run(self, request: dict, kill_after: float | None = None) -> tuple[dict, float]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self.proc.stdout.readline())["pid"]
        started = time.monotonic()  # the child's lifetime, not the request's round trip
        if kill_after is not None:
            time.sleep(kill_after)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the kill-harness zygote died")
        return json.loads(line), time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- checks -------------------------------------------------------------------------------------


def digest(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's files (names and bytes); None when absent."""
    if not path.exists():
        return None
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        h.update(str(file.relative_to(path)).encode() if file != path else b"")
        h.update(file.read_bytes())
    return h.hexdigest()


def strays(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if any(mark in n for mark in STRAY_MARKS))


def valid_apr(path: Path) -> str | None:
    from apr.format.validate import validate_file

    report = validate_file(path)
    return None if report.passed else f"{path.name} invalid: {[c.name for c in report.failed]}"


def valid_gguf(path: Path) -> str | None:
    import gguf

    try:
        reader = gguf.GGUFReader(os.fspath(path))
        return None if len(reader.tensors) > 0 else "gguf without tensors"
    except Exception as err:  # noqa: BLE001
        return f"gguf unreadable: {err}"


def valid_hf_folder(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path / "model.safetensors"), framework="np") as handle:
            if not list(handle.keys()):
                return "no tensors"
        json.loads((path / "config.json").read_text())
        json.loads((path / "tokenizer.json").read_text())
    except Exception as err:  # noqa: BLE001
        return f"hf folder unusable: {err}"
    return None


# --- commands -----------------------------------------------------------------------------------


@dataclass
class KillCommand:
    """One command under test. ``request(work, trial)`` gives the zygote request."""

    name: str
    output: str  # relative to the work folder
    validate: Callable[[Path], str | None]
    request: Callable[[Path, int], dict]
    inputs: tuple[Path, ...] = ()
    in_place: bool = False
    reset: Callable[[Path], None] | None = None  # in-place: restore the pristine input


@dataclass
class TrialStats:
    command: str
    trials: int = 0
    killed_mid_run: int = 0  # the child died of SIGKILL (not finished before the kill)
    strays_after_kill: int = 0  # trials where the kill left a temporary or journal behind
    output_absent: int = 0
    output_old: int = 0
    output_new: int = 0
    failures: list[str] = field(default_factory=list)
    stray_failures: int = 0  # failures that are only "a stray temporary survived the next run"

    @property
    def survived(self) -> int:
        return self.trials - len(self.failures)

    def to_dict(self) -> dict:
        return {"command": self.command, "trials": self.trials, "killed_mid_run": self.killed_mid_run,
                "strays_after_kill": self.strays_after_kill, "output_absent": self.output_absent,
                "output_old": self.output_old, "output_new": self.output_new, "survived": self.survived,
                "stray_failures": self.stray_failures,
                "failures": self.failures[:10]}


def build_assets(folder: Path, *, hidden: int = 128, layers: int = 4) -> dict[str, Path]:
    """A tiny qwen2 HF folder, its .apr import and a GGUF export (2.7 MB each by default)."""
    from apr.convert.gguf_export import export_gguf
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder

    folder.mkdir(parents=True, exist_ok=True)
    hf = build_hf_folder(folder / "hf", "qwen2", hidden=hidden, layers=layers, heads=4, kv_heads=2,
                          inter=2 * hidden)
    apr = folder / "model.apr"
    import_hf(hf, apr)
    gguf = folder / "model.gguf"
    export_gguf(apr, gguf)
    return {"hf": hf, "apr": apr, "gguf": gguf}


_PATCHES = (["--license", "MIT"], ["--license", "Apache-2.0", "--data-source", "teacher-only"],
            ["--description", "x" * 3000])  # the last does not fit before the data: a full rewrite


def commands(assets: dict[str, Path]) -> dict[str, KillCommand]:
    apr, hf, gguf = assets["apr"], assets["hf"], assets["gguf"]
    inputs_hf = tuple(sorted(p for p in hf.iterdir() if p.is_file()))

    def stamp_o(work: Path, trial: int) -> dict:
        return {"argv": ["stamp", os.fspath(apr), *_PATCHES[trial % 2], "-o", "out.apr", "-f"], "cwd": os.fspath(work)}

    def stamp_in_place(work: Path, trial: int) -> dict:
        return {"argv": ["stamp", "in.apr", *_PATCHES[trial % 3], "--in-place"], "cwd": os.fspath(work)}

    def reset_in_place(work: Path) -> None:
        shutil.copyfile(apr, work / "in.apr")

    return {
        "stamp-o": KillCommand("stamp-o", "out.apr", valid_apr, stamp_o, (apr,)),
        "stamp-in-place": KillCommand("stamp-in-place", "in.apr", valid_apr, stamp_in_place, in_place=True,
                                      reset=reset_in_place),
        "import-hf": KillCommand("import-hf", "out.apr", valid_apr, lambda w, t: {
            "argv": ["import", os.fspath(hf), "-o", "out.apr", "-f"], "cwd": os.fspath(w)}, inputs_hf),
        "import-gguf": KillCommand("import-gguf", "out.apr", valid_apr, lambda w, t: {
            "argv": ["import", os.fspath(gguf), "-o", "out.apr", "-f"], "cwd": os.fspath(w)}, (gguf,)),
        "export-safetensors": KillCommand("export-safetensors", "out", valid_hf_folder, lambda w, t: {
            "argv": ["export", os.fspath(apr), "--format", "safetensors", "-o", "out", "-f"], "cwd": os.fspath(w)},
            (apr,)),
        "export-gguf": KillCommand("export-gguf", "out.gguf", valid_gguf, lambda w, t: {
            "argv": ["export", os.fspath(apr), "--format", "gguf", "-o", "out.gguf", "-f"], "cwd": os.fspath(w)},
            (apr,)),
        "checkpoint": KillCommand("checkpoint", "epoch-001.apr", valid_apr, lambda w, t: {
            "checkpoint": os.fspath(w / "epoch-001.apr"), "seed": t % 2, "cwd": os.fspath(w)}),
    }


def run_trials(zygote: Zygote, command: KillCommand, work: Path, trials: int, seed: int) -> TrialStats:
    """Run ``trials`` kill trials of ``command`` in ``work``; every failure is described in the stats."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    stats = TrialStats(command.name)
    output = work / command.output
    # Calibrate: the duration and the exact bytes of an uninterrupted run, for each request variant.
    expected: dict[str, str | None] = {}
    durations = []
    for variant in range(6):
        if command.reset:
            command.reset(work)
        result, took = zygote.run(command.request(work, variant))
        if result["code"] != 0:
            raise RuntimeError(f"{command.name}: an uninterrupted run failed with {result}")
        durations.append(took)
        expected[json.dumps(command.request(work, variant))] = digest(output)
    window = 1.1 * sorted(durations)[len(durations) // 2]  # the median run: kills land inside the work
    before_inputs = {p: digest(p) for p in command.inputs}
    for trial in range(trials):
        stats.trials += 1
        request = command.request(work, trial)
        key = json.dumps(request)
        if command.reset:
            command.reset(work)
        elif rng.random() < 0.3 and output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        old = digest(output)
        result, _ = zygote.run(request, kill_after=rng.uniform(0, window))
        if result["signal"] == signal.SIGKILL:
            stats.killed_mid_run += 1
        elif result["code"] != 0:
            stats.failures.append(f"trial {trial}: the run exited {result} before the kill")
            continue
        problem = _check_after_kill(command, work, output, old, expected[key], before_inputs, stats)
        if problem:
            stats.failures.append(f"trial {trial}: {problem}")
            continue
        rerun, _ = zygote.run(request)
        problem = _check_after_rerun(command, work, output, rerun, expected[key], before_inputs)
        if problem:
            stats.failures.append(f"trial {trial}: next run: {problem}")
            if problem.startswith("stray"):
                stats.stray_failures += 1
    return stats


def _check_after_kill(command: KillCommand, work: Path, output: Path, old: str | None, new: str | None,
                      before_inputs: dict[Path, str | None], stats: TrialStats) -> str | None:
    changed = [p.name for p, d in before_inputs.items() if digest(p) != d]
    if changed:
        return f"input changed by a killed run: {changed}"
    left = strays(work)
    if left:
        stats.strays_after_kill += 1
    now = digest(output)
    if command.in_place:
        if any("journal" in n for n in left):
            return None  # the next run must recover it (checked after the rerun)
        if now not in (old, new):
            return "in-place target is neither the old nor the new file and no journal is left"
        stats.output_old += now == old
        stats.output_new += now == new and now != old
        return None
    if now is None:
        stats.output_absent += 1
        return None
    if now == old:
        stats.output_old += 1
        return None
    if now == new:
        stats.output_new += 1
        return command.validate(output)
    return "output is neither absent, nor the previous output, nor a complete new one"


def _check_after_rerun(command: KillCommand, work: Path, output: Path, result: dict, new: str | None,
                       before_inputs: dict[Path, str | None]) -> str | None:
    if result["code"] != 0:
        return f"exited {result}"
    changed = [p.name for p, d in before_inputs.items() if digest(p) != d]
    if changed:
        return f"input changed: {changed}"
    problem = command.validate(output)
    if problem:
        return problem
    if digest(output) != new:
        return "output differs from an uninterrupted run's"
    left = strays(work)
    return f"stray temporaries left after the next run: {left}" if left else None


if __name__ == "__main__" and sys.argv[1:] == ["--zygote"]:
    _zygote_main()
