"""The throughput gate idle and with every core busy: prints figures and verdicts, asserts nothing.

Issue 14: `apr qa` said GO at 20.9 tok/s and, a minute later on the same file, `apr readiness`
said NO-GO at 3.8 tok/s. The gate now decides on tokens per CPU-second of the generating thread,
on one intra-op thread (apr/qa/throughput.py). This script measures, on one model, idle and then
with ``--busy`` CPU-burning processes (``python -c 'while True: pass'``, default: cores + 1):

1. the measurement itself, in this process, ``--repeats`` times: the gate's value (tokens per
   CPU-second, one thread), the wall-clock rate of the same runs, and the old measure (wall-clock,
   torch's default thread count, best of 3 generations);
2. ``apr qa FILE --json`` as a user runs it (a fresh process): the throughput value and the verdict;
3. with ``--model-card``, ``apr readiness FILE --model-card CARD --json``: the verdict and seconds.

Usage::

    .venv/bin/python bench/qa_load_bench.py demo-out/model.apr --model-card demo-out/MODEL_CARD.md
    .venv/bin/python bench/qa_load_bench.py MODEL.apr --busy 3 --repeats 7 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

APR = [os.fspath(Path(sys.executable).with_name("apr"))]  # the console script beside this interpreter


@contextlib.contextmanager
def busy(count: int) -> Iterator[None]:
    """``count`` processes that burn a core each until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let the scheduler see them
        yield
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait()


def measure_in_process(path: str, repeats: int) -> dict[str, list[float]]:
    """The gate's measurement and the old one on the same loaded model, ``repeats`` times each."""
    from apr.qa.throughput import measure_throughput
    from apr.run import generate_text, load_model
    from apr.run.generate import SamplingConfig

    loaded = load_model(path)
    sampling = SamplingConfig(max_tokens=16, temperature=0.0)

    def generate() -> int:
        text = "".join(generate_text(loaded, "The", sampling))
        return len(loaded.tokenizer.encode(text, add_special_tokens=False).ids)

    figures: dict[str, list[float]] = {"cpu_rate": [], "wall_rate_1_thread": [], "old_wall_rate": []}
    for _ in range(repeats):
        sample = measure_throughput(generate)
        figures["cpu_rate"].append(sample.rate)
        figures["wall_rate_1_thread"].append(sample.wall_rate)
        best = 0.0
        for _ in range(3):  # the old gate: wall clock, default threads, best of 3
            start = time.perf_counter()
            tokens = generate()
            best = max(best, tokens / (time.perf_counter() - start))
        figures["old_wall_rate"].append(best)
    return figures


def run_json(argv: list[str]) -> tuple[dict[str, Any], float, int]:
    start = time.perf_counter()
    done = subprocess.run([*APR, *argv, "--json"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    try:
        document = json.loads(done.stdout)
    except ValueError:
        document = {"error": done.stderr.strip()[-400:]}
    return document, seconds, done.returncode


def condition(path: str, card: str | None, repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {"in_process": measure_in_process(path, repeats)}
    qa, seconds, code = run_json(["qa", path])
    gate = next((g for g in qa.get("gates", []) if g.get("name") == "throughput"), {})
    result["apr_qa"] = {"verdict": qa.get("verdict"), "exit_code": code, "seconds": round(seconds, 1),
                        "throughput": gate.get("value"), "unit": gate.get("unit"), "message": gate.get("message")}
    if card:
        ready, seconds, code = run_json(["readiness", path, "--model-card", card])
        result["apr_readiness"] = {"verdict": ready.get("verdict"), "exit_code": code, "seconds": round(seconds, 1),
                                   "blockers": ready.get("blockers")}
    return result


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  min {min(values):7.1f}  max {max(values):7.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an .apr file (e.g. demo-out/model.apr from `apr demo`)")
    parser.add_argument("--model-card", help="also run `apr readiness` with this card")
    parser.add_argument("--busy", type=int, default=(os.cpu_count() or 1) + 1, help="CPU-burning processes")
    parser.add_argument("--repeats", type=int, default=5, help="in-process measurements per condition")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = {"cpus": os.cpu_count(), "busy_processes": args.busy, "idle": condition(args.model, args.model_card,
                                                                                      args.repeats)}
    with busy(args.busy):
        results["busy"] = condition(args.model, args.model_card, args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.model}: {os.cpu_count()} CPUs; 'busy' = {args.busy} processes running `while True: pass`")
    for name in ("idle", "busy"):
        block = results[name]
        print(f"\n{name}")
        for key, label in (("cpu_rate", "gate value, tok per CPU-s (1 thread)"),
                           ("wall_rate_1_thread", "wall clock, same runs (1 thread)"),
                           ("old_wall_rate", "old gate: wall clock, default threads")):
            print(f"  {label:<40} {summary(block['in_process'][key])}")
        qa = block["apr_qa"]
        print(f"  apr qa: {qa['verdict']} (exit {qa['exit_code']}, {qa['seconds']} s), throughput {qa['throughput']}")
        if "apr_readiness" in block:
            ready = block["apr_readiness"]
            print(f"  apr readiness: {ready['verdict']} (exit {ready['exit_code']}, {ready['seconds']} s), "
                  f"blockers {ready['blockers']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
