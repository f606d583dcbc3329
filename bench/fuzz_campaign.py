"""Fuzz every issue-8 target for a given time; report executions and crashes; keep new crashers.

Usage::

    .venv/bin/python bench/fuzz_campaign.py --seconds 120            # every target, 120 s each
    .venv/bin/python bench/fuzz_campaign.py --target sniff --seconds 30 --engine mutate
    .venv/bin/python bench/fuzz_campaign.py --write-seeds            # regenerate the seed corpus
    .venv/bin/python bench/fuzz_campaign.py --write-seeds --target write_faults   # one target's seeds

Engines: ``atheris`` (coverage-guided libFuzzer, used when ``pip install atheris`` worked; never
a dependency of the test suite) and ``mutate`` (byte-level mutation of the corpus with a seeded
``random.Random``: bit flips, byte sets, interesting integers, splices, truncations, repeats).

Structured targets (issue 14: ``metadata_types``, ``hf_side_files``, ``gguf_values``,
``write_faults``, which run whole `apr` commands through the top-level guard) first run every case
their ``enumerate`` yields, then mutate for the time left; the summary counts both
(``enumerated`` of ``enumerable``). Their crashes include the guard's internal errors (re-raised
as the original exception) and ``UndocumentedEnd`` (an exit code outside the table, a traceback in
the output, a failed write that changed the previous output or left a temporary).

Each target runs in its own process under an address-space limit, so a bomb the fuzzer finds
cannot take the machine down; a per-input alarm turns a hang into a finding. A crash is any
exception outside the target's allowed errors (`tests/reliability/targets.py`); its input is saved
to ``tests/reliability/corpus/<target>/crash-<sha1>`` (``--no-save`` to skip) and the test suite
replays it from then on. The last line is a JSON summary (``--json-out FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.targets import mutate  # noqa: E402

_PER_INPUT_SECONDS = 10


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang(f"input took longer than {_PER_INPUT_SECONDS} s")


# --- worker (one target, one process) -----------------------------------------------------------


def _limit_memory(mib: int) -> None:
    limit = mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _save_crash(target: str, data: bytes, err: BaseException, save: bool, found: dict, known: set) -> None:
    digest = hashlib.sha1(data).hexdigest()[:16]
    kind = f"{type(err).__name__}: {str(err)[:160]}"
    signature = f"{type(err).__name__}@{getattr(err, 'where', None) or _where(err)}"
    if data in known:  # a crasher already in the corpus, replayed as a seed: not a new finding
        found.setdefault("known-corpus-crashers-replayed", {"kind": "already in the corpus", "count": 0,
                                                            "example": None})["count"] += 1
        return
    entry = found.setdefault(signature, {"kind": kind, "count": 0, "example": None})
    entry["count"] += 1
    if save and entry["example"] is None:
        from tests.reliability.targets import CORPUS

        path = CORPUS / target / f"crash-{digest}"
        path.write_bytes(data)
        entry["example"] = str(path.relative_to(ROOT))


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/apr/" in f.filename or "/falsifiers/" in f.filename]
    frame = (ours or frames or [None])[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


def worker(target_name: str, seconds: float, engine: str, seed: int, save: bool, summary_path: str) -> None:
    _limit_memory(4096)
    signal.signal(signal.SIGALRM, _on_alarm)
    found: dict = {}
    known: set[bytes] = set()
    stats = {"target": target_name, "engine": engine, "executions": 0, "seconds": seconds}
    deadline = time.monotonic() + seconds

    def flush() -> None:
        stats["crashes"] = sum(v["count"] for k, v in found.items() if k != "known-corpus-crashers-replayed")
        stats["unique_crashes"] = found
        Path(summary_path).write_text(json.dumps(stats))

    if engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["apr", "falsifiers"]):
            from tests.reliability import targets as targets_module
    else:
        from tests.reliability import targets as targets_module
    target = targets_module.TARGETS[target_name]
    last_flush = [time.monotonic()]

    def one(data: bytes) -> None:
        stats["executions"] += 1
        try:
            signal.alarm(_PER_INPUT_SECONDS)
            try:
                err = targets_module.outcome(target, data)
            finally:
                signal.alarm(0)
        except _Hang as hang:  # also when the alarm fires inside the finally
            err = hang
        except MemoryError as oom:
            err = oom
        if err is not None:
            _save_crash(target_name, data, err, save, found, known)
        if time.monotonic() - last_flush[0] > 0.5:
            last_flush[0] = time.monotonic()
            flush()

    seeds = [p.read_bytes() for p in targets_module.corpus_files(target_name)]
    known.update(p.read_bytes() for p in targets_module.corpus_files(target_name) if p.name.startswith("crash-"))
    if target.enumerate is not None:  # every case of a structured class once, then mutation
        cases = list(target.enumerate())
        stats["enumerable"], stats["enumerated"] = len(cases), 0
        for data in cases:
            if time.monotonic() >= deadline:
                break
            one(data)
            stats["enumerated"] += 1
        flush()
    if engine == "atheris":
        work = tempfile.mkdtemp(prefix=f"apr-fuzz-{target_name}-")
        for index, data in enumerate(seeds):
            Path(work, f"seed-{index}").write_bytes(data)
        flush()
        left = max(1, int(deadline - time.monotonic()))
        atheris.Setup([sys.argv[0], work, f"-max_total_time={left}", "-print_final_stats=1",
                       f"-seed={seed}", "-max_len=65536", "-rss_limit_mb=0", "-timeout=30"], one)
        atheris.Fuzz()  # exits the process when the time is up
        return
    rng = random.Random(seed)
    for data in seeds:
        one(data)
    pool = seeds or [b""]
    while time.monotonic() < deadline:
        one(mutate(rng.choice(pool), rng, pool))
    flush()
    targets_module.cleanup()


# --- driver -------------------------------------------------------------------------------------


def run_target(name: str, seconds: float, engine: str, seed: int, save: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        summary = handle.name
    command = [sys.executable, __file__, "--worker", name, "--seconds", str(seconds), "--engine", engine,
               "--seed", str(seed), "--summary", summary] + ([] if save else ["--no-save"])
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300)
    elapsed = time.monotonic() - started
    try:
        result = json.loads(Path(summary).read_text())
    except (OSError, ValueError):
        result = {"target": name, "engine": engine, "executions": 0, "crashes": 0, "unique_crashes": {}}
    finally:
        Path(summary).unlink(missing_ok=True)
    if engine == "atheris":
        match = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
        if match:
            result["libfuzzer_executions"] = int(match.group(1))
    result["wall_seconds"] = round(elapsed, 1)
    result["worker_exit"] = proc.returncode
    if proc.returncode not in (0,):
        result["worker_tail"] = proc.stderr[-2000:]
    return result


def write_seeds(targets: list[str] | None = None) -> None:
    from tests.reliability.seeds import write_all

    for target, count in write_all(targets).items():
        print(f"{target}: {count} seeds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", help="a target name (repeatable; default: all)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time per target")
    parser.add_argument("--engine", choices=("atheris", "mutate", "auto"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="do not add crashing inputs to the corpus")
    parser.add_argument("--json-out", help="also write the summary here")
    parser.add_argument("--write-seeds", action="store_true", help="regenerate the committed seed corpus")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--summary", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    if args.write_seeds:
        write_seeds(args.target)
        return 0
    if args.worker:
        worker(args.worker, args.seconds, engine, args.seed, not args.no_save, args.summary)
        return 0
    from tests.reliability.targets import TARGETS

    names = args.target or list(TARGETS)
    results = []
    for name in names:
        result = run_target(name, args.seconds, engine, args.seed, not args.no_save)
        results.append(result)
        crashes = result.get("crashes", 0)
        enumerated = (f"  enumerated {result['enumerated']}/{result['enumerable']}" if "enumerable" in result else "")
        print(f"{name:18} {engine:8} {result['executions']:>9} execs in {result['wall_seconds']:>6} s  "
              f"crashes {crashes} ({len(result.get('unique_crashes', {}))} unique){enumerated}", flush=True)
        for signature, info in result.get("unique_crashes", {}).items():
            print(f"    {signature}  x{info['count']}  {info['kind']}  -> {info['example']}", flush=True)
    summary = {"engine": engine, "seconds_per_target": args.seconds, "targets": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({r["target"]: {"executions": r["executions"], "crashes": r.get("crashes", 0),
                                    **({"enumerated": r["enumerated"], "enumerable": r["enumerable"]}
                                       if "enumerable" in r else {})} for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
