"""``--mutants``: rerun each corroborated falsifier's bound tests once per mutant, each in a child pytest.

A child process per mutant, not a patch in this one: a mutant can never leak into another test or
another mutant (isolation is the process), xdist workers are left alone, and a mutant that hangs
is killed at its timeout. The child is given the falsifier's bound tests by node id, fastest first
(by the plain run's durations), stops at the first failure (``-x``), shrinks no Hypothesis example
(a mutant needs one failure, not the smallest) and writes a receipt: its
outcome for the falsifier says killed (REFUTED) or survived (CORROBORATED). Children run
``jobs`` at a time, the most expensive first (so a long one does not start last and run alone),
each with its share of the CPUs for OpenMP/MKL (`thread_env`): two torch children with two
threads each on two cores spin against each other and ran 4-6 times slower than one at a time.
On Linux each child is forked from a warm *zygote* (one per job slot, see below) that has already
imported pytest, Hypothesis, numpy and torch, instead of paying for them once per mutant.

*The zygote*: a warm parent for mutant children: imports pytest, numpy, torch... once, then forks a child per run.

Why: ``--mutants`` starts one pytest per mutant, and on a small machine most of each child's time was
start-up, not tests: the interpreter, pytest and Hypothesis (~0.5 s) and, for anything that trains,
torch (~1 s), paid again by each of ~120 children. A zygote pays them once per job slot and forks
a child that already has them; the child runs ``pytest.main`` exactly as ``python -m pytest`` would
(same arguments, folder and environment), so the isolation is still a process per mutant: nothing a
mutant patches survives its child. Only third-party libraries are preloaded, never the code under
test; the fault is patched in by the child, after the fork.

Not `multiprocessing`'s forkserver, which does the preloading too: it is one per process, started
with whatever environment the caller has at that moment and kept alive until the caller exits; a
zygote here gets the children's environment (their share of the CPUs for OpenMP, read once at
torch's import), belongs to one ``run_mutants`` call and is gone when it returns.

Protocol (one JSON object per line): the parent writes ``{"args": [...], "log": PATH, "timeout": S}``;
the zygote forks, waits (killing the child's process group at the timeout) and answers
``{"code": N, "timed_out": false}``. It runs on POSIX systems with ``fork`` (Linux); elsewhere,
or with ``APR_CONTRACTS_MUTANTS_FORK=0``, `run_mutants` starts fresh interpreters. The zygote is
this module run as a program (``python -m falsifiers.mutant_runs``).

*Progress* (`MutantProgress`, issue 17): a run of 160 mutants took minutes with no sign of life.

On a terminal one status line is rewritten in place (mutants done/total, survivors so far, elapsed);
elsewhere (CI logs) one line per contract is written when its last mutant finishes, so a log shows
progress without a line per mutant.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from falsifiers.corpus import SNAPSHOT_ENV
from falsifiers.mutation import UNCHECKED, MutantResult, MutantStatus, Problem, judge_mutant, mutant_problem
from falsifiers.records import Falsifier, Mutant

DEFAULT_TIMEOUT = 300.0
_DROP_ENV = ("PYTEST_XDIST_", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


@dataclass(frozen=True, slots=True)
class MutantRun:
    """One planned child run."""

    falsifier: Falsifier
    mutant: Mutant
    nodeids: tuple[str, ...]
    estimate: float = 0.0  # seconds the plain run spent in these tests (the child's upper bound)


def plan_runs(falsifiers: Sequence[Falsifier], outcomes: Mapping[str, str], bindings: Mapping[str, Sequence[str]],
              durations: Mapping[str, float] | None = None, *,
              check: Callable[[Mutant], Problem | None] | None = None) -> tuple[list[MutantRun], list[MutantResult]]:
    """Which mutants to run: those of corroborated falsifiers; the rest are recorded as not run.

    Every code mutant in scope is resolved first (``check``, default `mutant_problem`, in this
    process, where pytest has imported the tests): one that does not resolve or reaches outside
    the project is recorded as ``invalid`` and never run, whatever its falsifier's outcome (it
    makes the verdict NO-GO); except one left unchecked for a package this environment lacks
    (``mutant-unchecked``, e.g. numba for a falsifier that ``requires: [numba]``), which is not
    run when its falsifier was not corroborated either: its falsifier's outcome already says so.
    A run's tests are ordered fastest first (``durations``: the plain run's seconds per node id):
    the child stops at the first failure, so a cheap test that kills the mutant spares the rest.
    """
    durations = durations or {}
    check = check or mutant_problem
    runs: list[MutantRun] = []
    skipped: list[MutantResult] = []
    for falsifier in falsifiers:
        for mutant in falsifier.mutants:
            problem = check(mutant)
            outcome = outcomes.get(falsifier.id)
            if problem is not None and not (problem.code == UNCHECKED and outcome != "CORROBORATED"):
                skipped.append(MutantResult(falsifier.id, falsifier.contract, mutant.name, mutant.kind,
                                            MutantStatus.INVALID, problem.message))
                continue
            if outcome != "CORROBORATED":
                skipped.append(MutantResult(falsifier.id, falsifier.contract, mutant.name, mutant.kind,
                                            MutantStatus.NOT_RUN, f"the falsifier is {outcome or 'not in scope'}, "
                                            "not corroborated: its tests are not rerun"))
                continue
            nodeids = sorted(bindings.get(falsifier.id, ()), key=lambda n: durations.get(n, float("inf")))
            runs.append(MutantRun(falsifier, mutant, tuple(nodeids), sum(durations.get(n, 0.0) for n in nodeids)))
    return runs, skipped


def child_command(run: MutantRun, receipt: Path, *, profile: str, extra: Sequence[str] = ()) -> list[str]:
    """The child pytest for one mutant: only the bound tests (in the planned order), stop at the first failure."""
    return [sys.executable, "-m", "pytest", *child_args(run, receipt, profile=profile, extra=extra)]


def child_args(run: MutantRun, receipt: Path, *, profile: str, extra: Sequence[str] = ()) -> list[str]:
    """`child_command`'s pytest arguments (what a forked child passes to ``pytest.main``)."""
    command = ["-p", "falsifiers.plugin"]  # explicit, as falsifiers.runner does
    command += [*run.nodeids, f"--falsifier={run.falsifier.id}", f"--apply-mutant={run.falsifier.id}:{run.mutant.name}",
                f"--contracts-json={receipt}", f"--contracts-profile={profile}", "-x", "-q", "--no-header",
                "-p", "no:cacheprovider", "-p", "no:xdist", "-W", "ignore::pytest.PytestUnknownMarkWarning", *extra]
    return command


