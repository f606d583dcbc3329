"""Peak memory of `apr diff` on two large checkpoints (issue 15, part 3: <= 256 MiB on two 1 GiB files).

Writes two APR files of ``--size-gib`` each (16 float32 tensors; the second differs in one element of
every tensor), runs `apr diff --json` on them in a fresh process and prints its peak RSS (the
child's ru_maxrss), its wall time, and the peer `python -c "import numpy"`'s peak RSS measured the
same way in the same run. Never asserts; docs/benchmarks.md records the figures.

Usage::

    .venv/bin/python bench/diff_bench.py [--size-gib 1] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from apr.format import save_file

TENSORS = 16


def _peak_rss_mib(argv: list[str]) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Peak RSS (MiB) and wall seconds of one child, read from a fresh grandchild's rusage."""
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
             "w = time.perf_counter() - t\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, w, p.returncode)\n"
             "sys.stdout.flush()\n")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, check=True, text=True)
    rss, wall, code = done.stdout.split()
    return float(rss), float(wall), subprocess.CompletedProcess(argv, int(code))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to write the two files (default: a temporary folder)")
    args = parser.parse_args()
    elements = int(args.size_gib * (1 << 30) / 4 / TENSORS)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        root = Path(folder)
        rng = np.random.default_rng(0)
        tensors = {f"layer.{i}.weight": rng.standard_normal(elements, dtype=np.float32) for i in range(TENSORS)}
        save_file(tensors, root / "a.apr", {"architecture": "llama"})
        for array in tensors.values():
            array[-1] += 1.0
        save_file(tensors, root / "b.apr", {"architecture": "llama"})
        del tensors
        size = (root / "a.apr").stat().st_size
        peer_rss, peer_wall, _ = _peak_rss_mib([sys.executable, "-c", "import numpy"])
        rss, wall, done = _peak_rss_mib([sys.executable, "-m", "apr.cli.main", "diff", str(root / "a.apr"),
                                         str(root / "b.apr"), "--json"])
    print(f"two files of {size / (1 << 30):.2f} GiB, {TENSORS} float32 tensors of {elements:,} elements each")
    print(f"{'command':<34} {'peak RSS':>10} {'wall':>8}")
    print(f"{'python -c import numpy (peer)':<34} {peer_rss:>7.0f} MiB {peer_wall:>7.2f}s")
    print(f"{'apr diff a.apr b.apr --json':<34} {rss:>7.0f} MiB {wall:>7.2f}s  (exit {done.returncode})")
    print(f"target: peak RSS <= 256 MiB ({rss - peer_rss:+.0f} MiB over the peer)")
    print(json.dumps({"file_bytes": size, "peak_rss_mib": rss, "peer_rss_mib": peer_rss, "wall_s": wall}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
