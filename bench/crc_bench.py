"""CPU cost of `apr stamp -o`'s input check (issue 17, part 3): the thread that CRCs the input's
data while the kernel copies it competes with the copy for the CPU on a 2-core machine.

Peer, measured in the same run on the same file: the previous loop (a fresh ``os.pread`` buffer
per 8 MiB piece and ``zlib.crc32``). Ours: `apr.stamp.rewrite._read_into` into one reused buffer
and `apr.format.crc.bulk_crc32` (zlib-ng). CPU seconds (``time.process_time``), best of
``--repeat``, warm page cache; CPU time, unlike wall time, is little moved by other jobs. The
script never asserts; docs/benchmarks.md records the figures.

Usage::

    .venv/bin/python bench/crc_bench.py --size-gib 1 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stamp_bench import GIB, build_checkpoint

from apr.format.crc import bulk_crc32
from apr.stamp.rewrite import CHUNK_SIZE, _read_into


def peer(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        size, crc, offset = os.fstat(fd).st_size, 0, 0
        while offset < size:
            chunk = os.pread(fd, CHUNK_SIZE, offset)
            crc = zlib.crc32(chunk, crc)
            offset += len(chunk)
        return crc
    finally:
        os.close(fd)


def ours(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        size, crc, offset = os.fstat(fd).st_size, 0, 0
        crc32 = bulk_crc32(size)
        buffer = memoryview(bytearray(CHUNK_SIZE))
        while offset < size:
            got = _read_into(fd, buffer, offset)
            crc = crc32(buffer[:got], crc)
            offset += got
        return crc & 0xFFFFFFFF
    finally:
        os.close(fd)


def best_cpu(fn, path: Path, repeat: int) -> tuple[float, float, int]:
    runs = []
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        value = fn(path)
        runs.append((time.process_time() - cpu, time.perf_counter() - wall, value))
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="apr-crc-bench-"))
    try:
        path = folder / "big.apr"
        build_checkpoint(path, int(args.size_gib * GIB))
        peer(path)  # warm the page cache
        p_cpu, p_wall, p_crc = best_cpu(peer, path, args.repeat)
        o_cpu, o_wall, o_crc = best_cpu(ours, path, args.repeat)
        assert p_crc & 0xFFFFFFFF == o_crc, "the two loops disagree"
        print(f"CRC of {path.stat().st_size / GIB:.2f} GiB, best of {args.repeat}; load {os.getloadavg()[0]:.1f}, "
              f"{os.cpu_count()} CPUs")
        print(f"{'loop':<34} {'CPU s':>7} {'wall s':>7}")
        print(f"{'peer: pread + zlib.crc32':<34} {p_cpu:>7.3f} {p_wall:>7.3f}")
        print(f"{'apr: reused buffer + bulk_crc32':<34} {o_cpu:>7.3f} {o_wall:>7.3f}")
        print(f"ratio (CPU, apr / peer): {o_cpu / p_cpu:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