def run_mutants(runs: Sequence[MutantRun], *, rootdir: str | os.PathLike[str], profile: str, jobs: int = 1,
                extra: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT,
                corpus_snapshot: str | os.PathLike[str] | None = None,
                progress: Callable[[MutantResult, int, int], None] | None = None) -> list[MutantResult]:
    """Run every planned mutant (``jobs`` at a time) and say which were killed.

    ``progress(result, done, total)`` is called in this thread as each mutant finishes.

    ``corpus_snapshot``: a `falsifiers.corpus.write_snapshot` file the children read instead
    of linting the contracts again (they still check its key against the files).
    """
    env = thread_env({k: v for k, v in os.environ.items() if not k.startswith(_DROP_ENV)}, jobs)
    if corpus_snapshot is not None:
        env[SNAPSHOT_ENV] = os.fspath(corpus_snapshot)
    order = sorted(range(len(runs)), key=lambda n: -runs[n].estimate)  # longest first
    slots: queue.SimpleQueue[Zygote | None] = queue.SimpleQueue()
    started: list[Zygote] = []
    for _ in range(min(max(1, jobs), len(runs))):
        zygote = Zygote.start(cwd=rootdir, env=env) if supported(env) else None
        started += [zygote] if zygote is not None else []
        slots.put(zygote)
    try:
        with tempfile.TemporaryDirectory(prefix="apr-mutants-") as folder, \
                ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {n: pool.submit(_run_slot, slots, runs[n], Path(folder) / f"{n}.json", rootdir, profile,
                                      extra, env, timeout)
                       for n in order}
            if progress is not None:
                for finished, future in enumerate(as_completed(futures.values()), start=1):
                    progress(future.result(), finished, len(runs))
            return [futures[n].result() for n in range(len(runs))]
    finally:
        for zygote in started:
            zygote.close()


