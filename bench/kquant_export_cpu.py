"""CPU seconds of ``export_gguf`` on one thread, this tree's numba kernel against an older one (issue 19).

Why: on a shared machine the wall time of an export moves with the load; the CPU time of one
thread much less. For each type, exports the same ``.apr`` with this tree's compiled K-quant
kernel ("after") and, for q4_k/q6_k, with apr/convert/quant_k_numba.py as of ``--baseline-rev``
("before", swapped in for `apr.convert.quant_k_numba.kernel`), and prints CPU and wall seconds and
the SHA-256 of each output (the two must be equal: the same bytes). Asserts nothing.

Run: ``OMP_NUM_THREADS=1 APR_THREADS=1 APR_QUANT_KERNEL=numba .venv/bin/python
bench/kquant_export_cpu.py m.apr --baseline-rev ea68831 --workdir /tmp/x --types q4_k,q6_k,f16``
(``m.apr``: e.g. the 1 GiB model `bench/convert_bench.py --model-gib 1` builds in its workdir).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from apr.convert import quant_k_numba
from apr.convert.gguf_export import GgufQuant, export_gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kquant_cpu_bench import baseline_kernels  # a sibling script, not a package


def sha256_prefix(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apr", type=Path)
    parser.add_argument("--baseline-rev", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--types", default="q4_k,q6_k,f16")
    args = parser.parse_args()
    current = quant_k_numba.kernel
    with tempfile.TemporaryDirectory() as folder:
        before = baseline_kernels(args.baseline_rev, Path(folder))
        for kind in args.types.split(","):
            for variant in ("after", "before") if kind in ("q4_k", "q6_k") else ("after",):
                quant_k_numba.kernel = current if variant == "after" else (lambda k: before[k.lower()])
                target = args.workdir / f"{kind}-{variant}.gguf"
                cpu, wall = time.process_time(), time.perf_counter()
                export_gguf(args.apr, target, quantize=GgufQuant(kind), force=True)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"{kind} {variant:6s} cpu {cpu:6.2f} s  wall {wall:6.2f} s  sha256 {sha256_prefix(target)}",
                      flush=True)
    quant_k_numba.kernel = current


if __name__ == "__main__":
    main()
