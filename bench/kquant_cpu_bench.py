"""CPU throughput per core of the Q4_K / Q6_K quantizers on one weight tensor (issue 19).

Why CPU time and not wall time: this machine is shared, and ``time.process_time`` of one thread
moves far less with the load than the wall clock does, so kernels can be compared. The variants
are timed in interleaved rounds (every variant once per round), best of ``--repeat``, so a burst
of load hits them alike. Prints one line per (type, variant): CPU seconds and MB/s of float32
input, and whether its bytes equal the first variant's. Asserts nothing (a benchmark); the bytes
are checked by FALSIFY-EXPORT-013.

Variants: ``numba`` and ``numpy`` (`quantize_q4_k(x, threads=1, kernel=...)`), and with
``--baseline-rev REV`` also ``numba@REV``: apr/convert/quant_k_numba.py as it was at git revision
REV, compiled from a temporary copy and run through the same chunking, to compare kernels.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/kquant_cpu_bench.py --repeat 5 --baseline-rev ea68831``
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from apr.convert import quant_k
from apr.convert.quant_k import quantize_q4_k, quantize_q6_k

QUANTIZERS = {"q4_k": quantize_q4_k, "q6_k": quantize_q6_k}
WIDTHS = {"q4_k": quant_k.Q4_K_BYTES, "q6_k": quant_k.Q6_K_BYTES}


def baseline_kernels(rev: str, folder: Path) -> dict[str, Callable[[np.ndarray, np.ndarray], None]]:
    """The compiled kernels of apr/convert/quant_k_numba.py at ``rev`` (a copy under ``folder``)."""
    source = subprocess.run(["git", "show", f"{rev}:apr/convert/quant_k_numba.py"], check=True,
                            capture_output=True, text=True).stdout
    path = folder / f"quant_k_numba_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return {"q4_k": module.kernel("Q4_K"), "q6_k": module.kernel("Q6_K")}


def variants(kind: str, kernels: list[str], baseline: dict[str, Callable[..., None]] | None,
             rev: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> quantize(x) on one thread."""
    quantize = QUANTIZERS[kind]
    chosen: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        name: (lambda x, name=name: quantize(x, threads=1, kernel=name)) for name in kernels}
    if baseline is not None:
        compiled = baseline[kind]
        chosen[f"numba@{rev}"] = lambda x: quant_k._map_compiled(compiled, x.reshape(-1, quant_k.QK_K),
                                                                 WIDTHS[kind], 1).reshape(x.shape[0], -1)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--kernels", default="numba,numpy")
    parser.add_argument("--types", default="q4_k,q6_k")
    parser.add_argument("--baseline-rev", default=None, help="also time quant_k_numba.py as of this git revision")
    args = parser.parse_args()
    x = np.random.default_rng(0).normal(0, 0.02, (args.rows, args.cols)).astype(np.float32)
    megabytes = x.nbytes / 1e6
    with tempfile.TemporaryDirectory() as folder:
        baseline = baseline_kernels(args.baseline_rev, Path(folder)) if args.baseline_rev else None
        for kind in args.types.split(","):
            chosen = variants(kind, args.kernels.split(","), baseline, args.baseline_rev or "")
            outputs = {name: run(x[:8]) for name, run in chosen.items()}  # warm-up: compile or load
            best = dict.fromkeys(chosen, float("inf"))
            for _ in range(args.repeat):
                for name, run in chosen.items():
                    start = time.process_time()
                    outputs[name] = run(x)
                    best[name] = min(best[name], time.process_time() - start)
            reference = next(iter(outputs.values())).tobytes()
            for name, seconds in best.items():
                same = "same bytes" if outputs[name].tobytes() == reference else "DIFFERENT BYTES"
                print(f"{kind} {name:14s} {seconds:7.3f} s CPU  {megabytes / seconds:7.1f} MB/s  "
                      f"({args.rows}x{args.cols} float32, {same})")


if __name__ == "__main__":
    main()
