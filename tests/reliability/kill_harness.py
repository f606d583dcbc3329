"""Crash-consistency harness: SIGKILL writers at random moments and check that nothing was lost.

A *zygote* process imports `apr` (CLI, converters, torch for checkpoints) once and forks one
child per run, so a trial costs a fork rather than an interpreter start and the kill lands inside
the command's real work. A trial:

1. snapshots the inputs (SHA-256) and the current output, if any (sometimes removed first);
2. starts the command in a forked child and SIGKILLs it after a uniform random delay: on odd
   trials in ``[0, 1.1 x the median duration of six uninterrupted runs]``, on even ones in
   ``[0, 0.8 x their median write]`` counted from the child's first temporary (its trace);
3. checks: inputs byte-identical; the output absent, or the previous output unchanged, or
   exactly the output an uninterrupted run writes (byte-identical, and valid); and where the kill
   landed, from the child's trace (`_trace_writes`): *before* its first temporary (the output must
   be as it was, no temporary left), *inside* the write (between the first temporary and the
   command's return), or *after* the command returned (the output must be the new one);
4. runs the command again to completion (the "next run"): it must succeed, leave a valid output
   and leave no stray temporary (``*.tmp-*``, ``*.old-*``, a stamp journal) in the folder.

``--in-place`` stamps are checked the same way with the input as the output: after the kill the
file is the old bytes, the new bytes, or recoverable from its journal by the next run.

Used by ``tests/reliability/test_kill_consistency.py`` (>= 20 trials per command) and
``bench/kill_campaign.py`` (>= 200). Run ``python -m tests.reliability.kill_harness --zygote`` only
through `Zygote`.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRAY_MARKS = (".tmp-", ".old-", "stamp-journal")


# --- the zygote ---------------------------------------------------------------------------------


def _trace_writes(path: str, output: str | None = None) -> Callable[[str], None]:
    """In a forked child: append ``begin`` to ``path`` whenever a temporary output appears (a
    ``tempfile.mkstemp``, which `apr.format.atomic` and the stamp journal use, or a ``.tmp-``
    folder, which folder outputs stage in), or whenever ``output`` itself (or a file inside it) is
    opened for writing, which correct code never does (it renames a finished temporary there): so
    a write straight onto the output, the fault atomic writes exist to prevent, is a write window
    the aimed kills find, not one only an unaimed kill may happen to hit. Returns the function
    that marks ``done``. O_APPEND writes survive the SIGKILL, so the parent reads how far the
    child got."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
    real_mkstemp, real_mkdir, real_open = tempfile.mkstemp, os.mkdir, io.open
    target = os.path.abspath(output) if output else None

    def onto_output(file: object, mode: str) -> bool:
        if target is None or not isinstance(file, (str, bytes, os.PathLike)) or not set(mode) & set("wax+"):
            return False
        where = os.path.abspath(os.fsdecode(file))
        return where == target or where.startswith(target + os.sep)

    def mark(event: str) -> None:
        os.write(fd, f"{event} {time.monotonic()}\n".encode())  # CLOCK_MONOTONIC: the parent's clock too

    def mkstemp(*args, **kwargs):
        mark("begin")  # before the file exists: a kill in between is "inside", never a stray "before"
        return real_mkstemp(*args, **kwargs)

    def mkdir(target, *args, **kwargs):
        if ".tmp-" in os.fspath(target):
            mark("begin")
        real_mkdir(target, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if onto_output(file, mode):
            mark("begin")
        return real_open(file, mode, *args, **kwargs)

    tempfile.mkstemp = mkstemp  # type: ignore[assignment] - only in this child
    os.mkdir = mkdir
    builtins.open = io.open = open_  # type: ignore[assignment] - pathlib opens through io.open
    return mark


def _events(trace: Path) -> list[tuple[str, float]]:
    if not trace.exists():
        return []
    rows = [line.split() for line in trace.read_text().splitlines()]
    return [(row[0], float(row[1])) for row in rows if len(row) == 2]  # a torn last line is ignored


def landing(trace: Path) -> str:
    """Where a child's life ended by its trace: ``before`` its first temporary, ``inside`` the
    write, or ``after`` the command returned."""
    events = [event for event, _ in _events(trace)]
    if "done" in events:
        return "after"
    return "inside" if "begin" in events else "before"


def write_span(trace: Path) -> float:
    """Seconds from a finished child's first temporary to its return."""
    events = _events(trace)
    begin = next(when for event, when in events if event == "begin")
    return next(when for event, when in events if event == "done") - begin


def _has_begun(trace: Path) -> bool:
    try:
        return b"begin" in trace.read_bytes()
    except FileNotFoundError:
        return False


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
                mark = _trace_writes(request["trace"], request.get("output")) if request.get("trace") else None
                if "argv" in request:
                    code = cli_main.main(request["argv"])
                else:
                    code = write_checkpoint(request["checkpoint"], request["seed"])
                if mark is not None:
                    mark("done")
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


def _alive(pid: int) -> bool:
    """Whether the child still runs (the zygote reaps it at once, so a finished one is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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

    def run(self, request: dict, kill_after: float | None = None, *, after_begin: Path | None = None
            ) -> tuple[dict, float]:
        """Run ``request`` in a forked child; SIGKILL it ``kill_after`` seconds after it starts or,
        with ``after_begin`` (the request's trace), after its first temporary appears there."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self.proc.stdout.readline())["pid"]
        started = time.monotonic()  # the child's lifetime, not the request's round trip
        if kill_after is not None:
            if after_begin is not None:
                deadline = started + 120
                while not _has_begun(after_begin) and time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.0002)
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
    landed: dict[str, int] = field(default_factory=lambda: {"before": 0, "inside": 0, "after": 0})  # by the trace
    aimed: int = 0  # trials killed at a random moment after the first temporary appeared
    aimed_inside: int = 0  # of those, the kills that landed before the command returned

    @property
    def survived(self) -> int:
        return self.trials - len(self.failures)

    def to_dict(self) -> dict:
        return {"command": self.command, "trials": self.trials, "killed_mid_run": self.killed_mid_run,
                "strays_after_kill": self.strays_after_kill, "output_absent": self.output_absent,
                "output_old": self.output_old, "output_new": self.output_new, "survived": self.survived,
                "stray_failures": self.stray_failures, "landed": dict(self.landed),
                "aimed": self.aimed, "aimed_inside": self.aimed_inside,
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
    durations, spans = [], []
    trace = work.parent / f"{work.name}.trace"
    for variant in range(6):
        if command.reset:
            command.reset(work)
        trace.unlink(missing_ok=True)
        result, took = zygote.run({**command.request(work, variant), "trace": os.fspath(trace),
                                   "output": os.fspath(output)})
        if result["code"] != 0:
            raise RuntimeError(f"{command.name}: an uninterrupted run failed with {result}")
        durations.append(took)
        spans.append(write_span(trace))
        expected[json.dumps(command.request(work, variant))] = digest(output)
    window = 1.1 * sorted(durations)[len(durations) // 2]  # the median run: kills land inside the work
    span = measured_span = 0.8 * sorted(spans)[len(spans) // 2]  # most of the median write (first temporary
    # to return); re-aimed below
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
        trace.unlink(missing_ok=True)  # a child killed before it opens its trace must not read the last one's
        aimed = trial % 2 == 0  # even trials: a random moment of the write; odd: of the whole run
        result, _ = zygote.run({**request, "trace": os.fspath(trace), "output": os.fspath(output)},
                               kill_after=rng.uniform(0, span if aimed else window), after_begin=trace if aimed else None)
        if result["signal"] == signal.SIGKILL:
            stats.killed_mid_run += 1
        elif result["code"] != 0:
            stats.failures.append(f"trial {trial}: the run exited {result} before the kill")
            continue
        where = landing(trace)
        stats.landed[where] += 1
        if aimed:
            stats.aimed += 1
            stats.aimed_inside += where == "inside"
            # Re-aim from what landed, so a machine that speeds up or slows down after the
            # calibration runs (other jobs starting or ending) does not decide the share inside:
            # shorten after a kill that came too late, lengthen (up to the measured span) after a hit.
            span = 0.6 * span if where == "after" else min(measured_span, 1.2 * span)
        problem = _landing_problem(where, work, output, old, expected[key])
        problem = problem or _check_after_kill(command, work, output, old, expected[key], before_inputs, stats)
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


def _landing_problem(where: str, work: Path, output: Path, old: str | None, new: str | None) -> str | None:
    """The outcome a kill's place implies: nothing touched before the first temporary, the new
    output once the command returned."""
    if where == "before" and (digest(output) != old or strays(work)):
        return f"killed before any temporary, yet the output changed or {strays(work)} appeared"
    if where == "after" and digest(output) != new:
        return "killed after the command returned, yet the output is not the new one"
    return None


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
