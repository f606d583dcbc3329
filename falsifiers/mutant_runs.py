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
On Linux each child is forked from a warm `falsifiers.zygote` (one per job slot) that has already
imported pytest, Hypothesis, numpy and torch, instead of paying for them once per mutant.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from falsifiers.mutant_resolution import Problem, mutant_problem
from falsifiers.mutation import MutantResult, MutantStatus
from falsifiers.records import Falsifier, Mutant
from falsifiers.zygote import Zygote
from falsifiers.zygote import supported as zygote_supported

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
    makes the verdict NO-GO).
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
            if problem is not None:
                skipped.append(MutantResult(falsifier.id, falsifier.contract, mutant.name, mutant.kind,
                                            MutantStatus.INVALID, problem.message))
                continue
            outcome = outcomes.get(falsifier.id)
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

    ``corpus_snapshot``: a `falsifiers.corpus_cache.write_snapshot` file the children read instead
    of linting the contracts again (they still check its key against the files).
    """
    env = thread_env({k: v for k, v in os.environ.items() if not k.startswith(_DROP_ENV)}, jobs)
    if corpus_snapshot is not None:
        from falsifiers.corpus_cache import SNAPSHOT_ENV

        env[SNAPSHOT_ENV] = os.fspath(corpus_snapshot)
    order = sorted(range(len(runs)), key=lambda n: -runs[n].estimate)  # longest first
    slots: queue.SimpleQueue[Zygote | None] = queue.SimpleQueue()
    started: list[Zygote] = []
    for _ in range(min(max(1, jobs), len(runs))):
        zygote = Zygote.start(cwd=rootdir, env=env) if zygote_supported(env) else None
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
    from falsifiers.mutation import judge_mutant

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


__all__ = ["DEFAULT_TIMEOUT", "MutantRun", "child_args", "child_command", "plan_runs", "run_mutants", "thread_env"]
