"""Run `apr` commands in a fresh child process and measure it: its exit codes and its peak RSS.

``python -m tests.reliability.runtime_probe RESULT COMMANDS_JSON`` runs each command (an argv list)
in this one process, in order, and writes their exit codes to RESULT as a JSON list. It installs the mutant
the harness has patched into the parent (``APR_CONTRACTS_MUTANT``) first, so a fault reaches the
child. `measure` starts it under an address-space limit and a time limit; the child reports its
own peak RSS (VmHWM), as `tests.reliability.bombs` does for the reader's bombs.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AS_LIMIT = 4 * 1024**3  # torch maps about 1.5 GiB of address space just by being imported


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: str  # "exited" | "timeout" | "killed"
    codes: list[int | None]
    peak_rss_mib: float
    detail: str = ""
    seconds: float = 0.0


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def measure(commands: list[list[str]], *, timeout: float = 120.0, env: dict[str, str] | None = None) -> ProbeResult:
    """Run ``commands`` in one limited child; its exit codes and peak RSS (MiB).

    ``env`` adds variables for the child (e.g. ``APR_CONTRACTS_MUTANT`` to measure the old code path).
    """
    env = dict(os.environ, **(env or {}), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile() as err:
        result = Path(scratch) / "codes.json"
        proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.runtime_probe", str(result),
                                 json.dumps(commands)], cwd=ROOT, env=env, preexec_fn=_limits,
                                stdout=subprocess.DEVNULL, stderr=err)
        from tests.reliability.bombs import wait_or_kill

        started = time.monotonic()
        status, usage, timed_out = wait_or_kill(proc, started, timeout, poll=0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        detail = err.read().decode(errors="replace")[-1500:]
        text = result.read_text() if result.is_file() else "[]"
        peak = result.with_suffix(".peak")
        # the child's own VmHWM (`tests.reliability.bombs.own_peak_rss_kib`: wait4's ru_maxrss
        # counts the forking worker's RSS too); wait4's figure only if the child died first
        kib = int(peak.read_text()) if peak.is_file() else usage.ru_maxrss
    rss, seconds = round(kib / 1024, 1), round(time.monotonic() - started, 2)
    if timed_out:
        return ProbeResult("timeout", [], rss, detail, seconds)
    if os.WIFSIGNALED(status) or proc.returncode != 0:
        return ProbeResult("killed", [], rss, f"exit {proc.returncode}: {detail}", seconds)
    return ProbeResult("exited", json.loads(text), rss, detail, seconds)


def _child(result: str, commands: list[list[str]]) -> int:
    from falsifiers.mutation import install_inherited_mutant

    install_inherited_mutant()
    from apr.cli.main import main

    codes: list[int | None] = []
    for command in commands:
        try:
            codes.append(main(command))
        except SystemExit as stop:
            codes.append(stop.code if isinstance(stop.code, int) else None)
    Path(result).write_text(json.dumps(codes))
    from tests.reliability.bombs import own_peak_rss_kib

    peak = own_peak_rss_kib()
    if peak is not None:
        Path(result).with_suffix(".peak").write_text(str(peak))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], json.loads(sys.argv[2])))