def _run_slot(slots: queue.SimpleQueue[Zygote | None], run: MutantRun, receipt: Path,
              rootdir: str | os.PathLike[str], profile: str, extra: Sequence[str], env: dict[str, str],
              timeout: float) -> MutantResult:
    """Run one mutant with a free job slot's zygote (or a fresh interpreter where there is none)."""
    zygote = slots.get()
    try:
        return _run_one(run, receipt, rootdir, profile, extra, env, timeout, zygote)
    finally:
        slots.put(zygote)


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(env: Mapping[str, str], jobs: int, cpus: int | None = None) -> dict[str, str]:
    """``env`` with each child's share of the CPUs for the numeric libraries (unless the user set one)."""
    result = dict(env)
    if jobs > 1 and not any(v in env for v in _THREAD_VARS):
        share = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
        result.update(dict.fromkeys(_THREAD_VARS, share))
    return result


def _run_one(run: MutantRun, receipt: Path, rootdir: str | os.PathLike[str], profile: str, extra: Sequence[str],
             env: dict[str, str], timeout: float, zygote: Zygote | None = None) -> MutantResult:
    start = time.perf_counter()
    base = (run.falsifier.id, run.falsifier.contract, run.mutant.name, run.mutant.kind)
    log = receipt.with_suffix(".log")
    answer = zygote.run(child_args(run, receipt, profile=profile, extra=extra), log=log, timeout=timeout) \
        if zygote is not None else None
    if answer is not None:
        code, timed_out = answer
        output = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    else:  # no zygote here (or it died): a fresh interpreter
        try:
            process = subprocess.run(child_command(run, receipt, profile=profile, extra=extra), cwd=rootdir,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace", timeout=timeout, check=False)
            code, timed_out, output = process.returncode, False, process.stdout
        except subprocess.TimeoutExpired:
            code, timed_out, output = -9, True, ""
    seconds = time.perf_counter() - start
    if timed_out:
        return MutantResult(*base, MutantStatus.ERROR, f"timed out after {timeout:.0f} s", seconds)
    if not receipt.is_file():
        tail = " | ".join(line for line in output.strip().splitlines()[-3:])
        return MutantResult(*base, MutantStatus.ERROR, f"pytest exited {code} without a verdict: {tail}"[:400],
                            seconds)
    document = json.loads(receipt.read_text(encoding="utf-8"))
    row = next((f for f in document.get("falsifiers", []) if f["id"] == run.falsifier.id), None)
    status, detail = judge_mutant(row["outcome"] if row else None, row["reason"] if row else "")
    return MutantResult(*base, status, detail[:400], seconds)


# Libraries a child would otherwise import again and again; each only if installed.
# --- the zygote: children forked from a warm parent -----------------------------------------------

PRELOAD = ("pytest", "_pytest.pytester", "_pytest.python", "hypothesis", "numpy", "yaml", "jsonschema",
           "safetensors", "torch")
DISABLE_ENV = "APR_CONTRACTS_MUTANTS_FORK"


def supported(env: Mapping[str, str]) -> bool:
    """Whether to fork children from a zygote (Linux with ``fork``, not switched off)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux") and env.get(DISABLE_ENV, "1") != "0"


@dataclass
class Zygote:
    """One warm parent process (owned by one job slot: it serves one run at a time)."""

    process: subprocess.Popen[str]

    @classmethod
    def start(cls, *, cwd: str | os.PathLike[str], env: Mapping[str, str]) -> Zygote | None:
        """A zygote for one job slot, or None if it cannot be started (the slot then starts fresh interpreters)."""
        try:
            process = subprocess.Popen([sys.executable, "-m", "falsifiers.mutant_runs"], cwd=cwd, env=dict(env),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True, bufsize=1)
        except OSError:
            return None
        return cls(process)

    def run(self, args: Sequence[str], *, log: str | os.PathLike[str], timeout: float) -> tuple[int, bool] | None:
        """Run ``pytest args`` in a forked child; its exit code and whether it timed out (None: zygote died)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"args": list(args), "log": os.fspath(log), "timeout": timeout}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        try:
            document = json.loads(answer)
            return int(document["code"]), bool(document["timed_out"])
        except (ValueError, KeyError, TypeError):  # it died (empty read) or said something else
            return None

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a library that is absent or broken here is simply not preloaded
            continue


