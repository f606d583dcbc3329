"""Benchmarks for the contract harness; prints figures and ratios, asserts nothing.

1. ``lint``: `falsifiers.lint.lint_paths` over 2,000 generated contracts (3 invariants and 3
   falsifiers each), against a budget of 3 s.
2. ``plugin``: a generated 500-test suite (50 contracts x 10 falsifiers, one bound test each), run
   with the plugin and with ``-p no:apr_contracts``, interleaved in one invocation, median of N
   runs each; the ratio is the overhead (budget: 5 %). Measured warm (pytest's cache holds the
   schema findings of unchanged contracts, as on any second run) and cold (``-p no:cacheprovider``).
3. ``own`` (``--own``): the plugin's fixed cost on this repository's own suite, warm, against
   ``-p no:apr_contracts`` in the same invocation (budget: 60 ms, issue 18): collecting the whole
   suite (plugin start-up, the cached corpus, binding every test), and running one small test file
   (the same plus the verdict and its table). Both variants run with ``--strict-markers`` dropped,
   since without the plugin nothing registers the ``falsifies`` marker.

Usage::

    .venv/bin/python bench/harness_bench.py            # both, 7 rounds of the suite
    .venv/bin/python bench/harness_bench.py --rounds 3 --contracts 2000 --tests 500
    .venv/bin/python bench/harness_bench.py --instructions   # + a deterministic count (valgrind)
    .venv/bin/python bench/harness_bench.py --own --rounds 7 # the fixed cost on this repository
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTRACT = """\
metadata:
  version: 1.0.0
  status: FUNCTIONAL
  description: "generated contract {n}"
  references: ["bench"]
  depends_on: [{depends}]
  changelog:
    - {{version: 1.0.0, date: "2026-11-26", changes: "generated"}}
invariants:
{invariants}
falsification_tests:
{falsifiers}
"""


def contract_text(n: int, per: int, depends: str = "") -> str:
    prefix = f"B{n:05d}"
    invariants = "\n".join(f"  - id: INV-{prefix}-{k:03d}\n    statement: \"promise {k} of contract {n}\""
                           for k in range(1, per + 1))
    falsifiers = "\n".join(
        f"  - id: FALSIFY-{prefix}-{k:03d}\n    invariant: INV-{prefix}-{k:03d}\n    rule: \"rule {k}\"\n"
        f"    prediction: \"prediction {k}\"\n    if_fails: \"diagnosis {k}\"\n    level: algorithm\n    requires: []"
        for k in range(1, per + 1)
    )
    return CONTRACT.format(n=n, depends=depends, invariants=invariants, falsifiers=falsifiers)


def bench_lint(count: int) -> dict[str, float]:
    from falsifiers.lint import lint_paths

    with tempfile.TemporaryDirectory(prefix="apr-bench-lint-") as folder:
        root = Path(folder)
        for n in range(count):
            depends = f"c{n - 1:05d}" if n else ""
            (root / f"c{n:05d}.yaml").write_text(contract_text(n, 3, depends))
        start, cpu = time.perf_counter(), time.process_time()
        corpus = lint_paths([root])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    errors = sum(1 for f in corpus.findings if f.is_error)
    return {"contracts": len(corpus.contracts), "seconds": elapsed, "cpu": cpu, "errors": errors}


PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["tests"]
markers = ["falsifies(*ids): registered here too, so the suite also runs with -p no:apr_contracts"]

[tool.apr-contracts]
contracts = "contracts"
"""


def make_suite(root: Path, tests: int, per: int = 10) -> None:
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "contracts").mkdir()
    (root / "tests").mkdir()
    contracts = tests // per
    for n in range(contracts):
        (root / "contracts" / f"c{n:05d}.yaml").write_text(contract_text(n, per))
        body = ["import pytest", ""]
        for k in range(1, per + 1):
            body += [f'@pytest.mark.falsifies("FALSIFY-B{n:05d}-{k:03d}")',
                     f"def test_falsify_b{n:05d}_{k:03d}():", f"    assert {k} + 0 == {k}", ""]
        (root / "tests" / f"test_c{n:05d}.py").write_text("\n".join(body))


