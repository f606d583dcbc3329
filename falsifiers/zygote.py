"""A warm parent for mutant children: imports pytest, numpy, torch... once, then forks a child per run.

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
or with ``APR_CONTRACTS_MUTANTS_FORK=0``, `falsifiers.mutant_runs` starts fresh interpreters.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

# Libraries a child would otherwise import again and again; each only if installed.
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
            process = subprocess.Popen([sys.executable, "-m", "falsifiers.zygote"], cwd=cwd, env=dict(env),
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
        import pytest

        sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *args]  # as `python -m pytest`

        code = int(pytest.main(args))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - report it in the log; the parent reads the exit code
        import traceback

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


if __name__ == "__main__":
    main()
