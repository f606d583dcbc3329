"""Benchmark of `apr stamp` against its targets (issue 4, part 3).

Rows, each against a named peer, printed as a table with the ratio and the target:

1. ``apr stamp -o`` of a 4 GiB checkpoint vs ``cp`` of the same file: time ratio <= 1.3.
2. Peak RSS of that ``apr stamp -o`` process: <= 128 MiB (``os.wait4`` of a fresh child).
3. ``apr stamp --in-place`` on the 4 GiB file: <= 50 ms (the stamp's own ``elapsed_ms`` from its
   JSON, i.e. without interpreter start-up; the whole-process wall time is shown too).
4. The same in-place stamp on a 4 MiB file: the 4 GiB time <= 2x the 4 MiB time.

The checkpoint is built directly (16 F32 tensors of random-looking bytes, footer CRC streamed),
so building it needs no more memory than one 64 MiB block. Timings are the best of ``--repeat``
runs on a warm page cache. The script never asserts; docs/benchmarks.md records the figures.

Usage::

    .venv/bin/python bench/stamp_bench.py                       # 4 GiB, as the issue asks
    .venv/bin/python bench/stamp_bench.py --size-gib 0.25 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from apr.format.dtypes import DType
from apr.format.header import HEADER_SIZE, Header, align64
from apr.format.metadata import encode_metadata
from apr.format.tensor_index import TensorEntry, encode_index

MIB = 1 << 20
GIB = 1 << 30
BLOCK = 64 * MIB


def build_checkpoint(path: Path, total_bytes: int, tensors: int = 16) -> None:
    """An APR v2 file of ~``total_bytes`` data, written in 64 MiB blocks."""
    per = max(64, (total_bytes // tensors) // 64 * 64)
    elements = per // 4
    entries = [TensorEntry(f"model.layers.{i:02d}.mlp.up_proj.weight", DType.F32, (elements,), i * per, per)
               for i in range(tensors)]
    meta = encode_metadata({"model_type": "qwen2", "architecture": "LlamaForCausalLM", "hidden_size": 896,
                            "num_layers": 24, "num_heads": 14})
    index = encode_index(entries)
    index_off = HEADER_SIZE + align64(len(meta))
    data_off = index_off + align64(len(index))
    header = Header(flags=0x0400, tensor_count=tensors, metadata_offset=HEADER_SIZE, metadata_size=len(meta),
                    tensor_index_offset=index_off, data_offset=data_off).with_checksum()
    prefix = bytearray(data_off)
    prefix[:64] = header.to_bytes()
    prefix[64 : 64 + len(meta)] = meta
    prefix[index_off : index_off + len(index)] = index
    block = np.random.default_rng(0).integers(0, 256, BLOCK, dtype=np.uint8).tobytes()
    crc = zlib.crc32(prefix)
    with open(path, "wb") as handle:
        handle.write(prefix)
        left = per * tensors
        while left:
            chunk = block[: min(left, BLOCK)]
            handle.write(chunk)
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        handle.write((crc & 0xFFFFFFFF).to_bytes(4, "little"))


# A tiny launcher: Linux charges a child the resident pages of the process that spawned it (even
# with vfork: exec records the old mm's high-water mark), and this script holds numpy and a 64 MiB
# block. The launcher is a bare interpreter (~10 MiB), so its child's peak RSS is the child's own.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], dict(os.environ),
                      file_actions=[(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
_pid, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"{time.perf_counter() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\\n")
"""


def run_child(argv: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of a fresh child process, after ``sync`` so no run
    pays for the previous run's dirty pages."""
    os.sync()
    proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], capture_output=True, text=True)
    wall, rss, code = proc.stderr.split()[-3:]
    if int(code) != 0:
        raise SystemExit(f"{argv} failed with exit code {code}")
    return float(wall), int(rss) * 1024, proc.stdout


def apr(*args: str) -> list[str]:
    return [sys.executable, "-m", "apr.cli.main", "stamp", *args]


def best_cp(src: Path, dst: Path, repeat: int, *, durable: bool = False) -> float:
    """Best time of ``cp`` (``durable``: followed by ``sync -f`` on the copy, as a stamp fsyncs)."""
    times = []
    argv = ["sh", "-c", f"cp '{src}' '{dst}' && sync -f '{dst}'"] if durable else ["cp", str(src), str(dst)]
    for _ in range(repeat):
        dst.unlink(missing_ok=True)
        times.append(run_child(argv)[0])
    dst.unlink(missing_ok=True)
    return min(times)


def best_stamp_o(src: Path, dst: Path, repeat: int) -> tuple[float, int, str]:
    runs = []
    for i in range(repeat):
        dst.unlink(missing_ok=True)
        wall, rss, out = run_child(apr(str(src), "--license", "Apache-2.0", "--name", f"run-{i}", "-o", str(dst), "--json"))
        runs.append((wall, rss, json.loads(out)["copy_method"]))
    dst.unlink(missing_ok=True)
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2]


def best_in_place(path: Path, repeat: int) -> tuple[float, float]:
    """(best in-process elapsed ms, best whole-process wall ms); each run changes the name."""
    inner, outer = [], []
    for i in range(repeat + 1):  # the first run moves the file to its stamped layout; not timed
        wall, _rss, out = run_child(apr(str(path), "--name", f"in-place-{i}", "--in-place", "--json"))
        doc = json.loads(out)
        if i and doc["mode"] == "in-place":
            inner.append(doc["elapsed_ms"])
            outer.append(wall * 1000)
    return min(inner), min(outer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=4.0)
    parser.add_argument("--small-mib", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="apr-stamp-bench-", dir=args.dir))
    try:
        big, small, out = folder / "big.apr", folder / "small.apr", folder / "out.apr"
        build_checkpoint(big, int(args.size_gib * GIB))
        build_checkpoint(small, int(args.small_mib * MIB))
        cp_s = best_cp(big, out, args.repeat)
        cp_sync_s = best_cp(big, out, args.repeat, durable=True)
        stamp_s, rss, method = best_stamp_o(big, out, args.repeat)
        big_ms, big_wall = best_in_place(big, args.repeat)
        small_ms, small_wall = best_in_place(small, args.repeat)
        size = big.stat().st_size
        rows = [
            ("stamp -o vs cp (time)", f"{stamp_s:.3f} s vs {cp_s:.3f} s", stamp_s / cp_s, "<= 1.3"),
            ("stamp -o vs cp + sync", f"{stamp_s:.3f} s vs {cp_sync_s:.3f} s", stamp_s / cp_sync_s, "(context)"),
            ("stamp -o peak RSS", f"{rss / MIB:.1f} MiB", rss / (128 * MIB), "<= 1.0 (128 MiB)"),
            ("--in-place, big file", f"{big_ms:.2f} ms (process {big_wall:.0f} ms)", big_ms / 50, "<= 1.0 (50 ms)"),
            ("--in-place big vs small", f"{big_ms:.2f} ms vs {small_ms:.2f} ms (process {small_wall:.0f} ms)",
             big_ms / small_ms, "<= 2.0"),
        ]
        print(f"apr stamp benchmark: {size / GIB:.2f} GiB and {args.small_mib:g} MiB checkpoints, best of {args.repeat}; "
              f"copy method {method}")
        print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
              f"{platform.system()} {platform.release()}, Python {platform.python_version()}, folder {folder}")
        print(f"{'figure':<26} {'measured':<48} {'ratio':>7}  target")
        for name, measured, ratio, target in rows:
            print(f"{name:<26} {measured:<48} {ratio:>7.3f}  {target}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