CPU: list[tuple[str, float]] = []  # (variant, user+sys seconds of the child), filled by run_suite

# As on a developer's machine or a CI runner: Python writes bytecode, so the harness's modules and
# pytest's rewritten test modules are compiled once, not on every run. (Some sandboxes export
# PYTHONDONTWRITEBYTECODE=1: then both variants recompile every test file on every run, the
# baseline doubles, and the ratio flatters the plugin.) `--no-bytecode` measures that setting.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_suite(root: Path, *extra: str) -> float:
    """Wall time of one `python -m pytest -q` in the suite's folder (interpreter start included).

    The child's CPU time (user + sys) is recorded too: on a shared, loaded machine it is the steadier
    of the two figures.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "pytest", "-q", *extra], cwd=root, env=CHILD_ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((" ".join(extra), (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    if process.returncode != 0:
        raise SystemExit(f"the generated suite failed (exit {process.returncode}) with args {extra}")
    return elapsed


def bench_plugin(tests: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="apr-bench-suite-") as folder:
        root = Path(folder)
        make_suite(root, tests)
        cold = []
        for _ in range(rounds):  # no pytest cache at all: every run validates every contract
            cold.append(run_suite(root, "-p", "no:cacheprovider"))
            cold.append(run_suite(root, "-p", "no:cacheprovider", "-p", "no:apr_contracts"))
        run_suite(root)  # fill pytest's cache (bytecode, linted corpus) as any second run finds it
        CPU.clear()
        with_plugin, without = [], []
        for _ in range(rounds):  # interleaved, so drift hits both alike
            without.append(run_suite(root, "-p", "no:apr_contracts"))
            with_plugin.append(run_suite(root))
    cpu_with = statistics.median(t for v, t in CPU if "no:apr_contracts" not in v)
    cpu_without = statistics.median(t for v, t in CPU if "no:apr_contracts" in v)
    return {"tests": tests, "with": statistics.median(with_plugin), "without": statistics.median(without),
            "cpu_with": cpu_with, "cpu_without": cpu_without,
            "with_min": min(with_plugin), "without_min": min(without),
            "cold_with": statistics.median(cold[0::2]), "cold_without": statistics.median(cold[1::2])}


def count_instructions(root: Path, *extra: str) -> int:
    """User-space instructions of one warm `pytest -q` run, counted by valgrind's callgrind.

    Deterministic to a fraction of a percent, so the plugin's share can be read on a shared, noisy
    machine where wall and CPU times move by tens of percent (each run takes ~30 s under valgrind).
    """
    import re

    subprocess.run([sys.executable, "-m", "pytest", "-q", *extra], cwd=root, env=CHILD_ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # warm bytecode and cache
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
                             "pytest", "-q", *extra], cwd=root, env=CHILD_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=False)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no instruction count: {result.stderr[-500:]}")
    return int(found.group(1))


def bench_instructions(tests: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory(prefix="apr-bench-suite-") as folder:
        root = Path(folder)
        make_suite(root, tests)
        return count_instructions(root), count_instructions(root, "-p", "no:apr_contracts")


REPOSITORY = Path(__file__).resolve().parents[1]
# One file of quick tests that bind falsifiers of one contract: the run's work is the harness's.
OWN_FILE = "tests/harness/test_verdict_lattice.py"


def run_own(*extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one warm `pytest` in this repository (the plugin on or off)."""
    base = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=-p pytester", "-p", "no:randomly", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.run(base, cwd=REPOSITORY, env={**CHILD_ENV, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode not in (0, 2):  # 2: a run of one file is UNKNOWN for the contracts it leaves out
        raise SystemExit(f"pytest {' '.join(extra)} failed in {REPOSITORY} (exit {process.returncode})")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_own(rounds: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU of each variant, interleaved, after one warm-up run of each."""
    variants = {"collect": ("--collect-only",), "run": (OWN_FILE,)}
    figures: dict[str, dict[str, float]] = {}
    for name, extra in variants.items():
        run_own(*extra)
        run_own(*extra, "-p", "no:apr_contracts")
        on, off = [], []
        for _ in range(rounds):
            off.append(run_own(*extra, "-p", "no:apr_contracts"))
            on.append(run_own(*extra))
        figures[name] = {
            "with": statistics.median(w for w, _ in on), "without": statistics.median(w for w, _ in off),
            "cpu_with": statistics.median(c for _, c in on), "cpu_without": statistics.median(c for _, c in off),
            # the best of N: on a shared machine the least disturbed run of each variant
            "with_min": min(w for w, _ in on), "without_min": min(w for w, _ in off),
            "cpu_with_min": min(c for _, c in on), "cpu_without_min": min(c for _, c in off),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=2000)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="run the suites with PYTHONDONTWRITEBYTECODE=1 (every module recompiled each run)")
    parser.add_argument("--skip-lint", action="store_true", help="only the plugin figure")
    parser.add_argument("--own", action="store_true",
                        help="only the fixed cost on this repository's own suite (budget 60 ms)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions of one run of each variant under valgrind (callgrind)")
    args = parser.parse_args(argv)
    if args.no_bytecode:
        CHILD_ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    if args.instructions:
        import shutil

        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind on PATH")
        with_plugin, without = bench_instructions(args.tests)
        print(f"plugin, instructions (callgrind, one warm run each): {with_plugin / 1e6:.1f} M with the plugin, "
              f"{without / 1e6:.1f} M without; ratio {with_plugin / without:.3f} "
              f"(overhead {100 * (with_plugin / without - 1):+.1f} %, budget +5 %)")

    print(f"children write bytecode: {'no' if args.no_bytecode else 'yes'}")
    if args.own:
        for name, f in bench_own(args.rounds).items():
            what = "collect the whole suite" if name == "collect" else f"run {OWN_FILE}"
            print(f"own suite, {what}, median of {args.rounds}: {f['with']:.3f} s with the plugin, "
                  f"{f['without']:.3f} s without; fixed cost {1000 * (f['with'] - f['without']):+.0f} ms wall, "
                  f"{1000 * (f['cpu_with'] - f['cpu_without']):+.0f} ms CPU (budget 60 ms)")
            print(f"own suite, {what}, best of {args.rounds}: {f['with_min']:.3f} s with the plugin, "
                  f"{f['without_min']:.3f} s without; fixed cost {1000 * (f['with_min'] - f['without_min']):+.0f} ms "
                  f"wall, {1000 * (f['cpu_with_min'] - f['cpu_without_min']):+.0f} ms CPU (budget 60 ms)")
            print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    lint = None if args.skip_lint else bench_lint(args.contracts)
    if lint is not None:
        print(f"lint: {lint['contracts']} contracts in {lint['seconds']:.2f} s wall, {lint['cpu']:.2f} s CPU "
              f"({lint['seconds'] / 3.0:.2f} of the 3 s budget; {lint['errors']} errors)")
    suite = bench_plugin(args.tests, args.rounds)
    ratio = suite["with"] / suite["without"]
    print(f"plugin: {suite['tests']}-test suite, median of {args.rounds}: {suite['with']:.3f} s with the plugin, "
          f"{suite['without']:.3f} s with -p no:apr_contracts; ratio {ratio:.3f} "
          f"(overhead {100 * (ratio - 1):+.1f} %, budget +5 %); "
          f"best-of ratio {suite['with_min'] / suite['without_min']:.3f}")
    cpu = suite["cpu_with"] / suite["cpu_without"]
    print(f"plugin, CPU time (user+sys, median): {suite['cpu_with']:.3f} s vs {suite['cpu_without']:.3f} s; "
          f"ratio {cpu:.3f} (overhead {100 * (cpu - 1):+.1f} %)")
    cold = suite["cold_with"] / suite["cold_without"]
    print(f"plugin, cold (-p no:cacheprovider, every contract re-validated): {suite['cold_with']:.3f} s vs "
          f"{suite['cold_without']:.3f} s; ratio {cold:.3f} (overhead {100 * (cold - 1):+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