def _child(args: list[str], log: str) -> None:
    """In the forked child: become ``python -m pytest ARGS`` writing to ``log``; never returns."""
    code = 70  # EX_SOFTWARE, if anything below raises
    try:
        os.setsid()  # its own process group: a timeout kills it and anything it started
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own descriptors, closed at exit
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *args]  # as `python -m pytest`

        code = int(pytest.main(args))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - report it in the log; the parent reads the exit code
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() >= deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return -int(signal.SIGKILL), True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer run requests until ``requests`` closes."""
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(list(request["args"]), request["log"])
        code, timed_out = _wait(pid, float(request["timeout"]))
        answers.write(json.dumps({"code": code, "timed_out": timed_out}) + "\n")
        answers.flush()


def main() -> None:
    # Answers go to a private copy of stdout; fd 1 itself goes where stderr goes (nowhere), so a
    # library that prints while it is preloaded cannot garble the protocol.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _preload()
    serve(sys.stdin, answers)


# --- progress ------------------------------------------------------------------------------------


class MutantProgress:
    """``progress`` callback for `falsifiers.mutant_runs.run_mutants`.

    Args:
        contracts: the contract of each planned run (to know when a contract is complete).
        write: writes one line (a terminal reporter's ``write_line``).
        rewrite: on a terminal, replaces the current line (``terminalreporter.rewrite``); ``None``
            off a terminal.
        clock: seconds, for the elapsed time (``time.perf_counter``).
    """

    def __init__(self, contracts: Sequence[str], write: Callable[[str], Any],
                 rewrite: Callable[[str], Any] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self._left = Counter(contracts)
        self._killed: Counter[str] = Counter()
        self._done: Counter[str] = Counter()
        self._survived = 0
        self._write, self._rewrite, self._clock = write, rewrite, clock
        self._start = clock()

    def __call__(self, result: Any, done: int, total: int) -> None:
        contract = result.contract
        killed = result.status.value == "killed"
        self._done[contract] += 1
        self._killed[contract] += killed
        self._survived += result.status.value == "survived"
        elapsed = self._clock() - self._start
        if self._rewrite is not None:
            self._rewrite(f"mutants: {done}/{total} done, {self._survived} survived, {_clock_text(elapsed)}")
            if done == total:
                self._write("")
        elif self._done[contract] == self._left[contract]:
            self._write(f"mutants: {contract}: {self._killed[contract]}/{self._done[contract]} killed "
                        f"({done}/{total} done, {_clock_text(elapsed)})")


def _clock_text(seconds: float) -> str:
    """``"1m05s"`` / ``"42s"``.

    >>> _clock_text(65.2), _clock_text(42)
    ('1m05s', '42s')
    """
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


__all__ = ["DEFAULT_TIMEOUT", "DISABLE_ENV", "PRELOAD", "MutantProgress", "MutantRun", "Zygote", "child_args",
           "child_command", "plan_runs", "run_mutants", "serve", "supported", "thread_env"]


if __name__ == "__main__":  # the zygote: ``python -m falsifiers.mutant_runs`` (`Zygote.start`)
    main()
