"""CPU throughput per core of the Q4_K / Q6_K quantizers on one weight tensor (issue 19).

Why CPU time and not wall time: this machine is shared, and ``time.process_time`` of one thread
moves far less with the load than the wall clock does, so kernels measured minutes apart can be
compared. Prints one line per (type, kernel): best-of-N CPU seconds and MB/s of float32 input.
Asserts nothing (a benchmark); the bytes are checked by FALSIFY-EXPORT-013.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/kquant_cpu_bench.py --repeat 5``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from apr.convert.quant_k import quantize_q4_k, quantize_q6_k

QUANTIZERS = {"q4_k": quantize_q4_k, "q6_k": quantize_q6_k}


def best_cpu_seconds(kind: str, kernel: str, x: np.ndarray, repeat: int) -> float:
    """Best of ``repeat`` one-thread runs, in CPU seconds of this process (after one warm-up run,
    which compiles the numba kernel or loads it from the cache)."""
    quantize = QUANTIZERS[kind]
    quantize(x[:8], threads=1, kernel=kernel)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        quantize(x, threads=1, kernel=kernel)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--kernels", default="numba,numpy")
    parser.add_argument("--types", default="q4_k,q6_k")
    args = parser.parse_args()
    x = np.random.default_rng(0).normal(0, 0.02, (args.rows, args.cols)).astype(np.float32)
    megabytes = x.nbytes / 1e6
    for kind in args.types.split(","):
        for kernel in args.kernels.split(","):
            seconds = best_cpu_seconds(kind, kernel, x, args.repeat)
            print(f"{kind} {kernel:6s} {seconds:7.3f} s CPU  {megabytes / seconds:7.1f} MB/s  ({args.rows}x{args.cols} float32)")


if __name__ == "__main__":
    main()
